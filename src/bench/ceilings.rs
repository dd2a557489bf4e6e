//! The adapter's measured peaks, cached as JSON per adapter so `profile` can show each kernel
//! against the ceiling that bounds it:
//!
//! - **f32 FMA peak** (and **f16 FMA peak** where the adapter has SHADER_F16): the FMA-throughput
//!   kernel of [`ops::peak`](crate::ops::peak), for compute-bound kernels (matmul, attention);
//! - **streaming read bandwidth**: its vec4 streaming-read kernel over a buffer far larger than
//!   caches, for memory-bound kernels (layer-norm, softmax, embedding, activations).
//!
//! Two reference points that are *not* ceilings are kept beside them, named as what they are: one
//! `copy_buffer_to_buffer` (read + write) and wgformer's own best matmul over a few shapes.
//! Cooperative-matrix throughput ([`Ceilings::coop_gflops`]) is measured where the device has
//! cooperative matrices in use (`--matmul auto|coop`).

use super::kernels;
use crate::gpu::Gpu;
use crate::ops::peak::{CoopFma, Fma, StreamRead, WORKGROUP};
use crate::ops::KernelCall;
use crate::profiler;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The ceilings file format this build writes and reads. Files without a `format` (0) predate
/// the FMA and streaming-read peaks.
pub const FORMAT: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ceilings {
    /// File format ([`FORMAT`]); 0 in files written before it existed.
    #[serde(default)]
    pub format: u32,
    pub adapter: String,
    pub backend: String,
    /// f32 FMA throughput, GFLOP/s (an FMA counts 2): many independent `fma` chains per
    /// invocation, enough invocations to fill the adapter.
    pub f32_fma_gflops: f64,
    /// The same in `vec4<f16>`; `None` without SHADER_F16.
    #[serde(default)]
    pub f16_fma_gflops: Option<f64>,
    /// Cooperative-matrix (f16 in, f32 accumulate) throughput, GFLOP/s; not measured yet.
    #[serde(default)]
    pub coop_gflops: Option<f64>,
    /// Streaming read bandwidth, GB/s: `vec4<f32>` loads over `read_bytes`, every element read
    /// once and summed so no load can be dropped.
    pub read_gbps: f64,
    pub read_bytes: u64,
    /// Not a ceiling: bytes read plus bytes written per second by one `copy_buffer_to_buffer` of
    /// `copy_bytes`, GB/s.
    pub copy_gbps: f64,
    pub copy_bytes: u64,
    /// Not a ceiling: wgformer's own matmul kernel, best GFLOP/s over the shapes tried, and the
    /// shape that reached it.
    pub matmul_gflops: f64,
    pub matmul_shape: String,
    /// "gpu_timestamps" or "host_per_submit".
    pub timing: String,
    /// Seconds since the Unix epoch.
    pub measured_at: u64,
}

/// What bounds a kernel kind, and so which ceiling its rate is compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// Arithmetic: GFLOP/s against an FMA peak.
    Compute,
    /// Memory traffic: GB/s against streaming read bandwidth.
    Bandwidth,
}

/// The bound of a profiler kind (`KernelCall::kind`); `None` for kinds with no ceiling.
pub fn bound(kind: &str) -> Option<Bound> {
    match kind {
        "matmul" | "matmul_coop" | "attention" => Some(Bound::Compute),
        "layer_norm" | "softmax" | "embedding" | "activation" => Some(Bound::Bandwidth),
        _ => None,
    }
}

/// One ceiling as a kernel is compared with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ceiling {
    pub bound: Bound,
    /// "f32 FMA peak", "streaming read bandwidth", ...
    pub name: &'static str,
    /// Short form for tables.
    pub short: &'static str,
    /// GFLOP/s for [`Bound::Compute`], GB/s for [`Bound::Bandwidth`].
    pub value: f64,
}

impl Ceiling {
    /// `rate` (in this ceiling's unit) as a percentage of it.
    pub fn percent(&self, rate: f64) -> Option<f64> {
        (self.value > 0.0).then(|| 100.0 * rate / self.value)
    }
}

/// `$XDG_CACHE_HOME/wgformer`, else `$HOME/.cache/wgformer`.
pub fn cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgformer"))
}

