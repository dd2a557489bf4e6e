//! Building a graph: declare tensors, add nodes through the op helpers, then `build` plans the
//! buffers and creates every GPU object the replays need.

use super::plan::plan;
use super::{
    Access, Arg, CompiledNode, Graph, Node, NodeInfo, RunStats, TensorDesc, TensorId, TensorKind,
    WeightBuffer, WeightPiece,
};
use crate::gpu::{Gpu, GpuBuffer};
use crate::ops::activation::{self, Act};
use crate::ops::attention::{Attention, BiasView};
use crate::ops::embedding::Embedding;
use crate::ops::glu::Glu;
use crate::ops::layer_norm::LayerNorm;
use crate::ops::matmul::Matmul;
use crate::ops::rel_gather::RelGather;
use crate::ops::rope::Rope;
use crate::ops::DType;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// What a self-attention adds to the plain `softmax(Q·Kᵀ/√d + mask)·V` (all off by default).
#[derive(Clone, Copy, Debug, Default)]
pub struct AttentionExtras {
    /// An additive position bias, f32: `[heads, seq, seq]` (shared by the batch),
    /// `[batch·heads, seq, seq]`, or `[heads, 2·seq − 1]` indexed by `j − i + seq − 1` (a bias
    /// that depends only on the offset).
    pub bias: Option<TensorId>,
    /// Key `j` is visible to query `i` only when `|i − j| ≤ window / 2`; 0 is global attention.
    pub window: usize,
    /// The score scale; `None` is `1/√head_dim`.
    pub scale: Option<f32>,
}

pub struct GraphBuilder<'g> {
    gpu: &'g Gpu,
    tensors: Vec<TensorDesc>,
    /// A weight tensor's buffers: one, or the row blocks of a split weight.
    weights: Vec<Vec<WeightPiece>>,
    nodes: Vec<Node>,
    outputs: Vec<TensorId>,
}

impl<'g> GraphBuilder<'g> {
    pub fn new(gpu: &'g Gpu) -> Self {
        GraphBuilder {
            gpu,
            tensors: vec![],
            weights: vec![],
            nodes: vec![],
            outputs: vec![],
        }
    }

    pub fn gpu(&self) -> &Gpu {
        self.gpu
    }

    fn add(&mut self, name: &str, shape: &[usize], dtype: DType, kind: TensorKind) -> TensorId {
        self.tensors.push(TensorDesc {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype,
            kind,
        });
        self.weights.push(vec![]);
        TensorId(self.tensors.len() - 1)
    }

    pub fn shape(&self, t: TensorId) -> &[usize] {
        &self.tensors[t.0].shape
    }

    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> TensorId {
        self.add(name, shape, dtype, TensorKind::Input)
    }

    pub fn weight(&mut self, w: &WeightBuffer) -> TensorId {
        let t = self.add(&w.name, &w.shape, w.dtype, TensorKind::Weight);
        self.weights[t.0] = w.pieces.clone();
        t
    }

    /// The row blocks of `t` when it is a weight split over several bindings.
    fn split(&self, t: TensorId) -> Option<Vec<WeightPiece>> {
        let p = &self.weights[t.0];
        (p.len() > 1).then(|| p.clone())
    }

    /// A weight tensor for one row block of a split weight.
    fn piece(&mut self, w: TensorId, p: &WeightPiece) -> TensorId {
        let d = self.tensors[w.0].clone();
        let mut shape = d.shape.clone();
        shape[0] = p.rows;
        let name = format!("{}[{}..{}]", d.name, p.start, p.start + p.rows);
        let t = self.add(&name, &shape, d.dtype, TensorKind::Weight);
        self.weights[t.0] = vec![p.clone()];
        t
    }

    /// An f32 tensor produced by a node.
    pub fn activation(&mut self, name: &str, shape: &[usize]) -> TensorId {
        self.add(name, shape, DType::F32, TensorKind::Activation)
    }

    /// The dtype of tensors passed between kernels: f16 under `--precision f16` where shaders
    /// can write f16 (SHADER_F16), else f32. Statistics, accumulators and whatever the caller
    /// keeps as f32 (the residual stream, outputs) stay f32.
    pub fn activation_dtype(&self) -> DType {
        if self.f16_inputs() && self.gpu.has_f16() {
            DType::F16
        } else {
            DType::F32
        }
    }

