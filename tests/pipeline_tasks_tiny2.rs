//! transformers 5.24's token-classification, fill-mask, zero-shot-classification and
//! cross-encoder text-classification pipelines against `tiny2/tiny-tasks.hf.jsonl`: every row of
//! every model wgformer runs gives the same entities, words, offsets, tokens and labels, with
//! scores within 1e-4 (order may differ only between scores within 1e-4 of each other); rows
//! transformers refuses (`{"error": ...}`) are refused. Each model's rows run batched (padded
//! together) and one at a time.

mod common;
mod tiny2_util;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use tiny2_util::*;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::fill_mask::{Fill, FillOutput, DEFAULT_TOP_K};
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::token_classification::{Aggregation, Entity};
use wgformer::pipelines::zero_shot::{ZeroShotResult, DEFAULT_TEMPLATE};
use wgformer::pipelines::{Classifier, FillMasker, Reranker, TokenClassifier, ZeroShotClassifier};

const TOL: f64 = 1e-4;

fn is_error(r: &Value) -> bool {
    r["hf"].get("error").is_some()
}

fn close(a: f64, b: &Value) -> bool {
    (a - b.as_f64().unwrap()).abs() < TOL
}

fn check_entities(what: &str, got: &[Entity], want: &Value, failures: &mut Vec<String>) {
    let want = want.as_array().unwrap();
    let got_json: Vec<Value> = got
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    let same = got.len() == want.len()
        && got_json.iter().zip(want).all(|(g, w)| {
            let keys_g: Vec<&String> = g.as_object().unwrap().keys().collect();
            let keys_w: Vec<&String> = w.as_object().unwrap().keys().collect();
            keys_g.len() == keys_w.len()
                && w.as_object().unwrap().iter().all(|(k, v)| {
                    if k == "score" {
                        close(g[k].as_f64().unwrap(), v)
                    } else {
                        g.get(k) == Some(v)
                    }
                })
        });
    if !same {
        failures.push(format!(
            "{what}:\n  got  {}\n  want {}",
            serde_json::to_string(&got_json).unwrap(),
            serde_json::to_string(want).unwrap()
        ));
    }
}

/// One mask's predictions: the same tokens, strings and sequences with scores within TOL; a
/// token may sit elsewhere only among near-equal scores (or drop out at the top-k boundary in
/// favour of a near-equal one).
fn fills_match(got: &[Fill], want: &[Value]) -> bool {
    if got.len() != want.len() {
        return false;
    }
    got.iter().enumerate().all(|(k, g)| {
        if !close(g.score, &want[k]["score"]) {
            return false;
        }
        match want.iter().find(|w| w["token"] == g.token) {
            Some(w) => {
                close(g.score, &w["score"])
                    && w["token_str"] == g.token_str.as_str()
                    && w["sequence"] == g.sequence.as_str()
            }
            None => close(g.score, &want[want.len() - 1]["score"]),
        }
    })
}

fn check_fill(what: &str, got: &FillOutput, want: &Value, failures: &mut Vec<String>) {
    let ok = match got {
        FillOutput::Single(g) => want
            .as_array()
            .is_some_and(|w| w.first().is_none_or(Value::is_object) && fills_match(g, w)),
        FillOutput::Multi(m) => want.as_array().is_some_and(|w| {
            w.len() == m.len()
                && m.iter()
                    .zip(w)
                    .all(|(g, w)| w.as_array().is_some_and(|w| fills_match(g, w)))
        }),
    };
    if !ok {
        failures.push(format!(
            "{what}:\n  got  {}\n  want {}",
            serde_json::to_string(got).unwrap(),
            want
        ));
    }
}

