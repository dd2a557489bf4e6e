//! One Rust wrapper per WGSL kernel family. Each wrapper turns shapes into a [`KernelCall`]
//! (pipeline variant, uniform parameters, dispatch size, counted FLOPs and bytes) and holds the
//! CPU f64 reference its tests compare against. Nothing here allocates buffers: the graph does.

pub mod activation;
pub mod attention;
pub mod embedding;
pub mod glu;
pub mod layer_norm;
pub mod matmul;
pub mod peak;
pub mod rel_gather;
pub mod rope;
pub mod softmax;

#[cfg(test)]
pub(crate) mod testing;

use crate::gpu::Gpu;
use std::sync::Arc;

/// Element type of a tensor as it lies in a GPU buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    /// IEEE half; stored two per u32 word (read with `unpack2x16float`, or as `f16` where the
    /// adapter has SHADER_F16). The buffer is padded to a whole word.
    F16,
    U32,
}

impl DType {
    /// Bytes a buffer of `n` elements takes.
    pub fn bytes(self, n: usize) -> u64 {
        match self {
            DType::F32 | DType::U32 => 4 * n as u64,
            DType::F16 => 4 * n.div_ceil(2) as u64,
        }
    }
}

/// `v` rounded to IEEE half (nearest, ties to even) in the [`DType::F16`] buffer layout: two
/// halves per u32 word, little-endian, the last word padded with a zero half. The one place f32
/// values become f16 bytes for the GPU.
pub fn f16_bytes(v: &[f32]) -> Vec<u8> {
    let len = DType::F16.bytes(v.len()) as usize;
    let mut out = Vec::with_capacity(len);
    for x in v {
        out.extend_from_slice(&half::f16::from_f32(*x).to_le_bytes());
    }
    out.resize(len, 0);
    out
}

/// How a kernel reads a tensor of `DType` (the WGSL load function it is compiled with).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Load {
    F32,
    F16Packed,
    F16Native,
}

impl Load {
    pub fn for_dtype(gpu: &Gpu, d: DType) -> Load {
        match d {
            DType::F16 if gpu.has_f16() => Load::F16Native,
            DType::F16 => Load::F16Packed,
            _ => Load::F32,
        }
    }

    /// WGSL declaring storage binding `binding` as array `name` and a function `load_<name>(i)`
    /// returning element `i` as f32.
    pub fn wgsl(self, binding: u32, name: &str) -> String {
        match self {
            Load::F32 => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<f32>;\n\
                 fn load_{name}(i: u32) -> f32 {{ return {name}[i]; }}\n"
            ),
            Load::F16Native => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<f16>;\n\
                 fn load_{name}(i: u32) -> f32 {{ return f32({name}[i]); }}\n"
            ),
            Load::F16Packed => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<u32>;\n\
                 fn load_{name}(i: u32) -> f32 {{\n\
                   let v = unpack2x16float({name}[i >> 1u]);\n\
                   return select(v.x, v.y, (i & 1u) == 1u);\n\
                 }}\n"
            ),
        }
    }

    /// As [`wgsl`](Self::wgsl) for 4-wide reads: `load4_<name>(i)` returns elements `4i..4i+4`.
    pub fn wgsl4(self, binding: u32, name: &str) -> String {
        match self {
            Load::F32 => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f32>>;\n\
                 fn load4_{name}(i: u32) -> vec4<f32> {{ return {name}[i]; }}\n"
            ),
            Load::F16Native => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<vec4<f16>>;\n\
                 fn load4_{name}(i: u32) -> vec4<f32> {{ return vec4<f32>({name}[i]); }}\n"
            ),
            Load::F16Packed => format!(
                "@group(0) @binding({binding}) var<storage, read> {name}: array<vec2<u32>>;\n\
                 fn load4_{name}(i: u32) -> vec4<f32> {{\n\
                   let p = {name}[i];\n\
                   return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));\n\
                 }}\n"
            ),
        }
    }

    /// WGSL declaring storage binding `binding` as a writable array `name` and a function
    /// `store_<name>(i, v)` writing f32 `v` as element `i`. Packed f16 cannot be written one
    /// element per invocation (two share a word), so it is stored as f32.
    pub fn store_wgsl(self, binding: u32, name: &str) -> String {
        match self {
            Load::F16Native => format!(
                "@group(0) @binding({binding}) var<storage, read_write> {name}: array<f16>;\n\
                 fn store_{name}(i: u32, v: f32) {{ {name}[i] = f16(v); }}\n"
            ),
            _ => format!(
                "@group(0) @binding({binding}) var<storage, read_write> {name}: array<f32>;\n\
                 fn store_{name}(i: u32, v: f32) {{ {name}[i] = v; }}\n"
            ),
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Load::F32 => "f32",
            Load::F16Packed => "f16p",
            Load::F16Native => "f16",
        }
    }
}

