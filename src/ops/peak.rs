//! Peak-rate kernels (`shaders/peak.wgsl`) behind `wgformer bench ceilings`: f32 and f16 FMA
//! throughput and streaming read bandwidth. They measure the adapter, not a model op, so the
//! percentages `profile` prints are against what the hardware does, not against our own kernels.
//!
//! Each kernel's *result* has a CPU f64 reference: the FMA chains' final values and the read
//! kernel's sums are checked on awkward sizes, so the work a kernel is credited with is provably
//! done (a compiler that dropped steps or loads would change the answer).

use super::{grid, KernelCall};
use crate::gpu::Gpu;
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../shaders/peak.wgsl");
const FMA_MARK: &str = "// ---- fma section";
const READ_MARK: &str = "// ---- read section";
const FILL_MARK: &str = "// ---- fill section";

/// Invocations per workgroup of every peak kernel.
pub const WORKGROUP: usize = 256;
/// Independent FMA chains per invocation (8 vec4 accumulators).
pub const CHAINS: usize = 32;
/// Steps of every chain per loop iteration (the loop body is unrolled 4 times).
pub const UNROLL: usize = 4;

/// The common part of the shader plus one section (the text between its marker and the next).
fn section(mark: &str) -> String {
    let (common, rest) = SOURCE
        .split_once(FMA_MARK)
        .expect("fma marker in peak.wgsl");
    let rest = format!("{FMA_MARK}{rest}");
    let start = rest.find(mark).expect("section marker in peak.wgsl");
    let body = &rest[start..];
    let end = [FMA_MARK, READ_MARK, FILL_MARK]
        .iter()
        .filter_map(|m| body[mark.len()..].find(m).map(|i| i + mark.len()))
        .min()
        .unwrap_or(body.len());
    format!("{common}{}", &body[..end])
}

fn check_count(what: &str, n: usize) -> Result<u32> {
    match u32::try_from(n) {
        Ok(v) if v > 0 && n.div_ceil(WORKGROUP) <= 65535 * 65535 => Ok(v),
        _ => Err(Error::Input(format!(
            "{what} must be between 1 and {} (got {n})",
            u32::MAX
        ))),
    }
}

/// `invocations` × [`CHAINS`] independent chains `x ← fma(x, mul, add)` of
/// [`steps`](Self::steps) each, in f32 or (with `f16`, where the adapter has SHADER_F16) in
/// vec4<f16>.
#[derive(Clone, Copy, Debug)]
pub struct Fma {
    pub invocations: usize,
    /// Loop iterations; each runs [`UNROLL`] steps of every chain.
    pub loops: usize,
    pub mul: f32,
    pub add: f32,
    pub f16: bool,
}

impl Fma {
    pub fn steps(&self) -> usize {
        UNROLL * self.loops
    }

    /// Floating-point operations credited (an FMA counts 2; the final sums are not counted).
    pub fn flops(&self) -> u64 {
        2 * (self.invocations * CHAINS) as u64 * self.steps() as u64
    }

    /// Bindings: 1 out (f32, `invocations`): per invocation, the sum of its chains' final values.
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let count = check_count("FMA invocations", self.invocations)?;
        let loops = u32::try_from(self.loops)
            .map_err(|_| Error::Input(format!("{} FMA loops is too many", self.loops)))?;
        if self.f16 && !gpu.has_f16() {
            return Err(Error::Gpu(format!(
                "{} has no SHADER_F16 in use: no f16 FMA kernel",
                gpu.describe()
            )));
        }
        let (key, prefix) = if self.f16 {
            ("peak.fma.f16", "enable f16;\nalias S = f16;\n")
        } else {
            ("peak.fma.f32", "alias S = f32;\n")
        };
        let pipeline =
            gpu.pipeline_entry(key, "fma_peak", || format!("{prefix}{}", section(FMA_MARK)))?;
        Ok(KernelCall {
            kind: "fma_peak",
            pipeline,
            params: vec![count, loops, super::f(self.mul), super::f(self.add), 0],
            workgroups: grid(self.invocations.div_ceil(WORKGROUP) as u32),
            flops: self.flops(),
            bytes: 4 * self.invocations as u64,
        })
    }

    /// Where chain `j` of invocation `i` starts, as the shader computes it.
    pub fn start(i: usize, j: usize) -> f64 {
        ((i as u32).wrapping_mul(7).wrapping_add(j as u32 * 13) & 63) as f64 / 64.0
    }

    /// Invocation `i`'s exact result when `mul` = 1 and `add` = 1/64, in closed form for any step
    /// count (the benchmark's setting, checked there on a sample of invocations): every chain
    /// value is a multiple of 1/64, exact in f32 below 2^18. In f16 values are exact below 32,
    /// where adding 1/64 is half an ulp and rounds back to 32 (to nearest even and toward zero
    /// alike): f16 chains stop at 32.
    pub fn unit_mul_sum(&self, i: usize) -> f64 {
        let limit = if self.f16 { 32.0 } else { f64::INFINITY };
        (0..CHAINS)
            .map(|j| (Self::start(i, j) + self.steps() as f64 / 64.0).min(limit))
            .sum()
    }

    /// Per invocation, the sum of its chains' final values, each chain run in f64.
    pub fn reference(&self) -> Vec<f64> {
        let (m, c) = (self.mul as f64, self.add as f64);
        (0..self.invocations)
            .map(|i| {
                (0..CHAINS)
                    .map(|j| {
                        let mut x = Self::start(i, j);
                        for _ in 0..self.steps() {
                            x = x * m + c;
                        }
                        x
                    })
                    .sum()
            })
            .collect()
    }
}

