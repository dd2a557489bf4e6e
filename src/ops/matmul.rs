//! Batched strided matmul with bias and fused activation (`shaders/matmul.wgsl`):
//! `C[b] = act(alpha · A[b]·B[b]ᵀ + bias)`, f32 accumulation, B in f32 or f16.

use super::activation::{self, Act};
use super::{with_enables, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../shaders/matmul.wgsl");
const COOP_SOURCE: &str = include_str!("../../shaders/matmul_coop.wgsl");
const SCALAR_MARK: &str = "// ---- scalar section";
const VEC4_MARK: &str = "// ---- vec4 section";
const TILE: usize = 64;
/// Auto picks 32×32 tiles when a matmul has fewer 64×64 tiles than this (about the compute-unit
/// count of the largest GPUs).
const SMALL_BELOW: usize = 128;
/// Rows × columns one workgroup of the direct and vec4 variants covers.
const DIRECT_ROWS: usize = 4;
const DIRECT_COLS: usize = 256;
const VEC4_ROWS: usize = 64;
/// Rows and columns of C one workgroup of the large-tile variant covers.
const LARGE: usize = 128;
/// Auto picks 128×128 tiles on GPUs from this many of them (two waves on the largest GPUs):
/// below, fewer, smaller tiles keep more compute units busy.
const LARGE_FROM: usize = 264;
const VEC4_COLS: usize = 48;

/// Splits the shader at a section marker line: (text before it, text after that line).
fn split_section<'a>(src: &'a str, mark: &str) -> (&'a str, &'a str) {
    let (before, after) = src.split_once(mark).expect("section marker in matmul.wgsl");
    (before, after.split_once('\n').map_or("", |(_, rest)| rest))
}

/// Which kernel of the family runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Vec4 or direct on CPU adapters, tiled elsewhere.
    Auto,
    /// Shared-memory 64×64 tiles (GPUs).
    Tiled,
    /// Shared-memory 32×32 tiles (GPUs, products too small to give 64×64 tiles to every
    /// compute unit, e.g. batch-1 projections).
    TiledSmall,
    /// Shared-memory 128×128 tiles, 8×8 outputs per invocation, vec4 loads and a register
    /// prefetch of the next k-step (GPUs, large products; needs [`Matmul::vec4_ok`]).
    TiledLarge,
    /// No shared memory, any strides (CPU adapters).
    Direct,
    /// No shared memory, 4-wide loads along k (CPU adapters; needs [`Matmul::vec4_ok`]).
    Vec4,
    /// Cooperative matrices (tensor cores), A and B rounded to f16, f32 accumulation; needs
    /// [`Gpu::coop`]. Chosen by `Auto` only when [`Matmul::f16_inputs`] allows the rounding.
    Coop,
}

/// How a matmul reads A, B and the bias and writes C.
#[derive(Clone, Copy)]
struct Io {
    la: Load,
    lb: Load,
    lbias: Load,
    lc: Load,
}

impl Io {
    fn tag(&self) -> String {
        format!(
            "a{}.b{}.bias{}.c{}",
            self.la.tag(),
            self.lb.tag(),
            self.lbias.tag(),
            self.lc.tag()
        )
    }
}

/// Every variant the adapter can run for `mm`, whatever `Auto` would pick: what tests cover.
pub fn variants_for(gpu: &Gpu, mm: &Matmul) -> Vec<Variant> {
    let mut v = vec![Variant::Tiled, Variant::TiledSmall, Variant::Direct];
    if mm.vec4_ok() {
        v.push(Variant::Vec4);
        v.push(Variant::TiledLarge);
    }
    if Matmul::coop_fits(gpu) {
        v.push(Variant::Coop);
    }
    v
}

/// Where a 2-D operand lies in its buffer, in elements: `off + b0·batch0 + b1·batch1 + r·rows + c·cols`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct View {
    pub off: usize,
    pub b0: usize,
    pub b1: usize,
    pub rows: usize,
    pub cols: usize,
}

