//! Profiler, benchmark helpers and random-weight models: FLOP and byte counts against hand counts
//! on the tiny BERT fixture (hidden 32, 4 heads, FFN 64, 2 layers, 3 labels, f32 weights), and
//! profiled times against things the profiler does not compute itself: the host clock around a
//! run, and work that scales by a known factor.

use std::collections::HashMap;
use std::time::Instant;
use wgformer::bench::ceilings::{self, FORMAT};
use wgformer::bench::{kernels, quantile, random_rows, Ceilings, RandomConfig};
use wgformer::gpu::test_gpu;
use wgformer::models::Model;
use wgformer::profiler::{self, ForwardProfile, Profiler, Timing};

mod common;

fn tiny() -> Model {
    let dir = common::shared().join("fixtures/tiny/tiny-bert");
    Model::load(&dir, test_gpu()).expect("tiny-bert fixture loads")
}

/// Matmul `[m,k]·[n,k]ᵀ` (+ bias), f32, dense B shared by all batches: FLOPs and bytes by hand.
fn linear(m: u64, n: u64, k: u64, bias: bool) -> (u64, u64) {
    (
        2 * m * n * k,
        4 * (m * k + m * n) + 4 * n * k + if bias { 4 * n } else { 0 },
    )
}

#[test]
fn node_counts_match_a_hand_count() {
    let model = tiny();
    let rows = random_rows(1, 8, model.config.vocab_size, 3).unwrap();
    let nodes = model
        .with_graph(&rows, |g, _| Ok(g.nodes().cloned().collect::<Vec<_>>()))
        .unwrap();
    // embeddings + 2 layers × (q/k/v projection, fused attention, attn_out, attn_norm, ff_in,
    // ff_out, out_norm) + pooler dense + classifier.
    assert_eq!(nodes.len(), 1 + 2 * 7 + 2);

    // T = 8 tokens, h = 32, 4 heads of d = 8, FFN 64.
    let t = 8u64;
    let h = 32u64;
    // Fused attention over 4 heads of 8 queries × 8 keys: Q·Kᵀ and P·V, 2·d FLOPs per pair
    // each (the softmax is not counted). Bytes: Q, K, V and the context, 4·t·h each, and the
    // mask, one f32 per token.
    let attn = (4 * 4 * 8 * 8 * 8, 4 * 4 * t * h + 4 * t);
    let norm = (t * h * 8, 4 * t * h * 3 + 8 * h); // x + residual in, out; gamma, beta
    let want: HashMap<&str, (&str, (u64, u64))> = [
        // 3 tables (word, position, type) summed, 6 more FLOPs per element for the norm; ids,
        // positions and types are u32 per token.
        (
            "embeddings",
            (
                "embedding",
                (t * h * 9, 12 * t + 3 * 4 * t * h + 4 * t * h + 8 * h),
            ),
        ),
        ("layer0.qkv", ("matmul", linear(t, 3 * h, h, true))),
        ("layer0.attention", ("attention", attn)),
        ("layer0.attn_out", ("matmul", linear(t, h, h, true))),
        ("layer0.attn_norm", ("layer_norm", norm)),
        ("layer0.ff_in", ("matmul", linear(t, 64, h, true))),
        ("layer0.ff_out", ("matmul", linear(t, h, 64, true))),
        ("layer0.out_norm", ("layer_norm", norm)),
        ("head.dense", ("matmul", linear(1, h, h, true))),
        ("head.out", ("matmul", linear(1, 3, h, true))),
    ]
    .into_iter()
    .collect();
    for (label, (kind, (flops, bytes))) in &want {
        let n = nodes
            .iter()
            .find(|n| n.label == *label)
            .unwrap_or_else(|| panic!("no node `{label}`"));
        assert_eq!(n.kind, *kind, "{label} kind");
        assert_eq!(n.flops, *flops, "{label} FLOPs");
        assert_eq!(n.bytes, *bytes, "{label} bytes");
    }
    // Both layers are the same shape.
    for n in nodes.iter().filter(|n| n.label.starts_with("layer1.")) {
        let twin = want[n.label.replacen("layer1.", "layer0.", 1).as_str()];
        assert_eq!((n.flops, n.bytes), twin.1, "{}", n.label);
    }
    let matmul_flops: u64 = nodes
        .iter()
        .filter(|n| n.kind == "matmul")
        .map(|n| n.flops)
        .sum();
    // Per layer: qkv 49152 + attn_out 16384 + ff_in 32768 + ff_out 32768 (attention is its own
    // kind now: 8192 more per layer).
    assert_eq!(matmul_flops, 2 * 131_072 + 2048 + 192);
    let attention_flops: u64 = nodes
        .iter()
        .filter(|n| n.kind == "attention")
        .map(|n| n.flops)
        .sum();
    assert_eq!(attention_flops, 2 * 8192);
}

