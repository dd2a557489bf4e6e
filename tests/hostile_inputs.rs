//! Hostile inputs, through the library and the `wgformer` binary, each answered with a clear
//! error or a correct result: a 10 MB text, a 100,000-line input file, NUL bytes, invalid
//! UTF-8, JSONL with wrong types and deep nesting, `--top-k` far beyond the labels, a batch
//! that cannot fit, no adapter at all, and a device lost mid-run.

mod common;
use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use wgformer::models::{Model, Sequence};
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::Classifier;
use wgformer::GpuOptions;

fn tiny_bert() -> String {
    shared()
        .join("fixtures/tiny/tiny-bert")
        .display()
        .to_string()
}

/// Runs the binary with `args` on the test backend (unless `args` picks one).
fn wgformer(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgformer"));
    cmd.args(args);
    if let (Ok(b), false) = (
        std::env::var("WGFORMER_TEST_BACKEND"),
        args.contains(&"--backend"),
    ) {
        cmd.args(["--backend", &b]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_file(name: &str, bytes: &[u8]) -> String {
    let p = std::env::temp_dir().join(format!("wgformer-hostile-{}-{name}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The classifier's answer for `text` alone, through the library: what the CLI must print.
fn labels_of(text: &str) -> Value {
    let c = Classifier::load(tiny_bert().as_ref(), &gpu(), None).unwrap();
    let r = c
        .classify(
            &[TextInput {
                text: text.into(),
                text_pair: None,
            }],
            TopK::All,
            8,
            &|_| {},
        )
        .unwrap();
    // Through text, as the CLI's lines are read (serde_json's parse may differ from the
    // exact value in the last bit).
    serde_json::from_str(&serde_json::to_string(r[0].as_ref().unwrap()).unwrap()).unwrap()
}

/// A 10 MB single-line text is truncated to the model's 64 positions like any long text: the
/// same labels as its first 64 tokens give, in bounded time and memory.
#[test]
fn ten_megabyte_text_is_truncated_and_classified() {
    let text = "the quick brown fox jumps over the lazy dog ".repeat(240_000);
    assert!(text.len() >= 10 << 20);
    let f = temp_file("10mb.txt", text.as_bytes());
    let (ok, out, err) = wgformer(&[
        "classify",
        "--model",
        &tiny_bert(),
        "--input",
        &f,
        "--json",
        "--top-k",
        "all",
    ]);
    assert!(ok, "{err}");
    let got = json_lines(&out);
    assert_eq!(got.len(), 1);
    let short = "the quick brown fox jumps over the lazy dog ".repeat(20);
    assert_eq!(
        got[0],
        labels_of(&short),
        "a 10 MB text is its first 64 tokens"
    );
}

/// 100,000 lines: 100,000 answers in input order (each a copy of one of two texts).
#[test]
fn hundred_thousand_line_input_file() {
    let texts = ["a happy day", "rain again"];
    let body: String = (0..100_000)
        .map(|i| format!("{}\n", texts[i % 2]))
        .collect();
    let f = temp_file("100k.txt", body.as_bytes());
    let (ok, out, err) = wgformer(&[
        "classify",
        "--model",
        &tiny_bert(),
        "--input",
        &f,
        "--json",
        "--top-k",
        "all",
    ]);
    assert!(ok, "{err}");
    let got = json_lines(&out);
    assert_eq!(got.len(), 100_000);
    let want = [labels_of(texts[0]), labels_of(texts[1])];
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &want[i % 2], "line {}", i + 1);
    }
}

/// NUL bytes are text like any other; invalid UTF-8, JSON of the wrong type and JSON nested
/// past serde's recursion limit are errors naming their line; the good lines still run.
#[test]
fn nul_bytes_invalid_utf8_wrong_types_and_deep_nesting() {
    let deep = format!("{{\"text\": {}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let mut body = b"a\0b\0c\n".to_vec();
    body.extend_from_slice(b"bad \xff\xfe bytes\n");
    body.extend_from_slice(b"{\"text\": 5}\n");
    body.extend_from_slice(b"{\"text\": \"x\", \"text_pair\": [1]}\n");
    body.extend_from_slice(deep.as_bytes());
    body.extend_from_slice(b"\nfine text\n");
    let f = temp_file("mixed.txt", &body);
    let (ok, out, err) = wgformer(&[
        "classify",
        "--model",
        &tiny_bert(),
        "--input",
        &f,
        "--json",
        "--top-k",
        "all",
    ]);
    assert!(ok, "{err}");
    let got = json_lines(&out);
    let errors: Vec<u64> = got
        .iter()
        .filter_map(|v| v.get("error").map(|_| v["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(errors, [2, 3, 4, 5], "{out}");
    assert!(err.contains("line 2: not valid UTF-8"), "{err}");
    assert!(err.contains("line 5:"), "{err}");
    let answers: Vec<&Value> = got.iter().filter(|v| v.get("error").is_none()).collect();
    assert_eq!(answers, [&labels_of("a\0b\0c"), &labels_of("fine text")]);
}

/// `--top-k` beyond the 3 labels gives all 3, as transformers does; 0 and junk are refused.
#[test]
fn top_k_far_beyond_the_labels() {
    let m = tiny_bert();
    let (ok, out, err) = wgformer(&[
        "classify", "--model", &m, "--json", "--top-k", "1000000", "hi",
    ]);
    assert!(ok, "{err}");
    assert_eq!(json_lines(&out)[0], labels_of("hi"));
    for bad in ["0", "-3", "lots", "99999999999999999999999"] {
        let flag = format!("--top-k={bad}");
        let (ok, _, err) = wgformer(&["classify", "--model", &m, &flag, "hi"]);
        assert!(!ok && err.contains("--top-k"), "--top-k {bad}: {err}");
    }
}

/// A batch whose activations exceed the binding limit is refused before any GPU work, and the
/// error says what to lower; the pipelines split such a batch themselves.
#[test]
fn a_batch_that_cannot_fit_names_what_to_lower() {
    let gpu = wgformer::gpu::open_test_gpu(GpuOptions {
        max_binding_bytes: Some(1 << 20),
        ..Default::default()
    });
    let model = Model::load(tiny_bert().as_ref(), &gpu).unwrap();
    let rows = vec![Sequence::new((1..64).collect()); 2000];
    let e = model
        .forward(&rows)
        .expect_err("2000 × 64 × 96 f32 > 1 MiB");
    let msg = e.to_string();
    assert!(msg.contains("smaller batch"), "{msg}");
    let c = Classifier::load(tiny_bert().as_ref(), &gpu, None).unwrap();
    let texts: Vec<TextInput> = (0..300)
        .map(|_| TextInput {
            text: "word ".repeat(70),
            text_pair: None,
        })
        .collect();
    let r = c.classify(&texts, TopK::One, 100_000, &|_| {}).unwrap();
    assert!(r.iter().all(|x| x.is_ok()));
}

/// No adapter on the chosen backend: a clear error saying what to install, exit status 1.
#[test]
fn no_adapter_at_all() {
    let missing = if cfg!(target_os = "macos") {
        "dx12"
    } else {
        "metal"
    };
    let (ok, _, err) = wgformer(&[
        "classify",
        "--model",
        &tiny_bert(),
        "--backend",
        missing,
        "hi",
    ]);
    assert!(!ok);
    assert!(err.contains("adapter"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A device lost mid-run (destroyed under the model): the next forward is an error naming the
/// lost device, not a panic or a hang.
#[test]
fn device_lost_mid_run() {
    let gpu = wgformer::gpu::open_test_gpu(GpuOptions::default());
    let model = Model::load(tiny_bert().as_ref(), &gpu).unwrap();
    let rows = vec![Sequence::new(vec![2, 10, 11, 3])];
    model.forward(&rows).unwrap();
    gpu.device.destroy();
    let e = model.forward(&rows).expect_err("the device is gone");
    assert!(e.to_string().to_lowercase().contains("lost"), "{e}");
}
