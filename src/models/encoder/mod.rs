//! The transformer encoder, composed from parts: an architecture file describes its model as a
//! [`NetworkSpec`] (embeddings, per-layer attention variant, MLP and norm placement, an optional
//! shared position bias, a final norm, a head — all by tensor names); [`Network::load`] checks
//! and uploads it once and [`Network::build_graph`] turns it into a graph per batch shape.
//! Each part builds its own nodes, so a new architecture adds a part, not a switch.

mod bias;
mod spec;
mod upload;

pub use bias::{disentangled_rows, log_bucket, relative_bias, relative_bucket};
pub use spec::*;

use super::weights::Weights;
use crate::gpu::Gpu;
use crate::graph::{AttentionExtras, GraphBuilder, TensorId, WeightBuffer};
use crate::ops::activation::Act;
use crate::ops::matmul::{Matmul, View};
use crate::ops::DType;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;
use upload::{Lin, Norm, Uploader};

/// Which tensors a forward reads back to the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Readback {
    /// The head's logits (the last hidden state for a model without a head).
    Head,
    /// The logits and the last hidden state.
    LastHidden,
    /// The logits and every layer's hidden states.
    AllHidden,
}

/// Tensors a forward graph reads and writes.
pub struct GraphIo {
    /// u32 `[3, batch·seq]`: ids, position ids, token type ids.
    pub idx: TensorId,
    /// f32 `[batch, seq]`: 0 for real tokens, f32::MIN for padding.
    pub mask: TensorId,
    /// Hidden state after the embeddings and after each layer (when captured).
    pub hidden: Vec<TensorId>,
    pub last_hidden: TensorId,
    pub logits: Option<TensorId>,
    /// f32 `[rows, batch·seq]` (one-hot rows) when the head runs on selected tokens only.
    pub select: Option<TensorId>,
    /// f32 `[batch, batch·seq]` averaging weights (1/len on a row's real tokens) for a
    /// mean-pooling head.
    pub pool: Option<TensorId>,
}

struct Embeddings {
    word: WeightBuffer,
    position: Option<WeightBuffer>,
    token_type: Option<WeightBuffer>,
    norm: Norm,
    dim: usize,
    project: Option<Lin>,
}

impl Embeddings {
    fn load(up: &mut Uploader, e: &EmbeddingSpec) -> Result<Embeddings> {
        let word = up.tensor(&e.word, &[e.vocab, e.dim])?;
        let mut small = vec![];
        for (name, rows) in [
            (&e.position, e.max_positions),
            (&e.token_type, e.type_vocab),
        ] {
            small.push(match name {
                // The kernel reads every table in one dtype: the small ones follow the word
                // table (they may be stored otherwise, or the word table stored as f16).
                Some(n) => {
                    let t = up.w.get(n, &[rows, e.dim])?.to_f32();
                    let (dtype, bytes) = if word.dtype == DType::F16 {
                        (DType::F16, crate::ops::f16_bytes(&t))
                    } else {
                        (DType::F32, bytemuck::cast_slice(&t).to_vec())
                    };
                    Some(WeightBuffer::upload(
                        up.gpu,
                        n,
                        &[rows, e.dim],
                        dtype,
                        &bytes,
                    )?)
                }
                None => None,
            });
        }
        let token_type = small.pop().unwrap();
        let position = small.pop().unwrap();
        Ok(Embeddings {
            word,
            position,
            token_type,
            norm: up.norm(&e.norm)?,
            dim: e.dim,
            project: match &e.project {
                Some(p) => Some(up.lin(p)?),
                None => None,
            },
        })
    }

    fn build(
        &self,
        g: &mut GraphBuilder,
        idx: TensorId,
        batch: usize,
        seq: usize,
    ) -> Result<TensorId> {
        let word = g.weight(&self.word);
        let pos = self.position.as_ref().map(|t| g.weight(t));
        let typ = self.token_type.as_ref().map(|t| g.weight(t));
        let (gamma, beta) = norm_ids(g, &self.norm);
        let mut x = g.embedding(
            "embeddings",
            idx,
            word,
            pos,
            typ,
            gamma,
            beta,
            self.norm.eps,
            &[batch, seq, self.dim],
        )?;
        if let Some(p) = &self.project {
            let (w, b) = lin_ids(g, p);
            x = g.linear_f32("embeddings.project", x, w, b, Act::Identity)?;
        }
        Ok(x)
    }
}

enum AttnKind {
    Plain,
    SharedBias,
    Rotary {
        theta: f64,
        window: usize,
    },
    /// The network's relative embeddings through this layer's query and key projections,
    /// `[2·span, hidden]` f32 each, computed once at load.
    Disentangled {
        pos_q: WeightBuffer,
        pos_k: WeightBuffer,
    },
}

