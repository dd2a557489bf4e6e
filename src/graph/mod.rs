//! The command graph: tensors with shapes, nodes naming their kernel and bindings, a
//! liveness-based buffer plan, and an executor that encodes every node into one command buffer.
//!
//! A graph is built once (pipelines, buffers, bind groups, uniforms all made here) and replayed:
//! a run writes the input buffers, submits once and reads the outputs back. It knows kernels,
//! not models.

mod builder;
mod plan;

pub use builder::{AttentionExtras, GraphBuilder};
pub use plan::PlanReport;

use crate::gpu::{Gpu, GpuBuffer};
use crate::ops::DType;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// Held across the await of a run's readback, so it must be an async lock: a std mutex
/// held across an await blocks (native) or panics (browser) when a second call arrives.
type RunLock = async_lock::Mutex<()>;

/// A tensor of one graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(pub(crate) usize);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorKind {
    /// Written by the host before each run.
    Input,
    /// Uploaded once, shared by every graph of a model.
    Weight,
    /// Produced by a node; its buffer may be shared with tensors of disjoint lifetimes.
    Activation,
}

#[derive(Clone, Debug)]
pub struct TensorDesc {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub kind: TensorKind,
}

impl TensorDesc {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn bytes(&self) -> u64 {
        self.dtype.bytes(self.numel())
    }
}

/// A weight tensor resident on the GPU: one buffer, or row blocks of the leading axis in
/// buffers of their own when the whole exceeds one storage binding (a large vocabulary's word
/// table). Kernels that know pieces ([`GraphBuilder::linear`], [`GraphBuilder::embedding`]) read
/// them block by block; any other kernel refuses a split weight when the graph is built.
#[derive(Clone, Debug)]
pub struct WeightBuffer {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub pieces: Vec<WeightPiece>,
}

/// Rows `start..start + rows` of a weight, in one buffer.
#[derive(Clone, Debug)]
pub struct WeightPiece {
    pub start: usize,
    pub rows: usize,
    pub buffer: Arc<GpuBuffer>,
}

impl WeightBuffer {
    /// Uploads `bytes` (already in `dtype`'s GPU layout; f16 padded to whole words), split into
    /// row blocks where it exceeds [`Gpu::max_binding_bytes`].
    pub fn upload(
        gpu: &Gpu,
        name: &str,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
    ) -> Result<WeightBuffer> {
        let limit = gpu.max_binding_bytes();
        let blocks = row_blocks(shape, dtype, limit).map_err(|m| Error::weight(name, m))?;
        let numel: usize = shape.iter().product();
        // Bytes of one element in the host layout (f16: two, before the last word's padding).
        let elem = (dtype.bytes(2) / 2) as usize;
        let per_row = numel / shape.first().copied().unwrap_or(1).max(1);
        let mut pieces = vec![];
        for (start, rows) in blocks {
            let from = (start * per_row * elem).min(bytes.len());
            let to = ((start + rows) * per_row * elem).min(bytes.len());
            let mut part = bytes[from..to].to_vec();
            part.resize(dtype.bytes(rows * per_row) as usize, 0);
            pieces.push(WeightPiece {
                start,
                rows,
                buffer: Arc::new(gpu.upload_storage(name, &part)),
            });
        }
        Ok(WeightBuffer {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype,
            pieces,
        })
    }

    /// Bytes on the GPU.
    pub fn bytes(&self) -> u64 {
        self.pieces.iter().map(|p| p.buffer.size()).sum()
    }
}

/// `(first row, rows)` of each block a `shape` tensor of `dtype` takes so no block exceeds
/// `limit` bytes: one block when it fits, else as many rows per block as fit. A tensor whose
/// single row (or whole vector) exceeds the limit cannot be split: the message says why.
pub fn row_blocks(
    shape: &[usize],
    dtype: DType,
    limit: u64,
) -> std::result::Result<Vec<(usize, usize)>, String> {
    let numel: usize = shape.iter().product();
    let rows = shape.first().copied().unwrap_or(1);
    let total = dtype.bytes(numel);
    if total <= limit {
        return Ok(vec![(0, rows)]);
    }
    let row_bytes = dtype.bytes(2) / 2 * (numel / rows.max(1)) as u64;
    // Whole words per block: an f16 block with an odd element count is padded by two bytes.
    let per_block = if shape.len() < 2 {
        0
    } else {
        ((limit & !3) / row_bytes.max(1)) as usize
    };
    if per_block == 0 {
        let why = if shape.len() < 2 {
            "a vector cannot be split".to_string()
        } else {
            format!("one row alone takes {row_bytes} bytes, so row blocks cannot fit")
        };
        return Err(format!(
            "{total} bytes exceed the storage binding limit of {limit} bytes, and {why}"
        ));
    }
    Ok((0..rows)
        .step_by(per_block)
        .map(|s| (s, per_block.min(rows - s)))
        .collect())
}

