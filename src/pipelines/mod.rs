//! Pipelines: tokenization, batching and post-processing with the semantics of Hugging Face
//! transformers' pipelines. The task objects here ([`Classifier`], [`Embedder`],
//! [`QuestionAnswerer`], [`TokenClassifier`], [`FillMasker`], [`ZeroShotClassifier`],
//! [`Reranker`]) own a model and its tokenizer; the post-processing itself lives in the
//! submodules as plain Rust.

pub mod classify;
pub mod embed;
pub mod fill_mask;
pub mod input;
pub mod qa;
pub mod squad;
pub mod token_classification;
pub mod tokenize;
pub mod zero_shot;

#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::Gpu;
use crate::models::config::HeadKind;
use crate::models::files::ModelFiles;
use crate::models::{Model, Readback, Sequence};
use crate::{Error, Result};
use classify::{ClassifyFunction, LabelScore, TopK};
use embed::PoolingConfig;
use fill_mask::{Fill, FillOutput};
use input::{QaInput, TextInput};
use qa::{QaAnswer, QaParams};
#[cfg(not(target_arch = "wasm32"))]
use std::{path::Path, sync::Arc};
use token_classification::{Aggregation, Entity};
use tokenize::{TextTokenizer, Truncation};
use zero_shot::ZeroShotResult;

/// Path of `rel` in the shared/ test data beside the checkout (unit tests only).
#[cfg(test)]
pub(crate) fn test_shared(rel: &str) -> String {
    let p = format!("{}/../shared/{rel}", env!("CARGO_MANIFEST_DIR"));
    assert!(
        Path::new(&p).exists(),
        "missing test data {p}: the shared/ folder must sit beside the checkout"
    );
    p
}

/// Rows per forward pass unless the caller says otherwise.
pub const DEFAULT_BATCH: usize = 16;

/// One row's outputs, unpadded.
pub struct RowOutput {
    pub logits: Vec<f32>,
    pub last_hidden: Vec<f32>,
}

/// Runs `seqs` in batches of similar lengths (sorted, so little padding is computed) and returns
/// the outputs in input order. `progress` is told how many rows are done after each batch.
/// `readback` says whether the last hidden state is needed besides the logits.
#[cfg(not(target_arch = "wasm32"))]
pub fn forward_all(
    model: &Model,
    seqs: &[Sequence],
    batch: usize,
    readback: Readback,
    progress: &dyn Fn(usize),
) -> Result<Vec<RowOutput>> {
    pollster::block_on(forward_all_async(model, seqs, batch, readback, progress))
}

/// As [`forward_all`], awaiting the GPU (the browser's way; every task is built on this).
pub async fn forward_all_async(
    model: &Model,
    seqs: &[Sequence],
    batch: usize,
    readback: Readback,
    progress: &dyn Fn(usize),
) -> Result<Vec<RowOutput>> {
    let mut order: Vec<usize> = (0..seqs.len()).collect();
    order.sort_by_key(|&i| seqs[i].ids.len());
    let mut out: Vec<Option<RowOutput>> = (0..seqs.len()).map(|_| None).collect();
    let mut done = 0;
    let mut start = 0;
    while start < order.len() {
        // Grow the batch while it fits both `batch` and the adapter's binding limit.
        let mut end = start + 1;
        while end < order.len() && end - start < batch.max(1) {
            let seq = model.bucket(seqs[order[end]].ids.len());
            if end + 1 - start > model.max_batch(seq) {
                break;
            }
            end += 1;
        }
        let rows: Vec<Sequence> = order[start..end].iter().map(|&i| seqs[i].clone()).collect();
        let o = model.forward_reading_async(&rows, readback).await?;
        for (k, (logits, hidden)) in o.logits.into_iter().zip(o.last_hidden).enumerate() {
            out[order[start + k]] = Some(RowOutput {
                logits,
                last_hidden: hidden,
            });
        }
        done += end - start;
        progress(done);
        start = end;
    }
    Ok(out.into_iter().map(|r| r.expect("every row ran")).collect())
}

/// As [`forward_all`], with a per-token head applied only at `positions[i]` of `seqs[i]` (see
/// [`Model::forward_selected`]): per sequence, one logits vector per position, in order. A
/// sequence without positions is not run.
#[cfg(not(target_arch = "wasm32"))]
pub fn forward_all_selected(
    model: &Model,
    seqs: &[Sequence],
    positions: &[Vec<usize>],
    batch: usize,
    progress: &dyn Fn(usize),
) -> Result<Vec<Vec<Vec<f32>>>> {
    pollster::block_on(forward_all_selected_async(
        model, seqs, positions, batch, progress,
    ))
}

