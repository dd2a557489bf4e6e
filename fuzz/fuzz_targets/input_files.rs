//! The `--input FILE` readers: any bytes split into lines and parsed as QA JSONL and as
//! classification texts (plain or JSONL).
#![no_main]
use libfuzzer_sys::fuzz_target;
use wgformer::pipelines::input::{parse_qa, parse_texts, split_lines};

fuzz_target!(|data: &[u8]| {
    let lines = split_lines(data);
    let _ = parse_qa(lines.clone());
    let _ = parse_texts(lines);
});
