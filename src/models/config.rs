//! Hugging Face `config.json`, normalised across the encoder families' field names.

use crate::ops::activation::Act;
use crate::{Error, Result};
use serde_json::Value;
use std::path::Path;

/// The encoder families wgformer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Family {
    Bert,
    DistilBert,
    Roberta,
    Electra,
    Albert,
    Mpnet,
    ModernBert,
    DebertaV2,
}

/// The head on top of the encoder, from `architectures[0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum HeadKind {
    /// `*Model`: hidden states only (embeddings, feature extraction).
    Base,
    SequenceClassification,
    QuestionAnswering,
    /// `*ForTokenClassification`: labels for every token (named-entity recognition).
    TokenClassification,
    /// `*ForMaskedLM`: vocabulary logits per token, the decoder usually tied to the word
    /// embeddings (fill-mask).
    MaskedLm,
}

pub const SUPPORTED_MODEL_TYPES: &str =
    "bert, distilbert, roberta, xlm-roberta, camembert, electra, albert, mpnet, deberta-v2, modernbert";

#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelConfig {
    pub model_type: String,
    pub family: Family,
    pub architecture: String,
    pub head: HeadKind,
    pub hidden_size: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub intermediate_size: usize,
    pub act: Act,
    pub layer_norm_eps: f32,
    pub vocab_size: usize,
    pub max_positions: usize,
    /// 0 when the family has no token-type embeddings (DistilBERT).
    pub type_vocab_size: usize,
    pub pad_token_id: usize,
    /// Embedding width when it differs from `hidden_size` (ELECTRA, ALBERT).
    pub embedding_size: usize,
    /// ALBERT: layers share `num_hidden_groups` parameter groups.
    pub num_hidden_groups: usize,
    /// ALBERT: layers per parameter group (1 in every released checkpoint).
    pub inner_group_num: usize,
    /// Labels by id (`id2label`); `LABEL_i` when the config has none.
    pub id2label: Vec<String>,
    pub problem_type: Option<String>,
    /// `tie_word_embeddings` (default true): an LM head's decoder is the word embedding table.
    pub tie_word_embeddings: bool,
    /// The whole `config.json`, for the fields only one architecture reads (its file reads them).
    #[serde(skip)]
    pub raw: Value,
}

impl ModelConfig {
    pub fn load(dir: &Path) -> Result<ModelConfig> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::model(
                dir,
                format!("cannot read config.json ({e}); a Hugging Face model folder needs config.json, model.safetensors and tokenizer.json"),
            )
        })?;
        Self::from_text(&text, &path)
    }

    /// Parses the text of a `config.json`; `origin` names it in errors.
    pub fn from_text(text: &str, origin: &Path) -> Result<ModelConfig> {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| Error::model(origin, format!("config.json is not valid JSON: {e}")))?;
        Self::from_json(&v).map_err(|msg| Error::model(origin, msg))
    }

    pub fn from_json(v: &Value) -> std::result::Result<ModelConfig, String> {
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or("config.json has no `model_type`")?
            .to_string();
        let family = match model_type.as_str() {
            "bert" => Family::Bert,
            "distilbert" => Family::DistilBert,
            "roberta" | "xlm-roberta" | "camembert" => Family::Roberta,
            "electra" => Family::Electra,
            "albert" => Family::Albert,
            "mpnet" => Family::Mpnet,
            "modernbert" => Family::ModernBert,
            "deberta-v2" => Family::DebertaV2,
            other => {
                return Err(format!(
                    "model_type `{other}` is not supported; supported: {SUPPORTED_MODEL_TYPES}"
                ))
            }
        };
        let architecture = v
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let head = head_of(&architecture, &model_type)?;

        let usize_of = |keys: &[&str]| -> std::result::Result<usize, String> {
            for k in keys {
                if let Some(x) = v.get(*k).and_then(Value::as_u64) {
                    return Ok(x as usize);
                }
            }
            Err(format!("config.json has no `{}`", keys[0]))
        };
        let opt_usize =
            |k: &str, d: usize| v.get(k).and_then(Value::as_u64).map_or(d, |x| x as usize);
        let distil = family == Family::DistilBert;
        let hidden_size = usize_of(if distil { &["dim"] } else { &["hidden_size"] })?;
        let num_heads = usize_of(if distil {
            &["n_heads"]
        } else {
            &["num_attention_heads"]
        })?;
        let num_layers = usize_of(if distil {
            &["n_layers"]
        } else {
            &["num_hidden_layers"]
        })?;
        let intermediate_size = usize_of(if distil {
            &["hidden_dim"]
        } else {
            &["intermediate_size"]
        })?;
        let modern = family == Family::ModernBert;
        let act_name = v
            .get(if distil {
                "activation"
            } else if modern {
                "hidden_activation"
            } else {
                "hidden_act"
            })
            .and_then(Value::as_str)
            .unwrap_or("gelu");
        let act = Act::from_hf(act_name).map_err(|e| e.to_string())?;
        if hidden_size == 0 || num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(format!(
                "hidden size {hidden_size} is not divisible by {num_heads} attention heads"
            ));
        }
        let id2label = labels(v)?;
        Ok(ModelConfig {
            family,
            architecture,
            head,
            hidden_size,
            num_heads,
            num_layers,
            intermediate_size,
            act,
            // DistilBERT hard-codes 1e-12 in its LayerNorms.
            layer_norm_eps: v
                .get(if modern { "norm_eps" } else { "layer_norm_eps" })
                .and_then(Value::as_f64)
                .unwrap_or(if modern { 1e-5 } else { 1e-12 }) as f32,
            vocab_size: usize_of(&["vocab_size"])?,
            max_positions: usize_of(&["max_position_embeddings"])?,
            // DistilBERT, MPNet and ModernBERT have no token-type embeddings; DeBERTa-v2 has them
            // only when asked (`DebertaV2Config` defaults to 0).
            type_vocab_size: match family {
                Family::DistilBert | Family::Mpnet | Family::ModernBert => 0,
                Family::DebertaV2 => opt_usize("type_vocab_size", 0),
                _ => opt_usize("type_vocab_size", 2),
            },
            pad_token_id: opt_usize("pad_token_id", 0),
            embedding_size: opt_usize("embedding_size", hidden_size),
            num_hidden_groups: opt_usize("num_hidden_groups", 1).max(1),
            inner_group_num: opt_usize("inner_group_num", 1).max(1),
            id2label,
            problem_type: v
                .get("problem_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            tie_word_embeddings: v
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            model_type,
            raw: v.clone(),
        })
    }

    pub fn num_labels(&self) -> usize {
        self.id2label.len()
    }

    /// Positions the model can embed for one sequence (RoBERTa reserves `pad_token_id + 1`).
    pub fn max_sequence(&self) -> usize {
        match self.family {
            Family::Roberta => self.max_positions.saturating_sub(self.pad_token_id + 1),
            // MPNet's positions start after its hard-coded padding index 1.
            Family::Mpnet => self.max_positions.saturating_sub(2),
            _ => self.max_positions,
        }
    }
}

