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

/// A pad id inside the text (`<pad>` typed by the user, or in raw ids) takes position
/// `padding_idx` and the tokens after it shift down, as transformers'
/// `create_position_ids_from_input_ids` (`cumsum(ids != pad) * (ids != pad) + pad`) gives. The
/// reference is computed here on the CPU from the safetensors: word + position (by that formula)
/// + token-type row 0, then LayerNorm, against the run's embedding output (hidden state 0).
#[test]
fn roberta_positions_skip_pad_ids_inside_the_text() {
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny/tiny-roberta");
    let model = Model::load(&dir, &gpu).unwrap();
    let tok = wgformer::pipelines::tokenize::TextTokenizer::load(&dir).unwrap();
    let pad = model.config.pad_token_id as u32;
    assert_eq!(pad, 1);
    let typed = tok
        .encode("a <pad> b <pad><pad> c", None, None)
        .unwrap()
        .ids;
    let inner = typed[1..typed.len() - 1]
        .iter()
        .filter(|&&i| i == pad)
        .count();
    assert_eq!(
        inner, 3,
        "the tokenizer should map `<pad>` to the pad id: {typed:?}"
    );
    let rows = vec![
        Sequence::new(typed),
        Sequence::new(vec![
            pad, 5, 6, pad, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, pad,
        ]),
        Sequence::new(vec![0, 5, 2]), // no pad id: positions pad+1.. as before
    ];
    let out = model.forward_with_hidden(&rows).unwrap();

    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let table = |name: &str| -> Vec<f32> {
        let t = st.tensor(name).unwrap();
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        bytemuck::pod_collect_to_vec(t.data())
    };
    let h = model.config.hidden_size;
    let word = table("roberta.embeddings.word_embeddings.weight");
    let position = table("roberta.embeddings.position_embeddings.weight");
    let token_type = table("roberta.embeddings.token_type_embeddings.weight");
    let gamma = table("roberta.embeddings.LayerNorm.weight");
    let beta = table("roberta.embeddings.LayerNorm.bias");
    let eps = model.config.layer_norm_eps as f64;
    for (r, row) in rows.iter().enumerate() {
        let mut seen = 0;
        let mut want = vec![];
        for &id in &row.ids {
            let not_pad = u32::from(id != pad);
            seen += not_pad;
            let pos = (seen * not_pad + pad) as usize;
            let x: Vec<f64> = (0..h)
                .map(|j| (word[id as usize * h + j] + position[pos * h + j] + token_type[j]) as f64)
                .collect();
            let mean = x.iter().sum::<f64>() / h as f64;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
            let inv = 1.0 / (var + eps).sqrt();
            want.extend(
                x.iter()
                    .enumerate()
                    .map(|(j, v)| ((v - mean) * inv * gamma[j] as f64 + beta[j] as f64) as f32),
            );
        }
        let d = max_abs(&out.hidden_states[0][r], &want);
        assert!(
            d < TOL,
            "row {r} {:?}: embeddings max |diff| {d:e}",
            row.ids
        );
    }
}
