//! RoBERTa family (`model_type: roberta`, `xlm-roberta`, `camembert`; all stored under `roberta.`):
//! BERT's layers, a one-row token-type table, and padding-aware position ids that start at
//! `pad_token_id + 1` ([`Positions::AfterPadding`]). Classification is
//! `out_proj(tanh(dense(first token)))` under `classifier.`; QA is `qa_outputs` and token
//! classification `classifier` on every token; the masked-LM head is `lm_head`: dense, the exact
//! erf gelu whatever `hidden_act` says, layer_norm, then the decoder tied to the word embeddings
//! plus `lm_head.bias`.

use super::bert;
use super::bert::{first_token_classifier, masked_lm, token_classifier};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{HeadSpec, LinSpec, NetworkSpec, NormSpec, Positions};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["roberta."];

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("classifier.dense", h, h),
            Act::Tanh,
            LinSpec::new("classifier.out_proj", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("lm_head.dense", h, h),
            Act::Gelu,
            NormSpec::new("lm_head.layer_norm", h, cfg.layer_norm_eps),
            bert::tied_decoder(
                cfg,
                "roberta.embeddings.word_embeddings.weight",
                "lm_head.decoder.weight",
                "lm_head.bias",
                h,
            ),
        ),
    };
    let positions = Positions::AfterPadding {
        pad: cfg.pad_token_id as u32,
    };
    NetworkSpec {
        embeddings: bert::embeddings(cfg, "roberta.embeddings", h, positions),
        position_bias: None,
        layers: (0..cfg.num_layers)
            .map(|i| bert::layer(cfg, &format!("roberta.encoder.layer.{i}")))
            .collect(),
        final_norm: None,
        head,
    }
}