fn head_of(arch: &str, model_type: &str) -> std::result::Result<HeadKind, String> {
    if arch.is_empty() || arch.ends_with("Model") {
        return Ok(HeadKind::Base);
    }
    if arch.ends_with("ForSequenceClassification") {
        return Ok(HeadKind::SequenceClassification);
    }
    if arch.ends_with("ForQuestionAnswering") {
        return Ok(HeadKind::QuestionAnswering);
    }
    if arch.ends_with("ForTokenClassification") {
        return Ok(HeadKind::TokenClassification);
    }
    if arch.ends_with("ForMaskedLM") {
        return Ok(HeadKind::MaskedLm);
    }
    // Pre-training heads still carry a usable encoder.
    if arch.ends_with("ForPreTraining") {
        return Ok(HeadKind::Base);
    }
    Err(format!(
        "architecture `{arch}` ({model_type}) is not supported; supported: *Model, *ForSequenceClassification, *ForQuestionAnswering, *ForTokenClassification, *ForMaskedLM (and the encoder of *ForPreTraining)"
    ))
}

fn labels(v: &Value) -> std::result::Result<Vec<String>, String> {
    let Some(map) = v.get("id2label").and_then(Value::as_object) else {
        let n = v.get("num_labels").and_then(Value::as_u64).unwrap_or(2) as usize;
        return Ok((0..n).map(|i| format!("LABEL_{i}")).collect());
    };
    let mut out = vec![None; map.len()];
    for (k, name) in map {
        let i: usize = k
            .parse()
            .map_err(|_| format!("id2label key `{k}` is not an integer"))?;
        let slot = out
            .get_mut(i)
            .ok_or_else(|| format!("id2label ids must be 0..{}; found {i}", map.len()))?;
        *slot = Some(name.as_str().unwrap_or_default().to_string());
    }
    Ok(out.into_iter().map(Option::unwrap_or_default).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bert_and_distilbert_field_names() {
        let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models");
        let bert = ModelConfig::load(&Path::new(shared).join("minilm-sst2")).unwrap();
        assert_eq!(bert.family, Family::Bert);
        assert_eq!(bert.head, HeadKind::SequenceClassification);
        assert_eq!(
            (bert.hidden_size, bert.num_heads, bert.num_layers),
            (384, 12, 6)
        );
        assert_eq!(bert.intermediate_size, 1536);
        assert_eq!(bert.id2label, ["NEGATIVE", "POSITIVE"]);
        assert_eq!(bert.type_vocab_size, 2);
        let d = ModelConfig::load(&Path::new(shared).join("distilminilm-squad")).unwrap();
        assert_eq!(d.family, Family::DistilBert);
        assert_eq!(d.head, HeadKind::QuestionAnswering);
        assert_eq!((d.hidden_size, d.num_heads, d.num_layers), (384, 12, 6));
        assert_eq!(d.type_vocab_size, 0);
        assert_eq!(d.act, Act::Gelu);
    }

    #[test]
    fn unknown_model_type_and_architecture_are_named() {
        let e = ModelConfig::from_json(&serde_json::json!({"model_type": "t5"})).unwrap_err();
        assert!(e.contains("t5") && e.contains("supported: bert"), "{e}");
        let e = ModelConfig::from_json(&serde_json::json!({
            "model_type": "bert", "architectures": ["BertForMultipleChoice"]
        }))
        .unwrap_err();
        assert!(
            e.contains("BertForMultipleChoice") && e.contains("ForTokenClassification"),
            "{e}"
        );
    }
}
