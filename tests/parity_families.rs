//! Parity with Hugging Face transformers for the RoBERTa, XLM-RoBERTa (f16 weights), ELECTRA
//! (embedding projection) and ALBERT (factorised embeddings, shared layers, gelu_new) families:
//! the tiny golden batch of three right-padded rows, every hidden state at the real positions and
//! the logits, within 1e-4.

mod common;
use common::*;
use wgformer::models::config::Family;
use wgformer::models::{Model, Sequence};

const TOL: f32 = 1e-4;

/// The golden case for `name` as unpadded rows (ids, and token types where the model has them).
fn golden_rows(case: &serde_json::Value) -> Vec<Sequence> {
    let masks: Vec<Vec<u32>> = case["attention_mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    case["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let len = masks[r].iter().filter(|m| **m == 1).count();
            // Right padding: the real tokens come first.
            assert!(
                masks[r][..len].iter().all(|m| *m == 1),
                "row {r} not right-padded"
            );
            let type_ids = if case["token_type_ids"].is_null() {
                vec![]
            } else {
                ids(&case["token_type_ids"][r])[..len].to_vec()
            };
            Sequence {
                ids: ids(row)[..len].to_vec(),
                type_ids,
            }
        })
        .collect()
}

fn tiny_parity(name: &str, family: Family) {
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny");
    let meta = json(dir.join("tiny-golden.json"));
    let golden = Golden::open(dir.join("tiny-golden.safetensors"));
    let case = meta["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == name)
        .unwrap_or_else(|| panic!("{name} not in tiny-golden.json"));
    let model = Model::load(&dir.join(name), &gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(model.config.family, family);
    assert_eq!(
        model.config.architecture,
        case["architecture"].as_str().unwrap()
    );
    let rows = golden_rows(case);
    let lens: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
    assert!(
        lens.windows(2).any(|w| w[0] != w[1]),
        "{name}: the batch must be padded"
    );
    let out = model.forward_with_hidden(&rows).unwrap();
    let states = case["hidden_layers"].as_u64().unwrap() as usize;
    assert_eq!(
        out.hidden_states.len(),
        states,
        "{name}: hidden state count"
    );
    for k in 0..states {
        let (shape, want) = golden.get(&format!("{name}.hidden.{k}"));
        let (seq, h) = (shape[1], shape[2]);
        assert_eq!(h, model.config.hidden_size, "{name} hidden {k} width");
        for (r, len) in lens.iter().enumerate() {
            let w = &want[r * seq * h..(r * seq + len) * h];
            let d = max_abs(&out.hidden_states[k][r], w);
            assert!(d < TOL, "{name} hidden {k} row {r}: max |diff| {d:e}");
        }
    }
    let (shape, want) = golden.get(&format!("{name}.logits"));
    assert_eq!(shape, [rows.len(), model.config.num_labels()]);
    let got: Vec<f32> = out.logits.concat();
    let d = max_abs(&got, &want);
    assert!(d < TOL, "{name} logits: max |diff| {d:e}");
    // The last hidden state is the last captured one.
    for r in 0..rows.len() {
        assert_eq!(out.last_hidden[r], out.hidden_states[states - 1][r]);
    }
}

#[test]
fn tiny_roberta_matches_golden_batch() {
    tiny_parity("tiny-roberta", Family::Roberta);
}

#[test]
fn tiny_xlm_roberta_f16_matches_golden_batch() {
    tiny_parity("tiny-xlm-roberta", Family::Roberta);
}

#[test]
fn tiny_electra_matches_golden_batch() {
    tiny_parity("tiny-electra", Family::Electra);
}

#[test]
fn tiny_albert_matches_golden_batch() {
    tiny_parity("tiny-albert", Family::Albert);
}

/// RoBERTa reserves `pad_token_id + 1` positions: the longest row it accepts is that much
/// shorter than the position table, and one past it is refused with a message.
#[test]
fn roberta_refuses_rows_past_its_positions() {
    let gpu = gpu();
    let model = Model::load(&shared().join("fixtures/tiny/tiny-roberta"), &gpu).unwrap();
    let max = model.max_sequence();
    assert_eq!(
        max,
        model.config.max_positions - model.config.pad_token_id - 1
    );
    let ok = model.forward(&[Sequence::new(vec![5; max])]).unwrap();
    assert_eq!(ok.logits[0].len(), model.config.num_labels());
    let e = model
        .forward(&[Sequence::new(vec![5; max + 1])])
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("at most {max} positions")), "{e}");
}
