//! The fuzz targets' inputs as regular tests (no GPU): every committed seed (and every crash a
//! fuzzer found, kept under fuzz/seeds/) runs through the same calls the targets make, and
//! the shrunken model seeds must load cleanly so the fuzzers start from valid files.

use std::path::PathBuf;
use wgformer::models::Model;
use wgformer::pipelines::input::{parse_qa, parse_texts, split_lines};

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no seeds in {}", dir.display());
    v
}

/// As the load_model target: u16 config length, config.json, model.safetensors.
fn check_model(data: &[u8]) -> wgformer::Result<()> {
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let config = String::from_utf8_lossy(&data[2..2 + n]);
    Model::check_memory("fuzz", &config, data[2 + n..].to_vec())
}

#[test]
fn load_model_seeds_are_valid_and_every_truncation_is_an_error() {
    for (name, data) in seeds("load_model") {
        if name.contains("crash-") {
            assert!(check_model(&data).is_err(), "{name}");
            continue;
        }
        check_model(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Cut anywhere in the safetensors part: an error naming the problem, never a panic.
        let n = u16::from_le_bytes([data[0], data[1]]) as usize + 2;
        for cut in (n..data.len()).step_by(97) {
            let e = check_model(&data[..cut]).expect_err(&format!("{name} cut at {cut}"));
            assert!(!e.to_string().is_empty());
        }
    }
}

#[test]
fn input_file_seeds_parse_line_by_line() {
    for (name, data) in seeds("input_files") {
        let lines = split_lines(&data);
        let qa = parse_qa(lines.clone());
        let texts = parse_texts(lines);
        for items in [
            qa.iter()
                .map(|i| (i.line, i.value.is_ok()))
                .collect::<Vec<_>>(),
            texts.iter().map(|i| (i.line, i.value.is_ok())).collect(),
        ] {
            assert!(
                items.windows(2).all(|w| w[0].0 < w[1].0),
                "{name}: line order"
            );
        }
    }
}
