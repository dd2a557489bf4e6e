//! What every supported architecture shares: the post-LayerNorm transformer encoder, described
//! by tensor names ([`NetworkSpec`], written by each architecture's file), checked and uploaded
//! once ([`Network`]), and turned into a graph per batch shape ([`Network::build_graph`]).

use super::config::ModelConfig;
use super::weights::Weights;
use crate::gpu::Gpu;
use crate::graph::{GraphBuilder, TensorId, WeightBuffer};
use crate::ops::activation::Act;
use crate::ops::matmul::{Matmul, View};
use crate::ops::DType;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// A linear layer by tensor names; `w` is `[out, inp]`.
#[derive(Clone, Debug)]
pub struct LinSpec {
    pub w: String,
    pub b: Option<String>,
    pub out: usize,
    pub inp: usize,
}

impl LinSpec {
    pub fn new(prefix: &str, out: usize, inp: usize) -> LinSpec {
        LinSpec {
            w: format!("{prefix}.weight"),
            b: Some(format!("{prefix}.bias")),
            out,
            inp,
        }
    }
}

#[derive(Clone, Debug)]
pub struct NormSpec {
    pub gamma: String,
    pub beta: String,
    pub n: usize,
}

impl NormSpec {
    pub fn new(prefix: &str, n: usize) -> NormSpec {
        NormSpec {
            gamma: format!("{prefix}.weight"),
            beta: format!("{prefix}.bias"),
            n,
        }
    }
}

/// One post-LN encoder layer: `h = LN(x + O(attn(x)))`, `y = LN(h + F2(act(F1(h))))`.
#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub q: LinSpec,
    pub k: LinSpec,
    pub v: LinSpec,
    pub attn_out: LinSpec,
    pub attn_norm: NormSpec,
    pub ff_in: LinSpec,
    pub ff_out: LinSpec,
    pub out_norm: NormSpec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// 0, 1, 2... for every row (BERT, DistilBERT, ELECTRA, ALBERT).
    Absolute,
    /// RoBERTa: `pad + 1 + i` for real tokens, `pad` for padding.
    AfterPadding { pad: u32 },
}

#[derive(Clone, Debug)]
pub struct EmbeddingSpec {
    pub word: String,
    pub position: String,
    pub token_type: Option<String>,
    pub norm: NormSpec,
    /// Width of the tables (may be below the hidden size).
    pub dim: usize,
    /// ELECTRA/ALBERT: a linear map from `dim` to the hidden size.
    pub project: Option<LinSpec>,
    pub positions: Positions,
}

#[derive(Clone, Debug)]
pub enum HeadSpec {
    Base,
    /// On the first token: `out(act(dense(x)))` (or `out(x)` with no dense).
    Classifier {
        dense: Option<(LinSpec, Act)>,
        out: LinSpec,
    },
    /// On every token: start/end logits.
    QuestionAnswering(LinSpec),
    /// On every token: one logit per label (`*ForTokenClassification`).
    TokenClassifier(LinSpec),
    /// On every token (or only the selected ones, see [`Network::build_graph`]):
    /// `decoder(LayerNorm(act(transform(x))))`, vocabulary logits. `decoder.w` is the word
    /// embedding table when the weights are tied (`[vocab, dim]` is already `[out, in]`).
    MaskedLm {
        transform: LinSpec,
        act: Act,
        norm: NormSpec,
        /// The head's own LayerNorm epsilon (DistilBERT hard-codes 1e-12).
        eps: f32,
        decoder: LinSpec,
    },
}

/// A whole model by tensor names, as an architecture file describes it.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub embeddings: EmbeddingSpec,
    pub layers: Vec<LayerSpec>,
    pub head: HeadSpec,
}

struct Lin {
    w: WeightBuffer,
    b: Option<WeightBuffer>,
}

struct Norm {
    gamma: WeightBuffer,
    beta: WeightBuffer,
}

struct Layer {
    /// Q, K and V as one `[3·hidden, hidden]` projection.
    qkv: Lin,
    attn_out: Lin,
    attn_norm: Norm,
    ff_in: Lin,
    ff_out: Lin,
    out_norm: Norm,
}

enum Head {
    Base,
    Classifier {
        dense: Option<(Lin, Act)>,
        out: Lin,
    },
    QuestionAnswering(Lin),
    TokenClassifier(Lin),
    MaskedLm {
        transform: Lin,
        act: Act,
        norm: Norm,
        eps: f32,
        decoder: Lin,
    },
}

