//! Fused multi-head attention (`shaders/attention.wgsl`): `softmax(Q·Kᵀ·scale + bias + mask)·V`
//! per (batch, head) in one dispatch, with an online softmax, so no `seq × seq` score matrix
//! is ever stored. Optional additive position bias (DeBERTa/MPNet-style) and sliding window
//! (ModernBERT local attention).

use super::{grid, with_enables, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../shaders/attention.wgsl");
const COOP_SOURCE: &str = include_str!("../../shaders/attention_coop.wgsl");
/// Where attention.wgsl's GPU entry begins: what comes before is shared with the coop variant.
const TILED_MARK: &str = "// ---- GPUs";

/// Largest head dimension either variant takes (registers per query grow with it).
pub const MAX_HEAD_DIM: usize = 128;
/// Queries per workgroup of the tiled variant.
const TILED_QUERIES: usize = 64;
/// Largest key block of the tiled variant.
const MAX_KEY_BLOCK: usize = 64;
/// Invocations per workgroup of the rows variant (llvmpipe's SIMD width at 256 bits).
const ROWS_WG: usize = 8;

/// Queries per invocation of the rows variant for `d4` groups of 4 head columns: the more, the
/// fewer loads per (query, key) pair (loads are what costs on llvmpipe), but the unrolled kernel
/// grows as `qr·d4` and so does llvmpipe's compile time (about 0.12 s per unit on this 2-core
/// machine, once per process and adapter: Mesa caches it on disk). 64 units up to d = 64
/// (MiniLM's d = 32: 8 queries, 7 s; BERT-base's 64: 4 queries, 10 s), 32 beyond.
fn rows_qr(d4: usize) -> usize {
    let units = if d4 <= 16 { 64 } else { 32 };
    (units / d4).clamp(1, 8)
}

/// Which kernel of the family runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Rows where the device uses CPU-adapter kernels ([`Gpu::cpu_kernels`]), tiled elsewhere.
    Auto,
    /// 64 queries per workgroup, key blocks staged in workgroup memory (GPUs).
    Tiled,
    /// No workgroup memory or barriers, several queries per invocation (CPU adapters).
    Rows,
    /// Cooperative matrices (tensor cores) for Q·Kᵀ and P·V: Q, K, V and the probabilities as
    /// f16, sums and the softmax in f32; needs [`Gpu::coop`]. `Auto` picks it where Q, K and V
    /// are f16 already (`--precision f16`) and its tiles fit the workgroup memory.
    Coop,
}

/// Where a per-head operand (Q, K, V or the output) lies, in elements: column `c` of token `t`
/// of head `h` in batch `b` is at `off + b·batch + h·head + t·token + c`. The head's columns are
/// contiguous.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadView {
    pub off: usize,
    pub batch: usize,
    pub head: usize,
    pub token: usize,
}

impl HeadView {
    /// Heads side by side (head `h` at columns `col + h·d ..`) on the last axis of a
    /// `[batch, seq, row]` tensor, as projections write them.
    pub fn interleaved(seq: usize, row: usize, col: usize, d: usize) -> HeadView {
        HeadView {
            off: col,
            batch: seq * row,
            head: d,
            token: row,
        }
    }

    fn index(&self, b: usize, h: usize, t: usize) -> usize {
        self.off + b * self.batch + h * self.head + t * self.token
    }
}

/// The additive key mask: key `j` of batch `b` at `off + b·batch + j`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaskView {
    pub off: usize,
    pub batch: usize,
}

/// The additive position bias: (query `i`, key `j`) of head `h` in batch `b` at
/// `off + b·batch + h·head + i·query + j·key`. `query` may be negative (see
/// [`relative`](Self::relative)); every index the attention reads must be in the buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BiasView {
    pub off: usize,
    pub batch: usize,
    pub head: usize,
    pub query: isize,
    pub key: usize,
}

impl BiasView {
    /// `[heads, seq, seq]`, shared by every sequence of the batch.
    pub fn per_head(seq: usize) -> BiasView {
        BiasView {
            off: 0,
            batch: 0,
            head: seq * seq,
            query: seq as isize,
            key: 1,
        }
    }

    /// `[heads, 2·seq − 1]`: a bias that depends only on `j − i` (MPNet's relative buckets),
    /// stored once per offset at column `j − i + seq − 1` and read with a query stride of −1,
    /// so no `seq × seq` matrix is built.
    pub fn relative(seq: usize) -> BiasView {
        BiasView {
            off: seq - 1,
            batch: 0,
            head: 2 * seq - 1,
            query: -1,
            key: 1,
        }
    }

    fn index(&self, b: usize, h: usize, i: usize, j: usize) -> usize {
        ((self.off + b * self.batch + h * self.head + j * self.key) as isize
            + i as isize * self.query) as usize
    }

    /// `[batch·heads, seq, seq]`, one matrix per sequence and head.
    pub fn per_batch_head(heads: usize, seq: usize) -> BiasView {
        BiasView {
            batch: heads * seq * seq,
            ..BiasView::per_head(seq)
        }
    }
}

