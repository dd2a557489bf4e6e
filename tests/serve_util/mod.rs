//! For the serve tests: start the real `wgformer serve` binary on 127.0.0.1 (port 0) and talk to
//! it over HTTP with a real client (ureq).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running server process, killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub agent: ureq::Agent,
}

/// A response: status and body (JSON where it parses, else a JSON string of the text).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Server {
    /// Starts `wgformer serve --model DIR --port 0 EXTRA...` on the test adapter
    /// (`WGFORMER_TEST_BACKEND`, default vulkan; `WGFORMER_TEST_ADAPTER`) and waits for its
    /// "listening on" line.
    pub fn start(model: &Path, extra: &[&str]) -> Server {
        let backend = std::env::var("WGFORMER_TEST_BACKEND").unwrap_or_else(|_| "vulkan".into());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgformer"));
        cmd.arg("serve")
            .arg("--model")
            .arg(model)
            .args(["--port", "0", "--backend", &backend])
            .args(extra)
            .env("NODEVICE_SELECT", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Ok(a) = std::env::var("WGFORMER_TEST_ADAPTER") {
            cmd.args(["--adapter", &a]);
        }
        let mut child = cmd.spawn().expect("spawning wgformer serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining so the server never blocks on a full pipe.
            for _ in r.lines() {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(300))
            .unwrap_or_else(|_| panic!("wgformer serve --model {} did not start", model.display()));
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "wgformer serve --model {} printed {line:?} instead of `listening on URL` \
                     (its stderr is above)",
                    model.display()
                )
            })
            .to_string();
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(300))
            .max_idle_connections_per_host(128)
            .build();
        Server { child, url, agent }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn reply(r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(resp) => resp,
            Err(ureq::Error::Status(_, resp)) => resp,
            Err(e) => panic!("HTTP transport error: {e}"),
        };
        let status = resp.status();
        let text = resp.into_string().expect("reading the body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body }
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        Self::reply(
            self.agent
                .post(&format!("{}{path}", self.url))
                .send_json(body),
        )
    }

    /// POSTs raw bytes as `application/json`.
    pub fn post_bytes(&self, path: &str, bytes: &[u8]) -> Reply {
        Self::reply(
            self.agent
                .post(&format!("{}{path}", self.url))
                .set("Content-Type", "application/json")
                .send_bytes(bytes),
        )
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::reply(self.agent.get(&format!("{}{path}", self.url)).call())
    }

    pub fn request(&self, method: &str, path: &str) -> Reply {
        Self::reply(
            self.agent
                .request(method, &format!("{}{path}", self.url))
                .call(),
        )
    }

    /// The value of a Prometheus sample line `name{labels} value` (labels as rendered, e.g.
    /// `route="/embed",status="200"`), 0 when absent.
    pub fn metric(&self, name_and_labels: &str) -> f64 {
        let text = self.get("/metrics").body;
        let text = text.as_str().expect("metrics are text");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                (k == name_and_labels).then(|| v.parse::<f64>().ok())?
            })
            .unwrap_or(0.0)
    }

    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -TERM failed");
    }

    /// Waits for the process to exit (panics after `timeout`).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                t0.elapsed() < timeout,
                "the server did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Asserts `r` is an error answer with `status` and the JSON body `{"error", "error_type"}`.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, error_type: &str) -> String {
    assert_eq!(r.status, status, "{:?}", r.body);
    let msg = r.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error body without a string `error`: {:?}", r.body));
    assert_eq!(
        r.body["error_type"].as_str(),
        Some(error_type),
        "{:?}",
        r.body
    );
    assert!(!msg.is_empty());
    msg.to_string()
}

/// An error in OpenAI's shape (`/v1/embeddings`): `{"error": {"message", "type", "param",
/// "code"}}` with `code` wgformer's error type; returns the message.
pub fn assert_openai_error(r: &Reply, status: u16, kind: &str, code: &str) -> String {
    assert_eq!(r.status, status, "{:?}", r.body);
    let e = &r.body["error"];
    let msg = e["message"]
        .as_str()
        .unwrap_or_else(|| panic!("OpenAI error without error.message: {:?}", r.body));
    assert_eq!(e["type"].as_str(), Some(kind), "{:?}", r.body);
    assert_eq!(e["code"].as_str(), Some(code), "{:?}", r.body);
    assert!(e.get("param").is_some(), "{:?}", r.body);
    assert!(!msg.is_empty());
    msg.to_string()
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("expected a list of numbers, got {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
