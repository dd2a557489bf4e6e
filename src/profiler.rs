//! Per-node GPU timing of a graph run.
//!
//! With TIMESTAMP_QUERY, [`GraphRun::encode`] gives every node its own compute pass whose begin and
//! end ticks land in a query set; the set is resolved into a QUERY_RESOLVE buffer and copied to a
//! MAP_READ buffer in the same submit. Each run uses the next slot of a small ring of those
//! buffers and its readback is mapped asynchronously, so the host reads run *i − 1*'s ticks while
//! the GPU is busy with run *i* instead of waiting for them.
//!
//! Without TIMESTAMP_QUERY (WebGL, some drivers) the profiler says so and falls back to host
//! timing: every node is submitted alone and waited for, so each time includes the submit and
//! wait overhead and the whole forward runs slower than it would in one submit.

use crate::gpu::Gpu;
use crate::graph::{GraphRun, NodeInfo, TensorId};
use crate::{Error, Result};
use serde::Serialize;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Slots in the readback ring: two are enough to read one run behind.
const RING: usize = 2;

/// Where a profile's times come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// GPU timestamp queries around each node's pass.
    GpuTimestamps,
    /// Host clock around one submit + wait per node (no TIMESTAMP_QUERY).
    HostPerSubmit,
}

/// One node of one (or the mean of several) profiled runs.
#[derive(Clone, Debug, Serialize)]
pub struct NodeTime {
    pub label: String,
    pub kind: String,
    pub flops: u64,
    pub bytes: u64,
    /// Start relative to the forward's first node, µs.
    pub start_us: f64,
    /// Duration, µs.
    pub us: f64,
}

/// The profile of one forward (or the mean over several, see [`ForwardProfile::mean`]).
#[derive(Clone, Debug, Serialize)]
pub struct ForwardProfile {
    pub timing: Timing,
    pub nodes: Vec<NodeTime>,
    /// First node's begin to last node's end, µs (includes gaps between passes).
    pub gpu_span_us: f64,
    /// Sum of the node durations, µs; the per-kind totals add up to exactly this.
    pub gpu_sum_us: f64,
    /// Host time from writing the inputs to having the outputs back, µs.
    pub wall_us: f64,
    /// Host time to write the inputs, record every node and submit, µs: the part of a replay's
    /// host cost that is ours and wgpu's rather than the wait for the GPU (profiled runs record
    /// a pass per node for its timestamps, so this is an upper bound of a plain run's).
    pub record_us: f64,
}

/// Totals of one kernel kind within a forward.
#[derive(Clone, Debug, Serialize)]
pub struct KindTotal {
    pub kind: String,
    pub calls: usize,
    pub total_us: f64,
    pub flops: u64,
    pub bytes: u64,
}

impl KindTotal {
    pub fn mean_us(&self) -> f64 {
        self.total_us / self.calls.max(1) as f64
    }
    /// GFLOP/s over this kind's time (0 when it took no measurable time).
    pub fn gflops(&self) -> f64 {
        rate(self.flops as f64, self.total_us)
    }
    /// GB/s of counted global-memory traffic.
    pub fn gbytes(&self) -> f64 {
        rate(self.bytes as f64, self.total_us)
    }
}

/// `amount` per µs scaled to "G per second" (1e3·amount/µs = amount/ns).
pub fn rate(amount: f64, us: f64) -> f64 {
    if us > 0.0 {
        amount / (us * 1e3)
    } else {
        0.0
    }
}

impl ForwardProfile {
    /// Per-kind totals, largest first. Their `total_us` sum to [`gpu_sum_us`](Self::gpu_sum_us).
    pub fn by_kind(&self) -> Vec<KindTotal> {
        let mut out: Vec<KindTotal> = vec![];
        for n in &self.nodes {
            let i = match out.iter().position(|k| k.kind == n.kind) {
                Some(i) => i,
                None => {
                    out.push(KindTotal {
                        kind: n.kind.clone(),
                        calls: 0,
                        total_us: 0.0,
                        flops: 0,
                        bytes: 0,
                    });
                    out.len() - 1
                }
            };
            let k = &mut out[i];
            k.calls += 1;
            k.total_us += n.us;
            k.flops += n.flops;
            k.bytes += n.bytes;
        }
        out.sort_by(|a, b| b.total_us.total_cmp(&a.total_us));
        out
    }

