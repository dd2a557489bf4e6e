//! Many inputs from one file (`--input FILE`, `-` for stdin), one per line.
//!
//! A bad line never costs the good ones: each line becomes an [`Item`] with its 1-based line number
//! and either its value or a message `line N: what is wrong and what to do`.
//!
//! Formats:
//! - question answering: JSON Lines, `{"id": ..., "question": ..., "context": ...}`; `id` (string
//!   or integer) is optional and defaults to the line number; other fields are ignored;
//! - classification / embeddings: per line, either plain text or a JSON object
//!   `{"text": ..., "text_pair": ...}` (`text_pair` optional or null). A line is JSON when, after
//!   leading whitespace, it starts with `{` and parses as a JSON object; such an object must then
//!   have a string `text`. A line that starts with `{"`, ends with `}` and does not parse is
//!   reported as broken JSON rather than classified as text; to classify such a text literally,
//!   wrap it: `{"text": "..."}`. Any other line is the text itself, verbatim (no trimming: for
//!   byte-level BPE a leading space changes the tokens).
//!
//! Lines are split on `\n` with a trailing `\r` removed, and a UTF-8 byte-order mark at the start
//! of the file is dropped. Blank (whitespace-only) lines are skipped in both formats.

use std::io::Read;

use serde_json::{Map, Value};

use crate::{Error, Result};

/// One line of an input file: its 1-based number and its text, or why it is unreadable.
pub type Line = (usize, std::result::Result<String, String>);

/// One parsed input: its 1-based line number and its value or an error message `line N: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item<T> {
    pub line: usize,
    pub value: std::result::Result<T, String>,
}

/// A question-answering input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaInput {
    /// The `id` field, or the line number when absent.
    pub id: String,
    pub question: String,
    pub context: String,
}

/// A classification or embedding input: a text and, for sentence-pair models, its pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextInput {
    pub text: String,
    pub text_pair: Option<String>,
}

/// Reads `path` (`-` = stdin) into lines; a line that is not valid UTF-8 becomes an `Err` naming
/// it, the others are kept. Only an unreadable file is an error for the whole call.
pub fn read_lines(path: &str) -> Result<Vec<Line>> {
    let mut bytes = Vec::new();
    if path == "-" {
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("reading inputs from stdin", e))?;
    } else {
        bytes =
            std::fs::read(path).map_err(|e| Error::io(format!("reading input file {path}"), e))?;
    }
    Ok(split_lines(&bytes))
}

/// Splits raw file contents into lines, as [`read_lines`] does.
pub fn split_lines(bytes: &[u8]) -> Vec<Line> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut parts: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // A final newline ends the last line; it does not start an empty one.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let n = i + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = std::str::from_utf8(raw).map(str::to_owned).map_err(|e| {
                format!(
                    "line {n}: not valid UTF-8 (bad byte at column {}); save the file as UTF-8",
                    e.valid_up_to() + 1
                )
            });
            (n, text)
        })
        .collect()
}

/// Parses question-answering JSON Lines; blank lines are skipped.
pub fn parse_qa(lines: Vec<Line>) -> Vec<Item<QaInput>> {
    lines
        .into_iter()
        .filter(|(_, l)| !matches!(l, Ok(s) if s.trim().is_empty()))
        .map(|(n, l)| Item {
            line: n,
            value: l.and_then(|s| parse_qa_line(n, &s)),
        })
        .collect()
}

/// Parses classification / embedding inputs (plain text or `{"text", "text_pair"}` per line,
/// decided line by line); blank lines are skipped.
pub fn parse_texts(lines: Vec<Line>) -> Vec<Item<TextInput>> {
    lines
        .into_iter()
        .filter(|(_, l)| !matches!(l, Ok(s) if s.trim().is_empty()))
        .map(|(n, l)| Item {
            line: n,
            value: l.and_then(|s| parse_text_line(n, s)),
        })
        .collect()
}

/// [`read_lines`] then [`parse_qa`].
pub fn read_qa(path: &str) -> Result<Vec<Item<QaInput>>> {
    Ok(parse_qa(read_lines(path)?))
}