struct Attention {
    /// Q, K and V as one `[3·hidden, hidden]` projection.
    qkv: Lin,
    out: Lin,
    kind: AttnKind,
}

impl Attention {
    fn load(up: &mut Uploader, s: &AttentionSpec, rel: Option<&RelTable>) -> Result<Attention> {
        Ok(Attention {
            qkv: match &s.qkv {
                QkvSpec::Separate { q, k, v } => up.fused(&[q, k, v])?,
                QkvSpec::Packed(p) => up.lin(p)?,
            },
            out: up.lin(&s.out)?,
            kind: match &s.kind {
                AttentionKind::Plain => AttnKind::Plain,
                AttentionKind::SharedBias => AttnKind::SharedBias,
                AttentionKind::Rotary { theta, window } => AttnKind::Rotary {
                    theta: *theta,
                    window: *window,
                },
                AttentionKind::Disentangled { pos_q, pos_k } => {
                    let rel = rel.ok_or_else(|| {
                        Error::Graph(format!(
                            "{}: disentangled attention without the network's relative embeddings",
                            s.out.w
                        ))
                    })?;
                    AttnKind::Disentangled {
                        pos_q: rel.project(up, pos_q)?,
                        pos_k: rel.project(up, pos_k)?,
                    }
                }
            },
        })
    }

    /// The attention block's output projection, before any residual or norm.
    fn build(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        x: TensorId,
        cx: &Context,
    ) -> Result<TensorId> {
        let (w, b) = lin_ids(g, &self.qkv);
        let qkv = g.linear(&format!("{name}.qkv"), x, w, b, Act::Identity)?;
        let extras = match &self.kind {
            AttnKind::Plain => AttentionExtras::default(),
            AttnKind::Rotary { theta, window } => {
                let table = cx.rope_table(*theta).ok_or_else(|| {
                    Error::Graph(format!("{name}: no rotary table for theta {theta}"))
                })?;
                g.rope(&format!("{name}.rope"), qkv, cx.heads, table)?;
                AttentionExtras {
                    window: *window,
                    ..AttentionExtras::default()
                }
            }
            AttnKind::SharedBias => AttentionExtras {
                bias: Some(cx.shared_bias.ok_or_else(|| {
                    Error::Graph(format!("{name}: the network has no shared position bias"))
                })?),
                ..AttentionExtras::default()
            },
            AttnKind::Disentangled { pos_q, pos_k } => {
                let rel = cx.relative.as_ref().ok_or_else(|| {
                    Error::Graph(format!("{name}: the network has no relative embeddings"))
                })?;
                rel.extras(g, name, qkv, cx.heads, pos_q, pos_k)?
            }
        };
        let ctx = g.attention(&format!("{name}.attention"), qkv, cx.mask, cx.heads, extras)?;
        let (w, b) = lin_ids(g, &self.out);
        g.linear(&format!("{name}.attn_out"), ctx, w, b, Act::Identity)
    }
}

enum Mlp {
    Plain { up: Lin, down: Lin, act: Act },
    Gated { up: Lin, down: Lin, act: Act },
}

impl Mlp {
    fn load(up: &mut Uploader, s: &MlpSpec) -> Result<Mlp> {
        Ok(match s {
            MlpSpec::Plain { up: u, down, act } => Mlp::Plain {
                up: up.lin(u)?,
                down: up.lin(down)?,
                act: *act,
            },
            MlpSpec::Gated { up: u, down, act } => Mlp::Gated {
                up: up.lin(u)?,
                down: up.lin(down)?,
                act: *act,
            },
        })
    }

    fn build(&self, g: &mut GraphBuilder, name: &str, x: TensorId) -> Result<TensorId> {
        match self {
            Mlp::Plain { up, down, act } => {
                let (w, b) = lin_ids(g, up);
                let f = g.linear(&format!("{name}.ff_in"), x, w, b, *act)?;
                let (w, b) = lin_ids(g, down);
                g.linear(&format!("{name}.ff_out"), f, w, b, Act::Identity)
            }
            Mlp::Gated { up, down, act } => {
                let (w, b) = lin_ids(g, up);
                let f = g.linear(&format!("{name}.ff_in"), x, w, b, Act::Identity)?;
                let f = g.glu(&format!("{name}.glu"), f, *act)?;
                let (w, b) = lin_ids(g, down);
                g.linear(&format!("{name}.ff_out"), f, w, b, Act::Identity)
            }
        }
    }
}

