//! A closed-loop HTTP load generator for `wgformer serve`: C clients each send the next request as
//! soon as the last is answered, for a fixed time after a warm-up; reports requests/s, rows/s and
//! latency percentiles per concurrency level.
//!
//! ```sh
//! wgformer serve --model .models/all-MiniLM-L6-v2 --port 8080 &
//! cargo bench --bench serve_load -- --url http://127.0.0.1:8080 --concurrency 1,8,32 \
//!     --seconds 15 --route /embed --texts 1
//! ```
//! Options: `--url`, `--route` (/embed, /predict or /v1/embeddings), `--concurrency` (list),
//! `--seconds` (timed part per level), `--warmup` (seconds), `--texts` (inputs per request),
//! `--text` (the input; default 16 tokens with BERT's uncased vocabulary), `--json`.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Opts {
    url: String,
    route: String,
    concurrency: Vec<usize>,
    seconds: f64,
    warmup: f64,
    texts: usize,
    text: String,
    json: bool,
}

fn parse() -> Opts {
    let mut o = Opts {
        url: "http://127.0.0.1:8080".into(),
        route: "/embed".into(),
        concurrency: vec![1, 8, 32],
        seconds: 15.0,
        warmup: 3.0,
        texts: 1,
        // 14 words: [CLS] + 14 + [SEP] = 16 tokens in BERT's uncased WordPiece.
        text: "the quick brown fox jumps over the lazy dog and then runs far away".into(),
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--url" => o.url = val(),
            "--route" => o.route = val(),
            "--concurrency" => {
                o.concurrency = val()
                    .split(',')
                    .map(|s| s.trim().parse().expect("--concurrency 1,8,32"))
                    .collect()
            }
            "--seconds" => o.seconds = val().parse().expect("--seconds N"),
            "--warmup" => o.warmup = val().parse().expect("--warmup N"),
            "--texts" => o.texts = val().parse().expect("--texts N"),
            "--text" => o.text = val(),
            "--json" => o.json = true,
            // `cargo bench` passes --bench to harness-less benches.
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    o
}

fn body(o: &Opts) -> Value {
    let inputs = vec![o.text.as_str(); o.texts];
    match o.route.as_str() {
        "/v1/embeddings" => json!({"input": inputs, "model": "bench"}),
        _ => json!({ "inputs": inputs }),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let k = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

/// Runs `c` clients for `secs`; returns each answered request's latency in seconds and the
/// number of errors.
fn level(o: &Opts, agent: &ureq::Agent, c: usize, secs: f64) -> (Vec<f64>, usize) {
    let url = format!("{}{}", o.url, o.route);
    let body = body(o);
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..c)
            .map(|_| {
                let (url, body, stop, agent) = (&url, &body, stop.clone(), agent.clone());
                sc.spawn(move || {
                    let (mut lat, mut errors) = (vec![], 0);
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        match agent.post(url).send_json(body) {
                            Ok(r) if r.status() == 200 => {
                                let _ = r.into_string();
                                lat.push(t.elapsed().as_secs_f64());
                            }
                            Ok(_) | Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .fold((vec![], 0), |(mut l, e), (l2, e2)| {
                l.extend(l2);
                (l, e + e2)
            })
    })
}

fn main() {
    let o = parse();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(600))
        .max_idle_connections_per_host(256)
        .build();
    let info: Value = agent
        .get(&format!("{}/info", o.url))
        .call()
        .unwrap_or_else(|e| panic!("GET {}/info: {e} (is `wgformer serve` running?)", o.url))
        .into_json()
        .expect("/info JSON");
    if !o.json {
        println!(
            "server   {} ({}) on {}",
            info["model_id"], info["task"], info["adapter"]
        );
        println!(
            "load     {} with {} text(s) of {:?} per request; closed loop, {}s warm-up + {}s per level",
            o.route, o.texts, o.text, o.warmup, o.seconds
        );
        println!(
            "{:>11} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>7}",
            "concurrency", "requests", "req/s", "rows/s", "p50 ms", "p90 ms", "p99 ms", "errors"
        );
    }
    for &c in &o.concurrency {
        // Warm-up: builds the graphs this level's batch shapes need.
        level(&o, &agent, c, o.warmup);
        let t0 = Instant::now();
        let (mut lat, errors) = level(&o, &agent, c, o.seconds);
        // Requests still running when the clock stops finish after it: count wall time to the
        // last answer.
        let secs = t0.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let n = lat.len();
        let rps = n as f64 / secs;
        let (p50, p90, p99) = (
            percentile(&lat, 50.0) * 1e3,
            percentile(&lat, 90.0) * 1e3,
            percentile(&lat, 99.0) * 1e3,
        );
        if o.json {
            println!(
                "{}",
                json!({
                    "route": o.route, "concurrency": c, "texts_per_request": o.texts,
                    "requests": n, "seconds": secs, "requests_per_s": rps,
                    "rows_per_s": rps * o.texts as f64, "p50_ms": p50, "p90_ms": p90,
                    "p99_ms": p99, "errors": errors, "adapter": info["adapter"],
                })
            );
        } else {
            println!(
                "{c:>11} {n:>9} {rps:>10.2} {:>10.2} {p50:>10.1} {p90:>10.1} {p99:>10.1} {errors:>7}",
                rps * o.texts as f64
            );
        }
    }
}