/// [`read_lines`] then [`parse_texts`].
pub fn read_texts(path: &str) -> Result<Vec<Item<TextInput>>> {
    Ok(parse_texts(read_lines(path)?))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A required string field.
fn string_field(
    n: usize,
    obj: &Map<String, Value>,
    key: &str,
) -> std::result::Result<String, String> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => Err(format!("line {n}: missing field \"{key}\"")),
        Some(v) => Err(format!(
            "line {n}: field \"{key}\" must be a string, found {}",
            kind(v)
        )),
    }
}

fn parse_qa_line(n: usize, s: &str) -> std::result::Result<QaInput, String> {
    const SHAPE: &str =
        r#"each line must be a JSON object like {"id": "q1", "question": "...", "context": "..."}"#;
    let v: Value =
        serde_json::from_str(s).map_err(|e| format!("line {n}: not valid JSON ({e}); {SHAPE}"))?;
    let Value::Object(obj) = v else {
        return Err(format!("line {n}: found {}; {SHAPE}", kind(&v)));
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(x)) if x.is_i64() || x.is_u64() => x.to_string(),
        Some(v) => {
            return Err(format!(
                "line {n}: field \"id\" must be a string or an integer, found {}",
                kind(v)
            ))
        }
    };
    let question = string_field(n, &obj, "question")?;
    let context = string_field(n, &obj, "context")?;
    // transformers' question-answering pipeline rejects empty questions and contexts too.
    if question.is_empty() {
        return Err(format!(
            "line {n}: empty question; give a question to answer"
        ));
    }
    if context.is_empty() {
        return Err(format!(
            "line {n}: empty context; give a text to find the answer in"
        ));
    }
    Ok(QaInput {
        id,
        question,
        context,
    })
}