/// One fused attention over `batch × heads` sequences of `seq` tokens with head dimension
/// `head_dim`.
#[derive(Clone, Copy, Debug)]
pub struct Attention {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub q: HeadView,
    pub k: HeadView,
    pub v: HeadView,
    /// Written, in `out_dtype`.
    pub out: HeadView,
    pub scale: f32,
    /// f32, 0 for real tokens and `f32::MIN` for padding (other values are added as they are).
    pub mask: Option<MaskView>,
    /// f32.
    pub bias: Option<BiasView>,
    /// Key `j` is visible to query `i` only when `|i − j| ≤ window / 2`; 0 is global attention.
    pub window: usize,
    /// Element type of Q, K and V.
    pub dtype: DType,
    /// Element type of the output: f32, or f16 (needs SHADER_F16).
    pub out_dtype: DType,
    pub variant: Variant,
}

impl Attention {
    /// Q, K and V side by side in one `[batch, seq, 3·hidden]` projection, the output
    /// `[batch, seq, hidden]`, a `[batch, seq]` key mask, scale `1/√d`, global attention.
    pub fn packed_qkv(batch: usize, seq: usize, heads: usize, head_dim: usize) -> Attention {
        let h = heads * head_dim;
        Attention {
            batch,
            seq,
            heads,
            head_dim,
            q: HeadView::interleaved(seq, 3 * h, 0, head_dim),
            k: HeadView::interleaved(seq, 3 * h, h, head_dim),
            v: HeadView::interleaved(seq, 3 * h, 2 * h, head_dim),
            out: HeadView::interleaved(seq, h, 0, head_dim),
            scale: 1.0 / (head_dim as f32).sqrt(),
            mask: Some(MaskView { off: 0, batch: seq }),
            bias: None,
            window: 0,
            dtype: DType::F32,
            out_dtype: DType::F32,
            variant: Variant::Auto,
        }
    }

    fn resolved_variant(&self, gpu: &Gpu) -> Variant {
        match self.variant {
            Variant::Auto if self.dtype == DType::F16 && self.coop_fits(gpu) => Variant::Coop,
            Variant::Auto if gpu.cpu_kernels() => Variant::Rows,
            Variant::Auto => Variant::Tiled,
            v => v,
        }
    }

    /// Workgroup memory of the coop variant with fragment size `f` (see attention_coop.wgsl).
    fn coop_bytes(&self, f: usize, subgroups: usize) -> usize {
        let dp = self.head_dim.next_multiple_of(2 * f);
        let (bq, bk) = (2 * f, 2 * f);
        2 * (bq + 2 * bk) * (dp + 8)
            + 4 * subgroups * f * f
            + 2 * bq * (bk + 8)
            + 4 * (bq * dp + f * f)
    }

    /// The adapter has cooperative matrices and the coop variant's tiles fit its workgroup
    /// memory for this head dimension.
    pub fn coop_fits(&self, gpu: &Gpu) -> bool {
        gpu.coop().is_some_and(|c| {
            // Invocation i < BQ = 2F owns query row i, so the workgroup (4 subgroups of the
            // largest size) must have at least that many invocations.
            4 * c.subgroup_max >= 2 * c.size
                && self.coop_bytes(c.size as usize, gpu.coop_subgroups() as usize)
                    <= gpu.limits.max_compute_workgroup_storage_size as usize
        })
    }

    /// `window / 2`, or `seq` (every key) for global attention.
    fn half_window(&self) -> usize {
        if self.window == 0 {
            self.seq
        } else {
            (self.window / 2).min(self.seq)
        }
    }

    /// (query, key) pairs that take part: `seq²` for global attention, fewer with a window.
    pub fn visible_pairs(&self) -> u64 {
        let half = self.half_window();
        (0..self.seq)
            .map(|i| (i + half).min(self.seq - 1) + 1 - i.saturating_sub(half))
            .sum::<usize>() as u64
    }

    /// The two products, Q·Kᵀ and P·V, over the visible pairs: `4·batch·heads·pairs·d` (an FMA
    /// counts 2, as for matmul). The softmax itself (max, exp, rescale, sum: a few operations per
    /// pair, independent of `d`) is not counted.
    pub fn flops(&self) -> u64 {
        4 * (self.batch * self.heads * self.head_dim) as u64 * self.visible_pairs()
    }

    /// Q, K, V and the output once each, the mask and the bias (every element the call can read).
    pub fn bytes(&self) -> u64 {
        let n = self.batch * self.seq * self.heads * self.head_dim;
        let mask = if self.mask.is_some() {
            4 * (self.batch * self.seq) as u64
        } else {
            0
        };
        let bias = match self.bias {
            Some(b) if b.query < 0 => 4 * (self.heads * (2 * self.seq - 1)) as u64,
            Some(b) if b.batch == 0 => 4 * (self.heads * self.seq * self.seq) as u64,
            Some(_) => 4 * (self.batch * self.heads * self.seq * self.seq) as u64,
            None => 0,
        };
        3 * self.dtype.bytes(n) + 4 * n as u64 + mask + bias
    }

    /// Every Q, K and V row starts at a multiple of 4 elements, so they can be read as vec4s.
    pub fn vec4_ok(&self) -> bool {
        self.head_dim.is_multiple_of(4)
            && [self.q, self.k, self.v]
                .iter()
                .all(|v| [v.off, v.batch, v.head, v.token].iter().all(|x| x % 4 == 0))
    }

