//! Memory over time: the soak's forwards over a mix of shapes leave GPU-buffer bytes exactly
//! where they were one cycle earlier (no leak), the graph cache bounds them, and
//! `wgformer bench soak` prints its samples.

mod common;
use common::*;
use wgformer::bench::soak::{self, CYCLE};
use wgformer::models::Model;

#[test]
fn soak_gpu_bytes_are_flat_and_the_cache_bounds_them() {
    let gpu = wgformer::gpu::open_test_gpu(Default::default());
    let dir = shared().join("fixtures/tiny/tiny-bert");
    let base = gpu.buffer_bytes();
    let mut model = Model::load(&dir, &gpu).unwrap();
    assert_eq!(gpu.buffer_bytes() - base, model.weight_bytes());
    assert!(model.weight_bytes() > 0);
    let samples = soak::soak(&model, 6 * CYCLE).unwrap();
    let (warm, mid, end) = (samples[1], samples[2], samples[3]);
    assert_eq!(
        (warm.runs, mid.runs, end.runs),
        (2 * CYCLE, 3 * CYCLE, 6 * CYCLE)
    );
    // Whole cycles apart, the cache holds the same graphs: the same bytes, to the byte.
    assert_eq!(warm.gpu_buffer_bytes, end.gpu_buffer_bytes);
    assert_eq!(mid.gpu_buffer_bytes, end.gpu_buffer_bytes);
    // 16 bucketed shapes through a 12-graph cache: graphs are evicted and rebuilt.
    assert!(end.graph_builds > mid.graph_builds);
    // One graph kept: the weights plus one graph's buffers, less than with twelve.
    model.set_graph_cache(1);
    let one = gpu.buffer_bytes();
    assert!(one < end.gpu_buffer_bytes);
    let biggest = model.activation_bytes(8, 64).unwrap();
    let now = gpu.buffer_bytes() - base;
    assert!(
        now >= model.weight_bytes() + biggest,
        "{now} bytes held, weights {} + activations {biggest}",
        model.weight_bytes()
    );
    drop(model);
    assert_eq!(
        gpu.buffer_bytes(),
        base,
        "buffers left after the model dropped"
    );
}

#[test]
fn bench_soak_prints_start_middle_and_end() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgformer"))
        .args([
            "bench",
            "soak",
            "--runs",
            "80",
            "--graph-cache",
            "4",
            "--json",
            "--model",
        ])
        .arg(shared().join("fixtures/tiny/tiny-bert"))
        .args(
            std::env::var("WGFORMER_TEST_BACKEND")
                .map(|b| vec!["--backend".to_string(), b])
                .unwrap_or_default(),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let samples = v["samples"].as_array().unwrap();
    let runs: Vec<u64> = samples
        .iter()
        .map(|s| s["runs"].as_u64().unwrap())
        .collect();
    // Warm-up (two cycles) and the middle coincide at 80 forwards.
    assert_eq!(runs, [0, 40, 80]);
    assert_eq!(v["graph_cache"], 4);
    assert!(samples
        .iter()
        .all(|s| s["gpu_buffer_bytes"].as_u64().unwrap() >= v["weight_bytes"].as_u64().unwrap()));
    assert_eq!(v["gpu_growth_pct_middle_to_end"], 0.0);
}

/// `wgformer info --batch B --seq S` plans that forward on the GPU: the activation bytes the
/// library plans, at least the QKV projection's (a tensor every layer writes), growing with
/// the length.
#[test]
fn info_reports_planned_activation_bytes() {
    let dir = shared().join("fixtures/tiny/tiny-bert");
    let info = |batch: usize, seq: usize| -> serde_json::Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgformer"))
            .args(["info", "--json", "--batch", &batch.to_string()])
            .args(["--seq", &seq.to_string(), "--model"])
            .arg(&dir)
            .args(
                std::env::var("WGFORMER_TEST_BACKEND")
                    .map(|b| vec!["--backend".to_string(), b])
                    .unwrap_or_default(),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let model = Model::load(&dir, &gpu()).unwrap();
    let h = model.config.hidden_size as u64;
    let (small, large) = (info(2, 16), info(2, 32));
    let bytes = |v: &serde_json::Value| v["plan"]["activation_bytes"].as_u64().unwrap();
    assert_eq!(bytes(&small), model.activation_bytes(2, 16).unwrap());
    assert!(bytes(&small) >= 2 * 16 * 3 * h * 4, "{small}");
    assert!(bytes(&large) > bytes(&small), "{small} {large}");
    assert_eq!(small["plan"]["weight_bytes"], small["weight_bytes"]);
    // Without --batch/--seq nothing is planned (and no GPU is opened).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgformer"))
        .args(["info", "--json", "--model"])
        .arg(&dir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.get("plan").is_none(), "{v}");
}
