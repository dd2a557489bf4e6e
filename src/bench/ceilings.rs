//! The adapter's own measured peaks — best matmul rate and buffer copy bandwidth — cached as JSON
//! per adapter so `profile` can show each kernel as a percentage of what this adapter reaches.

use super::kernels;
use crate::gpu::Gpu;
use crate::profiler;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ceilings {
    pub adapter: String,
    pub backend: String,
    /// Best matmul GFLOP/s over the sizes tried, and the shape that reached it.
    pub matmul_gflops: f64,
    pub matmul_shape: String,
    /// Bytes read plus bytes written per second by one large `copy_buffer_to_buffer`, GB/s
    /// (the same convention as the kernels' byte counts: each element read once, written once).
    pub copy_gbps: f64,
    pub copy_bytes: u64,
    /// "gpu_timestamps" or "host_per_submit".
    pub timing: String,
    /// Seconds since the Unix epoch.
    pub measured_at: u64,
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
    pub fn load(path: &Path) -> Result<Ceilings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading ceilings {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Input(format!(
                "{} is not a ceilings file ({e}); rerun `wgformer bench ceilings`",
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

    /// Measures this adapter. `quick` tries fewer sizes and runs (for `profile` when nothing is
    /// cached). `progress` is told each step.
    pub fn measure(
        gpu: &Arc<Gpu>,
        quick: bool,
        mut progress: impl FnMut(&str),
    ) -> Result<Ceilings> {
        // Software adapters take seconds per large matmul; their peak shows at moderate sizes.
        let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
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
        let runs = if quick { 2 } else { 3 };
        let mut best = (0.0, String::new());
        for &(m, n, k) in shapes {
            for f16 in [false, true] {
                progress(&format!(
                    "matmul {m}x{n}x{k} W {}",
                    if f16 { "f16" } else { "f32" }
                ));
                let r = kernels::bench_matmul(gpu, m, n, k, f16, runs)?;
                if r.gflops > best.0 {
                    best = (r.gflops, r.name.clone());
                }
            }
        }
        progress("buffer copy");
        let (copy_gbps, copy_bytes) =
            copy_bandwidth(gpu, if cpu || quick { 64 << 20 } else { 512 << 20 }, runs)?;
        Ok(Ceilings {
            adapter: gpu.info.name.clone(),
            backend: format!("{:?}", gpu.info.backend).to_lowercase(),
            matmul_gflops: best.0,
            matmul_shape: best.1,
            copy_gbps,
            copy_bytes,
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

/// Best (read + write) GB/s of copying `bytes` between two buffers, over `runs` tries.
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