    /// Keys per workgroup-memory block of the tiled variant: a power of two up to 64 such that
    /// K, V and the mask of a block fit in `shared_bytes`.
    fn key_block(&self, shared_bytes: u32) -> usize {
        let fit = (shared_bytes as usize / 4) / (2 * self.head_dim + 1);
        let mut bk = 1;
        while bk * 2 <= fit.min(MAX_KEY_BLOCK) {
            bk *= 2;
        }
        bk
    }

    /// Bindings: 1 Q, 2 K, 3 V (may all be one buffer), 4 mask (any buffer when `mask` is None),
    /// 5 bias (any buffer when `bias` is None), 6 output (written).
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let d = self.head_dim;
        if d == 0 || d > MAX_HEAD_DIM {
            return Err(Error::Graph(format!(
                "attention: head dimension {d} is not supported (1 to {MAX_HEAD_DIM})"
            )));
        }
        if self.seq == 0 || self.batch == 0 || self.heads == 0 {
            return Err(Error::Graph(format!(
                "attention: empty shape (batch {}, seq {}, heads {})",
                self.batch, self.seq, self.heads
            )));
        }
        let variant = self.resolved_variant(gpu);
        let load = Load::for_dtype(gpu, self.dtype);
        let store = Load::for_dtype(gpu, self.out_dtype);
        if store == Load::F16Packed {
            return Err(Error::Gpu(format!(
                "an f16 attention output needs SHADER_F16, which {} does not have in use",
                gpu.describe()
            )));
        }
        if variant == Variant::Coop && !self.coop_fits(gpu) {
            return Err(Error::Gpu(format!(
                "the cooperative-matrix attention needs cooperative matrices and room for its tiles (head dimension {d}); `{}` cannot run it",
                gpu.describe()
            )));
        }
        let bk = self.key_block(gpu.limits.max_compute_workgroup_storage_size);
        let (entry, queries) = match variant {
            Variant::Rows => ("main_rows", ROWS_WG * rows_qr(d.div_ceil(4))),
            Variant::Coop => ("main_coop", 2 * gpu.coop().map_or(8, |c| c.size as usize)),
            _ => ("main", TILED_QUERIES),
        };
        let vec4 = self.vec4_ok();
        let key = format!(
            "attention.{entry}.{}.o{}.d{d}.bk{bk}{}",
            load.tag(),
            store.tag(),
            if vec4 { ".v4" } else { "" }
        );
        let pipeline = gpu.pipeline_entry(&key, entry, || {
            if variant == Variant::Coop {
                return self.coop_source(gpu, load, store);
            }
            let mut src = String::new();
            for (binding, name) in [(1, "q"), (2, "k"), (3, "v")] {
                src.push_str(&operand_wgsl(load, vec4, binding, name));
            }
            src.push_str(&store.store_wgsl(6, "out"));
            src.push_str(&format!(
                "const D: u32 = {d}u;\nconst D4: u32 = {}u;\nconst BK: u32 = {bk}u;\n{SOURCE}",
                d.div_ceil(4),
            ));
            if variant == Variant::Rows {
                src.push_str(&rows_entry(d.div_ceil(4)));
            }
            with_enables(&[load, store], src)
        })?;
        let u = |x: usize| x as u32;
        let mask = self.mask.unwrap_or(MaskView { off: 0, batch: 0 });
        let bias = self.bias.unwrap_or(BiasView {
            off: 0,
            batch: 0,
            head: 0,
            query: 0,
            key: 0,
        });
        let mut params = vec![
            u(self.seq),
            u(self.heads),
            u(self.batch * self.heads),
            u(self.half_window()),
        ];
        for v in [self.q, self.k, self.v, self.out] {
            params.extend([u(v.off), u(v.batch), u(v.head), u(v.token)]);
        }
        params.extend([
            u(mask.off),
            u(mask.batch),
            u32::from(self.mask.is_some()),
            u32::from(self.bias.is_some()),
            u(bias.off),
            u(bias.batch),
            u(bias.head),
            // Two's complement: the shader's u32 arithmetic wraps, so −1 steps back.
            bias.query as i32 as u32,
            u(bias.key),
            super::f(self.scale),
        ]);
        Ok(KernelCall {
            kind: "attention",
            pipeline,
            params,
            workgroups: workgroups(self.seq.div_ceil(queries), self.batch * self.heads)?,
            flops: self.flops(),
            bytes: self.bytes(),
        })
    }

    /// The coop variant's WGSL: scalar operand loads, the common part of attention.wgsl and
    /// attention_coop.wgsl with its constants and fragment types.
    fn coop_source(&self, gpu: &Gpu, load: Load, store: Load) -> String {
        let cfg = gpu.coop().expect("checked by coop_fits");
        let f = cfg.size as usize;
        let d = self.head_dim;
        // f16 for the tiles whatever the operands are; the operands' loads come first.
        let mut src = String::from("enable f16;\nenable wgpu_cooperative_matrix;\n");
        for (binding, name) in [(1, "q"), (2, "k"), (3, "v")] {
            src.push_str(&operand_wgsl(load, false, binding, name));
        }
        src.push_str(&store.store_wgsl(6, "out"));
        let (common, _) = SOURCE
            .split_once(TILED_MARK)
            .expect("attention.wgsl has its GPU section marker");
        let frag = format!("coop_mat{f}x{f}");
        let body = COOP_SOURCE
            .replace("FRAG_A", &format!("{frag}<f16, A>"))
            .replace("FRAG_B", &format!("{frag}<f16, B>"))
            .replace("FRAG_C", &format!("{frag}<f32, C>"))
            .replace("ZERO", &format!("{frag}<f32, C>()"));
        src.push_str(&format!(
            "const D: u32 = {d}u;\nconst D4: u32 = {}u;\nconst DP: u32 = {}u;\nconst F: u32 = {f}u;\n\
             const WG: u32 = {}u;\nconst NSG: u32 = {}u;\n{common}{body}",
            d.div_ceil(4),
            d.next_multiple_of(2 * f),
            4 * cfg.subgroup_max,
            gpu.coop_subgroups(),
        ));
        src
    }

    /// CPU f64 reference, writing every output element the call covers.
    ///
    /// A mask value that absorbs the score in f32 (`f32::MIN` on padding) replaces it, as it does
    /// in the kernel and in transformers: a row whose visible keys are all masked averages their
    /// values evenly. Any other sum is taken in f64.
    pub fn reference(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        mask: Option<&[f32]>,
        bias: Option<&[f32]>,
        out: &mut [f64],
    ) {
        let (d, half) = (self.head_dim, self.half_window());
        for b in 0..self.batch {
            for h in 0..self.heads {
                for i in 0..self.seq {
                    let keys: Vec<usize> =
                        (i.saturating_sub(half)..(i + half + 1).min(self.seq)).collect();
                    let qi = self.q.index(b, h, i);
                    let scores: Vec<f64> = keys
                        .iter()
                        .map(|&j| {
                            let kj = self.k.index(b, h, j);
                            let dot: f64 =
                                (0..d).map(|c| q[qi + c] as f64 * k[kj + c] as f64).sum();
                            let mut x = dot * self.scale as f64;
                            if let (Some(bv), Some(bias)) = (self.bias, bias) {
                                x += bias[bv.index(b, h, i, j)] as f64;
                            }
                            if let (Some(mv), Some(mask)) = (self.mask, mask) {
                                let m = mask[mv.off + b * mv.batch + j];
                                x = if m != 0.0 && x as f32 + m == m {
                                    m as f64
                                } else {
                                    x + m as f64
                                };
                            }
                            x
                        })
                        .collect();
                    let mx = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let w: Vec<f64> = scores.iter().map(|s| (s - mx).exp()).collect();
                    let sum: f64 = w.iter().sum();
                    let oi = self.out.index(b, h, i);
                    for c in 0..d {
                        out[oi + c] = keys
                            .iter()
                            .zip(&w)
                            .map(|(&j, w)| w * v[self.v.index(b, h, j) + c] as f64)
                            .sum::<f64>()
                            / sum;
                    }
                }
            }
        }
    }
}

