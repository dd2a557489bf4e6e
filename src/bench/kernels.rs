//! Single-kernel benchmarks: a graph of `reps` identical dispatches on random data, timed per
//! dispatch by the profiler (GPU timestamps where available).

use crate::gpu::Gpu;
use crate::graph::{Access, Arg, Graph, GraphBuilder, WeightBuffer};
use crate::ops::matmul::Matmul;
use crate::ops::softmax::Softmax;
use crate::ops::DType;
use crate::profiler::{self, Profiler, Timing};
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;

/// The timing of one kernel shape.
#[derive(Clone, Debug, Serialize)]
pub struct KernelResult {
    pub name: String,
    pub timing: Timing,
    /// Median per dispatch, µs.
    pub median_us: f64,
    pub min_us: f64,
    pub flops: u64,
    pub bytes: u64,
    pub gflops: f64,
    pub gbytes: f64,
    pub samples: usize,
}

fn random_weight(gpu: &Gpu, name: &str, shape: &[usize], dtype: DType) -> Result<WeightBuffer> {
    let n: usize = shape.iter().product();
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let vals: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let bytes: Vec<u8> = match dtype {
        DType::F16 => crate::ops::f16_bytes(&vals),
        _ => bytemuck::cast_slice(&vals).to_vec(),
    };
    WeightBuffer::upload(gpu, name, shape, dtype, &bytes)
}

/// `reps` dispatches of `Y[m,n] = X[m,k]·W[n,k]ᵀ` (W in f16 with `f16`).
pub fn matmul_graph(
    gpu: &Gpu,
    m: usize,
    n: usize,
    k: usize,
    f16: bool,
    reps: usize,
) -> Result<Graph> {
    if m == 0 || n == 0 || k == 0 {
        return Err(Error::Input(format!(
            "matmul sizes must be positive (got m={m} n={n} k={k})"
        )));
    }
    let mut g = GraphBuilder::new(gpu);
    let a = g.weight(&random_weight(gpu, "x", &[m, k], DType::F32)?);
    let wd = if f16 { DType::F16 } else { DType::F32 };
    let b = g.weight(&random_weight(gpu, "w", &[n, k], wd)?);
    let c = g.activation("y", &[m, n]);
    for i in 0..reps.max(1) {
        g.matmul(
            &format!("matmul{i}"),
            Matmul::linear(m, n, k),
            a,
            b,
            None,
            c,
        )?;
    }
    g.build()
}

/// `reps` in-place masked softmaxes over `rows × len`.
pub fn softmax_graph(gpu: &Gpu, rows: usize, len: usize, reps: usize) -> Result<Graph> {
    let mut g = GraphBuilder::new(gpu);
    let x = g.activation("scores", &[rows, len]);
    let mask = g.weight(&random_weight(gpu, "mask", &[1, len], DType::F32)?);
    for i in 0..reps.max(1) {
        let call = Softmax {
            rows,
            len,
            rows_per_mask: rows,
            has_mask: true,
            mask_off: 0,
            per_row: None,
        }
        .call(gpu)?;
        g.node(
            format!("softmax{i}"),
            call,
            vec![Arg::T(x, Access::ReadWrite), Arg::T(mask, Access::Read)],
        );
    }
    g.build()
}

/// `reps` LayerNorms (with residual, as in every encoder layer) over `rows × n`.
pub fn layer_norm_graph(gpu: &Gpu, rows: usize, n: usize, reps: usize) -> Result<Graph> {
    let mut g = GraphBuilder::new(gpu);
    let x = g.weight(&random_weight(gpu, "x", &[rows, n], DType::F32)?);
    let r = g.weight(&random_weight(gpu, "residual", &[rows, n], DType::F32)?);
    let gamma = g.weight(&random_weight(gpu, "gamma", &[n], DType::F32)?);
    let beta = g.weight(&random_weight(gpu, "beta", &[n], DType::F32)?);
    for i in 0..reps.max(1) {
        g.layer_norm(&format!("layer_norm{i}"), x, Some(r), gamma, beta, 1e-12)?;
    }
    g.build()
}

/// Times every node of `graph` over `runs` runs (after one warm-up) and summarises the dispatch
/// times, which must all be of the same kernel and shape.
pub fn time_graph(gpu: &Arc<Gpu>, name: &str, graph: &Graph, runs: usize) -> Result<KernelResult> {
    let graph = graph.lock();
    let mut prof = Profiler::new(gpu, &graph)?;
    let runs = profiler::profile_graph(&mut prof, &graph, &[], 1, runs.max(1))?;
    let samples: Vec<f64> = runs
        .iter()
        .flat_map(|r| r.nodes.iter().map(|n| n.us))
        .collect();
    let node = graph
        .nodes()
        .next()
        .ok_or_else(|| Error::Graph("benchmark graph has no nodes".into()))?;
    let median = super::quantile(&samples, 0.5);
    Ok(KernelResult {
        name: name.to_string(),
        timing: prof.timing(),
        median_us: median,
        min_us: samples.iter().copied().fold(f64::INFINITY, f64::min),
        flops: node.flops,
        bytes: node.bytes,
        gflops: profiler::rate(node.flops as f64, median),
        gbytes: profiler::rate(node.bytes as f64, median),
        samples: samples.len(),
    })
}

/// Times one matmul shape.
pub fn bench_matmul(
    gpu: &Arc<Gpu>,
    m: usize,
    n: usize,
    k: usize,
    f16: bool,
    runs: usize,
) -> Result<KernelResult> {
    let g = matmul_graph(gpu, m, n, k, f16, 2)?;
    let w = if f16 { "f16" } else { "f32" };
    time_graph(gpu, &format!("matmul {m}x{n}x{k} W {w}"), &g, runs)
}