/// A streaming read: `invocations` invocations sum every `invocations`-th vec4<f32> of a buffer of
/// `len4` vec4s, so each element is read exactly once, coalesced.
#[derive(Clone, Copy, Debug)]
pub struct StreamRead {
    pub invocations: usize,
    pub len4: usize,
}

impl StreamRead {
    /// Bytes read plus bytes written.
    pub fn bytes(&self) -> u64 {
        16 * self.len4 as u64 + 4 * self.invocations as u64
    }

    fn params(&self) -> Result<Vec<u32>> {
        let count = check_count("read invocations", self.invocations)?;
        let len4 = u32::try_from(self.len4)
            .ok()
            .filter(|n| n.checked_add(count.saturating_mul(4)).is_some())
            .ok_or_else(|| {
                Error::Input(format!("{} vec4s is too long a read buffer", self.len4))
            })?;
        Ok(vec![count, 0, 0, 0, len4])
    }

    /// Bindings: 1 x (`4·len4` f32, read), 2 out (f32, `invocations`): invocation i's sum of the
    /// vec4s i, i + invocations, i + 2·invocations, ...
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let params = self.params()?;
        let pipeline = gpu.pipeline_entry("peak.read", "read_peak", || section(READ_MARK))?;
        Ok(KernelCall {
            kind: "read_peak",
            pipeline,
            params,
            workgroups: grid(self.invocations.div_ceil(WORKGROUP) as u32),
            flops: 4 * self.len4 as u64,
            bytes: self.bytes(),
        })
    }

    /// Bindings: 1 x (`4·len4` f32, written with [`pattern`](Self::pattern)).
    pub fn fill_call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let params = self.params()?;
        let pipeline = gpu.pipeline_entry("peak.fill", "fill", || section(FILL_MARK))?;
        Ok(KernelCall {
            kind: "fill",
            pipeline,
            params,
            workgroups: grid(self.invocations.div_ceil(WORKGROUP) as u32),
            flops: 0,
            bytes: 16 * self.len4 as u64,
        })
    }

    /// Element `e` of the filled buffer.
    pub fn pattern(e: usize) -> f32 {
        (e % 61) as f32 * 0.25
    }

    /// Invocation `i`'s sum over a buffer written by [`fill_call`](Self::fill_call).
    pub fn pattern_sum(&self, i: usize) -> f64 {
        (i..self.len4)
            .step_by(self.invocations.max(1))
            .flat_map(|k| 4 * k..4 * k + 4)
            .map(|e| Self::pattern(e) as f64)
            .sum()
    }

    /// Per invocation, the f64 sum of the elements it reads from `x` (`4·len4` values).
    pub fn reference(&self, x: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; self.invocations];
        for k in 0..self.len4 {
            let s: f64 = x[4 * k..4 * k + 4].iter().map(|v| *v as f64).sum();
            out[k % self.invocations] += s;
        }
        out
    }
}

const COOP_SOURCE: &str = include_str!("../../shaders/peak_coop.wgsl");

/// Cooperative-matrix throughput: `workgroups` subgroups each run 4 independent chains of
/// `loops` F×F×F multiply-adds (f16 inputs, f32 accumulation) from registers. Needs
/// [`Gpu::coop`].
#[derive(Clone, Copy, Debug)]
pub struct CoopFma {
    pub workgroups: usize,
    pub loops: usize,
    /// A's value (B_j = (j + 1)·x); a power of two keeps every result exact.
    pub x: f32,
}

impl CoopFma {
    fn size(gpu: &Gpu) -> Result<(u32, u32)> {
        let c = gpu.coop().ok_or_else(|| {
            Error::Gpu(format!(
                "{} has no cooperative matrices in use: no cooperative-matrix peak",
                gpu.describe()
            ))
        })?;
        // One subgroup per workgroup: the smallest subgroup the adapter may run is its size.
        Ok((c.size, gpu.info.subgroup_min_size.max(1)))
    }