enum Norms {
    Post { attn: Norm, mlp: Norm },
    Pre { attn: Option<Norm>, mlp: Norm },
}

/// The residual stream between layers: `x + pending`, the add left to whichever norm reads it
/// next (a pre-LN layer's norm adds and normalises in one kernel and keeps the sum).
#[derive(Clone, Copy)]
struct Stream {
    x: TensorId,
    pending: Option<TensorId>,
}

impl Stream {
    fn of(x: TensorId) -> Stream {
        Stream { x, pending: None }
    }

    /// `(norm(stream), stream)`: the normalised stream and the stream itself, materialised.
    fn norm(self, g: &mut GraphBuilder, label: &str, n: &Norm) -> Result<(TensorId, TensorId)> {
        let (gamma, beta) = norm_ids(g, n);
        match self.pending {
            None => Ok((
                g.layer_norm(label, self.x, None, gamma, beta, n.eps)?,
                self.x,
            )),
            Some(p) => g.add_layer_norm(label, p, self.x, gamma, beta, n.eps),
        }
    }

    /// The stream as one tensor, where no norm reads it next.
    fn materialised(self, what: &str) -> Result<TensorId> {
        match self.pending {
            None => Ok(self.x),
            Some(_) => Err(Error::Graph(format!(
                "{what}: a pre-LN stream ends without a norm to add its last residual"
            ))),
        }
    }
}

struct Layer {
    attention: Attention,
    mlp: Mlp,
    norms: Norms,
}

/// What every layer of one graph shares.
struct Context {
    mask: TensorId,
    heads: usize,
    shared_bias: Option<TensorId>,
    /// Rotary cos/sin tables for this sequence length, by base.
    rope_tables: Vec<(f64, TensorId)>,
    relative: Option<RelIndex>,
}

impl Context {
    fn rope_table(&self, theta: f64) -> Option<TensorId> {
        self.rope_tables
            .iter()
            .find(|(t, _)| *t == theta)
            .map(|(_, id)| *id)
    }
}

impl Layer {
    fn load(up: &mut Uploader, s: &LayerSpec, rel: Option<&RelTable>) -> Result<Layer> {
        Ok(Layer {
            attention: Attention::load(up, &s.attention, rel)?,
            mlp: Mlp::load(up, &s.mlp)?,
            norms: match &s.norms {
                NormPlacement::Post { attn, mlp } => Norms::Post {
                    attn: up.norm(attn)?,
                    mlp: up.norm(mlp)?,
                },
                NormPlacement::Pre { attn, mlp } => Norms::Pre {
                    attn: attn.as_ref().map(|a| up.norm(a)).transpose()?,
                    mlp: up.norm(mlp)?,
                },
            },
        })
    }

    /// The layer's output stream, and its input stream materialised (a hidden state).
    fn build(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        input: Stream,
        cx: &Context,
    ) -> Result<(Stream, TensorId)> {
        match &self.norms {
            Norms::Post { attn, mlp } => {
                let x = input.materialised(name)?;
                let a = self.attention.build(g, name, x, cx)?;
                let h = layer_norm(g, &format!("{name}.attn_norm"), a, Some(x), attn)?;
                let f = self.mlp.build(g, name, h)?;
                let y = layer_norm(g, &format!("{name}.out_norm"), f, Some(h), mlp)?;
                Ok((Stream::of(y), x))
            }
            Norms::Pre { attn, mlp } => {
                let (n, x) = match attn {
                    Some(norm) => input.norm(g, &format!("{name}.attn_norm"), norm)?,
                    None => {
                        let x = input.materialised(name)?;
                        (x, x)
                    }
                };
                let a = self.attention.build(g, name, n, cx)?;
                let h = Stream {
                    x,
                    pending: Some(a),
                };
                let (n, h) = h.norm(g, &format!("{name}.mlp_norm"), mlp)?;
                let m = self.mlp.build(g, name, n)?;
                Ok((
                    Stream {
                        x: h,
                        pending: Some(m),
                    },
                    x,
                ))
            }
        }
    }
}

enum PositionBias {
    /// The `[buckets, heads]` table on the host: the bias per offset is built per graph.
    RelativeBuckets {
        table: Vec<f32>,
        buckets: usize,
        max_distance: usize,
    },
    /// DeBERTa: the layers hold their projections of the table; a graph needs the row of the
    /// table each offset uses.
    Disentangled(RelTable),
}

/// What a graph's layers share from the network-wide position part.
enum SharedPositions {
    Bias(TensorId),
    Relative(RelIndex),
}

