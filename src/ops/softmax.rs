//! Row softmax with an additive mask (`shaders/softmax.wgsl`), in place.

use super::{grid, with_reduce, KernelCall};
use crate::gpu::Gpu;
use crate::Result;

const SOURCE: &str = include_str!("../../shaders/softmax.wgsl");

#[derive(Clone, Copy, Debug)]
pub struct Softmax {
    pub rows: usize,
    pub len: usize,
    /// Consecutive rows sharing one mask row (heads × queries for attention).
    pub rows_per_mask: usize,
    pub has_mask: bool,
    /// First mask element this call reads (attention run in chunks of the batch).
    pub mask_off: usize,
    /// `Some(true)`: one invocation per row (CPU adapters); `Some(false)`: a workgroup per row;
    /// `None`: by adapter type.
    pub per_row: Option<bool>,
}

impl Softmax {
    /// Bindings: 1 x (read_write, `rows × len`), 2 mask (`rows / rows_per_mask × len`; any buffer
    /// when `has_mask` is false).
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        // One invocation per row on CPU adapters, a workgroup per row elsewhere.
        let rows_variant = self.per_row.unwrap_or(gpu.cpu_kernels());
        let entry = if rows_variant { "main_rows" } else { "main" };
        let pipeline =
            gpu.pipeline_entry(&format!("softmax.{entry}"), entry, || with_reduce(SOURCE))?;
        let n = (self.rows * self.len) as u64;
        Ok(KernelCall {
            kind: "softmax",
            pipeline,
            params: vec![
                self.rows as u32,
                self.len as u32,
                self.rows_per_mask.max(1) as u32,
                u32::from(self.has_mask),
                self.mask_off as u32,
            ],
            workgroups: if rows_variant {
                grid((self.rows as u32).div_ceil(64))
            } else {
                grid(self.rows as u32)
            },
            // max, subtract, exp, sum, scale (+ mask add).
            flops: n * (5 + u64::from(self.has_mask)),
            bytes: 8 * n,
        })
    }

    pub fn reference(&self, x: &[f32], mask: Option<&[f32]>) -> Vec<f64> {
        let mut out = vec![0.0; self.rows * self.len];
        for r in 0..self.rows {
            let row: Vec<f64> = (0..self.len)
                .map(|i| {
                    let m = match (self.has_mask, mask) {
                        (true, Some(m)) => {
                            m[self.mask_off + (r / self.rows_per_mask) * self.len + i] as f64
                        }
                        _ => 0.0,
                    };
                    x[r * self.len + i] as f64 + m
                })
                .collect();
            let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = row.iter().map(|v| (v - mx).exp()).sum();
            for i in 0..self.len {
                out[r * self.len + i] = (row[i] - mx).exp() / s;
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
    fn softmax_matches_reference_with_and_without_mask() {
        let gpu = crate::gpu::test_gpu();
        for &(rows, len, per) in &[
            (1, 1, 1),
            (7, 33, 7),
            (36, 129, 12),
            (5, 384, 5),
            (2, 1536, 1),
        ] {
            // Large logits: a naive exp would overflow.
            let x = testing::random(rows * len, len as u64, 60.0);
            let groups = rows / per;
            let mask: Vec<f32> = (0..groups * len)
                .map(|i| {
                    if i % len < len - (i / len) % len.max(2) / 2 {
                        0.0
                    } else {
                        f32::MIN
                    }
                })
                .collect();
            for (has_mask, per_row) in [(false, false), (true, false), (false, true), (true, true)]
            {
                let sm = Softmax {
                    rows,
                    len,
                    rows_per_mask: per,
                    has_mask,
                    mask_off: 0,
                    per_row: Some(per_row),
                };
                // In place, so the output cannot be poisoned: instead every element must differ
                // from its input (random scores, none of them a probability of its row).
                let call = sm.call(gpu).unwrap();
                let out = testing::run(gpu, &call, &[Buf::F32(x.clone()), Buf::F32(mask.clone())]);
                if let Some(i) = out[0].iter().zip(&x).position(|(o, i)| o == i) {
                    panic!("{sm:?}: element {i} was not written ({})", x[i]);
                }
                let r = sm.reference(&x, Some(&mask));
                let err = testing::rel_err(&out[0], &r);
                assert!(err < 1e-5, "{sm:?}: relative error {err:e}");
            }
        }
    }
}
