//! ELECTRA (`model_type: electra`, the discriminator): BERT's embeddings at `embedding_size`
//! (LayerNorm included), then `embeddings_project` to the hidden size when the two differ, then
//! BERT's layers. Classification is `out_proj(gelu(dense(first token)))` under `classifier.` —
//! the exact erf gelu whatever `hidden_act` says; QA is `qa_outputs` on every token.

use super::bert;
use super::config::{HeadKind, ModelConfig};
use super::encoder::{HeadSpec, LinSpec, NetworkSpec, Positions};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["electra."];

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let e = cfg.embedding_size;
    let mut embeddings = bert::embeddings("electra.embeddings", e, Positions::Absolute);
    // transformers creates `embeddings_project` only when the widths differ.
    if e != h {
        embeddings.project = Some(LinSpec::new("electra.embeddings_project", h, e));
    }
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => HeadSpec::Classifier {
            dense: Some((LinSpec::new("classifier.dense", h, h), Act::Gelu)),
            out: LinSpec::new("classifier.out_proj", cfg.num_labels(), h),
        },
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
    };
    NetworkSpec {
        embeddings,
        layers: (0..cfg.num_layers)
            .map(|i| {
                bert::layer(
                    &format!("electra.encoder.layer.{i}"),
                    h,
                    cfg.intermediate_size,
                )
            })
            .collect(),
        head,
    }
}
