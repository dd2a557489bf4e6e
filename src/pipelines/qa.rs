//! Extractive question answering: the pre- and post-processing of Hugging Face transformers'
//! `question-answering` pipeline (4.57, fast-tokenizer path), in plain Rust.
//!
//! [`prepare`] cuts question + context into overlapping windows exactly as the pipeline's
//! `preprocess` does; the caller runs the model on every window; [`decode`] turns the per-window
//! start/end logits into answers exactly as `postprocess` / `select_starts_ends` / `decode_spans`
//! do, with character offsets that index the context by Unicode code points like Python strings.

use std::borrow::Cow;

use tokenizers::{
    Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::{Error, Result};

/// The pipeline's knobs, with transformers' names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QaParams {
    /// How many answers to return (at least 1).
    pub top_k: usize,
    /// Overlap, in tokens, between consecutive context windows; `None`: transformers' choice,
    /// `min(max_seq_len / 2, 128)` (see [`QaParams::stride`]).
    pub doc_stride: Option<usize>,
    /// Longest answer, in tokens (at least 1).
    pub max_answer_len: usize,
    /// Longest window (question + context + special tokens), in tokens; `None`: transformers'
    /// choice, `min(tokenizer model_max_length, 384)` (see [`QaParams::resolved`]).
    pub max_seq_len: Option<usize>,
    /// Only used by transformers' slow-tokenizer path; the fast path never truncates the
    /// question, so neither do we. Kept for parity of the parameter set.
    pub max_question_len: usize,
    /// Whether the empty answer (scored from the CLS token) may be returned.
    pub handle_impossible_answer: bool,
    /// Widen answers to whole words (the pre-tokenizer's words) rather than raw token offsets.
    pub align_to_words: bool,
    /// wgformer's guard, not transformers': refuse (with [`Error::TooLarge`]) a question and
    /// context that would make more windows than this, before making them. A server sets it: a
    /// long context with a stride close to the window makes thousands of windows.
    pub max_windows: Option<usize>,
}

impl Default for QaParams {
    /// transformers' defaults: top_k 1, max_answer_len 15, max_question_len 64, no impossible
    /// answer, word alignment on; window length and stride derived per model.
    fn default() -> Self {
        QaParams {
            top_k: 1,
            doc_stride: None,
            max_answer_len: 15,
            max_seq_len: None,
            max_question_len: 64,
            handle_impossible_answer: false,
            align_to_words: true,
            max_windows: None,
        }
    }
}

/// transformers' window length when neither the call nor the tokenizer says less.
const DEFAULT_MAX_SEQ_LEN: usize = 384;
/// transformers' largest default stride.
const DEFAULT_DOC_STRIDE: usize = 128;

impl QaParams {
    /// These parameters for one model: a window length not given becomes transformers'
    /// `min(model_max_length, 384)`, and any length is capped at `positions` (the model's
    /// position table: longer windows cannot run). The stride, when not given, follows from
    /// the final length (see [`stride`](Self::stride)).
    pub fn resolved(&self, model_max_length: usize, positions: usize) -> QaParams {
        let len = self
            .max_seq_len
            .unwrap_or(model_max_length.min(DEFAULT_MAX_SEQ_LEN));
        QaParams {
            max_seq_len: Some(len.min(positions)),
            ..self.clone()
        }
    }

    /// The window length: as given (or resolved), else 384.
    pub fn seq_len(&self) -> usize {
        self.max_seq_len.unwrap_or(DEFAULT_MAX_SEQ_LEN)
    }

    /// The overlap between windows: as given, else transformers' `min(max_seq_len / 2, 128)`.
    pub fn stride(&self) -> usize {
        self.doc_stride
            .unwrap_or_else(|| (self.seq_len() / 2).min(DEFAULT_DOC_STRIDE))
    }
}

/// One model input: `[CLS] question [SEP] context-slice [SEP]` (for BERT-style templates),
/// unpadded, with what [`decode`] needs to map tokens back to the context.
#[derive(Debug, Clone, PartialEq)]
pub struct QaWindow {
    /// Token ids (the attention mask is all ones: windows are never padded).
    pub ids: Vec<u32>,
    /// Token type ids as the tokenizer produced them (0 question, 1 context for BERT); models
    /// without token types (DistilBERT) simply ignore them.
    pub type_ids: Vec<u32>,
    /// Per token, `(start, end)` in Unicode code points of the text it came from (question
    /// tokens index the question, context tokens the context, special tokens are `(0, 0)`).
    pub offsets: Vec<(usize, usize)>,
    /// Per token: `Some(0)` question, `Some(1)` context, `None` special token.
    pub sequence_ids: Vec<Option<usize>>,
    /// Per token, the index of its pre-tokenizer word within its sequence (`None` for specials).
    pub words: Vec<Option<u32>>,
    /// HF's p_mask: `true` where the token may not take part in the answer softmax (question
    /// and special tokens), except tokens whose id is the CLS id, which HF leaves unmasked.
    pub p_mask: Vec<bool>,
}

impl QaWindow {
    /// Number of tokens in the window (the length the model's logits must have).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the window holds no token at all.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether token `i` is a context token, i.e. may start or end an answer.
    fn is_context(&self, i: usize) -> bool {
        self.sequence_ids[i] == Some(1)
    }

    /// Code-point span of context word `word` as far as this window holds it, like
    /// `Encoding.word_to_chars(word, sequence_index=1)`.
    fn word_to_chars(&self, word: u32) -> Option<(usize, usize)> {
        let mut toks =
            (0..self.len()).filter(|&i| self.is_context(i) && self.words[i] == Some(word));
        let first = toks.next()?;
        let last = toks.next_back().unwrap_or(first);
        Some((self.offsets[first].0, self.offsets[last].1))
    }