fn check_zero_shot(what: &str, got: &ZeroShotResult, want: &Value, failures: &mut Vec<String>) {
    let wl: Vec<&str> = want["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let ws = want["scores"].as_array().unwrap();
    let score_of = |l: &str| {
        ws[wl.iter().position(|w| *w == l).unwrap()]
            .as_f64()
            .unwrap()
    };
    let ok = got.sequence == want["sequence"].as_str().unwrap()
        && got.labels.len() == wl.len()
        && got.scores.iter().zip(ws).all(|(g, w)| close(*g, w))
        && got
            .labels
            .iter()
            .zip(&got.scores)
            .all(|(l, s)| wl.contains(&l.as_str()) && (s - score_of(l)).abs() < TOL);
    if !ok {
        failures.push(format!(
            "{what}:\n  got  {}\n  want {want}",
            serde_json::to_string(got).unwrap()
        ));
    }
}

fn text_of(r: &Value) -> String {
    r["inputs"]["text"].as_str().unwrap().to_string()
}

/// A pipeline call on texts with a batch size.
type Run<'a, T> = &'a dyn Fn(&[String], usize) -> Vec<wgformer::Result<T>>;

/// Runs `f` on all texts together and on each alone: (how, results).
fn both<T>(texts: &[String], f: Run<T>) -> Vec<(&'static str, Vec<wgformer::Result<T>>)> {
    let batched = f(texts, 8);
    let alone = texts
        .iter()
        .map(|t| f(std::slice::from_ref(t), 1).pop().unwrap())
        .collect();
    vec![("batched", batched), ("alone", alone)]
}

fn token_classification(name: &str, rows: &[&Value], failures: &mut Vec<String>) -> usize {
    let m = TokenClassifier::load(&tiny2(name), &gpu()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut by_strategy = BTreeMap::<String, Vec<&Value>>::new();
    for r in rows {
        let s = r["args"]["aggregation_strategy"].as_str().unwrap_or("none");
        by_strategy.entry(s.to_string()).or_default().push(r);
    }
    let mut n = 0;
    for (strategy, rows) in by_strategy {
        let agg = Aggregation::parse(&strategy).unwrap();
        let texts: Vec<String> = rows.iter().map(|r| text_of(r)).collect();
        for (how, out) in both(&texts, &|t, b| m.classify(t, agg, b, &|_| {}).unwrap()) {
            for (r, got) in rows.iter().zip(out) {
                let what = format!("{name} {strategy} ({how}) {:?}", text_of(r));
                match (got, is_error(r)) {
                    (Ok(g), false) => check_entities(&what, &g, &r["hf"], failures),
                    (Err(_), true) => {}
                    (g, _) => failures.push(format!("{what}: got {g:?}, want {}", r["hf"])),
                }
                n += 1;
            }
        }
    }
    n
}

fn fill_mask(name: &str, rows: &[&Value], failures: &mut Vec<String>) -> usize {
    fill_mask_on(&gpu(), name, rows, failures)
}

fn fill_mask_on(
    gpu: &std::sync::Arc<wgformer::Gpu>,
    name: &str,
    rows: &[&Value],
    failures: &mut Vec<String>,
) -> usize {
    let m = FillMasker::load(&tiny2(name), gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    let split = m.model.notes().iter().any(|n| n.contains("row blocks"));
    if gpu.max_binding_bytes() < gpu.limits.max_storage_buffer_binding_size {
        assert!(
            split,
            "{name}: the word table was not split: {:?}",
            m.model.notes()
        );
    }
    let mut n = 0;
    // Rows with the same arguments run together.
    let mut by_args = BTreeMap::<String, Vec<&Value>>::new();
    for r in rows {
        by_args.entry(r["args"].to_string()).or_default().push(r);
    }
    for (args, rows) in by_args {
        let args: Value = serde_json::from_str(&args).unwrap();
        let top_k = args["top_k"].as_u64().map_or(DEFAULT_TOP_K, |k| k as usize);
        let targets: Option<Vec<String>> = args["targets"]
            .as_array()
            .map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect());
        let texts: Vec<String> = rows.iter().map(|r| text_of(r)).collect();
        for (how, out) in both(&texts, &|t, b| {
            m.fill(t, top_k, targets.as_deref(), b, &|_| {}).unwrap()
        }) {
            for (r, got) in rows.iter().zip(out) {
                let what = format!("{name} {args} ({how}) {:?}", text_of(r));
                match (got, is_error(r)) {
                    (Ok(g), false) => check_fill(&what, &g, &r["hf"], failures),
                    (Err(e), true) => {
                        // The same refusal as transformers' PipelineException.
                        if !e.to_string().contains("No mask_token") {
                            failures.push(format!("{what}: refused with {e}"));
                        }
                    }
                    (g, _) => failures.push(format!("{what}: got {g:?}, want {}", r["hf"])),
                }
                n += 1;
            }
        }
    }
    n
}

fn zero_shot(name: &str, rows: &[&Value], failures: &mut Vec<String>) -> usize {
    let m =
        ZeroShotClassifier::load(&tiny2(name), &gpu()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(m.entailment_found, "{name}: no entailment label");
    let mut n = 0;
    for r in rows {
        let labels: Vec<String> = r["inputs"]["candidate_labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let multi = r["args"]["multi_label"].as_bool().unwrap_or(false);
        let template = r["args"]["hypothesis_template"]
            .as_str()
            .unwrap_or(DEFAULT_TEMPLATE);
        let text = text_of(r);
        // The text alone, and next to another text so its pairs are batched with others'.
        let other = "A second text to batch with.".to_string();
        let alone = m
            .classify(
                std::slice::from_ref(&text),
                &labels,
                template,
                multi,
                1,
                &|_| {},
            )
            .unwrap()
            .pop()
            .unwrap();
        let batched = m
            .classify(&[other, text.clone()], &labels, template, multi, 8, &|_| {})
            .unwrap()
            .pop()
            .unwrap();
        for (how, got) in [("alone", alone), ("batched", batched)] {
            let what = format!("{name} {} ({how}) {text:?}", r["args"]);
            match (got, is_error(r)) {
                (Ok(g), false) => check_zero_shot(&what, &g, &r["hf"], failures),
                (Err(_), true) => {}
                (g, _) => failures.push(format!("{what}: got {g:?}, want {}", r["hf"])),
            }
            n += 1;
        }
    }
    n
}

/// Text-classification rows (the cross-encoders': `hf` holds the pipeline output and the raw
/// logit): the pipeline's labels and scores, and for one-label models the reranker over each
/// query's documents, with the pipeline's score and with the raw logit.
fn text_classification(name: &str, rows: &[&Value], failures: &mut Vec<String>) -> usize {
    let dir = tiny2(name);
    let clf = Classifier::load(&dir, &gpu(), None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let inputs: Vec<TextInput> = rows
        .iter()
        .map(|r| TextInput {
            text: text_of(r),
            text_pair: r["inputs"]["text_pair"].as_str().map(str::to_string),
        })
        .collect();
    // transformers 5 answers one string with `top_k=None` as a list holding one list of
    // scores, and a `{"text", "text_pair"}` dict as the list itself.
    let pipeline_of = |r: &Value| -> Vec<Value> {
        let hf = r["hf"].get("pipeline").unwrap_or(&r["hf"]);
        match hf {
            Value::Array(a) if a.len() == 1 && a[0].is_array() => a[0].as_array().unwrap().clone(),
            Value::Array(a) => a.clone(),
            one => vec![one.clone()],
        }
    };
    let mut n = 0;
    let mut by_top_k = BTreeMap::<String, Vec<usize>>::new();
    for (i, r) in rows.iter().enumerate() {
        by_top_k
            .entry(r["args"]["top_k"].to_string())
            .or_default()
            .push(i);
    }
    for (top_k, idx) in by_top_k {
        let k = match serde_json::from_str::<Value>(&top_k).unwrap() {
            Value::Null if rows[idx[0]]["args"].get("top_k").is_some() => TopK::All,
            Value::Number(k) => TopK::N(k.as_u64().unwrap() as usize),
            _ => TopK::One,
        };
        let batch: Vec<TextInput> = idx.iter().map(|&i| inputs[i].clone()).collect();
        let got = clf.classify(&batch, k, 8, &|_| {}).unwrap();
        for (&i, g) in idx.iter().zip(got) {
            let want = pipeline_of(rows[i]);
            let g = g.unwrap();
            if g.len() != want.len()
                || g.iter().zip(&want).any(|(g, w)| {
                    g.label != w["label"].as_str().unwrap() || !close(g.score, &w["score"])
                })
            {
                failures.push(format!(
                    "{name} {:?}: got {g:?}, want {want:?}",
                    rows[i]["inputs"]
                ));
            }
            n += 1;
        }
    }
    if clf.model.config.num_labels() != 1 || rows.iter().any(|r| r["hf"]["logit"].is_null()) {
        return n;
    }
    // Reranking: per query, its documents by score, with the pipeline's score or the logit.
    let rr = Reranker::load(&dir, &gpu()).unwrap();
    let mut queries = BTreeMap::<String, Vec<&Value>>::new();
    for r in rows {
        if r["inputs"]["text_pair"].is_string() {
            queries.entry(text_of(r)).or_default().push(r);
        }
    }
    for (query, rows) in queries {
        let docs: Vec<String> = rows
            .iter()
            .map(|r| r["inputs"]["text_pair"].as_str().unwrap().to_string())
            .collect();
        for raw in [false, true] {
            let scores = rr.scores(&query, &docs, raw, 8, &|_| {}).unwrap();
            let ranks = Reranker::rank(&docs, &scores, true);
            assert_eq!(ranks.len(), docs.len());
            let want_of = |i: usize| {
                if raw {
                    rows[i]["hf"]["logit"].as_f64().unwrap()
                } else {
                    pipeline_of(rows[i])[0]["score"].as_f64().unwrap()
                }
            };
            for (k, rank) in ranks.iter().enumerate() {
                if (rank.score - want_of(rank.index)).abs() >= TOL
                    || rank.text.as_deref() != Some(docs[rank.index].as_str())
                {
                    failures.push(format!("{name} rerank {query:?}: {rank:?}"));
                }
                if k > 0 && want_of(rank.index) > want_of(ranks[k - 1].index) + TOL {
                    failures.push(format!("{name} rerank {query:?}: order {ranks:?}"));
                }
            }
            n += 1;
        }
    }
    n
}

#[test]
fn tiny2_task_pipelines_match_transformers() {
    let by_model = rows_by_model();
    let mut failures = vec![];
    let mut counts = BTreeMap::<&str, usize>::new();
    for (name, rows) in &by_model {
        let mut by_task = BTreeMap::<String, Vec<&Value>>::new();
        for r in rows {
            by_task
                .entry(r["task"].as_str().unwrap().to_string())
                .or_default()
                .push(r);
        }
        for (task, rows) in by_task {
            let n = match task.as_str() {
                "token-classification" => token_classification(name, &rows, &mut failures),
                "fill-mask" => fill_mask(name, &rows, &mut failures),
                "zero-shot-classification" => zero_shot(name, &rows, &mut failures),
                "text-classification" => text_classification(name, &rows, &mut failures),
                other => panic!("{name}: unknown task {other}"),
            };
            *counts
                .entry(match task.as_str() {
                    "token-classification" => "token-classification",
                    "fill-mask" => "fill-mask",
                    "zero-shot-classification" => "zero-shot-classification",
                    _ => "text-classification",
                })
                .or_default() += n;
        }
    }
    eprintln!(
        "tiny2 tasks: {counts:?} outputs checked, {} failures",
        failures.len()
    );
    assert_eq!(counts.len(), 4, "every task has rows: {counts:?}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The masked-LM models with their word table (and so the tied decoder) split over several
/// bindings: the planned binding limit is lowered below the table's 128,000 bytes, so the
/// embedding gathers and the decoder's matmuls run block by block, and the fill-mask answers
/// still match transformers'.
#[test]
fn fill_mask_with_a_split_word_table_matches_transformers() {
    let gpu = wgformer::gpu::open_test_gpu(wgformer::GpuOptions {
        max_binding_bytes: Some(120_000),
        ..Default::default()
    });
    let mut failures = vec![];
    let mut n = 0;
    for (name, rows) in task_rows("fill-mask") {
        let rows: Vec<&Value> = rows.iter().collect();
        n += fill_mask_on(&gpu, &name, &rows, &mut failures);
    }
    assert!(n > 0, "no fill-mask rows");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every model with supported rows loads as the kind its task needs.
#[test]
fn tiny2_models_load_with_the_heads_their_tasks_need() {
    use wgformer::models::config::HeadKind;
    let gpu = gpu();
    for (name, rows) in rows_by_model() {
        let model = wgformer::models::Model::load(&tiny2(&name), &gpu)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let want = match rows[0]["task"].as_str().unwrap() {
            "token-classification" => HeadKind::TokenClassification,
            "fill-mask" => HeadKind::MaskedLm,
            _ => HeadKind::SequenceClassification,
        };
        assert_eq!(model.config.head, want, "{name}");
        assert!(Path::new(&tiny2(&name)).join("tokenizer.json").is_file());
    }
}

/// Zero-shot finds the entailment logit as transformers' `entailment_id` does: walking
/// `config.label2id` in config.json's order for the first label starting with "entail". Here a
/// copy of tiny-bert-nli has only generic names in `id2label` (LABEL_0..2) and the real ones in
/// `label2id` (file order neutral, entailment, contradiction): entailment is id 0, contradiction
/// the last label, and the answers equal those of the unedited model. A template with two `{}`
/// fields is refused (Python's `"{} or {}".format(label)` raises IndexError).
#[test]
fn zero_shot_reads_label2id_in_order_and_refuses_two_field_templates() {
    let gpu = gpu();
    let src = tiny2("tiny-bert-nli");
    let dir = std::env::temp_dir().join(format!("wgformer-label2id-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let obj = cfg.as_object_mut().unwrap();
    obj.remove("label2id");
    obj.remove("id2label");
    let rest = serde_json::to_string(&cfg).unwrap();
    // Written by hand: serde_json would sort the keys, and the order is what is tested.
    let text = format!(
        r#"{{"id2label": {{"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}},
            "label2id": {{"neutral": 1, "entailment": 0, "contradiction": 2}}, {}"#,
        &rest[1..]
    );
    std::fs::write(dir.join("config.json"), text).unwrap();

    let edited = ZeroShotClassifier::load(&dir, &gpu).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        edited.entailment_found,
        "label2id names an entailment label"
    );
    assert_eq!((edited.entailment, edited.contradiction), (0, 2));
    let original = ZeroShotClassifier::load(&src, &gpu).unwrap();
    assert_eq!((original.entailment, original.contradiction), (0, 2));
    let texts = vec!["The match ended in a draw.".to_string()];
    let labels: Vec<String> = ["sports", "politics"].map(String::from).to_vec();
    for multi in [false, true] {
        let a = edited
            .classify(&texts, &labels, DEFAULT_TEMPLATE, multi, 4, &|_| {})
            .unwrap();
        let b = original
            .classify(&texts, &labels, DEFAULT_TEMPLATE, multi, 4, &|_| {})
            .unwrap();
        assert_eq!(
            a[0].as_ref().unwrap(),
            b[0].as_ref().unwrap(),
            "multi {multi}"
        );
    }

    let e = match original.classify(&texts, &labels, "{} or {}", false, 4, &|_| {}) {
        Err(e) => e.to_string(),
        Ok(rows) => match rows.into_iter().next().unwrap() {
            Err(e) => e.to_string(),
            Ok(r) => panic!("\"{{}} or {{}}\" accepted: {r:?}"),
        },
    };
    assert!(e.contains("more than one `{}`"), "{e}");
}