impl View {
    /// A dense row-major `[.., r, c]` matrix with `c` columns, batches of `r·c` elements.
    pub fn dense(r: usize, c: usize) -> View {
        View {
            off: 0,
            b0: r * c,
            b1: 0,
            rows: c,
            cols: 1,
        }
    }
}

/// One matmul: shapes, operand layouts, epilogue and the dtype of B (and bias).
#[derive(Clone, Copy, Debug)]
pub struct Matmul {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub batch0: usize,
    pub batch1: usize,
    /// A(m, k), in `a_dtype`.
    pub a: View,
    /// B(n, k): weights `[out, in]` as stored, or a second activation.
    pub b: View,
    /// C(m, n), in `c_dtype`.
    pub c: View,
    pub alpha: f32,
    pub bias: bool,
    /// Index of the bias element of C's column 0: a row block of a split weight computes
    /// columns `bias_off..bias_off + n` of the whole output and reads those biases.
    pub bias_off: usize,
    pub act: Act,
    pub b_dtype: DType,
    pub bias_dtype: DType,
    /// A's dtype: f32, or f16 (the f16 activations of `--precision f16`; needs SHADER_F16 to
    /// be written, any adapter reads it).
    pub a_dtype: DType,
    /// C's dtype: f32, or f16 (needs SHADER_F16).
    pub c_dtype: DType,
    pub variant: Variant,
    /// A and B may be rounded to f16 before multiplying (the f16 precision path): lets `Auto`
    /// pick cooperative matrices.
    pub f16_inputs: bool,
}

impl Matmul {
    /// k is contiguous in A and B and every offset and stride is a multiple of 4 elements, so
    /// rows can be read as vec4s.
    pub fn vec4_ok(&self) -> bool {
        let v = |x: &View| x.cols == 1 && [x.off, x.b0, x.b1, x.rows].iter().all(|s| s % 4 == 0);
        self.k.is_multiple_of(4) && v(&self.a) && v(&self.b)
    }

    fn resolved_variant(&self, gpu: &Gpu) -> Result<Variant> {
        Ok(match self.variant {
            Variant::Auto if self.f16_inputs && Self::coop_fits(gpu) => Variant::Coop,
            Variant::Auto if gpu.cpu_kernels() && self.vec4_ok() => Variant::Vec4,
            Variant::Auto if gpu.cpu_kernels() => Variant::Direct,
            Variant::Auto
                if self.vec4_ok()
                    && self.n.div_ceil(LARGE)
                        * self.m.div_ceil(LARGE)
                        * self.batch0
                        * self.batch1
                        >= LARGE_FROM =>
            {
                Variant::TiledLarge
            }
            // Fewer 64×64 tiles than a large GPU has compute units: 4× as many small ones.
            Variant::Auto
                if self.n.div_ceil(TILE) * self.m.div_ceil(TILE) * self.batch0 * self.batch1
                    < SMALL_BELOW =>
            {
                Variant::TiledSmall
            }
            Variant::Auto => Variant::Tiled,
            Variant::Vec4 if !self.vec4_ok() => Variant::Direct,
            Variant::TiledLarge if !self.vec4_ok() => Variant::Tiled,
            Variant::Coop if gpu.coop().is_none() => {
                return Err(Error::Gpu(format!(
                    "the cooperative-matrix matmul needs an adapter with cooperative matrices; `{}` has none in use",
                    gpu.describe()
                )))
            }
            Variant::Coop if !Self::coop_fits(gpu) => {
                return Err(Error::Gpu(format!(
                    "the cooperative-matrix matmul's tiles need more workgroup memory than `{}` has ({} bytes); use the portable matmul",
                    gpu.describe(),
                    gpu.limits.max_compute_workgroup_storage_size
                )))
            }
            v => v,
        })
    }

