//! Request and response bodies with TEI's and OpenAI's field names, and the parsing of the
//! loosely typed `inputs` fields into texts, with messages that say what was expected.

use super::error::ApiError;
use crate::pipelines::classify::LabelScore;
use crate::pipelines::qa::QaAnswer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /embed` (TEI).
#[derive(Debug, Deserialize)]
pub struct EmbedRequest {
    pub inputs: Value,
    /// Absent: as the model folder says (`modules.json`), like `wgformer embed`.
    #[serde(default)]
    pub normalize: Option<bool>,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: Option<String>,
    #[serde(default)]
    pub prompt_name: Option<String>,
    #[serde(default)]
    pub dimensions: Option<usize>,
}

/// `POST /predict` (TEI).
#[derive(Debug, Deserialize)]
pub struct PredictRequest {
    pub inputs: Value,
    #[serde(default)]
    pub raw_scores: bool,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: Option<String>,
}

/// `POST /rerank` (TEI).
#[derive(Debug, Deserialize)]
pub struct RerankRequest {
    pub query: String,
    pub texts: Vec<String>,
    #[serde(default)]
    pub raw_scores: bool,
    #[serde(default)]
    pub return_text: bool,
    #[serde(default)]
    pub truncate: Option<bool>,
    #[serde(default)]
    pub truncation_direction: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Rank {
    pub index: usize,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `POST /qa`: transformers' `question-answering` pipeline arguments, with its defaults.
#[derive(Debug, Deserialize)]
pub struct QaRequest {
    pub question: String,
    pub context: String,
    #[serde(default)]
    pub top_k: Option<usize>,
    #[serde(default)]
    pub doc_stride: Option<usize>,
    #[serde(default)]
    pub max_answer_len: Option<usize>,
    #[serde(default)]
    pub max_seq_len: Option<usize>,
    #[serde(default)]
    pub max_question_len: Option<usize>,
    #[serde(default)]
    pub handle_impossible_answer: Option<bool>,
    #[serde(default)]
    pub align_to_words: Option<bool>,
}

/// `POST /v1/embeddings` (OpenAI).
#[derive(Debug, Deserialize)]
pub struct OpenAiEmbeddingsRequest {
    pub input: Value,
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64` (little-endian f32 bytes; the official Python client asks
    /// for it when the caller does not choose).
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<usize>,
    #[serde(default)]
    pub user: Option<Value>,
}

/// `/predict`'s answer: one list of labels for a single string, a list of them otherwise.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum PredictResponse {
    Single(Vec<LabelScore>),
    Batch(Vec<Vec<LabelScore>>),
}

/// `/qa`'s answer: transformers returns one answer object for `top_k` 1, a list otherwise.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum QaResponse {
    One(QaAnswer),
    Many(Vec<QaAnswer>),
}

/// `/v1/embeddings`' answer, fields in OpenAI's order.
#[derive(Debug, Serialize)]
pub struct OpenAiEmbeddingsResponse {
    pub object: &'static str,
    pub data: Vec<OpenAiEmbedding>,
    pub model: String,
    pub usage: OpenAiUsage,
}

#[derive(Debug, Serialize)]
pub struct OpenAiEmbedding {
    pub object: &'static str,
    pub index: usize,
    pub embedding: EmbeddingValue,
}

/// Floats, or (`encoding_format: "base64"`) the little-endian f32 bytes in base64.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Serialize)]
pub struct OpenAiUsage {
    pub prompt_tokens: usize,
    pub total_tokens: usize,
}

/// `POST /tokenize` (TEI).
#[derive(Debug, Deserialize)]
pub struct TokenizeRequest {
    pub inputs: Value,
    #[serde(default = "yes")]
    pub add_special_tokens: bool,
    #[serde(default)]
    pub prompt_name: Option<String>,
}

fn yes() -> bool {
    true
}

/// One token as TEI's `/tokenize` answers it: byte offsets into the input, none for special
/// tokens.
#[derive(Debug, Serialize)]
pub struct SimpleToken {
    pub id: u32,
    pub text: String,
    pub special: bool,
    pub start: Option<usize>,
    pub stop: Option<usize>,
}

/// A text or a text pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairInput {
    pub text: String,
    pub pair: Option<String>,
}

/// What JSON `v` is, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// `str | [str]` → the texts and whether the request gave a single string.
pub fn texts(field: &str, v: &Value) -> Result<(Vec<String>, bool), ApiError> {
    match v {
        Value::String(s) => Ok((vec![s.clone()], true)),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                match it {
                    Value::String(s) => out.push(s.clone()),
                    other => {
                        return Err(ApiError::validation(format!(
                            "`{field}[{i}]` must be a string, found {}",
                            kind(other)
                        )))
                    }
                }
            }
            Ok((out, false))
        }
        other => Err(ApiError::validation(format!(
            "`{field}` must be a string or a list of strings, found {}",
            kind(other)
        ))),
    }
}

