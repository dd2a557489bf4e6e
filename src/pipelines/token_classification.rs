//! Post-processing of per-token logits with the rules of transformers' `token-classification`
//! (`ner`) pipeline (`TokenClassificationPipeline`, transformers 5): softmax per token, special
//! tokens dropped, subwords found from offsets, then one of the five aggregation strategies, and
//! the ignored labels (`O`) filtered out.
//!
//! What is a subword decides how words are formed for `first`, `average` and `max`:
//! - tokenizers whose model marks continuations (`continuing_subword_prefix`, e.g. WordPiece's
//!   `##`): a token is a subword when its vocabulary string and the text it covers differ in
//!   length (`##ing` covers `ing`);
//! - others (byte-level BPE, SentencePiece Unigram): transformers' fallback heuristic, a token is
//!   a subword when it does not start the text and neither the character before it nor its
//!   first character is a space;
//! - an unknown token is never a subword, and its word is the text it covers.
//!
//! Words and groups are spelled by the tokenizer's decoder over the token strings
//! (`convert_tokens_to_string`), the way transformers does, oddities included (a byte-level word
//! decoded twice loses its non-ASCII characters to U+FFFD, exactly as the pipeline prints it).

use serde::Serialize;

use crate::{Error, Result};

/// transformers' `AggregationStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// One result per token (`entity`, `index`).
    None,
    /// Adjacent tokens with the same entity type grouped (a `B-` tag starts a new group).
    Simple,
    /// Words take the label of their first token, then grouped as `Simple`.
    First,
    /// Words take the label with the best average score over their tokens.
    Average,
    /// Words take the label of their most confident token.
    Max,
}

impl Aggregation {
    /// `none`, `simple`, `first`, `average` or `max`, in any case.
    pub fn parse(s: &str) -> Result<Aggregation> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Aggregation::None,
            "simple" => Aggregation::Simple,
            "first" => Aggregation::First,
            "average" => Aggregation::Average,
            "max" => Aggregation::Max,
            _ => {
                return Err(Error::Input(format!(
                    "unknown aggregation strategy {s:?}: use none, simple, first, average or max"
                )))
            }
        })
    }
}

/// One result, serialised as transformers prints it: `{"entity", "score", "index", "word",
/// "start", "end"}` per token without aggregation, `{"entity_group", "score", "word", "start",
/// "end"}` with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_group: Option<String>,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub word: String,
    /// Character offsets into the input text (Unicode scalar values, as Python counts).
    pub start: usize,
    pub end: usize,
}

impl Entity {
    /// The label (`entity`) or group (`entity_group`), whichever this result has.
    pub fn label(&self) -> &str {
        self.entity
            .as_deref()
            .or(self.entity_group.as_deref())
            .unwrap_or("")
    }
}

/// One token of an encoded text, as the pipeline sees it.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: u32,
    /// The vocabulary string (`convert_ids_to_tokens`).
    pub token: String,
    /// Character offsets into the text.
    pub start: usize,
    pub end: usize,
    /// Added by the post-processor (`[CLS]`, `</s>`...): skipped.
    pub special: bool,
}

/// What post-processing needs to know about the tokenizer.
pub struct TokenizerInfo<'a> {
    /// `unk_token_id`: such a token's word is the text it covers.
    pub unk_id: Option<u32>,
    /// See [`TextTokenizer::word_aware`](super::tokenize::TextTokenizer::word_aware).
    pub word_aware: bool,
    /// `convert_tokens_to_string`.
    pub tokens_to_string: &'a dyn Fn(&[String]) -> Result<String>,
}

struct PreEntity {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// Softmax per token as numpy computes it in the pipeline (max subtracted), in f64 then
/// rounded to the f32 values transformers hands out.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits
        .iter()
        .map(|&x| x as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|&x| (x / sum) as f32).collect()
}

/// numpy's `argmax`: the first of the largest.
fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn label(id2label: &[String], i: usize) -> String {
    id2label
        .get(i)
        .cloned()
        .unwrap_or_else(|| format!("LABEL_{i}"))
}