/// Binding `binding` as `{name}s` with `load_{name}s(i)` (one element as f32) and
/// `ld4_{name}(base, c4)` (columns `4·c4 ..= 4·c4 + 3` of the head row starting at element
/// `base`, 0 past D), read as vec4s when `vec4` (every row start a multiple of 4), else as
/// scalars.
fn operand_wgsl(load: Load, vec4: bool, binding: u32, name: &str) -> String {
    let n = format!("{name}s");
    if vec4 {
        format!(
            "{}fn load_{n}(i: u32) -> f32 {{ return load4_{n}(i >> 2u)[i & 3u]; }}\n\
             fn ld4_{name}(base: u32, c4: u32) -> vec4<f32> {{ return load4_{n}((base >> 2u) + c4); }}\n",
            load.wgsl4(binding, &n)
        )
    } else {
        format!(
            "{}fn ld4_{name}(base: u32, c4: u32) -> vec4<f32> {{\n\
             \x20   let c = c4 * 4u;\n\
             \x20   if (D % 4u == 0u || c + 3u < D) {{\n\
             \x20       return vec4<f32>(load_{n}(base + c), load_{n}(base + c + 1u), load_{n}(base + c + 2u), load_{n}(base + c + 3u));\n\
             \x20   }}\n\
             \x20   var v = vec4<f32>(0.0);\n\
             \x20   for (var t = 0u; t < 4u; t++) {{ if (c + t < D) {{ v[t] = load_{n}(base + c + t); }} }}\n\
             \x20   return v;\n\
             }}\n",
            load.wgsl(binding, &n)
        )
    }
}

