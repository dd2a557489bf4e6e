//! BERT (`model_type: bert`): `BertModel`, `BertForSequenceClassification` (pooler tanh on the
//! first token, then the classifier), `BertForQuestionAnswering`, `BertForTokenClassification`
//! (`classifier` on every token) and `BertForMaskedLM` (`cls.predictions`: transform dense, the
//! config's activation, LayerNorm, then the decoder tied to the word embeddings plus its bias).

use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, AttentionSpec, EmbeddingSpec, HeadSpec, LayerSpec, LinSpec, MlpSpec,
    NetworkSpec, NormPlacement, NormSpec, Pooling, Positions, QkvSpec, Transform,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["bert."];

/// The tensor-name prefixes of a post-LN layer's parts (under the layer's own prefix).
pub struct PostLnNames<'a> {
    pub q: &'a str,
    pub k: &'a str,
    pub v: &'a str,
    pub attn_out: &'a str,
    pub attn_norm: &'a str,
    pub ff_in: &'a str,
    pub ff_out: &'a str,
    pub out_norm: &'a str,
}

/// A post-LN layer (BERT and its descendants) under prefix `p`: three projections, plain or
/// relative-bias attention, a two-linear MLP with `cfg.act`, norms after each residual add.
pub fn post_ln_layer(
    cfg: &ModelConfig,
    p: &str,
    n: &PostLnNames,
    kind: AttentionKind,
) -> LayerSpec {
    let (h, ff, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
    let lin = |s: &str, out, inp| LinSpec::new(&format!("{p}.{s}"), out, inp);
    LayerSpec {
        attention: AttentionSpec {
            qkv: QkvSpec::Separate {
                q: lin(n.q, h, h),
                k: lin(n.k, h, h),
                v: lin(n.v, h, h),
            },
            out: lin(n.attn_out, h, h),
            kind,
        },
        mlp: MlpSpec::Plain {
            up: lin(n.ff_in, ff, h),
            down: lin(n.ff_out, h, ff),
            act: cfg.act,
        },
        norms: NormPlacement::Post {
            attn: NormSpec::new(&format!("{p}.{}", n.attn_norm), h, eps),
            mlp: NormSpec::new(&format!("{p}.{}", n.out_norm), h, eps),
        },
    }
}

/// One BERT encoder layer's tensor names under `p` (also used by RoBERTa and ELECTRA).
pub fn layer(cfg: &ModelConfig, p: &str) -> LayerSpec {
    let names = PostLnNames {
        q: "attention.self.query",
        k: "attention.self.key",
        v: "attention.self.value",
        attn_out: "attention.output.dense",
        attn_norm: "attention.output.LayerNorm",
        ff_in: "intermediate.dense",
        ff_out: "output.dense",
        out_norm: "output.LayerNorm",
    };
    post_ln_layer(cfg, p, &names, AttentionKind::Plain)
}

/// BERT-style embeddings (word + position + token type, LayerNorm) of width `dim`.
pub fn embeddings(cfg: &ModelConfig, p: &str, dim: usize, positions: Positions) -> EmbeddingSpec {
    EmbeddingSpec {
        word: format!("{p}.word_embeddings.weight"),
        position: Some(format!("{p}.position_embeddings.weight")),
        token_type: Some(format!("{p}.token_type_embeddings.weight")),
        norm: NormSpec::new(&format!("{p}.LayerNorm"), dim, cfg.layer_norm_eps),
        dim,
        project: None,
        positions,
        vocab: cfg.vocab_size,
        max_positions: cfg.max_positions,
        type_vocab: cfg.type_vocab_size,
    }
}

/// A classifier on the first token: `out(act(dense(x₀)))`.
pub fn first_token_classifier(dense: LinSpec, act: Act, out: LinSpec) -> HeadSpec {
    HeadSpec::Classifier {
        pooling: Pooling::First,
        transform: Some(Transform {
            dense,
            act,
            norm: None,
        }),
        out,
    }
}

/// A token-classification head: `classifier` on every token (one logit per label).
pub fn token_classifier(cfg: &ModelConfig) -> HeadSpec {
    HeadSpec::TokenClassifier {
        transform: None,
        out: LinSpec::new("classifier", cfg.num_labels(), cfg.hidden_size),
    }
}

/// A masked-LM head: `decoder(LayerNorm(act(dense(x))))`.
pub fn masked_lm(dense: LinSpec, act: Act, norm: NormSpec, decoder: LinSpec) -> HeadSpec {
    HeadSpec::MaskedLm {
        transform: Transform {
            dense,
            act,
            norm: Some(norm),
        },
        decoder,
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
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("bert.pooler.dense", h, h),
            Act::Tanh,
            LinSpec::new("classifier", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("cls.predictions.transform.dense", h, h),
            cfg.act,
            NormSpec::new("cls.predictions.transform.LayerNorm", h, cfg.layer_norm_eps),
            tied_decoder(
                cfg,
                "bert.embeddings.word_embeddings.weight",
                "cls.predictions.decoder.weight",
                "cls.predictions.bias",
                h,
            ),
        ),
    };
    NetworkSpec {
        embeddings: embeddings(cfg, "bert.embeddings", h, Positions::Absolute),
        position_bias: None,
        layers: (0..cfg.num_layers)
            .map(|i| layer(cfg, &format!("bert.encoder.layer.{i}")))
            .collect(),
        final_norm: None,
        head,
    }
}
