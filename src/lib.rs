//! wgformer: transformer encoder inference (BERT-family) on wgpu compute shaders.
//!
//! Layers, each knowing only the ones below it:
//! - [`gpu`]: adapter choice, device features, pipeline cache;
//! - [`ops`]: one Rust wrapper per WGSL kernel family, each with its CPU f64 reference;
//! - [`graph`]: tensors, nodes, liveness buffer plan, one-submit executor (knows no model);
//! - [`profiler`]: per-node GPU timing of graph runs (above the graph it times);
//! - [`models`]: Hugging Face config/weights and one file per architecture, building graphs;
//! - [`pipelines`]: tokenization and post-processing (QA spans, labels, pooling), plain Rust;
//! - [`serve`]: the HTTP server (routes, request queue, batcher on one GPU thread);
//! - `web`: the browser build's JS API (wasm32 only, over the same pipelines).
//!
//! The core is async where it waits on the GPU (a browser cannot block); native callers get
//! synchronous wrappers that block on it. The CLI, server, hub, benchmarks and profiler are
//! native only.

// WebGPU objects are neither Send nor Sync on wasm32 (one thread there); the Arcs that share them
// across threads natively are simply shared references in the browser.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]

#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod error;
pub mod gpu;
pub mod graph;
#[cfg(not(target_arch = "wasm32"))]
pub mod hub;
pub mod models;
pub mod ops;
pub mod pipelines;
#[cfg(not(target_arch = "wasm32"))]
pub mod profiler;
#[cfg(not(target_arch = "wasm32"))]
pub mod serve;
#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions};
