//! The forward pass is built once per shape and replayed: a second run writes only the inputs.

mod common;
use common::*;
use wgformer::models::{Model, Sequence};

#[test]
fn graph_is_built_once_and_replayed_with_inputs_only() {
    let gpu = gpu();
    let model = Model::load(&models().join("minilm-sst2"), &gpu).unwrap();
    let a = Sequence::new(vec![101, 1037, 9882, 1010, 25591, 102]);
    let b = Sequence::new(vec![101, 2009, 1005, 1055, 4030, 102]);
    let first = model.forward(std::slice::from_ref(&a)).unwrap();
    assert_eq!(model.graph_builds(), 1);
    let second = model.forward(std::slice::from_ref(&b)).unwrap();
    let again = model.forward(std::slice::from_ref(&a)).unwrap();
    assert_eq!(
        model.graph_builds(),
        1,
        "same shape must replay, not rebuild"
    );
    assert_eq!(
        first.logits, again.logits,
        "a replay gives the same numbers"
    );
    assert_ne!(first.logits, second.logits, "the new input was really used");

    let (plan, stats, nodes) = model.graph_report(1, a.ids.len()).unwrap();
    assert_eq!(stats.runs, 3);
    assert_eq!(stats.submits, 3, "one submit per run");
    let seq = model.bucket(a.ids.len()) as u64;
    // ids + positions + token types (u32) and the f32 mask: nothing else is written.
    assert_eq!(stats.bytes_written_last_run, 3 * 4 * seq + 4 * seq);
    // A classifier reads back its 2 logits, not the hidden state.
    assert_eq!(stats.bytes_read_per_run, 2 * 4);
    assert!(first.last_hidden[0].is_empty());
    // 7 per layer (q/k/v projection, fused attention, attn_out, 2 norms, 2 FFN linears).
    assert!(nodes > 6 * 7, "{nodes} nodes for 6 layers");
    assert!(
        plan.planned_activation_bytes < plan.total_activation_bytes,
        "liveness plan must reuse buffers: {plan:?}"
    );
    eprintln!("plan: {plan:?}");

    // A different length in the same bucket shares the graph; another bucket builds one more.
    model
        .forward(&[Sequence::new(vec![101, 1037, 9882, 1010, 9882, 1010, 102])])
        .unwrap();
    assert_eq!(model.bucket(7), model.bucket(6));
    assert_eq!(model.graph_builds(), 1);
    model.forward(&[Sequence::new(vec![101; 40])]).unwrap();
    assert_eq!(model.graph_builds(), 2);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let gpu = gpu();
    let model = Model::load(&models().join("minilm-sst2"), &gpu).unwrap();
    let e = model.forward(&[]).unwrap_err().to_string();
    assert!(e.contains("no sequences"), "{e}");
    let e = model
        .forward(&[Sequence::new(vec![])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no tokens"), "{e}");
    let e = model
        .forward(&[Sequence::new(vec![101, 999_999])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("999999") && e.contains("vocabulary"), "{e}");
    let e = model
        .forward(&[Sequence::new(vec![101; 513])])
        .unwrap_err()
        .to_string();
    assert!(e.contains("513") && e.contains("512"), "{e}");
    let e = model
        .forward(&[Sequence {
            ids: vec![101, 102],
            type_ids: vec![0, 5],
        }])
        .unwrap_err()
        .to_string();
    assert!(e.contains("token type id 5"), "{e}");
}

/// Many threads share one model: every answer must equal the one computed alone. Graphs are
/// shared per shape, so this catches runs that overwrite each other's inputs or readback.
#[test]
fn concurrent_forwards_on_one_model_each_get_their_own_answer() {
    use std::sync::Arc;
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny/tiny-bert");
    let model = Arc::new(Model::load(&dir, &gpu).unwrap());
    let vocab = model.config.vocab_size as u32;
    // Mixed inputs: two lengths in one bucket (a shared graph), another bucket, batches of 1 and 2.
    let inputs: Vec<Vec<Sequence>> = (0..24u32)
        .map(|i| {
            let len = [5, 6, 11, 3][i as usize % 4];
            let row = |salt: u32| {
                Sequence::new(
                    (0..len)
                        .map(|t| (7 + i * 31 + t * 13 + salt) % vocab)
                        .collect(),
                )
            };
            if i % 5 == 0 {
                vec![row(0), row(1)]
            } else {
                vec![row(0)]
            }
        })
        .collect();
    let alone: Vec<_> = inputs
        .iter()
        .map(|rows| model.forward(rows).unwrap().logits)
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let model = model.clone();
            let inputs = inputs.clone();
            std::thread::spawn(move || {
                let mut got = vec![];
                for round in 0..20 {
                    let i = (t * 7 + round * 3) % inputs.len();
                    got.push((i, model.forward(&inputs[i]).map(|o| o.logits)));
                }
                got
            })
        })
        .collect();
    let mut calls = 0;
    for th in threads {
        for (i, got) in th.join().unwrap() {
            let got = got.unwrap_or_else(|e| panic!("input {i} failed under concurrency: {e}"));
            assert_eq!(got, alone[i], "input {i}: another caller's answer");
            calls += 1;
        }
    }
    assert_eq!(calls, 160);
}

/// A batch of many short rows needs more workgroups than one dispatch dimension allows (65,535)
/// in the per-(row, head) kernels: it must run and give each row its own answer.
#[test]
fn batches_past_the_dispatch_limit_run_and_match_rows_run_alone() {
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny/tiny-bert");
    let model = Model::load(&dir, &gpu).unwrap();
    let heads = model.config.num_heads;
    let rows: Vec<Sequence> = (0..17_000u32)
        .map(|i| Sequence::new(vec![2, 5 + i % 900, 3]))
        .collect();
    assert!(rows.len() * heads > 65_535);
    let out = model.forward(&rows).unwrap();
    for i in [0, 1, 8_191, 16_999] {
        let alone = model.forward(std::slice::from_ref(&rows[i])).unwrap();
        let d = max_abs(&out.logits[i], &alone.logits[0]);
        assert!(d < 1e-5, "row {i}: batched differs from alone by {d:e}");
    }
}

/// A buffer bigger than the adapter allows, made straight on the device: a validation error
/// that lands in the device-wide list (outside any [`Gpu::scoped`] call).
fn raise_uncaptured_error(gpu: &wgformer::gpu::Gpu) {
    let _ = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("too big on purpose"),
        size: gpu.device.limits().max_buffer_size + 4,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
}

/// An error reported while a run waits fails that run, and the next run of the same graph
/// works again: a failed run must not leave the graph's readback buffer mapped (every later
/// submit copying into it would fail, breaking that shape for good).
#[test]
fn a_gpu_error_fails_one_run_and_the_graph_recovers() {
    // A device of its own: the error raised here must not reach other tests' runs.
    let gpu = wgformer::gpu::open_test_gpu(Default::default());
    let model = Model::load(&shared().join("fixtures/tiny/tiny-bert"), &gpu).unwrap();
    let rows = [Sequence::new(vec![101, 7, 8, 9, 102])];
    let alone = model.forward(&rows).unwrap().logits;
    raise_uncaptured_error(&gpu);
    let e = model.forward(&rows).unwrap_err().to_string();
    assert!(e.contains("GPU error"), "{e}");
    for _ in 0..3 {
        let again = model
            .forward(&rows)
            .unwrap_or_else(|e| panic!("the graph did not recover from one failed run: {e}"));
        assert_eq!(again.logits, alone);
    }
    assert_eq!(
        model.graph_builds(),
        1,
        "recovered by replay, not by a rebuild"
    );
}

/// GPU errors of work inside [`Gpu::scoped`] are that caller's alone: a thread whose build
/// fails gets the error, and another thread's runs meanwhile never do.
#[test]
fn scoped_gpu_errors_stay_with_their_caller() {
    use std::sync::Arc;
    let gpu = wgformer::gpu::open_test_gpu(Default::default());
    let model = Arc::new(Model::load(&shared().join("fixtures/tiny/tiny-bert"), &gpu).unwrap());
    let rows = vec![Sequence::new(vec![101, 7, 8, 9, 102])];
    let alone = model.forward(&rows).unwrap().logits;
    let runner = {
        let (model, rows) = (model.clone(), rows.clone());
        std::thread::spawn(move || {
            (0..40)
                .map(|_| model.forward(&rows).map(|o| o.logits))
                .collect::<Vec<_>>()
        })
    };
    for _ in 0..40 {
        let e = gpu
            .scoped(|| {
                raise_uncaptured_error(&gpu);
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("GPU error"), "{e}");
    }
    for got in runner.join().unwrap() {
        let got = got.unwrap_or_else(|e| panic!("another thread's error reached this run: {e}"));
        assert_eq!(got, alone);
    }
    // Nothing was left behind for a later caller either.
    gpu.check().unwrap();
}
