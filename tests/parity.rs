//! Model parity with Hugging Face transformers (f32): every layer's hidden states and the logits.

mod common;
use common::*;
use wgformer::models::config::Family;
use wgformer::models::{Model, Sequence};

/// The four golden cases of `hidden-states.*`: both task models, one input at a time and as a
/// padded batch per model.
#[test]
fn task_models_match_hidden_states_layer_by_layer() {
    task_models_parity(&gpu());
}

/// The same with the kernel variants real GPUs run (workgroup-memory tiles), whatever the test
/// adapter would pick for itself.
#[test]
fn task_models_match_hidden_states_with_gpu_kernels_forced() {
    let gpu = wgformer::gpu::test_gpu_gpu_kernels().clone();
    assert!(!gpu.cpu_kernels());
    task_models_parity(&gpu);
}

fn task_models_parity(gpu: &std::sync::Arc<wgformer::Gpu>) {
    let meta = json(shared().join("fixtures/hidden-states.json"));
    let golden = Golden::open(shared().join("fixtures/hidden-states.safetensors"));
    for model_name in ["minilm-sst2", "distilminilm-squad"] {
        let model = Model::load(&models().join(model_name), gpu).unwrap();
        let cases: Vec<&serde_json::Value> = meta["cases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["model"] == model_name)
            .collect();
        assert!(cases.len() >= 2);
        let rows: Vec<Sequence> = cases
            .iter()
            .map(|c| Sequence {
                ids: ids(&c["input_ids"]),
                type_ids: if c["token_type_ids"].is_null() {
                    vec![]
                } else {
                    ids(&c["token_type_ids"])
                },
            })
            .collect();
        let batched = model.forward_with_hidden(&rows).unwrap();
        for (r, (case, row)) in cases.iter().zip(&rows).enumerate() {
            let n = case["case"].as_u64().unwrap();
            let alone = model
                .forward_with_hidden(std::slice::from_ref(row))
                .unwrap();
            let layers = case["hidden_layers"].as_u64().unwrap() as usize;
            assert_eq!(alone.hidden_states.len(), layers);
            for k in 0..layers {
                let (_, want) = golden.get(&format!("case{n}.hidden.{k}"));
                let d = max_abs(&alone.hidden_states[k][0], &want);
                assert!(
                    d < TOL,
                    "{model_name} case {n} hidden {k}: max |diff| {d:e}"
                );
                // Batched with rows of other lengths: the same numbers.
                let db = max_abs(&batched.hidden_states[k][r], &alone.hidden_states[k][0]);
                assert!(
                    db < 1e-5,
                    "{model_name} case {n} hidden {k}: batched differs by {db:e}"
                );
            }
            if model_name == "distilminilm-squad" {
                let (start, end) = alone.qa_logits(0);
                let (_, ws) = golden.get(&format!("case{n}.start_logits"));
                let (_, we) = golden.get(&format!("case{n}.end_logits"));
                assert!(max_abs(&start, &ws) < TOL, "case {n} start logits");
                assert!(max_abs(&end, &we) < TOL, "case {n} end logits");
                assert_eq!(batched.qa_logits(r).0.len(), start.len());
            } else {
                let (_, want) = golden.get(&format!("case{n}.logits"));
                let d = max_abs(&alone.logits[0], &want);
                assert!(d < TOL, "case {n} logits: max |diff| {d:e}");
                assert!(max_abs(&batched.logits[r], &alone.logits[0]) < 1e-5);
            }
        }
    }
}

#[test]
fn tiny_bert_matches_golden_batch() {
    tiny_parity("tiny-bert", Family::Bert);
}

#[test]
fn tiny_bert_bf16_gelu_new_matches_golden_batch() {
    tiny_parity("tiny-bert-bf16", Family::Bert);
}

#[test]
fn tiny_distilbert_matches_golden_batch() {
    tiny_parity("tiny-distilbert", Family::DistilBert);
}
