//! Prometheus metrics of one server: a private recorder (no global state, so several servers in
//! one process keep their own counts), rendered by `GET /metrics`.

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusRecorder};

const META: Metadata<'static> = Metadata::new("wgformer::serve", Level::INFO, None);

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
const TOKEN_BUCKETS: &[f64] = &[
    16.0, 64.0, 256.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0,
];

/// The handles the server and the batcher update.
pub struct Metrics {
    recorder: PrometheusRecorder,
    /// Jobs (sequences) waiting for the GPU thread.
    pub queue_size: Gauge,
    /// Inference requests being served (what `--max-concurrent-requests` bounds).
    pub in_flight: Gauge,
    /// Rows per forward pass.
    pub batch_size: Histogram,
    /// Padded tokens (rows × padded length) per forward pass.
    pub batch_tokens: Histogram,
    /// Seconds a sequence waited in the queue.
    pub queue_duration: Histogram,
    /// Seconds of one forward pass (including the read-back).
    pub inference_duration: Histogram,
    /// Forward passes that failed (a failed batch counts once, then each failing row again).
    pub batch_failures: Counter,
    /// Tokens of the inputs (special tokens included, after truncation).
    pub input_tokens: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let builder = PrometheusBuilder::new();
        let builder = [
            ("_seconds", LATENCY_BUCKETS),
            ("batch_size", SIZE_BUCKETS),
            ("batch_tokens", TOKEN_BUCKETS),
        ]
        .into_iter()
        .fold(builder, |b, (suffix, buckets)| {
            b.set_buckets_for_metric(Matcher::Suffix(suffix.into()), buckets)
                .expect("non-empty buckets")
        });
        let recorder = builder.build_recorder();
        let describe = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            recorder.describe_counter(name.into(), unit, help.into());
        };
        describe(
            "wgformer_requests_total",
            None,
            "HTTP requests by route and status code",
        );
        describe(
            "wgformer_request_errors_total",
            None,
            "Requests answered with an error, by route and error_type",
        );
        describe(
            "wgformer_request_duration_seconds",
            Some(Unit::Seconds),
            "Request latency by route, from the first byte read to the response",
        );
        describe(
            "wgformer_queue_size",
            None,
            "Sequences waiting for the GPU thread",
        );
        describe(
            "wgformer_requests_in_flight",
            None,
            "Inference requests being served",
        );
        describe("wgformer_batch_size", None, "Rows per forward pass");
        describe(
            "wgformer_batch_tokens",
            None,
            "Padded tokens (rows x padded length) per forward pass",
        );
        describe(
            "wgformer_queue_duration_seconds",
            Some(Unit::Seconds),
            "Time a sequence waited in the queue",
        );
        describe(
            "wgformer_inference_duration_seconds",
            Some(Unit::Seconds),
            "Time of one forward pass, read-back included",
        );
        describe(
            "wgformer_batch_failures_total",
            None,
            "Forward passes that failed",
        );
        describe(
            "wgformer_input_tokens_total",
            None,
            "Input tokens (special tokens included, after truncation)",
        );
        let g = |n: &'static str| recorder.register_gauge(&Key::from_name(n), &META);
        let h = |n: &'static str| recorder.register_histogram(&Key::from_name(n), &META);
        let c = |n: &'static str| recorder.register_counter(&Key::from_name(n), &META);
        Metrics {
            queue_size: g("wgformer_queue_size"),
            in_flight: g("wgformer_requests_in_flight"),
            batch_size: h("wgformer_batch_size"),
            batch_tokens: h("wgformer_batch_tokens"),
            queue_duration: h("wgformer_queue_duration_seconds"),
            inference_duration: h("wgformer_inference_duration_seconds"),
            batch_failures: c("wgformer_batch_failures_total"),
            input_tokens: c("wgformer_input_tokens_total"),
            recorder,
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, route: &str, status: u16, seconds: f64, error_type: Option<&str>) {
        let route = route.to_string();
        self.recorder
            .register_counter(
                &Key::from_parts(
                    "wgformer_requests_total",
                    vec![
                        Label::new("route", route.clone()),
                        Label::new("status", status.to_string()),
                    ],
                ),
                &META,
            )
            .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "wgformer_request_duration_seconds",
                    vec![Label::new("route", route.clone())],
                ),
                &META,
            )
            .record(seconds);
        if let Some(t) = error_type {
            self.recorder
                .register_counter(
                    &Key::from_parts(
                        "wgformer_request_errors_total",
                        vec![
                            Label::new("route", route),
                            Label::new("error_type", t.to_string()),
                        ],
                    ),
                    &META,
                )
                .increment(1);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let h = self.recorder.handle();
        h.run_upkeep();
        h.render()
    }

    /// Drains histogram samples into their buckets (call now and then so memory stays bounded).
    pub fn upkeep(&self) {
        self.recorder.handle().run_upkeep();
    }
}