    /// Code-point span of the answer from token `s` to token `e`, like the pipeline's
    /// `get_indices`: whole words when asked and possible, else the tokens' own offsets.
    fn char_span(&self, s: usize, e: usize, align_to_words: bool) -> (usize, usize) {
        if align_to_words {
            // HF wraps this in try/except and falls back to offsets on any failure.
            let words = self.words[s].zip(self.words[e]);
            if let Some((ws, we)) = words {
                if let Some(((a, _), (_, b))) = self.word_to_chars(ws).zip(self.word_to_chars(we)) {
                    return (a, b);
                }
            }
        }
        (self.offsets[s].0, self.offsets[e].1)
    }
}

/// All windows of one question/context pair, plus the context the answers index into.
#[derive(Debug, Clone, PartialEq)]
pub struct QaFeatures {
    /// The windows, in context order (the first holds the start of the context).
    pub windows: Vec<QaWindow>,
    /// The question, as given.
    pub question: String,
    /// The context, as given: answers are `context[start..end]` in code points.
    pub context: String,
}

/// One answer, serialized with the keys and key order of HF's JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QaAnswer {
    /// Probability of the span (start prob × end prob, summed over windows that gave the same
    /// text, case-insensitively, as HF does).
    pub score: f64,
    /// Start of the answer in the context, in Unicode code points.
    pub start: usize,
    /// End (exclusive) of the answer in the context, in Unicode code points.
    pub end: usize,
    /// The answer text: the context's code points `start..end`.
    pub answer: String,
}

fn check_params(p: &QaParams) -> Result<()> {
    if p.top_k < 1 {
        return Err(Error::Input(format!(
            "top_k parameter should be >= 1 (got {})",
            p.top_k
        )));
    }
    if p.max_answer_len < 1 {
        return Err(Error::Input(format!(
            "max_answer_len parameter should be >= 1 (got {})",
            p.max_answer_len
        )));
    }
    Ok(())
}

