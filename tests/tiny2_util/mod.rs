//! Shared by the tiny2 task tests: which fixture models wgformer runs, read from the fixture
//! itself so the same tests check any tiny2 set of these kinds (other sizes, seeds, texts).
#![allow(dead_code)]

use crate::common::{json, jsonl, shared};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Models skipped on purpose (none today: every tiny2 architecture runs). [`skipped`] also
/// checks each really is such a model (by `model_type`), so the list cannot hide a supported
/// one.
pub const UNSUPPORTED: [&str; 0] = [];
pub const UNSUPPORTED_TYPES: [&str; 0] = [];

pub fn tiny2(name: &str) -> PathBuf {
    shared().join("fixtures/tiny2").join(name)
}

/// Whether `model` is one of [`UNSUPPORTED`] (asserting its `model_type` says so).
pub fn skipped(model: &str) -> bool {
    if !UNSUPPORTED.contains(&model) {
        return false;
    }
    let cfg = json(tiny2(model).join("config.json"));
    let t = cfg["model_type"].as_str().unwrap_or("");
    assert!(
        UNSUPPORTED_TYPES.contains(&t),
        "{model} is skipped as unsupported but its model_type is `{t}`"
    );
    true
}

/// `tiny-tasks.hf.jsonl` rows of the models wgformer runs, by model.
pub fn rows_by_model() -> BTreeMap<String, Vec<Value>> {
    let mut by = BTreeMap::<String, Vec<Value>>::new();
    for r in jsonl("tiny2/tiny-tasks.hf.jsonl") {
        let model = r["model"].as_str().unwrap().to_string();
        if !skipped(&model) {
            by.entry(model).or_default().push(r);
        }
    }
    by
}

/// The models (run by wgformer) with rows of `task`, and those rows.
pub fn task_rows(task: &str) -> BTreeMap<String, Vec<Value>> {
    rows_by_model()
        .into_iter()
        .map(|(m, rows)| {
            let rows: Vec<Value> = rows.into_iter().filter(|r| r["task"] == task).collect();
            (m, rows)
        })
        .filter(|(_, rows)| !rows.is_empty())
        .collect()
}

/// Golden cases of `tiny-golden.json` for the models wgformer runs.
pub fn golden_cases() -> Vec<Value> {
    let meta = json(shared().join("fixtures/tiny2/tiny-golden.json"));
    meta["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !skipped(c["model"].as_str().unwrap()))
        .cloned()
        .collect()
}