/// DeBERTa's relative embeddings, layer-normed (in f64, kept as f32 like transformers' f32
/// LayerNorm output), on the host until every layer has projected them.
struct RelTable {
    spec: DisentangledSpec,
    /// `[2·span, hidden]`.
    normed: Vec<f32>,
}

impl RelTable {
    fn load(w: &Weights, d: &DisentangledSpec) -> Result<RelTable> {
        let (rows, h) = (2 * d.span, d.hidden);
        let mut normed = w.get(&d.table, &[rows, h])?.to_f32();
        if let Some(n) = &d.norm {
            let gamma = w.get(&n.gamma, &[h])?.to_f32();
            let beta = match &n.beta {
                Some(b) => w.get(b, &[h])?.to_f32(),
                None => vec![0.0; h],
            };
            for row in normed.chunks_mut(h) {
                let mean = row.iter().map(|&x| x as f64).sum::<f64>() / h as f64;
                let var = row.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / h as f64;
                let inv = 1.0 / (var + n.eps as f64).sqrt();
                for (k, x) in row.iter_mut().enumerate() {
                    *x = ((*x as f64 - mean) * inv * gamma[k] as f64 + beta[k] as f64) as f32;
                }
            }
        }
        Ok(RelTable {
            spec: d.clone(),
            normed,
        })
    }

    /// `table · Wᵀ + b` for a layer's `[hidden, hidden]` projection, uploaded as f32
    /// `[2·span, hidden]`: weights only, so done once here instead of in every forward. f32
    /// products as transformers computes them, eight lanes wide and the rows split over the
    /// cores (v3-base: 2 × 512 × 768 × 768 multiply-adds per layer).
    fn project(&self, up: &mut Uploader, l: &LinSpec) -> Result<WeightBuffer> {
        let h = self.spec.hidden;
        let w = up.w.get(&l.w, &[l.out, l.inp])?.to_f32();
        let b = match &l.b {
            Some(b) => up.w.get(b, &[l.out])?.to_f32(),
            None => vec![0.0; l.out],
        };
        let rows = self.normed.len() / h;
        let mut out = vec![0f32; rows * l.out];
        let work = |x: &[f32], y: &mut [f32]| {
            for (xr, yr) in x.chunks(h).zip(y.chunks_mut(l.out)) {
                for ((wr, bo), yo) in w.chunks(l.inp).zip(&b).zip(yr.iter_mut()) {
                    *yo = dot(xr, wr) + bo;
                }
            }
        };
        // No threads in the browser (wasm32-unknown-unknown cannot spawn): one pass there.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        if threads <= 1 || cfg!(target_arch = "wasm32") {
            work(&self.normed, &mut out);
        } else {
            let per = rows.div_ceil(threads).max(1);
            std::thread::scope(|s| {
                for (x, y) in self.normed.chunks(per * h).zip(out.chunks_mut(per * l.out)) {
                    s.spawn(move || work(x, y));
                }
            });
        }
        WeightBuffer::upload(
            up.gpu,
            &format!("{}.relative", l.w),
            &[rows, l.out],
            DType::F32,
            bytemuck::cast_slice(&out),
        )
    }

    /// The u32 row (within the window the graph's length reaches) of every offset.
    fn build(&self, g: &mut GraphBuilder, seq: usize) -> Result<RelIndex> {
        let d = &self.spec;
        let (lo, rows) = disentangled_rows(seq, d.span, d.buckets, d.max_relative);
        let width = rows.iter().max().map_or(1, |m| *m as usize + 1);
        let buf = WeightBuffer::upload(
            g.gpu(),
            "relative_rows",
            &[rows.len()],
            DType::U32,
            bytemuck::cast_slice(&rows),
        )?;
        Ok(RelIndex {
            rows: g.weight(&buf),
            lo,
            width,
            c2p: d.c2p,
            p2c: d.p2c,
            scale_factor: d.scale_factor(),
        })
    }
}

/// One graph's relative-position rows for DeBERTa's layers.
struct RelIndex {
    /// u32 `[2·seq − 1]`: the window row of offset `i − j` at `i − j + seq − 1`.
    rows: TensorId,
    /// The window: table rows `lo..lo + width`.
    lo: usize,
    width: usize,
    c2p: bool,
    p2c: bool,
    scale_factor: usize,
}