    /// (rows, columns) of C one workgroup of `variant` covers.
    fn tile(variant: Variant, gpu: &Gpu) -> (usize, usize) {
        match variant {
            Variant::Vec4 => (VEC4_ROWS, VEC4_COLS),
            Variant::Direct => (DIRECT_ROWS, DIRECT_COLS),
            Variant::Coop => {
                let f = gpu.coop().map_or(8, |c| c.size as usize);
                (4 * f, 4 * f)
            }
            Variant::TiledSmall => (TILE / 2, TILE / 2),
            Variant::TiledLarge => (LARGE, LARGE),
            Variant::Tiled | Variant::Auto => (TILE, TILE),
        }
    }

    /// `Y[m, n] = X[m, k]·W[n, k]ᵀ (+ bias)`, everything dense.
    pub fn linear(m: usize, n: usize, k: usize) -> Matmul {
        Matmul {
            m,
            n,
            k,
            batch0: 1,
            batch1: 1,
            a: View::dense(m, k),
            b: View::dense(n, k),
            c: View::dense(m, n),
            alpha: 1.0,
            bias: false,
            bias_off: 0,
            act: Act::Identity,
            b_dtype: DType::F32,
            bias_dtype: DType::F32,
            a_dtype: DType::F32,
            c_dtype: DType::F32,
            variant: Variant::Auto,
            f16_inputs: false,
        }
    }

    pub fn flops(&self) -> u64 {
        let batches = (self.batch0 * self.batch1) as u64;
        2 * batches * (self.m * self.n * self.k) as u64
    }

    /// Each operand element counted once (A, B, C and the bias).
    pub fn bytes(&self) -> u64 {
        let batches = self.batch0 * self.batch1;
        let b_count = if self.b.b0 == 0 && self.b.b1 == 0 {
            self.n * self.k
        } else {
            batches * self.n * self.k
        };
        let bias = if self.bias {
            self.bias_dtype.bytes(self.n)
        } else {
            0
        };
        self.a_dtype.bytes(batches * self.m * self.k)
            + self.c_dtype.bytes(batches * self.m * self.n)
            + self.b_dtype.bytes(b_count)
            + bias
    }