/// Post-processes one text: `logits` holds `num_labels` values per token of `tokens`.
/// `ignore` lists labels (or groups) left out of the result (transformers' default: `["O"]`).
pub fn postprocess(
    text: &str,
    tokens: &[Token],
    logits: &[f32],
    id2label: &[String],
    tok: &TokenizerInfo,
    strategy: Aggregation,
    ignore: &[String],
) -> Result<Vec<Entity>> {
    let n = id2label.len().max(1);
    if logits.len() != tokens.len() * n {
        return Err(Error::Input(format!(
            "{} logits for {} tokens of {n} labels",
            logits.len(),
            tokens.len()
        )));
    }
    let chars: Vec<char> = text.chars().collect();
    let slice = |a: usize, b: usize| -> String {
        let (a, b) = (a.min(chars.len()), b.min(chars.len()));
        chars[a..b.max(a)].iter().collect()
    };
    let mut pre = vec![];
    for (index, t) in tokens.iter().enumerate() {
        if t.special {
            continue;
        }
        let scores = softmax(&logits[index * n..(index + 1) * n]);
        let word_ref = slice(t.start, t.end);
        let mut word = t.token.clone();
        let mut is_subword = if tok.word_aware {
            word.chars().count() != word_ref.chars().count()
        } else {
            // `start > 0 and " " not in sentence[start - 1 : start + 1]`
            t.start > 0 && !slice(t.start - 1, t.start + 1).contains(' ')
        };
        if Some(t.id) == tok.unk_id {
            word = word_ref;
            is_subword = false;
        }
        pre.push(PreEntity {
            word,
            scores,
            start: t.start,
            end: t.end,
            index,
            is_subword,
        });
    }
    let entities: Vec<Entity> = match strategy {
        Aggregation::None | Aggregation::Simple => pre
            .iter()
            .map(|p| {
                let i = argmax(&p.scores);
                Entity {
                    entity: Some(label(id2label, i)),
                    entity_group: None,
                    score: p.scores[i] as f64,
                    index: Some(p.index),
                    word: p.word.clone(),
                    start: p.start,
                    end: p.end,
                }
            })
            .collect(),
        _ => aggregate_words(&pre, strategy, id2label, tok)?,
    };
    let grouped = if strategy == Aggregation::None {
        entities
    } else {
        group_entities(&entities, tok)?
    };
    Ok(grouped
        .into_iter()
        .filter(|e| !ignore.iter().any(|i| i == e.label()))
        .collect())
}

/// Words from tokens (a new word at every token that is not a subword), each labelled by
/// `strategy`.
fn aggregate_words(
    pre: &[PreEntity],
    strategy: Aggregation,
    id2label: &[String],
    tok: &TokenizerInfo,
) -> Result<Vec<Entity>> {
    let mut words: Vec<&[PreEntity]> = vec![];
    let mut start = 0;
    for i in 1..=pre.len() {
        if i == pre.len() || !pre[i].is_subword {
            if i > start {
                words.push(&pre[start..i]);
            }
            start = i;
        }
    }
    words
        .into_iter()
        .map(|group| {
            let strings: Vec<String> = group.iter().map(|p| p.word.clone()).collect();
            let word = (tok.tokens_to_string)(&strings)?;
            let (i, score) = match strategy {
                Aggregation::First => {
                    let s = &group[0].scores;
                    let i = argmax(s);
                    (i, s[i] as f64)
                }
                Aggregation::Max => {
                    // Python's `max` keeps the first of equal maxima.
                    let best = group
                        .iter()
                        .fold(None::<&PreEntity>, |b, p| match b {
                            Some(b)
                                if b.scores[argmax(&b.scores)] >= p.scores[argmax(&p.scores)] =>
                            {
                                Some(b)
                            }
                            _ => Some(p),
                        })
                        .expect("a word has a token");
                    let i = argmax(&best.scores);
                    (i, best.scores[i] as f64)
                }
                Aggregation::Average => {
                    let labels = group[0].scores.len();
                    let avg: Vec<f32> = (0..labels)
                        .map(|l| {
                            let v: Vec<f64> = group
                                .iter()
                                .map(|p| p.scores[l] as f64)
                                .filter(|x| !x.is_nan())
                                .collect();
                            (v.iter().sum::<f64>() / v.len() as f64) as f32
                        })
                        .collect();
                    let i = argmax(&avg);
                    (i, avg[i] as f64)
                }
                Aggregation::None | Aggregation::Simple => {
                    unreachable!("token strategies are not word strategies")
                }
            };
            Ok(Entity {
                entity: Some(label(id2label, i)),
                entity_group: None,
                score,
                index: None,
                word,
                start: group[0].start,
                end: group[group.len() - 1].end,
            })
        })
        .collect()
}

