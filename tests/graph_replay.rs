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