    /// Keeps `t` alive to the end and reads it back after every run.
    pub fn output(&mut self, t: TensorId) {
        if !self.outputs.contains(&t) {
            self.outputs.push(t);
        }
    }

    pub fn node(&mut self, label: impl Into<String>, call: crate::ops::KernelCall, args: Vec<Arg>) {
        self.nodes.push(Node {
            label: label.into(),
            call,
            args,
        });
    }

    fn expect_dim(&self, t: TensorId, want: usize, what: &str) -> Result<()> {
        let got = *self.shape(t).last().unwrap_or(&0);
        if got != want {
            return Err(Error::Graph(format!(
                "{what}: `{}` has shape {:?}, expected last dimension {want}",
                self.tensors[t.0].name,
                self.shape(t)
            )));
        }
        Ok(())
    }

    /// `y = act(x·Wᵀ + b)` over the last axis of `x`; `w` is `[out, in]`; `y` in
    /// [`activation_dtype`](Self::activation_dtype).
    pub fn linear(
        &mut self,
        label: &str,
        x: TensorId,
        w: TensorId,
        b: Option<TensorId>,
        act: Act,
    ) -> Result<TensorId> {
        let dtype = self.activation_dtype();
        self.linear_as(label, x, w, b, act, dtype)
    }

    /// [`linear`](Self::linear) with an f32 output (a residual stream, logits read back).
    pub fn linear_f32(
        &mut self,
        label: &str,
        x: TensorId,
        w: TensorId,
        b: Option<TensorId>,
        act: Act,
    ) -> Result<TensorId> {
        self.linear_as(label, x, w, b, act, DType::F32)
    }

    fn linear_as(
        &mut self,
        label: &str,
        x: TensorId,
        w: TensorId,
        b: Option<TensorId>,
        act: Act,
        dtype: DType,
    ) -> Result<TensorId> {
        let ws = self.shape(w).to_vec();
        if ws.len() != 2 {
            return Err(Error::Graph(format!(
                "{label}: weight must be 2-D, is {ws:?}"
            )));
        }
        let (n, k) = (ws[0], ws[1]);
        self.expect_dim(x, k, label)?;
        let xs = self.shape(x).to_vec();
        let m: usize = xs[..xs.len() - 1].iter().product();
        let mut out_shape = xs.clone();
        *out_shape.last_mut().unwrap() = n;
        let y = self.add(label, &out_shape, dtype, TensorKind::Activation);
        let mut mm = Matmul::linear(m, n, k);
        mm.act = act;
        self.matmul_weight(label, mm, x, w, b, y)?;
        Ok(y)
    }

    /// [`matmul`](Self::matmul) by a weight `w` `[out, in]`; a weight split into row blocks
    /// (larger than one binding) gets one matmul per block, each writing its own columns of
    /// `c` with its slice of the bias. Every output element is still one dot product over the
    /// whole of k, so the result is bit-identical to the unsplit matmul's.
    fn matmul_weight(
        &mut self,
        label: &str,
        mm: Matmul,
        x: TensorId,
        w: TensorId,
        b: Option<TensorId>,
        c: TensorId,
    ) -> Result<()> {
        let Some(pieces) = self.split(w) else {
            return self.matmul(label, mm, x, w, b, c);
        };
        for p in &pieces {
            let part = self.piece(w, p);
            let mut block = mm;
            block.n = p.rows;
            block.c.off += p.start * mm.c.cols;
            block.bias_off = mm.bias_off + p.start;
            let name = format!("{label}[{}..{}]", p.start, p.start + p.rows);
            self.matmul(&name, block, x, part, b, c)?;
        }
        Ok(())
    }

    /// Whether matmuls may round their inputs to f16 (the device's f16 precision).
    pub fn f16_inputs(&self) -> bool {
        self.gpu.precision() == crate::gpu::Precision::F16
    }

