//! `wgformer ner | fill-mask | zero-shot | rerank` through the binary on tiny2 fixture rows:
//! `--input` files (with a bad line in the middle), `--json` output compared with transformers'
//! answers (scores within 1e-4), one line per input in input order with `{"line", "error"}` in
//! place of what fails; and `wgformer info` naming the new heads.

mod common;
mod tiny2_util;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use tiny2_util::*;

const TOL: f64 = 1e-4;

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

/// Rows grouped by their arguments, in file order.
fn by_args(rows: &[Value]) -> BTreeMap<String, Vec<&Value>> {
    let mut by = BTreeMap::<String, Vec<&Value>>::new();
    for r in rows {
        by.entry(r["args"].to_string()).or_default().push(r);
    }
    by
}

/// A temporary input file, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(tag: &str, text: &str) -> TempFile {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "wgformer-cli-{tag}-{}-{}.jsonl",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&p, text).unwrap();
        TempFile(p)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every token-classification row, a call per (model, strategy), the inputs through stdin.
#[test]
fn ner_cli_matches_transformers() {
    let models = task_rows("token-classification");
    assert!(!models.is_empty());
    for (model, rows) in &models {
        let dir = tiny2(model);
        for (args, rows) in by_args(rows) {
            let strategy = rows[0]["args"]["aggregation_strategy"]
                .as_str()
                .unwrap_or("none");
            let (input, expect) = input_with_bad_line(&rows);
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
            check_lines(&format!("ner {model} {args}"), &stdout, &expect);
        }
    }
}

/// Every fill-mask row, a call per (model, arguments), the inputs from a file; `--targets` as
/// a comma-separated list.
#[test]
fn fill_mask_cli_matches_transformers() {
    let models = task_rows("fill-mask");
    assert!(!models.is_empty());
    for (model, rows) in &models {
        let dir = tiny2(model);
        for (args, rows) in by_args(rows) {
            let a = &rows[0]["args"];
            let top_k = a["top_k"].as_u64().unwrap_or(5).to_string();
            let targets: Option<Vec<&str>> = a["targets"]
                .as_array()
                .map(|t| t.iter().map(|x| x.as_str().unwrap()).collect());
            let (input, expect) = input_with_bad_line(&rows);
            let file = TempFile::new("fill", &input);
            let joined = targets.map(|t| t.join(","));
            let mut cmd = vec![
                "fill-mask",
                "--model",
                dir.to_str().unwrap(),
                "--input",
                file.path(),
                "--top-k",
                &top_k,
                "--json",
            ];
            if let Some(t) = &joined {
                cmd.extend(["--targets", t]);
            }
            let (_, stdout, _) = wgformer(&cmd, None);
            check_lines(&format!("fill-mask {model} {args}"), &stdout, &expect);
        }
    }
    // One text without a mask as an argument: transformers' refusal, and a failing exit.
    let model = models.keys().next().unwrap();
    let (ok, _, stderr) = wgformer(
        &[
            "fill-mask",
            "--model",
            tiny2(model).to_str().unwrap(),
            "No mask here.",
        ],
        None,
    );
    assert!(!ok && stderr.contains("No mask_token ("), "{stderr}");
}