/// As [`forward_all_selected`], awaiting the GPU.
pub async fn forward_all_selected_async(
    model: &Model,
    seqs: &[Sequence],
    positions: &[Vec<usize>],
    batch: usize,
    progress: &dyn Fn(usize),
) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut order: Vec<usize> = (0..seqs.len())
        .filter(|&i| !positions[i].is_empty())
        .collect();
    order.sort_by_key(|&i| seqs[i].ids.len());
    let mut out: Vec<Vec<Vec<f32>>> = vec![vec![]; seqs.len()];
    let mut done = seqs.len() - order.len();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && end - start < batch.max(1) {
            let seq = model.bucket(seqs[order[end]].ids.len());
            if end + 1 - start > model.max_batch(seq) {
                break;
            }
            end += 1;
        }
        let rows: Vec<Sequence> = order[start..end].iter().map(|&i| seqs[i].clone()).collect();
        let select: Vec<(usize, usize)> = order[start..end]
            .iter()
            .enumerate()
            .flat_map(|(r, &i)| positions[i].iter().map(move |&t| (r, t)))
            .collect();
        let mut logits = model
            .forward_selected_async(&rows, &select)
            .await?
            .logits
            .into_iter();
        for &i in &order[start..end] {
            out[i] = logits.by_ref().take(positions[i].len()).collect();
        }
        done += end - start;
        progress(done);
        start = end;
    }
    Ok(out)
}

#[cfg(not(target_arch = "wasm32"))]
fn load_pair(dir: &Path, gpu: &Arc<Gpu>) -> Result<(Model, TextTokenizer)> {
    let tokenizer = TextTokenizer::load(dir)?;
    let model = Model::load(dir, gpu)?;
    Ok((model, tokenizer))
}

/// Longest input: the tokenizer's `model_max_length`, capped by the position table.
fn max_len(model: &Model, tok: &TextTokenizer) -> usize {
    tok.model_max_length().min(model.max_sequence())
}

/// Tokenizes every input (truncated to `max` tokens); returns each input's result and the
/// sequences that encoded, in order, ready for [`forward_all`].
fn encode_texts(
    tok: &TextTokenizer,
    inputs: &[TextInput],
    max: usize,
) -> (Vec<Result<Sequence>>, Vec<Sequence>) {
    let encoded: Vec<Result<Sequence>> = inputs
        .iter()
        .map(|i| {
            let e = tok.encode(&i.text, i.text_pair.as_deref(), Some(max))?;
            Ok(Sequence {
                ids: e.ids,
                type_ids: e.type_ids,
            })
        })
        .collect();
    let ok = encoded
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .cloned()
        .collect();
    (encoded, ok)
}

/// transformers' `text-classification` pipeline.
pub struct Classifier {
    pub model: Model,
    pub tokenizer: TextTokenizer,
    pub function: ClassifyFunction,
}

impl Classifier {
    /// Loads a `*ForSequenceClassification` folder; `function` overrides the config's choice.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>, function: Option<ClassifyFunction>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer, function)
    }

    /// A classifier over a loaded model and tokenizer (from disk or memory).
    pub fn new(
        model: Model,
        tokenizer: TextTokenizer,
        function: Option<ClassifyFunction>,
    ) -> Result<Self> {
        let c = &model.config;
        if c.head != HeadKind::SequenceClassification {
            return Err(Error::model(
                &model.dir,
                format!(
                    "`{}` has no sequence-classification head; use a *ForSequenceClassification model",
                    c.architecture
                ),
            ));
        }
        let function =
            ClassifyFunction::choose(c.problem_type.as_deref(), c.num_labels(), function);
        Ok(Classifier {
            model,
            tokenizer,
            function,
        })
    }

    /// Tokenizes (truncating like `truncation=True`), runs and post-processes every input; an
    /// input that cannot be tokenized gets its own error and the others still run.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(
        &self,
        inputs: &[TextInput],
        top_k: TopK,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<LabelScore>>>> {
        pollster::block_on(self.classify_async(inputs, top_k, batch, progress))
    }

    /// As [`classify`](Self::classify), awaiting the GPU.
    pub async fn classify_async(
        &self,
        inputs: &[TextInput],
        top_k: TopK,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<LabelScore>>>> {
        let max = max_len(&self.model, &self.tokenizer);
        let (encoded, ok) = encode_texts(&self.tokenizer, inputs, max);
        let mut outs = forward_all_async(&self.model, &ok, batch, Readback::Head, progress)
            .await?
            .into_iter();
        let labels = &self.model.config.id2label;
        Ok(encoded
            .into_iter()
            .map(|e| {
                e.map(|_| {
                    let o = outs.next().expect("one output per encoded input");
                    classify::postprocess(&o.logits, self.function, labels, top_k)
                })
            })
            .collect())
    }
}

