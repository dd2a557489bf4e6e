//! `wgformer ner | fill-mask | zero-shot | rerank` through the binary on tiny2 fixture rows:
//! `--input` files (with a bad line in the middle), `--json` output compared with transformers'
//! answers (scores within 1e-4), one line per input in input order with `{"line", "error"}` in
//! place of what fails; and `wgformer info` naming the new heads.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const TOL: f64 = 1e-4;

fn tiny2(name: &str) -> PathBuf {
    shared().join("fixtures/tiny2").join(name)
}

/// Runs the binary with `args` (and `stdin`), on the test backend when one is named.
fn wgformer(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgformer"));
    cmd.args(args);
    if let Ok(b) = std::env::var("WGFORMER_TEST_BACKEND") {
        cmd.args(["--backend", &b]);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Equal JSON, numbers under a `score`/`scores` key within TOL.
fn same(got: &Value, want: &Value, scores: bool) -> bool {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            g.len() == w.len()
                && w.iter().all(|(k, v)| {
                    g.get(k)
                        .is_some_and(|x| same(x, v, k == "score" || k == "scores"))
                })
        }
        (Value::Array(g), Value::Array(w)) => {
            g.len() == w.len() && g.iter().zip(w).all(|(g, w)| same(g, w, scores))
        }
        (Value::Number(g), Value::Number(w)) if scores => {
            (g.as_f64().unwrap() - w.as_f64().unwrap()).abs() < TOL
        }
        (g, w) => g == w,
    }
}

fn rows(task: &str, model: &str) -> Vec<Value> {
    jsonl("tiny2/tiny-tasks.hf.jsonl")
        .into_iter()
        .filter(|r| r["task"] == task && r["model"] == model)
        .collect()
}

/// A JSONL input of the rows' texts with an unreadable line after the first; returns the file
/// text and, per output line, the row it answers (`None`: the bad line).
fn input_with_bad_line(rows: &[&Value]) -> (String, Vec<Option<Value>>) {
    let mut text = String::new();
    let mut expect = vec![];
    for (i, r) in rows.iter().enumerate() {
        text.push_str(&serde_json::json!({ "text": r["inputs"]["text"] }).to_string());
        text.push('\n');
        expect.push(Some((*r).clone()));
        if i == 0 {
            text.push_str("{\"txt\": \"a typo\"}\n");
            expect.push(None);
        }
    }
    (text, expect)
}

/// Checks the `--json` output lines against the rows: each answer as transformers', each
/// refused row and the bad line as `{"line", "error"}` with its line number.
fn check_lines(what: &str, stdout: &str, expect: &[Option<Value>]) {
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: {l:?}: {e}")))
        .collect();
    assert_eq!(
        lines.len(),
        expect.len(),
        "{what}: one line per input\n{stdout}"
    );
    for (k, (got, want)) in lines.iter().zip(expect).enumerate() {
        let line = k + 1;
        match want {
            Some(r) if r["hf"].get("error").is_none() => assert!(
                same(got, &r["hf"], false),
                "{what} line {line}:\n  got  {got}\n  want {}",
                r["hf"]
            ),
            _ => {
                assert_eq!(got["line"], line, "{what}: {got}");
                assert!(got["error"].is_string(), "{what} line {line}: {got}");
            }
        }
    }
}

#[test]
fn ner_cli_matches_transformers() {
    for (model, strategy) in [
        ("tiny-bert-ner", "simple"),
        ("tiny-roberta-ner", "none"),
        ("tiny-xlm-roberta-ner", "first"),
        ("tiny-bert-ner", "average"),
        ("tiny-xlm-roberta-ner", "max"),
    ] {
        let all = rows("token-classification", model);
        let picked: Vec<&Value> = all
            .iter()
            .filter(|r| r["args"]["aggregation_strategy"] == strategy)
            .collect();
        assert!(picked.len() >= 3, "{model} {strategy}: rows");
        let (input, expect) = input_with_bad_line(&picked);
        let dir = tiny2(model);
        let (_, stdout, stderr) = wgformer(
            &[
                "ner",
                "--model",
                dir.to_str().unwrap(),
                "--aggregation-strategy",
                strategy,
                "--input",
                "-",
                "--json",
            ],
            Some(&input),
        );
        assert!(stderr.contains("line 2:"), "{model}: {stderr}");
        check_lines(&format!("ner {model} {strategy}"), &stdout, &expect);
    }
}

#[test]
fn fill_mask_cli_matches_transformers() {
    for model in ["tiny-bert-mlm", "tiny-distilbert-mlm", "tiny-roberta-mlm"] {
        let all = rows("fill-mask", model);
        let top5: Vec<&Value> = all.iter().filter(|r| r["args"]["top_k"] == 5).collect();
        assert!(
            top5.iter().any(|r| r["hf"].get("error").is_some()),
            "{model}: a no-mask row"
        );
        let (input, expect) = input_with_bad_line(&top5);
        let path = std::env::temp_dir().join(format!(
            "wgformer-cli-fill-{}-{model}.jsonl",
            std::process::id()
        ));
        std::fs::write(&path, input).unwrap();
        let dir = tiny2(model);
        let (_, stdout, _) = wgformer(
            &[
                "fill-mask",
                "--model",
                dir.to_str().unwrap(),
                "--input",
                path.to_str().unwrap(),
                "--top-k",
                "5",
                "--json",
            ],
            None,
        );
        std::fs::remove_file(&path).unwrap();
        check_lines(&format!("fill-mask {model}"), &stdout, &expect);
        // Targets as a comma-separated list, the text as an argument.
        let t = all
            .iter()
            .find(|r| r["args"]["targets"].is_array())
            .expect("a targets row");
        let targets: Vec<&str> = t["args"]["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let (ok, stdout, stderr) = wgformer(
            &[
                "fill-mask",
                "--model",
                dir.to_str().unwrap(),
                "--targets",
                &targets.join(","),
                "--json",
                t["inputs"]["text"].as_str().unwrap(),
            ],
            None,
        );
        assert!(ok, "{model}: {stderr}");
        check_lines(
            &format!("fill-mask {model} targets"),
            &stdout,
            &[Some(t.clone())],
        );
    }
    // One text without a mask: transformers' refusal, and a failing exit.
    let dir = tiny2("tiny-bert-mlm");
    let (ok, _, stderr) = wgformer(
        &[
            "fill-mask",
            "--model",
            dir.to_str().unwrap(),
            "No mask here.",
        ],
        None,
    );
    assert!(!ok && stderr.contains("No mask_token ([MASK])"), "{stderr}");
}

