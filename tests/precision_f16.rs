//! The f16 precision path (`--precision f16`): matmul inputs rounded to f16 and multiplied on
//! cooperative matrices where the adapter has them, f32 accumulators and statistics. It must give
//! transformers' answers and labels on at least 99.5 % of the fixtures, and SQuAD EM/F1 within
//! 0.3 of transformers' own.
//!
//! CI runs this file a second time on Mesa 26's lavapipe (`scripts/coopmat-lavapipe.sh`) with
//! `WGFORMER_TEST_REQUIRE_COOP=1`, so the cooperative-matrix kernels really run; on an adapter
//! without them the f16 path falls back to the portable f32 kernels and this checks that path.

mod common;
use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use wgformer::gpu::Precision;
use wgformer::models::config::Family;
use wgformer::models::Model;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::{QaInput, TextInput};
use wgformer::pipelines::qa::QaParams;
use wgformer::pipelines::squad;
use wgformer::pipelines::{Classifier, QuestionAnswerer};
use wgformer::Gpu;

/// Every STEP-th SQuAD question (108 of the 2897, every article): the cooperative-matrix kernels
/// run slowly on lavapipe, so CI checks a third of the f32 test's questions.
const STEP: usize = 27;

fn f16_gpu() -> Arc<Gpu> {
    let gpu = wgformer::gpu::test_gpu_f16().clone();
    assert_eq!(gpu.precision(), Precision::F16);
    eprintln!(
        "f16 path on {}: {}",
        gpu.describe(),
        match gpu.coop() {
            Some(c) => format!("cooperative matrices {0}x{0}", c.size),
            None => "no cooperative matrices, portable kernels".into(),
        }
    );
    gpu
}

/// Share of `agree` out of `n` must be at least 99.5 %.
fn at_least_995(what: &str, agree: usize, n: usize, diffs: &[String]) {
    eprintln!("{what}: {agree}/{n} equal to transformers'");
    assert!(
        agree as f64 >= 0.995 * n as f64,
        "{what}: only {agree} of {n} equal transformers':\n{}",
        diffs.join("\n")
    );
}

/// Tiny models through every layer: f16 rounding of matmul inputs (relative 2^-11 per value)
/// keeps layer-normed hidden states within 2e-2 and logits within 2e-2 of the f32 goldens,
/// while a wrong kernel (a dropped tile, a transposed operand) is off by order 1.
#[test]
fn tiny_models_stay_close_to_goldens_in_f16() {
    let families = [
        ("tiny-bert", Family::Bert),
        ("tiny-roberta", Family::Roberta),
        ("tiny-albert", Family::Albert),
    ];
    close_in_f16("fixtures/tiny", &families);
}

/// The same for the composed architectures: MPNet's relative bias, DeBERTa's disentangled
/// terms, ModernBERT's rotary
/// embedding rewritten in f16, GeGLU and pre-LN stream (f32 sums of f16 branch outputs).
#[test]
fn tiny2_architectures_stay_close_to_goldens_in_f16() {
    let families = [
        ("tiny-mpnet", Family::Mpnet),
        ("tiny-deberta-v2", Family::DebertaV2),
        ("tiny-modernbert", Family::ModernBert),
        ("tiny-modernbert-mean", Family::ModernBert),
    ];
    close_in_f16("fixtures/tiny2", &families);
}