    /// Node-wise mean of runs of the same graph.
    pub fn mean(runs: &[ForwardProfile]) -> Result<ForwardProfile> {
        let first = runs
            .first()
            .ok_or_else(|| Error::Input("no profiled runs to average".into()))?;
        if runs.iter().any(|r| r.nodes.len() != first.nodes.len()) {
            return Err(Error::Input(
                "cannot average profiles of different graphs (node counts differ)".into(),
            ));
        }
        let n = runs.len() as f64;
        let avg = |f: &dyn Fn(&ForwardProfile) -> f64| runs.iter().map(f).sum::<f64>() / n;
        let nodes = first
            .nodes
            .iter()
            .enumerate()
            .map(|(i, node)| NodeTime {
                start_us: avg(&|r| r.nodes[i].start_us),
                us: avg(&|r| r.nodes[i].us),
                ..node.clone()
            })
            .collect::<Vec<_>>();
        Ok(ForwardProfile {
            timing: first.timing,
            // Recomputed from the averaged nodes so per-kind sums still add up exactly.
            gpu_sum_us: nodes.iter().map(|n| n.us).sum(),
            nodes,
            gpu_span_us: avg(&|r| r.gpu_span_us),
            wall_us: avg(&|r| r.wall_us),
            record_us: avg(&|r| r.record_us),
        })
    }

    /// A Chrome trace (`chrome://tracing`, Perfetto): one complete ("X") event per node.
    pub fn chrome_trace(&self) -> serde_json::Value {
        let events: Vec<serde_json::Value> = self
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.label,
                    "cat": n.kind,
                    "ph": "X",
                    "ts": n.start_us,
                    "dur": n.us,
                    "pid": 1,
                    "tid": 1,
                    "args": { "flops": n.flops, "bytes": n.bytes },
                })
            })
            .collect();
        serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ns" })
    }
}

/// The outcome of a buffer map, filled in by its callback, and a signal that it was.
type MapState = Arc<(
    Mutex<Option<std::result::Result<(), wgpu::BufferAsyncError>>>,
    Condvar,
)>;

/// How long to wait for a map callback after its submission is known to be done.
const CALLBACK_WAIT: Duration = Duration::from_secs(10);

struct Pending {
    submission: wgpu::SubmissionIndex,
    mapped: MapState,
    wall_us: f64,
    record_us: f64,
}

struct Slot {
    query: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
    pending: Option<Pending>,
}

/// Times every node of one graph, run after run.
pub struct Profiler {
    gpu: Arc<Gpu>,
    nodes: Vec<NodeInfo>,
    slots: Vec<Slot>,
    next: usize,
    /// Nanoseconds per timestamp tick.
    period_ns: f64,
}

impl Profiler {
    /// A profiler for `graph`, using timestamp queries where the adapter has them.
    pub fn new(gpu: &Arc<Gpu>, graph: &GraphRun) -> Result<Profiler> {
        if gpu.has_timestamps() {
            Self::with_timestamps(gpu, graph)
        } else {
            Ok(Self::host_timed(gpu, graph))
        }
    }

    /// Host timing per submit even where timestamps exist (to compare, and to test the fallback).
    pub fn host_timed(gpu: &Arc<Gpu>, graph: &GraphRun) -> Profiler {
        Profiler {
            gpu: gpu.clone(),
            nodes: graph.nodes().cloned().collect(),
            slots: vec![],
            next: 0,
            period_ns: 0.0,
        }
    }

