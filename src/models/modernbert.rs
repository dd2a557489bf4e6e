//! ModernBERT (`model_type: modernbert`): pre-LN layers without biases (by default), one packed
//! `Wqkv` projection with rotary position embeddings — a separate base for global and for
//! sliding-window layers — local attention of `local_attention` tokens except every
//! `global_attn_every_n_layers`-th layer (or as `layer_types` says), a GeGLU MLP (`Wi` gives the
//! input and the gate), no norm before the first layer's attention, and a final norm. Heads:
//! `ModernBertForSequenceClassification` (CLS or mean pooling, then `head`: dense, activation,
//! norm, then `classifier`), `…ForTokenClassification` and `…ForQuestionAnswering` (`head` then
//! `classifier` on every token), `…ForMaskedLM` (`head` then the decoder tied to the token
//! embeddings).

use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, AttentionSpec, EmbeddingSpec, HeadSpec, LayerSpec, LinSpec, MlpSpec,
    NetworkSpec, NormPlacement, NormSpec, Pooling, Positions, QkvSpec, Transform,
};
use crate::ops::activation::Act;
use serde_json::Value;

pub const PREFIXES: &[&str] = &["model."];

fn flag(cfg: &ModelConfig, key: &str, default: bool) -> bool {
    cfg.raw.get(key).and_then(Value::as_bool).unwrap_or(default)
}

fn number(cfg: &ModelConfig, key: &str) -> Option<f64> {
    cfg.raw.get(key).and_then(Value::as_f64)
}

/// The rotary base of a layer type: `rope_parameters[type].rope_theta` (transformers 5), or the
/// older `global_rope_theta` / `local_rope_theta`.
fn rope_theta(cfg: &ModelConfig, layer_type: &str) -> Result<f64, String> {
    if let Some(p) = cfg.raw.get("rope_parameters") {
        let params = p.get(layer_type).unwrap_or(p);
        if let Some(kind) = params.get("rope_type").and_then(Value::as_str) {
            if kind != "default" {
                return Err(format!(
                    "ModernBERT with rope_type `{kind}` is not supported (only the default rotary embedding)"
                ));
            }
        }
        if let Some(t) = params.get("rope_theta").and_then(Value::as_f64) {
            return Ok(t);
        }
    }
    let (key, default) = if layer_type == "sliding_attention" {
        ("local_rope_theta", 10_000.0)
    } else {
        ("global_rope_theta", 160_000.0)
    };
    Ok(number(cfg, key).unwrap_or(default))
}

pub fn spec(cfg: &ModelConfig) -> Result<NetworkSpec, String> {
    let (h, inner, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
    let norm = |prefix: &str| {
        if flag(cfg, "norm_bias", false) {
            NormSpec::new(prefix, h, eps)
        } else {
            NormSpec::no_bias(prefix, h, eps)
        }
    };
    let lin = |prefix: &str, out, inp, bias: bool| {
        if bias {
            LinSpec::new(prefix, out, inp)
        } else {
            LinSpec::no_bias(prefix, out, inp)
        }
    };
    let attention_bias = flag(cfg, "attention_bias", false);
    let mlp_bias = flag(cfg, "mlp_bias", false);
    let every = cfg
        .raw
        .get("global_attn_every_n_layers")
        .and_then(Value::as_u64)
        .unwrap_or(3)
        .max(1) as usize;
    let window = cfg
        .raw
        .get("local_attention")
        .and_then(Value::as_u64)
        .unwrap_or(128) as usize;
    let types: Vec<String> = match cfg.raw.get("layer_types").and_then(Value::as_array) {
        Some(t) => t
            .iter()
            .map(|x| x.as_str().unwrap_or_default().to_string())
            .collect(),
        None => (0..cfg.num_layers)
            .map(|i| {
                if i % every == 0 {
                    "full_attention"
                } else {
                    "sliding_attention"
                }
                .to_string()
            })
            .collect(),
    };
    if types.len() != cfg.num_layers {
        return Err(format!(
            "layer_types names {} layers but num_hidden_layers is {}",
            types.len(),
            cfg.num_layers
        ));
    }
    let mut layers = vec![];
    for (i, t) in types.iter().enumerate() {
        let window = match t.as_str() {
            "full_attention" => 0,
            "sliding_attention" => window,
            other => {
                return Err(format!(
                    "layer type `{other}` is not supported (full_attention, sliding_attention)"
                ))
            }
        };
        let p = format!("model.layers.{i}");
        layers.push(LayerSpec {
            attention: AttentionSpec {
                qkv: QkvSpec::Packed(lin(&format!("{p}.attn.Wqkv"), 3 * h, h, attention_bias)),
                out: lin(&format!("{p}.attn.Wo"), h, h, attention_bias),
                kind: AttentionKind::Rotary {
                    theta: rope_theta(cfg, t)?,
                    window,
                },
            },
            mlp: MlpSpec::Gated {
                up: lin(&format!("{p}.mlp.Wi"), 2 * inner, h, mlp_bias),
                down: lin(&format!("{p}.mlp.Wo"), h, inner, mlp_bias),
                act: cfg.act,
            },
            norms: NormPlacement::Pre {
                // transformers' first layer has nn.Identity as its attention norm.
                attn: (i > 0).then(|| norm(&format!("{p}.attn_norm"))),
                mlp: norm(&format!("{p}.mlp_norm")),
            },
        });
    }
    let head_act = Act::from_hf(
        cfg.raw
            .get("classifier_activation")
            .and_then(Value::as_str)
            .unwrap_or("gelu"),
    )
    .map_err(|e| e.to_string())?;
    let transform = Transform {
        dense: lin("head.dense", h, h, flag(cfg, "classifier_bias", false)),
        act: head_act,
        norm: Some(norm("head.norm")),
    };
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => HeadSpec::Classifier {
            pooling: match cfg.raw.get("classifier_pooling").and_then(Value::as_str) {
                None | Some("cls") => Pooling::First,
                Some("mean") => Pooling::Mean,
                Some(other) => {
                    return Err(format!(
                        "classifier_pooling `{other}` is not supported (cls, mean)"
                    ))
                }
            },
            transform: Some(transform),
            out: LinSpec::new("classifier", cfg.num_labels(), h),
        },
        // QA's start and end logits are a two-label head on every token.
        HeadKind::TokenClassification | HeadKind::QuestionAnswering => HeadSpec::TokenClassifier {
            transform: Some(transform),
            out: LinSpec::new(
                "classifier",
                if cfg.head == HeadKind::QuestionAnswering {
                    2
                } else {
                    cfg.num_labels()
                },
                h,
            ),
        },
        HeadKind::MaskedLm => HeadSpec::MaskedLm {
            transform,
            decoder: LinSpec {
                w: if cfg.tie_word_embeddings {
                    "model.embeddings.tok_embeddings.weight"
                } else {
                    "decoder.weight"
                }
                .into(),
                b: flag(cfg, "decoder_bias", true).then(|| "decoder.bias".into()),
                out: cfg.vocab_size,
                inp: h,
            },
        },
    };
    Ok(NetworkSpec {
        embeddings: EmbeddingSpec {
            word: "model.embeddings.tok_embeddings.weight".into(),
            position: None,
            token_type: None,
            norm: norm("model.embeddings.norm"),
            dim: h,
            project: None,
            positions: Positions::Absolute,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions,
            type_vocab: 0,
        },
        position_bias: None,
        layers,
        final_norm: Some(norm("model.final_norm")),
        head,
    })
}
