//! Pipelines: tokenization, batching and post-processing with the semantics of Hugging Face
//! transformers' pipelines. The task objects here ([`Classifier`], [`Embedder`],
//! [`QuestionAnswerer`]) own a model and its tokenizer; the post-processing itself lives in the
//! submodules as plain Rust.

pub mod classify;
pub mod embed;
pub mod input;
pub mod qa;
pub mod squad;
pub mod tokenize;

use crate::gpu::Gpu;
use crate::models::config::HeadKind;
use crate::models::{Model, Readback, Sequence};
use crate::{Error, Result};
use classify::{ClassifyFunction, LabelScore, TopK};
use embed::PoolingConfig;
use input::{QaInput, TextInput};
use qa::{QaAnswer, QaParams};
use std::path::Path;
use std::sync::Arc;
use tokenize::TextTokenizer;

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
pub fn forward_all(
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
        let o = model.forward_reading(&rows, readback)?;
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
    pub fn load(dir: &Path, gpu: &Arc<Gpu>, function: Option<ClassifyFunction>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        let c = &model.config;
        if c.head != HeadKind::SequenceClassification {
            return Err(Error::model(
                dir,
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
    pub fn classify(
        &self,
        inputs: &[TextInput],
        top_k: TopK,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<LabelScore>>>> {
        let max = max_len(&self.model, &self.tokenizer);
        let (encoded, ok) = encode_texts(&self.tokenizer, inputs, max);
        let mut outs = forward_all(&self.model, &ok, batch, Readback::Head, progress)?.into_iter();
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
}

impl Embedder {
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        let pooling = PoolingConfig::load(dir)?;
        let cap = max_len(&model, &tokenizer);
        let max_len = embed::sentence_max_seq_length(dir)?.map_or(cap, |m| m.min(cap));
        Ok(Embedder {
            model,
            tokenizer,
            pooling,
            max_len,
        })
    }

    pub fn embed(
        &self,
        inputs: &[TextInput],
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<f32>>>> {
        let (encoded, ok) = encode_texts(&self.tokenizer, inputs, self.max_len);
        let lens: Vec<usize> = ok.iter().map(|s| s.ids.len()).collect();
        let outs = forward_all(&self.model, &ok, batch, Readback::LastHidden, progress)?;
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
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Self> {
        let (model, tokenizer) = load_pair(dir, gpu)?;
        if model.config.head != HeadKind::QuestionAnswering {
            return Err(Error::model(
                dir,
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
    pub fn answer(
        &self,
        inputs: &[QaInput],
        params: &QaParams,
        batch: usize,
        progress: &dyn Fn(usize),
    ) -> Result<Vec<Result<Vec<QaAnswer>>>> {
        let mut p = params.clone();
        p.max_seq_len = p.max_seq_len.min(self.model.max_sequence());
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
        let outs = forward_all(&self.model, &seqs, batch, Readback::Head, &|w| {
            progress(w * n / total_windows)
        })?;
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
