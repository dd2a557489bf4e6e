//! `wgformer serve` over HTTP, one server per task model: every route's answers against the
//! Hugging Face goldens (small slices: lavapipe is slow), and the error answers (status, JSON
//! `{"error", "error_type"}`) of malformed requests and limits, after which the server still
//! serves.

mod common;
mod serve_util;

use base64::Engine;
use common::{jsonl, minilm_f32, models, shared};
use serde_json::{json, Value};
use serve_util::*;
use std::collections::BTreeMap;

const TOL: f32 = 1e-4;

#[test]
fn embeddings_tokenize_info_and_errors() {
    let rows = jsonl("embeddings.hf.jsonl");
    let srv = Server::start(
        &minilm_f32(),
        &["--max-client-batch-size", "16", "--payload-limit", "100000"],
    );
    let texts: Vec<&str> = rows
        .iter()
        .map(|r| r["sentence"].as_str().unwrap())
        .collect();
    let want: Vec<Vec<f32>> = rows.iter().map(|r| floats(&r["embedding"])).collect();

    // /info and /health
    let info = srv.get("/info");
    assert_eq!(info.status, 200);
    let i = &info.body;
    assert_eq!(i["task"], "feature-extraction");
    assert_eq!(i["architecture"], "BertModel");
    assert_eq!(i["max_input_length"], 256);
    assert_eq!(i["model_type"]["embedding"]["pooling"], "mean");
    assert_eq!(i["max_client_batch_size"], 16);
    assert_eq!(i["max_batch_tokens"], 16384);
    assert!(i["adapter"].as_str().unwrap().len() > 3, "{i}");
    assert_eq!(srv.get("/health").status, 200);

    // /embed: a batch, as the goldens (the empty string and non-ASCII text included)
    let r = srv.post("/embed", &json!({ "inputs": texts }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    let got = r.body.as_array().unwrap();
    assert_eq!(got.len(), rows.len());
    for ((g, w), t) in got.iter().zip(&want).zip(&texts) {
        let d = max_abs(&floats(g), w);
        assert!(d < TOL, "/embed {t:?}: max |diff| {d:e}");
    }
    // One string: still a list of vectors.
    let r = srv.post("/embed", &json!({ "inputs": texts[1] }));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert!(max_abs(&floats(&r.body[0]), &want[1]) < TOL);
    // normalize: false gives the raw mean (not unit length, same direction); dimensions keeps
    // the first values, re-normalised.
    let raw = floats(
        &srv.post("/embed", &json!({"inputs": texts[0], "normalize": false}))
            .body[0],
    );
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() > 1e-2, "raw mean has norm {norm}");
    let unit: Vec<f32> = raw.iter().map(|x| x / norm).collect();
    assert!(max_abs(&unit, &want[0]) < TOL);
    let short = floats(
        &srv.post("/embed", &json!({"inputs": texts[0], "dimensions": 64}))
            .body[0],
    );
    assert_eq!(short.len(), 64);
    assert!((short.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    // Texts are stripped as sentence-transformers strips them, on both embedding routes.
    let padded = format!(" \t {}\n ", texts[0]);
    let got = floats(&srv.post("/embed", &json!({ "inputs": padded })).body[0]);
    assert!(max_abs(&got, &want[0]) < TOL);
    let r = srv.post("/v1/embeddings", &json!({"input": padded, "model": "m"}));
    assert!(max_abs(&floats(&r.body["data"][0]["embedding"]), &want[0]) < TOL);

    // /v1/embeddings (OpenAI): floats, base64 (what the official client asks for), token ids.
    let r = srv.post(
        "/v1/embeddings",
        &json!({"input": &texts[..3], "model": "whatever"}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["object"], "list");
    assert_eq!(
        r.body["model"].as_str(),
        Some(minilm_f32().to_str().unwrap())
    );
    let tokens: usize = rows[..3]
        .iter()
        .map(|r| r["input_ids"].as_array().unwrap().len())
        .sum();
    assert_eq!(r.body["usage"]["prompt_tokens"], tokens);
    assert_eq!(r.body["usage"]["total_tokens"], tokens);
    for (k, d) in r.body["data"].as_array().unwrap().iter().enumerate() {
        assert_eq!(d["object"], "embedding");
        assert_eq!(d["index"], k);
        assert!(max_abs(&floats(&d["embedding"]), &want[k]) < TOL);
    }
    let r = srv.post(
        "/v1/embeddings",
        &json!({"input": texts[2], "model": "m", "encoding_format": "base64"}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r.body["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let v: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert!(max_abs(&v, &want[2]) < TOL);
    let ids = &rows[4]["input_ids"];
    let r = srv.post("/v1/embeddings", &json!({"input": [ids], "model": "m"}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(max_abs(&floats(&r.body["data"][0]["embedding"]), &want[4]) < TOL);
    let bad = srv.post(
        "/v1/embeddings",
        &json!({"input": [[5, 99999999]], "model": "m"}),
    );
    let invalid = "invalid_request_error";
    assert!(assert_openai_error(&bad, 400, invalid, "validation").contains("vocabulary"));
    let bad = srv.post(
        "/v1/embeddings",
        &json!({"input": "x", "encoding_format": "int8"}),
    );
    assert_openai_error(&bad, 400, invalid, "validation");
    // Errors before the route's own checks are in OpenAI's shape too.
    let bad = srv.post_bytes("/v1/embeddings", b"{not json");
    assert_openai_error(&bad, 400, invalid, "malformed");
    let bad = srv.post("/v1/embeddings", &json!({"input": []}));
    assert_openai_error(&bad, 400, invalid, "empty");

    // /tokenize: the goldens' ids; byte offsets into the text; special tokens flagged.
    let r = srv.post("/tokenize", &json!({"inputs": [texts[0], texts[5]]}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    for (k, toks) in [0, 5].iter().zip(r.body.as_array().unwrap()) {
        let toks = toks.as_array().unwrap();
        let got: Vec<u64> = toks.iter().map(|t| t["id"].as_u64().unwrap()).collect();
        let want: Vec<u64> = rows[*k]["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect();
        assert_eq!(got, want, "{:?}", texts[*k]);
        assert_eq!(toks[0]["special"], true);
        assert_eq!(toks[0]["start"], Value::Null);
        assert_eq!(toks[1]["special"], false);
    }
    let r = srv.post(
        "/tokenize",
        &json!({"inputs": "A man", "add_special_tokens": false}),
    );
    assert_eq!(
        r.body,
        json!([[{"id": 1037, "text": "A", "special": false, "start": 0, "stop": 1},
                {"id": 2158, "text": "man", "special": false, "start": 2, "stop": 5}]])
    );

    // Too long: 413 naming the limit, unless truncated.
    let long = "word ".repeat(300);
    let msg = assert_error(
        &srv.post("/embed", &json!({ "inputs": long })),
        413,
        "validation",
    );
    assert!(msg.contains("256"), "{msg}");
    let r = srv.post("/embed", &json!({"inputs": long, "truncate": true}));
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body[0].as_array().unwrap().len(), 384);
    assert_openai_error(
        &srv.post("/v1/embeddings", &json!({"input": long, "model": "m"})),
        400,
        "invalid_request_error",
        "validation",
    );

    // Limits: client batch size, payload.
    let many = vec!["a"; 17];
    let msg = assert_error(
        &srv.post("/embed", &json!({ "inputs": many })),
        413,
        "validation",
    );
    assert!(msg.contains("16"), "{msg}");
    let big = json!({ "inputs": "x".repeat(150_000) });
    let msg = assert_error(&srv.post("/embed", &big), 413, "validation");
    assert!(msg.contains("100000"), "{msg}");

    // Malformed requests: JSON errors, never a crash.
    let cases: Vec<(&[u8], u16, &str)> = vec![
        (b"{not json", 400, "malformed"),
        (b"", 400, "empty"),
        (b"{\"inputs\": 5}", 422, "validation"),
        (b"{\"inputs\": [\"a\", null]}", 422, "validation"),
        (b"{\"input\": \"x\"}", 422, "malformed"),
        (b"{\"inputs\": []}", 400, "empty"),
        (
            b"{\"inputs\": \"x\", \"normalize\": \"yes\"}",
            422,
            "malformed",
        ),
        (b"{\"inputs\": \"\xff\xfe bad utf-8\"}", 400, "malformed"),
        (
            b"{\"inputs\": \"\\ud800 lone surrogate\"}",
            400,
            "malformed",
        ),
        (b"[1, 2, 3]", 422, "malformed"),
        (
            b"{\"inputs\": \"x\", \"truncation_direction\": \"left\"}",
            422,
            "validation",
        ),
        (b"{\"inputs\": \"x\", \"dimensions\": 0}", 422, "validation"),
    ];
    for (body, status, kind) in cases {
        let r = srv.post_bytes("/embed", body);
        assert_eq!(
            (r.status, r.body["error_type"].as_str()),
            (status, Some(kind)),
            "{:?}: {:?}",
            String::from_utf8_lossy(body),
            r.body
        );
    }
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_error(
        &srv.post_bytes("/embed", deep.as_bytes()),
        413,
        "validation",
    );
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    assert_error(&srv.post_bytes("/embed", deep.as_bytes()), 400, "malformed");

    // Routes of other heads, unknown routes, wrong methods.
    for route in ["/predict", "/rerank", "/qa"] {
        let msg = assert_error(
            &srv.post(route, &json!({"inputs": "x"})),
            400,
            "unsupported",
        );
        assert!(msg.contains("/embed"), "{msg}");
    }
    assert_error(&srv.post("/nope", &json!({})), 404, "validation");
    assert_error(&srv.get("/embed"), 405, "validation");
    assert_error(&srv.request("DELETE", "/info"), 405, "validation");

    // Still serving, and the metrics counted it all.
    assert_eq!(srv.get("/health").status, 200);
    let r = srv.post("/embed", &json!({ "inputs": texts[3] }));
    assert!(max_abs(&floats(&r.body[0]), &want[3]) < TOL);
    assert!(srv.metric("wgformer_requests_total{route=\"/embed\",status=\"200\"}") >= 6.0);
    assert!(
        srv.metric("wgformer_request_errors_total{route=\"/embed\",error_type=\"malformed\"}")
            >= 6.0
    );
    assert!(srv.metric("wgformer_batch_size_count") >= 5.0);
    assert!(srv.metric("wgformer_input_tokens_total") > 0.0);
    let m = srv.get("/metrics").body;
    let m = m.as_str().unwrap();
    for name in [
        "wgformer_queue_size",
        "wgformer_requests_in_flight",
        "wgformer_batch_tokens_bucket",
        "wgformer_request_duration_seconds_bucket",
        "wgformer_queue_duration_seconds_bucket",
        "wgformer_inference_duration_seconds_bucket",
    ] {
        assert!(m.contains(name), "/metrics lacks {name}:\n{m}");
    }
}

#[test]
fn predict_matches_sst2_goldens() {
    let rows: Vec<Value> = jsonl("sst2-visible.hf.jsonl")
        .into_iter()
        .take(12)
        .collect();
    let srv = Server::start(&models().join("minilm-sst2"), &[]);
    let sentences: Vec<&str> = rows
        .iter()
        .map(|r| r["sentence"].as_str().unwrap())
        .collect();
    let check = |got: &Value, want: &Value, what: &str| {
        let (got, want) = (got.as_array().unwrap(), want.as_array().unwrap());
        assert_eq!(got.len(), want.len(), "{what}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["label"], w["label"], "{what}");
            let d = (g["score"].as_f64().unwrap() - w["score"].as_f64().unwrap()).abs();
            assert!(d < TOL as f64, "{what}: {g} vs {w}");
        }
    };
    let r = srv.post("/predict", &json!({ "inputs": sentences }));
    assert_eq!(r.status, 200, "{:?}", r.body);
    for ((g, row), s) in r.body.as_array().unwrap().iter().zip(&rows).zip(&sentences) {
        check(g, &row["hf"], s);
    }
    // One string: one flat list of labels.
    let r = srv.post("/predict", &json!({ "inputs": sentences[3] }));
    check(&r.body, &rows[3]["hf"], sentences[3]);
    // raw_scores: the logits, best first.
    let r = srv.post(
        "/predict",
        &json!({"inputs": [sentences[0]], "raw_scores": true}),
    );
    let logits = floats(&rows[0]["logits"]);
    for l in r.body[0].as_array().unwrap() {
        let k = if l["label"] == "NEGATIVE" { 0 } else { 1 };
        assert!((l["score"].as_f64().unwrap() as f32 - logits[k]).abs() < TOL);
    }
    // Pairs are accepted ([[text, text_pair]]), a malformed pair is not.
    let r = srv.post(
        "/predict",
        &json!({"inputs": [["a good film", "it is"], "fine"]}),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_error(
        &srv.post("/predict", &json!({"inputs": [["a", "b", "c"]]})),
        422,
        "validation",
    );
    let info = srv.get("/info").body;
    assert_eq!(info["task"], "text-classification");
    assert_eq!(
        info["model_type"]["classifier"]["id2label"]["1"],
        "POSITIVE"
    );
    // Two labels: not a reranker.
    let msg = assert_error(
        &srv.post("/rerank", &json!({"query": "q", "texts": ["a"]})),
        400,
        "unsupported",
    );
    assert!(msg.contains("/predict"), "{msg}");
    assert_error(
        &srv.post("/embed", &json!({"inputs": "x"})),
        400,
        "unsupported",
    );
}

#[test]
fn qa_matches_squad_goldens() {
    let all = jsonl("squad-visible.hf.jsonl");
    // Four questions from across the file (about a second each on lavapipe).
    let rows: Vec<Value> = all.iter().step_by(all.len() / 4).take(4).cloned().collect();
    let srv = Server::start(&models().join("distilminilm-squad"), &[]);
    // Asked at once, so they share batches.
    let answers: Vec<Value> = std::thread::scope(|sc| {
        let hs: Vec<_> = rows
            .iter()
            .map(|r| {
                let srv = &srv;
                sc.spawn(move || {
                    srv.post(
                        "/qa",
                        &json!({"question": r["question"], "context": r["context"]}),
                    )
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                let r = h.join().unwrap();
                assert_eq!(r.status, 200, "{:?}", r.body);
                r.body
            })
            .collect()
    });
    for (got, r) in answers.iter().zip(&rows) {
        assert_eq!(got["answer"], r["answer"], "{}", r["question"]);
        assert_eq!(got["start"], r["start"]);
        assert_eq!(got["end"], r["end"]);
        let (g, w) = (got["score"].as_f64().unwrap(), r["score"].as_f64().unwrap());
        assert!(
            (g - w).abs() / w < 1e-3,
            "{}: score {g} vs {w}",
            r["question"]
        );
    }
    // top_k 3: a list, best first, led by the top-1 answer.
    let r = srv.post(
        "/qa",
        &json!({"question": rows[0]["question"], "context": rows[0]["context"], "top_k": 3}),
    );
    let list = r.body.as_array().unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["answer"], rows[0]["answer"]);
    // The pipeline's own refusals, as 422.
    let ctx = "Paris is the capital of France.";
    for (body, status, kind) in [
        (json!({"question": "", "context": ctx}), 422, "validation"),
        (
            json!({"question": "Which?", "context": ""}),
            422,
            "validation",
        ),
        (
            json!({"question": "Which?", "context": ctx, "top_k": 0}),
            422,
            "validation",
        ),
        (
            json!({"question": "Which?", "context": ctx, "doc_stride": 4000}),
            422,
            "validation",
        ),
        (
            json!({"question": "Which?", "context": ctx, "top_k": -1}),
            422,
            "malformed",
        ),
        (json!({"question": "Which?"}), 422, "malformed"),
        // Thousands of windows (a stride close to the window): refused before any is made.
        (
            json!({"question": "Which?", "context": "word ".repeat(20_000), "doc_stride": 370}),
            413,
            "validation",
        ),
    ] {
        let r = srv.post("/qa", &body);
        assert_eq!(
            (r.status, r.body["error_type"].as_str()),
            (status, Some(kind)),
            "{body}: {:?}",
            r.body
        );
    }
    let r = srv.post(
        "/qa",
        &json!({"question": "What is the capital?", "context": ctx}),
    );
    assert_eq!(r.body["answer"], "Paris", "{:?}", r.body);
    assert_eq!(srv.get("/info").body["task"], "question-answering");
    assert_error(
        &srv.post("/predict", &json!({"inputs": "x"})),
        400,
        "unsupported",
    );
}

/// Cross-encoders: `/rerank` orders the texts by the pipeline's pair scores (sigmoid of the one
/// logit; the logit itself with raw_scores), `/predict` on pairs gives the pipeline's output.
#[test]
fn rerank_matches_cross_encoder_pair_scores() {
    let tasks = jsonl("tiny2/tiny-tasks.hf.jsonl");
    for model in ["tiny-bert-cross", "tiny-xlm-roberta-cross"] {
        // The first model runs with --auto-truncate (over-long inputs are cut to its 64
        // positions), the second without (they get 413).
        let auto = model == "tiny-bert-cross";
        let flags: &[&str] = if auto { &["--auto-truncate"] } else { &[] };
        let srv = Server::start(&shared().join("fixtures/tiny2").join(model), flags);
        assert_eq!(
            srv.get("/info").body["model_type"]["reranker"]["id2label"]["0"],
            "LABEL_0"
        );
        // Query → [(passage, score, logit, pipeline output)].
        let mut by_query: BTreeMap<String, Vec<(String, f64, f64, Value)>> = BTreeMap::new();
        for r in tasks.iter().filter(|r| r["model"] == model) {
            by_query
                .entry(r["inputs"]["text"].as_str().unwrap().into())
                .or_default()
                .push((
                    r["inputs"]["text_pair"].as_str().unwrap().into(),
                    r["hf"]["pipeline"][0]["score"].as_f64().unwrap(),
                    r["hf"]["logit"].as_f64().unwrap(),
                    r["hf"]["pipeline"].clone(),
                ));
        }
        assert!(by_query.len() >= 2, "{model}: {by_query:?}");
        for (query, passages) in &by_query {
            let texts: Vec<&str> = passages.iter().map(|p| p.0.as_str()).collect();
            let r = srv.post(
                "/rerank",
                &json!({"query": query, "texts": texts, "return_text": true}),
            );
            assert_eq!(r.status, 200, "{model}: {:?}", r.body);
            let ranks = r.body.as_array().unwrap();
            assert_eq!(ranks.len(), texts.len());
            let mut want: Vec<usize> = (0..texts.len()).collect();
            want.sort_by(|&a, &b| passages[b].1.total_cmp(&passages[a].1));
            let order: Vec<usize> = ranks
                .iter()
                .map(|x| x["index"].as_u64().unwrap() as usize)
                .collect();
            assert_eq!(order, want, "{model} {query:?}: order");
            for x in ranks {
                let i = x["index"].as_u64().unwrap() as usize;
                let d = (x["score"].as_f64().unwrap() - passages[i].1).abs();
                assert!(d < 1e-5, "{model} {query:?} / {:?}: {x}", texts[i]);
                assert_eq!(x["text"], texts[i]);
            }
            let raw = srv.post(
                "/rerank",
                &json!({"query": query, "texts": texts, "raw_scores": true}),
            );
            for x in raw.body.as_array().unwrap() {
                let i = x["index"].as_u64().unwrap() as usize;
                let d = (x["score"].as_f64().unwrap() - passages[i].2).abs();
                assert!(d < 1e-5, "{model} raw {x} vs {}", passages[i].2);
                assert!(x.get("text").is_none());
            }
            // /predict on the same pairs: the pipeline's output.
            let pairs: Vec<Value> = texts.iter().map(|t| json!([query, t])).collect();
            let p = srv.post("/predict", &json!({ "inputs": pairs }));
            for (g, (_, _, _, w)) in p.body.as_array().unwrap().iter().zip(passages) {
                assert_eq!(g[0]["label"], w[0]["label"]);
                let d = (g[0]["score"].as_f64().unwrap() - w[0]["score"].as_f64().unwrap()).abs();
                assert!(d < 1e-5, "{model} /predict {g} vs {w}");
            }
        }
        let long = "radium ".repeat(100);
        let r = srv.post("/rerank", &json!({"query": "q", "texts": ["short", long]}));
        let r_off = srv.post(
            "/rerank",
            &json!({"query": "q", "texts": ["short", long], "truncate": false}),
        );
        let r_on = srv.post(
            "/rerank",
            &json!({"query": "q", "texts": ["short", long], "truncate": true}),
        );
        assert_eq!(r_on.status, 200, "{:?}", r_on.body);
        let msg = assert_error(&r_off, 413, "validation");
        assert!(msg.contains("input 1") && msg.contains("at most"), "{msg}");
        if auto {
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert_eq!(r.body, r_on.body);
        } else {
            assert_error(&r, 413, "validation");
        }
        assert_error(
            &srv.post("/rerank", &json!({"query": "q", "texts": []})),
            400,
            "empty",
        );
        assert_error(
            &srv.post("/rerank", &json!({"query": "q"})),
            422,
            "malformed",
        );
    }
}

/// A byte-level BPE embedder with `do_lower_case`: `/embed` and `/v1/embeddings` strip and
/// lower-case texts as sentence-transformers does (and as `wgformer embed` does), so a padded,
/// cased text embeds exactly as its stripped, lower-cased form. (BPE gives a leading space and
/// capitals tokens of their own, so without that the vectors differ.)
#[test]
fn embedding_routes_prepare_texts_as_sentence_transformers() {
    let dir = std::env::temp_dir().join(format!("wgformer-serve-st-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = shared().join("fixtures/tiny/tiny-roberta");
    for entry in std::fs::read_dir(&src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    // The base encoder of the tiny classifier: served as an embedder.
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    cfg["architectures"] = json!(["RobertaModel"]);
    std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 64, "do_lower_case": true}"#,
    )
    .unwrap();
    let srv = Server::start(&dir, &[]);
    let embed = |t: &str| floats(&srv.post("/embed", &json!({ "inputs": t })).body[0]);
    let want = embed("hello world");
    assert!(!want.is_empty());
    for t in ["  Hello World \n", "HELLO WORLD", "\thello world"] {
        assert_eq!(embed(t), want, "/embed {t:?}");
        let r = srv.post("/v1/embeddings", &json!({"input": t, "model": "m"}));
        assert_eq!(
            floats(&r.body["data"][0]["embedding"]),
            want,
            "/v1/embeddings {t:?}"
        );
    }
    assert_ne!(embed("hello"), want, "the texts really reach the model");
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