/// Where this adapter's ceilings are cached (adapter name reduced to a safe file name).
pub fn default_path(gpu: &Gpu) -> Option<PathBuf> {
    let name: String = format!("{}-{:?}", gpu.info.name, gpu.info.backend)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Some(cache_dir()?.join(format!("ceilings-{name}.json")))
}

impl Ceilings {
    /// Reads a ceilings file. A file from an older wgformer (no FMA peak or streaming read
    /// bandwidth) or anything else unreadable is an error that says to rerun `bench ceilings`.
    pub fn load(path: &Path) -> Result<Ceilings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading ceilings {}", path.display()), e))?;
        let rerun = "rerun `wgformer bench ceilings`";
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::Input(format!(
                "{} is not a ceilings file ({e}); {rerun}",
                path.display()
            ))
        })?;
        let format = value.get("format").and_then(|f| f.as_u64());
        match format {
            Some(f) if f == FORMAT as u64 => {}
            None | Some(0) if value.get("matmul_gflops").is_some() => {
                return Err(Error::Input(format!(
                    "{} holds ceilings from an older wgformer (its own best matmul and a buffer copy, no f32 FMA peak or streaming read bandwidth); {rerun}",
                    path.display()
                )))
            }
            Some(f) => {
                return Err(Error::Input(format!(
                    "{} is a ceilings file of format {f}, this wgformer reads format {FORMAT}; {rerun}",
                    path.display()
                )))
            }
            None => {
                return Err(Error::Input(format!(
                    "{} is not a ceilings file (no `format`); {rerun}",
                    path.display()
                )))
            }
        }
        serde_json::from_value(value).map_err(|e| {
            Error::Input(format!(
                "{} is not a ceilings file ({e}); {rerun}",
                path.display()
            ))
        })
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| Error::Input(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// The ceiling a kernel of profiler kind `kind` is compared with: the cooperative-matrix
    /// matmul against the cooperative-matrix peak, other compute kinds against the f32 FMA peak
    /// (they compute in f32), memory-bound kinds against streaming read bandwidth.
    pub fn for_kind(&self, kind: &str) -> Option<Ceiling> {
        if let ("matmul_coop", Some(value)) = (kind, self.coop_gflops) {
            return Some(Ceiling {
                bound: Bound::Compute,
                name: "cooperative-matrix peak",
                short: "coop",
                value,
            });
        }
        Some(match bound(kind)? {
            Bound::Compute => Ceiling {
                bound: Bound::Compute,
                name: "f32 FMA peak",
                short: "f32 FMA",
                value: self.f32_fma_gflops,
            },
            Bound::Bandwidth => Ceiling {
                bound: Bound::Bandwidth,
                name: "streaming read bandwidth",
                short: "read BW",
                value: self.read_gbps,
            },
        })
    }

    /// Measures this adapter. `quick` uses smaller buffers, fewer matmul shapes and runs (for
    /// `profile` when nothing is cached). `progress` is told each step.
    pub fn measure(
        gpu: &Arc<Gpu>,
        quick: bool,
        mut progress: impl FnMut(&str),
    ) -> Result<Ceilings> {
        let cpu = gpu.is_cpu();
        let runs = if quick { 2 } else { 3 };
        progress("f32 FMA peak");
        let f32_fma = fma_peak(gpu, false, quick, runs)?;
        let f16_fma = if gpu.has_f16() {
            progress("f16 FMA peak");
            Some(fma_peak(gpu, true, quick, runs)?.gflops)
        } else {
            None
        };
        let coop = if gpu.coop().is_some() {
            progress("cooperative-matrix peak");
            Some(coop_peak(gpu, quick, runs)?)
        } else {
            None
        };
        progress("streaming read bandwidth");
        let read_bytes = match (quick, cpu) {
            (true, true) => 64 << 20,
            (false, true) => 128 << 20,
            (true, false) => 256 << 20,
            (false, false) => 1 << 30,
        };
        let (read_gbps, read_bytes) = read_bandwidth(gpu, read_bytes, runs)?;
        progress("buffer copy");
        let (copy_gbps, copy_bytes) =
            copy_bandwidth(gpu, if cpu || quick { 64 << 20 } else { 512 << 20 }, runs)?;

        // Software adapters take seconds per large matmul; their best shows at moderate sizes.
        // Squares plus an encoder FFN shape (tokens × 4·hidden × hidden), which some adapters
        // run faster than any square.
        let shapes: &[(usize, usize, usize)] = match (quick, cpu) {
            (true, true) => &[(256, 256, 256), (512, 512, 512), (128, 1536, 384)],
            (true, false) => &[(1024, 1024, 1024), (2048, 2048, 2048), (4096, 3072, 768)],
            (false, true) => &[
                (256, 256, 256),
                (512, 512, 512),
                (1024, 1024, 1024),
                (128, 1536, 384),
            ],
            (false, false) => &[
                (512, 512, 512),
                (1024, 1024, 1024),
                (2048, 2048, 2048),
                (4096, 4096, 4096),
                (4096, 3072, 768),
            ],
        };
        let mut best = (0.0, String::new());
        for &(m, n, k) in shapes {
            for f16 in [false, true] {
                progress(&format!(
                    "wgformer matmul {m}x{n}x{k} W {}",
                    if f16 { "f16" } else { "f32" }
                ));
                let r = kernels::bench_matmul(gpu, m, n, k, f16, runs)?;
                if r.gflops > best.0 {
                    best = (r.gflops, r.name.clone());
                }
            }
        }
        Ok(Ceilings {
            format: FORMAT,
            adapter: gpu.info.name.clone(),
            backend: format!("{:?}", gpu.info.backend).to_lowercase(),
            f32_fma_gflops: f32_fma.gflops,
            f16_fma_gflops: f16_fma,
            coop_gflops: coop,
            read_gbps,
            read_bytes,
            copy_gbps,
            copy_bytes,
            matmul_gflops: best.0,
            matmul_shape: best.1,
            timing: if gpu.has_timestamps() {
                "gpu_timestamps".into()
            } else {
                "host_per_submit".into()
            },
            measured_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
    }
}

fn storage(gpu: &Gpu, label: &str, size: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    })
}