/// Sentence embeddings with sentence-transformers pooling.
pub struct Embedder {
    pub model: Model,
    pub tokenizer: TextTokenizer,
    pub pooling: PoolingConfig,
    /// Longest input in tokens (`sentence_bert_config.json`'s `max_seq_length` when present).
    pub max_len: usize,
    /// `sentence_bert_config.json`'s `do_lower_case`: texts are lower-cased before tokenizing.
    pub do_lower_case: bool,
}

impl Embedder {
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer, &ModelFiles::dir(dir))
    }

    /// An embedder over a loaded model and tokenizer; `files` give the sentence-transformers
    /// pooling and length settings.
    pub fn new(model: Model, tokenizer: TextTokenizer, files: &ModelFiles) -> Result<Self> {
        let pooling = PoolingConfig::from_files(files)?;
        let st = embed::SentenceBertConfig::from_files(files)?;
        let max_len = match st.max_seq_length {
            // sentence-transformers passes `max_length=max_seq_length` to the tokenizer, so its
            // `model_max_length` plays no part; only the position table still bounds the input.
            Some(m) => m.min(model.max_sequence()),
            // Without it sentence-transformers takes min(model_max_length,
            // max_position_embeddings); `max_len` is that, with RoBERTa's reserved rows off.
            None => max_len(&model, &tokenizer),
        };
        Ok(Embedder {
            model,
            tokenizer,
            pooling,
            max_len,
            do_lower_case: st.do_lower_case,
        })
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn embed(
        &self,
        inputs: &[TextInput],
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<f32>>>> {
        pollster::block_on(self.embed_async(inputs, batch, progress))
    }

    /// As [`embed`](Self::embed), awaiting the GPU.
    pub async fn embed_async(
        &self,
        inputs: &[TextInput],
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<f32>>>> {
        // sentence-transformers' `Transformer.tokenize` strips every text (pairs too), then
        // lower-cases it when `do_lower_case` is set, whatever the tokenizer itself does.
        let prepared: Vec<TextInput> = inputs
            .iter()
            .map(|i| TextInput {
                text: embed::st_preprocess(&i.text, self.do_lower_case),
                text_pair: i
                    .text_pair
                    .as_deref()
                    .map(|t| embed::st_preprocess(t, self.do_lower_case)),
            })
            .collect();
        let inputs = &prepared;
        let (encoded, ok) = encode_texts(&self.tokenizer, inputs, self.max_len);
        let lens: Vec<usize> = ok.iter().map(|s| s.ids.len()).collect();
        let outs =
            forward_all_async(&self.model, &ok, batch, Readback::LastHidden, progress).await?;
        let dim = self.model.config.hidden_size;
        let mut pooled = outs
            .iter()
            .zip(lens)
            .map(|(o, len)| embed::pool(&o.last_hidden, len, dim, &self.pooling));
        Ok(encoded
            .into_iter()
            .map(|e| e.map(|_| pooled.next().expect("one output per encoded input")))
            .collect())
    }
}

/// transformers' `question-answering` pipeline.
pub struct QuestionAnswerer {
    pub model: Model,
    pub tokenizer: TextTokenizer,
}

impl QuestionAnswerer {
    /// Loads a `*ForQuestionAnswering` folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer)
    }

    /// A question answerer over a loaded model and tokenizer.
    pub fn new(model: Model, tokenizer: TextTokenizer) -> Result<Self> {
        if model.config.head != HeadKind::QuestionAnswering {
            return Err(Error::model(
                &model.dir,
                format!(
                    "`{}` has no question-answering head; use a *ForQuestionAnswering model",
                    model.config.architecture
                ),
            ));
        }
        Ok(QuestionAnswerer { model, tokenizer })
    }

    /// Answers every input. Each question's windows run in the same batches as the others';
    /// an input that fails (empty question...) gets its own error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn answer(
        &self,
        inputs: &[QaInput],
        params: &QaParams,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<QaAnswer>>>> {
        pollster::block_on(self.answer_async(inputs, params, batch, progress))
    }

    /// As [`answer`](Self::answer), awaiting the GPU.
    pub async fn answer_async(
        &self,
        inputs: &[QaInput],
        params: &QaParams,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<QaAnswer>>>> {
        let p = params.resolved(self.tokenizer.model_max_length(), self.model.max_sequence());
        let feats: Vec<Result<qa::QaFeatures>> = inputs
            .iter()
            .map(|i| qa::prepare(self.tokenizer.inner(), &i.question, &i.context, &p))
            .collect();
        let seqs: Vec<Sequence> = feats
            .iter()
            .filter_map(|f| f.as_ref().ok())
            .flat_map(|f| {
                f.windows.iter().map(|w| Sequence {
                    ids: w.ids.clone(),
                    type_ids: w.type_ids.clone(),
                })
            })
            .collect();
        // Progress in questions, not windows.
        let total_windows = seqs.len().max(1);
        let n = inputs.len();
        let outs = forward_all_async(&self.model, &seqs, batch, Readback::Head, &|w| {
            progress(w * n / total_windows)
        })
        .await?;
        let mut outs = outs.into_iter();
        Ok(feats
            .into_iter()
            .map(|f| {
                let f = f?;
                let (mut starts, mut ends) = (vec![], vec![]);
                for _ in &f.windows {
                    let o = outs.next().expect("one output per window");
                    starts.push(o.logits.iter().step_by(2).copied().collect());
                    ends.push(o.logits.iter().skip(1).step_by(2).copied().collect());
                }
                qa::decode(&f, &starts, &ends, &p)
            })
            .collect())
    }
}

/// A loaded model must carry `head` for a task; the error names what to use instead.
fn require_head(model: &Model, dir: &std::path::Path, head: HeadKind, what: &str) -> Result<()> {
    if model.config.head != head {
        return Err(Error::model(
            dir,
            format!(
                "`{}` has no {what} head; use a {} model",
                display_arch(&model.config.architecture),
                match head {
                    HeadKind::TokenClassification => "*ForTokenClassification",
                    HeadKind::MaskedLm => "*ForMaskedLM",
                    HeadKind::SequenceClassification => "*ForSequenceClassification",
                    HeadKind::QuestionAnswering => "*ForQuestionAnswering",
                    HeadKind::Base => "*Model",
                }
            ),
        ));
    }
    Ok(())
}

fn display_arch(a: &str) -> &str {
    if a.is_empty() {
        "(no architecture: a base model)"
    } else {
        a
    }
}

/// transformers' `token-classification` (`ner`) pipeline.
pub struct TokenClassifier {
    pub model: Model,
    pub tokenizer: TextTokenizer,
}

impl TokenClassifier {
    /// Loads a `*ForTokenClassification` folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer)
    }

    /// A loaded `*ForTokenClassification` model and its tokenizer.
    pub fn new(model: Model, tokenizer: TextTokenizer) -> Result<Self> {
        let dir = model.dir.clone();
        require_head(
            &model,
            &dir,
            HeadKind::TokenClassification,
            "token-classification",
        )?;
        Ok(TokenClassifier { model, tokenizer })
    }

    /// Labels every text (truncated like `truncation=True`), with `aggregation` and the
    /// pipeline's default ignored label `O`; a text that cannot be tokenized gets its own error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(
        &self,
        texts: &[String],
        aggregation: Aggregation,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<Entity>>>> {
        self.classify_ignoring(texts, aggregation, &["O".to_string()], batch, progress)
    }

    /// As [`classify`](Self::classify) with another list of ignored labels (`ignore_labels`).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify_ignoring(
        &self,
        texts: &[String],
        aggregation: Aggregation,
        ignore: &[String],
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<Entity>>>> {
        pollster::block_on(self.classify_ignoring_async(
            texts,
            aggregation,
            ignore,
            batch,
            progress,
        ))
    }

    /// As [`classify_ignoring`](Self::classify_ignoring), awaiting the GPU.
    pub async fn classify_ignoring_async(
        &self,
        texts: &[String],
        aggregation: Aggregation,
        ignore: &[String],
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<Entity>>>> {
        let max = max_len(&self.model, &self.tokenizer);
        let encoded: Vec<Result<tokenizers::Encoding>> = texts
            .iter()
            .map(|t| self.tokenizer.encode_with_char_offsets(t, Some(max)))
            .collect();
        // A text the tokenizer turns into no token at all (no special tokens) has no entity.
        let seqs: Vec<Sequence> = encoded
            .iter()
            .filter_map(|e| e.as_ref().ok())
            .filter(|e| !e.is_empty())
            .map(|e| {
                let m = self.tokenizer.model_inputs(e);
                Sequence {
                    ids: m.ids,
                    type_ids: m.type_ids,
                }
            })
            .collect();
        let mut outs = forward_all_async(&self.model, &seqs, batch, Readback::Head, progress)
            .await?
            .into_iter();
        let tok = &self.tokenizer;
        let to_string = |t: &[String]| tok.tokens_to_string(t);
        let info = token_classification::TokenizerInfo {
            unk_id: tok.special().unk.as_ref().map(|u| u.1),
            word_aware: tok.word_aware(),
            tokens_to_string: &to_string,
        };
        let id2label = &self.model.config.id2label;
        Ok(texts
            .iter()
            .zip(encoded)
            .map(|(text, e)| {
                let e = e?;
                if e.is_empty() {
                    return Ok(vec![]);
                }
                let o = outs.next().expect("one output per encoded text");
                let tokens: Vec<token_classification::Token> = e
                    .get_ids()
                    .iter()
                    .zip(e.get_offsets())
                    .zip(e.get_special_tokens_mask())
                    .map(
                        |((&id, &(start, end)), &special)| token_classification::Token {
                            id,
                            token: tok.id_to_token(id),
                            start,
                            end,
                            special: special != 0,
                        },
                    )
                    .collect();
                token_classification::postprocess(
                    text,
                    &tokens,
                    &o.logits,
                    id2label,
                    &info,
                    aggregation,
                    ignore,
                )
            })
            .collect())
    }
}

/// transformers' `fill-mask` pipeline.
pub struct FillMasker {
    pub model: Model,
    pub tokenizer: TextTokenizer,
    mask: (String, u32),
}

impl FillMasker {
    /// Loads a `*ForMaskedLM` folder whose tokenizer has a mask token.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer)
    }

    /// A loaded `*ForMaskedLM` model and its tokenizer (which must have a mask token).
    pub fn new(model: Model, tokenizer: TextTokenizer) -> Result<Self> {
        let dir = model.dir.clone();
        require_head(&model, &dir, HeadKind::MaskedLm, "masked-LM")?;
        let mask = tokenizer.special().mask.clone().ok_or_else(|| {
            Error::model(
                &dir,
                "The tokenizer does not define a `mask_token` (tokenizer_config.json `mask_token`)",
            )
        })?;
        Ok(FillMasker {
            model,
            tokenizer,
            mask,
        })
    }

    /// The mask token to write in texts (`[MASK]`, `<mask>`...).
    pub fn mask_token(&self) -> &str {
        &self.mask.0
    }

    /// The ids `targets` stand for (see [`fill_mask::resolve_targets`]).
    pub fn target_ids(&self, targets: &[String]) -> Result<Vec<u32>> {
        let tok = &self.tokenizer;
        fill_mask::resolve_targets(targets, &|t| tok.token_to_id(t), &|t| {
            let e = tok
                .inner()
                .encode(t, false)
                .map_err(|e| Error::Tokenizer(format!("cannot encode target {t:?}: {e}")))?;
            Ok(e.get_ids().first().copied())
        })
    }

    /// Fills the masks of every text: the `top_k` best tokens per mask (capped at the number of
    /// targets), over the whole vocabulary or `targets`. Texts are not truncated (transformers
    /// does not truncate fill-mask inputs); a text without a mask, or longer than the model
    /// takes, gets its own error.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn fill(
        &self,
        texts: &[String],
        top_k: usize,
        targets: Option<&[String]>,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<FillOutput>>> {
        pollster::block_on(self.fill_async(texts, top_k, targets, batch, progress))
    }

    /// As [`fill`](Self::fill), awaiting the GPU.
    pub async fn fill_async(
        &self,
        texts: &[String],
        top_k: usize,
        targets: Option<&[String]>,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<FillOutput>>> {
        let target_ids = targets.map(|t| self.target_ids(t)).transpose()?;
        let top_k = target_ids.as_ref().map_or(top_k, |t| top_k.min(t.len()));
        let max = self.model.max_sequence();
        let prepared: Vec<Result<(Sequence, Vec<usize>)>> = texts
            .iter()
            .map(|t| {
                let e = self
                    .tokenizer
                    .encode_truncating(t, None, None, Truncation::None)?;
                let pos = fill_mask::mask_positions(&e.ids, self.mask.1, &self.mask.0)?;
                if e.ids.len() > max {
                    return Err(Error::Input(format!(
                        "the text has {} tokens; this model takes at most {max}",
                        e.ids.len()
                    )));
                }
                Ok((
                    Sequence {
                        ids: e.ids,
                        type_ids: e.type_ids,
                    },
                    pos,
                ))
            })
            .collect();
        let (seqs, positions): (Vec<Sequence>, Vec<Vec<usize>>) = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .cloned()
            .unzip();
        let mut outs = forward_all_selected_async(&self.model, &seqs, &positions, batch, progress)
            .await?
            .into_iter();
        let pad = self.tokenizer.special().pad.as_ref().map(|p| p.1);
        prepared
            .into_iter()
            .map(|p| {
                let (seq, pos) = match p {
                    Ok(x) => x,
                    Err(e) => return Ok(Err(e)),
                };
                let logits = outs.next().expect("one output per prepared text");
                let single = pos.len() == 1;
                let mut per_mask = vec![];
                for (k, l) in logits.iter().enumerate() {
                    let mut fills = vec![];
                    for (id, score) in fill_mask::top_predictions(l, target_ids.as_deref(), top_k) {
                        let mut ids = seq.ids.clone();
                        ids[pos[k]] = id;
                        ids.retain(|&i| Some(i) != pad);
                        fills.push(Fill {
                            score,
                            token: id,
                            token_str: self.tokenizer.decode(&[id], false)?,
                            sequence: self.tokenizer.decode(&ids, single)?,
                        });
                    }
                    per_mask.push(fills);
                }
                Ok(Ok(if single {
                    FillOutput::Single(per_mask.pop().expect("one mask"))
                } else {
                    FillOutput::Multi(per_mask)
                }))
            })
            .collect()
    }
}

/// transformers' `zero-shot-classification` pipeline over an NLI sequence classifier.
pub struct ZeroShotClassifier {
    pub model: Model,
    pub tokenizer: TextTokenizer,
    /// The logits read: entailment and contradiction.
    pub entailment: usize,
    pub contradiction: usize,
    /// Whether `id2label` has an entailment label; without one transformers warns and reads the
    /// last label as entailment, and so does this.
    pub entailment_found: bool,
}

impl ZeroShotClassifier {
    /// Loads a `*ForSequenceClassification` NLI folder.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        Self::new(model, tokenizer)
    }

    /// A loaded NLI `*ForSequenceClassification` model and its tokenizer.
    pub fn new(model: Model, tokenizer: TextTokenizer) -> Result<Self> {
        let dir = model.dir.clone();
        require_head(
            &model,
            &dir,
            HeadKind::SequenceClassification,
            "sequence-classification (NLI)",
        )?;
        let (entailment, contradiction, entailment_found) =
            zero_shot::nli_ids(model.config.label2id.as_deref(), &model.config.id2label)
                .map_err(|msg| Error::model(dir.join("config.json"), msg))?;
        Ok(ZeroShotClassifier {
            model,
            tokenizer,
            entailment,
            contradiction,
            entailment_found,
        })
    }

    /// Classifies every text against `labels`: one (text, hypothesis) pair per label, the text
    /// truncated `only_first` to the model's length. An empty text gets transformers' refusal.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(
        &self,
        texts: &[String],
        labels: &[String],
        hypothesis_template: &str,
        multi_label: bool,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<ZeroShotResult>>> {
        pollster::block_on(self.classify_async(
            texts,
            labels,
            hypothesis_template,
            multi_label,
            batch,
            progress,
        ))
    }

    /// As [`classify`](Self::classify), awaiting the GPU.
    pub async fn classify_async(
        &self,
        texts: &[String],
        labels: &[String],
        hypothesis_template: &str,
        multi_label: bool,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<ZeroShotResult>>> {
        let max = max_len(&self.model, &self.tokenizer);
        let prepared: Vec<Result<Vec<Sequence>>> = texts
            .iter()
            .map(|t| {
                zero_shot::hypotheses(t, labels, hypothesis_template)?
                    .iter()
                    .map(|h| {
                        let e = self.tokenizer.encode_truncating(
                            t,
                            Some(h),
                            Some(max),
                            Truncation::OnlyFirst,
                        )?;
                        Ok(Sequence {
                            ids: e.ids,
                            type_ids: e.type_ids,
                        })
                    })
                    .collect()
            })
            .collect();
        let seqs: Vec<Sequence> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .flatten()
            .cloned()
            .collect();
        let n = labels.len().max(1);
        let outs = forward_all_async(&self.model, &seqs, batch, Readback::Head, &|r| {
            progress(r / n)
        })
        .await?;
        let mut outs = outs.into_iter();
        Ok(texts
            .iter()
            .zip(prepared)
            .map(|(t, p)| {
                p?;
                let logits: Vec<Vec<f32>> =
                    outs.by_ref().take(labels.len()).map(|o| o.logits).collect();
                Ok(zero_shot::postprocess(
                    t,
                    labels,
                    &logits,
                    self.entailment,
                    self.contradiction,
                    multi_label,
                ))
            })
            .collect())
    }
}

/// One document's place in a reranking, serialised like text-embeddings-inference's `/rerank`:
/// `{"index", "score", "text"}` (`text` when asked for).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rank {
    /// Position of the document in the input.
    pub index: usize,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// Reranking with a cross-encoder: transformers' `text-classification` pipeline on
/// (query, document) pairs of a one-logit model; the score is what the pipeline gives (the
/// sigmoid of the logit, or the logit itself for a regression model) or the raw logit.
pub struct Reranker {
    pub classifier: Classifier,
}

impl Reranker {
    /// Loads a `*ForSequenceClassification` folder with one label.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        Self::new(Classifier::load(dir, gpu, None)?)
    }

    /// A cross-encoder: a classifier with one label.
    pub fn new(classifier: Classifier) -> Result<Self> {
        let n = classifier.model.config.num_labels();
        if n != 1 {
            return Err(Error::model(
                &classifier.model.dir,
                format!(
                    "reranking needs a cross-encoder (a sequence-classification model with one label), but `{}` has {n} labels: use classify",
                    classifier.model.config.architecture
                ),
            ));
        }
        Ok(Reranker { classifier })
    }

    /// The score of every document for `query`, in input order (`raw_scores`: the logit).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn scores(
        &self,
        query: &str,
        docs: &[String],
        raw_scores: bool,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<f64>>> {
        pollster::block_on(self.scores_async(query, docs, raw_scores, batch, progress))
    }

    /// As [`scores`](Self::scores), awaiting the GPU.
    pub async fn scores_async(
        &self,
        query: &str,
        docs: &[String],
        raw_scores: bool,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<f64>>> {
        let inputs: Vec<TextInput> = docs
            .iter()
            .map(|d| TextInput {
                text: query.to_string(),
                text_pair: Some(d.clone()),
            })
            .collect();
        let c = &self.classifier;
        let max = max_len(&c.model, &c.tokenizer);
        let (encoded, ok) = encode_texts(&c.tokenizer, &inputs, max);
        let mut outs = forward_all_async(&c.model, &ok, batch, Readback::Head, progress)
            .await?
            .into_iter();
        let f = if raw_scores {
            ClassifyFunction::None
        } else {
            c.function
        };
        let labels = &c.model.config.id2label;
        Ok(encoded
            .into_iter()
            .map(|e| {
                e.map(|_| {
                    let o = outs.next().expect("one output per encoded document");
                    classify::postprocess(&o.logits, f, labels, TopK::One)[0].score
                })
            })
            .collect())
    }

    /// Documents that scored, best first (ties keep input order); `with_text` adds the texts.
    pub fn rank(docs: &[String], scores: &[Result<f64>], with_text: bool) -> Vec<Rank> {
        let mut ranks: Vec<Rank> = scores
            .iter()
            .enumerate()
            .filter_map(|(index, s)| {
                s.as_ref().ok().map(|&score| Rank {
                    index,
                    score,
                    text: with_text.then(|| docs[index].clone()),
                })
            })
            .collect();
        ranks.sort_by(|a, b| b.score.total_cmp(&a.score));
        ranks
    }
}