    /// Linear over the first token of each sequence of `x` `[batch, seq, in]` → `[batch, out]`.
    pub fn linear_first_token(
        &mut self,
        label: &str,
        x: TensorId,
        w: TensorId,
        b: Option<TensorId>,
        act: Act,
    ) -> Result<TensorId> {
        let xs = self.shape(x).to_vec();
        let ws = self.shape(w).to_vec();
        if xs.len() != 3 || ws.len() != 2 || ws[1] != xs[2] {
            return Err(Error::Graph(format!(
                "{label}: cannot apply weight {ws:?} to the first token of {xs:?}"
            )));
        }
        let (bsz, seq, k, n) = (xs[0], xs[1], xs[2], ws[0]);
        let y = self.activation(label, &[bsz, n]);
        let mut mm = Matmul::linear(bsz, n, k);
        mm.a.rows = seq * k;
        mm.act = act;
        self.matmul_weight(label, mm, x, w, b, y)?;
        Ok(y)
    }

    /// A general matmul node writing into `c` (B's and the bias's dtypes come from the tensors).
    pub fn matmul(
        &mut self,
        label: &str,
        mut mm: Matmul,
        a: TensorId,
        b: TensorId,
        bias: Option<TensorId>,
        c: TensorId,
    ) -> Result<()> {
        mm.b_dtype = self.tensors[b.0].dtype;
        mm.a_dtype = self.tensors[a.0].dtype;
        mm.c_dtype = self.tensors[c.0].dtype;
        mm.bias = bias.is_some();
        mm.f16_inputs |= self.f16_inputs();
        if let Some(bias) = bias {
            mm.bias_dtype = self.tensors[bias.0].dtype;
            let len = *self.shape(bias).last().unwrap_or(&0);
            if mm.bias_off + mm.n > len {
                return Err(Error::Graph(format!(
                    "{label}: bias `{}` has {len} elements, the matmul reads {}..{}",
                    self.tensors[bias.0].name,
                    mm.bias_off,
                    mm.bias_off + mm.n
                )));
            }
        }
        let call = mm.call(self.gpu)?;
        let bias_arg = bias.map_or(Arg::Unused, |t| Arg::T(t, Access::Read));
        self.node(
            label,
            call,
            vec![
                Arg::T(a, Access::Read),
                Arg::T(b, Access::Read),
                bias_arg,
                Arg::T(c, Access::Write),
            ],
        );
        Ok(())
    }

    /// `LayerNorm(x (+ residual))·gamma + beta` over the last axis.
    pub fn layer_norm(
        &mut self,
        label: &str,
        x: TensorId,
        residual: Option<TensorId>,
        gamma: TensorId,
        beta: TensorId,
        eps: f32,
    ) -> Result<TensorId> {
        Ok(self
            .norm_node(label, x, residual, gamma, beta, eps, false)?
            .0)
    }

    /// [`layer_norm`](Self::layer_norm) of `x + residual` that also returns the sum itself
    /// (f32), written by the same kernel: a pre-LN model's residual stream.
    pub fn add_layer_norm(
        &mut self,
        label: &str,
        x: TensorId,
        residual: TensorId,
        gamma: TensorId,
        beta: TensorId,
        eps: f32,
    ) -> Result<(TensorId, TensorId)> {
        let (y, sum) = self.norm_node(label, x, Some(residual), gamma, beta, eps, true)?;
        Ok((y, sum.expect("sum requested")))
    }

    #[allow(clippy::too_many_arguments)]
    fn norm_node(
        &mut self,
        label: &str,
        x: TensorId,
        residual: Option<TensorId>,
        gamma: TensorId,
        beta: TensorId,
        eps: f32,
        write_sum: bool,
    ) -> Result<(TensorId, Option<TensorId>)> {
        let xs = self.shape(x).to_vec();
        let n = *xs.last().unwrap();
        self.expect_dim(gamma, n, label)?;
        self.expect_dim(beta, n, label)?;
        if let Some(r) = residual {
            if self.shape(r) != xs.as_slice() {
                return Err(Error::Graph(format!(
                    "{label}: residual {:?} differs from input {xs:?}",
                    self.shape(r)
                )));
            }
        }
        let y = self.activation(label, &xs);
        let sum = write_sum.then(|| {
            self.add(
                &format!("{label}.sum"),
                &xs,
                DType::F32,
                TensorKind::Activation,
            )
        });
        let ln = LayerNorm {
            rows: xs.iter().product::<usize>() / n,
            n,
            eps,
            residual: residual.is_some(),
            write_sum,
            per_row: None,
            x_dtype: self.tensors[x.0].dtype,
        };
        let call = ln.call(self.gpu)?;
        self.node(
            label,
            call,
            vec![
                Arg::T(x, Access::Read),
                residual.map_or(Arg::Unused, |r| Arg::T(r, Access::Read)),
                Arg::T(gamma, Access::Read),
                Arg::T(beta, Access::Read),
                Arg::T(y, Access::Write),
                sum.map_or(Arg::Unused, |t| Arg::T(t, Access::Write)),
            ],
        );
        Ok((y, sum))
    }

