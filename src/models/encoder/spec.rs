//! The parts an architecture file composes its encoder from, by tensor names: embeddings,
//! attention variants, MLPs, where the norms sit, a network-wide position bias and heads.
//! Nothing here touches the GPU; [`NetworkSpec::expected`] lists every tensor for checking
//! before any upload.

use crate::ops::activation::Act;

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

    /// A linear layer without a bias (`bias=False` in PyTorch).
    pub fn no_bias(prefix: &str, out: usize, inp: usize) -> LinSpec {
        LinSpec {
            b: None,
            ..LinSpec::new(prefix, out, inp)
        }
    }
}

/// A LayerNorm by tensor names with its epsilon; `beta: None` is a norm without bias.
#[derive(Clone, Debug)]
pub struct NormSpec {
    pub gamma: String,
    pub beta: Option<String>,
    pub n: usize,
    pub eps: f32,
}

impl NormSpec {
    pub fn new(prefix: &str, n: usize, eps: f32) -> NormSpec {
        NormSpec {
            gamma: format!("{prefix}.weight"),
            beta: Some(format!("{prefix}.bias")),
            n,
            eps,
        }
    }

    pub fn no_bias(prefix: &str, n: usize, eps: f32) -> NormSpec {
        NormSpec {
            beta: None,
            ..NormSpec::new(prefix, n, eps)
        }
    }
}

/// How the position ids fed to the position table are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// 0, 1, 2... for every row (BERT, DistilBERT, ELECTRA, ALBERT).
    Absolute,
    /// RoBERTa, MPNet: counted from `pad + 1` over the tokens that are not `pad`; a `pad` token
    /// (padding, or a literal `<pad>` in the text) sits at `pad`.
    AfterPadding { pad: u32 },
}

impl Positions {
    /// The position id of each of `ids` (one row's real tokens).
    ///
    /// `AfterPadding` is transformers' `create_position_ids_from_input_ids`:
    /// `cumsum(ids != pad) * (ids != pad) + pad`. It looks at the ids, not at the attention
    /// mask, so a pad id inside the text takes position `pad` and does not advance the count:
    /// the tokens after it sit one position lower than their index suggests.
    pub fn of_row(self, ids: &[u32]) -> Vec<u32> {
        match self {
            Positions::Absolute => (0..ids.len() as u32).collect(),
            Positions::AfterPadding { pad } => {
                let mut seen = 0u32;
                ids.iter()
                    .map(|&id| {
                        if id == pad {
                            pad
                        } else {
                            seen += 1;
                            pad + seen
                        }
                    })
                    .collect()
            }
        }
    }
}

/// Token embeddings: word (+ position) (+ token type) tables summed, then a LayerNorm.
#[derive(Clone, Debug)]
pub struct EmbeddingSpec {
    pub word: String,
    /// `[max_positions, dim]`; `None` for models whose positions live in attention (relative
    /// or rotary).
    pub position: Option<String>,
    /// `[type_vocab_size, dim]`.
    pub token_type: Option<String>,
    pub norm: NormSpec,
    /// Width of the tables (may be below the hidden size).
    pub dim: usize,
    /// ELECTRA/ALBERT: a linear map from `dim` to the hidden size.
    pub project: Option<LinSpec>,
    pub positions: Positions,
    /// Rows of the tables, for checking shapes.
    pub vocab: usize,
    pub max_positions: usize,
    pub type_vocab: usize,
}

/// Q, K and V projections: three linears (run as one fused projection) or one stored `[3h, h]`.
#[derive(Clone, Debug)]
pub enum QkvSpec {
    Separate { q: LinSpec, k: LinSpec, v: LinSpec },
    Packed(LinSpec),
}

/// What is added to the attention scores besides the padding mask.
#[derive(Clone, Debug)]
pub enum AttentionKind {
    /// `softmax(Q·Kᵀ/√d + mask)·V`.
    Plain,
    /// Plus the network's shared [`PositionBiasSpec`] (MPNet).
    SharedBias,
    /// Rotary position embedding on Q and K (base `theta`), keys limited to a sliding
    /// `window` (`|i − j| ≤ window/2`; 0 global) (ModernBERT).
    Rotary { theta: f64, window: usize },
    /// DeBERTa's disentangled attention: the network's [`PositionBiasSpec::Disentangled`]
    /// relative embeddings projected by `pos_q`/`pos_k` (the layer's own query and key
    /// projections when keys are shared) give content→position and position→content scores,
    /// added to `Q·Kᵀ`, all scaled by `1/√(head_dim · (1 + terms))`.
    Disentangled { pos_q: LinSpec, pos_k: LinSpec },
}

/// Multi-head self-attention: projections, the attention variant, the output projection.
#[derive(Clone, Debug)]
pub struct AttentionSpec {
    pub qkv: QkvSpec,
    pub out: LinSpec,
    pub kind: AttentionKind,
}

