//! DistilBERT (`model_type: distilbert`): no token types; classification is
//! `classifier(relu(pre_classifier(first token)))`; QA is `qa_outputs` and token classification
//! `classifier` on every token; the masked-LM head is `vocab_projector(vocab_layer_norm(act(
//! vocab_transform(x))))` with the projector tied to the word embeddings and LayerNorm eps 1e-12.

use super::bert::{
    first_token_classifier, masked_lm, post_ln_layer, tied_decoder, token_classifier, PostLnNames,
};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, EmbeddingSpec, HeadSpec, LinSpec, NetworkSpec, NormSpec, Positions,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["distilbert."];

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let names = PostLnNames {
        q: "attention.q_lin",
        k: "attention.k_lin",
        v: "attention.v_lin",
        attn_out: "attention.out_lin",
        attn_norm: "sa_layer_norm",
        ff_in: "ffn.lin1",
        ff_out: "ffn.lin2",
        out_norm: "output_layer_norm",
    };
    let layer = |i: usize| {
        let p = format!("distilbert.transformer.layer.{i}");
        post_ln_layer(cfg, &p, &names, AttentionKind::Plain)
    };
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("pre_classifier", h, h),
            Act::Relu,
            LinSpec::new("classifier", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("vocab_transform", h, h),
            cfg.act,
            // DistilBertForMaskedLM hard-codes 1e-12 whatever the config says.
            NormSpec::new("vocab_layer_norm", h, 1e-12),
            tied_decoder(
                cfg,
                "distilbert.embeddings.word_embeddings.weight",
                "vocab_projector.weight",
                "vocab_projector.bias",
                h,
            ),
        ),
    };
    NetworkSpec {
        embeddings: EmbeddingSpec {
            word: "distilbert.embeddings.word_embeddings.weight".into(),
            position: Some("distilbert.embeddings.position_embeddings.weight".into()),
            token_type: None,
            norm: NormSpec::new("distilbert.embeddings.LayerNorm", h, cfg.layer_norm_eps),
            dim: h,
            project: None,
            positions: Positions::Absolute,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions,
            type_vocab: 0,
        },
        position_bias: None,
        layers: (0..cfg.num_layers).map(layer).collect(),
        final_norm: None,
        head,
    }
}