    /// (batch, seq, hidden) of a packed `[batch, seq, 3·hidden]` Q/K/V projection whose hidden
    /// size `heads` divides.
    fn packed_qkv(
        &self,
        label: &str,
        qkv: TensorId,
        heads: usize,
    ) -> Result<(usize, usize, usize)> {
        let s = self.shape(qkv);
        if s.len() != 3 || heads == 0 || !s[2].is_multiple_of(3 * heads) {
            return Err(Error::Graph(format!(
                "{label}: qkv {s:?} is not [batch, seq, 3·hidden] with hidden divisible by {heads} heads"
            )));
        }
        Ok((s[0], s[1], s[2] / 3))
    }

    /// Rotary position embedding, in place on the Q and K parts of `qkv`
    /// `[batch, seq, 3·hidden]`; `table` is [`crate::ops::rope::table`] for this `seq`.
    pub fn rope(
        &mut self,
        label: &str,
        qkv: TensorId,
        heads: usize,
        table: TensorId,
    ) -> Result<()> {
        let (batch, seq, h) = self.packed_qkv(label, qkv, heads)?;
        let d = h / heads;
        if self.shape(table) != [2 * seq * (d / 2)] {
            return Err(Error::Graph(format!(
                "{label}: rotary table {:?} is not [2·seq·head_dim/2] = [{}]",
                self.shape(table),
                2 * seq * (d / 2)
            )));
        }
        let r = Rope {
            batch,
            seq,
            heads,
            head_dim: d,
            dtype: self.tensors[qkv.0].dtype,
        };
        let call = r.call(self.gpu)?;
        self.node(
            label,
            call,
            vec![Arg::T(qkv, Access::ReadWrite), Arg::T(table, Access::Read)],
        );
        Ok(())
    }

    /// `act(x[.., :w])·x[.., w:]` over the last axis (of `2w`): a gated linear unit's gating.
    /// The result is in the activation dtype.
    pub fn glu(&mut self, label: &str, x: TensorId, act: Act) -> Result<TensorId> {
        let xs = self.shape(x).to_vec();
        let two_w = *xs.last().unwrap();
        if !two_w.is_multiple_of(2) {
            return Err(Error::Graph(format!(
                "{label}: a gated unit needs an even last dimension, not {two_w}"
            )));
        }
        let mut out_shape = xs.clone();
        *out_shape.last_mut().unwrap() = two_w / 2;
        let dtype = self.activation_dtype();
        let y = self.add(label, &out_shape, dtype, TensorKind::Activation);
        let glu = Glu {
            rows: xs.iter().product::<usize>() / two_w,
            width: two_w / 2,
            act,
            x_dtype: self.tensors[x.0].dtype,
            out_dtype: self.tensors[y.0].dtype,
        };
        let call = glu.call(self.gpu)?;
        self.node(
            label,
            call,
            vec![Arg::T(x, Access::Read), Arg::T(y, Access::Write)],
        );
        Ok(y)
    }

    /// In-place activation.
    pub fn activate(&mut self, label: &str, x: TensorId, act: Act) -> Result<()> {
        let n = self.tensors[x.0].numel();
        let call = activation::call(self.gpu, n, act)?;
        self.node(label, call, vec![Arg::T(x, Access::ReadWrite)]);
        Ok(())
    }

