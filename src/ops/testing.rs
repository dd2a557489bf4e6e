//! Test helpers: run one KernelCall on fresh buffers, seeded random data, error norms.

use super::{DType, KernelCall};
use crate::gpu::Gpu;
use wgpu::util::DeviceExt;

pub enum Buf {
    F32(Vec<f32>),
    /// Stored as packed f16 (values rounded to f16 on upload).
    F16(Vec<f32>),
    U32(Vec<u32>),
    /// `n` f32 NaNs: an output whose every element must be overwritten.
    Poison(usize),
    /// `n` f16 NaNs (an f16 output), read back as f32.
    PoisonF16(usize),
}

/// Seeded uniform values in [-scale, scale], never all zero.
pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut r = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| r.random_range(-scale..scale)).collect()
}

/// Rounds to f16 and back, as an F16 buffer stores it.
pub fn round_f16(v: &[f32]) -> Vec<f32> {
    let mut out = decode_f16(&super::f16_bytes(v));
    out.truncate(v.len());
    out
}

/// Little-endian halves to f32.
fn decode_f16(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

/// ‖out − ref‖ / ‖ref‖, and asserts no NaN (an unwritten poisoned element) is left.
pub fn rel_err(out: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(out.len(), reference.len());
    let mut num = 0.0;
    let mut den = 0.0;
    for (i, (o, r)) in out.iter().zip(reference).enumerate() {
        assert!(
            o.is_finite(),
            "element {i} was not written (or is not finite): {o}"
        );
        num += (*o as f64 - r).powi(2);
        den += r * r;
    }
    (num / den.max(1e-300)).sqrt()
}

/// Uploads `bufs` as bindings 1.., dispatches `call`, and returns every buffer's contents as f32
/// (u32 buffers reinterpret their bits).
pub fn run(gpu: &Gpu, call: &KernelCall, bufs: &[Buf]) -> Vec<Vec<f32>> {
    let dev = &gpu.device;
    let usage =
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
    let buffers: Vec<wgpu::Buffer> = bufs
        .iter()
        .map(|b| {
            let bytes: Vec<u8> = match b {
                Buf::F32(v) => bytemuck::cast_slice(v).to_vec(),
                Buf::F16(v) => super::f16_bytes(v),
                Buf::U32(v) => bytemuck::cast_slice(v).to_vec(),
                Buf::Poison(n) => bytemuck::cast_slice(&vec![f32::NAN; *n]).to_vec(),
                Buf::PoisonF16(n) => crate::ops::f16_bytes(&vec![f32::NAN; *n]),
            };
            dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: None,
                contents: &bytes,
                usage,
            })
        })
        .collect();
    let params = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("params"),
        contents: bytemuck::cast_slice(&call.params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let layout = call.pipeline.get_bind_group_layout(0);
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
    let bg = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &layout,
        entries: &entries,
    });
    let mut enc = dev.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&call.pipeline);
        pass.set_bind_group(0, &bg, &[]);
        let [x, y, z] = call.workgroups;
        pass.dispatch_workgroups(x, y, z);
    }
    gpu.queue.submit([enc.finish()]);
    gpu.wait().unwrap();
    buffers
        .iter()
        .zip(bufs)
        .map(|(b, init)| {
            let bytes = gpu.read_buffer(b, 0, b.size()).unwrap();
            match init {
                Buf::F16(v) => {
                    let mut h = decode_f16(&bytes);
                    h.truncate(v.len());
                    h
                }
                Buf::PoisonF16(n) => {
                    let mut h = decode_f16(&bytes);
                    h.truncate(*n);
                    h
                }
                _ => bytemuck::cast_slice(&bytes).to_vec(),
            }
        })
        .collect()
}

/// The devices a kernel reading `dtype` is tested on: f16 runs both as native `f16` (where the
/// adapter has SHADER_F16) and unpacked from u32 pairs.
pub fn gpus_for(dtype: DType) -> Vec<&'static Gpu> {
    let mut v: Vec<&'static Gpu> = vec![crate::gpu::test_gpu()];
    if dtype == DType::F16 {
        v.push(crate::gpu::test_gpu_packed_f16());
    }
    v
}