    /// Bindings: 1 A, 2 B, 3 bias (any buffer when `bias` is false), 4 C (written).
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let lb = Load::for_dtype(gpu, self.b_dtype);
        let lbias = Load::for_dtype(gpu, self.bias_dtype);
        let la = Load::for_dtype(gpu, self.a_dtype);
        let lc = Load::for_dtype(gpu, self.c_dtype);
        if lc == Load::F16Packed {
            return Err(Error::Gpu(format!(
                "an f16 matmul output needs SHADER_F16, which {} does not have in use",
                gpu.describe()
            )));
        }
        let io = Io { la, lb, lbias, lc };
        let variant = self.resolved_variant(gpu)?;
        let pipeline = match variant {
            Variant::Coop => self.coop_pipeline(gpu, io)?,
            _ => {
                let entry = match variant {
                    Variant::Vec4 => "main_vec4",
                    Variant::TiledLarge => "main_large",
                    Variant::Direct => "main_direct",
                    _ => "main",
                };
                let small = variant == Variant::TiledSmall;
                let key = format!(
                    "matmul.{entry}{}.{}",
                    if small { ".small" } else { "" },
                    io.tag()
                );
                gpu.pipeline_entry(&key, entry, || {
                    let (common, rest) = split_section(SOURCE, SCALAR_MARK);
                    let (scalar, vec4) = split_section(rest, VEC4_MARK);
                    let (ab_decl, section) =
                        if matches!(variant, Variant::Vec4 | Variant::TiledLarge) {
                            (
                                format!("{}{}", la.wgsl4(1, "a"), lb.wgsl4(2, "b")),
                                vec4.to_string(),
                            )
                        } else if small {
                            let tw = "const TW: u32 = 16u;";
                            assert!(scalar.contains(tw), "matmul.wgsl declares `{tw}`");
                            (
                                format!("{}{}", la.wgsl(1, "a"), lb.wgsl(2, "b")),
                                scalar.replace(tw, "const TW: u32 = 8u;"),
                            )
                        } else {
                            (
                                format!("{}{}", la.wgsl(1, "a"), lb.wgsl(2, "b")),
                                scalar.to_string(),
                            )
                        };
                    with_enables(
                        &[la, lb, lbias, lc],
                        format!(
                            "{ab_decl}{}{}{}{common}{section}",
                            lbias.wgsl(3, "bias"),
                            lc.store_wgsl(4, "c"),
                            activation::functions(),
                        ),
                    )
                })?
            }
        };
        let (tm, tn) = Self::tile(variant, gpu);
        let n_tiles = self.n.div_ceil(tn);
        let m_tiles = self.m.div_ceil(tm);
        let batches = self.batch0 * self.batch1;
        if n_tiles > super::MAX_GROUPS as usize {
            return Err(Error::Graph(format!(
                "a matmul with {} output columns needs {n_tiles} workgroups along x, more than the {} a dispatch allows",
                self.n,
                super::MAX_GROUPS
            )));
        }
        // Row tiles × batches can exceed one dimension's limit (many short sequences): spread
        // them over y and z; the kernel rebuilds the linear index with `locate`.
        let [y, z, _] = super::grid(u32::try_from(m_tiles * batches).map_err(|_| {
            Error::Graph(format!(
                "a matmul of {batches} batches × {m_tiles} row tiles is too large for one dispatch"
            ))
        })?);
        let u = |x: usize| x as u32;
        let params = vec![
            u(self.m),
            u(self.n),
            u(self.k),
            u(self.batch1),
            u(self.a.off),
            u(self.a.b0),
            u(self.a.b1),
            u(self.a.rows),
            u(self.a.cols),
            u(self.b.off),
            u(self.b.b0),
            u(self.b.b1),
            u(self.b.rows),
            u(self.b.cols),
            u(self.c.off),
            u(self.c.b0),
            u(self.c.b1),
            u(self.c.rows),
            u(self.c.cols),
            super::f(self.alpha),
            u32::from(self.bias),
            self.act.code(),
            u(m_tiles),
            u(batches),
            u(self.bias_off),
        ];
        Ok(KernelCall {
            // Its own profiler row, compared with the cooperative-matrix peak.
            kind: if variant == Variant::Coop {
                "matmul_coop"
            } else {
                "matmul"
            },
            pipeline,
            params,
            workgroups: [n_tiles as u32, y, z],
            flops: self.flops(),
            bytes: self.bytes(),
        })
    }

    /// The adapter has cooperative matrices and the coop kernel's staged tiles and scratch
    /// (see matmul_coop.wgsl) fit its workgroup memory.
    fn coop_fits(gpu: &Gpu) -> bool {
        gpu.coop().is_some_and(|c| {
            let f = c.size as u64;
            let tile = 4 * f * (2 * f + 8) * 2;
            2 * tile + 4 * gpu.coop_subgroups() as u64 * f * f
                <= gpu.limits.max_compute_workgroup_storage_size as u64
        })
    }

    fn coop_pipeline(&self, gpu: &Gpu, io: Io) -> Result<std::sync::Arc<wgpu::ComputePipeline>> {
        let cfg = gpu.coop().expect("checked by resolved_variant");
        let f = cfg.size;
        let sg = cfg.subgroup_max;
        let nsg = gpu.coop_subgroups();
        let key = format!("matmul.coop{f}.sg{sg}.{}", io.tag());
        gpu.pipeline_entry(&key, "main_coop", || {
            let (common, _) = split_section(SOURCE, SCALAR_MARK);
            let frag = format!("coop_mat{f}x{f}");
            let body = COOP_SOURCE
                .replace("FRAG_A", &format!("{frag}<f16, A>"))
                .replace("FRAG_B", &format!("{frag}<f16, B>"))
                .replace("ZERO", &format!("{frag}<f32, C>()"));
            format!(
                "enable f16;\nenable wgpu_cooperative_matrix;\n\
                 const F: u32 = {f}u;\nconst WG: u32 = {wg}u;\nconst NSG: u32 = {nsg}u;\n\
                 {}{}{}{}{}{common}{body}",
                io.la.wgsl(1, "a"),
                io.lb.wgsl(2, "b"),
                io.lbias.wgsl(3, "bias"),
                io.lc.store_wgsl(4, "c"),
                activation::functions(),
                wg = 4 * sg,
            )
        })
    }

    /// CPU f64 reference, writing every element of C this matmul covers.
    pub fn reference(&self, a: &[f32], b: &[f32], bias: Option<&[f32]>, c: &mut [f64]) {
        for z in 0..self.batch0 * self.batch1 {
            let (z0, z1) = (z / self.batch1, z % self.batch1);
            let ab = self.a.off + z0 * self.a.b0 + z1 * self.a.b1;
            let bb = self.b.off + z0 * self.b.b0 + z1 * self.b.b1;
            let cb = self.c.off + z0 * self.c.b0 + z1 * self.c.b1;
            for i in 0..self.m {
                for j in 0..self.n {
                    let mut s = 0.0f64;
                    for l in 0..self.k {
                        s += a[ab + i * self.a.rows + l * self.a.cols] as f64
                            * b[bb + j * self.b.rows + l * self.b.cols] as f64;
                    }
                    s *= self.alpha as f64;
                    if let (true, Some(bias)) = (self.bias, bias) {
                        s += bias[self.bias_off + j] as f64;
                    }
                    c[cb + i * self.c.rows + j * self.c.cols] = self.act.reference(s);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    /// Runs `mm` in every variant the test adapters have (whatever `Auto` would pick there),
    /// on the f16 variants' devices too, against the f64 reference.
    fn check(mm: Matmul, a_len: usize, b_len: usize, c_len: usize, seed: u64) {
        for gpu in testing::gpus_for(mm.b_dtype) {
            for v in variants_for(gpu, &mm) {
                check_on(gpu, Matmul { variant: v, ..mm }, a_len, b_len, c_len, seed);
            }
        }
    }

    fn check_on(gpu: &Gpu, mm: Matmul, a_len: usize, b_len: usize, c_len: usize, seed: u64) {
        let mut a = testing::random(a_len, seed, 1.0);
        let mut b = testing::random(b_len, seed + 1, 1.0);
        if mm.variant == Variant::Coop {
            // The coop kernel multiplies f16 values: round the inputs the reference sees the
            // same way, so the tolerance still measures the kernel's arithmetic alone.
            a = testing::round_f16(&a);
            b = testing::round_f16(&b);
        }
        if mm.a_dtype == DType::F16 {
            a = testing::round_f16(&a);
        }
        let mut bias = testing::random(mm.bias_off + mm.n, seed + 2, 1.0);
        if mm.b_dtype == DType::F16 {
            b = testing::round_f16(&b);
        }
        if mm.bias_dtype == DType::F16 {
            bias = testing::round_f16(&bias);
        }
        let wrap = |d: DType, v: Vec<f32>| match d {
            DType::F16 => Buf::F16(v),
            _ => Buf::F32(v),
        };
        let call = mm.call(gpu).unwrap();
        let out = testing::run(
            gpu,
            &call,
            &[
                wrap(mm.a_dtype, a.clone()),
                wrap(mm.b_dtype, b.clone()),
                wrap(mm.bias_dtype, bias.clone()),
                match mm.c_dtype {
                    DType::F16 => Buf::PoisonF16(c_len),
                    _ => Buf::Poison(c_len),
                },
            ],
        );
        let mut reference = vec![f64::NAN; c_len];
        mm.reference(&a, &b, Some(&bias), &mut reference);
        // Elements the matmul does not cover stay poisoned in both: compare covered ones only.
        let (o, r): (Vec<f32>, Vec<f64>) = out[3]
            .iter()
            .zip(&reference)
            .filter(|(_, r)| !r.is_nan())
            .map(|(o, r)| (*o, *r))
            .unzip();
        assert_eq!(
            o.len(),
            mm.batch0 * mm.batch1 * mm.m * mm.n,
            "reference coverage"
        );
        let err = testing::rel_err(&o, &r);
        // Weights are rounded to f16 before the reference too, so both tolerances measure
        // the kernel's f32 arithmetic alone; f16 gets the looser bound.
        // Coop: products of f16 values are exact in f32, so with the inputs rounded above it
        // must match f32 arithmetic.
        // An f16 C is rounded once at the end: relative error up to 2^-11 per element.
        let tol = if mm.b_dtype == DType::F16 || mm.c_dtype == DType::F16 {
            1e-3
        } else {
            1e-5
        };
        assert!(err < tol, "{mm:?}: relative error {err:e}");
    }

    #[test]
    fn linear_awkward_shapes_f32_and_f16() {
        let shapes = [
            (1, 1, 1),
            (7, 33, 129),
            (33, 7, 384),
            (129, 384, 33),
            (1, 1536, 384),
            (384, 768, 7),
            (65, 129, 1536),
            (3, 2, 768),
            // Past one 128×128 tile both ways, an odd number of vec4s along k (the large
            // variant's last k-step is half empty).
            (257, 300, 36),
            (130, 131, 20),
        ];
        for (i, &(m, n, k)) in shapes.iter().enumerate() {
            for (dt, act) in [
                (DType::F32, Act::Identity),
                (DType::F16, Act::Gelu),
                (DType::F32, Act::Tanh),
            ] {
                let mut mm = Matmul::linear(m, n, k);
                mm.bias = true;
                mm.act = act;
                mm.b_dtype = dt;
                mm.bias_dtype = dt;
                check(mm, m * k, n * k, m * n, 10 * i as u64);
            }
        }
    }

    /// One row block of a weight split over bindings: `n` of the output's `total` columns from
    /// `start` on, the bias read from `start` (what the graph emits per piece).
    #[test]
    fn row_block_writes_its_columns_with_offset_bias() {
        for &(m, total, start, n, k, dt) in &[
            (5, 37, 13, 11, 19, DType::F32),
            (3, 50, 0, 17, 33, DType::F16),
            (9, 41, 29, 12, 7, DType::F32),
        ] {
            let mut mm = Matmul::linear(m, n, k);
            mm.bias = true;
            mm.bias_off = start;
            mm.b_dtype = dt;
            mm.c.off = start;
            mm.c.rows = total;
            check(mm, m * k, n * k, m * total, 3 + start as u64);
        }
    }

    #[test]
    fn batched_strided_attention_products() {
        // Q·Kᵀ and P·V read straight out of a fused QKV buffer [B, S, 3H], as the encoder does.
        for &(bsz, s, heads, d) in &[(2, 7, 3, 5), (3, 33, 2, 16), (1, 129, 12, 32)] {
            let h = heads * d;
            let qkv = View {
                off: 0,
                b0: s * 3 * h,
                b1: d,
                rows: 3 * h,
                cols: 1,
            };
            let scores = Matmul {
                m: s,
                n: s,
                k: d,
                batch0: bsz,
                batch1: heads,
                a: qkv,
                b: View { off: h, ..qkv },
                c: View {
                    off: 0,
                    b0: heads * s * s,
                    b1: s * s,
                    rows: s,
                    cols: 1,
                },
                alpha: 1.0 / (d as f32).sqrt(),
                bias: false,
                bias_off: 0,
                act: Act::Identity,
                b_dtype: DType::F32,
                bias_dtype: DType::F32,
                a_dtype: DType::F32,
                c_dtype: DType::F32,
                variant: Variant::Auto,
                f16_inputs: false,
            };
            // Same buffer as A and B in the model; here two copies of it.
            check_two(scores, bsz * s * 3 * h, bsz * heads * s * s);
            let pv = Matmul {
                m: s,
                n: d,
                k: s,
                batch0: bsz,
                batch1: heads,
                a: View {
                    off: 0,
                    b0: heads * s * s,
                    b1: s * s,
                    rows: s,
                    cols: 1,
                },
                b: View {
                    off: 2 * h,
                    b0: s * 3 * h,
                    b1: d,
                    rows: 1,
                    cols: 3 * h,
                },
                c: View {
                    off: 0,
                    b0: s * h,
                    b1: d,
                    rows: h,
                    cols: 1,
                },
                alpha: 1.0,
                bias: false,
                bias_off: 0,
                act: Act::Identity,
                b_dtype: DType::F32,
                bias_dtype: DType::F32,
                a_dtype: DType::F32,
                c_dtype: DType::F32,
                variant: Variant::Auto,
                f16_inputs: false,
            };
            check(pv, bsz * heads * s * s, bsz * s * 3 * h, bsz * s * h, 77);
        }
    }

    fn check_two(mm: Matmul, ab_len: usize, c_len: usize) {
        check(mm, ab_len, ab_len, c_len, 5);
    }

    /// The f16 activations of `--precision f16`: A read and C written in f16 (native f16 only).
    #[test]
    fn f16_activations_in_and_out() {
        let gpu = crate::gpu::test_gpu();
        assert!(
            gpu.has_f16(),
            "the test adapter has SHADER_F16 (lavapipe does)"
        );
        for (i, &(m, n, k)) in [(1, 1, 1), (7, 33, 129), (65, 129, 384), (3, 2, 768)]
            .iter()
            .enumerate()
        {
            for (a_dtype, c_dtype) in [
                (DType::F16, DType::F16),
                (DType::F32, DType::F16),
                (DType::F16, DType::F32),
            ] {
                let mut mm = Matmul::linear(m, n, k);
                mm.bias = true;
                mm.act = Act::Gelu;
                mm.b_dtype = DType::F16;
                mm.bias_dtype = DType::F16;
                mm.a_dtype = a_dtype;
                mm.c_dtype = c_dtype;
                for v in variants_for(gpu, &mm) {
                    check_on(
                        gpu,
                        Matmul { variant: v, ..mm },
                        m * k,
                        n * k,
                        m * n,
                        40 + i as u64,
                    );
                }
            }
        }
        // Without SHADER_F16 an f16 output cannot be written: a clear error.
        let mut mm = Matmul::linear(4, 4, 4);
        mm.c_dtype = DType::F16;
        let e = mm.call(crate::gpu::test_gpu_packed_f16()).err().unwrap();
        assert!(e.to_string().contains("SHADER_F16"), "{e}");
    }

    #[test]
    fn batches_past_the_dispatch_limit() {
        // 66,000 batches: more workgroups than one dispatch dimension allows (65,535), as
        // attention over thousands of short sequences needs.
        let (batches, m, n, k) = (66_000, 2, 3, 5);
        let mut mm = Matmul::linear(m, n, k);
        mm.batch0 = batches;
        mm.a.b0 = m * k;
        mm.b.b0 = 0;
        mm.c.b0 = m * n;
        mm.bias = true;
        let call = mm.call(crate::gpu::test_gpu()).unwrap();
        assert!(call.workgroups.iter().all(|&g| g <= crate::ops::MAX_GROUPS));
        check(mm, batches * m * k, n * k, batches * m * n, 21);
    }

    #[test]
    fn first_token_gather_by_row_stride() {
        // The pooler reads token 0 of each sequence: A's row stride skips a whole sequence.
        let (bsz, s, h, n) = (5, 9, 33, 7);
        let mut mm = Matmul::linear(bsz, n, h);
        mm.a.rows = s * h;
        mm.bias = true;
        check(mm, bsz * s * h, n * h, bsz * n, 3);
    }
}