#[test]
fn zero_shot_cli_matches_transformers() {
    let dir = tiny2("tiny-bert-nli");
    for r in rows("zero-shot-classification", "tiny-bert-nli") {
        let labels: Vec<&str> = r["inputs"]["candidate_labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        let labels = labels.join(",");
        let mut args = vec![
            "zero-shot",
            "--model",
            dir.to_str().unwrap(),
            "--labels",
            &labels,
            "--json",
            "--input",
            "-",
        ];
        if r["args"]["multi_label"] == true {
            args.push("--multi-label");
        }
        if let Some(t) = r["args"]["hypothesis_template"].as_str() {
            args.extend(["--hypothesis-template", t]);
        }
        // The row's text, then a second copy: two lines, two identical answers.
        let text = serde_json::json!({ "text": r["inputs"]["text"] }).to_string();
        let (_, stdout, _) = wgformer(&args, Some(&format!("{text}\n{text}\n")));
        check_lines(
            &format!("zero-shot {}", r["args"]),
            &stdout,
            &[Some(r.clone()), Some(r.clone())],
        );
    }
    // A template the labels cannot fill is refused before any work.
    let (ok, _, stderr) = wgformer(
        &[
            "zero-shot",
            "--model",
            dir.to_str().unwrap(),
            "--labels",
            "a,b",
            "--hypothesis-template",
            "no placeholder",
            "some text",
        ],
        None,
    );
    assert!(
        !ok && stderr.contains("was not able to be formatted"),
        "{stderr}"
    );
}

#[test]
fn rerank_cli_orders_documents_like_the_pipeline_scores() {
    for model in ["tiny-bert-cross", "tiny-xlm-roberta-cross"] {
        let all = rows("text-classification", model);
        let query = "who discovered radium";
        let docs: Vec<&Value> = all
            .iter()
            .filter(|r| r["inputs"]["text"] == query)
            .collect();
        assert!(docs.len() >= 2, "{model}: documents for {query:?}");
        let dir = tiny2(model);
        for raw in [false, true] {
            let mut args = vec!["rerank", "--model", dir.to_str().unwrap(), "--query", query];
            if raw {
                args.push("--raw-scores");
            }
            args.push("--json");
            let texts: Vec<&str> = docs
                .iter()
                .map(|r| r["inputs"]["text_pair"].as_str().unwrap())
                .collect();
            args.extend(texts.iter().copied());
            let (ok, stdout, stderr) = wgformer(&args, None);
            assert!(ok, "{model}: {stderr}");
            let ranks: Vec<Value> = stdout
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(ranks.len(), docs.len(), "{stdout}");
            let want = |i: usize| {
                if raw {
                    docs[i]["hf"]["logit"].as_f64().unwrap()
                } else {
                    docs[i]["hf"]["pipeline"][0]["score"].as_f64().unwrap()
                }
            };
            let mut best = f64::INFINITY;
            for r in &ranks {
                let i = r["index"].as_u64().unwrap() as usize;
                let s = r["score"].as_f64().unwrap();
                assert!((s - want(i)).abs() < TOL, "{model}: {r} vs {}", want(i));
                assert_eq!(r["text"], texts[i]);
                assert!(want(i) <= best + TOL, "{model}: not best first: {stdout}");
                best = want(i);
            }
        }
    }
    // A classifier with several labels is not a cross-encoder.
    let (ok, _, stderr) = wgformer(
        &[
            "rerank",
            "--model",
            tiny2("tiny-bert-nli").to_str().unwrap(),
            "--query",
            "q",
            "doc",
        ],
        None,
    );
    assert!(!ok && stderr.contains("one label"), "{stderr}");
}

#[test]
fn info_names_token_classification_and_masked_lm_heads() {
    for (name, head, needle) in [
        (
            "tiny-bert-ner",
            "TokenClassification",
            "classifier on every token (9 labels)",
        ),
        (
            "tiny-roberta-mlm",
            "MaskedLm",
            "decoder tied to the word embeddings",
        ),
        ("tiny-distilbert-mlm", "MaskedLm", "vocab_transform"),
    ] {
        let dir = tiny2(name);
        let (ok, stdout, stderr) =
            wgformer(&["info", "--model", dir.to_str().unwrap(), "--json"], None);
        assert!(ok, "{name}: {stderr}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["head"], head, "{name}");
        assert!(
            v["head_layers"].as_str().unwrap().contains(needle),
            "{name}: {}",
            v["head_layers"]
        );
    }
    let (_, text, _) = wgformer(
        &["info", "--model", tiny2("tiny-bert-ner").to_str().unwrap()],
        None,
    );
    assert!(text.contains("labels        O, B-PER"), "{text}");
    assert!(Path::new(&tiny2("tiny-bert-ner")).is_dir());
}