/// Tokenizes question+context into overlapping windows exactly as the pipeline's preprocess does.
///
/// The question comes first and only the context is truncated (`only_second`, the choice HF
/// makes for right-padding tokenizers, i.e. the whole BERT family), `max_length = max_seq_len`,
/// `stride = doc_stride`, with overflowing windows. Errors where HF raises: empty question or
/// context, `doc_stride` too large for `max_seq_len`, a question that leaves no room for context.
pub fn prepare(tok: &Tokenizer, question: &str, context: &str, p: &QaParams) -> Result<QaFeatures> {
    // Same checks, same order, as HF's argument handler and preprocess.
    if question.is_empty() {
        return Err(Error::Input(
            "question-answering: the question is empty; give a non-empty question".into(),
        ));
    }
    if context.is_empty() {
        return Err(Error::Input(
            "question-answering: the context is empty; give a non-empty context to find the answer in"
                .into(),
        ));
    }
    let (max_seq_len, doc_stride) = (p.seq_len(), p.stride());
    if doc_stride > max_seq_len {
        return Err(Error::Input(format!(
            "`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
        )));
    }
    // HF's fast tokenizer installs truncation before encoding, and `enable_truncation` refuses a
    // stride above the single-sequence room, even for inputs that would fit.
    let n_single = tok
        .get_post_processor()
        .map_or(0, |pp| pp.added_tokens(false));
    let n_pair = tok
        .get_post_processor()
        .map_or(0, |pp| pp.added_tokens(true));
    if max_seq_len < n_single || max_seq_len - n_single < doc_stride {
        return Err(Error::Input(format!(
            "doc_stride {doc_stride} is too large for max_seq_len {max_seq_len} (at most max_seq_len - {n_single} special tokens)"
        )));
    }

    // Encode once without truncation: most inputs fit in one window, and the full encoding
    // tells us how much room the context has before we ask the tokenizer to cut it.
    let plain: Cow<Tokenizer> = if tok.get_truncation().is_some() || tok.get_padding().is_some() {
        let mut t = tok.clone();
        t.with_truncation(None)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        t.with_padding(None);
        Cow::Owned(t)
    } else {
        Cow::Borrowed(tok)
    };
    // Char offsets: Python's tokenizers binding reports code points, not bytes.
    let full = plain
        .encode_char_offsets((question, context), true)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;

    let encodings: Vec<Encoding> = if full.len() <= max_seq_len {
        vec![full]
    } else {
        let seq = full.get_sequence_ids();
        let q_len = seq.iter().filter(|s| **s == Some(0)).count();
        let room = max_seq_len as i64 - n_pair as i64 - q_len as i64;
        if room <= 0 {
            return Err(Error::Input(format!(
                "the question is {q_len} tokens long: with {n_pair} special tokens it leaves no room \
                 for context in max_seq_len {max_seq_len}; shorten the question or raise max_seq_len"
            )));
        }
        // tokenizers asserts this (HF surfaces it as a panic); we refuse it cleanly instead.
        if doc_stride as i64 >= room {
            return Err(Error::Input(format!(
                "doc_stride {doc_stride} must be smaller than the {room} context tokens a window can hold \
                 (max_seq_len {max_seq_len} - {n_pair} special tokens - {q_len} question tokens)"
            )));
        }
        // The windows tokenizers will cut: the context in pieces of `room` tokens starting
        // `room - stride` apart until one reaches its end.
        // (`room > doc_stride` and `full.len() > max_seq_len` hold here.)
        let (room, stride) = (room as usize, doc_stride);
        let context_len = full.len() - n_pair - q_len;
        let windows = 1 + context_len.saturating_sub(room).div_ceil(room - stride);
        if let Some(max) = p.max_windows.filter(|&m| windows > m) {
            return Err(Error::TooLarge(format!(
                "this context makes {windows} windows of {max_seq_len} tokens (doc_stride {doc_stride}), \
                 more than the {max} allowed (a server's --max-qa-windows); shorten the context, lower doc_stride or raise max_seq_len"
            )));
        }
        let mut t = plain.into_owned();
        t.with_truncation(Some(TruncationParams {
            max_length: max_seq_len,
            strategy: TruncationStrategy::OnlySecond,
            stride: doc_stride,
            direction: TruncationDirection::Right,
        }))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        let mut first = t
            .encode_char_offsets((question, context), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        // HF's batch is the encoding followed by its (first-level) overflowing windows.
        let rest = first.take_overflowing();
        std::iter::once(first).chain(rest).collect()
    };

    // HF's `cls_token_id` is the tokenizer config's CLS; every BERT-family template starts with
    // it, so the special token at position 0 is it.
    let cls_id = encodings
        .first()
        .filter(|e| !e.is_empty() && e.get_sequence_ids()[0].is_none())
        .map(|e| e.get_ids()[0]);

    let windows = encodings
        .into_iter()
        .map(|e| {
            let sequence_ids = e.get_sequence_ids();
            let ids = e.get_ids().to_vec();
            let p_mask = sequence_ids
                .iter()
                .zip(&ids)
                // CLS stays unmasked: its logit takes part in the softmax (models may use it
                // for "no answer"), and HF then zeroes position 0's probability.
                .map(|(s, id)| *s != Some(1) && Some(*id) != cls_id)
                .collect();
            QaWindow {
                type_ids: e.get_type_ids().to_vec(),
                offsets: e.get_offsets().to_vec(),
                words: e.get_word_ids().to_vec(),
                sequence_ids,
                p_mask,
                ids,
            }
        })
        .collect();
    Ok(QaFeatures {
        windows,
        question: question.to_owned(),
        context: context.to_owned(),
    })
}

/// Softmax of `logits` with masked positions forced to HF's -10000, computed in f64.
fn masked_softmax(logits: &[f32], p_mask: &[bool]) -> Vec<f64> {
    let x: Vec<f64> = logits
        .iter()
        .zip(p_mask)
        .map(|(&l, &m)| if m { -10000.0 } else { f64::from(l) })
        .collect();
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = x.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// The best `top_k` spans `(start, end, score)` of one window: both ends context tokens,
/// `start <= end < start + max_answer_len`, best first. Ties go to the smaller start, then
/// the smaller end, which is numpy's `argmax` order on the flattened start×end matrix.
fn top_spans(
    w: &QaWindow,
    ps: &[f64],
    pe: &[f64],
    top_k: usize,
    max_answer_len: usize,
) -> Vec<(usize, usize, f64)> {
    let n = w.len();
    let mut spans = Vec::new();
    for s in (0..n).filter(|&s| w.is_context(s)) {
        // Saturating: a huge max_answer_len means "no limit", not a wrapped-around one.
        let last = s.saturating_add(max_answer_len - 1).min(n - 1);
        for e in (s..=last).filter(|&e| w.is_context(e)) {
            spans.push((s, e, ps[s] * pe[e]));
        }
    }
    // Stable sort: equal scores keep (start, end) order.
    spans.sort_by(|a, b| b.2.total_cmp(&a.2));
    spans.truncate(top_k);
    spans
}

/// Turns per-window logits into the pipeline's answers, best first (at most `top_k`).
///
/// `start_logits[w]` / `end_logits[w]`: the model's logits for window w, one per token of that
/// window (unpadded length). Scores are computed in f64 from the f32 logits; answers whose text
/// is equal ignoring case are merged (scores summed, first position kept) as HF does.
pub fn decode(
    f: &QaFeatures,
    start_logits: &[Vec<f32>],
    end_logits: &[Vec<f32>],
    p: &QaParams,
) -> Result<Vec<QaAnswer>> {
    check_params(p)?;
    if start_logits.len() != f.windows.len() || end_logits.len() != f.windows.len() {
        return Err(Error::Input(format!(
            "question-answering: {} windows but {} start and {} end logit rows; give one row per window",
            f.windows.len(),
            start_logits.len(),
            end_logits.len()
        )));
    }
    // Code point -> byte index, so answers slice the context like Python's `context[start:end]`.
    let bounds: Vec<usize> = f
        .context
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(f.context.len()))
        .collect();
    let n_chars = bounds.len() - 1;
    let slice = |a: usize, b: usize| -> &str {
        // Python slicing clamps and yields "" for empty ranges; so do we.
        let (a, b) = (a.min(n_chars), b.min(n_chars));
        if a >= b {
            ""
        } else {
            &f.context[bounds[a]..bounds[b]]
        }
    };

    let mut min_null_score = 1_000_000f64;
    let mut answers: Vec<QaAnswer> = Vec::new();
    for (wi, w) in f.windows.iter().enumerate() {
        let (sl, el) = (&start_logits[wi], &end_logits[wi]);
        if sl.len() != w.len() || el.len() != w.len() {
            return Err(Error::Input(format!(
                "question-answering: window {wi} has {} tokens but {} start and {} end logits",
                w.len(),
                sl.len(),
                el.len()
            )));
        }
        if let Some(bad) = sl.iter().chain(el).find(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "question-answering: window {wi} has a non-finite logit ({bad})"
            )));
        }
        if w.is_empty() {
            continue;
        }
        let mut ps = masked_softmax(sl, &w.p_mask);
        let mut pe = masked_softmax(el, &w.p_mask);
        if p.handle_impossible_answer {
            min_null_score = min_null_score.min(ps[0] * pe[0]);
        }
        // HF zeroes position 0 (CLS) after the softmax: it is never part of a span.
        ps[0] = 0.0;
        pe[0] = 0.0;
        // transformers 4.57 takes `2·top_k + 10` candidates per window when aligning to words:
        // several token spans can widen to the same words, and their scores are summed below.
        let per_window = if p.align_to_words {
            2 * p.top_k + 10
        } else {
            p.top_k
        };
        let mut spans = top_spans(w, &ps, &pe, per_window, p.max_answer_len);
        if !(0..w.len()).any(|i| w.is_context(i)) {
            // No context token (a context of spaces): HF's argmax over an all-zero span matrix
            // lands on (0, 0), the zeroed CLS, which its filter keeps (CLS is not masked): an
            // empty answer at 0 with score 0, whatever top_k.
            spans.push((0, 0, 0.0));
        }
        for (s, e, score) in spans {
            let (start, end) = w.char_span(s, e, p.align_to_words);
            let text = slice(start, end);
            let key = text.to_lowercase();
            match answers.iter_mut().find(|a| a.answer.to_lowercase() == key) {
                Some(a) => a.score += score,
                None => answers.push(QaAnswer {
                    score,
                    start,
                    end,
                    answer: text.to_owned(),
                }),
            }
        }
    }
    if p.handle_impossible_answer {
        answers.push(QaAnswer {
            score: min_null_score,
            start: 0,
            end: 0,
            answer: String::new(),
        });
    }
    // Python's `sorted(..., reverse=True)` is stable too: ties keep discovery order.
    answers.sort_by(|a, b| b.score.total_cmp(&a.score));
    answers.truncate(p.top_k);
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipelines::test_shared as shared;

    fn tokenizer() -> Tokenizer {
        let mut t = Tokenizer::from_file(shared("models/distilminilm-squad/tokenizer.json"))
            .expect("load tokenizer.json");
        t.with_truncation(None).unwrap();
        t.with_padding(None);
        t
    }

    /// Rows of the HF golden file: (id, question, context, answer).
    fn fixture_rows() -> Vec<serde_json::Value> {
        std::fs::read_to_string(shared("fixtures/squad-visible.hf.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn longest_fixture_context() -> (String, String) {
        let rows = fixture_rows();
        let r = rows
            .iter()
            .max_by_key(|r| r["context"].as_str().unwrap().chars().count())
            .unwrap();
        (
            r["question"].as_str().unwrap().to_owned(),
            r["context"].as_str().unwrap().to_owned(),
        )
    }

    /// Python's `s[a:b]` on code points.
    fn py_slice(s: &str, a: usize, b: usize) -> String {
        s.chars().skip(a).take(b.saturating_sub(a)).collect()
    }

    /// Code-point index of the first occurrence of `needle` in `hay`.
    fn char_find(hay: &str, needle: &str) -> usize {
        let byte = hay.find(needle).expect("needle in text");
        hay[..byte].chars().count()
    }

    /// Context tokens of window `w` covering code points `[cs, ce)`: (first, last).
    fn tokens_of(w: &QaWindow, cs: usize, ce: usize) -> (usize, usize) {
        let inside: Vec<usize> = (0..w.len())
            .filter(|&i| w.sequence_ids[i] == Some(1))
            .filter(|&i| w.offsets[i].1 > cs && w.offsets[i].0 < ce)
            .collect();
        (*inside.first().unwrap(), *inside.last().unwrap())
    }

    /// Zero logits for every window, with `peaks` = (window, start token, end token, value).
    fn logits(
        f: &QaFeatures,
        peaks: &[(usize, usize, usize, f32)],
    ) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let mut s: Vec<Vec<f32>> = f.windows.iter().map(|w| vec![0.0; w.len()]).collect();
        let mut e = s.clone();
        for &(w, a, b, v) in peaks {
            s[w][a] = v;
            e[w][b] = v;
        }
        (s, e)
    }

    /// HF's probability of one token, computed here from its definition: softmax over CLS and
    /// the context tokens (question and special tokens are pushed to -10000, i.e. exp = 0).
    fn prob(w: &QaWindow, l: &[f32], i: usize) -> f64 {
        let keep: Vec<usize> = (0..w.len())
            .filter(|&j| j == 0 || w.sequence_ids[j] == Some(1))
            .collect();
        let max = keep
            .iter()
            .map(|&j| f64::from(l[j]))
            .fold(f64::MIN, f64::max);
        let z: f64 = keep.iter().map(|&j| (f64::from(l[j]) - max).exp()).sum();
        (f64::from(l[i]) - max).exp() / z
    }

    #[test]
    fn single_window_ids_match_hf() {
        let tok = tokenizer();
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(shared("fixtures/hidden-states.json")).unwrap(),
        )
        .unwrap();
        let mut checked = 0;
        for case in meta["cases"].as_array().unwrap() {
            if case["model"] != "distilminilm-squad" {
                continue;
            }
            let q = case["text"].as_str().unwrap();
            let c = case["text_pair"].as_str().unwrap();
            let want: Vec<u32> = case["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let f = prepare(&tok, q, c, &QaParams::default()).unwrap();
            assert_eq!(f.windows.len(), 1, "case {}", case["case"]);
            let w = &f.windows[0];
            assert_eq!(w.ids, want, "case {}", case["case"]);
            // p_mask: exactly the context tokens and CLS are open.
            for i in 0..w.len() {
                let open = i == 0 || w.sequence_ids[i] == Some(1);
                assert_eq!(w.p_mask[i], !open, "case {} token {i}", case["case"]);
            }
            // Context offsets are code points into the context.
            for i in (0..w.len()).filter(|&i| w.sequence_ids[i] == Some(1)) {
                let (a, b) = w.offsets[i];
                assert!(a < b && b <= c.chars().count());
            }
            checked += 1;
        }
        assert_eq!(checked, 2, "hidden-states.json should hold two QA cases");
    }

    /// transformers' QuestionAnsweringPipeline.preprocess: max_seq_len = min(model_max_length,
    /// 384), doc_stride = min(max_seq_len // 2, 128), each only when the call gives none.
    #[test]
    fn window_length_and_stride_default_as_transformers_derives_them() {
        let d = QaParams::default();
        let got = |p: &QaParams, mml, pos| {
            let r = p.resolved(mml, pos);
            (r.seq_len(), r.stride())
        };
        assert_eq!(got(&d, 512, 512), (384, 128));
        assert_eq!(got(&d, 256, 512), (256, 128));
        assert_eq!(got(&d, 128, 512), (128, 64));
        assert_eq!(got(&d, 101, 512), (101, 50));
        // Only the position table caps what the model can run; the stride follows the cap.
        assert_eq!(got(&d, 512, 100), (100, 50));
        let given = |len: Option<usize>, stride: Option<usize>| QaParams {
            max_seq_len: len,
            doc_stride: stride,
            ..QaParams::default()
        };
        assert_eq!(got(&given(Some(128), None), 512, 512), (128, 64));
        assert_eq!(got(&given(Some(200), Some(30)), 128, 512), (200, 30));
        assert_eq!(got(&given(None, Some(100)), 512, 512), (384, 100));
    }

    /// The window guard predicts exactly the windows the tokenizer cuts: at that count the
    /// input passes, one below it is refused before any window is made.
    #[test]
    fn window_guard_counts_the_windows_the_tokenizer_makes() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        for (len, stride) in [(64usize, 16usize), (48, 10), (40, 1), (100, 0)] {
            let p = QaParams {
                max_seq_len: Some(len),
                doc_stride: Some(stride),
                ..QaParams::default()
            };
            let n = prepare(&tok, &q, &c, &p).unwrap().windows.len();
            assert!(
                n > 1,
                "{len}/{stride}: the fixture context must need several windows"
            );
            let exact = QaParams {
                max_windows: Some(n),
                ..p.clone()
            };
            assert_eq!(prepare(&tok, &q, &c, &exact).unwrap().windows.len(), n);
            let below = QaParams {
                max_windows: Some(n - 1),
                ..p.clone()
            };
            let e = prepare(&tok, &q, &c, &below).unwrap_err();
            assert!(
                matches!(&e, Error::TooLarge(m) if m.contains(&format!("{n} windows"))),
                "{len}/{stride}: {e}"
            );
        }
    }

    /// A context without a token (spaces only): transformers answers
    /// `{"score": 0.0, "start": 0, "end": 0, "answer": ""}`, one answer whatever top_k.
    #[test]
    fn context_without_tokens_gives_hf_empty_answer() {
        let tok = tokenizer();
        let f = prepare(&tok, "Who?", "   ", &QaParams::default()).unwrap();
        assert_eq!(f.windows.len(), 1);
        let n = f.windows[0].len();
        assert!((0..n).all(|i| !f.windows[0].is_context(i)));
        let logits: Vec<f32> = (0..n).map(|i| i as f32 * 0.7 - 1.0).collect();
        for top_k in [1, 3] {
            let p = QaParams {
                top_k,
                ..QaParams::default()
            };
            let got = decode(
                &f,
                std::slice::from_ref(&logits),
                std::slice::from_ref(&logits),
                &p,
            )
            .unwrap();
            assert_eq!(
                got,
                vec![QaAnswer {
                    score: 0.0,
                    start: 0,
                    end: 0,
                    answer: String::new()
                }],
                "top_k {top_k}"
            );
        }
    }

    /// A huge max_answer_len means no limit (it wrapped around and dropped every span).
    #[test]
    fn huge_max_answer_len_is_no_limit() {
        let tok = tokenizer();
        let f = prepare(&tok, "Who?", "Bob is here.", &QaParams::default()).unwrap();
        let n = f.windows[0].len();
        let starts: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
        let ends: Vec<f32> = (0..n).map(|i| ((i + 1) % 4) as f32).collect();
        let with = |max_answer_len| {
            decode(
                &f,
                std::slice::from_ref(&starts),
                std::slice::from_ref(&ends),
                &QaParams {
                    max_answer_len,
                    ..QaParams::default()
                },
            )
            .unwrap()
        };
        let reference = with(1000);
        assert_eq!(reference.len(), 1);
        assert_eq!(with(usize::MAX), reference);
        assert_eq!(with(usize::MAX / 2 + 7), reference);
    }

    #[test]
    fn long_context_windows_overlap_like_hf() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        let (max_seq_len, stride) = (64usize, 16usize);
        let p = QaParams {
            max_seq_len: Some(max_seq_len),
            doc_stride: Some(stride),
            ..QaParams::default()
        };
        let f = prepare(&tok, &q, &c, &p).unwrap();

        // Reference: the untruncated pair encoding.
        let full = tok
            .encode_char_offsets((q.as_str(), c.as_str()), true)
            .unwrap();
        let seq = full.get_sequence_ids();
        let q_ids: Vec<u32> = (0..full.len())
            .filter(|&i| seq[i] == Some(0))
            .map(|i| full.get_ids()[i])
            .collect();
        let ctx: Vec<usize> = (0..full.len()).filter(|&i| seq[i] == Some(1)).collect();
        let room = max_seq_len - 3 - q_ids.len();
        assert!(
            ctx.len() > 3 * room,
            "the test needs a context spanning several windows"
        );

        let mut covered_to = 0usize; // context tokens [0, covered_to) seen so far
        for (k, w) in f.windows.iter().enumerate() {
            assert!(w.len() <= max_seq_len, "window {k} is {} tokens", w.len());
            // Every window is [CLS] question [SEP] context-slice [SEP].
            assert_eq!(w.ids[0], full.get_ids()[0]);
            assert_eq!(
                &w.ids[1..1 + q_ids.len()],
                &q_ids[..],
                "window {k} question"
            );
            assert_eq!(w.sequence_ids[1 + q_ids.len()], None);
            assert_eq!(w.sequence_ids[w.len() - 1], None);
            let here: Vec<usize> = (0..w.len())
                .filter(|&i| w.sequence_ids[i] == Some(1))
                .collect();
            // Context slice starts where the tokenizer's stride puts it: k * (room - stride).
            let first = k * (room - stride);
            assert_eq!(
                first,
                if k == 0 { 0 } else { covered_to - stride },
                "window {k} overlap"
            );
            for (j, &i) in here.iter().enumerate() {
                let g = ctx[first + j];
                assert_eq!(w.ids[i], full.get_ids()[g], "window {k} token {j}");
                assert_eq!(
                    w.offsets[i],
                    full.get_offsets()[g],
                    "window {k} token {j} offsets"
                );
                assert_eq!(w.words[i], full.get_word_ids()[g]);
            }
            covered_to = first + here.len();
            if k + 1 < f.windows.len() {
                assert_eq!(here.len(), room, "non-final window {k} is full");
            }
        }
        assert_eq!(covered_to, ctx.len(), "windows cover the whole context");
    }

    #[test]
    fn very_long_context_becomes_many_windows() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        let c = [c.as_str(); 8].join(" ");
        let f = prepare(&tok, &q, &c, &QaParams::default()).unwrap();
        assert!(f.windows.len() > 8, "{} windows", f.windows.len());
        assert!(f.windows.iter().all(|w| w.len() <= 384));
        let (s, e) = logits(&f, &[]);
        let a = decode(&f, &s, &e, &QaParams::default()).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(py_slice(&c, a[0].start, a[0].end), a[0].answer);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let tok = tokenizer();
        let p = QaParams::default();
        let msg = |r: Result<QaFeatures>| match r {
            Err(Error::Input(m)) => m,
            other => panic!("expected an input error, got {other:?}"),
        };
        assert!(msg(prepare(&tok, "", "Some context.", &p)).contains("question is empty"));
        assert!(msg(prepare(&tok, "Why?", "", &p)).contains("context is empty"));
        let big_stride = QaParams {
            doc_stride: Some(500),
            ..p.clone()
        };
        assert!(msg(prepare(&tok, "Why?", "Because.", &big_stride)).contains("doc_stride"));
        // A question that fills the window must not panic inside the tokenizer.
        let (q, c) = longest_fixture_context();
        let tiny = QaParams {
            max_seq_len: Some(10),
            doc_stride: Some(2),
            ..p.clone()
        };
        assert!(msg(prepare(&tok, &q, &c, &tiny)).contains("no room"));
        let tight = QaParams {
            max_seq_len: Some(30),
            doc_stride: Some(12),
            ..p.clone()
        };
        assert!(msg(prepare(&tok, &q, &c, &tight)).contains("doc_stride"));

        let f = prepare(&tok, "Who?", "Paris is big.", &p).unwrap();
        let n = f.windows[0].len();
        let ok = vec![vec![0.0f32; n]];
        assert!(decode(&f, &[], &[], &p).is_err());
        assert!(decode(&f, &[vec![0.0; n - 1]], &ok, &p).is_err());
        let mut nan = ok.clone();
        nan[0][3] = f32::NAN;
        assert!(matches!(decode(&f, &nan, &ok, &p), Err(Error::Input(_))));
        assert!(decode(
            &f,
            &ok,
            &ok,
            &QaParams {
                top_k: 0,
                ..p.clone()
            }
        )
        .is_err());
        assert!(decode(
            &f,
            &ok,
            &ok,
            &QaParams {
                max_answer_len: 0,
                ..p
            }
        )
        .is_err());
    }

    #[test]
    fn gold_spans_decode_to_gold_answers() {
        let tok = tokenizer();
        let p = QaParams::default();
        let data =
            crate::pipelines::squad::load_dataset(shared("data/squad-v1.1-dev-visible.json"))
                .unwrap();
        let (mut checked, mut aligned) = (0, 0);
        for q in data.iter().step_by(7).take(120) {
            let f = prepare(&tok, &q.question, &q.context, &p).unwrap();
            if f.windows.len() != 1 {
                continue;
            }
            let gold = &q.answers[0];
            let cs = char_find(&q.context, gold);
            let ce = cs + gold.chars().count();
            let w = &f.windows[0];
            let (s, e) = tokens_of(w, cs, ce);
            if e + 1 - s > p.max_answer_len {
                continue; // a gold longer than max_answer_len tokens cannot be the answer
            }
            let (sl, el) = logits(&f, &[(0, s, e, 10.0)]);
            for align in [false, true] {
                let pa = QaParams {
                    align_to_words: align,
                    ..p.clone()
                };
                let a = &decode(&f, &sl, &el, &pa).unwrap()[0];
                assert_eq!(py_slice(&q.context, a.start, a.end), a.answer);
                assert!(
                    a.start <= cs && a.end >= ce,
                    "{}: {a:?} must cover {gold:?}",
                    q.id
                );
                // The score is start prob × end prob of the peak tokens; aligned to words, other
                // candidate spans that widen to the same words add theirs (transformers 4.57).
                let want = prob(w, &sl[0], s) * prob(w, &el[0], e);
                if align {
                    assert!(a.score >= want * (1.0 - 1e-12), "{a:?} below {want}");
                } else {
                    assert!((a.score - want).abs() < 1e-12 * want.max(1.0));
                }
                if !align {
                    assert_eq!((a.start, a.end), (w.offsets[s].0, w.offsets[e].1));
                }
                if w.offsets[s].0 == cs && w.offsets[e].1 == ce {
                    // Gold starts and ends on token boundaries: the answer is the gold text.
                    if !align {
                        assert_eq!(&a.answer, gold, "{}", q.id);
                        aligned += 1;
                    }
                }
            }
            checked += 1;
        }
        assert!(checked > 80, "only {checked} single-window questions");
        assert!(
            aligned * 10 > checked * 9,
            "{aligned} of {checked} golds on token boundaries"
        );
    }

    #[test]
    fn non_ascii_context_uses_code_point_offsets() {
        let tok = tokenizer();
        let context =
            "Der Flughafen „Franz Josef Strauß“ ☕🚀 liegt 28,5 km nordöstlich von München, \
                       nicht in Zürich. Naïve café-goers say so.";
        let question = "Wo liegt der Flughafen?";
        let f = prepare(&tok, question, context, &QaParams::default()).unwrap();
        let w = &f.windows[0];
        for gold in ["nordöstlich von München", "Zürich", "Strauß", "café"] {
            let cs = char_find(context, gold);
            let ce = cs + gold.chars().count();
            assert_ne!(
                context.find(gold).unwrap(),
                cs,
                "the test needs byte != char offsets"
            );
            let (s, e) = tokens_of(w, cs, ce);
            let (sl, el) = logits(&f, &[(0, s, e, 8.0)]);
            let a = &decode(&f, &sl, &el, &QaParams::default()).unwrap()[0];
            assert_eq!((a.start, a.end), (cs, ce), "{gold}");
            assert_eq!(a.answer, gold);
        }
        // A word split into word pieces: align_to_words widens a middle piece to the word.
        let gold = "nordöstlich";
        let cs = char_find(context, gold);
        let ce = cs + gold.chars().count();
        let (s, e) = tokens_of(w, cs, ce);
        assert!(e > s, "`{gold}` should be several word pieces");
        let (sl, el) = logits(&f, &[(0, e, e, 8.0)]);
        let word = &decode(&f, &sl, &el, &QaParams::default()).unwrap()[0];
        assert_eq!(word.answer, gold);
        let raw = QaParams {
            align_to_words: false,
            ..QaParams::default()
        };
        let piece = &decode(&f, &sl, &el, &raw).unwrap()[0];
        assert_eq!((piece.start, piece.end), w.offsets[e]);
        assert!(piece.start > cs && piece.end == ce);
    }

    #[test]
    fn question_and_special_tokens_are_never_answers() {
        let tok = tokenizer();
        let (q, c) = (
            "What is the capital of France?",
            "The capital of France is Paris. It is known for the Eiffel Tower.",
        );
        let f = prepare(&tok, q, c, &QaParams::default()).unwrap();
        let w = &f.windows[0];
        let n = w.len();
        let cs = char_find(c, "Paris");
        let (s, e) = tokens_of(w, cs, cs + 5);
        let mut sl = vec![0.0f32; n];
        for i in (0..n).filter(|&i| w.sequence_ids[i] != Some(1)) {
            sl[i] = 60.0; // question, CLS and SEP tokens all look like great answers
        }
        let mut el = sl.clone();
        sl[s] = 3.0;
        el[e] = 3.0;
        for top_k in [1, 5] {
            let p = QaParams {
                top_k,
                ..QaParams::default()
            };
            let got = decode(&f, &[sl.clone()], &[el.clone()], &p).unwrap();
            assert_eq!(got.len(), top_k);
            assert_eq!(got[0].answer, "Paris");
            for a in &got {
                assert!(!a.answer.is_empty());
                assert!(a.start >= char_find(c, "The") && a.end <= c.chars().count());
            }
            // CLS takes part in the softmax (HF leaves it unmasked), so Paris is improbable.
            let want = prob(w, &sl, s) * prob(w, &el, e);
            assert!(
                (got[0].score - want).abs() < 1e-12,
                "{} vs {want}",
                got[0].score
            );
            assert!(got[0].score < 1e-40);
        }
        // With handle_impossible_answer the CLS score wins as the empty answer.
        let p = QaParams {
            handle_impossible_answer: true,
            ..QaParams::default()
        };
        let got = decode(&f, &[sl.clone()], &[el.clone()], &p).unwrap();
        assert_eq!(
            (got[0].answer.as_str(), got[0].start, got[0].end),
            ("", 0, 0)
        );
        assert!((got[0].score - prob(w, &sl, 0) * prob(w, &el, 0)).abs() < 1e-12);
    }

    #[test]
    fn max_answer_len_bounds_spans() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        let f = prepare(&tok, &q, &c, &QaParams::default()).unwrap();
        let w = &f.windows[0];
        let ctx: Vec<usize> = (0..w.len())
            .filter(|&i| w.sequence_ids[i] == Some(1))
            .collect();
        let (a, b) = (ctx[10], ctx[30]);
        let (sl, el) = logits(&f, &[(0, a, b, 9.0)]);
        let span_tokens = |ans: &QaAnswer| {
            ctx.iter()
                .filter(|&&i| w.offsets[i].0 >= ans.start && w.offsets[i].1 <= ans.end)
                .count()
        };
        for max_answer_len in [1, 5, 15] {
            let p = QaParams {
                max_answer_len,
                align_to_words: false,
                ..QaParams::default()
            };
            let got = &decode(&f, &sl, &el, &p).unwrap()[0];
            assert!(span_tokens(got) <= max_answer_len, "{got:?}");
        }
        let p = QaParams {
            max_answer_len: 21,
            align_to_words: false,
            ..QaParams::default()
        };
        let got = &decode(&f, &sl, &el, &p).unwrap()[0];
        assert_eq!((got.start, got.end), (w.offsets[a].0, w.offsets[b].1));
        let p = QaParams {
            max_answer_len: 20,
            align_to_words: false,
            ..QaParams::default()
        };
        let got = &decode(&f, &sl, &el, &p).unwrap()[0];
        assert_ne!((got.start, got.end), (w.offsets[a].0, w.offsets[b].1));
    }

    #[test]
    fn top_k_is_sorted_and_distinct() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        let f = prepare(&tok, &q, &c, &QaParams::default()).unwrap();
        let w = &f.windows[0];
        let ctx: Vec<usize> = (0..w.len())
            .filter(|&i| w.sequence_ids[i] == Some(1))
            .collect();
        let mut s: Vec<f32> = (0..w.len()).map(|i| ((i * 37 % 11) as f32) * 0.3).collect();
        let mut e: Vec<f32> = (0..w.len())
            .map(|i| ((i * 53 % 13) as f32) * 0.25)
            .collect();
        s[ctx[40]] = 6.0;
        e[ctx[42]] = 6.0;
        let p = QaParams {
            top_k: 7,
            ..QaParams::default()
        };
        // Other windows get flat logits: their spans all score below window 0's peak.
        let (mut sl, mut el) = logits(&f, &[]);
        sl[0] = s;
        el[0] = e;
        let got = decode(&f, &sl, &el, &p).unwrap();
        assert_eq!(got.len(), 7);
        assert!(got.windows(2).all(|x| x[0].score >= x[1].score));
        let mut seen: Vec<String> = got.iter().map(|a| a.answer.to_lowercase()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 7, "{got:?}");
        let top1 = decode(&f, &sl, &el, &QaParams::default()).unwrap();
        // Same best span; its score may differ, as in transformers: top_k sets how many
        // candidates per window (2·top_k + 10) are merged by text.
        assert_eq!(
            (top1[0].start, top1[0].end, &top1[0].answer),
            (got[0].start, got[0].end, &got[0].answer)
        );
        assert_eq!(py_slice(&c, top1[0].start, top1[0].end), top1[0].answer);
        // HF's JSON key order.
        let json = serde_json::to_string(&top1[0]).unwrap();
        let keys: Vec<usize> = ["\"score\"", "\"start\"", "\"end\"", "\"answer\""]
            .iter()
            .map(|k| json.find(k).unwrap())
            .collect();
        assert!(keys.windows(2).all(|k| k[0] < k[1]), "{json}");
    }

    #[test]
    fn windows_compete_and_equal_answers_merge() {
        let tok = tokenizer();
        let (q, c) = longest_fixture_context();
        let p = QaParams {
            max_seq_len: Some(64),
            doc_stride: Some(16),
            align_to_words: false,
            ..QaParams::default()
        };
        let f = prepare(&tok, &q, &c, &p).unwrap();
        assert!(f.windows.len() >= 4);
        let ctx = |k: usize| -> Vec<usize> {
            let w = &f.windows[k];
            (0..w.len())
                .filter(|&i| w.sequence_ids[i] == Some(1))
                .collect()
        };
        // A strong span in window 2 beats a weaker one in window 0.
        let (c0, c2) = (ctx(0), ctx(2));
        let (sl, el) = logits(&f, &[(0, c0[20], c0[21], 6.0), (2, c2[20], c2[21], 8.0)]);
        let got = decode(&f, &sl, &el, &p).unwrap();
        let w2 = &f.windows[2];
        assert_eq!(
            (got[0].start, got[0].end),
            (w2.offsets[c2[20]].0, w2.offsets[c2[21]].1),
            "{got:?}"
        );
        let want = prob(w2, &sl[2], c2[20]) * prob(w2, &el[2], c2[21]);
        assert!((got[0].score - want).abs() < 1e-12);

        // The same tokens seen by windows 0 and 1 (the stride overlap) give one answer whose
        // score is the sum of both windows' scores.
        let c1 = ctx(1);
        let (t0, t1) = (c0[c0.len() - 8], c1[16 - 8]);
        let (w0, w1) = (&f.windows[0], &f.windows[1]);
        assert_eq!(
            w0.offsets[t0], w1.offsets[t1],
            "overlap tokens must be the same text"
        );
        let (sl, el) = logits(&f, &[(0, t0, t0, 7.0), (1, t1, t1, 7.0)]);
        let p3 = QaParams {
            top_k: 3,
            ..p.clone()
        };
        let got = decode(&f, &sl, &el, &p3).unwrap();
        let want = prob(w0, &sl[0], t0) * prob(w0, &el[0], t0)
            + prob(w1, &sl[1], t1) * prob(w1, &el[1], t1);
        assert!((got[0].score - want).abs() < 1e-12, "{got:?} vs {want}");
        let text = got[0].answer.to_lowercase();
        assert_eq!(
            got.iter()
                .filter(|a| a.answer.to_lowercase() == text)
                .count(),
            1
        );
    }

    /// Every HF golden answer must be a span our windows can produce: some window has context
    /// tokens s <= e < s + max_answer_len whose word-aligned code-point span is HF's
    /// (start, end), and HF's answer is the context's code points start..end.
    #[test]
    fn every_hf_answer_is_a_reachable_span() {
        let tok = tokenizer();
        let p = QaParams::default();
        for r in fixture_rows() {
            let (q, c) = (
                r["question"].as_str().unwrap(),
                r["context"].as_str().unwrap(),
            );
            let (start, end) = (
                r["start"].as_u64().unwrap() as usize,
                r["end"].as_u64().unwrap() as usize,
            );
            assert_eq!(
                py_slice(c, start, end),
                r["answer"].as_str().unwrap(),
                "{}",
                r["id"]
            );
            let f = prepare(&tok, q, c, &p).unwrap();
            let found = f.windows.iter().any(|w| {
                (0..w.len()).filter(|&s| w.is_context(s)).any(|s| {
                    let last = s.saturating_add(p.max_answer_len - 1).min(w.len() - 1);
                    (s..=last)
                        .filter(|&e| w.is_context(e))
                        .any(|e| w.char_span(s, e, true) == (start, end))
                })
            });
            assert!(found, "{}: HF span {start}..{end} not reachable", r["id"]);
        }
    }
}
