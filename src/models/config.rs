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
    /// `label2id` as config.json lists it, in the file's order (zero-shot walks it in that
    /// order, as transformers does); `None` when absent. Values are as written (usually ids).
    #[serde(skip)]
    pub label2id: Option<Vec<(String, Value)>>,
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
        let mut cfg = Self::from_json(&v).map_err(|msg| Error::model(origin, msg))?;
        // A `Value` keeps object keys sorted; read `label2id` again for the file's order.
        cfg.label2id = serde_json::from_str::<Label2IdInOrder>(text)
            .map_err(|e| Error::model(origin, format!("config.json's `label2id`: {e}")))?
            .label2id
            .map(|m| m.0);
        Ok(cfg)
    }

    /// The config from parsed JSON. A `Value` has lost the file's key order, so `label2id`
    /// comes out sorted by label here; [`from_text`](Self::from_text) keeps the file's order.
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
        let defaults = Defaults::of(family);
        absolute_positions_only(v, family)?;
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
            .unwrap_or(defaults.act);
        let act = Act::from_hf(act_name).map_err(|e| e.to_string())?;
        if hidden_size == 0 || num_heads == 0 || hidden_size % num_heads != 0 {
            return Err(format!(
                "hidden size {hidden_size} is not divisible by {num_heads} attention heads"
            ));
        }
        let id2label = labels(v)?;
        let label2id = match v.get("label2id") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.iter().map(|(k, x)| (k.clone(), x.clone())).collect()),
            Some(other) => return Err(format!("`label2id` must be an object, found {other}")),
        };
        Ok(ModelConfig {
            family,
            architecture,
            head,
            hidden_size,
            num_heads,
            num_layers,
            intermediate_size,
            act,
            // DistilBERT hard-codes 1e-12 in its LayerNorms, whatever the config says.
            layer_norm_eps: if distil {
                1e-12
            } else {
                v.get(if modern { "norm_eps" } else { "layer_norm_eps" })
                    .and_then(Value::as_f64)
                    .unwrap_or(defaults.layer_norm_eps) as f32
            },
            vocab_size: usize_of(&["vocab_size"])?,
            max_positions: usize_of(&["max_position_embeddings"])?,
            // DistilBERT, MPNet and ModernBERT have no token-type embeddings; DeBERTa-v2 has them
            // only when asked (`DebertaV2Config` defaults to 0).
            type_vocab_size: match family {
                Family::DistilBert | Family::Mpnet | Family::ModernBert => 0,
                Family::DebertaV2 => opt_usize("type_vocab_size", 0),
                _ => opt_usize("type_vocab_size", 2),
            },
            pad_token_id: opt_usize("pad_token_id", defaults.pad_token_id),
            embedding_size: opt_usize(
                "embedding_size",
                defaults.embedding_size.unwrap_or(hidden_size),
            ),
            num_hidden_groups: opt_usize("num_hidden_groups", 1).max(1),
            inner_group_num: opt_usize("inner_group_num", 1).max(1),
            id2label,
            label2id,
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

/// Only `label2id` of a config.json, its entries in the file's order.
#[derive(serde::Deserialize)]
struct Label2IdInOrder {
    #[serde(default)]
    label2id: Option<InOrder>,
}

struct InOrder(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for InOrder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = InOrder;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object mapping labels to ids")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<InOrder, A::Error> {
                let mut entries = vec![];
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(InOrder(entries))
            }
        }
        d.deserialize_map(Entries)
    }
}

/// What transformers' config class of each family assumes for a key `config.json` leaves out
/// (`BertConfig`, `RobertaConfig`/`XLMRobertaConfig`/`CamembertConfig`, `ElectraConfig`,
/// `AlbertConfig`, `MPNetConfig`, `ModernBertConfig`, `DebertaV2Config`, `DistilBertConfig`).
struct Defaults {
    act: &'static str,
    layer_norm_eps: f64,
    pad_token_id: usize,
    /// `None`: the hidden size.
    embedding_size: Option<usize>,
}

impl Defaults {
    fn of(family: Family) -> Defaults {
        let bert = Defaults {
            act: "gelu",
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            embedding_size: None,
        };
        match family {
            Family::Bert | Family::DistilBert => bert,
            Family::Roberta | Family::Mpnet => Defaults {
                pad_token_id: 1,
                ..bert
            },
            Family::Electra => Defaults {
                embedding_size: Some(128),
                ..bert
            },
            Family::Albert => Defaults {
                act: "gelu_new",
                embedding_size: Some(128),
                ..bert
            },
            Family::DebertaV2 => Defaults {
                layer_norm_eps: 1e-7,
                ..bert
            },
            Family::ModernBert => Defaults {
                layer_norm_eps: 1e-5,
                pad_token_id: 50283,
                ..bert
            },
        }
    }
}

