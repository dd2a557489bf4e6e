//! `wgformer serve` under load: 64 clients at once get exactly the answers their inputs get
//! alone (none lost, none duplicated, batching changes nothing beyond 1e-5); the concurrency limit
//! answers 429; SIGTERM finishes the requests in flight and exits 0. Short texts keep it quick on
//! lavapipe.

mod common;
mod serve_util;

use common::minilm_f32;
use serde_json::json;
use serve_util::*;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const TEXTS: [&str; 16] = [
    "A man is eating food.",
    "The cat sleeps.",
    "Rain again today",
    "GPUs multiply matrices quickly.",
    "hello",
    "Two dogs play in the snow outside.",
    "Where is the station?",
    "Zürich liegt am See.",
    "a b c d e f g h",
    "The quick brown fox jumps over the lazy dog.",
    "stocks fell sharply",
    "I like tea.",
    "",
    "Tokyo is large",
    "Please call me back tomorrow morning.",
    "ok",
];

const CLIENTS: usize = 64;
const PER_CLIENT: usize = 4;

#[test]
fn many_clients_get_what_each_input_gets_alone() {
    let srv = Server::start(&minilm_f32(), &[]);
    // Each text alone (one request at a time: batches of one row).
    let alone: Vec<Vec<f32>> = TEXTS
        .iter()
        .map(|t| {
            let r = srv.post("/embed", &json!({ "inputs": t }));
            assert_eq!(r.status, 200, "{:?}", r.body);
            floats(&r.body[0])
        })
        .collect();
    let tokens: Vec<usize> = srv
        .post("/tokenize", &json!({ "inputs": TEXTS }))
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_array().unwrap().len())
        .collect();
    let tokens_before = srv.metric("wgformer_input_tokens_total");
    let rows_before = srv.metric("wgformer_batch_size_sum");
    let batches_before = srv.metric("wgformer_batch_size_count");

    // Request k of client c: one or two texts, in an order that differs between requests.
    let pick = |c: usize, k: usize| -> Vec<usize> {
        let n = 1 + (c + k) % 2;
        (0..n)
            .map(|j| (c * PER_CLIENT + k + 7 * j) % TEXTS.len())
            .collect()
    };
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let t0 = Instant::now();
    let worst = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (srv, alone, barrier) = (&srv, &alone, barrier.clone());
                sc.spawn(move || {
                    barrier.wait();
                    let mut worst = 0f32;
                    for k in 0..PER_CLIENT {
                        let idx = pick(c, k);
                        let inputs: Vec<&str> = idx.iter().map(|&i| TEXTS[i]).collect();
                        let r = srv.post("/embed", &json!({ "inputs": inputs }));
                        assert_eq!(r.status, 200, "client {c} request {k}: {:?}", r.body);
                        let got = r.body.as_array().unwrap();
                        assert_eq!(got.len(), idx.len(), "client {c} request {k}");
                        for (g, &i) in got.iter().zip(&idx) {
                            let d = max_abs(&floats(g), &alone[i]);
                            assert!(
                                d < 1e-5,
                                "client {c} request {k}: {:?} differs from alone by {d:e}",
                                TEXTS[i]
                            );
                            worst = worst.max(d);
                        }
                    }
                    worst
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .fold(0f32, f32::max)
    });
    let secs = t0.elapsed().as_secs_f64();
    let requests = CLIENTS * PER_CLIENT;
    let picks: Vec<usize> = (0..CLIENTS)
        .flat_map(|c| (0..PER_CLIENT).flat_map(move |k| pick(c, k)))
        .collect();
    let rows = picks.len() as f64;
    let batches = srv.metric("wgformer_batch_size_count") - batches_before;
    eprintln!(
        "serve: {requests} requests ({rows} rows) from {CLIENTS} clients in {secs:.1}s, \
         {batches} forward passes, worst |diff| vs alone {worst:e}"
    );
    // Every row ran exactly once (none lost, none duplicated), in shared batches.
    assert_eq!(srv.metric("wgformer_batch_size_sum") - rows_before, rows);
    assert!(
        batches < rows / 2.0,
        "{batches} passes for {rows} rows: no batching?"
    );
    let want_tokens: usize = picks.iter().map(|&i| tokens[i]).sum();
    assert_eq!(
        srv.metric("wgformer_input_tokens_total") - tokens_before,
        want_tokens as f64
    );
    let ok = srv.metric("wgformer_requests_total{route=\"/embed\",status=\"200\"}");
    assert_eq!(ok, (requests + TEXTS.len()) as f64);
    assert_eq!(srv.metric("wgformer_queue_size"), 0.0);
    assert_eq!(srv.metric("wgformer_requests_in_flight"), 0.0);
}

#[test]
fn over_the_concurrency_limit_is_429() {
    let srv = Server::start(&minilm_f32(), &["--max-concurrent-requests", "2"]);
    let text = "a sentence of a dozen words or so, long enough to take a moment to embed";
    let n = 12;
    let barrier = Arc::new(Barrier::new(n));
    let replies: Vec<Reply> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (srv, barrier) = (&srv, barrier.clone());
                sc.spawn(move || {
                    barrier.wait();
                    srv.post("/embed", &json!({ "inputs": vec![text; 4] }))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(ok + refused.len(), n, "{replies:?}");
    assert!(ok >= 2, "{ok} answered");
    assert!(
        !refused.is_empty(),
        "none refused with 2 permits and {n} clients"
    );
    for r in &refused {
        let msg = assert_error(r, 429, "overloaded");
        assert!(msg.contains("--max-concurrent-requests"), "{msg}");
    }
    // The permits come back.
    assert_eq!(srv.post("/embed", &json!({"inputs": "x"})).status, 200);
    assert_eq!(
        srv.metric("wgformer_request_errors_total{route=\"/embed\",error_type=\"overloaded\"}"),
        refused.len() as f64
    );
}

#[test]
fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let mut srv = Server::start(&minilm_f32(), &[]);
    let n = 6;
    let text = "requests in flight when the server is told to stop must still be answered";
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let srv = &srv;
                sc.spawn(move || srv.post("/embed", &json!({ "inputs": vec![text; 4] })))
            })
            .collect();
        // Wait until the server holds them, then SIGTERM.
        let t0 = Instant::now();
        while srv.metric("wgformer_requests_in_flight") < n as f64 {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "requests never in flight"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        srv.sigterm();
        for h in hs {
            let r = h.join().unwrap();
            assert_eq!(r.status, 200, "{:?}", r.body);
            assert_eq!(r.body.as_array().unwrap().len(), 4);
        }
    });
    let status = srv.wait(Duration::from_secs(120));
    assert!(status.success(), "exit status {status:?}");
    // Nothing listens any more.
    let fresh = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    assert!(fresh.get(&format!("{}/health", srv.url)).call().is_err());
}
