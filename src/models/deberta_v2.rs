//! DeBERTa-v2/v3 (`model_type: deberta-v2`): BERT's post-LN layers with disentangled attention
//! — the content scores `Q·Kᵀ` plus content→position `Q_i·PosK[r]` and position→content
//! `K_j·PosQ[r]` terms, `r` the log-bucketed relative position `i − j` shifted by the span, all
//! divided by `√(head_dim·(1 + terms))` — where PosQ/PosK are the (layer-normed)
//! `encoder.rel_embeddings` through each layer's query/key projections (`share_att_key`) or
//! its own `pos_query_proj`/`pos_key_proj`. No absolute positions in v3
//! (`position_biased_input: false`), no token types (`type_vocab_size: 0`).
//! Heads: `DebertaV2ForSequenceClassification` (`pooler.dense` + `pooler_hidden_act` on the
//! first token, then `classifier`), `…ForTokenClassification`, `…ForQuestionAnswering` and
//! `…ForMaskedLM` (`legacy: true`: BERT's `cls.predictions`; `legacy: false`:
//! `lm_predictions.lm_head`, both decoding with the word embeddings).
//! Refused with a clear error: the convolution layer (`conv_kernel_size`), an embedding width
//! other than the hidden size, a head size other than `hidden/heads`, and DeBERTa-v1's `p2p`.

use super::bert::{
    first_token_classifier, masked_lm, post_ln_layer, tied_decoder, token_classifier, PostLnNames,
};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, DisentangledSpec, EmbeddingSpec, HeadSpec, LinSpec, NetworkSpec, NormSpec,
    PositionBiasSpec, Positions,
};
use crate::ops::activation::Act;
use serde_json::Value;

pub const PREFIXES: &[&str] = &["deberta."];

const WORD: &str = "deberta.embeddings.word_embeddings.weight";

fn int(cfg: &ModelConfig, key: &str, default: i64) -> i64 {
    cfg.raw.get(key).and_then(Value::as_i64).unwrap_or(default)
}

fn flag(cfg: &ModelConfig, key: &str, default: bool) -> bool {
    cfg.raw.get(key).and_then(Value::as_bool).unwrap_or(default)
}

/// `pos_att_type`: a list, or the `"p2c|c2p"` string older configs carry (as
/// `DebertaV2Config` reads it). Returns (c2p, p2c).
fn position_terms(cfg: &ModelConfig) -> Result<(bool, bool), String> {
    let names: Vec<String> = match cfg.raw.get("pos_att_type") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) => s.split('|').map(|x| x.trim().to_lowercase()).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("").trim().to_lowercase())
            .collect(),
        Some(other) => return Err(format!("DeBERTa `pos_att_type` {other} is not a list")),
    };
    let (mut c2p, mut p2c) = (false, false);
    for n in names.iter().filter(|n| !n.is_empty()) {
        match n.as_str() {
            "c2p" => c2p = true,
            "p2c" => p2c = true,
            other => {
                return Err(format!(
                    "DeBERTa `pos_att_type` entry `{other}` is not supported (supported: c2p, p2c — the DeBERTa-v2/v3 terms)"
                ))
            }
        }
    }
    Ok((c2p, p2c))
}