/// Slack for comparing a GPU interval with host time around it, µs: clock granularity and the
/// host and GPU clocks' different ticks.
const SLACK_US: f64 = 50.0;

/// Every node timed, in graph order, and the forward's GPU span inside its host wall time (which
/// a timestamp period too large by 10x breaks). Per-kind totals and call counts are sanity lines.
fn check_profile(p: &ForwardProfile, labels: &[String]) {
    assert_eq!(p.nodes.len(), labels.len(), "one timed node per graph node");
    for (n, l) in p.nodes.iter().zip(labels) {
        assert_eq!(&n.label, l);
        assert!(n.us.is_finite() && n.start_us.is_finite(), "{n:?}");
        assert!(
            n.start_us + n.us <= p.gpu_span_us * 1.0001 + 1.0,
            "{} ends after the forward's span: {n:?}",
            n.label
        );
    }
    assert!(p.gpu_sum_us > 0.0 && p.gpu_span_us > 0.0, "{p:?}");
    assert!(
        p.record_us > 0.0 && p.record_us <= p.wall_us,
        "recording {} µs must be part of the wall time {} µs",
        p.record_us,
        p.wall_us
    );
    assert!(
        p.gpu_span_us <= p.wall_us * 1.01 + SLACK_US,
        "GPU span {} µs exceeds the wall time {} µs around the run",
        p.gpu_span_us,
        p.wall_us
    );
    let kinds = p.by_kind();
    let by_kind: f64 = kinds.iter().map(|k| k.total_us).sum();
    assert!((by_kind - p.gpu_sum_us).abs() <= 1e-9 * p.gpu_sum_us.max(1.0));
    assert_eq!(kinds.iter().map(|k| k.calls).sum::<usize>(), labels.len());
}

/// One profiled run of `graph` with the host time measured here around it (the run and the wait
/// for its timestamps), µs.
fn timed_run(prof: &mut Profiler, graph: &wgformer::graph::GraphRun) -> (ForwardProfile, f64) {
    let t = Instant::now();
    let mut got: Vec<ForwardProfile> = prof.run(graph, &[]).unwrap().into_iter().collect();
    got.extend(prof.finish().unwrap());
    let wall = t.elapsed().as_secs_f64() * 1e6;
    assert_eq!(got.len(), 1, "one profile per run");
    (got.pop().unwrap(), wall)
}

