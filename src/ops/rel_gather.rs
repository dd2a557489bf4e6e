//! The disentangled-attention bias gather (`shaders/rel_gather.wgsl`): DeBERTa's
//! content→position and position→content scores, computed by two batched matmuls against a
//! window of relative-position rows, gathered into the `[batch·heads, seq, seq]` f32 bias the
//! fused attention adds to its scores.

use super::{grid, with_enables, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::Result;

const SOURCE: &str = include_str!("../../shaders/rel_gather.wgsl");

/// `out[z, i, j] = c2p[z, i, t] + p2c[z, j, t]` with `t = idx[i − j + seq − 1]`; `c2p` and
/// `p2c` are `[bh, seq, width]`, `idx` u32 `[2·seq − 1]` (each `< width`).
#[derive(Clone, Copy, Debug)]
pub struct RelGather {
    /// Batch × heads.
    pub bh: usize,
    pub seq: usize,
    /// Relative-position rows per query (the matmuls' window).
    pub width: usize,
    pub c2p: bool,
    pub p2c: bool,
    /// The dtype of `c2p` and `p2c`.
    pub dtype: DType,
}

impl RelGather {
    pub fn elements(&self) -> usize {
        self.bh * self.seq * self.seq
    }

    /// Bindings: 1 c2p, 2 p2c (any buffer when that term is off), 3 idx, 4 out (f32, written).
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let l = Load::for_dtype(gpu, self.dtype);
        let pipeline = gpu.pipeline(&format!("rel_gather.{}", l.tag()), || {
            with_enables(
                &[l],
                format!("{}{}{SOURCE}", l.wgsl(1, "c2p"), l.wgsl(2, "p2c")),
            )
        })?;
        let n = self.elements();
        let terms = usize::from(self.c2p) + usize::from(self.p2c);
        let flags = u32::from(self.c2p) | (u32::from(self.p2c) << 1);
        Ok(KernelCall {
            kind: "rel_gather",
            pipeline,
            params: vec![self.bh as u32, self.seq as u32, self.width as u32, flags],
            workgroups: grid(u32::try_from(n.div_ceil(256)).map_err(|_| {
                crate::Error::Graph(format!(
                    "a disentangled bias of {n} elements is too large for one dispatch"
                ))
            })?),
            flops: (terms.saturating_sub(1) * n) as u64,
            bytes: self.dtype.bytes(terms * n) + DType::F32.bytes(n) + 4 * n as u64,
        })
    }

    /// CPU f64 reference.
    pub fn reference(&self, c2p: &[f32], p2c: &[f32], idx: &[u32]) -> Vec<f64> {
        let (s, w) = (self.seq, self.width);
        let mut out = vec![0f64; self.elements()];
        for z in 0..self.bh {
            for i in 0..s {
                for j in 0..s {
                    let t = idx[i + s - 1 - j] as usize;
                    let mut v = 0f64;
                    if self.c2p {
                        v += c2p[(z * s + i) * w + t] as f64;
                    }
                    if self.p2c {
                        v += p2c[(z * s + j) * w + t] as f64;
                    }
                    out[(z * s + i) * s + j] = v;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    /// Awkward shapes (seq not a multiple of anything, windows narrower and wider than the
    /// sequence, one-row sequences) in f32 and f16, with each term alone and both.
    #[test]
    fn rel_gather_matches_f64_reference() {
        for dtype in [DType::F32, DType::F16] {
            for gpu in testing::gpus_for(dtype) {
                for (bh, seq, width, seed) in [(3, 7, 5, 1), (10, 37, 73, 2), (2, 1, 1, 3)] {
                    for (c2p_on, p2c_on) in [(true, true), (true, false), (false, true)] {
                        let g = RelGather {
                            bh,
                            seq,
                            width,
                            c2p: c2p_on,
                            p2c: p2c_on,
                            dtype,
                        };
                        let mut c2p = testing::random(bh * seq * width, seed, 2.0);
                        let mut p2c = testing::random(bh * seq * width, seed + 7, 2.0);
                        if dtype == DType::F16 {
                            c2p = testing::round_f16(&c2p);
                            p2c = testing::round_f16(&p2c);
                        }
                        // Any row of the window per offset, not a monotone map.
                        let idx: Vec<u32> = (0..2 * seq - 1)
                            .map(|o| ((o * 7 + seed as usize) % width) as u32)
                            .collect();
                        let want = g.reference(&c2p, &p2c, &idx);
                        let call = g.call(gpu).unwrap();
                        let wrap = |v: Vec<f32>| match dtype {
                            DType::F16 => Buf::F16(v),
                            _ => Buf::F32(v),
                        };
                        let out = testing::run(
                            gpu,
                            &call,
                            &[
                                wrap(c2p.clone()),
                                wrap(p2c.clone()),
                                Buf::U32(idx.clone()),
                                Buf::Poison(g.elements()),
                            ],
                        );
                        let err = testing::rel_err(&out[3], &want);
                        assert!(
                            err < 1e-7,
                            "{dtype:?} bh {bh} seq {seq} width {width} terms ({c2p_on}, {p2c_on}): rel err {err:e}"
                        );
                    }
                }
            }
        }
    }
}
