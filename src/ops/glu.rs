//! Gated linear unit (`shaders/glu.wgsl`): `act(input) · gate` over the two halves of each row
//! of one projection (GeGLU with `gelu`).

use super::activation::{functions, Act};
use super::{grid, with_enables, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::{Error, Result};

const SOURCE: &str = include_str!("../../shaders/glu.wgsl");

#[derive(Clone, Copy, Debug)]
pub struct Glu {
    pub rows: usize,
    /// Output columns; the input has `2·width`.
    pub width: usize,
    pub act: Act,
    pub x_dtype: DType,
    /// f16 needs SHADER_F16.
    pub out_dtype: DType,
}

impl Glu {
    /// Bindings: 1 x `[rows, 2·width]`, 2 out `[rows, width]`.
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let lx = Load::for_dtype(gpu, self.x_dtype);
        let lo = Load::for_dtype(gpu, self.out_dtype);
        if self.out_dtype == DType::F16 && lo != Load::F16Native {
            return Err(Error::Graph(
                "a gated activation writing f16 needs SHADER_F16".into(),
            ));
        }
        let pipeline = gpu.pipeline(&format!("glu.{}.{}", lx.tag(), lo.tag()), || {
            with_enables(
                &[lx, lo],
                format!(
                    "{}{}{}{SOURCE}",
                    functions(),
                    lx.wgsl(1, "x"),
                    lo.store_wgsl(2, "out")
                ),
            )
        })?;
        let n = self.rows * self.width;
        Ok(KernelCall {
            kind: "glu",
            pipeline,
            params: vec![self.rows as u32, self.width as u32, self.act.code()],
            workgroups: grid((n as u32).div_ceil(256)),
            flops: 10 * n as u64,
            bytes: self.x_dtype.bytes(2 * n) + self.out_dtype.bytes(n),
        })
    }

    pub fn reference(&self, x: &[f32]) -> Vec<f64> {
        let w = self.width;
        (0..self.rows * w)
            .map(|i| {
                let (r, c) = (i / w, i % w);
                self.act.reference(x[r * 2 * w + c] as f64) * x[r * 2 * w + w + c] as f64
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    #[test]
    fn glu_matches_reference() {
        let gpu = crate::gpu::test_gpu();
        assert!(gpu.has_f16());
        for &(rows, width) in &[(1, 1), (7, 33), (129, 64), (3, 1000)] {
            let x = testing::random(rows * 2 * width, (rows * width) as u64, 4.0);
            for act in [Act::Gelu, Act::GeluNew, Act::Relu] {
                for (xd, od) in [
                    (DType::F32, DType::F32),
                    (DType::F16, DType::F32),
                    (DType::F16, DType::F16),
                ] {
                    for g in testing::gpus_for(xd) {
                        // An f16 output is written element by element: native f16 only.
                        if od == DType::F16 && !std::ptr::eq(g, &**gpu) {
                            continue;
                        }
                        let glu = Glu {
                            rows,
                            width,
                            act,
                            x_dtype: xd,
                            out_dtype: od,
                        };
                        let (input, buf) = if xd == DType::F16 {
                            let r = testing::round_f16(&x);
                            (r.clone(), Buf::F16(r))
                        } else {
                            (x.clone(), Buf::F32(x.clone()))
                        };
                        let out_buf = if od == DType::F16 {
                            Buf::PoisonF16(rows * width)
                        } else {
                            Buf::Poison(rows * width)
                        };
                        let call = glu.call(g).unwrap();
                        let out = testing::run(g, &call, &[buf, out_buf]);
                        let err = testing::rel_err(&out[1], &glu.reference(&input));
                        let tol = if od == DType::F16 { 1e-3 } else { 2e-6 };
                        assert!(err < tol, "{glu:?}: relative error {err:e}");
                    }
                }
            }
        }
        let e = Glu {
            rows: 1,
            width: 4,
            act: Act::Gelu,
            x_dtype: DType::F32,
            out_dtype: DType::F16,
        }
        .call(crate::gpu::test_gpu_packed_f16())
        .err()
        .unwrap();
        assert!(e.to_string().contains("SHADER_F16"), "{e}");
    }
}
