//! LayerNorm with learned scale and shift, optionally fused with a residual add
//! (`shaders/layer_norm.wgsl`).

use super::{grid, with_enables, with_reduce, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::Result;

const SOURCE: &str = include_str!("../../shaders/layer_norm.wgsl");

#[derive(Clone, Copy, Debug)]
pub struct LayerNorm {
    pub rows: usize,
    pub n: usize,
    pub eps: f32,
    pub residual: bool,
    /// Also write `x + residual` (f32) to binding 6: the residual stream of pre-LN models.
    pub write_sum: bool,
    /// `Some(true)`: one invocation per row (CPU adapters); `Some(false)`: a workgroup per row;
    /// `None`: by adapter type.
    pub per_row: Option<bool>,
    /// x's dtype (f16: a matmul output under `--precision f16`); residual and output are f32.
    pub x_dtype: DType,
}

impl LayerNorm {
    /// Bindings: 1 x, 2 residual (any buffer when `residual` is false), 3 gamma, 4 beta, 5 out,
    /// 6 sum (any buffer when `write_sum` is false).
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        // One invocation per row on CPU adapters, a workgroup per row elsewhere.
        let rows_variant = self.per_row.unwrap_or(gpu.cpu_kernels());
        let entry = if rows_variant { "main_rows" } else { "main" };
        let lx = Load::for_dtype(gpu, self.x_dtype);
        let pipeline =
            gpu.pipeline_entry(&format!("layer_norm.{entry}.{}", lx.tag()), entry, || {
                with_enables(&[lx], format!("{}{}", lx.wgsl(1, "x"), with_reduce(SOURCE)))
            })?;
        let n = (self.rows * self.n) as u64;
        let inputs = if self.residual { 2 } else { 1 };
        Ok(KernelCall {
            kind: "layer_norm",
            pipeline,
            params: vec![
                self.rows as u32,
                self.n as u32,
                super::f(self.eps),
                u32::from(self.residual),
                u32::from(self.write_sum),
            ],
            workgroups: if rows_variant {
                grid((self.rows as u32).div_ceil(64))
            } else {
                grid(self.rows as u32)
            },
            flops: n * (7 + u64::from(self.residual)),
            bytes: self.x_dtype.bytes(n as usize)
                + 4 * n * (inputs + u64::from(self.write_sum))
                + 8 * self.n as u64,
        })
    }

    pub fn reference(&self, x: &[f32], res: Option<&[f32]>, g: &[f32], b: &[f32]) -> Vec<f64> {
        let mut out = vec![0.0; self.rows * self.n];
        for r in 0..self.rows {
            let v: Vec<f64> = (0..self.n)
                .map(|i| {
                    let j = r * self.n + i;
                    x[j] as f64 + res.map_or(0.0, |res| res[j] as f64)
                })
                .collect();
            let mean = v.iter().sum::<f64>() / self.n as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / self.n as f64;
            let inv = 1.0 / (var + self.eps as f64).sqrt();
            for i in 0..self.n {
                out[r * self.n + i] = (v[i] - mean) * inv * g[i] as f64 + b[i] as f64;
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
    fn layer_norm_matches_reference() {
        for x_dtype in [DType::F32, DType::F16] {
            for gpu in testing::gpus_for(x_dtype) {
                check(gpu, x_dtype);
            }
        }
    }

    fn check(gpu: &Gpu, x_dtype: DType) {
        for &(rows, n) in &[(1, 1), (7, 33), (129, 384), (3, 768), (5, 1536), (33, 7)] {
            // An offset mean tests the two-pass variance.
            let mut x: Vec<f32> = testing::random(rows * n, n as u64, 2.0)
                .iter()
                .map(|v| v + 30.0)
                .collect();
            if x_dtype == DType::F16 {
                // The reference sees the same rounded inputs: the bound stays the kernel's own.
                x = testing::round_f16(&x);
            }
            let res = testing::random(rows * n, 1 + n as u64, 2.0);
            let g = testing::random(n, 2, 1.5);
            let b = testing::random(n, 3, 0.5);
            for (residual, per_row) in [(false, false), (true, false), (true, true), (false, true)]
            {
                for (eps, write_sum) in [(1e-12f32, false), (1e-5, true)] {
                    let ln = LayerNorm {
                        rows,
                        n,
                        eps,
                        residual,
                        write_sum,
                        per_row: Some(per_row),
                        x_dtype,
                    };
                    let call = ln.call(gpu).unwrap();
                    let out = testing::run(
                        gpu,
                        &call,
                        &[
                            match x_dtype {
                                DType::F16 => Buf::F16(x.clone()),
                                _ => Buf::F32(x.clone()),
                            },
                            Buf::F32(res.clone()),
                            Buf::F32(g.clone()),
                            Buf::F32(b.clone()),
                            Buf::Poison(rows * n),
                            Buf::Poison(if write_sum { rows * n } else { 1 }),
                        ],
                    );
                    let r = ln.reference(&x, residual.then_some(&res[..]), &g, &b);
                    let err = testing::rel_err(&out[4], &r);
                    // n = 1 has zero variance: the output is beta exactly.
                    assert!(err < 1e-5, "{ln:?}: relative error {err:e}");
                    if write_sum {
                        // The sum is one f32 addition of the two inputs: exact to rounding.
                        let want: Vec<f64> = (0..rows * n)
                            .map(|i| (x[i] + if residual { res[i] } else { 0.0 }) as f64)
                            .collect();
                        assert_eq!(testing::rel_err(&out[5], &want), 0.0, "{ln:?}: sum");
                    }
                }
            }
        }
    }
}