/// A bind group of `call`'s parameters (binding 0) and `buffers` (bindings 1..).
fn bind(gpu: &Gpu, call: &KernelCall, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
    use wgpu::util::DeviceExt;
    let params = gpu
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("peak.params"),
            contents: bytemuck::cast_slice(&call.params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
    let mut entries = vec![wgpu::BindGroupEntry {
        binding: 0,
        resource: params.as_entire_binding(),
    }];
    for (i, b) in buffers.iter().enumerate() {
        entries.push(wgpu::BindGroupEntry {
            binding: i as u32 + 1,
            resource: b.as_entire_binding(),
        });
    }
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(call.kind),
        layout: &call.pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// GPU time of one dispatch of `call`, µs.
fn time_call(gpu: &Gpu, call: &KernelCall, bg: &wgpu::BindGroup) -> Result<f64> {
    let us = profiler::time_commands(gpu, |enc| {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(call.kind),
            timestamp_writes: None,
        });
        pass.set_pipeline(&call.pipeline);
        pass.set_bind_group(0, bg, &[]);
        let [x, y, z] = call.workgroups;
        pass.dispatch_workgroups(x, y, z);
    })?;
    gpu.check()?;
    Ok(us)
}

/// How a peak kernel's loop count is grown until one dispatch takes about `target_us`.
struct Calibration {
    first: usize,
    max: usize,
    rounds: usize,
    target_us: f64,
}

impl Calibration {
    /// Grows the loop count (the first dispatch also pays for compiling and first use), then
    /// returns it with the best time of the calibrated dispatch over `runs` more, µs.
    fn best(
        &self,
        gpu: &Gpu,
        out: &wgpu::Buffer,
        runs: usize,
        call: impl Fn(usize) -> Result<KernelCall>,
    ) -> Result<(usize, f64)> {
        let (mut loops, mut us) = (self.first, 0.0);
        for _ in 0..self.rounds {
            let c = call(loops)?;
            us = time_call(gpu, &c, &bind(gpu, &c, &[out]))?;
            if us >= 0.5 * self.target_us || loops >= self.max {
                break;
            }
            let grow = (self.target_us / us.max(1.0)).ceil() as usize;
            loops = (loops * grow.clamp(2, 64)).min(self.max);
        }
        let c = call(loops)?;
        let bg = bind(gpu, &c, &[out]);
        let mut best = us;
        for _ in 0..runs.max(1) {
            best = best.min(time_call(gpu, &c, &bg)?);
        }
        Ok((loops, best))
    }
}

/// One FMA-peak measurement.
#[derive(Clone, Debug)]
pub struct FmaPeak {
    pub gflops: f64,
    /// The dispatch timed (its size after calibration).
    pub kernel: Fma,
    pub best_us: f64,
}