    /// Embedding gather + LayerNorm. `idx` is u32 `[3, tokens]` (ids, positions, types); the
    /// position and token-type tables are optional.
    #[allow(clippy::too_many_arguments)]
    pub fn embedding(
        &mut self,
        label: &str,
        idx: TensorId,
        word: TensorId,
        pos: Option<TensorId>,
        token_type: Option<TensorId>,
        gamma: TensorId,
        beta: TensorId,
        eps: f32,
        out_shape: &[usize],
    ) -> Result<TensorId> {
        let dim = *out_shape.last().unwrap();
        for t in [word].into_iter().chain(pos).chain(token_type) {
            self.expect_dim(t, dim, label)?;
            if self.tensors[t.0].dtype != self.tensors[word.0].dtype {
                return Err(Error::Graph(format!(
                    "{label}: embedding tables must share one dtype"
                )));
            }
        }
        let tokens = out_shape.iter().product::<usize>() / dim;
        let y = self.activation(label, out_shape);
        let mut e = Embedding {
            tokens,
            dim,
            positions: pos.is_some(),
            token_types: token_type.is_some(),
            eps,
            table_dtype: self.tensors[word.0].dtype,
            gathered: false,
        };
        // A word table split over bindings: each piece copies its tokens' vectors into `y`
        // first, then the fused kernel reads them there.
        let word_arg = match self.split(word) {
            None => Arg::T(word, Access::Read),
            Some(pieces) => {
                for p in &pieces {
                    let part = self.piece(word, p);
                    let call = e.gather(self.gpu, p.start, p.rows)?;
                    let mut args = vec![Arg::Absent; 7];
                    args[0] = Arg::T(idx, Access::Read);
                    args[1] = Arg::T(part, Access::Read);
                    args[6] = Arg::T(y, Access::Write);
                    self.node(format!("{label}.gather[{}..]", p.start), call, args);
                }
                e.gathered = true;
                Arg::Unused
            }
        };
        let call = e.call(self.gpu)?;
        self.node(
            label,
            call,
            vec![
                Arg::T(idx, Access::Read),
                word_arg,
                pos.map_or(Arg::Unused, |t| Arg::T(t, Access::Read)),
                token_type.map_or(Arg::Unused, |t| Arg::T(t, Access::Read)),
                Arg::T(gamma, Access::Read),
                Arg::T(beta, Access::Read),
                Arg::T(
                    y,
                    if e.gathered {
                        Access::ReadWrite
                    } else {
                        Access::Write
                    },
                ),
            ],
        );
        Ok(y)
    }

    /// Multi-head self-attention core, one fused kernel: `softmax(Q·Kᵀ·scale + bias + mask)·V`
    /// per head, with `qkv` `[batch, seq, 3·hidden]` (Q, K, V side by side on the last axis,
    /// heads interleaved within each; f32 or f16) and an additive key mask `[batch, seq]` (0 or
    /// `f32::MIN`); see [`AttentionExtras`] for the bias, window and scale. Returns the context
    /// `[batch, seq, hidden]` in the activation dtype, heads interleaved.
    pub fn attention(
        &mut self,
        label: &str,
        qkv: TensorId,
        mask: TensorId,
        heads: usize,
        extras: AttentionExtras,
    ) -> Result<TensorId> {
        let (bsz, seq, h) = self.packed_qkv(label, qkv, heads)?;
        if self.shape(mask) != [bsz, seq] {
            return Err(Error::Graph(format!(
                "{label}: mask {:?} is not [batch, seq] = [{bsz}, {seq}]",
                self.shape(mask)
            )));
        }
        let mut at = Attention::packed_qkv(bsz, seq, heads, h / heads);
        // Q, K, V as the projection wrote them, the context in the activation dtype (f16 under
        // --precision f16); scores, softmax statistics and accumulators are f32 inside.
        at.dtype = self.tensors[qkv.0].dtype;
        at.out_dtype = self.activation_dtype();
        at.window = extras.window;
        if let Some(scale) = extras.scale {
            at.scale = scale;
        }
        let bias = extras.bias;
        if let Some(b) = bias {
            let bs = self.shape(b).to_vec();
            at.bias = Some(if bs == [heads, seq, seq] {
                BiasView::per_head(seq)
            } else if bs == [bsz * heads, seq, seq] {
                BiasView::per_batch_head(heads, seq)
            } else if bs == [heads, 2 * seq - 1] {
                BiasView::relative(seq)
            } else {
                return Err(Error::Graph(format!(
                    "{label}: position bias {bs:?} is none of [heads, seq, seq], [batch·heads, seq, seq] or [heads, 2·seq − 1]"
                )));
            });
            if self.tensors[b.0].dtype != DType::F32 {
                return Err(Error::Graph(format!("{label}: position bias must be f32")));
            }
        }
        let call = at.call(self.gpu).map_err(|e| match e {
            Error::Graph(m) => Error::Graph(format!("{label}: {m}")),
            e => e,
        })?;
        let ctx = self.add(
            &format!("{label}.context"),
            &[bsz, seq, h],
            at.out_dtype,
            TensorKind::Activation,
        );
        self.node(
            label,
            call,
            vec![
                Arg::T(qkv, Access::Read),
                Arg::T(qkv, Access::Read),
                Arg::T(qkv, Access::Read),
                Arg::T(mask, Access::Read),
                bias.map_or(Arg::Unused, |b| Arg::T(b, Access::Read)),
                Arg::T(ctx, Access::Write),
            ],
        );
        Ok(ctx)
    }