impl RelIndex {
    /// The bias and scale of one disentangled attention: `Q·PosKᵀ` and `K·PosQᵀ` over the
    /// window as two matmuls batched over (batch, head) straight out of `qkv`, scaled like the
    /// content scores, then gathered per (query, key) into a `[batch·heads, seq, seq]` bias.
    fn extras(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        qkv: TensorId,
        heads: usize,
        pos_q: &WeightBuffer,
        pos_k: &WeightBuffer,
    ) -> Result<AttentionExtras> {
        let s = g.shape(qkv).to_vec();
        let (bsz, seq, h) = (s[0], s[1], s[2] / 3);
        let d = h / heads;
        let w = self.width;
        // transformers: 1/√(d·scale_factor), the root taken in f32.
        let scale = 1.0 / (d as f32 * self.scale_factor as f32).sqrt();
        let mut term = |label: &str, content_off: usize, pos: &WeightBuffer| -> Result<TensorId> {
            let out = g.activation(label, &[bsz * heads, seq, w]);
            let mut mm = Matmul::linear(seq, w, d);
            mm.batch0 = bsz;
            mm.batch1 = heads;
            mm.a = View {
                off: content_off,
                b0: seq * 3 * h,
                b1: d,
                rows: 3 * h,
                cols: 1,
            };
            mm.b = View {
                off: self.lo * h,
                b0: 0,
                b1: d,
                rows: h,
                cols: 1,
            };
            mm.c = View {
                off: 0,
                b0: heads * seq * w,
                b1: seq * w,
                rows: w,
                cols: 1,
            };
            mm.alpha = scale;
            let p = g.weight(pos);
            g.matmul(label, mm, qkv, p, None, out)?;
            Ok(out)
        };
        // Q against the keys' projection, K against the queries'.
        let c2p = if self.c2p {
            Some(term(&format!("{name}.c2p"), 0, pos_k)?)
        } else {
            None
        };
        let p2c = if self.p2c {
            Some(term(&format!("{name}.p2c"), h, pos_q)?)
        } else {
            None
        };
        let bias = g.rel_gather(
            &format!("{name}.rel_bias"),
            c2p,
            p2c,
            self.rows,
            bsz * heads,
            seq,
        )?;
        Ok(AttentionExtras {
            bias: Some(bias),
            scale: Some(scale),
            ..AttentionExtras::default()
        })
    }
}

impl PositionBias {
    fn load(w: &Weights, s: &PositionBiasSpec, heads: usize) -> Result<PositionBias> {
        Ok(match s {
            PositionBiasSpec::Disentangled(d) => PositionBias::Disentangled(RelTable::load(w, d)?),
            PositionBiasSpec::RelativeBuckets {
                table,
                rows,
                buckets,
                max_distance,
            } => PositionBias::RelativeBuckets {
                table: w.get(table, &[*rows, heads])?.to_f32(),
                buckets: *buckets,
                max_distance: *max_distance,
            },
        })
    }

    fn build(&self, g: &mut GraphBuilder, heads: usize, seq: usize) -> Result<SharedPositions> {
        match self {
            PositionBias::Disentangled(t) => Ok(SharedPositions::Relative(t.build(g, seq)?)),
            PositionBias::RelativeBuckets {
                table,
                buckets,
                max_distance,
            } => {
                let bias = relative_bias(table, heads, seq, *buckets, *max_distance);
                let buf = WeightBuffer::upload(
                    g.gpu(),
                    "relative_bias",
                    &[heads, 2 * seq - 1],
                    DType::F32,
                    bytemuck::cast_slice(&bias),
                )?;
                Ok(SharedPositions::Bias(g.weight(&buf)))
            }
        }
    }
}

struct HeadTransform {
    dense: Lin,
    act: Act,
    norm: Option<Norm>,
}

impl HeadTransform {
    fn load(up: &mut Uploader, s: &Transform) -> Result<HeadTransform> {
        Ok(HeadTransform {
            dense: up.lin(&s.dense)?,
            act: s.act,
            norm: match &s.norm {
                Some(n) => Some(up.norm(n)?),
                None => None,
            },
        })
    }

    /// On every row of `x`, or (`first_token`) on the first token of each `[batch, seq, h]`
    /// sequence.
    fn build(
        &self,
        g: &mut GraphBuilder,
        label: &str,
        x: TensorId,
        first_token: bool,
    ) -> Result<TensorId> {
        let (w, b) = lin_ids(g, &self.dense);
        let label_dense = format!("{label}.dense");
        let t = if first_token {
            g.linear_first_token(&label_dense, x, w, b, self.act)?
        } else {
            g.linear(&label_dense, x, w, b, self.act)?
        };
        match &self.norm {
            Some(n) => layer_norm(g, &format!("{label}.norm"), t, None, n),
            None => Ok(t),
        }
    }
}