/// BERT-style attention in transformers also implements `position_embedding_type`
/// `relative_key` / `relative_key_query` (learned distance embeddings added to the scores, no
/// absolute position table); wgformer runs absolute positions only, so anything else would
/// load and give different answers.
fn absolute_positions_only(v: &Value, family: Family) -> std::result::Result<(), String> {
    if !matches!(
        family,
        Family::Bert | Family::Roberta | Family::Electra | Family::Albert
    ) {
        return Ok(());
    }
    // `null` is refused too: transformers then adds no position embeddings at all.
    match v.get("position_embedding_type") {
        None => Ok(()),
        Some(Value::String(s)) if s == "absolute" => Ok(()),
        Some(other) => Err(format!(
            "config.json sets `position_embedding_type` to {other}: wgformer supports only \
             \"absolute\" position embeddings (relative_key and relative_key_query add learned \
             distance terms to attention that it does not implement); use a checkpoint trained \
             with absolute positions"
        )),
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

    /// A config.json with only the keys wgformer requires: every other value comes from the
    /// family's defaults.
    fn minimal(model_type: &str) -> Value {
        let mut v = serde_json::json!({
            "model_type": model_type,
            "vocab_size": 100,
            "max_position_embeddings": 64,
        });
        let keys: &[(&str, usize)] = if model_type == "distilbert" {
            &[
                ("dim", 32),
                ("n_heads", 4),
                ("n_layers", 2),
                ("hidden_dim", 64),
            ]
        } else {
            &[
                ("hidden_size", 32),
                ("num_attention_heads", 4),
                ("num_hidden_layers", 2),
                ("intermediate_size", 64),
            ]
        };
        for (k, n) in keys {
            v[*k] = (*n).into();
        }
        v
    }

    /// The defaults of transformers' config classes (`__init__` / dataclass fields of
    /// BertConfig, RobertaConfig, XLMRobertaConfig, CamembertConfig, ElectraConfig, AlbertConfig,
    /// MPNetConfig, DebertaV2Config, ModernBertConfig, DistilBertConfig; DistilBERT's LayerNorm
    /// eps is the 1e-12 its modeling file hard-codes).
    #[test]
    fn missing_keys_take_the_family_defaults_of_transformers() {
        // (model_type, activation, layer_norm_eps, pad_token_id, embedding_size or None = hidden)
        let table: &[(&str, Act, f32, usize, Option<usize>)] = &[
            ("bert", Act::Gelu, 1e-12, 0, None),
            ("roberta", Act::Gelu, 1e-12, 1, None),
            ("xlm-roberta", Act::Gelu, 1e-12, 1, None),
            ("camembert", Act::Gelu, 1e-12, 1, None),
            ("electra", Act::Gelu, 1e-12, 0, Some(128)),
            ("albert", Act::GeluNew, 1e-12, 0, Some(128)),
            ("mpnet", Act::Gelu, 1e-12, 1, None),
            ("deberta-v2", Act::Gelu, 1e-7, 0, None),
            ("modernbert", Act::Gelu, 1e-5, 50283, None),
            ("distilbert", Act::Gelu, 1e-12, 0, None),
        ];
        for &(model_type, act, eps, pad, emb) in table {
            let c = ModelConfig::from_json(&minimal(model_type))
                .unwrap_or_else(|e| panic!("{model_type}: {e}"));
            assert_eq!(c.act, act, "{model_type} activation");
            assert_eq!(c.layer_norm_eps, eps, "{model_type} layer_norm_eps");
            assert_eq!(c.pad_token_id, pad, "{model_type} pad_token_id");
            assert_eq!(
                c.embedding_size,
                emb.unwrap_or(32),
                "{model_type} embedding_size"
            );
        }
        // Keys that are present win over the defaults.
        let mut v = minimal("albert");
        v["hidden_act"] = "gelu".into();
        v["embedding_size"] = 16.into();
        let c = ModelConfig::from_json(&v).unwrap();
        assert_eq!((c.act, c.embedding_size), (Act::Gelu, 16));
        let mut v = minimal("deberta-v2");
        v["layer_norm_eps"] = 1e-5.into();
        assert_eq!(ModelConfig::from_json(&v).unwrap().layer_norm_eps, 1e-5);
        // DistilBERT ignores the key: its LayerNorms are built with eps=1e-12.
        let mut v = minimal("distilbert");
        v["layer_norm_eps"] = 1e-5.into();
        assert_eq!(ModelConfig::from_json(&v).unwrap().layer_norm_eps, 1e-12);
    }

    #[test]
    fn position_embedding_types_other_than_absolute_are_refused() {
        for model_type in [
            "bert",
            "roberta",
            "xlm-roberta",
            "camembert",
            "electra",
            "albert",
        ] {
            for kind in [
                serde_json::json!("relative_key"),
                serde_json::json!("relative_key_query"),
                Value::Null,
            ] {
                let mut v = minimal(model_type);
                v["position_embedding_type"] = kind.clone();
                let e = ModelConfig::from_json(&v).unwrap_err();
                assert!(
                    e.contains("`position_embedding_type`")
                        && e.contains(&kind.to_string())
                        && e.contains("only \"absolute\""),
                    "{model_type} {kind}: {e}"
                );
            }
            let mut v = minimal(model_type);
            v["position_embedding_type"] = "absolute".into();
            ModelConfig::from_json(&v).unwrap_or_else(|e| panic!("{model_type}: {e}"));
        }
    }

    #[test]
    fn label2id_keeps_the_file_order() {
        let text = r#"{"model_type": "bert", "vocab_size": 10, "max_position_embeddings": 8,
            "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
            "intermediate_size": 8, "id2label": {"0": "a", "1": "b", "2": "c"},
            "label2id": {"c": 2, "a": 0, "b": 1}}"#;
        let c = ModelConfig::from_text(text, Path::new("config.json")).unwrap();
        let order: Vec<(&str, i64)> = c
            .label2id
            .as_ref()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_i64().unwrap()))
            .collect();
        assert_eq!(order, [("c", 2), ("a", 0), ("b", 1)]);
        let none = text.replace(r#""label2id": {"c": 2, "a": 0, "b": 1}"#, r#""x": 0"#);
        assert!(ModelConfig::from_text(&none, Path::new("config.json"))
            .unwrap()
            .label2id
            .is_none());
    }
}
