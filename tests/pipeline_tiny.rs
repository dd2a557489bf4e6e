//! The text-classification pipeline on the seven tiny random models: tokenizer ids, label order
//! and scores against transformers 5 (`top_k=None`, truncation on) for six texts each (empty,
//! non-ASCII, a pair, one past the 64-position limit...).

mod common;
use common::*;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::Classifier;

const TOL: f64 = 1e-4;
const MODELS: [&str; 7] = [
    "tiny-bert",
    "tiny-bert-bf16",
    "tiny-distilbert",
    "tiny-roberta",
    "tiny-xlm-roberta",
    "tiny-electra",
    "tiny-albert",
];

#[test]
fn tiny_models_classify_like_transformers() {
    let rows = jsonl("tiny/tiny-pipeline.hf.jsonl");
    let gpu = gpu();
    let mut failures = Vec::new();
    let mut checked = 0;
    for name in MODELS {
        let cases: Vec<&serde_json::Value> = rows.iter().filter(|r| r["model"] == name).collect();
        assert_eq!(
            cases.len(),
            6,
            "{name}: expected 6 texts in tiny-pipeline.hf.jsonl"
        );
        let dir = shared().join("fixtures/tiny").join(name);
        let clf = Classifier::load(&dir, &gpu, None)
            .unwrap_or_else(|e| panic!("{name}: loading {}: {e}", dir.display()));
        let inputs: Vec<TextInput> = cases
            .iter()
            .map(|r| TextInput {
                text: r["text"].as_str().unwrap().to_owned(),
                text_pair: r["text_pair"].as_str().map(str::to_owned),
            })
            .collect();
        // Tokenizer ids exactly as the pipeline (truncation to model_max_length).
        for (r, inp) in cases.iter().zip(&inputs) {
            let enc = clf
                .tokenizer
                .encode(&inp.text, inp.text_pair.as_deref(), None)
                .unwrap_or_else(|e| panic!("{name} {:?}: {e}", inp.text));
            if enc.ids != ids(&r["input_ids"]) {
                failures.push(format!(
                    "{name} {:?}/{:?}: ids {:?} vs transformers {:?}",
                    inp.text, inp.text_pair, enc.ids, r["input_ids"]
                ));
            }
        }
        // Batched (all six together) and one at a time.
        let batched = clf.classify(&inputs, TopK::All, 8, &|_| {}).unwrap();
        for (k, (r, inp)) in cases.iter().zip(&inputs).enumerate() {
            let alone = clf
                .classify(std::slice::from_ref(inp), TopK::All, 1, &|_| {})
                .unwrap();
            let want = r["hf"].as_array().unwrap();
            for (how, got) in [("batched", &batched[k]), ("alone", &alone[0])] {
                let got = match got {
                    Ok(g) => g,
                    Err(e) => {
                        failures.push(format!("{name} {:?} ({how}): error {e}", inp.text));
                        continue;
                    }
                };
                let gl: Vec<&str> = got.iter().map(|l| l.label.as_str()).collect();
                let wl: Vec<&str> = want.iter().map(|w| w["label"].as_str().unwrap()).collect();
                let diff = got
                    .iter()
                    .zip(want)
                    .map(|(g, w)| (g.score - w["score"].as_f64().unwrap()).abs())
                    .fold(0f64, f64::max);
                if gl != wl || diff >= TOL {
                    failures.push(format!(
                        "{name} {:?}/{:?} ({how}): got {:?} vs transformers {:?} (max |diff| {diff:e})",
                        inp.text,
                        inp.text_pair,
                        got.iter().map(|l| (&l.label, l.score)).collect::<Vec<_>>(),
                        want
                    ));
                }
                checked += 1;
            }
        }
    }
    eprintln!(
        "tiny: {checked} outputs checked, {} failures",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