/// Times no profiler computes itself: a graph of 4 identical matmuls against a graph of 1 (the
/// summed time must scale by about 4), and the host clock around every run (the GPU span must fit
/// inside it and the summed node times must fill a good part of it). A timestamp period wrong by
/// 10x or more fails the wall-clock bounds; misattributed ticks fail the scaling.
#[test]
fn profiled_times_scale_with_the_work_and_fit_in_the_wall_time() {
    let gpu = test_gpu();
    // Tens of ms per matmul on lavapipe, about a ms on a GPU: far above launch overheads.
    let s = if gpu.is_cpu() { 320 } else { 2048 };
    let one = kernels::matmul_graph(gpu, s, s, s, false, 1).unwrap();
    let four = kernels::matmul_graph(gpu, s, s, s, false, 4).unwrap();
    let (one, four) = (one.lock(), four.lock());
    for host in [false, true] {
        let make = |g: &wgformer::graph::GraphRun| {
            if host {
                Profiler::host_timed(gpu, g)
            } else {
                Profiler::new(gpu, g).unwrap()
            }
        };
        let (mut p1, mut p4) = (make(&one), make(&four));
        let timing = p1.timing();
        // Warm-up, then rounds that alternate the graphs so load on a shared machine hits both.
        timed_run(&mut p1, &one);
        timed_run(&mut p4, &four);
        let (mut ratios, mut node_ratios, mut fill) = (vec![], vec![], vec![]);
        for _ in 0..5 {
            let (a, wall_a) = timed_run(&mut p1, &one);
            let (b, wall_b) = timed_run(&mut p4, &four);
            for (p, wall) in [(&a, wall_a), (&b, wall_b)] {
                assert_eq!(p.timing, timing);
                assert!(
                    p.gpu_span_us <= wall * 1.01 + SLACK_US
                        && p.gpu_sum_us <= wall * 1.01 + SLACK_US,
                    "{timing:?}: GPU span {} µs / sum {} µs exceed the host wall time {wall} µs around the run",
                    p.gpu_span_us,
                    p.gpu_sum_us
                );
                assert!(
                    p.wall_us <= wall + SLACK_US,
                    "{timing:?}: profiler's wall {} µs",
                    p.wall_us
                );
                // Nodes run one after another: their sum fits in the span.
                assert!(p.gpu_sum_us <= p.gpu_span_us * 1.001 + SLACK_US, "{p:?}");
            }
            ratios.push(b.gpu_sum_us / a.gpu_sum_us);
            node_ratios.extend(b.nodes.iter().map(|n| n.us / a.gpu_sum_us));
            fill.push(b.gpu_sum_us / wall_b);
        }
        let ratio = quantile(&ratios, 0.5);
        assert!(
            (2.0..=8.0).contains(&ratio),
            "{timing:?}: 4 matmuls took {ratio:.2}x the time of 1 (rounds: {ratios:?})"
        );
        let node = quantile(&node_ratios, 0.5);
        assert!(
            (0.4..=2.5).contains(&node),
            "{timing:?}: each of the 4 matmuls took {node:.2}x the time of the single one"
        );
        let fill = quantile(&fill, 0.5);
        assert!(
            fill >= 0.3,
            "{timing:?}: the timed matmuls fill only {:.1} % of the wall time around the run",
            100.0 * fill
        );
    }
}

