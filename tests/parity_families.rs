//! Parity with Hugging Face transformers for the RoBERTa, XLM-RoBERTa (f16 weights), ELECTRA
//! (embedding projection) and ALBERT (factorised embeddings, shared layers, gelu_new) families:
//! the tiny golden batch of three right-padded rows, every hidden state at the real positions and
//! the logits, within 1e-4.

mod common;
use common::*;
use wgformer::models::config::Family;
use wgformer::models::{Model, Sequence};

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