pub fn spec(cfg: &ModelConfig) -> Result<NetworkSpec, String> {
    let h = cfg.hidden_size;
    let eps = cfg.layer_norm_eps;
    if int(cfg, "conv_kernel_size", 0) > 0 {
        return Err(
            "DeBERTa with `conv_kernel_size` > 0 (the convolution after the first layer of DeBERTa-v2-xlarge) is not supported; DeBERTa-v3 checkpoints have none"
                .into(),
        );
    }
    if cfg.embedding_size != h {
        return Err(format!(
            "DeBERTa with `embedding_size` {} ≠ `hidden_size` {h} is not supported (its LayerNorm follows the projection, which the fused embedding kernel does not do)",
            cfg.embedding_size
        ));
    }
    let head_size = int(cfg, "attention_head_size", (h / cfg.num_heads) as i64);
    if head_size != (h / cfg.num_heads) as i64 {
        return Err(format!(
            "DeBERTa with `attention_head_size` {head_size} ≠ hidden_size / num_attention_heads = {} is not supported",
            h / cfg.num_heads
        ));
    }
    let (c2p, p2c) = position_terms(cfg)?;
    let relative = flag(cfg, "relative_attention", false);
    if !relative && (c2p || p2c) {
        return Err(
            "DeBERTa with `pos_att_type` but `relative_attention: false` (scores scaled for position terms that are never added) is not supported"
                .into(),
        );
    }
    let share = flag(cfg, "share_att_key", false);

    let names = PostLnNames {
        q: "attention.self.query_proj",
        k: "attention.self.key_proj",
        v: "attention.self.value_proj",
        attn_out: "attention.output.dense",
        attn_norm: "attention.output.LayerNorm",
        ff_in: "intermediate.dense",
        ff_out: "output.dense",
        out_norm: "output.LayerNorm",
    };
    let layers = (0..cfg.num_layers)
        .map(|i| {
            let p = format!("deberta.encoder.layer.{i}");
            let kind = if relative {
                // Without shared keys each term has its own projection (only the ones used).
                let own = |s: &str| LinSpec::new(&format!("{p}.attention.self.{s}"), h, h);
                let (q, k) = if share {
                    (own("query_proj"), own("key_proj"))
                } else {
                    (
                        own(if p2c { "pos_query_proj" } else { "query_proj" }),
                        own(if c2p { "pos_key_proj" } else { "key_proj" }),
                    )
                };
                AttentionKind::Disentangled { pos_q: q, pos_k: k }
            } else {
                AttentionKind::Plain
            };
            post_ln_layer(cfg, &p, &names, kind)
        })
        .collect();

    let position_bias = relative.then(|| {
        let mut max_relative = int(cfg, "max_relative_positions", -1);
        if max_relative < 1 {
            max_relative = cfg.max_positions as i64;
        }
        let buckets = int(cfg, "position_buckets", -1);
        let span = if buckets > 0 { buckets } else { max_relative } as usize;
        let norm_rel = cfg
            .raw
            .get("norm_rel_ebd")
            .and_then(Value::as_str)
            .unwrap_or("none")
            .to_lowercase();
        PositionBiasSpec::Disentangled(DisentangledSpec {
            table: "deberta.encoder.rel_embeddings.weight".into(),
            hidden: h,
            norm: norm_rel
                .split('|')
                .any(|x| x.trim() == "layer_norm")
                .then(|| NormSpec::new("deberta.encoder.LayerNorm", h, eps)),
            span,
            buckets: buckets.max(0) as usize,
            max_relative: max_relative as usize,
            c2p,
            p2c,
        })
    });

    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => {
            let pooler = int(cfg, "pooler_hidden_size", h as i64);
            if pooler != h as i64 {
                return Err(format!(
                    "DeBERTa with `pooler_hidden_size` {pooler} ≠ `hidden_size` {h} is not supported"
                ));
            }
            let act_name = cfg
                .raw
                .get("pooler_hidden_act")
                .and_then(Value::as_str)
                .unwrap_or("gelu");
            first_token_classifier(
                LinSpec::new("pooler.dense", h, h),
                Act::from_hf(act_name).map_err(|e| format!("`pooler_hidden_act`: {e}"))?,
                LinSpec::new("classifier", cfg.num_labels(), h),
            )
        }
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm if flag(cfg, "legacy", true) => masked_lm(
            LinSpec::new("cls.predictions.transform.dense", h, h),
            cfg.act,
            NormSpec::new("cls.predictions.transform.LayerNorm", h, eps),
            tied_decoder(
                cfg,
                WORD,
                "cls.predictions.decoder.weight",
                "cls.predictions.bias",
                h,
            ),
        ),
        // The newer head always decodes with the word embeddings.
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("lm_predictions.lm_head.dense", h, h),
            cfg.act,
            NormSpec::new("lm_predictions.lm_head.LayerNorm", h, eps),
            LinSpec {
                w: WORD.into(),
                b: Some("lm_predictions.lm_head.bias".into()),
                out: cfg.vocab_size,
                inp: h,
            },
        ),
    };

    let position_biased_input = flag(cfg, "position_biased_input", true);
    Ok(NetworkSpec {
        embeddings: EmbeddingSpec {
            word: WORD.into(),
            position: position_biased_input
                .then(|| "deberta.embeddings.position_embeddings.weight".into()),
            token_type: (cfg.type_vocab_size > 0)
                .then(|| "deberta.embeddings.token_type_embeddings.weight".into()),
            norm: NormSpec::new("deberta.embeddings.LayerNorm", h, eps),
            dim: h,
            project: None,
            positions: Positions::Absolute,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions,
            type_vocab: cfg.type_vocab_size,
        },
        position_bias,
        layers,
        final_norm: None,
        head,
    })
}