/// The f32 (or, with `f16`, f16) FMA peak: the FMA kernel sized so one dispatch takes a few ms
/// (tens on software adapters), best of `runs` after a warm-up. Its results are then checked
/// against the closed form on a sample of invocations: a wrong answer is an error, not a rate.
pub fn fma_peak(gpu: &Gpu, f16: bool, quick: bool, runs: usize) -> Result<FmaPeak> {
    let (groups, target_us) = match (gpu.is_cpu(), quick) {
        (true, true) => (64, 20_000.0),
        (true, false) => (64, 50_000.0),
        (false, true) => (32_768, 2_000.0),
        (false, false) => (32_768, 5_000.0),
    };
    fma_peak_sized(gpu, f16, groups * WORKGROUP, target_us, runs)
}

/// [`fma_peak`] with `invocations` and a target time per dispatch, µs.
pub fn fma_peak_sized(
    gpu: &Gpu,
    f16: bool,
    invocations: usize,
    target_us: f64,
    runs: usize,
) -> Result<FmaPeak> {
    let out = storage(gpu, "peak.fma.out", 4 * invocations as u64);
    let kernel = |loops: usize| Fma {
        invocations,
        loops,
        mul: 1.0,
        add: 1.0 / 64.0,
        f16,
    };
    // The cap keeps f32 chains exact (< 2^18).
    const MAX_LOOPS: usize = 1 << 20;
    let calibration = Calibration {
        first: 8,
        max: MAX_LOOPS,
        rounds: 5,
        target_us,
    };
    let (loops, best) = calibration.best(gpu, &out, runs, |l| kernel(l).call(gpu))?;
    let k = kernel(loops);
    // Check a sample of invocations (the first, the last and about 4096 between).
    let bytes = gpu.read_buffer(&out, 0, out.size())?;
    let got: &[f32] = bytemuck::cast_slice(&bytes);
    let step = (invocations / 4096).max(1);
    for i in (0..invocations).step_by(step).chain([invocations - 1]) {
        let want = k.unit_mul_sum(i);
        if ((got[i] as f64 - want) / want).abs() > 1e-6 {
            return Err(Error::Gpu(format!(
                "the {} FMA peak kernel computed {} for invocation {i} where {want} is right: no FMA peak for {}",
                if f16 { "f16" } else { "f32" },
                got[i],
                gpu.describe()
            )));
        }
    }
    Ok(FmaPeak {
        gflops: profiler::rate(k.flops() as f64, best),
        kernel: k,
        best_us: best,
    })
}

/// Cooperative-matrix GFLOP/s: the register-only multiply-add chains of [`CoopFma`], sized so
/// a dispatch takes a few ms, best of `runs`; every output is checked against the exact value.
pub fn coop_peak(gpu: &Gpu, quick: bool, runs: usize) -> Result<f64> {
    let (groups, target_us) = match (gpu.is_cpu(), quick) {
        (true, true) => (16, 20_000.0),
        (true, false) => (16, 50_000.0),
        (false, true) => (16_384, 2_000.0),
        (false, false) => (16_384, 5_000.0),
    };
    let kernel = |loops: usize| CoopFma {
        workgroups: groups,
        loops,
        x: 0.125,
    };
    let out = storage(gpu, "peak.coop.out", 4 * kernel(1).out_len(gpu) as u64);
    // Results stay exact below 2^24 / (10·F·x²) loops; the cap is far below that.
    const MAX_LOOPS: usize = 1 << 16;
    let calibration = Calibration {
        first: 4,
        max: MAX_LOOPS,
        rounds: 6,
        target_us,
    };
    let (loops, best) = calibration.best(gpu, &out, runs, |l| kernel(l).call(gpu))?;
    let k = kernel(loops);
    let bytes = gpu.read_buffer(&out, 0, out.size())?;
    let got: &[f32] = bytemuck::cast_slice(&bytes);
    let want = k.expected(gpu);
    if let Some((i, v)) = got.iter().enumerate().find(|(_, v)| **v as f64 != want) {
        return Err(Error::Gpu(format!(
            "the cooperative-matrix peak kernel computed {v} at element {i} where {want} is right: no coop peak for {}",
            gpu.describe()
        )));
    }
    Ok(profiler::rate(k.flops(gpu) as f64, best))
}

