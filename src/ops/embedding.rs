//! Embedding gather (word + optional position + optional token type) fused with LayerNorm
//! (`shaders/embedding.wgsl`).

use super::{grid, with_enables, with_reduce, DType, KernelCall, Load};
use crate::gpu::Gpu;
use crate::Result;

const SOURCE: &str = include_str!("../../shaders/embedding.wgsl");

#[derive(Clone, Copy, Debug)]
pub struct Embedding {
    pub tokens: usize,
    pub dim: usize,
    /// Whether a position table is added (models with relative or rotary positions have none).
    pub positions: bool,
    pub token_types: bool,
    pub eps: f32,
    pub table_dtype: DType,
    /// The word vectors are already in the output, copied there by [`Embedding::gather`] from
    /// a table split over several bindings; the word binding is then unused.
    pub gathered: bool,
}

impl Embedding {
    fn source(l: Load) -> String {
        with_enables(
            &[l],
            format!(
                "{}{}{}{}",
                l.wgsl(2, "word"),
                l.wgsl(3, "pos"),
                l.wgsl(4, "typ"),
                with_reduce(SOURCE)
            ),
        )
    }

    fn params(&self, lo: usize, rows: usize) -> Vec<u32> {
        vec![
            self.tokens as u32,
            self.dim as u32,
            u32::from(self.token_types),
            super::f(self.eps),
            u32::from(self.positions),
            u32::from(self.gathered),
            lo as u32,
            rows as u32,
        ]
    }

    /// Bindings: 1 idx (u32: ids, position ids, type ids, `tokens` each), 2 word table (any
    /// buffer when `gathered`), 3 position table, 4 token-type table (any buffer when absent),
    /// 5 gamma, 6 beta, 7 out.
    pub fn call(&self, gpu: &Gpu) -> Result<KernelCall> {
        let l = Load::for_dtype(gpu, self.table_dtype);
        let key = format!("embedding.{}", l.tag());
        let pipeline = gpu.pipeline(&key, || Self::source(l))?;
        let n = (self.tokens * self.dim) as u64;
        let tables = 1 + u64::from(self.positions) + u64::from(self.token_types);
        Ok(KernelCall {
            kind: "embedding",
            pipeline,
            params: self.params(0, 0),
            workgroups: grid(self.tokens as u32),
            flops: n * (tables + 6),
            bytes: 12 * self.tokens as u64
                + tables * self.table_dtype.bytes(n as usize)
                + 4 * n
                + 8 * self.dim as u64,
        })
    }

    /// Copies the word vectors of tokens whose id lies in rows `lo..lo + rows` of the table
    /// into the output: one call per piece of a split table, before [`call`](Self::call) with
    /// `gathered`. Bindings: 1 idx, 2 that piece of the word table, 7 out (no others).
    pub fn gather(&self, gpu: &Gpu, lo: usize, rows: usize) -> Result<KernelCall> {
        let l = Load::for_dtype(gpu, self.table_dtype);
        let key = format!("embedding.gather.{}", l.tag());
        let pipeline = gpu.pipeline_entry(&key, "gather", || Self::source(l))?;
        let n = (self.tokens * self.dim) as u64;
        Ok(KernelCall {
            kind: "embedding",
            pipeline,
            params: self.params(lo, rows),
            workgroups: grid(self.tokens as u32),
            flops: 0,
            bytes: 4 * self.tokens as u64 + 4 * n,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn reference(
        &self,
        ids: &[u32],
        pos: &[u32],
        types: &[u32],
        word: &[f32],
        pos_t: &[f32],
        type_t: &[f32],
        g: &[f32],
        b: &[f32],
    ) -> Vec<f64> {
        let d = self.dim;
        let mut out = Vec::with_capacity(self.tokens * d);
        for t in 0..self.tokens {
            let v: Vec<f64> = (0..d)
                .map(|i| {
                    let mut s = word[ids[t] as usize * d + i] as f64;
                    if self.positions {
                        s += pos_t[pos[t] as usize * d + i] as f64;
                    }
                    if self.token_types {
                        s += type_t[types[t] as usize * d + i] as f64;
                    }
                    s
                })
                .collect();
            let mean = v.iter().sum::<f64>() / d as f64;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d as f64;
            let inv = 1.0 / (var + self.eps as f64).sqrt();
            out.extend((0..d).map(|i| (v[i] - mean) * inv * g[i] as f64 + b[i] as f64));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{self, Buf};

    #[test]
    fn embedding_gather_layer_norm_matches_reference() {
        let (vocab, npos, ntype) = (101, 40, 2);
        for &(tokens, dim) in &[(1, 7), (7, 33), (33, 384), (129, 768)] {
            for (dt, types, positions) in [
                (DType::F32, true, true),
                (DType::F16, false, true),
                (DType::F16, true, true),
                (DType::F32, false, false),
                (DType::F16, true, false),
            ] {
                for gpu in testing::gpus_for(dt) {
                    let round = |v: Vec<f32>| {
                        if dt == DType::F16 {
                            testing::round_f16(&v)
                        } else {
                            v
                        }
                    };
                    let word = round(testing::random(vocab * dim, 1, 1.0));
                    let post = round(testing::random(npos * dim, 2, 1.0));
                    let typt = round(testing::random(ntype * dim, 3, 1.0));
                    let g = testing::random(dim, 4, 1.0);
                    let b = testing::random(dim, 5, 1.0);
                    let ids: Vec<u32> = (0..tokens)
                        .map(|t| ((t * 37 + 11) % vocab) as u32)
                        .collect();
                    let pos: Vec<u32> = (0..tokens).map(|t| (t % npos) as u32).collect();
                    let tt: Vec<u32> = (0..tokens).map(|t| (t % 3 == 0) as u32).collect();
                    let idx = [ids.clone(), pos.clone(), tt.clone()].concat();
                    let e = Embedding {
                        tokens,
                        dim,
                        positions,
                        token_types: types,
                        eps: 1e-12,
                        table_dtype: dt,
                        gathered: false,
                    };
                    let wrap = |v: &Vec<f32>| {
                        if dt == DType::F16 {
                            Buf::F16(v.clone())
                        } else {
                            Buf::F32(v.clone())
                        }
                    };
                    let call = e.call(gpu).unwrap();
                    let out = testing::run(
                        gpu,
                        &call,
                        &[
                            Buf::U32(idx),
                            wrap(&word),
                            wrap(&post),
                            wrap(&typt),
                            Buf::F32(g.clone()),
                            Buf::F32(b.clone()),
                            Buf::Poison(tokens * dim),
                        ],
                    );
                    let r = e.reference(&ids, &pos, &tt, &word, &post, &typt, &g, &b);
                    let err = testing::rel_err(&out[6], &r);
                    assert!(err < 1e-5, "{e:?}: relative error {err:e}");
                }
            }
        }
    }
}