#[test]
fn profiling_a_forward_times_every_node_and_writes_a_trace() {
    let gpu = test_gpu();
    let model = tiny();
    let rows = random_rows(2, 12, model.config.vocab_size, 5).unwrap();
    let (runs, labels, first_returned, timing) = model
        .with_graph(&rows, |g, inputs| {
            let labels: Vec<String> = g.nodes().map(|n| n.label.clone()).collect();
            let mut prof = Profiler::new(gpu, g)?;
            // Read one behind: with timestamps the first run returns nothing yet.
            let first = prof.run(g, inputs)?.is_some();
            let mut runs = vec![];
            for _ in 0..3 {
                runs.extend(prof.run(g, inputs)?);
            }
            runs.extend(prof.finish()?);
            Ok((runs, labels, first, prof.timing()))
        })
        .unwrap();
    assert_eq!(runs.len(), 4, "every run's profile comes back exactly once");
    if timing == Timing::GpuTimestamps {
        assert!(!first_returned);
    }
    for r in &runs {
        check_profile(r, &labels);
    }
    let mean = ForwardProfile::mean(&runs).unwrap();
    check_profile(&mean, &labels);

    let path = std::env::temp_dir().join(format!("wgformer-trace-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&mean.chrome_trace()).unwrap()).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let events = v["traceEvents"].as_array().unwrap();
    assert_eq!(events.len(), labels.len());
    for (e, n) in events.iter().zip(&mean.nodes) {
        assert_eq!(e["ph"], "X");
        assert_eq!(e["name"], n.label.as_str());
        assert_eq!(e["cat"], n.kind.as_str());
        assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0);
        assert_eq!(e["args"]["flops"].as_u64().unwrap(), n.flops);
        assert_eq!(e["args"]["bytes"].as_u64().unwrap(), n.bytes);
    }
}

#[test]
fn host_timed_fallback_profiles_every_node_and_keeps_outputs_right() {
    let gpu = test_gpu();
    let model = tiny();
    let rows = random_rows(1, 8, model.config.vocab_size, 9).unwrap();
    let reference = model.forward(&rows).unwrap().logits;
    let runs = model
        .with_graph(&rows, |g, inputs| {
            let labels: Vec<String> = g.nodes().map(|n| n.label.clone()).collect();
            let mut prof = Profiler::host_timed(gpu, g);
            assert_eq!(prof.timing(), Timing::HostPerSubmit);
            assert!(prof.note().is_some(), "the fallback must say so");
            let runs = profiler::profile_graph(&mut prof, g, inputs, 1, 2)?;
            Ok((runs, labels))
        })
        .unwrap();
    assert_eq!(runs.0.len(), 2);
    for r in &runs.0 {
        check_profile(r, &runs.1);
    }
    // Node-by-node submits compute the same forward.
    assert_eq!(model.forward(&rows).unwrap().logits, reference);
}

#[test]
fn kernel_bench_counts_and_rates() {
    let gpu = test_gpu();
    let g = kernels::matmul_graph(gpu, 33, 17, 9, false, 3).unwrap();
    assert_eq!(g.node_count(), 3);
    let r = kernels::time_graph(gpu, "matmul", &g, 2).unwrap();
    assert_eq!(r.flops, 2 * 33 * 17 * 9);
    assert_eq!(r.bytes, 4 * (33 * 9 + 33 * 17 + 17 * 9));
    assert_eq!(r.samples, 6, "3 dispatches × 2 runs");
    assert!(r.gflops.is_finite() && r.gflops > 0.0 && r.median_us > 0.0);

    let g = kernels::softmax_graph(gpu, 24, 40, 1).unwrap();
    let n = g.nodes().next().unwrap().clone();
    assert_eq!(
        (n.kind, n.flops, n.bytes),
        ("softmax", 24 * 40 * 6, 8 * 24 * 40)
    );
    let g = kernels::layer_norm_graph(gpu, 5, 48, 1).unwrap();
    let n = g.nodes().next().unwrap().clone();
    assert_eq!(
        (n.kind, n.flops, n.bytes),
        ("layer_norm", 5 * 48 * 8, 4 * 5 * 48 * 3 + 8 * 48)
    );

    assert!(kernels::matmul_graph(gpu, 0, 4, 4, false, 1).is_err());
}

/// The peak kernels run at small sizes and check their own results; a ceilings file round-trips,
/// and files from before the FMA and streaming-read peaks (or of another format) are clear
/// errors that say to rerun `bench ceilings`.
#[test]
fn peaks_measure_and_ceilings_file_round_trip() {
    let gpu = test_gpu();
    let fma = ceilings::fma_peak_sized(gpu, false, 4096, 2_000.0, 1).unwrap();
    assert!(fma.gflops.is_finite() && fma.gflops > 0.0, "{fma:?}");
    assert_eq!(
        fma.kernel.flops(),
        2 * 4096 * 32 * 4 * fma.kernel.loops as u64
    );
    if gpu.has_f16() {
        let h = ceilings::fma_peak_sized(gpu, true, 4096, 2_000.0, 1).unwrap();
        assert!(h.gflops.is_finite() && h.gflops > 0.0, "{h:?}");
    }
    let (read, read_bytes) = ceilings::read_bandwidth(gpu, (4 << 20) + 7, 1).unwrap();
    assert_eq!(read_bytes, 4 << 20, "rounded down to whole vec4s");
    assert!(read.is_finite() && read > 0.0);
    let (gbps, bytes) = ceilings::copy_bandwidth(gpu, 1 << 20, 1).unwrap();
    assert_eq!(bytes, 1 << 20);
    assert!(gbps.is_finite() && gbps > 0.0);

    let c = Ceilings {
        format: FORMAT,
        adapter: gpu.info.name.clone(),
        backend: "vulkan".into(),
        // Values exact in binary: serde_json's float printing does not round-trip every f64.
        f32_fma_gflops: 28.5,
        f16_fma_gflops: None,
        coop_gflops: None,
        read_gbps: 1.625,
        read_bytes,
        copy_gbps: 9.0,
        copy_bytes: bytes,
        matmul_gflops: 12.5,
        matmul_shape: "matmul 512x512x512 W f32".into(),
        timing: "gpu_timestamps".into(),
        measured_at: 1,
    };
    let dir = std::env::temp_dir().join(format!("wgformer-ceil-{}", std::process::id()));
    let path = dir.join("c.json");
    c.save(&path).unwrap();
    let back = Ceilings::load(&path).unwrap();
    assert_eq!(back.matmul_gflops, 12.5);
    assert_eq!((back.f32_fma_gflops, back.read_gbps), (28.5, 1.625));
    assert_eq!((back.f16_fma_gflops, back.coop_gflops), (None, None));

    // Written without the optional fields: they read as None.
    let mut v = serde_json::to_value(&c).unwrap();
    v.as_object_mut().unwrap().remove("coop_gflops");
    v.as_object_mut().unwrap().remove("f16_fma_gflops");
    std::fs::write(&path, v.to_string()).unwrap();
    assert_eq!(Ceilings::load(&path).unwrap().coop_gflops, None);

    // A file as wgformer wrote it before this format.
    let old = r#"{"adapter": "x", "backend": "vulkan", "matmul_gflops": 0.7,
        "matmul_shape": "matmul 512x512x512 W f16", "copy_gbps": 13.97, "copy_bytes": 67108864,
        "timing": "gpu_timestamps", "measured_at": 1}"#;
    let mut future = serde_json::to_value(&c).unwrap();
    future["format"] = (FORMAT + 1).into();
    let mut missing = serde_json::to_value(&c).unwrap();
    missing.as_object_mut().unwrap().remove("read_gbps");
    for (text, says) in [
        (old.to_string(), "older wgformer"),
        (future.to_string(), "format"),
        (missing.to_string(), "read_gbps"),
        ("not json".to_string(), "not a ceilings file"),
        ("[1, 2]".to_string(), "not a ceilings file"),
    ] {
        std::fs::write(&path, &text).unwrap();
        let err = Ceilings::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("rerun `wgformer bench ceilings`") && err.contains(says),
            "{text}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_minilm_folder_has_the_real_parameter_count_and_runs() {
    let dir = std::env::temp_dir().join(format!("wgformer-random-{}", std::process::id()));
    RandomConfig::MiniLmL6.write(&dir).unwrap();
    let model = Model::load(&dir, test_gpu());
    let _ = std::fs::remove_dir_all(&dir);
    let model = model.unwrap();
    // Embeddings 30522·384 + 512·384 + 2·384 + LN 2·384; 6 layers of 4·(384² + 384)
    // + 2·384·1536 + 1536 + 384 + 2 LNs; pooler 384² + 384; classifier 2·384 + 2.
    let layer = 4 * (384 * 384 + 384) + 2 * 384 * 1536 + 1536 + 384 + 4 * 384;
    let want = 30522 * 384 + 512 * 384 + 2 * 384 + 2 * 384 + 6 * layer + 384 * 384 + 384 + 770;
    assert_eq!(model.parameters, want);
    assert_eq!(model.parameters, 22_713_986);
    let out = model
        .forward(&random_rows(1, 8, model.config.vocab_size, 1).unwrap())
        .unwrap();
    assert_eq!(out.logits[0].len(), 2);
    assert!(out.logits[0].iter().all(|x| x.is_finite()));

    assert!(random_rows(0, 8, 100, 1).is_err());
    let rows = random_rows(3, 5, 30522, 2).unwrap();
    assert!(rows
        .iter()
        .all(|r| r.ids.len() == 5 && r.ids[0] == 101 && r.ids[4] == 102));
}