fn close_in_f16(fixtures: &str, families: &[(&str, Family)]) {
    let gpu = f16_gpu();
    let dir = shared().join(fixtures);
    let meta = json(dir.join("tiny-golden.json"));
    let golden = Golden::open(dir.join("tiny-golden.safetensors"));
    for &(name, family) in families {
        let case = meta["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == name)
            .unwrap();
        let model = Model::load(&dir.join(name), &gpu).unwrap();
        assert_eq!(model.config.family, family);
        let rows = golden_rows(case);
        let out = model.forward_with_hidden(&rows).unwrap();
        let states = out.hidden_states.len();
        let mut worst = 0f32;
        for k in 0..states {
            let (shape, want) = golden.get(&format!("{name}.hidden.{k}"));
            let (seq, h) = (shape[1], shape[2]);
            for (r, row) in rows.iter().enumerate() {
                let len = row.ids.len();
                let d = max_abs(
                    &out.hidden_states[k][r],
                    &want[r * seq * h..(r * seq + len) * h],
                );
                worst = worst.max(d);
                assert!(d < 2e-2, "{name} hidden {k} row {r}: max |diff| {d:e}");
            }
        }
        let (_, want) = golden.get(&format!("{name}.logits"));
        let d = max_abs(&out.logits.concat(), &want);
        assert!(d < 2e-2, "{name} logits: max |diff| {d:e}");
        eprintln!("{name}: f16 worst hidden diff {worst:e}, logits {d:e}");
    }
}

#[test]
fn sst2_labels_in_f16() {
    let rows = jsonl("sst2-visible.hf.jsonl");
    let gpu = f16_gpu();
    let clf = Classifier::load(&models().join("minilm-sst2"), &gpu, None).unwrap();
    let inputs: Vec<TextInput> = rows
        .iter()
        .map(|r| TextInput {
            text: r["sentence"].as_str().unwrap().to_owned(),
            text_pair: None,
        })
        .collect();
    let out = clf.classify(&inputs, TopK::All, 32, &|_| {}).unwrap();
    let (mut agree, mut worst, mut diffs) = (0, 0f64, vec![]);
    for (i, (r, got)) in rows.iter().zip(&out).enumerate() {
        let got = got.as_ref().unwrap();
        let want = r["hf"].as_array().unwrap();
        let same = got
            .iter()
            .zip(want)
            .all(|(g, w)| g.label == w["label"].as_str().unwrap());
        if same {
            agree += 1;
        } else {
            diffs.push(format!("sentence {i} {:?}: {got:?}", r["sentence"]));
        }
        for (g, w) in got.iter().zip(want) {
            worst = worst.max((g.score - w["score"].as_f64().unwrap()).abs());
        }
    }
    eprintln!("sst2 f16: worst score diff {worst:e}");
    at_least_995("sst2 f16 label order", agree, rows.len(), &diffs);
}

#[test]
fn squad_answers_and_scores_in_f16() {
    let all = jsonl("squad-visible.hf.jsonl");
    let rows: Vec<&serde_json::Value> = all.iter().step_by(STEP).collect();
    let gpu = f16_gpu();
    let qa = QuestionAnswerer::load(&models().join("distilminilm-squad"), &gpu).unwrap();
    let inputs: Vec<QaInput> = rows
        .iter()
        .map(|r| QaInput {
            id: r["id"].as_str().unwrap().to_owned(),
            question: r["question"].as_str().unwrap().to_owned(),
            context: r["context"].as_str().unwrap().to_owned(),
        })
        .collect();
    let out = qa
        .answer(&inputs, &QaParams::default(), 16, &|_| {})
        .unwrap();
    let (mut agree, mut diffs) = (0, vec![]);
    let mut ours = HashMap::new();
    let mut theirs = HashMap::new();
    for (r, got) in rows.iter().zip(&out) {
        let id = r["id"].as_str().unwrap().to_owned();
        let got = &got.as_ref().unwrap()[0];
        let want = r["answer"].as_str().unwrap();
        if got.answer == want && got.start == r["start"].as_u64().unwrap() as usize {
            agree += 1;
        } else {
            diffs.push(format!("{id}: {:?} vs transformers {want:?}", got.answer));
        }
        ours.insert(id.clone(), got.answer.clone());
        theirs.insert(id, want.to_owned());
    }
    at_least_995("squad f16 answers", agree, rows.len(), &diffs);
    // EM/F1 against the gold answers of the same questions, ours vs transformers'.
    let data = squad::load_dataset(shared().join("data/squad-v1.1-dev-visible.json")).unwrap();
    let subset: Vec<_> = data
        .into_iter()
        .filter(|q| ours.contains_key(&q.id))
        .collect();
    assert_eq!(subset.len(), rows.len());
    let (a, b) = (
        squad::evaluate(&subset, &ours),
        squad::evaluate(&subset, &theirs),
    );
    eprintln!(
        "squad f16: EM {:.3} F1 {:.3}; transformers EM {:.3} F1 {:.3}",
        a.exact_match, a.f1, b.exact_match, b.f1
    );
    assert!(
        (a.exact_match - b.exact_match).abs() <= 0.3,
        "EM {a:?} vs {b:?}"
    );
    assert!((a.f1 - b.f1).abs() <= 0.3, "F1 {a:?} vs {b:?}");
}