    fn with_timestamps(gpu: &Arc<Gpu>, graph: &GraphRun) -> Result<Profiler> {
        let nodes: Vec<NodeInfo> = graph.nodes().cloned().collect();
        if nodes.is_empty() {
            return Err(Error::Graph("the graph has no nodes to profile".into()));
        }
        let count = 2 * nodes.len() as u64;
        if count > wgpu::QUERY_SET_MAX_QUERIES as u64 {
            return Err(Error::Graph(format!(
                "the graph has {} nodes; timestamping each needs {count} queries, more than wgpu's {} per set: profile a smaller batch",
                nodes.len(),
                wgpu::QUERY_SET_MAX_QUERIES
            )));
        }
        let size = count * wgpu::QUERY_SIZE as u64;
        let dev = &gpu.device;
        let slots = (0..RING)
            .map(|i| Slot {
                query: dev.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some(&format!("profiler.queries{i}")),
                    ty: wgpu::QueryType::Timestamp,
                    count: count as u32,
                }),
                resolve: dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profiler.resolve"),
                    size,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                }),
                readback: dev.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("profiler.readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                pending: None,
            })
            .collect();
        gpu.check()?;
        Ok(Profiler {
            period_ns: gpu.queue.get_timestamp_period() as f64,
            gpu: gpu.clone(),
            nodes,
            slots,
            next: 0,
        })
    }

    pub fn timing(&self) -> Timing {
        if self.slots.is_empty() {
            Timing::HostPerSubmit
        } else {
            Timing::GpuTimestamps
        }
    }

    /// What a reader must know about the times, if anything (the host-timed fallback).
    pub fn note(&self) -> Option<String> {
        match self.timing() {
            Timing::GpuTimestamps => None,
            Timing::HostPerSubmit => Some(format!(
                "{} has no TIMESTAMP_QUERY{}: each node is timed on the host around its own submit + wait, so node times include that overhead",
                self.gpu.describe(),
                if self.gpu.has_timestamps() { " in use" } else { "" }
            )),
        }
    }

    fn check_graph(&self, graph: &GraphRun) -> Result<()> {
        let same = graph.node_count() == self.nodes.len()
            && graph
                .nodes()
                .zip(&self.nodes)
                .all(|(a, b)| a.label == b.label);
        if same {
            Ok(())
        } else {
            Err(Error::Graph(
                "this profiler was made for another graph; make one per graph".into(),
            ))
        }
    }

    /// Runs `graph` once. With timestamps, returns the profile of the previous run (read one
    /// behind, so its readback never stalls this one); call [`finish`](Self::finish) for the
    /// last. Host-timed, returns this run's profile.
    pub fn run(
        &mut self,
        graph: &GraphRun,
        inputs: &[(TensorId, &[u8])],
    ) -> Result<Option<ForwardProfile>> {
        self.check_graph(graph)?;
        if self.slots.is_empty() {
            return self.run_host(graph, inputs).map(Some);
        }
        let gpu = self.gpu.clone();
        let i = self.next;
        self.next = (self.next + 1) % self.slots.len();
        // A slot still pending here means the caller skipped a result; read it now rather than
        // overwrite it (only possible with RING > 2 or if a previous run failed midway).
        let mut earlier = match self.slots[i].pending.is_some() {
            true => Some(self.collect(i)?),
            false => None,
        };
        let start = Instant::now();
        let written = graph.write_inputs(&gpu, inputs)?;
        let n = 2 * self.nodes.len() as u32;
        let slot = &self.slots[i];
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("profiled forward"),
            });
        graph.encode(&mut enc, Some(&slot.query));
        enc.resolve_query_set(&slot.query, 0..n, &slot.resolve, 0);
        enc.copy_buffer_to_buffer(&slot.resolve, 0, &slot.readback, 0, slot.resolve.size());
        graph.encode_readback(&mut enc);
        let submission = gpu.queue.submit([enc.finish()]);
        let record_us = start.elapsed().as_secs_f64() * 1e6;
        let mapped: MapState = Arc::default();
        let sink = mapped.clone();
        slot.readback
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                *sink.0.lock().unwrap() = Some(r);
                sink.1.notify_all();
            });
        // The previous run's ticks were mapped by the wait that ended it: read them while the
        // GPU works on this run.
        let prev = (i + self.slots.len() - 1) % self.slots.len();
        if earlier.is_none() && self.slots[prev].pending.is_some() {
            earlier = Some(self.collect(prev)?);
        }
        graph.finish(&gpu)?;
        let wall_us = start.elapsed().as_secs_f64() * 1e6;
        graph.count_profiled_run(written);
        self.slots[i].pending = Some(Pending {
            submission,
            mapped,
            wall_us,
            record_us,
        });
        Ok(earlier)
    }

    /// Waits for every run not yet returned and returns their profiles, oldest first.
    pub fn finish(&mut self) -> Result<Vec<ForwardProfile>> {
        let k = self.slots.len();
        let mut out = vec![];
        for j in 0..k {
            // Oldest first: the slot `next` points at was written longest ago.
            let i = (self.next + j) % k;
            if self.slots[i].pending.is_some() {
                out.push(self.collect(i)?);
            }
        }
        Ok(out)
    }

    /// Reads slot `i`'s ticks (waiting for its submission if the map is not done yet).
    fn collect(&mut self, i: usize) -> Result<ForwardProfile> {
        let p = self.slots[i]
            .pending
            .take()
            .ok_or_else(|| Error::Gpu("profiler slot has no pending run".into()))?;
        if p.mapped.0.lock().unwrap().is_none() {
            self.gpu
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(p.submission),
                    timeout: None,
                })
                .map_err(|e| Error::Gpu(format!("waiting for profiled run failed: {e}")))?;
        }
        self.gpu.check()?;
        // The submission is done, but another thread polling the same device may have taken the
        // callback and not run it yet: wait for it rather than read an empty state.
        let (mut guard, _) = p
            .mapped
            .1
            .wait_timeout_while(p.mapped.0.lock().unwrap(), CALLBACK_WAIT, |s| s.is_none())
            .unwrap();
        let state = guard.take();
        drop(guard);
        match state {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(Error::Gpu(format!("could not read timestamps: {e}"))),
            None => return Err(Error::Gpu("timestamp readback never completed".into())),
        }
        let buf = &self.slots[i].readback;
        let ticks: Vec<u64> = {
            let view = buf
                .slice(..)
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("could not read timestamps: {e}")))?;
            bytemuck::pod_collect_to_vec(&view)
        };
        buf.unmap();
        Ok(self.profile_from_ticks(&ticks, p.wall_us, p.record_us))
    }

    fn profile_from_ticks(&self, ticks: &[u64], wall_us: f64, record_us: f64) -> ForwardProfile {
        let us = |t: u64| t as f64 * self.period_ns / 1e3;
        let first = ticks.chunks(2).map(|c| c[0]).min().unwrap_or(0);
        let last = ticks.chunks(2).map(|c| c[1]).max().unwrap_or(first);
        let nodes: Vec<NodeTime> = self
            .nodes
            .iter()
            .zip(ticks.chunks(2))
            .map(|(info, c)| NodeTime {
                label: info.label.clone(),
                kind: info.kind.to_string(),
                flops: info.flops,
                bytes: info.bytes,
                start_us: us(c[0].saturating_sub(first)),
                // Some drivers write end < begin for an empty or reordered pass: count it as 0.
                us: us(c[1].saturating_sub(c[0])),
            })
            .collect();
        ForwardProfile {
            timing: Timing::GpuTimestamps,
            gpu_sum_us: nodes.iter().map(|n| n.us).sum(),
            gpu_span_us: us(last.saturating_sub(first)),
            nodes,
            wall_us,
            record_us,
        }
    }

    fn run_host(&self, graph: &GraphRun, inputs: &[(TensorId, &[u8])]) -> Result<ForwardProfile> {
        let gpu = &self.gpu;
        let start = Instant::now();
        let written = graph.write_inputs(gpu, inputs)?;
        let mut record = start.elapsed();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut first: Option<Instant> = None;
        for (i, info) in self.nodes.iter().enumerate() {
            let r0 = Instant::now();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            graph.encode_node(&mut enc, i);
            let t = Instant::now();
            let t0 = *first.get_or_insert(t);
            gpu.queue.submit([enc.finish()]);
            record += r0.elapsed();
            gpu.wait()?;
            nodes.push(NodeTime {
                label: info.label.clone(),
                kind: info.kind.to_string(),
                flops: info.flops,
                bytes: info.bytes,
                start_us: (t - t0).as_secs_f64() * 1e6,
                us: t.elapsed().as_secs_f64() * 1e6,
            });
        }
        let span = first.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e6);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        graph.encode_readback(&mut enc);
        gpu.queue.submit([enc.finish()]);
        graph.finish(gpu)?;
        graph.count_profiled_run(written);
        Ok(ForwardProfile {
            timing: Timing::HostPerSubmit,
            gpu_sum_us: nodes.iter().map(|n| n.us).sum(),
            gpu_span_us: span,
            nodes,
            wall_us: start.elapsed().as_secs_f64() * 1e6,
            record_us: record.as_secs_f64() * 1e6,
        })
    }
}