enum Head {
    Base,
    Classifier {
        pooling: Pooling,
        transform: Option<HeadTransform>,
        out: Lin,
    },
    QuestionAnswering(Lin),
    TokenClassifier {
        transform: Option<HeadTransform>,
        out: Lin,
    },
    MaskedLm {
        transform: HeadTransform,
        decoder: Lin,
    },
}

impl Head {
    fn load(up: &mut Uploader, s: &HeadSpec) -> Result<Head> {
        let t = |up: &mut Uploader, t: &Option<Transform>| -> Result<Option<HeadTransform>> {
            t.as_ref().map(|t| HeadTransform::load(up, t)).transpose()
        };
        Ok(match s {
            HeadSpec::Base => Head::Base,
            HeadSpec::Classifier {
                pooling,
                transform,
                out,
            } => Head::Classifier {
                pooling: *pooling,
                transform: t(up, transform)?,
                out: up.lin(out)?,
            },
            HeadSpec::QuestionAnswering(l) => Head::QuestionAnswering(up.lin(l)?),
            HeadSpec::TokenClassifier { transform, out } => Head::TokenClassifier {
                transform: t(up, transform)?,
                out: up.lin(out)?,
            },
            HeadSpec::MaskedLm { transform, decoder } => Head::MaskedLm {
                transform: HeadTransform::load(up, transform)?,
                // Tied: the same buffer as the word table (the uploader caches by name).
                decoder: up.lin(decoder)?,
            },
        })
    }
}

/// Weights on the GPU, ready to build graphs from.
pub struct Network {
    pub positions: Positions,
    embeddings: Embeddings,
    position_bias: Option<PositionBias>,
    /// Shared layers (ALBERT) appear several times as the same `Arc`.
    layers: Vec<Arc<Layer>>,
    final_norm: Option<Norm>,
    head: Head,
    heads: usize,
    /// Notes for `wgformer info` (e.g. a table stored as f16 to fit a binding).
    pub notes: Vec<String>,
}

impl Network {
    /// Checks every tensor the spec names, then uploads them (shared names once).
    pub fn load(gpu: &Gpu, heads: usize, w: &Weights, spec: &NetworkSpec) -> Result<Network> {
        gpu.scoped(|| Self::load_unscoped(gpu, heads, w, spec))
    }

    fn load_unscoped(gpu: &Gpu, heads: usize, w: &Weights, spec: &NetworkSpec) -> Result<Network> {
        for (name, shape) in spec.expected(heads) {
            w.check(&name, &shape)?;
        }
        let mut up = Uploader::new(gpu, w);
        let embeddings = Embeddings::load(&mut up, &spec.embeddings)?;
        let position_bias = spec
            .position_bias
            .as_ref()
            .map(|p| PositionBias::load(w, p, heads))
            .transpose()?;
        // Layers that name the same weights (ALBERT's groups) are one layer used again.
        let mut by_name: HashMap<String, Arc<Layer>> = HashMap::new();
        let mut layers = vec![];
        for l in &spec.layers {
            let key = match &l.attention.qkv {
                QkvSpec::Separate { q, .. } => q.w.clone(),
                QkvSpec::Packed(p) => p.w.clone(),
            };
            if let Some(shared) = by_name.get(&key) {
                layers.push(shared.clone());
                continue;
            }
            let rel = match &position_bias {
                Some(PositionBias::Disentangled(t)) => Some(t),
                _ => None,
            };
            let layer = Arc::new(Layer::load(&mut up, l, rel)?);
            by_name.insert(key, layer.clone());
            layers.push(layer);
        }
        let final_norm = spec.final_norm.as_ref().map(|n| up.norm(n)).transpose()?;
        let head = Head::load(&mut up, &spec.head)?;
        Ok(Network {
            positions: spec.embeddings.positions,
            embeddings,
            position_bias,
            layers,
            final_norm,
            head,
            heads,
            notes: up.notes,
        })
    }

    /// Logits per token for heads that run on every token: 2 (start, end) for QA, the labels
    /// for token classification, the vocabulary for a masked-LM head. `None` for a
    /// classification head (one row of `num_labels` per sequence) and for no head.
    pub fn logits_per_token(&self) -> Option<usize> {
        match &self.head {
            Head::QuestionAnswering(_) => Some(2),
            Head::TokenClassifier { out, .. } => Some(out.w.shape[0]),
            Head::MaskedLm { decoder, .. } => Some(decoder.w.shape[0]),
            Head::Base | Head::Classifier { .. } => None,
        }
    }

