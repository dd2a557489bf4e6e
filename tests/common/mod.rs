//! Shared by the integration tests: where the fixtures are, golden tensors, comparisons.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use wgformer::Gpu;

/// `../shared` beside the checkout, or `WGFORMER_SHARED`. Missing fixtures fail the test loudly.
pub fn shared() -> PathBuf {
    let p = std::env::var("WGFORMER_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared")));
    assert!(
        p.join("fixtures").is_dir(),
        "test fixtures not found at {}: put the shared/ folder beside the checkout or set WGFORMER_SHARED",
        p.display()
    );
    p
}

/// The task models' folder (`WGFORMER_MODELS`, default `../shared/models`).
pub fn models() -> PathBuf {
    let p = std::env::var("WGFORMER_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| shared().join("models"));
    assert!(
        p.join("minilm-sst2").is_dir(),
        "task models not found at {} (set WGFORMER_MODELS)",
        p.display()
    );
    p
}

pub fn gpu() -> Arc<Gpu> {
    wgformer::gpu::test_gpu().clone()
}

pub struct Golden {
    bytes: Vec<u8>,
}

impl Golden {
    pub fn open(path: PathBuf) -> Golden {
        Golden {
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }
    /// (shape, f32 values)
    pub fn get(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let st = safetensors::SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st
            .tensor(name)
            .unwrap_or_else(|e| panic!("golden `{name}`: {e}"));
        (t.shape().to_vec(), bytemuck::pod_collect_to_vec(t.data()))
    }
}

pub fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Max absolute difference, asserting the lengths match.
pub fn max_abs(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len(), "length");
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// Rows of a JSON Lines fixture under `shared()/fixtures/`, failing loudly when it is missing.
pub fn jsonl(rel: &str) -> Vec<serde_json::Value> {
    let path = shared().join("fixtures").join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "fixture {} not readable ({e}): the shared/ folder must sit beside the checkout",
            path.display()
        )
    });
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// The f32 all-MiniLM-L6-v2 folder: `$WGFORMER_MODELS_DIR/all-MiniLM-L6-v2`, else
/// `.models/all-MiniLM-L6-v2` in the crate root. Missing: fails, saying how to fetch it.
pub fn minilm_f32() -> PathBuf {
    let base = std::env::var("WGFORMER_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.models")));
    let dir = base.join("all-MiniLM-L6-v2");
    assert!(
        dir.join("config.json").is_file() && dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 (f32) not found at {}: run scripts/fetch-models.sh \
         (it honours WGFORMER_MODELS_DIR, default .models/)",
        dir.display()
    );
    dir
}