    pub fn flops(&self, gpu: &Gpu) -> u64 {
        let f = Self::size(gpu).map_or(0, |(f, _)| f as u64);
        2 * f * f * f * 4 * (self.workgroups * self.loops) as u64
    }

    /// Output elements: F·F per workgroup.
    pub fn out_len(&self, gpu: &Gpu) -> usize {
        Self::size(gpu).map_or(0, |(f, _)| (f * f) as usize) * self.workgroups
    }

    /// Bindings: 1 out (f32, [`out_len`](Self::out_len)), every element of workgroup g's F×F
    /// block the sum of its 4 chains.
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let (f, sg) = Self::size(gpu)?;
        let loops = u32::try_from(self.loops)
            .map_err(|_| Error::Input(format!("{} loops is too many", self.loops)))?;
        let groups = u32::try_from(self.workgroups)
            .ok()
            .filter(|&g| g > 0)
            .ok_or_else(|| Error::Input("between 1 and 2^32 workgroups".into()))?;
        let key = format!("peak.coop{f}.sg{sg}");
        let pipeline = gpu.pipeline_entry(&key, "coop_peak", || {
            let frag = format!("coop_mat{f}x{f}");
            format!(
                "enable f16;\nenable wgpu_cooperative_matrix;\nconst F: u32 = {f}u;\nconst SG: u32 = {sg}u;\n{}",
                COOP_SOURCE
                    .replace("FRAG_A", &format!("{frag}<f16, A>"))
                    .replace("FRAG_B", &format!("{frag}<f16, B>"))
                    .replace("ZERO", &format!("{frag}<f32, C>()"))
            )
        })?;
        Ok(KernelCall {
            kind: "coop_peak",
            pipeline,
            params: vec![loops, super::f(self.x), 0, 0],
            workgroups: grid(groups),
            flops: self.flops(gpu),
            bytes: 4 * self.out_len(gpu) as u64,
        })
    }

    /// Every output element: Σ_j loops·F·(j+1)·x², computed in f64.
    pub fn expected(&self, gpu: &Gpu) -> f64 {
        let f = Self::size(gpu).map_or(0.0, |(f, _)| f as f64);
        let x = self.x as f64;
        (1..=4)
            .map(|j| self.loops as f64 * f * j as f64 * x * x)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    fn check(out: &[f32], want: &[f64], tol: f64, what: &str) {
        assert_eq!(out.len(), want.len());
        for (i, (o, w)) in out.iter().zip(want).enumerate() {
            let err = (*o as f64 - w).abs() / w.abs().max(1.0);
            assert!(err <= tol, "{what}: invocation {i}: GPU {o}, CPU {w}");
        }
    }

    #[test]
    fn sections_hold_one_entry_point_each() {
        for (mark, entry, others) in [
            (FMA_MARK, "fn fma_peak", ["fn read_peak", "fn fill"]),
            (READ_MARK, "fn read_peak", ["fn fma_peak", "fn fill"]),
            (FILL_MARK, "fn fill", ["fn fma_peak", "fn read_peak"]),
        ] {
            let s = section(mark);
            assert!(s.contains("struct Params") && s.contains(entry), "{mark}");
            assert!(others.iter().all(|o| !s.contains(o)), "{mark}");
        }
    }

    /// Starts, `mul` = 1 and `add` = 1/64 keep every chain exact in f16 and f32 (values < 32 with
    /// 6 fractional bits), so the GPU must match the f64 chains exactly: one step more or less
    /// per chain moves a sum by 32/64.
    #[test]
    fn fma_chains_match_reference() {
        let gpu = crate::gpu::test_gpu();
        let mut dtypes = vec![false];
        if gpu.has_f16() {
            dtypes.push(true);
        }
        for f16 in dtypes {
            for &(invocations, loops) in &[(1, 1), (7, 3), (255, 17), (257, 64), (1000, 250)] {
                let k = Fma {
                    invocations,
                    loops,
                    mul: 1.0,
                    add: 1.0 / 64.0,
                    f16,
                };
                let call = k.call(gpu).unwrap();
                assert_eq!(call.flops, 2 * 32 * 4 * (invocations * loops) as u64);
                let out = testing::run(gpu, &call, &[Buf::Poison(invocations)]);
                check(&out[0], &k.reference(), 0.0, &format!("{k:?}"));
            }
            // A contracting chain (x* = 2) exercises `mul`; rounded, so a tolerance.
            let k = Fma {
                invocations: 300,
                loops: 5,
                mul: 0.75,
                add: 0.5,
                f16,
            };
            let out = testing::run(gpu, &k.call(gpu).unwrap(), &[Buf::Poison(300)]);
            check(
                &out[0],
                &k.reference(),
                if f16 { 2e-3 } else { 1e-6 },
                "mul 0.75",
            );
        }
    }

    /// The benchmark's closed form holds on the GPU, also past the point where f16 chains stop.
    #[test]
    fn unit_mul_closed_form_matches_gpu_and_reference() {
        let gpu = crate::gpu::test_gpu();
        for f16 in [false, true] {
            if f16 && !gpu.has_f16() {
                continue;
            }
            for loops in [3, 600] {
                let k = Fma {
                    invocations: 70,
                    loops,
                    mul: 1.0,
                    add: 1.0 / 64.0,
                    f16,
                };
                let want: Vec<f64> = (0..70).map(|i| k.unit_mul_sum(i)).collect();
                if !f16 || k.steps() < 1900 {
                    check(
                        &k.reference().iter().map(|v| *v as f32).collect::<Vec<_>>(),
                        &want,
                        0.0,
                        "closed form",
                    );
                }
                let out = testing::run(gpu, &k.call(gpu).unwrap(), &[Buf::Poison(70)]);
                check(&out[0], &want, 0.0, &format!("{k:?}"));
            }
        }
    }

    #[test]
    fn f16_fma_needs_shader_f16() {
        let gpu = crate::gpu::test_gpu_packed_f16();
        let k = Fma {
            invocations: 1,
            loops: 1,
            mul: 1.0,
            add: 1.0,
            f16: true,
        };
        assert!(k.call(gpu).is_err());
    }

    #[test]
    fn streaming_read_sums_every_element_once() {
        let gpu = crate::gpu::test_gpu();
        // Lengths around the 4-loads-in-flight stride (4·invocations) and its remainder loop.
        for &(invocations, len4) in &[
            (1, 1),
            (1, 7),
            (7, 1),
            (3, 12),
            (3, 13),
            (256, 1023),
            (257, 4 * 257 + 5),
            (1000, 12_345),
        ] {
            let r = StreamRead { invocations, len4 };
            let x = testing::random(4 * len4, len4 as u64, 1.0);
            let out = testing::run(
                gpu,
                &r.call(gpu).unwrap(),
                &[Buf::F32(x.clone()), Buf::Poison(invocations)],
            );
            check(&out[1], &r.reference(&x), 1e-5, &format!("{r:?}"));
        }
    }

    #[test]
    fn fill_writes_the_pattern_everywhere() {
        let gpu = crate::gpu::test_gpu();
        for &(invocations, len4) in &[(1, 5), (7, 100), (300, 299), (256, 3000)] {
            let r = StreamRead { invocations, len4 };
            let out = testing::run(gpu, &r.fill_call(gpu).unwrap(), &[Buf::Poison(4 * len4)]);
            let want: Vec<f32> = (0..4 * len4).map(StreamRead::pattern).collect();
            assert_eq!(out[0], want, "{r:?}");
            let sums: Vec<f64> = (0..invocations).map(|i| r.pattern_sum(i)).collect();
            assert_eq!(r.reference(&want), sums, "{r:?}");
        }
    }

    #[test]
    fn sizes_are_checked() {
        let gpu = crate::gpu::test_gpu();
        let k = Fma {
            invocations: 0,
            loops: 1,
            mul: 1.0,
            add: 1.0,
            f16: false,
        };
        assert!(k.call(gpu).is_err());
        assert!(StreamRead {
            invocations: 0,
            len4: 4
        }
        .call(gpu)
        .is_err());
    }

    /// Runs where the test adapter has cooperative matrices (CI runs the ops tests on Mesa 26's
    /// lavapipe with WGFORMER_TEST_REQUIRE_COOP=1, which fails if it has none).
    #[test]
    fn coop_chains_match_reference() {
        let gpu = crate::gpu::test_gpu();
        if gpu.coop().is_none() {
            assert!(CoopFma {
                workgroups: 1,
                loops: 1,
                x: 1.0
            }
            .call(gpu)
            .is_err());
            return;
        }
        for &(workgroups, loops) in &[(1, 1), (3, 7), (70, 33)] {
            let k = CoopFma {
                workgroups,
                loops,
                x: 0.125,
            };
            let call = k.call(gpu).unwrap();
            let out = testing::run(gpu, &call, &[Buf::Poison(k.out_len(gpu))]);
            let want = vec![k.expected(gpu); k.out_len(gpu)];
            check(&out[0], &want, 0.0, &format!("{k:?}"));
        }
    }
}
