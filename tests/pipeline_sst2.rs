//! The text-classification pipeline end to end on SST-2 (minilm-sst2): every visible dev
//! sentence, batched, against transformers' pipeline output (top_k=None) and raw logits.

mod common;
use common::*;
use std::time::Instant;
use wgformer::models::Readback;
use wgformer::models::Sequence;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::{forward_all, Classifier};

const TOL: f64 = 1e-4;

#[test]
fn sst2_pipeline_matches_transformers() {
    let rows = jsonl("sst2-visible.hf.jsonl");
    let summary = json(shared().join("fixtures/sst2-visible.hf.summary.json"));
    assert_eq!(rows.len() as u64, summary["sentences"].as_u64().unwrap());
    let clf = Classifier::load(&models().join("minilm-sst2"), &gpu(), None)
        .unwrap_or_else(|e| panic!("loading minilm-sst2: {e}"));
    let inputs: Vec<TextInput> = rows
        .iter()
        .map(|r| TextInput {
            text: r["sentence"].as_str().unwrap().to_owned(),
            text_pair: None,
        })
        .collect();

    let t = Instant::now();
    let out = clf.classify(&inputs, TopK::All, 32, &|_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), rows.len());

    let (mut worst, mut correct) = (0f64, 0usize);
    for (i, (r, got)) in rows.iter().zip(&out).enumerate() {
        let got = got.as_ref().unwrap_or_else(|e| panic!("sentence {i}: {e}"));
        let want = r["hf"].as_array().unwrap();
        let got_labels: Vec<&str> = got.iter().map(|l| l.label.as_str()).collect();
        let want_labels: Vec<&str> = want.iter().map(|w| w["label"].as_str().unwrap()).collect();
        assert_eq!(
            got_labels, want_labels,
            "sentence {i} {:?}: label order",
            r["sentence"]
        );
        for (g, w) in got.iter().zip(want) {
            let d = (g.score - w["score"].as_f64().unwrap()).abs();
            worst = worst.max(d);
            assert!(
                d < TOL,
                "sentence {i} {:?} label {}: score {} vs transformers {} (|diff| {d:e})",
                r["sentence"],
                g.label,
                g.score,
                w["score"]
            );
        }
        let gold = r["label"].as_u64().unwrap() as usize;
        if got[0].label == clf.model.config.id2label[gold] {
            correct += 1;
        }
    }
    let acc = correct as f64 / rows.len() as f64;
    eprintln!(
        "sst2: {} sentences in {secs:.1}s ({:.1} ms each), worst score diff {worst:e}, accuracy {acc}",
        rows.len(),
        1e3 * secs / rows.len() as f64
    );
    assert_eq!(
        acc,
        summary["accuracy"].as_f64().unwrap(),
        "accuracy differs from transformers' ({correct}/{})",
        rows.len()
    );

    // Raw logits of the same batched run (forward_all, as the classifier runs it).
    let seqs: Vec<Sequence> = inputs
        .iter()
        .map(|i| {
            let e = clf.tokenizer.encode(&i.text, None, None).unwrap();
            Sequence {
                ids: e.ids,
                type_ids: e.type_ids,
            }
        })
        .collect();
    let outs = forward_all(&clf.model, &seqs, 32, Readback::Head, &|_| {}).unwrap();
    assert!(
        outs.iter().all(|o| o.last_hidden.is_empty()),
        "classification reads back the logits only"
    );
    let mut worst_logit = 0f32;
    for (i, (r, o)) in rows.iter().zip(&outs).enumerate() {
        let want: Vec<f32> = r["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let d = max_abs(&o.logits, &want);
        worst_logit = worst_logit.max(d);
        assert!(
            (d as f64) < TOL,
            "sentence {i} {:?}: logits {:?} vs transformers {want:?} (max |diff| {d:e})",
            r["sentence"],
            o.logits
        );
    }
    eprintln!("sst2: worst logit diff {worst_logit:e}");
}