/// Every zero-shot row, each text twice through stdin (two lines, two identical answers).
#[test]
fn zero_shot_cli_matches_transformers() {
    let models = task_rows("zero-shot-classification");
    assert!(!models.is_empty());
    for (model, rows) in &models {
        let dir = tiny2(model);
        for r in rows {
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
            let text = serde_json::json!({ "text": r["inputs"]["text"] }).to_string();
            let (_, stdout, _) = wgformer(&args, Some(&format!("{text}\n{text}\n")));
            check_lines(
                &format!("zero-shot {model} {}", r["args"]),
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
}

/// The cross-encoders' rows: per model, the query with the most documents ranked through the
/// binary, best first by transformers' scores, with the pipeline's score and the raw logit.
#[test]
fn rerank_cli_orders_documents_like_the_pipeline_scores() {
    let mut checked = 0;
    for (model, rows) in task_rows("text-classification") {
        if rows.iter().any(|r| !r["hf"]["logit"].is_number()) {
            continue;
        }
        let mut queries = BTreeMap::<&str, Vec<&Value>>::new();
        for r in &rows {
            if r["inputs"]["text_pair"].is_string() {
                queries
                    .entry(r["inputs"]["text"].as_str().unwrap())
                    .or_default()
                    .push(r);
            }
        }
        let (query, docs) = queries
            .into_iter()
            .max_by_key(|(_, d)| d.len())
            .expect("a query with documents");
        let dir = tiny2(&model);
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
                let hf = &docs[i]["hf"];
                if raw {
                    hf["logit"].as_f64().unwrap()
                } else {
                    hf["pipeline"][0]["score"].as_f64().unwrap()
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
        checked += 1;
    }
    assert!(checked > 0, "no cross-encoder rows");
    // A classifier with several labels is not a cross-encoder.
    if let Some(nli) = task_rows("zero-shot-classification").keys().next() {
        let (ok, _, stderr) = wgformer(
            &[
                "rerank",
                "--model",
                tiny2(nli).to_str().unwrap(),
                "--query",
                "q",
                "doc",
            ],
            None,
        );
        assert!(!ok && stderr.contains("one label"), "{stderr}");
    }
}

/// `wgformer info` on every model with rows: the head its task needs, described.
#[test]
fn info_names_token_classification_and_masked_lm_heads() {
    for (name, rows) in rows_by_model() {
        let (head, needle) = match rows[0]["task"].as_str().unwrap() {
            "token-classification" => ("TokenClassification", "on every token ("),
            "fill-mask" => ("MaskedLm", "vocabulary logits"),
            _ => ("SequenceClassification", " on the "),
        };
        let dir = tiny2(&name);
        let (ok, stdout, stderr) =
            wgformer(&["info", "--model", dir.to_str().unwrap(), "--json"], None);
        assert!(ok, "{name}: {stderr}");
        let v: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["head"], head, "{name}");
        let layers = v["head_layers"].as_str().unwrap();
        assert!(layers.contains(needle), "{name}: {layers}");
        if head == "SequenceClassification" {
            let cfg: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                    .unwrap();
            let pooled = match cfg["classifier_pooling"].as_str() {
                Some("mean") => "on the mean of the tokens",
                _ => "on the first token",
            };
            assert!(layers.contains(pooled), "{name}: {layers}");
        }
        if head == "TokenClassification" {
            let (_, text, _) = wgformer(&["info", "--model", dir.to_str().unwrap()], None);
            assert!(text.contains("labels        O, "), "{name}: {text}");
        }
    }
}

/// `wgformer classify --top-k all --json` on every classification model's rows (single texts
/// and pairs in one `--input` file): transformers' labels in order, scores within 1e-4.
#[test]
fn classify_cli_matches_transformers() {
    let mut checked = 0;
    for (model, rows) in task_rows("text-classification") {
        // Cross-encoders are checked through `rerank` above.
        if rows.iter().any(|r| r["hf"]["logit"].is_number()) {
            continue;
        }
        let mut text = String::new();
        for r in &rows {
            let line = serde_json::json!({
                "text": r["inputs"]["text"],
                "text_pair": r["inputs"]["text_pair"],
            });
            text.push_str(&format!("{line}\n"));
        }
        let input = TempFile::new("classify", &text);
        let dir = tiny2(&model);
        let (ok, stdout, stderr) = wgformer(
            &[
                "classify",
                "--model",
                dir.to_str().unwrap(),
                "--top-k",
                "all",
                "--json",
                "--input",
                input.path(),
            ],
            None,
        );
        assert!(ok, "{model}: {stderr}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), rows.len(), "{model}: {stdout}");
        for (got, r) in lines.iter().zip(&rows) {
            // One string answers as [[scores]] in transformers 5, a pair as [scores].
            let want = match &r["hf"] {
                Value::Array(a) if a.len() == 1 && a[0].is_array() => a[0].clone(),
                w => w.clone(),
            };
            assert!(
                same(got, &want, true),
                "{model} {}:\n  got  {got}\n  want {want}",
                r["inputs"]
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no classification rows checked");
    eprintln!("classify CLI: {checked} rows checked");
}

/// `classify --pair P --input FILE`: P is the second text of every line (it was ignored);
/// transformers' scores for those pairs, and a line with a pair of its own refused in place.
#[test]
fn classify_cli_pairs_every_input_line_with_pair() {
    let mut checked = 0;
    for (model, rows) in task_rows("text-classification") {
        if rows.iter().any(|r| r["hf"]["logit"].is_number()) {
            continue;
        }
        let mut by_pair = BTreeMap::<&str, Vec<&Value>>::new();
        for r in &rows {
            if let Some(p) = r["inputs"]["text_pair"].as_str() {
                by_pair.entry(p).or_default().push(r);
            }
        }
        let Some((pair, group)) = by_pair.into_iter().max_by_key(|(_, g)| g.len()) else {
            continue;
        };
        let mut text = String::new();
        for r in &group {
            text.push_str(&format!(
                "{}\n",
                serde_json::json!({"text": r["inputs"]["text"]})
            ));
        }
        text.push_str("{\"text\": \"a\", \"text_pair\": \"b\"}\n");
        let input = TempFile::new("classify-pair", &text);
        let dir = tiny2(&model);
        let (_, stdout, stderr) = wgformer(
            &[
                "classify",
                "--model",
                dir.to_str().unwrap(),
                "--top-k",
                "all",
                "--json",
                "--pair",
                pair,
                "--input",
                input.path(),
            ],
            None,
        );
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), group.len() + 1, "{model}: {stdout}{stderr}");
        for (got, r) in lines.iter().zip(&group) {
            assert!(
                same(got, &r["hf"], true),
                "{model} {}:\n  got  {got}\n  want {}",
                r["inputs"],
                r["hf"]
            );
            checked += 1;
        }
        let last = &lines[group.len()];
        assert!(
            last["error"].as_str().is_some_and(|e| e.contains("--pair")),
            "{model}: {last}"
        );
    }
    assert!(checked > 0, "no pair rows checked");
}

/// `classify` and `embed` with unreadable lines before, between and after good ones: one
/// `--json` line per input line, each unreadable one as `{"line", "error"}` in its place.
#[test]
fn classify_and_embed_keep_bad_lines_in_place() {
    let text = "{\"txt\": 0}\ngood text one\n{\"txt\": 1}\nanother good one\n{\"txt\": 2}\n";
    let input = TempFile::new("bad-lines", text);
    let dir = common::shared().join("fixtures/tiny/tiny-bert");
    for cmd in ["classify", "embed"] {
        let (ok, stdout, stderr) = wgformer(
            &[
                cmd,
                "--model",
                dir.to_str().unwrap(),
                "--json",
                "--input",
                input.path(),
            ],
            None,
        );
        assert!(ok, "{cmd}: {stderr}");
        let lines: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5, "{cmd}: {stdout}");
        for (k, v) in lines.iter().enumerate() {
            if k % 2 == 0 {
                assert_eq!(v["line"], k + 1, "{cmd}: {v}");
                assert!(v["error"].is_string(), "{cmd}: {v}");
            } else {
                assert!(v.is_array(), "{cmd} line {}: {v}", k + 1);
            }
        }
    }
}