/// The workgroup tree reduction (`shaders/reduce.wgsl`: `WG`, `workgroup_sum`, `workgroup_max`)
/// that row kernels share.
pub(crate) const REDUCE: &str = include_str!("../../shaders/reduce.wgsl");

/// `body` with the shared workgroup reduction prepended.
pub(crate) fn with_reduce(body: &str) -> String {
    format!("{REDUCE}{body}")
}

/// Prefix a shader with `enable f16;` when any of its loads needs it.
pub(crate) fn with_enables(loads: &[Load], body: String) -> String {
    if loads.contains(&Load::F16Native) {
        format!("enable f16;\n{body}")
    } else {
        body
    }
}

/// One dispatch of one kernel: everything the graph needs to bind and run it.
///
/// Binding 0 is a uniform block of `params` (u32 words; f32 values as bits); bindings 1.. are the
/// storage buffers in the order the op's wrapper documents.
#[derive(Clone)]
pub struct KernelCall {
    /// Kernel kind, the profiler's row: "matmul", "softmax", ...
    pub kind: &'static str,
    pub pipeline: Arc<wgpu::ComputePipeline>,
    pub params: Vec<u32>,
    pub workgroups: [u32; 3],
    /// Floating-point operations (an FMA counts 2).
    pub flops: u64,
    /// Bytes read from and written to global memory, counting each element once.
    pub bytes: u64,
}

/// Workgroups a dispatch may have along one dimension (WebGPU's and most drivers' limit).
pub const MAX_GROUPS: u32 = 65535;

/// Splits a 1-D workgroup count into x/y so neither exceeds the 65535 per-dimension limit;
/// kernels rebuild the linear id as `wg.x + wg.y * num_workgroups.x`.
pub fn grid(groups: u32) -> [u32; 3] {
    const MAX: u32 = MAX_GROUPS;
    if groups <= MAX {
        [groups.max(1), 1, 1]
    } else {
        let y = groups.div_ceil(MAX);
        [groups.div_ceil(y), y, 1]
    }
}

pub(crate) fn f(x: f32) -> u32 {
    x.to_bits()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_bytes_round_to_nearest_and_pad_to_whole_words() {
        assert!(f16_bytes(&[]).is_empty());
        // 1.0 = 0x3c00; -2.0 = 0xc000; 65504 = 0x7bff is the largest half. Near 1 a half's ulp
        // is 2^-10: 1 + 2^-11 is a tie that goes to the even 0x3c00, 1 + 3·2^-11 one that goes to
        // the even 0x3c02. 1e-8 underflows to +0.
        let v = [
            1.0,
            -2.0,
            65504.0,
            1.0 + 2f32.powi(-11),
            1.0 + 3.0 * 2f32.powi(-11),
            1e-8,
        ];
        let b = f16_bytes(&v);
        assert_eq!(b.len(), 12);
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&b);
        assert_eq!(words, vec![0xc000_3c00, 0x3c00_7bff, 0x0000_3c02]);
        for n in 1..6 {
            let b = f16_bytes(&vec![0.5; n]);
            assert_eq!(b.len() as u64, DType::F16.bytes(n), "{n} values");
            assert_eq!(b.len() % 4, 0);
            // The padding half, if any, is zero.
            if n % 2 == 1 {
                assert_eq!(&b[2 * n..], &[0, 0]);
            }
        }
    }
}
