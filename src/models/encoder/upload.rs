//! Weights from the file to the GPU, each name once: vectors as f32, matrices in their stored
//! precision where a kernel reads it (f16), fused Q/K/V projections joined on the host.

use super::spec::{LinSpec, NormSpec};
use crate::gpu::Gpu;
use crate::graph::WeightBuffer;
use crate::models::weights::{HostTensor, Weights};
use crate::ops::DType;
use crate::Result;
use std::collections::HashMap;

pub(super) struct Lin {
    pub w: WeightBuffer,
    pub b: Option<WeightBuffer>,
}

pub(super) struct Norm {
    pub gamma: WeightBuffer,
    /// Zeros for a norm without bias.
    pub beta: WeightBuffer,
    pub eps: f32,
}

pub(super) struct Uploader<'a> {
    pub gpu: &'a Gpu,
    pub w: &'a Weights,
    pub cache: HashMap<String, WeightBuffer>,
    pub notes: Vec<String>,
}

impl Uploader<'_> {
    pub fn new<'a>(gpu: &'a Gpu, w: &'a Weights) -> Uploader<'a> {
        Uploader {
            gpu,
            w,
            cache: HashMap::new(),
            notes: vec![],
        }
    }

    pub fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<WeightBuffer> {
        if let Some(b) = self.cache.get(name) {
            return Ok(b.clone());
        }
        let t = self.w.get(name, shape)?;
        // Vectors (biases, norms) are tiny: keep them f32 so every kernel reads them plainly.
        let (dtype, bytes) = if shape.len() == 1 {
            (DType::F32, bytemuck::cast_slice(&t.to_f32()).to_vec())
        } else {
            t.gpu_layout(true)
        };
        let b = self.upload(name, shape, dtype, &bytes)?;
        self.cache.insert(name.to_string(), b.clone());
        Ok(b)
    }

    /// An f32 vector computed here (zeros for a missing bias), cached under `key`.
    pub fn computed(&mut self, key: &str, values: &[f32]) -> Result<WeightBuffer> {
        if let Some(b) = self.cache.get(key) {
            return Ok(b.clone());
        }
        let b = WeightBuffer::upload(
            self.gpu,
            key,
            &[values.len()],
            DType::F32,
            bytemuck::cast_slice(values),
        )?;
        self.cache.insert(key.to_string(), b.clone());
        Ok(b)
    }

    /// Uploads one weight in its stored precision, split into row blocks where it exceeds a
    /// binding (noted for `wgformer info`).
    fn upload(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
    ) -> Result<WeightBuffer> {
        let b = WeightBuffer::upload(self.gpu, name, shape, dtype, bytes)?;
        if b.pieces.len() > 1 {
            self.notes.push(format!(
                "{name} ({} MB) exceeds the {} MB storage binding limit: split into {} row blocks",
                b.bytes() >> 20,
                self.gpu.max_binding_bytes() >> 20,
                b.pieces.len()
            ));
        }
        Ok(b)
    }

    pub fn lin(&mut self, s: &LinSpec) -> Result<Lin> {
        Ok(Lin {
            w: self.tensor(&s.w, &[s.out, s.inp])?,
            b: match &s.b {
                Some(b) => Some(self.tensor(b, &[s.out])?),
                None => None,
            },
        })
    }

    pub fn norm(&mut self, s: &NormSpec) -> Result<Norm> {
        Ok(Norm {
            gamma: self.tensor(&s.gamma, &[s.n])?,
            beta: match &s.beta {
                Some(b) => self.tensor(b, &[s.n])?,
                None => self.computed(&format!("zeros[{}]", s.n), &vec![0.0; s.n])?,
            },
            eps: s.eps,
        })
    }

    /// Several same-shaped linears (Q, K and V) as one `[n·out, inp]` matrix: one projection.
    pub fn fused(&mut self, parts: &[&LinSpec]) -> Result<Lin> {
        let names: Vec<&str> = parts.iter().map(|p| p.w.as_str()).collect();
        let key = names.join("+");
        let (out, inp) = (parts[0].out, parts[0].inp);
        let count = parts.len();
        let w = match self.cache.get(&key) {
            Some(b) => b.clone(),
            None => {
                let ts: Vec<_> = parts
                    .iter()
                    .map(|p| self.w.get(&p.w, &[out, inp]))
                    .collect::<Result<_>>()?;
                let joined = HostTensor {
                    name: key.clone(),
                    dtype: if ts.iter().all(|t| t.dtype == ts[0].dtype) {
                        ts[0].dtype
                    } else {
                        safetensors::Dtype::F32
                    },
                    shape: vec![count * out, inp],
                    bytes: if ts.iter().all(|t| t.dtype == ts[0].dtype) {
                        ts.iter().flat_map(|t| t.bytes.iter().copied()).collect()
                    } else {
                        ts.iter()
                            .flat_map(|t| bytemuck::cast_slice::<f32, u8>(&t.to_f32()).to_vec())
                            .collect()
                    },
                };
                let (dtype, bytes) = joined.gpu_layout(true);
                let b = self.upload(&key, &[count * out, inp], dtype, &bytes)?;
                self.cache.insert(key.clone(), b.clone());
                b
            }
        };
        // One bias for the joined rows when any part has one; a part without gets zeros.
        let names: Vec<Option<&String>> = parts.iter().map(|p| p.b.as_ref()).collect();
        let b = if names.iter().all(|n| n.is_none()) {
            None
        } else {
            let bkey = names
                .iter()
                .map(|n| n.map_or("zeros", |n| n.as_str()))
                .collect::<Vec<_>>()
                .join("+");
            match self.cache.get(&bkey) {
                Some(b) => Some(b.clone()),
                None => {
                    let mut all = vec![];
                    for n in &names {
                        match n {
                            Some(n) => all.extend(self.w.get(n, &[out])?.to_f32()),
                            None => all.extend(std::iter::repeat_n(0.0f32, out)),
                        }
                    }
                    let b = WeightBuffer::upload(
                        self.gpu,
                        &bkey,
                        &[count * out],
                        DType::F32,
                        bytemuck::cast_slice(&all),
                    )?;
                    self.cache.insert(bkey, b.clone());
                    Some(b)
                }
            }
        };
        Ok(Lin { w, b })
    }
}