/// The feed-forward block.
#[derive(Clone, Debug)]
pub enum MlpSpec {
    /// `down(act(up(x)))`.
    Plain {
        up: LinSpec,
        down: LinSpec,
        act: Act,
    },
    /// `down(act(a)·g)` where `[a | g] = up(x)` (`up` is `[2·inner, hidden]`): GeGLU.
    Gated {
        up: LinSpec,
        down: LinSpec,
        act: Act,
    },
}

/// Where a layer's norms sit.
#[derive(Clone, Debug)]
pub enum NormPlacement {
    /// BERT: `h = LN(x + attn(x))`, `y = LN(h + mlp(h))`.
    Post { attn: NormSpec, mlp: NormSpec },
    /// Pre-LN: `h = x + attn(LN(x))`, `y = h + mlp(LN(h))`; `attn: None` feeds `x` as it is
    /// (ModernBERT's first layer).
    Pre {
        attn: Option<NormSpec>,
        mlp: NormSpec,
    },
}

#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub attention: AttentionSpec,
    pub mlp: MlpSpec,
    pub norms: NormPlacement,
}

/// An additive attention bias computed once per graph and shared by every layer.
#[derive(Clone, Debug)]
pub enum PositionBiasSpec {
    /// MPNet/T5: `table[bucket(j − i)]`, `table` `[buckets, heads]`, with the bidirectional
    /// log buckets of [`relative_bucket`](super::bias::relative_bucket).
    RelativeBuckets {
        table: String,
        /// Rows of the table (at least `buckets`).
        rows: usize,
        buckets: usize,
        max_distance: usize,
    },
    /// DeBERTa-v2/v3's relative embeddings, read by every [`AttentionKind::Disentangled`] layer.
    Disentangled(DisentangledSpec),
}

/// DeBERTa's relative positions: query `i` and key `j` use row
/// `clamp(bucket(i − j) + span, 0, 2·span − 1)` of the (optionally layer-normed) table, with
/// `bucket` the log buckets of [`log_bucket`](super::bias::log_bucket) (none when `buckets` is 0).
#[derive(Clone, Debug)]
pub struct DisentangledSpec {
    /// `[2·span, hidden]`.
    pub table: String,
    pub hidden: usize,
    pub norm: Option<NormSpec>,
    pub span: usize,
    /// `position_buckets`; 0 for exact relative positions.
    pub buckets: usize,
    /// `max_relative_positions` (already `max_position_embeddings` when the config says −1).
    pub max_relative: usize,
    /// Content→position (`Q_i·PosK`) and position→content (`K_j·PosQ`) terms.
    pub c2p: bool,
    pub p2c: bool,
}

impl DisentangledSpec {
    /// `scale_factor` in transformers: one plus the position terms.
    pub fn scale_factor(&self) -> usize {
        1 + usize::from(self.c2p) + usize::from(self.p2c)
    }
}

/// `norm(act(dense(x)))` before a head's output layer (the norm optional).
#[derive(Clone, Debug)]
pub struct Transform {
    pub dense: LinSpec,
    pub act: Act,
    pub norm: Option<NormSpec>,
}

/// How a sequence-level head reduces the tokens to one vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The first token (`[CLS]`/`<s>`).
    First,
    /// The mean over real tokens.
    Mean,
}

#[derive(Clone, Debug)]
pub enum HeadSpec {
    Base,
    /// `out(transform(pool(x)))`.
    Classifier {
        pooling: Pooling,
        transform: Option<Transform>,
        out: LinSpec,
    },
    /// On every token: start/end logits.
    QuestionAnswering(LinSpec),
    /// On every token: one logit per label (`*ForTokenClassification`).
    TokenClassifier {
        transform: Option<Transform>,
        out: LinSpec,
    },
    /// On every token (or only the selected ones): `decoder(transform(x))`, vocabulary logits.
    /// `decoder.w` is the word embedding table when the weights are tied (`[vocab, dim]` is
    /// already `[out, in]`).
    MaskedLm {
        transform: Transform,
        decoder: LinSpec,
    },
}

/// A whole model by tensor names, as an architecture file describes it.
#[derive(Clone, Debug)]
pub struct NetworkSpec {
    pub embeddings: EmbeddingSpec,
    pub position_bias: Option<PositionBiasSpec>,
    pub layers: Vec<LayerSpec>,
    /// Pre-LN models' norm after the last layer.
    pub final_norm: Option<NormSpec>,
    pub head: HeadSpec,
}

type Expected = Vec<(String, Vec<usize>)>;

fn lin(v: &mut Expected, l: &LinSpec) {
    v.push((l.w.clone(), vec![l.out, l.inp]));
    if let Some(b) = &l.b {
        v.push((b.clone(), vec![l.out]));
    }
}