/// transformers' `get_tag`: (`B` or `I`, type); a label without a `B-`/`I-` prefix continues.
fn tag(label: &str) -> (&str, &str) {
    if let Some(t) = label.strip_prefix("B-") {
        ("B", t)
    } else if let Some(t) = label.strip_prefix("I-") {
        ("I", t)
    } else {
        ("I", label)
    }
}

/// Groups adjacent results of the same type; a `B-` result always starts a new group.
fn group_entities(entities: &[Entity], tok: &TokenizerInfo) -> Result<Vec<Entity>> {
    let mut groups = vec![];
    let mut current: Vec<&Entity> = vec![];
    for e in entities {
        if let Some(last) = current.last() {
            let (bi, t) = tag(e.label());
            let (_, last_t) = tag(last.label());
            if !(t == last_t && bi != "B") {
                groups.push(group(&current, tok)?);
                current.clear();
            }
        }
        current.push(e);
    }
    if !current.is_empty() {
        groups.push(group(&current, tok)?);
    }
    Ok(groups)
}

/// One group: the first result's label without its `B-`/`I-` prefix (`split("-", 1)[-1]`), the
/// mean score, the decoded words.
fn group(members: &[&Entity], tok: &TokenizerInfo) -> Result<Entity> {
    let first = members[0].label();
    let name = first.split_once('-').map_or(first, |(_, rest)| rest);
    let scores: Vec<f64> = members
        .iter()
        .map(|e| e.score)
        .filter(|s| !s.is_nan())
        .collect();
    let words: Vec<String> = members.iter().map(|e| e.word.clone()).collect();
    Ok(Entity {
        entity: None,
        entity_group: Some(name.to_string()),
        score: scores.iter().sum::<f64>() / scores.len() as f64,
        index: None,
        word: (tok.tokens_to_string)(&words)?,
        start: members[0].start,
        end: members[members.len() - 1].end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// WordPiece-like decoding: `##` pieces glued, others joined by spaces.
    fn wordpiece(tokens: &[String]) -> Result<String> {
        let mut s = String::new();
        for (i, t) in tokens.iter().enumerate() {
            match t.strip_prefix("##") {
                Some(rest) if i > 0 => s.push_str(rest),
                _ => {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(t);
                }
            }
        }
        Ok(s)
    }

    fn tok(id: u32, token: &str, start: usize, end: usize) -> Token {
        Token {
            id,
            token: token.into(),
            start,
            end,
            special: false,
        }
    }

    /// One-hot-ish logits: label `l` gets `v`, the others 0.
    fn row(l: usize, v: f32) -> Vec<f32> {
        let mut r = vec![0.0; 5];
        r[l] = v;
        r
    }

    fn sample() -> (String, Vec<Token>, Vec<f32>) {
        // "Ann Lee lives in Paris" with Paris split as par ##is and a special token each side.
        let text = "Ann Lee lives in Paris".to_string();
        let mut cls = tok(1, "[CLS]", 0, 0);
        cls.special = true;
        let mut sep = tok(2, "[SEP]", 0, 0);
        sep.special = true;
        let tokens = vec![
            cls,
            tok(10, "ann", 0, 3),
            tok(11, "lee", 4, 7),
            tok(12, "lives", 8, 13),
            tok(13, "in", 14, 16),
            tok(14, "par", 17, 20),
            tok(15, "##is", 20, 22),
            sep,
        ];
        let logits = [
            row(0, 5.0),
            row(1, 4.0),
            row(2, 3.0),
            row(0, 6.0),
            row(0, 6.0),
            row(3, 2.0),
            row(2, 3.0), // disagrees with its word's first token
            row(0, 5.0),
        ]
        .concat();
        (text, tokens, logits)
    }

    fn run(strategy: Aggregation, word_aware: bool) -> Vec<Entity> {
        let (text, tokens, logits) = sample();
        let info = TokenizerInfo {
            unk_id: Some(3),
            word_aware,
            tokens_to_string: &wordpiece,
        };
        postprocess(
            &text,
            &tokens,
            &logits,
            &labels(),
            &info,
            strategy,
            &["O".to_string()],
        )
        .unwrap()
    }

    #[test]
    fn none_keeps_tokens_and_drops_o() {
        let e = run(Aggregation::None, true);
        let got: Vec<(&str, usize, &str)> = e
            .iter()
            .map(|e| (e.label(), e.index.unwrap(), e.word.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("B-PER", 1, "ann"),
                ("I-PER", 2, "lee"),
                ("B-LOC", 5, "par"),
                ("I-PER", 6, "##is")
            ]
        );
        let json = serde_json::to_string(&e[0]).unwrap();
        assert!(json.starts_with(r#"{"entity":"B-PER","score":"#), "{json}");
        assert!(json.ends_with(r#""index":1,"word":"ann","start":0,"end":3}"#));
    }

    #[test]
    fn simple_groups_by_type_and_b_starts_a_group() {
        let e = run(Aggregation::Simple, true);
        let got: Vec<(&str, &str, usize, usize)> = e
            .iter()
            .map(|e| (e.label(), e.word.as_str(), e.start, e.end))
            .collect();
        assert_eq!(
            got,
            [
                ("PER", "ann lee", 0, 7),
                ("LOC", "par", 17, 20),
                ("PER", "##is", 20, 22)
            ]
        );
        let json = serde_json::to_string(&e[0]).unwrap();
        assert!(
            json.starts_with(r#"{"entity_group":"PER","score":"#),
            "{json}"
        );
    }

    #[test]
    fn word_strategies_agree_on_whole_words() {
        // first: Paris takes B-LOC from `par`.
        let e = run(Aggregation::First, true);
        assert_eq!(e.last().unwrap().word, "paris");
        assert_eq!(e.last().unwrap().label(), "LOC");
        // max: `##is` (logit 3 for I-PER) beats `par` (2 for B-LOC).
        let e = run(Aggregation::Max, true);
        assert_eq!(e.last().unwrap().label(), "PER");
        assert_eq!((e.last().unwrap().start, e.last().unwrap().end), (17, 22));
        // average: scores averaged over the word's two tokens.
        let e = run(Aggregation::Average, true);
        let p = softmax(&row(3, 2.0));
        let q = softmax(&row(2, 3.0));
        let avg: Vec<f64> = (0..5).map(|l| (p[l] as f64 + q[l] as f64) / 2.0).collect();
        let best = (0..5).max_by(|&a, &b| avg[a].total_cmp(&avg[b])).unwrap();
        assert_eq!(
            e.last().unwrap().label(),
            labels()[best].split_once('-').unwrap().1
        );
        assert!((e.last().unwrap().score - avg[best]).abs() < 1e-6);
    }

    #[test]
    fn heuristic_subwords_without_a_continuation_prefix() {
        // Without `##` marks: `##is` starts right after `par` (no space around): a subword.
        let e = run(Aggregation::First, false);
        assert_eq!(e.last().unwrap().word, "paris");
        assert_eq!(e.last().unwrap().label(), "LOC");
    }

    #[test]
    fn unknown_tokens_use_the_text_and_start_words() {
        let text = "xé ab";
        let tokens = vec![tok(3, "[UNK]", 0, 2), tok(20, "ab", 3, 5)];
        let logits = [row(1, 4.0), row(2, 4.0)].concat();
        let info = TokenizerInfo {
            unk_id: Some(3),
            word_aware: true,
            tokens_to_string: &wordpiece,
        };
        let e = postprocess(
            text,
            &tokens,
            &logits,
            &labels(),
            &info,
            Aggregation::None,
            &[],
        )
        .unwrap();
        assert_eq!(e[0].word, "xé");
        assert_eq!(Aggregation::parse("AVERAGE").unwrap(), Aggregation::Average);
        assert!(Aggregation::parse("mean").is_err());
    }
}