    /// f32 elements per batch row of the widest attention intermediate beyond the hidden
    /// states: DeBERTa's `[heads, seq, seq]` bias and `[heads, seq, window < 2·seq]` position
    /// scores; 0 for other attentions.
    pub fn attention_floats_per_row(&self, seq: usize) -> usize {
        match self.position_bias {
            Some(PositionBias::Disentangled(_)) => self.heads * seq * (2 * seq),
            _ => 0,
        }
    }

    /// Whether the head runs token by token, so [`build_graph`](Self::build_graph) can apply
    /// it to selected tokens only.
    pub fn head_per_token(&self) -> bool {
        matches!(
            self.head,
            Head::QuestionAnswering(_) | Head::TokenClassifier { .. } | Head::MaskedLm { .. }
        )
    }

    /// The forward pass for a `[batch, seq]` input as a graph.
    ///
    /// With `select > 0` a per-token head runs only on `select` chosen tokens: the graph takes a
    /// one-hot `[select, batch·seq]` matrix ([`GraphIo::select`]) and gathers those rows of the
    /// last hidden state with one matmul (exact: each output is one product by 1.0 plus zeros),
    /// so a masked-LM head computes and reads back `select × vocab` logits, not
    /// `batch·seq × vocab`. Rows of zeros give logits that mean nothing and are ignored.
    ///
    /// A masked-LM head on every token is only built when `readback` is [`Readback::Head`]:
    /// reading hidden states (embeddings from an MLM checkpoint) skips its vocabulary-wide
    /// product.
    pub fn build_graph(
        &self,
        g: &mut GraphBuilder,
        batch: usize,
        seq: usize,
        readback: Readback,
        select: usize,
    ) -> Result<GraphIo> {
        if select > 0 && !self.head_per_token() {
            return Err(Error::Input(
                "selected tokens need a head that runs on every token (token classification, masked LM, QA)"
                    .into(),
            ));
        }
        let capture_hidden = readback == Readback::AllHidden;
        if seq == 0 || batch == 0 {
            return Err(Error::Input("empty batch".into()));
        }
        let tokens = batch * seq;
        let idx = g.input("idx", &[3, tokens], DType::U32);
        let mask = g.input("mask", &[batch, seq], DType::F32);
        let x = self.embeddings.build(g, idx, batch, seq)?;
        let mut cx = Context {
            mask,
            heads: self.heads,
            shared_bias: None,
            rope_tables: self.rope_tables(g, seq)?,
            relative: None,
        };
        match self
            .position_bias
            .as_ref()
            .map(|p| p.build(g, self.heads, seq))
            .transpose()?
        {
            Some(SharedPositions::Bias(b)) => cx.shared_bias = Some(b),
            Some(SharedPositions::Relative(r)) => cx.relative = Some(r),
            None => {}
        }
        // Hidden states as transformers 5 returns them: each layer's input, then the output
        // (after a pre-LN model's final norm).
        let mut hidden = vec![];
        let mut stream = Stream::of(x);
        for (i, l) in self.layers.iter().enumerate() {
            let (out, input) = l.build(g, &format!("layer{i}"), stream, &cx)?;
            hidden.push(input);
            stream = out;
        }
        let x = match &self.final_norm {
            Some(n) => {
                let (y, _) = stream.norm(g, "final_norm", n)?;
                hidden.push(y);
                y
            }
            None => {
                let last = stream.materialised("the last layer")?;
                hidden.push(last);
                last
            }
        };
        let (logits, select_t, pool) = self.head(g, x, batch, seq, readback, select)?;
        // Read back only what the caller needs: a BERT-base 32 × 128 last hidden state is 12.6 MB.
        if readback != Readback::Head || logits.is_none() {
            g.output(x);
        }
        if capture_hidden {
            for h in &hidden {
                g.output(*h);
            }
        }
        if let Some(l) = logits {
            g.output(l);
        }
        Ok(GraphIo {
            idx,
            mask,
            hidden: if capture_hidden { hidden } else { vec![] },
            last_hidden: x,
            logits,
            select: select_t,
            pool,
        })
    }

    /// One cos/sin table per distinct rotary base, for `seq` positions.
    fn rope_tables(&self, g: &mut GraphBuilder, seq: usize) -> Result<Vec<(f64, TensorId)>> {
        let mut tables: Vec<(f64, TensorId)> = vec![];
        for l in &self.layers {
            if let AttnKind::Rotary { theta, .. } = l.attention.kind {
                if tables.iter().any(|(t, _)| *t == theta) {
                    continue;
                }
                let d = l.attention.out.w.shape[0] / self.heads;
                let t = crate::ops::rope::table(seq, d, theta);
                let buf = WeightBuffer::upload(
                    g.gpu(),
                    &format!("rope_table.{theta}"),
                    &[t.len()],
                    DType::F32,
                    bytemuck::cast_slice(&t),
                )?;
                tables.push((theta, g.weight(&buf)));
            }
        }
        Ok(tables)
    }