fn parse_text_line(n: usize, s: String) -> std::result::Result<TextInput, String> {
    let t = s.trim();
    if t.starts_with('{') {
        match serde_json::from_str::<Value>(t) {
            Ok(Value::Object(obj)) => {
                let text = string_field(n, &obj, "text").map_err(|e| {
                    format!(
                        "{e}; a line that is a JSON object must be {{\"text\": ..., \"text_pair\": ...}} \
                         (to classify the line literally, write {{\"text\": <the line as a JSON string>}})"
                    )
                })?;
                let text_pair = match obj.get("text_pair") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(p)) => Some(p.clone()),
                    Some(v) => {
                        return Err(format!(
                            "line {n}: field \"text_pair\" must be a string or null, found {}",
                            kind(v)
                        ))
                    }
                };
                return Ok(TextInput { text, text_pair });
            }
            Err(e) if t.starts_with("{\"") && t.ends_with('}') => {
                return Err(format!(
                    "line {n}: looks like JSON but does not parse ({e}); fix it, or to classify the line \
                     literally write it as {{\"text\": <the line as a JSON string>}}"
                ));
            }
            // Text that merely starts with a brace.
            _ => {}
        }
    }
    Ok(TextInput {
        text: s,
        text_pair: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, p: Option<&str>) -> TextInput {
        TextInput {
            text: t.into(),
            text_pair: p.map(Into::into),
        }
    }

    #[test]
    fn split_lines_keeps_numbers_and_flags_bad_utf8() {
        let bytes = b"\xEF\xBB\xBFfirst\r\nbad \xFF\xFE here\n\nlast";
        let lines = split_lines(bytes);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], (1, Ok("first".to_string())));
        let (n, e) = &lines[1];
        assert_eq!(*n, 2);
        let e = e.as_ref().unwrap_err();
        assert!(
            e.starts_with("line 2: not valid UTF-8") && e.contains("column 5"),
            "{e}"
        );
        assert_eq!(lines[2], (3, Ok(String::new())));
        assert_eq!(lines[3], (4, Ok("last".to_string())));
        assert_eq!(split_lines(b"a\n").len(), 1);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn read_lines_from_file_with_invalid_utf8() {
        let path = std::env::temp_dir().join(format!("wgformer-input-{}.txt", std::process::id()));
        std::fs::write(
            &path,
            b"good one\n\xC3\x28 broken\n{\"text\": \"caf\xC3\xA9\"}\n",
        )
        .unwrap();
        let items = read_texts(path.to_str().unwrap()).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].value, Ok(text("good one", None)));
        assert_eq!(items[1].line, 2);
        assert!(items[1].value.as_ref().unwrap_err().contains("UTF-8"));
        assert_eq!(items[2].value, Ok(text("café", None)));
        let err = read_lines("/nonexistent/wgformer-inputs.txt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/wgformer-inputs.txt"), "{err}");
    }

    #[test]
    fn texts_plain_and_jsonl_per_line() {
        let src = concat!(
            "a plain sentence .\n",
            "   \n",
            "{\"text\": \"it is not a bad film\", \"text_pair\": \"it is a good film\"}\n",
            "{\"text\": \"\", \"text_pair\": null}\n",
            "{curly} text is just text\n",
            "{\"txt\": \"typo\"}\n",
            "{\"text\": 3}\n",
            "{\"text\": \"x\", \"text_pair\": [1]}\n",
            "{\"text\": \"unterminated}\n",
            " leading space kept\n",
        );
        let items = parse_texts(split_lines(src.as_bytes()));
        let lines: Vec<usize> = items.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(items[0].value, Ok(text("a plain sentence .", None)));
        assert_eq!(
            items[1].value,
            Ok(text("it is not a bad film", Some("it is a good film")))
        );
        assert_eq!(items[2].value, Ok(text("", None)));
        assert_eq!(items[3].value, Ok(text("{curly} text is just text", None)));
        let err = |i: usize| items[i].value.clone().unwrap_err();
        assert!(
            err(4).starts_with("line 6: missing field \"text\""),
            "{}",
            err(4)
        );
        assert!(
            err(5).starts_with("line 7: field \"text\" must be a string"),
            "{}",
            err(5)
        );
        assert!(
            err(6).starts_with("line 8: field \"text_pair\""),
            "{}",
            err(6)
        );
        assert!(err(7).starts_with("line 9: looks like JSON"), "{}", err(7));
        assert_eq!(items[8].value, Ok(text(" leading space kept", None)));
    }

    #[test]
    fn qa_lines() {
        let src = concat!(
            "{\"id\": \"q1\", \"question\": \"Who?\", \"context\": \"Ann did.\"}\n",
            "{\"question\": \"What?\", \"context\": \"This.\", \"answers\": []}\n",
            "\n",
            "{\"id\": 7, \"question\": \"Q\", \"context\": \"C\"}\n",
            "not json\n",
            "[1, 2]\n",
            "{\"id\": \"x\", \"context\": \"C\"}\n",
            "{\"question\": \"\", \"context\": \"C\"}\n",
            "{\"question\": \"Q\", \"context\": \"\"}\n",
            "{\"id\": 1.5, \"question\": \"Q\", \"context\": \"C\"}\n",
            "{\"question\": \"Q\", \"context\": 5}\n",
        );
        let mut lines = split_lines(src.as_bytes());
        lines.push((
            12,
            Err("line 12: not valid UTF-8 (bad byte at column 1); save the file as UTF-8".into()),
        ));
        let items = parse_qa(lines);
        assert_eq!(items.len(), 11);
        let qa = |id: &str, q: &str, c: &str| {
            Ok(QaInput {
                id: id.into(),
                question: q.into(),
                context: c.into(),
            })
        };
        assert_eq!(items[0].value, qa("q1", "Who?", "Ann did."));
        assert_eq!(items[1].value, qa("2", "What?", "This."));
        assert_eq!(
            (items[2].line, items[2].value.clone()),
            (4, qa("7", "Q", "C"))
        );
        let err = |i: usize| items[i].value.clone().unwrap_err();
        assert!(err(3).starts_with("line 5: not valid JSON"), "{}", err(3));
        assert!(err(4).starts_with("line 6: found an array"), "{}", err(4));
        assert_eq!(err(5), "line 7: missing field \"question\"");
        assert!(err(6).starts_with("line 8: empty question"), "{}", err(6));
        assert!(err(7).starts_with("line 9: empty context"), "{}", err(7));
        assert!(err(8).starts_with("line 10: field \"id\""), "{}", err(8));
        assert!(
            err(9).starts_with("line 11: field \"context\" must be a string"),
            "{}",
            err(9)
        );
        assert!(
            err(10).starts_with("line 12: not valid UTF-8"),
            "{}",
            err(10)
        );
    }
}