    /// A `[batch·heads, seq, seq]` f32 attention bias gathered from per-query position scores:
    /// `out[z, i, j] = c2p[z, i, t] + p2c[z, j, t]`, `t = idx[i − j + seq − 1]`, with `c2p` and
    /// `p2c` `[batch·heads, seq, width]` (either may be absent) and `idx` u32 `[2·seq − 1]`.
    pub fn rel_gather(
        &mut self,
        label: &str,
        c2p: Option<TensorId>,
        p2c: Option<TensorId>,
        idx: TensorId,
        bh: usize,
        seq: usize,
    ) -> Result<TensorId> {
        let Some(first) = c2p.or(p2c) else {
            return Err(Error::Graph(format!("{label}: neither term given")));
        };
        let fs = self.shape(first).to_vec();
        let width = *fs.last().unwrap_or(&0);
        for t in c2p.into_iter().chain(p2c) {
            if self.shape(t) != [bh, seq, width]
                || self.tensors[t.0].dtype != self.tensors[first.0].dtype
            {
                return Err(Error::Graph(format!(
                    "{label}: position scores {:?} and {fs:?} are not both [batch·heads, seq, width] = [{bh}, {seq}, _] in one dtype",
                    self.shape(t)
                )));
            }
        }
        if self.shape(idx) != [2 * seq - 1] || self.tensors[idx.0].dtype != DType::U32 {
            return Err(Error::Graph(format!(
                "{label}: offset index {:?} is not u32 [2·seq − 1]",
                self.shape(idx)
            )));
        }
        let op = RelGather {
            bh,
            seq,
            width,
            c2p: c2p.is_some(),
            p2c: p2c.is_some(),
            dtype: self.tensors[first.0].dtype,
        };
        let call = op.call(self.gpu)?;
        let y = self.activation(label, &[bh, seq, seq]);
        let arg = |t: Option<TensorId>| t.map_or(Arg::Unused, |t| Arg::T(t, Access::Read));
        self.node(
            label,
            call,
            vec![
                arg(c2p),
                arg(p2c),
                Arg::T(idx, Access::Read),
                Arg::T(y, Access::Write),
            ],
        );
        Ok(y)
    }

    /// Plans buffers and creates bind groups, uniforms and the readback buffer; the GPU errors
    /// of doing so (out of memory, say) are this call's alone (see [`Gpu::scoped`]).
    pub fn build(self) -> Result<Graph> {
        let gpu = self.gpu;
        gpu.scoped(|| self.build_unscoped())
    }

