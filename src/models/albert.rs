//! ALBERT (`model_type: albert`): factorised embeddings (BERT-style tables and LayerNorm at
//! `embedding_size`, then `encoder.embedding_hidden_mapping_in` to the hidden size, always
//! present) and layers shared across depth: layer `i` runs parameter group
//! `int(i / (num_hidden_layers / num_hidden_groups))`. The same tensor names repeat in the spec and
//! the encoder uploads them once. Classification is `classifier(tanh(pooler(first token)))`; QA is
//! `qa_outputs` and token classification `classifier` on every token; `AlbertForMaskedLM` is
//! `predictions`: dense from the hidden size to `embedding_size`, the config's activation,
//! LayerNorm, then the decoder tied to the word embeddings plus `predictions.bias`.
//!
//! A group with `inner_group_num > 1` runs its inner layers one after the other; each inner layer
//! is a spec layer, so the final output matches transformers but `forward_with_hidden` then holds
//! one state per inner layer (transformers reports one per group application). Released ALBERT
//! checkpoints all have `inner_group_num = 1`.

use super::bert;
use super::bert::{
    first_token_classifier, masked_lm, post_ln_layer, token_classifier, PostLnNames,
};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, HeadSpec, LayerSpec, LinSpec, NetworkSpec, NormSpec, Positions,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["albert."];

/// The parameter group layer `i` uses, computed as transformers does (float division).
pub fn group_of(i: usize, layers: usize, groups: usize) -> usize {
    let groups = groups.max(1);
    (i as f64 / (layers as f64 / groups as f64)) as usize
}

/// One ALBERT layer's tensor names under `p` (`...albert_layer_groups.G.albert_layers.J`).
fn layer(cfg: &ModelConfig, p: &str) -> LayerSpec {
    let names = PostLnNames {
        q: "attention.query",
        k: "attention.key",
        v: "attention.value",
        attn_out: "attention.dense",
        attn_norm: "attention.LayerNorm",
        ff_in: "ffn",
        ff_out: "ffn_output",
        out_norm: "full_layer_layer_norm",
    };
    post_ln_layer(cfg, p, &names, AttentionKind::Plain)
}

pub fn spec(cfg: &ModelConfig) -> NetworkSpec {
    let h = cfg.hidden_size;
    let e = cfg.embedding_size;
    let mut embeddings = bert::embeddings(cfg, "albert.embeddings", e, Positions::Absolute);
    embeddings.project = Some(LinSpec::new(
        "albert.encoder.embedding_hidden_mapping_in",
        h,
        e,
    ));
    let mut layers = vec![];
    for i in 0..cfg.num_layers {
        let g = group_of(i, cfg.num_layers, cfg.num_hidden_groups);
        for j in 0..cfg.inner_group_num.max(1) {
            layers.push(layer(
                cfg,
                &format!("albert.encoder.albert_layer_groups.{g}.albert_layers.{j}"),
            ));
        }
    }
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("albert.pooler", h, h),
            Act::Tanh,
            LinSpec::new("classifier", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("predictions.dense", e, h),
            cfg.act,
            NormSpec::new("predictions.LayerNorm", e, cfg.layer_norm_eps),
            bert::tied_decoder(
                cfg,
                "albert.embeddings.word_embeddings.weight",
                "predictions.decoder.weight",
                "predictions.bias",
                e,
            ),
        ),
    };
    NetworkSpec {
        embeddings,
        position_bias: None,
        layers,
        final_norm: None,
        head,
    }
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn layers_map_to_groups_as_transformers_does() {
        assert_eq!((0..12).map(|i| group_of(i, 12, 1)).max(), Some(0));
        let g: Vec<usize> = (0..12).map(|i| group_of(i, 12, 3)).collect();
        assert_eq!(g, [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
        let g: Vec<usize> = (0..4).map(|i| group_of(i, 4, 4)).collect();
        assert_eq!(g, [0, 1, 2, 3]);
    }
}