/// The CPU-adapter entry point `main_rows` for `d4` groups of 4 head columns and `qr` queries
/// per invocation, unrolled: every per-query value (q, the accumulator, running max and sum) is
/// a named variable, so nothing is indexed by a loop counter (see the shader's comment).
fn rows_entry(d4: usize) -> String {
    use std::fmt::Write;
    let mut w = String::new();
    let qr = rows_qr(d4);
    let rs = 0..qr;
    let lanes = ["x", "y", "z", "w"];
    let mut line = |s: String| {
        w.push_str(&s);
        w.push('\n');
    };
    line(format!(
        "const WR: u32 = {ROWS_WG}u;\n@compute @workgroup_size({ROWS_WG})"
    ));
    line("fn main_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {".into());
    line(format!("    let p = params;\n    let bk = block(wg, nwg, {qr}u * WR);\n    if (!bk.valid) {{ return; }}"));
    line("    let scale = bitcast<f32>(p.scale);".into());
    line("    let kb = p.k_off + bk.b * p.k_b + bk.h * p.k_h;\n    let vb = p.v_off + bk.b * p.v_b + bk.h * p.v_h;".into());
    line("    let qb = p.q_off + bk.b * p.q_b + bk.h * p.q_h;\n    let ob = p.o_off + bk.b * p.o_b + bk.h * p.o_h;".into());
    for r in rs.clone() {
        line(format!(
            "    let i{r} = min(bk.q0 + {r}u * WR + li, p.seq - 1u);"
        ));
        for c in 0..d4 {
            line(format!(
                "    let q{r}_{c} = ld4_q(qb + i{r} * p.q_t, {c}u) * scale;"
            ));
            line(format!("    var a{r}_{c} = vec4<f32>(0.0);"));
        }
        line(format!("    var m{r} = NEG;\n    var l{r} = 0.0;"));
    }
    line("    for (var j0 = bk.lo; j0 < bk.hi; j0 += 4u) {".into());
    line("        let last = bk.hi - 1u;".into());
    line("        let kr = vec4<u32>(j0, min(j0 + 1u, last), min(j0 + 2u, last), min(j0 + 3u, last));".into());
    for r in rs.clone() {
        line(format!("        var s{r} = vec4<f32>(0.0);"));
    }
    for (t, lane) in lanes.iter().enumerate() {
        line(format!("        let k{t} = kb + kr.{lane} * p.k_t;"));
        for c in 0..d4 {
            let mut l = format!("        {{ let k = ld4_k(k{t}, {c}u);");
            for r in rs.clone() {
                let _ = write!(l, " s{r}.{lane} += dot(q{r}_{c}, k);");
            }
            l.push_str(" }");
            line(l);
        }
    }
    line("        var e = vec4<f32>(0.0);".into());
    line("        if (p.has_mask != 0u) {\n            let mb = p.mask_off + bk.b * p.mask_b;\n            e = vec4<f32>(mask[mb + kr.x], mask[mb + kr.y], mask[mb + kr.z], mask[mb + kr.w]);\n        }".into());
    for r in rs.clone() {
        line(format!("        if (p.has_bias != 0u) {{ s{r} += vec4<f32>(bias_at(bk, i{r}, kr.x), bias_at(bk, i{r}, kr.y), bias_at(bk, i{r}, kr.z), bias_at(bk, i{r}, kr.w)); }}"));
        line(format!("        s{r} += e;"));
        line(format!("        let vis{r} = vec4<bool>(visible(i{r}, j0, bk.hi), visible(i{r}, j0 + 1u, bk.hi), visible(i{r}, j0 + 2u, bk.hi), visible(i{r}, j0 + 3u, bk.hi));"));
        line(format!(
            "        let sv{r} = select(vec4<f32>(NEG), s{r}, vis{r});"
        ));
        line(format!(
            "        let mx{r} = max(m{r}, max(max(sv{r}.x, sv{r}.y), max(sv{r}.z, sv{r}.w)));"
        ));
        line(format!("        let al{r} = exp(m{r} - mx{r});"));
        line(format!(
            "        let w{r} = select(vec4<f32>(0.0), exp(s{r} - mx{r}), vis{r});"
        ));
        line(format!(
            "        l{r} = l{r} * al{r} + ((w{r}.x + w{r}.y) + (w{r}.z + w{r}.w));"
        ));
        line(format!("        m{r} = mx{r};"));
        for c in 0..d4 {
            line(format!("        a{r}_{c} *= al{r};"));
        }
    }
    for (t, lane) in lanes.iter().enumerate() {
        line(format!("        let v{t} = vb + kr.{lane} * p.v_t;"));
        for c in 0..d4 {
            let mut l = format!("        {{ let v = ld4_v(v{t}, {c}u);");
            for r in rs.clone() {
                let _ = write!(l, " a{r}_{c} = fma(vec4<f32>(w{r}.{lane}), v, a{r}_{c});");
            }
            l.push_str(" }");
            line(l);
        }
    }
    line("    }".into());
    for r in rs {
        line(format!("    if (bk.q0 + {r}u * WR + li < p.seq) {{"));
        line(format!(
            "        let inv = select(0.0, 1.0 / l{r}, l{r} > 0.0);"
        ));
        for c in 0..d4 {
            line(format!(
                "        store4(ob + i{r} * p.o_t, {c}u, a{r}_{c} * inv);"
            ));
        }
        line("    }".into());
    }
    line("}".into());
    w
}

