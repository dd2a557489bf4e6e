//! DistilBERT (`model_type: distilbert`): no token types; classification is
//! `classifier(relu(pre_classifier(first token)))`; QA is `qa_outputs` and token classification
//! `classifier` on every token; the masked-LM head is `vocab_projector(vocab_layer_norm(act(
//! vocab_transform(x))))` with the projector tied to the word embeddings and LayerNorm eps 1e-12.

use super::bert::tied_decoder;
use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    EmbeddingSpec, HeadSpec, LayerSpec, LinSpec, NetworkSpec, NormSpec, Positions,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["distilbert."];

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let ff = cfg.intermediate_size;
    let layer = |i: usize| {
        let p = format!("distilbert.transformer.layer.{i}");
        LayerSpec {
            q: LinSpec::new(&format!("{p}.attention.q_lin"), h, h),
            k: LinSpec::new(&format!("{p}.attention.k_lin"), h, h),
            v: LinSpec::new(&format!("{p}.attention.v_lin"), h, h),
            attn_out: LinSpec::new(&format!("{p}.attention.out_lin"), h, h),
            attn_norm: NormSpec::new(&format!("{p}.sa_layer_norm"), h),
            ff_in: LinSpec::new(&format!("{p}.ffn.lin1"), ff, h),
            ff_out: LinSpec::new(&format!("{p}.ffn.lin2"), h, ff),
            out_norm: NormSpec::new(&format!("{p}.output_layer_norm"), h),
        }
    };
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => HeadSpec::Classifier {
            dense: Some((LinSpec::new("pre_classifier", h, h), Act::Relu)),
            out: LinSpec::new("classifier", cfg.num_labels(), h),
        },
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => {
            HeadSpec::TokenClassifier(LinSpec::new("classifier", cfg.num_labels(), h))
        }
        HeadKind::MaskedLm => HeadSpec::MaskedLm {
            transform: LinSpec::new("vocab_transform", h, h),
            act: cfg.act,
            norm: NormSpec::new("vocab_layer_norm", h),
            // Hard-coded in DistilBertForMaskedLM whatever the config says.
            eps: 1e-12,
            decoder: tied_decoder(
                cfg,
                "distilbert.embeddings.word_embeddings.weight",
                "vocab_projector.weight",
                "vocab_projector.bias",
                h,
            ),
        },
    };
    NetworkSpec {
        embeddings: EmbeddingSpec {
            word: "distilbert.embeddings.word_embeddings.weight".into(),
            position: "distilbert.embeddings.position_embeddings.weight".into(),
            token_type: None,
            norm: NormSpec::new("distilbert.embeddings.LayerNorm", h),
            dim: h,
            project: None,
            positions: Positions::Absolute,
        },
        layers: (0..cfg.num_layers).map(layer).collect(),
        head,
    }
}