/// Weights on the GPU, ready to build graphs from.
pub struct Network {
    pub positions: Positions,
    word: WeightBuffer,
    position: WeightBuffer,
    token_type: Option<WeightBuffer>,
    emb_norm: Norm,
    emb_dim: usize,
    project: Option<Lin>,
    /// Shared layers (ALBERT) appear several times as the same `Arc`.
    layers: Vec<Arc<Layer>>,
    head: Head,
    heads: usize,
    act: Act,
    eps: f32,
    /// Notes for `wgformer info` (e.g. a table split over several bindings).
    pub notes: Vec<String>,
}

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
}

struct Uploader<'a> {
    gpu: &'a Gpu,
    w: &'a Weights,
    cache: HashMap<String, WeightBuffer>,
    notes: Vec<String>,
}

impl Uploader<'_> {
    fn tensor(&mut self, name: &str, shape: &[usize]) -> Result<WeightBuffer> {
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

    fn lin(&mut self, s: &LinSpec) -> Result<Lin> {
        Ok(Lin {
            w: self.tensor(&s.w, &[s.out, s.inp])?,
            b: match &s.b {
                Some(b) => Some(self.tensor(b, &[s.out])?),
                None => None,
            },
        })
    }

    fn norm(&mut self, s: &NormSpec) -> Result<Norm> {
        Ok(Norm {
            gamma: self.tensor(&s.gamma, &[s.n])?,
            beta: self.tensor(&s.beta, &[s.n])?,
        })
    }

    /// Several same-shaped linears (Q, K and V) as one `[n·out, inp]` matrix: one projection.
    fn fused(&mut self, parts: &[&LinSpec]) -> Result<Lin> {
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
                let joined = super::weights::HostTensor {
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

impl NetworkSpec {
    /// Every (name, shape) the spec reads, embedding tables included, for checking before any
    /// GPU work.
    pub fn expected(&self, cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
        let mut v = vec![];
        let (e, d) = (&self.embeddings, cfg.embedding_size);
        v.push((e.word.clone(), vec![cfg.vocab_size, d]));
        v.push((e.position.clone(), vec![cfg.max_positions, d]));
        if let Some(t) = &e.token_type {
            v.push((t.clone(), vec![cfg.type_vocab_size, d]));
        }
        let lin = |v: &mut Vec<(String, Vec<usize>)>, l: &LinSpec| {
            v.push((l.w.clone(), vec![l.out, l.inp]));
            if let Some(b) = &l.b {
                v.push((b.clone(), vec![l.out]));
            }
        };
        let norm = |v: &mut Vec<(String, Vec<usize>)>, n: &NormSpec| {
            v.push((n.gamma.clone(), vec![n.n]));
            v.push((n.beta.clone(), vec![n.n]));
        };
        norm(&mut v, &e.norm);
        if let Some(p) = &e.project {
            lin(&mut v, p);
        }
        for l in &self.layers {
            for x in [&l.q, &l.k, &l.v, &l.attn_out, &l.ff_in, &l.ff_out] {
                lin(&mut v, x);
            }
            norm(&mut v, &l.attn_norm);
            norm(&mut v, &l.out_norm);
        }
        match &self.head {
            HeadSpec::Base => {}
            HeadSpec::Classifier { dense, out } => {
                if let Some((d, _)) = dense {
                    lin(&mut v, d);
                }
                lin(&mut v, out);
            }
            HeadSpec::QuestionAnswering(l) | HeadSpec::TokenClassifier(l) => lin(&mut v, l),
            HeadSpec::MaskedLm {
                transform,
                norm: n,
                decoder,
                ..
            } => {
                lin(&mut v, transform);
                norm(&mut v, n);
                lin(&mut v, decoder);
            }
        }
        v
    }
}

impl Network {
    /// Checks every tensor the spec names, then uploads them (shared names once).
    pub fn load(gpu: &Gpu, cfg: &ModelConfig, w: &Weights, spec: &NetworkSpec) -> Result<Network> {
        let e = &spec.embeddings;
        for (name, shape) in spec.expected(cfg) {
            w.check(&name, &shape)?;
        }
        let d = cfg.embedding_size;
        let table_shapes = [
            (cfg.vocab_size, d),
            (cfg.max_positions, d),
            (cfg.type_vocab_size, d),
        ];
        let mut up = Uploader {
            gpu,
            w,
            cache: HashMap::new(),
            notes: vec![],
        };
        let word = up.tensor(&e.word, &[table_shapes[0].0, table_shapes[0].1])?;
        let position = up.tensor(&e.position, &[table_shapes[1].0, table_shapes[1].1])?;
        let token_type = match &e.token_type {
            Some(t) => Some(up.tensor(t, &[table_shapes[2].0, table_shapes[2].1])?),
            None => None,
        };
        // Tables share one dtype in the kernel: widen the small ones to match the word table.
        let (position, token_type) = if word.dtype != position.dtype
            || token_type.as_ref().is_some_and(|t| t.dtype != word.dtype)
        {
            let f = |name: &str, shape: [usize; 2]| -> Result<WeightBuffer> {
                let t = w.get(name, &shape)?;
                let (dtype, bytes) = if word.dtype == DType::F16 {
                    (DType::F16, crate::ops::f16_bytes(&t.to_f32()))
                } else {
                    (DType::F32, bytemuck::cast_slice(&t.to_f32()).to_vec())
                };
                WeightBuffer::upload(gpu, name, &shape, dtype, &bytes)
            };
            (
                f(&e.position, [table_shapes[1].0, table_shapes[1].1])?,
                match &e.token_type {
                    Some(t) => Some(f(t, [table_shapes[2].0, table_shapes[2].1])?),
                    None => None,
                },
            )
        } else {
            (position, token_type)
        };
        let emb_norm = up.norm(&e.norm)?;
        let project = match &e.project {
            Some(p) => Some(up.lin(p)?),
            None => None,
        };
        let mut by_name: HashMap<String, Arc<Layer>> = HashMap::new();
        let mut layers = vec![];
        for l in &spec.layers {
            if let Some(shared) = by_name.get(&l.q.w) {
                layers.push(shared.clone());
                continue;
            }
            let layer = Arc::new(Layer {
                qkv: up.fused(&[&l.q, &l.k, &l.v])?,
                attn_out: up.lin(&l.attn_out)?,
                attn_norm: up.norm(&l.attn_norm)?,
                ff_in: up.lin(&l.ff_in)?,
                ff_out: up.lin(&l.ff_out)?,
                out_norm: up.norm(&l.out_norm)?,
            });
            by_name.insert(l.q.w.clone(), layer.clone());
            layers.push(layer);
        }
        let head = match &spec.head {
            HeadSpec::Base => Head::Base,
            HeadSpec::Classifier { dense, out } => Head::Classifier {
                dense: match dense {
                    Some((d, a)) => Some((up.lin(d)?, *a)),
                    None => None,
                },
                out: up.lin(out)?,
            },
            HeadSpec::QuestionAnswering(l) => Head::QuestionAnswering(up.lin(l)?),
            HeadSpec::TokenClassifier(l) => Head::TokenClassifier(up.lin(l)?),
            HeadSpec::MaskedLm {
                transform,
                act,
                norm,
                eps,
                decoder,
            } => Head::MaskedLm {
                transform: up.lin(transform)?,
                act: *act,
                norm: up.norm(norm)?,
                eps: *eps,
                // Tied: the same buffer as the word table (the uploader caches by name).
                decoder: up.lin(decoder)?,
            },
        };
        gpu.check()?;
        Ok(Network {
            positions: e.positions,
            word,
            position,
            token_type,
            emb_norm,
            emb_dim: e.dim,
            project,
            layers,
            head,
            heads: cfg.num_heads,
            act: cfg.act,
            eps: cfg.layer_norm_eps,
            notes: up.notes,
        })
    }

    /// Logits per token for heads that run on every token: 2 (start, end) for QA, the labels
    /// for token classification, the vocabulary for a masked-LM head. `None` for a
    /// classification head (one row of `num_labels` per sequence) and for no head.
    pub fn logits_per_token(&self) -> Option<usize> {
        match &self.head {
            Head::QuestionAnswering(_) => Some(2),
            Head::TokenClassifier(l) => Some(l.w.shape[0]),
            Head::MaskedLm { decoder, .. } => Some(decoder.w.shape[0]),
            Head::Base | Head::Classifier { .. } => None,
        }
    }

    /// Whether the head runs token by token, so [`build_graph`](Self::build_graph) can apply
    /// it to selected tokens only.
    pub fn head_per_token(&self) -> bool {
        matches!(
            self.head,
            Head::QuestionAnswering(_) | Head::TokenClassifier(_) | Head::MaskedLm { .. }
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
        let word = g.weight(&self.word);
        let pos = g.weight(&self.position);
        let typ = self.token_type.as_ref().map(|t| g.weight(t));
        let (eg, eb) = (
            g.weight(&self.emb_norm.gamma),
            g.weight(&self.emb_norm.beta),
        );
        let mut x = g.embedding(
            "embeddings",
            idx,
            word,
            pos,
            typ,
            eg,
            eb,
            self.eps,
            &[batch, seq, self.emb_dim],
        )?;
        if let Some(p) = &self.project {
            let (w, b) = self.lin_ids(g, p);
            x = g.linear_f32("embeddings.project", x, w, b, Act::Identity)?;
        }
        let mut hidden = vec![x];
        for (i, l) in self.layers.iter().enumerate() {
            let name = format!("layer{i}");
            let (w, b) = self.lin_ids(g, &l.qkv);
            let qkv = g.linear(&format!("{name}.qkv"), x, w, b, Act::Identity)?;
            let ctx = g.attention(&format!("{name}.attention"), qkv, mask, self.heads, None, 0)?;
            let (w, b) = self.lin_ids(g, &l.attn_out);
            let a = g.linear(&format!("{name}.attn_out"), ctx, w, b, Act::Identity)?;
            let (ng, nb) = (g.weight(&l.attn_norm.gamma), g.weight(&l.attn_norm.beta));
            let h = g.layer_norm(&format!("{name}.attn_norm"), a, Some(x), ng, nb, self.eps)?;
            let (w, b) = self.lin_ids(g, &l.ff_in);
            let f = g.linear(&format!("{name}.ff_in"), h, w, b, self.act)?;
            let (w, b) = self.lin_ids(g, &l.ff_out);
            let f = g.linear(&format!("{name}.ff_out"), f, w, b, Act::Identity)?;
            let (ng, nb) = (g.weight(&l.out_norm.gamma), g.weight(&l.out_norm.beta));
            x = g.layer_norm(&format!("{name}.out_norm"), f, Some(h), ng, nb, self.eps)?;
            hidden.push(x);
        }
        // The head's input: every token, or the selected ones gathered by a one-hot matmul.
        let (head_x, select_t) = if select > 0 {
            let h = *g.shape(x).last().unwrap();
            let s = g.input("select", &[select, tokens], DType::F32);
            let rows = g.activation("head.select", &[select, h]);
            // B(n = feature, k = token) read straight out of x [tokens, h].
            let mut mm = Matmul::linear(select, h, tokens);
            mm.b = View {
                off: 0,
                b0: 0,
                b1: 0,
                rows: 1,
                cols: h,
            };
            g.matmul("head.select", mm, s, x, None, rows)?;
            (rows, Some(s))
        } else {
            (x, None)
        };
        let logits = match &self.head {
            Head::Base => None,
            Head::Classifier { dense, out } => {
                let (w, b) = self.lin_ids(g, out);
                Some(match dense {
                    Some((d, act)) => {
                        let (dw, db) = self.lin_ids(g, d);
                        let p = g.linear_first_token("head.dense", x, dw, db, *act)?;
                        g.linear_f32("head.out", p, w, b, Act::Identity)?
                    }
                    None => g.linear_first_token("head.out", x, w, b, Act::Identity)?,
                })
            }
            Head::QuestionAnswering(l) => {
                let (w, b) = self.lin_ids(g, l);
                Some(g.linear_f32("head.qa", head_x, w, b, Act::Identity)?)
            }
            Head::TokenClassifier(l) => {
                let (w, b) = self.lin_ids(g, l);
                Some(g.linear_f32("head.classifier", head_x, w, b, Act::Identity)?)
            }
            Head::MaskedLm { .. } if select == 0 && readback != Readback::Head => None,
            Head::MaskedLm {
                transform,
                act,
                norm,
                eps,
                decoder,
            } => {
                let (w, b) = self.lin_ids(g, transform);
                let t = g.linear("head.transform", head_x, w, b, *act)?;
                let (ng, nb) = (g.weight(&norm.gamma), g.weight(&norm.beta));
                let t = g.layer_norm("head.norm", t, None, ng, nb, *eps)?;
                let (w, b) = self.lin_ids(g, decoder);
                // Logits are read back: f32 whatever the activation dtype.
                Some(g.linear_f32("head.decoder", t, w, b, Act::Identity)?)
            }
        };
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
        })
    }

    fn lin_ids(&self, g: &mut GraphBuilder, l: &Lin) -> (TensorId, Option<TensorId>) {
        (g.weight(&l.w), l.b.as_ref().map(|b| g.weight(b)))
    }
}
