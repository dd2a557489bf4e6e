//! The token-classification and masked-LM heads on the tiny2 models: every layer's hidden state
//! and the per-token logits of the NER models against transformers' goldens on a right-padded
//! batch, and the masked-LM head on selected tokens equal to the same head on every token.

mod common;
use common::*;
use wgformer::models::config::HeadKind;
use wgformer::models::{Model, Readback, Sequence};

/// NER models whose architectures wgformer runs. `tiny-deberta-v2-ner` is left out on purpose:
/// DeBERTa-v2's disentangled attention is not implemented (it needs its own attention kernels).
const NER: [&str; 3] = ["tiny-bert-ner", "tiny-roberta-ner", "tiny-xlm-roberta-ner"];

#[test]
fn ner_models_match_golden_hidden_states_and_token_logits() {
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny2");
    let meta = json(dir.join("tiny-golden.json"));
    let golden = Golden::open(dir.join("tiny-golden.safetensors"));
    for name in NER {
        let case = meta["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["model"] == name)
            .unwrap_or_else(|| panic!("{name} not in tiny2/tiny-golden.json"));
        let model = Model::load(&dir.join(name), &gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.config.head, HeadKind::TokenClassification, "{name}");
        assert_eq!(
            model.config.architecture,
            case["architecture"].as_str().unwrap()
        );
        let rows = golden_rows(case);
        let lens: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        assert!(lens.windows(2).any(|w| w[0] != w[1]), "{name}: not padded");
        let out = model.forward_with_hidden(&rows).unwrap();
        let states = case["hidden_layers"].as_u64().unwrap() as usize;
        assert_eq!(out.hidden_states.len(), states, "{name}");
        for k in 0..states {
            let (shape, want) = golden.get(&format!("{name}.hidden.{k}"));
            let (seq, h) = (shape[1], shape[2]);
            for (r, len) in lens.iter().enumerate() {
                let w = &want[r * seq * h..(r * seq + len) * h];
                let d = max_abs(&out.hidden_states[k][r], w);
                assert!(d < TOL, "{name} hidden {k} row {r}: max |diff| {d:e}");
            }
        }
        let (shape, want) = golden.get(&format!("{name}.logits"));
        let (seq, labels) = (shape[1], shape[2]);
        assert_eq!(labels, model.config.num_labels());
        for (r, len) in lens.iter().enumerate() {
            let w = &want[r * seq * labels..(r * seq + len) * labels];
            let d = max_abs(&out.logits[r], w);
            assert!(d < TOL, "{name} logits row {r}: max |diff| {d:e}");
        }
        // The head-only graph reads the same logits.
        let plain = model.forward(&rows).unwrap();
        assert_eq!(plain.logits, out.logits, "{name}");
        // Selected tokens: the same numbers, in the order asked.
        let pick = [(2, 1), (0, 16), (1, 0), (0, 3)];
        let sel = model.forward_selected(&rows, &pick).unwrap();
        for (k, &(r, t)) in pick.iter().enumerate() {
            let full = &out.logits[r][t * labels..(t + 1) * labels];
            let d = max_abs(&sel.logits[k], full);
            assert!(d < 1e-6, "{name} selected ({r},{t}): max |diff| {d:e}");
        }
    }
}

/// The masked-LM head of every MLM architecture: logits of selected tokens (the fill-mask
/// path, one-hot gather then the head) equal the head run on every token, and reading the
/// hidden states of an MLM checkpoint skips the vocabulary-wide head.
#[test]
fn masked_lm_head_on_selected_tokens_equals_every_token() {
    let gpu = gpu();
    let dir = shared().join("fixtures/tiny2");
    for name in ["tiny-bert-mlm", "tiny-distilbert-mlm", "tiny-roberta-mlm"] {
        let model = Model::load(&dir.join(name), &gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.config.head, HeadKind::MaskedLm, "{name}");
        let vocab = model.config.vocab_size;
        let rows = vec![
            Sequence::new((5..22).collect()),
            Sequence::new(vec![7, 8, 9, 10, 11]),
            Sequence::new(vec![12, 13]),
        ];
        let full = model.forward(&rows).unwrap();
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(full.logits[r].len(), row.ids.len() * vocab, "{name}");
        }
        for pick in [
            vec![(1, 2)],
            vec![(0, 0), (2, 1), (0, 16)],
            (0..5).map(|t| (1, t)).chain([(2, 0), (0, 9)]).collect(),
        ] {
            let sel = model.forward_selected(&rows, &pick).unwrap();
            assert_eq!(sel.logits.len(), pick.len());
            for (k, &(r, t)) in pick.iter().enumerate() {
                let want = &full.logits[r][t * vocab..(t + 1) * vocab];
                let d = max_abs(&sel.logits[k], want);
                assert!(d < 1e-5, "{name} ({r},{t}): max |diff| {d:e}");
            }
        }
        assert!(model.forward_selected(&rows, &[(2, 2)]).is_err());
        assert!(model.forward_selected(&rows, &[(3, 0)]).is_err());
        let hidden = model.forward_reading(&rows, Readback::LastHidden).unwrap();
        assert!(hidden.logits.iter().all(Vec::is_empty), "{name}");
        assert_eq!(hidden.last_hidden[1].len(), 5 * model.config.hidden_size);
    }
}
