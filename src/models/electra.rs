//! ELECTRA (`model_type: electra`, the discriminator): BERT's embeddings at `embedding_size`
//! (LayerNorm included), then `embeddings_project` to the hidden size when the two differ, then
//! BERT's layers. Classification is `out_proj(gelu(dense(first token)))` under `classifier.` —
//! the exact erf gelu whatever `hidden_act` says; QA is `qa_outputs` and token classification
//! `classifier` on every token. `ElectraForMaskedLM` (the generator): `generator_predictions`
//! (dense from the hidden size to `embedding_size`, exact gelu, LayerNorm) then
//! `generator_lm_head` tied to the word embeddings, with its own bias.

use super::bert;
use super::bert::{first_token_classifier, masked_lm, token_classifier};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{HeadSpec, LinSpec, NetworkSpec, NormSpec, Positions};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["electra."];

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let e = cfg.embedding_size;
    let mut embeddings = bert::embeddings(cfg, "electra.embeddings", e, Positions::Absolute);
    // transformers creates `embeddings_project` only when the widths differ.
    if e != h {
        embeddings.project = Some(LinSpec::new("electra.embeddings_project", h, e));
    }
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("classifier.dense", h, h),
            Act::Gelu,
            LinSpec::new("classifier.out_proj", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("generator_predictions.dense", e, h),
            Act::Gelu,
            NormSpec::new("generator_predictions.LayerNorm", e, cfg.layer_norm_eps),
            bert::tied_decoder(
                cfg,
                "electra.embeddings.word_embeddings.weight",
                "generator_lm_head.weight",
                "generator_lm_head.bias",
                e,
            ),
        ),
    };
    NetworkSpec {
        embeddings,
        position_bias: None,
        layers: (0..cfg.num_layers)
            .map(|i| bert::layer(cfg, &format!("electra.encoder.layer.{i}")))
            .collect(),
        final_norm: None,
        head,
    }
}
