//! BERT (`model_type: bert`): `BertModel`, `BertForSequenceClassification` (pooler tanh on the
//! first token, then the classifier), `BertForQuestionAnswering`, `BertForTokenClassification`
//! (`classifier` on every token) and `BertForMaskedLM` (`cls.predictions`: transform dense, the
//! config's activation, LayerNorm, then the decoder tied to the word embeddings plus its bias).

use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    EmbeddingSpec, HeadSpec, LayerSpec, LinSpec, NetworkSpec, NormSpec, Positions,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["bert."];

/// One BERT encoder layer's tensor names under `p` (also used by ELECTRA, same layout).
pub fn layer(p: &str, h: usize, ff: usize) -> LayerSpec {
    LayerSpec {
        q: LinSpec::new(&format!("{p}.attention.self.query"), h, h),
        k: LinSpec::new(&format!("{p}.attention.self.key"), h, h),
        v: LinSpec::new(&format!("{p}.attention.self.value"), h, h),
        attn_out: LinSpec::new(&format!("{p}.attention.output.dense"), h, h),
        attn_norm: NormSpec::new(&format!("{p}.attention.output.LayerNorm"), h),
        ff_in: LinSpec::new(&format!("{p}.intermediate.dense"), ff, h),
        ff_out: LinSpec::new(&format!("{p}.output.dense"), h, ff),
        out_norm: NormSpec::new(&format!("{p}.output.LayerNorm"), h),
    }
}

/// BERT-style embeddings (word + position + token type, LayerNorm) of width `dim`.
pub fn embeddings(p: &str, dim: usize, positions: Positions) -> EmbeddingSpec {
    EmbeddingSpec {
        word: format!("{p}.word_embeddings.weight"),
        position: format!("{p}.position_embeddings.weight"),
        token_type: Some(format!("{p}.token_type_embeddings.weight")),
        norm: NormSpec::new(&format!("{p}.LayerNorm"), dim),
        dim,
        project: None,
        positions,
    }
}

/// A masked-LM decoder `[vocab, dim]`: the word embedding table `word` when the config ties them
/// (`tie_word_embeddings`, the default; the file then usually has no decoder weight), else the
/// head's own `untied` weight; with the head's output bias `bias` (also found stored as
/// `….decoder.bias`, see `Weights`).
pub fn tied_decoder(
    cfg: &ModelConfig,
    word: &str,
    untied: &str,
    bias: &str,
    dim: usize,
) -> LinSpec {
    LinSpec {
        w: if cfg.tie_word_embeddings {
            word
        } else {
            untied
        }
        .to_string(),
        b: Some(bias.to_string()),
        out: cfg.vocab_size,
        inp: dim,
    }
}

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => HeadSpec::Classifier {
            dense: Some((LinSpec::new("bert.pooler.dense", h, h), Act::Tanh)),
            out: LinSpec::new("classifier", cfg.num_labels(), h),
        },
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => {
            HeadSpec::TokenClassifier(LinSpec::new("classifier", cfg.num_labels(), h))
        }
        HeadKind::MaskedLm => HeadSpec::MaskedLm {
            transform: LinSpec::new("cls.predictions.transform.dense", h, h),
            act: cfg.act,
            norm: NormSpec::new("cls.predictions.transform.LayerNorm", h),
            eps: cfg.layer_norm_eps,
            decoder: tied_decoder(
                cfg,
                "bert.embeddings.word_embeddings.weight",
                "cls.predictions.decoder.weight",
                "cls.predictions.bias",
                h,
            ),
        },
    };
    NetworkSpec {
        embeddings: embeddings("bert.embeddings", h, Positions::Absolute),
        layers: (0..cfg.num_layers)
            .map(|i| layer(&format!("bert.encoder.layer.{i}"), h, cfg.intermediate_size))
            .collect(),
        head,
    }
}