/// Runs `graph` `warmup + runs` times and returns the `runs` profiles after the warm-up (the
/// first run pays for pipeline and buffer first use).
pub fn profile_graph(
    profiler: &mut Profiler,
    graph: &GraphRun,
    inputs: &[(TensorId, &[u8])],
    warmup: usize,
    runs: usize,
) -> Result<Vec<ForwardProfile>> {
    if runs == 0 {
        return Err(Error::Input("--runs must be at least 1".into()));
    }
    let mut all = vec![];
    for _ in 0..warmup + runs {
        all.extend(profiler.run(graph, inputs)?);
    }
    all.extend(profiler.finish()?);
    Ok(all.split_off(warmup.min(all.len())))
}

/// GPU time of whatever `record` encodes, µs: bracketed by two empty passes that write
/// timestamps where the adapter has them, else host time around submit + wait.
pub fn time_commands(gpu: &Gpu, record: impl Fn(&mut wgpu::CommandEncoder)) -> Result<f64> {
    let dev = &gpu.device;
    let mut enc = dev.create_command_encoder(&Default::default());
    if !gpu.has_timestamps() {
        record(&mut enc);
        let t = Instant::now();
        gpu.queue.submit([enc.finish()]);
        gpu.wait()?;
        return Ok(t.elapsed().as_secs_f64() * 1e6);
    }
    let qs = dev.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("time_commands"),
        ty: wgpu::QueryType::Timestamp,
        count: 2,
    });
    let size = 2 * wgpu::QUERY_SIZE as u64;
    let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("time_commands.resolve"),
        size,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let readback = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("time_commands.readback"),
        size,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mark = |enc: &mut wgpu::CommandEncoder, index: u32| {
        // An empty pass is the portable way to write a timestamp between commands
        // (TIMESTAMP_QUERY_INSIDE_ENCODERS is rarer than TIMESTAMP_QUERY).
        enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("timestamp"),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &qs,
                beginning_of_pass_write_index: Some(index),
                end_of_pass_write_index: None,
            }),
        });
    };
    mark(&mut enc, 0);
    record(&mut enc);
    mark(&mut enc, 1);
    enc.resolve_query_set(&qs, 0..2, &resolve, 0);
    enc.copy_buffer_to_buffer(&resolve, 0, &readback, 0, size);
    gpu.queue.submit([enc.finish()]);
    let bytes = gpu.map_read(&readback)?;
    let t: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
    let period = gpu.queue.get_timestamp_period() as f64;
    Ok(t[1].saturating_sub(t[0]) as f64 * period / 1e3)
}
