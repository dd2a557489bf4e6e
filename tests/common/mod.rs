//! Shared by the integration tests: where the fixtures are, golden tensors, comparisons.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use wgformer::models::config::Family;
use wgformer::models::{Model, Sequence};
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

/// Parity tolerance against the Hugging Face goldens (f32).
pub const TOL: f32 = 1e-4;

/// The golden case for `name` as unpadded rows (ids, and token types where the model has them).
pub fn golden_rows(case: &serde_json::Value) -> Vec<Sequence> {
    let masks: Vec<Vec<u32>> = case["attention_mask"]
        .as_array()
        .unwrap()
        .iter()
        .map(ids)
        .collect();
    case["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(r, row)| {
            let len = masks[r].iter().filter(|m| **m == 1).count();
            // Right padding: the real tokens come first.
            assert!(
                masks[r][..len].iter().all(|m| *m == 1),
                "row {r} not right-padded"
            );
            let type_ids = if case["token_type_ids"].is_null() {
                vec![]
            } else {
                ids(&case["token_type_ids"][r])[..len].to_vec()
            };
            Sequence {
                ids: ids(row)[..len].to_vec(),
                type_ids,
            }
        })
        .collect()
}

/// Tiny random model `name` against `tiny-golden.*`: a right-padded batch of three rows, every
/// hidden state at the real positions and the logits within 1e-4.
pub fn tiny_parity(name: &str, family: Family) {
    tiny_parity_on(&gpu(), name, family);
}

/// [`tiny_parity`] on `gpu`; returns the model.
pub fn tiny_parity_on(gpu: &Arc<Gpu>, name: &str, family: Family) -> Model {
    let dir = shared().join("fixtures/tiny");
    let meta = json(dir.join("tiny-golden.json"));
    let golden = Golden::open(dir.join("tiny-golden.safetensors"));
    let case = meta["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["model"] == name)
        .unwrap_or_else(|| panic!("{name} not in tiny-golden.json"));
    let model = Model::load(&dir.join(name), gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(model.config.family, family);
    assert_eq!(
        model.config.architecture,
        case["architecture"].as_str().unwrap()
    );
    let rows = golden_rows(case);
    let lens: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
    assert!(
        lens.windows(2).any(|w| w[0] != w[1]),
        "{name}: the batch must be padded"
    );
    let out = model.forward_with_hidden(&rows).unwrap();
    let states = case["hidden_layers"].as_u64().unwrap() as usize;
    assert_eq!(
        out.hidden_states.len(),
        states,
        "{name}: hidden state count"
    );
    for k in 0..states {
        let (shape, want) = golden.get(&format!("{name}.hidden.{k}"));
        let (seq, h) = (shape[1], shape[2]);
        assert_eq!(h, model.config.hidden_size, "{name} hidden {k} width");
        for (r, len) in lens.iter().enumerate() {
            let w = &want[r * seq * h..(r * seq + len) * h];
            let d = max_abs(&out.hidden_states[k][r], w);
            assert!(d < TOL, "{name} hidden {k} row {r}: max |diff| {d:e}");
        }
    }
    let (shape, want) = golden.get(&format!("{name}.logits"));
    assert_eq!(shape, [rows.len(), model.config.num_labels()]);
    let got: Vec<f32> = out.logits.concat();
    let d = max_abs(&got, &want);
    assert!(d < TOL, "{name} logits: max |diff| {d:e}");
    // The last hidden state is the last captured one.
    for r in 0..rows.len() {
        assert_eq!(out.last_hidden[r], out.hidden_states[states - 1][r]);
    }
    model
}