    fn build_unscoped(self) -> Result<Graph> {
        let gpu = self.gpu;
        let dev = &gpu.device;
        let limit = gpu.max_binding_bytes();
        for t in &self.tensors {
            if t.kind != TensorKind::Weight && t.bytes() > limit {
                return Err(Error::Graph(format!(
                    "tensor `{}` {:?} needs {} bytes, more than this adapter's storage binding limit of {limit} bytes; use a smaller batch (--batch-size) or shorter sequences",
                    t.name,
                    t.shape,
                    t.bytes()
                )));
            }
        }
        let mut pinned = vec![false; self.tensors.len()];
        for o in &self.outputs {
            pinned[o.0] = true;
        }
        let (slot, sizes, report) = plan(&self.tensors, &self.nodes, &pinned);
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let slot_bufs: Vec<Arc<GpuBuffer>> = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Arc::new(gpu.buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("activation{i}")),
                    size: (*s).max(4),
                    usage: storage,
                    mapped_at_creation: false,
                }))
            })
            .collect();
        let mut bufs: Vec<Option<Arc<GpuBuffer>>> = vec![None; self.tensors.len()];
        let mut inputs = vec![];
        for (i, t) in self.tensors.iter().enumerate() {
            bufs[i] = match t.kind {
                // A split weight has no single buffer: only its pieces are bound.
                TensorKind::Weight => match self.weights[i].as_slice() {
                    [one] => Some(one.buffer.clone()),
                    _ => None,
                },
                TensorKind::Activation => slot[i].map(|s| slot_bufs[s].clone()),
                TensorKind::Input => {
                    let b = Arc::new(gpu.buffer(&wgpu::BufferDescriptor {
                        label: Some(&t.name),
                        size: t.bytes().max(4),
                        usage: storage,
                        mapped_at_creation: false,
                    }));
                    inputs.push((TensorId(i), b.clone()));
                    Some(b)
                }
            };
        }
        // One placeholder per binding slot: two unused bindings of one kernel, one read-only and
        // one read-write, must not be the same buffer (exclusive usage within a dispatch).
        let slots = self.nodes.iter().map(|n| n.args.len()).max().unwrap_or(0);
        let dummies: Vec<_> = (0..slots)
            .map(|_| {
                gpu.buffer(&wgpu::BufferDescriptor {
                    label: Some("unused binding"),
                    size: 16,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();

        // All uniforms in one buffer, each node's block at an aligned offset.
        let align = gpu.limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let mut uniform_bytes: Vec<u8> = vec![];
        let mut offsets = vec![];
        for n in &self.nodes {
            offsets.push(uniform_bytes.len());
            uniform_bytes.extend_from_slice(bytemuck::cast_slice(&n.call.params));
            uniform_bytes.resize(uniform_bytes.len().next_multiple_of(align), 0);
        }
        if uniform_bytes.is_empty() {
            uniform_bytes.resize(16, 0);
        }
        let uniforms = gpu.buffer_init("params", &uniform_bytes, wgpu::BufferUsages::UNIFORM);

        let mut compiled = vec![];
        for (n, off) in self.nodes.iter().zip(offsets) {
            let size = (n.call.params.len() * 4).next_multiple_of(16) as u64;
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &uniforms,
                    offset: off as u64,
                    size: std::num::NonZeroU64::new(size),
                }),
            }];
            for (i, a) in n.args.iter().enumerate() {
                let buf: &wgpu::Buffer = match a {
                    Arg::T(t, _) => bufs[t.0].as_deref().ok_or_else(|| {
                        let d = &self.tensors[t.0];
                        Error::Graph(if self.weights[t.0].len() > 1 {
                            format!(
                                "node `{}` reads weight `{}` whole, but it is split over {} bindings (larger than one) and this kernel cannot read row blocks",
                                n.label,
                                d.name,
                                self.weights[t.0].len()
                            )
                        } else {
                            format!("node `{}`: tensor `{}` has no buffer", n.label, d.name)
                        })
                    })?,
                    Arg::Unused => &dummies[i],
                    Arg::Absent => continue,
                };
                entries.push(wgpu::BindGroupEntry {
                    binding: i as u32 + 1,
                    resource: buf.as_entire_binding(),
                });
            }
            let bind_group = dev.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(&n.label),
                layout: &n.call.pipeline.get_bind_group_layout(0),
                entries: &entries,
            });
            compiled.push(CompiledNode {
                info: NodeInfo {
                    label: n.label.clone(),
                    kind: n.call.kind,
                    flops: n.call.flops,
                    bytes: n.call.bytes,
                },
                pipeline: n.call.pipeline.clone(),
                bind_group,
                workgroups: n.call.workgroups,
            });
        }

        let mut outputs = vec![];
        let mut staging_size = 0u64;
        for o in &self.outputs {
            let b = bufs[o.0].clone().ok_or_else(|| {
                Error::Graph(format!(
                    "output `{}` is never written by any node",
                    self.tensors[o.0].name
                ))
            })?;
            let size = self.tensors[o.0].bytes();
            outputs.push((*o, b, staging_size, size));
            staging_size += size;
        }
        let staging = gpu.buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: staging_size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Graph {
            tensors: self.tensors,
            nodes: compiled,
            inputs,
            outputs,
            staging,
            plan: report,
            _owned: slot_bufs
                .into_iter()
                .chain(dummies.into_iter().map(Arc::new))
                .chain([Arc::new(uniforms)])
                .collect(),
            stats: Mutex::new(RunStats::default()),
            run_lock: super::RunLock::new(()),
        })
    }
}
