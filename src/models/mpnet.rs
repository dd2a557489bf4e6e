//! MPNet (`model_type: mpnet`): BERT's post-LN layers with a relative position bias added to
//! every layer's attention scores — one `[buckets, heads]` table, bucketed by `j − i` with the
//! T5 rule and computed once per graph — plus RoBERTa-style positions after the hard-coded
//! padding index 1, and no token types. Heads: `MPNetForSequenceClassification`
//! (`classifier.dense`, tanh, `classifier.out_proj` on `<s>`), `…ForTokenClassification`,
//! `…ForQuestionAnswering` and `…ForMaskedLM` (`lm_head`: dense, gelu, layer_norm, decoder tied
//! to the word embeddings).

use super::bert::{
    self, first_token_classifier, masked_lm, post_ln_layer, token_classifier, PostLnNames,
};
use super::config::{HeadKind, ModelConfig};
use super::encoder::{
    AttentionKind, EmbeddingSpec, HeadSpec, LinSpec, NetworkSpec, NormSpec, PositionBiasSpec,
    Positions,
};
use crate::ops::activation::Act;

pub const PREFIXES: &[&str] = &["mpnet."];

/// transformers buckets with its default 32 whatever the table size (`compute_position_bias`).
const BUCKETS: usize = 32;
const MAX_DISTANCE: usize = 128;
/// `MPNetEmbeddings.padding_idx`, fixed whatever `pad_token_id` says.
const PADDING_IDX: u32 = 1;

pub fn spec(cfg: &ModelConfig) -> Result<NetworkSpec, String> {
    let h = cfg.hidden_size;
    let table_rows = cfg
        .raw
        .get("relative_attention_num_buckets")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(BUCKETS as u64) as usize;
    if table_rows < BUCKETS {
        return Err(format!(
            "MPNet with relative_attention_num_buckets {table_rows} is not supported: transformers indexes {BUCKETS} buckets, so the table must have at least {BUCKETS} rows"
        ));
    }
    let names = PostLnNames {
        q: "attention.attn.q",
        k: "attention.attn.k",
        v: "attention.attn.v",
        attn_out: "attention.attn.o",
        attn_norm: "attention.LayerNorm",
        ff_in: "intermediate.dense",
        ff_out: "output.dense",
        out_norm: "output.LayerNorm",
    };
    let head = match cfg.head {
        HeadKind::Base => HeadSpec::Base,
        HeadKind::SequenceClassification => first_token_classifier(
            LinSpec::new("classifier.dense", h, h),
            Act::Tanh,
            LinSpec::new("classifier.out_proj", cfg.num_labels(), h),
        ),
        HeadKind::QuestionAnswering => {
            HeadSpec::QuestionAnswering(LinSpec::new("qa_outputs", 2, h))
        }
        HeadKind::TokenClassification => token_classifier(cfg),
        HeadKind::MaskedLm => masked_lm(
            LinSpec::new("lm_head.dense", h, h),
            // MPNetLMHead calls gelu itself, whatever hidden_act says.
            Act::Gelu,
            NormSpec::new("lm_head.layer_norm", h, cfg.layer_norm_eps),
            bert::tied_decoder(
                cfg,
                "mpnet.embeddings.word_embeddings.weight",
                "lm_head.decoder.weight",
                "lm_head.bias",
                h,
            ),
        ),
    };
    Ok(NetworkSpec {
        embeddings: EmbeddingSpec {
            word: "mpnet.embeddings.word_embeddings.weight".into(),
            position: Some("mpnet.embeddings.position_embeddings.weight".into()),
            token_type: None,
            norm: NormSpec::new("mpnet.embeddings.LayerNorm", h, cfg.layer_norm_eps),
            dim: h,
            project: None,
            positions: Positions::AfterPadding { pad: PADDING_IDX },
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions,
            type_vocab: 0,
        },
        position_bias: Some(PositionBiasSpec::RelativeBuckets {
            table: "mpnet.encoder.relative_attention_bias.weight".into(),
            rows: table_rows,
            buckets: BUCKETS,
            max_distance: MAX_DISTANCE,
        }),
        layers: (0..cfg.num_layers)
            .map(|i| {
                post_ln_layer(
                    cfg,
                    &format!("mpnet.encoder.layer.{i}"),
                    &names,
                    AttentionKind::SharedBias,
                )
            })
            .collect(),
        final_norm: None,
        head,
    })
}