/// Best streaming-read GB/s (bytes read + the few written) over `runs` after a warm-up, on a
/// buffer of up to `bytes` (capped by the adapter's binding limit) filled on the GPU. Returns the
/// rate and the bytes read. The sums are checked on a sample of invocations.
pub fn read_bandwidth(gpu: &Gpu, bytes: u64, runs: usize) -> Result<(f64, u64)> {
    let cap = gpu
        .limits
        .max_storage_buffer_binding_size
        .min(gpu.limits.max_buffer_size);
    let bytes = bytes.min(cap) & !15;
    if bytes == 0 {
        return Err(Error::Input("no room for a streaming-read buffer".into()));
    }
    let len4 = (bytes / 16) as usize;
    let groups = if gpu.is_cpu() { 64 } else { 8192 };
    let r = StreamRead {
        invocations: (groups * WORKGROUP).min(len4),
        len4,
    };
    let x = storage(gpu, "peak.read.x", bytes);
    let out = storage(gpu, "peak.read.out", 4 * r.invocations as u64);
    let fill = r.fill_call(gpu)?;
    time_call(gpu, &fill, &bind(gpu, &fill, &[&x]))?;
    let call = r.call(gpu)?;
    let bg = bind(gpu, &call, &[&x, &out]);
    time_call(gpu, &call, &bg)?;
    let mut best = f64::INFINITY;
    for _ in 0..runs.max(1) {
        best = best.min(time_call(gpu, &call, &bg)?);
    }
    let got_bytes = gpu.read_buffer(&out, 0, out.size())?;
    let got: &[f32] = bytemuck::cast_slice(&got_bytes);
    let step = (r.invocations / 1024).max(1);
    for i in (0..r.invocations).step_by(step).chain([r.invocations - 1]) {
        let want = r.pattern_sum(i);
        if (got[i] as f64 - want).abs() > 1e-6 * want.abs().max(1.0) {
            return Err(Error::Gpu(format!(
                "the streaming-read kernel summed {} for invocation {i} where {want} is right: no read bandwidth for {}",
                got[i],
                gpu.describe()
            )));
        }
    }
    Ok((profiler::rate(r.bytes() as f64, best), bytes))
}

/// Best (read + write) GB/s of copying `bytes` between two buffers, over `runs` tries. Not a
/// ceiling: a copy engine's or driver's path, reported as what it is.
pub fn copy_bandwidth(gpu: &Gpu, bytes: u64, runs: usize) -> Result<(f64, u64)> {
    let bytes = bytes.min(gpu.limits.max_buffer_size / 2) & !3;
    let mk = |label, usage| {
        gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let src = mk(
        "copy.src",
        wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    );
    let dst = mk("copy.dst", wgpu::BufferUsages::COPY_DST);
    gpu.check()?;
    let mut best = f64::INFINITY;
    // The first copy pays for first touch of the memory: not counted.
    for i in 0..runs.max(1) + 1 {
        let us = profiler::time_commands(gpu, |enc| {
            enc.copy_buffer_to_buffer(&src, 0, &dst, 0, bytes)
        })?;
        if i > 0 {
            best = best.min(us);
        }
    }
    Ok((profiler::rate(2.0 * bytes as f64, best), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_ceiling_that_bounds_them() {
        let c = Ceilings {
            format: FORMAT,
            adapter: "a".into(),
            backend: "vulkan".into(),
            f32_fma_gflops: 100.0,
            f16_fma_gflops: Some(200.0),
            coop_gflops: None,
            read_gbps: 10.0,
            read_bytes: 1 << 20,
            copy_gbps: 30.0,
            copy_bytes: 1 << 20,
            matmul_gflops: 50.0,
            matmul_shape: "m".into(),
            timing: "gpu_timestamps".into(),
            measured_at: 0,
        };
        for kind in ["matmul", "attention"] {
            let k = c.for_kind(kind).unwrap();
            assert_eq!((k.bound, k.value), (Bound::Compute, 100.0), "{kind}");
        }
        for kind in ["layer_norm", "softmax", "embedding", "activation"] {
            let k = c.for_kind(kind).unwrap();
            assert_eq!((k.bound, k.value), (Bound::Bandwidth, 10.0), "{kind}");
        }
        assert!(c.for_kind("fill").is_none());
        assert_eq!(c.for_kind("matmul").unwrap().percent(25.0), Some(25.0));
    }
}
