//! Property tests (proptest) over the GPU-free parts the fuzzers cover, so CI keeps exercising
//! them with random inputs: input-file splitting, QA decoding from arbitrary logits over real
//! windows, token-classification post-processing with arbitrary logits and offsets, and the
//! row blocks a weight is split into.

mod common;
use common::shared;
use proptest::prelude::*;
use wgformer::graph::row_blocks;
use wgformer::ops::DType;
use wgformer::pipelines::input::split_lines;
use wgformer::pipelines::qa::{decode, prepare, QaParams};
use wgformer::pipelines::token_classification::{postprocess, Aggregation, Token, TokenizerInfo};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Lines are numbered 1, 2, 3... in order; none keeps its `\n` or trailing `\r`; valid
    /// UTF-8 lines are returned verbatim, others name their line.
    #[test]
    fn lines_split_in_order(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let lines = split_lines(&bytes);
        for (k, (n, l)) in lines.iter().enumerate() {
            prop_assert_eq!(*n, k + 1);
            match l {
                Ok(s) => prop_assert!(!s.contains('\n') && !s.ends_with('\r')),
                Err(e) => {
                    let prefix = format!("line {n}:");
                    prop_assert!(e.starts_with(&prefix), "{}", e);
                }
            }
        }
    }

    /// Whatever the (finite) logits: at most top_k answers, each a slice of the context
    /// (code points start..end) with a score in [0, windows], best first.
    #[test]
    fn qa_answers_are_context_slices(
        context in "[a-zA-Z0-9 ,.éß漢]{1,120}",
        top_k in 1usize..6,
        max_answer_len in 1usize..20,
        impossible in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let tok = tokenizer();
        let p = QaParams {
            top_k,
            max_answer_len,
            handle_impossible_answer: impossible,
            max_seq_len: Some(24),
            doc_stride: Some(8),
            ..QaParams::default()
        };
        let f = prepare(&tok, "who is it?", &context, &p).unwrap();
        let mut x = seed;
        let mut logits = |n: usize| -> Vec<f32> {
            (0..n).map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 40.0
            }).collect()
        };
        let starts: Vec<Vec<f32>> = f.windows.iter().map(|w| logits(w.len())).collect();
        let ends: Vec<Vec<f32>> = f.windows.iter().map(|w| logits(w.len())).collect();
        let answers = decode(&f, &starts, &ends, &p).unwrap();
        prop_assert!(answers.len() <= top_k);
        let chars: Vec<char> = context.chars().collect();
        for (i, a) in answers.iter().enumerate() {
            prop_assert!(a.start <= a.end && a.end <= chars.len(), "{:?}", a);
            prop_assert_eq!(&a.answer, &chars[a.start..a.end].iter().collect::<String>());
            // A probability per window; equal answers from several windows are summed (as HF).
            let windows = f.windows.len() as f64;
            prop_assert!((0.0..=windows + 1e-9).contains(&a.score), "{:?}", a);
            if i > 0 {
                prop_assert!(answers[i - 1].score >= a.score);
            }
        }
        // Logit rows that do not match the windows: an error, not a panic.
        let mut short = starts.clone();
        short[0].pop();
        prop_assert!(decode(&f, &short, &ends, &p).is_err());
    }

    /// Any tokens (offsets past the text included) and finite logits: no panic, at most one
    /// entity per real token, scores in [0, 1], indices of real tokens; logits of the wrong
    /// length are refused.
    #[test]
    fn token_entities_lie_within_the_text(
        text in "[a-z ]{0,40}",
        toks in proptest::collection::vec((0u32..50, "[a-z#]{0,4}", 0usize..50, 0usize..50, any::<bool>()), 0..12),
        labels in 1usize..5,
        seed in any::<u64>(),
        strategy in 0usize..5,
        word_aware in any::<bool>(),
    ) {
        let names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"];
        let id2label: Vec<String> = names[..labels].iter().map(|s| s.to_string()).collect();
        let tokens: Vec<Token> = toks.iter().map(|(id, t, a, b, special)| Token {
            id: *id,
            token: t.clone(),
            start: *a.min(b),
            end: *a.max(b),
            special: *special,
        }).collect();
        let mut x = seed;
        let logits: Vec<f32> = (0..tokens.len() * labels).map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 20.0
        }).collect();
        let join = |t: &[String]| -> wgformer::Result<String> { Ok(t.concat()) };
        let info = TokenizerInfo { unk_id: Some(1), word_aware, tokens_to_string: &join };
        let agg = Aggregation::parse(["none", "simple", "first", "average", "max"][strategy]).unwrap();
        let real = tokens.iter().filter(|t| !t.special).count();
        if let Ok(ents) = postprocess(&text, &tokens, &logits, &id2label, &info, agg, &[]) {
            // Never more entities than real tokens, whatever the grouping.
            prop_assert!(ents.len() <= real);
            for e in &ents {
                prop_assert!((0.0..=1.0 + 1e-6).contains(&e.score), "{:?}", e);
                prop_assert!(e.index.is_none_or(|i| i < tokens.len()), "{:?}", e);

            }
        }
        prop_assert!(postprocess(&text, &tokens, &logits[..logits.len().saturating_sub(1)], &id2label, &info, agg, &[]).is_err() || logits.is_empty());
    }

    /// Row blocks cover every row once, in order, and each fits the limit.
    #[test]
    fn row_blocks_cover_the_rows_within_the_limit(
        rows in 1usize..5000,
        cols in 1usize..300,
        f16 in any::<bool>(),
        limit in 4u64..200_000,
    ) {
        let dt = if f16 { DType::F16 } else { DType::F32 };
        match row_blocks(&[rows, cols], dt, limit) {
            Ok(blocks) => {
                let mut next = 0;
                for (start, n) in &blocks {
                    prop_assert_eq!(*start, next);
                    prop_assert!(*n > 0);
                    prop_assert!(dt.bytes(n * cols) <= limit);
                    next += n;
                }
                prop_assert_eq!(next, rows);
            }
            Err(e) => {
                let row = if f16 { 2 } else { 4 } * cols as u64;
                prop_assert!(row > limit & !3, "{}", e);
            }
        }
    }
}

fn tokenizer() -> tokenizers::Tokenizer {
    static TOK: std::sync::OnceLock<tokenizers::Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| {
        tokenizers::Tokenizer::from_file(shared().join("fixtures/tiny/tiny-bert/tokenizer.json"))
            .unwrap()
    })
    .clone()
}