/// How a node touches one binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

/// A node's storage binding (binding index = position + 1).
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    T(TensorId, Access),
    /// A binding the kernel declares but this call does not use (no bias, no mask...).
    Unused,
    /// A binding index this kernel's entry point does not declare at all (no entry is made).
    Absent,
}

/// One kernel dispatch with its bindings.
#[derive(Clone)]
pub struct Node {
    pub label: String,
    pub call: crate::ops::KernelCall,
    pub args: Vec<Arg>,
}

/// What the profiler and reports need of a node, without its GPU objects.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub label: String,
    pub kind: &'static str,
    pub flops: u64,
    pub bytes: u64,
}

struct CompiledNode {
    info: NodeInfo,
    pipeline: Arc<wgpu::ComputePipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

/// Counters that show a graph is replayed, not rebuilt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub runs: u64,
    pub submits: u64,
    /// Bytes the host wrote in the last run (inputs only).
    pub bytes_written_last_run: u64,
    /// Bytes read back to the host after each run (the outputs only).
    pub bytes_read_per_run: u64,
}

/// A built graph, ready to replay.
pub struct Graph {
    tensors: Vec<TensorDesc>,
    nodes: Vec<CompiledNode>,
    inputs: Vec<(TensorId, Arc<GpuBuffer>)>,
    /// (tensor, its buffer, offset in `staging`, bytes)
    outputs: Vec<(TensorId, Arc<GpuBuffer>, u64, u64)>,
    staging: GpuBuffer,
    /// The activation slots and other buffers only the bind groups use: kept so their bytes
    /// count in [`Gpu::buffer_bytes`] as long as the graph lives.
    _owned: Vec<Arc<GpuBuffer>>,
    plan: PlanReport,
    stats: Mutex<RunStats>,
    /// Held from writing the inputs to reading the outputs: the input, activation and staging
    /// buffers are one set per graph, so two runs at once would read each other's answers.
    run_lock: RunLock,
}

/// Output bytes of one run, by tensor.
pub struct Outputs {
    data: Vec<(TensorId, Vec<u8>)>,
}

impl Outputs {
    pub fn bytes(&self, t: TensorId) -> Result<&[u8]> {
        self.data
            .iter()
            .find(|(id, _)| *id == t)
            .map(|(_, d)| d.as_slice())
            .ok_or_else(|| Error::Graph(format!("tensor {t:?} is not an output of this graph")))
    }
    /// Whether `t` was read back.
    pub fn has(&self, t: TensorId) -> bool {
        self.data.iter().any(|(id, _)| *id == t)
    }

    pub fn f32(&self, t: TensorId) -> Result<Vec<f32>> {
        Ok(bytemuck::pod_collect_to_vec(self.bytes(t)?))
    }
}

impl Graph {
    pub fn tensor(&self, t: TensorId) -> &TensorDesc {
        &self.tensors[t.0]
    }

    pub fn plan(&self) -> &PlanReport {
        &self.plan
    }

    pub fn stats(&self) -> RunStats {
        RunStats {
            bytes_read_per_run: self.outputs.iter().map(|o| o.3).sum(),
            ..*self.stats.lock().unwrap()
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().map(|n| &n.info)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Writes `inputs` (every input tensor, exactly its size in bytes), runs every node in one
    /// submit and reads the outputs back. Safe to call from many threads: runs of one graph
    /// take turns (see [`lock`](Self::lock)).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, gpu: &Gpu, inputs: &[(TensorId, &[u8])]) -> Result<Outputs> {
        pollster::block_on(self.run_async(gpu, inputs))
    }

    /// As [`run`](Self::run), awaiting the readback instead of blocking on it. Runs of one graph
    /// take turns here too: a second call waits (without blocking the thread) until the first
    /// has read its outputs.
    pub async fn run_async(&self, gpu: &Gpu, inputs: &[(TensorId, &[u8])]) -> Result<Outputs> {
        self.lock_async().await.run_async(gpu, inputs).await
    }

    /// Exclusive use of this graph's buffers until the guard drops, for callers that drive a run
    /// step by step (the profiler). Calling [`Graph::run`] while holding it deadlocks: use
    /// [`GraphRun::run`] instead.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn lock(&self) -> GraphRun<'_> {
        // The lock does not poison: a run that panicked leaves the buffers in no worse state
        // than a failed run, and the next run rewrites every input.
        GraphRun {
            graph: self,
            _guard: self.run_lock.lock_blocking(),
        }
    }

    /// As [`lock`](Self::lock), awaiting the turn instead of blocking on it.
    pub async fn lock_async(&self) -> GraphRun<'_> {
        GraphRun {
            graph: self,
            _guard: self.run_lock.lock().await,
        }
    }
}

/// A graph held for one caller: the only way to write its inputs and read its outputs.
pub struct GraphRun<'g> {
    graph: &'g Graph,
    _guard: async_lock::MutexGuard<'g, ()>,
}