    /// The head's logits (if any), and the select and pool inputs it takes.
    #[allow(clippy::type_complexity)]
    fn head(
        &self,
        g: &mut GraphBuilder,
        x: TensorId,
        batch: usize,
        seq: usize,
        readback: Readback,
        select: usize,
    ) -> Result<(Option<TensorId>, Option<TensorId>, Option<TensorId>)> {
        let tokens = batch * seq;
        let h = *g.shape(x).last().unwrap();
        // The head's input: every token, or the selected ones gathered by a one-hot matmul.
        let (head_x, select_t) = if select > 0 {
            let s = g.input("select", &[select, tokens], DType::F32);
            (rows_of(g, "head.select", s, x, select, tokens, h)?, Some(s))
        } else {
            (x, None)
        };
        let mut pool = None;
        let logits = match &self.head {
            Head::Base => None,
            Head::Classifier {
                pooling,
                transform,
                out,
            } => {
                let (w, b) = lin_ids(g, out);
                let pooled = match pooling {
                    Pooling::First => None,
                    Pooling::Mean => {
                        let p = g.input("pool", &[batch, tokens], DType::F32);
                        pool = Some(p);
                        Some(rows_of(g, "head.pool", p, x, batch, tokens, h)?)
                    }
                };
                Some(match (pooled, transform) {
                    (None, Some(t)) => {
                        let p = t.build(g, "head", x, true)?;
                        g.linear_f32("head.out", p, w, b, Act::Identity)?
                    }
                    (None, None) => g.linear_first_token("head.out", x, w, b, Act::Identity)?,
                    (Some(p), t) => {
                        let p = match t {
                            Some(t) => t.build(g, "head", p, false)?,
                            None => p,
                        };
                        g.linear_f32("head.out", p, w, b, Act::Identity)?
                    }
                })
            }
            Head::QuestionAnswering(l) => {
                let (w, b) = lin_ids(g, l);
                Some(g.linear_f32("head.qa", head_x, w, b, Act::Identity)?)
            }
            Head::TokenClassifier { transform, out } => {
                let t = match transform {
                    Some(t) => t.build(g, "head", head_x, false)?,
                    None => head_x,
                };
                let (w, b) = lin_ids(g, out);
                Some(g.linear_f32("head.classifier", t, w, b, Act::Identity)?)
            }
            Head::MaskedLm { .. } if select == 0 && readback != Readback::Head => None,
            Head::MaskedLm { transform, decoder } => {
                let t = transform.build(g, "head.transform", head_x, false)?;
                let (w, b) = lin_ids(g, decoder);
                // Logits are read back: f32 whatever the activation dtype.
                Some(g.linear_f32("head.decoder", t, w, b, Act::Identity)?)
            }
        };
        Ok((logits, select_t, pool))
    }
}

/// An f32 dot product in eight independent lanes (so it vectorises), summed at the end.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for ((s, x), y) in acc.iter_mut().zip(x).zip(y) {
            *s += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `[rows, h]` = `weights [rows, tokens]` · `x [tokens, h]`: selected tokens (one-hot rows) or
/// per-sequence means (1/len on a row's tokens).
fn rows_of(
    g: &mut GraphBuilder,
    label: &str,
    weights: TensorId,
    x: TensorId,
    rows: usize,
    tokens: usize,
    h: usize,
) -> Result<TensorId> {
    let out = g.activation(label, &[rows, h]);
    // B(n = feature, k = token) read straight out of x [tokens, h].
    let mut mm = Matmul::linear(rows, h, tokens);
    mm.b = View {
        off: 0,
        b0: 0,
        b1: 0,
        rows: 1,
        cols: h,
    };
    g.matmul(label, mm, weights, x, None, out)?;
    Ok(out)
}

fn lin_ids(g: &mut GraphBuilder, l: &Lin) -> (TensorId, Option<TensorId>) {
    (g.weight(&l.w), l.b.as_ref().map(|b| g.weight(b)))
}

fn norm_ids(g: &mut GraphBuilder, n: &Norm) -> (TensorId, TensorId) {
    (g.weight(&n.gamma), g.weight(&n.beta))
}

fn layer_norm(
    g: &mut GraphBuilder,
    label: &str,
    x: TensorId,
    residual: Option<TensorId>,
    n: &Norm,
) -> Result<TensorId> {
    let (gamma, beta) = norm_ids(g, n);
    g.layer_norm(label, x, residual, gamma, beta, n.eps)
}
