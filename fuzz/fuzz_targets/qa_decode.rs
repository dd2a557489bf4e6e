//! Question-answering post-processing fed arbitrary windows (offsets, sequence ids, words,
//! p_mask), logits of any length and value (NaN, infinities) and parameters.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wgformer::pipelines::qa::{decode, QaFeatures, QaParams, QaWindow};

#[derive(Arbitrary, Debug)]
struct Token {
    start: u16,
    end: u16,
    sequence: Option<u8>,
    word: Option<u8>,
    masked: bool,
}

#[derive(Arbitrary, Debug)]
struct Window {
    tokens: Vec<Token>,
    start_logits: Vec<f32>,
    end_logits: Vec<f32>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    context: String,
    windows: Vec<Window>,
    top_k: u8,
    max_answer_len: u8,
    handle_impossible_answer: bool,
    align_to_words: bool,
    drop_last_logits: bool,
}

fuzz_target!(|x: Input| {
    let windows = x
        .windows
        .iter()
        .map(|w| QaWindow {
            ids: (0..w.tokens.len() as u32).collect(),
            type_ids: vec![0; w.tokens.len()],
            offsets: w
                .tokens
                .iter()
                .map(|t| (t.start as usize, t.end as usize))
                .collect(),
            sequence_ids: w
                .tokens
                .iter()
                .map(|t| t.sequence.map(usize::from))
                .collect(),
            words: w.tokens.iter().map(|t| t.word.map(u32::from)).collect(),
            p_mask: w.tokens.iter().map(|t| t.masked).collect(),
        })
        .collect();
    let f = QaFeatures {
        windows,
        question: String::new(),
        context: x.context,
    };
    let mut starts: Vec<Vec<f32>> = x.windows.iter().map(|w| w.start_logits.clone()).collect();
    let ends: Vec<Vec<f32>> = x.windows.iter().map(|w| w.end_logits.clone()).collect();
    if x.drop_last_logits {
        starts.pop();
    }
    let p = QaParams {
        top_k: x.top_k as usize,
        max_answer_len: x.max_answer_len as usize,
        handle_impossible_answer: x.handle_impossible_answer,
        align_to_words: x.align_to_words,
        ..QaParams::default()
    };
    let _ = decode(&f, &starts, &ends, &p);
});
