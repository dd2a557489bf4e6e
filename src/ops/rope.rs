//! Rotary position embedding (`shaders/rope.wgsl`), in place on the Q and K parts of a packed
//! QKV projection, with the angles' cos and sin computed on the host as transformers computes
//! them ([`table`]).

use super::{grid, with_enables, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../shaders/rope.wgsl");

/// RoPE over a `[batch, seq, 3·heads·head_dim]` projection (Q, K, V side by side).
#[derive(Clone, Copy, Debug)]
pub struct Rope {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// The projection's dtype (f16 needs SHADER_F16: it is rewritten in place).
    pub dtype: DType,
}

/// cos then sin of `t · inv_freq[p]` for `t < seq`, `p < head_dim/2`: `[2, seq, head_dim/2]`.
/// `inv_freq[p] = 1 / theta^(2p/head_dim)` rounded to f32 and the angle `t · inv_freq` taken
/// in f32, as transformers' default rotary embedding does; cos and sin are correctly rounded.
pub fn table(seq: usize, head_dim: usize, theta: f64) -> Vec<f32> {
    let half = head_dim / 2;
    let inv: Vec<f32> = (0..half)
        .map(|p| {
            let pow = theta.powf((2 * p) as f32 as f64 / head_dim as f64) as f32;
            1.0f32 / pow
        })
        .collect();
    let mut out = vec![0f32; 2 * seq * half];
    for t in 0..seq {
        for (p, f) in inv.iter().enumerate() {
            let angle = (t as f32 * f) as f64;
            out[t * half + p] = angle.cos() as f32;
            out[seq * half + t * half + p] = angle.sin() as f32;
        }
    }
    out
}

impl Rope {
    /// Bindings: 1 qkv (read_write), 2 the [`table`] for `seq` positions.
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::Graph(format!(
                "rotary embedding needs an even head dimension, not {}",
                self.head_dim
            )));
        }
        let store = Load::for_dtype(gpu, self.dtype);
        if self.dtype == DType::F16 && store != Load::F16Native {
            return Err(Error::Graph(
                "rotary embedding on f16 activations needs SHADER_F16".into(),
            ));
        }
        let pipeline = gpu.pipeline(&format!("rope.{}", store.tag()), || {
            with_enables(&[store], format!("{}{SOURCE}", store.store_wgsl(1, "qkv")))
        })?;
        let hidden = self.heads * self.head_dim;
        let tokens = self.batch * self.seq;
        let n = tokens * 2 * hidden;
        Ok(KernelCall {
            kind: "rope",
            pipeline,
            params: vec![
                tokens as u32,
                self.seq as u32,
                self.heads as u32,
                (self.head_dim / 2) as u32,
                (3 * hidden) as u32,
                hidden as u32,
            ],
            workgroups: grid(((n / 2) as u32).div_ceil(64)),
            flops: 3 * n as u64,
            bytes: 2 * self.dtype.bytes(n) + 4 * n as u64,
        })
    }

    /// CPU f64 reference: the rotated projection (V untouched).
    pub fn reference(&self, qkv: &[f32], table: &[f32]) -> Vec<f64> {
        let (half, hidden) = (self.head_dim / 2, self.heads * self.head_dim);
        let mut out: Vec<f64> = qkv.iter().map(|&x| x as f64).collect();
        for tok in 0..self.batch * self.seq {
            let t = tok % self.seq;
            for part in 0..2 {
                for h in 0..self.heads {
                    for p in 0..half {
                        let at = tok * 3 * hidden + part * hidden + h * self.head_dim + p;
                        let (x1, x2) = (qkv[at] as f64, qkv[at + half] as f64);
                        let c = table[t * half + p] as f64;
                        let s = table[self.seq * half + t * half + p] as f64;
                        out[at] = x1 * c - x2 * s;
                        out[at + half] = x2 * c + x1 * s;
                    }
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

    #[test]
    fn table_is_the_default_rope() {
        let t = table(5, 8, 10000.0);
        // p = 0: inv_freq 1, angle t; p = 1: 1/10000^(1/4) = 0.1.
        assert!((t[3 * 4] - 3f32.cos()).abs() < 1e-7);
        assert!((t[5 * 4 + 3 * 4] - 3f32.sin()).abs() < 1e-7);
        assert!((t[2 * 4 + 1] - (0.2f64).cos() as f32).abs() < 1e-7);
    }

    #[test]
    fn rope_matches_reference_on_awkward_shapes() {
        // (batch, seq, heads, head_dim)
        for &(batch, seq, heads, d) in &[(1, 1, 1, 2), (2, 7, 3, 8), (3, 33, 4, 32), (1, 65, 2, 6)]
        {
            let tab = table(seq, d, 160000.0);
            let hidden = heads * d;
            let qkv = testing::random(batch * seq * 3 * hidden, seq as u64, 2.0);
            // f16 is rewritten in place: native f16 only (the test adapter has it).
            let gpu = crate::gpu::test_gpu();
            assert!(gpu.has_f16());
            for dt in [DType::F32, DType::F16] {
                let r = Rope {
                    batch,
                    seq,
                    heads,
                    head_dim: d,
                    dtype: dt,
                };
                let input = if dt == DType::F16 {
                    testing::round_f16(&qkv)
                } else {
                    qkv.clone()
                };
                let call = r.call(gpu).unwrap();
                let buf = if dt == DType::F16 {
                    Buf::F16(input.clone())
                } else {
                    Buf::F32(input.clone())
                };
                let out = testing::run(gpu, &call, &[buf, Buf::F32(tab.clone())]);
                let want = r.reference(&input, &tab);
                let err = testing::rel_err(&out[0], &want);
                let tol = if dt == DType::F16 { 1e-3 } else { 1e-6 };
                assert!(err < tol, "{r:?}: relative error {err:e}");
                if dt == DType::F16 {
                    let e = r.call(crate::gpu::test_gpu_packed_f16()).err().unwrap();
                    assert!(e.to_string().contains("SHADER_F16"), "{e}");
                }
                // V is left as it was.
                for tok in 0..batch * seq {
                    let v = tok * 3 * hidden + 2 * hidden;
                    assert_eq!(out[0][v..v + hidden], input[v..v + hidden]);
                }
            }
        }
    }
}