/// Workgroups for `query_blocks` blocks of queries of each of `bh` (batch × head) sequences:
/// `[query blocks, y, z]` with `bh` split over y and z so no dimension passes 65535; the kernel
/// rebuilds the sequence as `wg.y + wg.z · num_workgroups.y` and skips the ones past `bh`.
pub fn workgroups(query_blocks: usize, bh: usize) -> Result<[u32; 3]> {
    if query_blocks > 65535 || bh > 65535 * 65535 {
        return Err(Error::Graph(format!(
            "attention: {query_blocks} query blocks × {bh} sequences exceed the dispatch limits; use a shorter sequence or a smaller batch"
        )));
    }
    let [y, z, _] = grid(bh as u32);
    Ok([query_blocks as u32, y, z])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    /// A `[batch, seq]` mask with `real[b]` real tokens in row `b`, then padding.
    fn padding_mask(seq: usize, real: &[usize]) -> Vec<f32> {
        real.iter()
            .flat_map(|&r| (0..seq).map(move |j| if j < r { 0.0 } else { f32::MIN }))
            .collect()
    }

    struct Case {
        at: Attention,
        /// Lengths of the Q/K/V buffers (one shared buffer when `shared`).
        qkv_len: usize,
        v_len: usize,
        shared: bool,
        mask: Vec<f32>,
        bias: Vec<f32>,
    }

    /// Runs `c` on `gpu` and returns the relative error against the reference.
    fn run_case(gpu: &Gpu, c: &Case, seed: u64) -> f64 {
        let at = c.at;
        let mut qkv = testing::random(c.qkv_len, seed, 1.5);
        let mut vsep = testing::random(c.v_len.max(1), seed + 1, 1.0);
        if at.dtype == DType::F16 {
            qkv = testing::round_f16(&qkv);
            vsep = testing::round_f16(&vsep);
        }
        let out_len = at.batch * at.seq * at.heads * at.head_dim;
        let wrap = |v: &Vec<f32>| match at.dtype {
            DType::F16 => Buf::F16(v.clone()),
            _ => Buf::F32(v.clone()),
        };
        let v_buf = if c.shared { &qkv } else { &vsep };
        let call = at.call(gpu).unwrap();
        let out = testing::run(
            gpu,
            &call,
            &[
                wrap(&qkv),
                wrap(&qkv),
                wrap(v_buf),
                Buf::F32(c.mask.clone()),
                Buf::F32(c.bias.clone()),
                match at.out_dtype {
                    DType::F16 => Buf::PoisonF16(out_len),
                    _ => Buf::Poison(out_len),
                },
            ],
        );
        let mut reference = vec![f64::NAN; out_len];
        at.reference(
            &qkv,
            &qkv,
            v_buf,
            at.mask.map(|_| c.mask.as_slice()),
            at.bias.map(|_| c.bias.as_slice()),
            &mut reference,
        );
        assert!(
            reference.iter().all(|r| r.is_finite()),
            "reference coverage"
        );
        testing::rel_err(&out[5], &reference)
    }

    /// Q, K, V packed as the graph has them; `dims` = (batch, seq, heads, d); `real[b]` real
    /// tokens in row b; `bias`: per (batch, head), per head or relative (per head and offset).
    fn case(
        dims: (usize, usize, usize, usize),
        real: &[usize],
        bias: Option<Bias>,
        window: usize,
        seed: u64,
    ) -> Case {
        let (batch, seq, heads, d) = dims;
        let mut at = Attention::packed_qkv(batch, seq, heads, d);
        at.window = window;
        let bias_len = match bias {
            Some(Bias::PerBatchHead) => {
                at.bias = Some(BiasView::per_batch_head(heads, seq));
                batch * heads * seq * seq
            }
            Some(Bias::PerHead) => {
                at.bias = Some(BiasView::per_head(seq));
                heads * seq * seq
            }
            Some(Bias::Relative) => {
                at.bias = Some(BiasView::relative(seq));
                heads * (2 * seq - 1)
            }
            None => 4,
        };
        Case {
            at,
            qkv_len: batch * seq * 3 * heads * d,
            v_len: 0,
            shared: true,
            mask: padding_mask(seq, real),
            bias: testing::random(bias_len, seed + 7, 2.0),
        }
    }

    fn check_all_variants(c: &Case, seed: u64, max_err: &mut f64) {
        for gpu in testing::gpus_for(c.at.dtype) {
            for variant in [Variant::Tiled, Variant::Rows] {
                let mut c2 = Case {
                    mask: c.mask.clone(),
                    bias: c.bias.clone(),
                    ..*c
                };
                c2.at.variant = variant;
                let err = run_case(gpu, &c2, seed);
                let tol = if c.at.dtype == DType::F16 { 1e-5 } else { 2e-6 };
                assert!(err < tol, "{:?}: relative error {err:e}", c2.at);
                *max_err = max_err.max(err);
            }
        }
    }

    #[test]
    fn fused_attention_matches_reference_on_awkward_shapes() {
        // (batch, seq, heads, d, real tokens per row)
        let shapes: &[(usize, usize, usize, usize, &[usize])] = &[
            (1, 1, 1, 8, &[1]),
            (2, 7, 3, 16, &[7, 4]),
            (3, 33, 2, 32, &[33, 1, 20]),
            (2, 129, 12, 64, &[129, 70]),
            (1, 33, 5, 6, &[30]),
            (2, 17, 1, 128, &[17, 9]),
            (4, 9, 12, 8, &[9, 8, 2, 5]),
        ];
        let mut max_err = 0.0f64;
        for (n, &(batch, seq, heads, d, real)) in shapes.iter().enumerate() {
            let c = case((batch, seq, heads, d), real, None, 0, n as u64);
            check_all_variants(&c, n as u64, &mut max_err);
        }
        eprintln!("fused attention, awkward shapes: max relative error {max_err:e}");
    }

    #[derive(Clone, Copy)]
    enum Bias {
        PerHead,
        PerBatchHead,
        Relative,
    }

    #[test]
    fn position_bias_and_sliding_window() {
        use Bias::*;
        let mut max_err = 0.0f64;
        // (batch, seq, heads, d, real, bias, window)
        type Row = (
            usize,
            usize,
            usize,
            usize,
            &'static [usize],
            Option<Bias>,
            usize,
        );
        let shapes: &[Row] = &[
            (2, 33, 4, 16, &[33, 10], Some(PerHead), 0),
            (3, 7, 2, 8, &[7, 3, 1], Some(PerBatchHead), 0),
            (2, 129, 3, 32, &[129, 50], None, 8),
            (2, 33, 2, 64, &[33, 12], None, 3),
            (2, 65, 3, 16, &[40, 65], Some(PerBatchHead), 8),
            (1, 7, 1, 8, &[7], Some(PerHead), 3),
            // Relative (MPNet): one value per head and offset j − i, read backwards per query.
            (2, 33, 3, 16, &[33, 20], Some(Relative), 0),
            (3, 70, 2, 8, &[70, 1, 45], Some(Relative), 0),
            (1, 1, 2, 8, &[1], Some(Relative), 0),
            // A window wider than the sequence is global attention.
            (1, 9, 2, 8, &[5], None, 64),
        ];
        for (n, &(batch, seq, heads, d, real, bias, window)) in shapes.iter().enumerate() {
            let c = case((batch, seq, heads, d), real, bias, window, 100 + n as u64);
            check_all_variants(&c, 100 + n as u64, &mut max_err);
        }
        eprintln!("fused attention, bias and windows: max relative error {max_err:e}");
    }

    #[test]
    fn separate_buffers_strides_and_f16_inputs() {
        let mut max_err = 0.0f64;
        // Q and K in one [B, S, 2H] buffer, V in its own [B, S, H] (the layout the graph used
        // before Q, K and V were one projection), first with rows at multiples of 4 (vec4
        // loads), then with Q and K 2 elements into their buffer (scalar loads).
        let (batch, seq, heads, d) = (2, 33, 3, 16);
        let h = heads * d;
        let mut at = Attention::packed_qkv(batch, seq, heads, d);
        at.q = HeadView::interleaved(seq, 2 * h, 0, d);
        at.k = HeadView::interleaved(seq, 2 * h, h, d);
        at.v = HeadView::interleaved(seq, h, 0, d);
        assert!(at.vec4_ok());
        let mut c = Case {
            at,
            qkv_len: batch * seq * 2 * h,
            v_len: batch * seq * h,
            shared: false,
            mask: padding_mask(seq, &[33, 17]),
            bias: vec![0.0; 4],
        };
        check_all_variants(&c, 300, &mut max_err);
        c.at.q.off += 2;
        c.at.k.off += 2;
        c.qkv_len += 2;
        assert!(!c.at.vec4_ok());
        check_all_variants(&c, 300, &mut max_err);
        // No mask at all.
        let mut c2 = case((2, 7, 2, 8), &[7, 7], None, 0, 301);
        c2.at.mask = None;
        check_all_variants(&c2, 301, &mut max_err);
        // f16 Q, K, V (rounded before the reference too): native and packed loads.
        let mut c3 = case((2, 33, 2, 16), &[33, 5], Some(Bias::PerHead), 8, 302);
        c3.at.dtype = DType::F16;
        check_all_variants(&c3, 302, &mut max_err);
        // f16 output too (--precision f16): rounded once at the end, up to 2^-11 relative per
        // element; native f16 only (packed f16 cannot be written element by element).
        let gpu = crate::gpu::test_gpu();
        assert!(gpu.has_f16());
        c3.at.out_dtype = DType::F16;
        for variant in [Variant::Tiled, Variant::Rows] {
            let c4 = Case {
                mask: c3.mask.clone(),
                bias: c3.bias.clone(),
                at: Attention { variant, ..c3.at },
                ..c3
            };
            let err = run_case(gpu, &c4, 303);
            assert!(err < 1e-3, "{:?}: relative error {err:e}", c4.at);
        }
        let e = c3.at.call(crate::gpu::test_gpu_packed_f16()).err().unwrap();
        assert!(e.to_string().contains("SHADER_F16"), "{e}");
        eprintln!("fused attention, layouts and f16: max relative error {max_err:e}");
    }

    /// The cooperative-matrix variant, where the adapter has it (CI runs the kernel tests on
    /// Mesa 26's lavapipe with WGFORMER_TEST_REQUIRE_COOP=1): f16 Q, K, V on awkward shapes with
    /// masks, every bias layout and windows. The probabilities are rounded to f16 before P·V,
    /// so the bound is f16's, not f32's.
    #[test]
    fn coop_variant_matches_reference() {
        use Bias::*;
        let gpu = crate::gpu::test_gpu();
        let Some(cfg) = gpu.coop() else {
            eprintln!(
                "{} has no cooperative matrices: the coop attention runs under scripts/coopmat-lavapipe.sh",
                gpu.describe()
            );
            return;
        };
        type Row = (
            usize,
            usize,
            usize,
            usize,
            &'static [usize],
            Option<Bias>,
            usize,
        );
        let shapes: &[Row] = &[
            (1, 1, 1, 8, &[1], None, 0),
            (2, 7, 3, 16, &[7, 4], None, 0),
            (3, 33, 2, 32, &[33, 1, 20], Some(PerHead), 0),
            (2, 65, 2, 64, &[65, 30], Some(PerBatchHead), 8),
            (1, 33, 5, 6, &[30], Some(Relative), 0),
            (2, 40, 2, 24, &[40, 17], None, 3),
        ];
        let mut worst = 0f64;
        for (n, &(batch, seq, heads, d, real, bias, window)) in shapes.iter().enumerate() {
            let mut c = case((batch, seq, heads, d), real, bias, window, 400 + n as u64);
            c.at.dtype = DType::F16;
            c.at.variant = Variant::Coop;
            assert!(c.at.coop_fits(gpu), "{:?} on {cfg:?}", c.at);
            for out in [DType::F32, DType::F16] {
                c.at.out_dtype = out;
                let err = run_case(gpu, &c, 400 + n as u64);
                assert!(err < 2e-3, "{:?}: relative error {err:e}", c.at);
                worst = worst.max(err);
            }
        }
        // Auto picks it for f16 operands.
        let mut at = Attention::packed_qkv(1, 9, 2, 16);
        at.dtype = DType::F16;
        assert_eq!(at.resolved_variant(gpu), Variant::Coop);
        eprintln!("coop attention: max relative error {worst:e}");
    }

    #[test]
    fn more_than_65535_sequences_split_the_dispatch() {
        for bh in [1, 65535, 65536, 70_000, 200_000, 5_000_000] {
            let [x, y, z] = workgroups(3, bh).unwrap();
            assert_eq!(x, 3);
            assert!(y <= 65535 && z <= 65535, "{bh}: {y} × {z}");
            assert!((y as usize) * (z as usize) >= bh, "{bh}: {y} × {z} too few");
            // No whole row of the split is wasted.
            assert!(
                (y as usize) * (z as usize - 1) < bh,
                "{bh}: {y} × {z} too many"
            );
        }
        assert!(workgroups(65536, 1).is_err());
        // A real run past the limit: 65,600 sequences of 2 tokens, one head of 8.
        let gpu = crate::gpu::test_gpu();
        let (batch, seq) = (65_600, 2);
        let mut max_err = 0.0f64;
        let real: Vec<usize> = (0..batch).map(|b| 1 + b % 2).collect();
        let c = case((batch, seq, 1, 8), &real, None, 0, 400);
        assert!(workgroups(1, batch).unwrap()[2] > 1);
        for variant in [Variant::Tiled, Variant::Rows] {
            let mut c2 = Case {
                mask: c.mask.clone(),
                bias: c.bias.clone(),
                ..c
            };
            c2.at.variant = variant;
            let err = run_case(gpu, &c2, 400);
            assert!(err < 2e-6, "{variant:?}: relative error {err:e}");
            max_err = max_err.max(err);
        }
        eprintln!("fused attention, 65,600 sequences: max relative error {max_err:e}");
    }

    /// Timing loop (not a check): `cargo test --release --lib attention_timing -- --ignored
    /// --nocapture`. MiniLM (d 32) and BERT-base (d 64) layers at batch 4 × 128 tokens; wall
    /// time of one dispatch with its uploads and readback, best of 4.
    #[test]
    #[ignore]
    fn attention_timing() {
        let gpu = crate::gpu::test_gpu();
        let (batch, seq, heads) = (4, 128, 12);
        for d in [32, 64] {
            let c = case((batch, seq, heads, d), &[128, 100, 64, 20], None, 0, 1);
            let qkv = testing::random(c.qkv_len, 1, 1.0);
            for variant in [Variant::Rows, Variant::Tiled] {
                let mut at = c.at;
                at.variant = variant;
                let t = std::time::Instant::now();
                let call = at.call(gpu).unwrap();
                let bufs = || {
                    vec![
                        Buf::F32(qkv.clone()),
                        Buf::F32(qkv.clone()),
                        Buf::F32(qkv.clone()),
                        Buf::F32(c.mask.clone()),
                        Buf::F32(vec![0.0; 4]),
                        Buf::Poison(batch * seq * heads * d),
                    ]
                };
                testing::run(gpu, &call, &bufs());
                let first = t.elapsed().as_secs_f64();
                let mut best = f64::MAX;
                for _ in 0..4 {
                    let t = std::time::Instant::now();
                    testing::run(gpu, &call, &bufs());
                    best = best.min(t.elapsed().as_secs_f64());
                }
                eprintln!(
                    "{variant:?} d {d}: first run (with compile) {:.2} s, best {:.1} ms",
                    first,
                    best * 1e3
                );
            }
        }
    }

    #[test]
    fn unsupported_head_dim_is_a_clear_error() {
        let gpu = crate::gpu::test_gpu();
        let at = Attention::packed_qkv(1, 4, 1, 129);
        let err = at.call(gpu).err().expect("d = 129 rejected").to_string();
        assert!(
            err.contains("head dimension 129") && err.contains("128"),
            "{err}"
        );
    }

    #[test]
    fn flops_count_visible_pairs() {
        let mut at = Attention::packed_qkv(2, 10, 3, 8);
        assert_eq!(at.visible_pairs(), 100);
        assert_eq!(at.flops(), 4 * 2 * 3 * 8 * 100);
        // Window 4: keys i-2 ..= i+2 within 0..10: 3 + 4 + 5·6 + 4 + 3.
        at.window = 4;
        assert_eq!(at.visible_pairs(), 44);
        at.window = 1;
        assert_eq!(at.visible_pairs(), 10);
    }
}