/// `/predict`'s inputs: `str` (one text), or a list whose items are each a text `str` or a
/// pair `[text, text_pair]`. Returns the inputs and whether the request gave a single string.
///
/// Note: TEI reads `["a", "b"]` as one *pair*; here a list of strings is always a batch of
/// texts, and a pair is always written `[["a", "b"]]`.
pub fn predict_inputs(v: &Value) -> Result<(Vec<PairInput>, bool), ApiError> {
    let shape =
        "`inputs` must be a string, a list of strings, or a list of [text, text_pair] pairs";
    match v {
        Value::String(s) => Ok((
            vec![PairInput {
                text: s.clone(),
                pair: None,
            }],
            true,
        )),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.iter().enumerate() {
                match it {
                    Value::String(s) => out.push(PairInput {
                        text: s.clone(),
                        pair: None,
                    }),
                    Value::Array(p) => match p.as_slice() {
                        [Value::String(a), Value::String(b)] => out.push(PairInput {
                            text: a.clone(),
                            pair: Some(b.clone()),
                        }),
                        _ => {
                            return Err(ApiError::validation(format!(
                                "`inputs[{i}]` must be a pair of two strings [text, text_pair], \
                                 found a list of {} item(s); {shape}",
                                p.len()
                            )))
                        }
                    },
                    other => {
                        return Err(ApiError::validation(format!(
                            "`inputs[{i}]` is {}; {shape}",
                            kind(other)
                        )))
                    }
                }
            }
            Ok((out, false))
        }
        other => Err(ApiError::validation(format!(
            "`inputs` is {}; {shape}",
            kind(other)
        ))),
    }
}

/// One OpenAI `input` item: a text, or token ids used as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiInput {
    Text(String),
    Ids(Vec<u32>),
}

/// OpenAI's `input`: `str | [str] | [int] | [[int]]`.
pub fn openai_inputs(v: &Value) -> Result<Vec<OpenAiInput>, ApiError> {
    let shape = "`input` must be a string, a list of strings, a list of token ids, or a list of \
                 lists of token ids";
    let ids = |field: String, items: &[Value]| -> Result<Vec<u32>, ApiError> {
        items
            .iter()
            .enumerate()
            .map(|(k, x)| {
                x.as_u64()
                    .filter(|&n| n <= u32::MAX as u64)
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        ApiError::validation(format!(
                            "`{field}[{k}]` must be a non-negative integer token id, found {x}"
                        ))
                    })
            })
            .collect()
    };
    match v {
        Value::String(s) => Ok(vec![OpenAiInput::Text(s.clone())]),
        Value::Array(items) if items.first().is_some_and(Value::is_number) => {
            Ok(vec![OpenAiInput::Ids(ids("input".into(), items)?)])
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, it)| match it {
                Value::String(s) => Ok(OpenAiInput::Text(s.clone())),
                Value::Array(t) => Ok(OpenAiInput::Ids(ids(format!("input[{i}]"), t)?)),
                other => Err(ApiError::validation(format!(
                    "`input[{i}]` is {}; {shape}",
                    kind(other)
                ))),
            })
            .collect(),
        other => Err(ApiError::validation(format!(
            "`input` is {}; {shape}",
            kind(other)
        ))),
    }
}

/// Only right truncation is implemented (TEI's default).
pub fn check_truncation_direction(d: &Option<String>) -> Result<(), ApiError> {
    match d.as_deref() {
        None => Ok(()),
        Some(s) if s.eq_ignore_ascii_case("right") => Ok(()),
        Some(s) => Err(ApiError::validation(format!(
            "truncation_direction {s:?} is not supported: wgformer truncates on the right"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predict_inputs_shapes() {
        let (v, single) = predict_inputs(&json!("a")).unwrap();
        assert!(single);
        assert_eq!(v[0].pair, None);
        let (v, single) = predict_inputs(&json!(["a", "b"])).unwrap();
        assert!(!single);
        assert_eq!(v.len(), 2);
        let (v, _) = predict_inputs(&json!([["q", "p"], "x"])).unwrap();
        assert_eq!(v[0].pair.as_deref(), Some("p"));
        assert_eq!(v[1].pair, None);
        let e = predict_inputs(&json!([["q"]])).unwrap_err();
        assert!(e.message.contains("inputs[0]"), "{}", e.message);
        assert!(predict_inputs(&json!(3)).is_err());
        assert!(predict_inputs(&json!([{"text": "x"}])).is_err());
        assert!(predict_inputs(&json!([]))
            .map(|(v, _)| v.is_empty())
            .unwrap());
    }

    #[test]
    fn openai_input_shapes() {
        assert_eq!(
            openai_inputs(&json!("a")).unwrap(),
            vec![OpenAiInput::Text("a".into())]
        );
        assert_eq!(
            openai_inputs(&json!([101, 102])).unwrap(),
            vec![OpenAiInput::Ids(vec![101, 102])]
        );
        assert_eq!(
            openai_inputs(&json!(["a", [5]])).unwrap(),
            vec![OpenAiInput::Text("a".into()), OpenAiInput::Ids(vec![5])]
        );
        assert!(openai_inputs(&json!([1, -2])).is_err());
        assert!(openai_inputs(&json!([1.5])).is_err());
        assert!(openai_inputs(&json!([null])).is_err());
        assert!(openai_inputs(&json!({})).is_err());
    }

    #[test]
    fn texts_shapes() {
        assert_eq!(
            texts("inputs", &json!("x")).unwrap(),
            (vec!["x".into()], true)
        );
        let e = texts("inputs", &json!(["x", 1])).unwrap_err();
        assert_eq!(e.message, "`inputs[1]` must be a string, found a number");
        assert!(check_truncation_direction(&Some("Right".into())).is_ok());
        assert!(check_truncation_direction(&Some("left".into())).is_err());
    }
}