impl<'g> GraphRun<'g> {
    pub fn graph(&self) -> &'g Graph {
        self.graph
    }

    pub fn nodes(&self) -> impl Iterator<Item = &'g NodeInfo> {
        self.graph.nodes()
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }

    /// As [`Graph::run`], under this guard.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn run(&self, gpu: &Gpu, inputs: &[(TensorId, &[u8])]) -> Result<Outputs> {
        pollster::block_on(self.run_async(gpu, inputs))
    }

    /// As [`Graph::run_async`], under this guard.
    pub async fn run_async(&self, gpu: &Gpu, inputs: &[(TensorId, &[u8])]) -> Result<Outputs> {
        let written = gpu.scoped(|| {
            let written = self.write_inputs(gpu, inputs)?;
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            self.encode(&mut enc, None);
            self.encode_readback(&mut enc);
            gpu.queue.submit([enc.finish()]);
            Ok(written)
        })?;
        let out = self.finish_async(gpu).await?;
        self.count_profiled_run(written);
        Ok(out)
    }

    pub fn write_inputs(&self, gpu: &Gpu, inputs: &[(TensorId, &[u8])]) -> Result<u64> {
        let mut written = 0;
        for (t, buf) in &self.graph.inputs {
            let desc = &self.graph.tensors[t.0];
            let data = inputs
                .iter()
                .find(|(id, _)| id == t)
                .map(|(_, d)| *d)
                .ok_or_else(|| Error::Graph(format!("input `{}` was not given", desc.name)))?;
            if data.len() as u64 != desc.bytes() {
                return Err(Error::Graph(format!(
                    "input `{}` {:?} needs {} bytes, got {}",
                    desc.name,
                    desc.shape,
                    desc.bytes(),
                    data.len()
                )));
            }
            gpu.queue.write_buffer(buf, 0, data);
            written += data.len() as u64;
        }
        Ok(written)
    }

    /// Records every node. With `timestamps`, each node gets its own pass whose begin and end
    /// are written to queries `2i` and `2i+1`; otherwise all nodes share one pass.
    pub fn encode(&self, enc: &mut wgpu::CommandEncoder, timestamps: Option<&wgpu::QuerySet>) {
        match timestamps {
            None => {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("forward"),
                    timestamp_writes: None,
                });
                for n in &self.graph.nodes {
                    pass.set_pipeline(&n.pipeline);
                    pass.set_bind_group(0, &n.bind_group, &[]);
                    let [x, y, z] = n.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
            }
            Some(qs) => {
                for (i, n) in self.graph.nodes.iter().enumerate() {
                    let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some(&n.info.label),
                        timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                            query_set: qs,
                            beginning_of_pass_write_index: Some(2 * i as u32),
                            end_of_pass_write_index: Some(2 * i as u32 + 1),
                        }),
                    });
                    pass.set_pipeline(&n.pipeline);
                    pass.set_bind_group(0, &n.bind_group, &[]);
                    let [x, y, z] = n.workgroups;
                    pass.dispatch_workgroups(x, y, z);
                }
            }
        }
    }

    /// Records node `i` alone in its own pass: the profiler's host-timed fallback submits nodes
    /// one by one on adapters without timestamp queries. Out-of-range `i` records nothing.
    pub fn encode_node(&self, enc: &mut wgpu::CommandEncoder, i: usize) {
        let Some(n) = self.graph.nodes.get(i) else {
            return;
        };
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(&n.info.label),
            timestamp_writes: None,
        });
        pass.set_pipeline(&n.pipeline);
        pass.set_bind_group(0, &n.bind_group, &[]);
        let [x, y, z] = n.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }

    pub fn encode_readback(&self, enc: &mut wgpu::CommandEncoder) {
        for (_, buf, off, size) in &self.graph.outputs {
            enc.copy_buffer_to_buffer(buf, 0, &self.graph.staging, *off, *size);
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn finish(&self, gpu: &Gpu) -> Result<Outputs> {
        pollster::block_on(self.finish_async(gpu))
    }

    /// Waits for the submitted run and reads its outputs back.
    pub async fn finish_async(&self, gpu: &Gpu) -> Result<Outputs> {
        if self.graph.outputs.is_empty() {
            gpu.wait()?;
            return Ok(Outputs { data: vec![] });
        }
        let all = gpu.map_read_async(&self.graph.staging).await?;
        let data = self
            .graph
            .outputs
            .iter()
            .map(|(t, _, off, size)| (*t, all[*off as usize..(*off + *size) as usize].to_vec()))
            .collect();
        Ok(Outputs { data })
    }

    pub fn count_profiled_run(&self, written: u64) {
        let mut s = self.graph.stats.lock().unwrap();
        s.runs += 1;
        s.submits += 1;
        s.bytes_written_last_run = written;
    }
}
