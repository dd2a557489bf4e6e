//! Elementwise activations (`shaders/activation.wgsl`), applied in place; the same functions run
//! fused in the matmul epilogue.

use super::{grid, KernelCall};
use crate::gpu::Gpu;
use crate::{Error, Result};

pub(crate) const SOURCE: &str = include_str!("../../shaders/activation.wgsl");
const ENTRY_MARK: &str = "// ---- standalone entry";

/// The activation functions alone, for kernels that fuse them.
pub(crate) fn functions() -> &'static str {
    SOURCE.split(ENTRY_MARK).next().unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, serde::Serialize)]
pub enum Act {
    #[default]
    Identity,
    /// Exact erf form (Hugging Face `gelu`).
    Gelu,
    /// Tanh approximation (Hugging Face `gelu_new`, `gelu_pytorch_tanh`).
    GeluNew,
    Relu,
    Tanh,
}

impl Act {
    pub fn code(self) -> u32 {
        match self {
            Act::Identity => 0,
            Act::Gelu => 1,
            Act::GeluNew => 2,
            Act::Relu => 3,
            Act::Tanh => 4,
        }
    }

    /// Maps a Hugging Face `hidden_act` / `activation` name.
    pub fn from_hf(name: &str) -> Result<Act> {
        Ok(match name {
            "gelu" | "gelu_python" => Act::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Act::GeluNew,
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "linear" | "identity" => Act::Identity,
            other => {
                return Err(Error::Input(format!(
                    "activation `{other}` is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, tanh)"
                )))
            }
        })
    }

    /// CPU f64 reference.
    pub fn reference(self, x: f64) -> f64 {
        match self {
            Act::Identity => x,
            Act::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Act::GeluNew => {
                let inner = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x.powi(3));
                0.5 * x * (1.0 + inner.tanh())
            }
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
        }
    }
}

/// f64 erf for references: series below 3, continued fraction above (both converge to 1e-16).
pub fn erf(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 3.0 {
        // erf(x) = 2/sqrt(pi) * exp(-x²) * sum 2^n x^(2n+1) / (1·3·…·(2n+1))
        let mut term = ax;
        let mut sum = ax;
        let mut n = 0.0;
        while term.abs() > 1e-18 * sum.abs() {
            n += 1.0;
            term *= 2.0 * ax * ax / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-ax * ax).exp() * sum
    } else {
        // erfc(x) = exp(-x²)/sqrt(pi) · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free, deep)
        let mut f = ax;
        for k in (1..60).rev() {
            f = ax + (k as f64 / 2.0) / f;
        }
        1.0 - (-ax * ax).exp() / std::f64::consts::PI.sqrt() / f
    };
    r.copysign(x)
}

/// In-place `x = act(x)` over `n` elements. Bindings: 1 x (read_write).
pub fn call(gpu: &Gpu, n: usize, act: Act) -> Result<KernelCall> {
    let pipeline = gpu.pipeline("activation", || SOURCE.to_string())?;
    Ok(KernelCall {
        kind: "activation",
        pipeline,
        params: vec![n as u32, act.code()],
        workgroups: grid((n as u32).div_ceil(256)),
        flops: 8 * n as u64,
        bytes: 8 * n as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    #[test]
    fn erf_reference_is_accurate() {
        // Values from tables of erf.
        for (x, e) in [
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.5, 0.9999992569016276),
        ] {
            assert!((erf(x) - e).abs() < 1e-14, "erf({x}) = {} want {e}", erf(x));
            assert!((erf(-x) + e).abs() < 1e-14);
        }
    }

    #[test]
    fn activations_match_f64_reference() {
        let gpu = crate::gpu::test_gpu();
        // A dense sweep through the places approximations break: zero, the series/fit switch
        // (|x|/√2 = 0.5) and the tails.
        let mut xs: Vec<f32> = (0..4001).map(|i| -20.0 + i as f32 * 0.01).collect();
        xs.extend(testing::random(1537, 7, 4.0));
        for act in [Act::Gelu, Act::GeluNew, Act::Relu, Act::Tanh, Act::Identity] {
            let call = call(gpu, xs.len(), act).unwrap();
            let out = testing::run(gpu, &call, &[Buf::F32(xs.clone())]);
            let mut worst = 0.0f64;
            for (x, y) in xs.iter().zip(&out[0]) {
                let r = act.reference(*x as f64);
                worst = worst.max((*y as f64 - r).abs());
            }
            let tol = if act == Act::Gelu { 1e-6 } else { 2e-6 };
            assert!(worst < tol, "{act:?}: max abs error {worst:e}");
        }
    }
}