fn norm(v: &mut Expected, n: &NormSpec) {
    v.push((n.gamma.clone(), vec![n.n]));
    if let Some(b) = &n.beta {
        v.push((b.clone(), vec![n.n]));
    }
}

fn transform(v: &mut Expected, t: &Transform) {
    lin(v, &t.dense);
    if let Some(n) = &t.norm {
        norm(v, n);
    }
}

impl NetworkSpec {
    /// Every (name, shape) the spec reads, for checking before any GPU work.
    pub fn expected(&self, heads: usize) -> Expected {
        let mut v = vec![];
        let e = &self.embeddings;
        v.push((e.word.clone(), vec![e.vocab, e.dim]));
        if let Some(p) = &e.position {
            v.push((p.clone(), vec![e.max_positions, e.dim]));
        }
        if let Some(t) = &e.token_type {
            v.push((t.clone(), vec![e.type_vocab, e.dim]));
        }
        norm(&mut v, &e.norm);
        if let Some(p) = &e.project {
            lin(&mut v, p);
        }
        match &self.position_bias {
            None => {}
            Some(PositionBiasSpec::RelativeBuckets { table, rows, .. }) => {
                v.push((table.clone(), vec![*rows, heads]))
            }
            Some(PositionBiasSpec::Disentangled(d)) => {
                v.push((d.table.clone(), vec![2 * d.span, d.hidden]));
                if let Some(n) = &d.norm {
                    norm(&mut v, n);
                }
            }
        }
        for l in &self.layers {
            match &l.attention.qkv {
                QkvSpec::Separate { q, k, v: vv } => {
                    for x in [q, k, vv] {
                        lin(&mut v, x);
                    }
                }
                QkvSpec::Packed(p) => lin(&mut v, p),
            }
            lin(&mut v, &l.attention.out);
            if let AttentionKind::Disentangled { pos_q, pos_k } = &l.attention.kind {
                lin(&mut v, pos_q);
                lin(&mut v, pos_k);
            }
            match &l.mlp {
                MlpSpec::Plain { up, down, .. } | MlpSpec::Gated { up, down, .. } => {
                    lin(&mut v, up);
                    lin(&mut v, down);
                }
            }
            match &l.norms {
                NormPlacement::Post { attn, mlp } => {
                    norm(&mut v, attn);
                    norm(&mut v, mlp);
                }
                NormPlacement::Pre { attn, mlp } => {
                    if let Some(a) = attn {
                        norm(&mut v, a);
                    }
                    norm(&mut v, mlp);
                }
            }
        }
        if let Some(n) = &self.final_norm {
            norm(&mut v, n);
        }
        match &self.head {
            HeadSpec::Base => {}
            HeadSpec::Classifier {
                transform: t, out, ..
            }
            | HeadSpec::TokenClassifier { transform: t, out } => {
                if let Some(t) = t {
                    transform(&mut v, t);
                }
                lin(&mut v, out);
            }
            HeadSpec::QuestionAnswering(l) => lin(&mut v, l),
            HeadSpec::MaskedLm {
                transform: t,
                decoder,
            } => {
                transform(&mut v, t);
                lin(&mut v, decoder);
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    /// transformers' formula written out step by step: mask, cumulative sum, times mask, plus
    /// the padding index.
    fn hf_position_ids(ids: &[u32], pad: u32) -> Vec<u32> {
        let mask: Vec<u32> = ids.iter().map(|&i| u32::from(i != pad)).collect();
        let cumsum: Vec<u32> = mask
            .iter()
            .scan(0, |acc, &m| {
                *acc += m;
                Some(*acc)
            })
            .collect();
        cumsum.iter().zip(&mask).map(|(c, m)| c * m + pad).collect()
    }

    #[test]
    fn after_padding_follows_create_position_ids_from_input_ids() {
        let rows: &[&[u32]] = &[
            &[],
            &[0, 5, 6, 2],                // no pad: pad+1, pad+2, ...
            &[1, 0, 5, 2],                // pad first
            &[0, 5, 1, 6, 2],             // pad in the middle
            &[0, 5, 6, 2, 1],             // pad last
            &[0, 1, 1, 5, 1, 6, 2, 1, 1], // several, some adjacent
            &[1, 1, 1],                   // only pads
        ];
        for pad in [1u32, 0, 3] {
            for ids in rows {
                assert_eq!(
                    Positions::AfterPadding { pad }.of_row(ids),
                    hf_position_ids(ids, pad),
                    "ids {ids:?}, pad {pad}"
                );
            }
        }
        // Spelled out once: the tokens after a literal pad shift down by one.
        assert_eq!(
            Positions::AfterPadding { pad: 1 }.of_row(&[0, 5, 1, 6, 2]),
            [2, 3, 1, 4, 5]
        );
        assert_eq!(Positions::Absolute.of_row(&[0, 1, 1, 5]), [0, 1, 2, 3]);
    }
}
