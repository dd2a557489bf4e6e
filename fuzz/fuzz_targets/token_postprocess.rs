//! Token-classification post-processing (every aggregation strategy) fed arbitrary tokens,
//! offsets past the text, logits of any length and value, and BIO-style label sets.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wgformer::pipelines::token_classification::{postprocess, Aggregation, Token, TokenizerInfo};

const LABELS: [&str; 8] = [
    "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "MISC", "B-", "I-X-Y",
];
const STRATEGIES: [&str; 5] = ["none", "simple", "first", "average", "max"];

#[derive(Arbitrary, Debug)]
struct Tok {
    id: u8,
    token: String,
    start: u16,
    end: u16,
    special: bool,
}

#[derive(Arbitrary, Debug)]
struct Input {
    text: String,
    tokens: Vec<Tok>,
    logits: Vec<f32>,
    labels: Vec<u8>,
    strategy: u8,
    word_aware: bool,
    unk: Option<u8>,
    ignore_o: bool,
    /// Pad or cut the logits to exactly tokens × labels (else the length check ends it).
    exact: bool,
}

fuzz_target!(|x: Input| {
    let id2label: Vec<String> = x
        .labels
        .iter()
        .take(16)
        .map(|&l| LABELS[l as usize % LABELS.len()].to_string())
        .collect();
    let tokens: Vec<Token> = x
        .tokens
        .iter()
        .map(|t| Token {
            id: t.id.into(),
            token: t.token.clone(),
            start: t.start.into(),
            end: t.end.into(),
            special: t.special,
        })
        .collect();
    let mut logits = x.logits;
    if x.exact {
        logits.resize(tokens.len() * id2label.len().max(1), 0.5);
    }
    let join = |t: &[String]| -> wgformer::Result<String> { Ok(t.concat()) };
    let info = TokenizerInfo {
        unk_id: x.unk.map(u32::from),
        word_aware: x.word_aware,
        tokens_to_string: &join,
    };
    let strategy = Aggregation::parse(STRATEGIES[x.strategy as usize % STRATEGIES.len()]).unwrap();
    let ignore = if x.ignore_o {
        vec!["O".to_string()]
    } else {
        vec![]
    };
    let _ = postprocess(
        &x.text, &tokens, &logits, &id2label, &info, strategy, &ignore,
    );
});
