//! The browser's JS API (wasm32 + WebGPU), through wasm-bindgen: open the adapter, build a task
//! from a model folder's files (downloaded by `web/wgformer.js`), and run it. The same models,
//! graphs, kernels and pipelines as natively; results are the CLI's `--json` values.

use crate::gpu::{Gpu, GpuOptions, KernelSet};
use crate::models::files::ModelFiles;
use crate::models::Model;
use crate::pipelines::classify::TopK;
use crate::pipelines::input::{QaInput, TextInput};
use crate::pipelines::qa::QaParams;
use crate::pipelines::token_classification::Aggregation;
use crate::pipelines::tokenize::TextTokenizer;
use crate::pipelines::zero_shot;
use crate::pipelines::{
    Classifier, Embedder, FillMasker, QuestionAnswerer, Reranker, TokenClassifier,
    ZeroShotClassifier, DEFAULT_BATCH,
};
use serde_json::{json, Value};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

/// The opened WebGPU device.
#[wasm_bindgen]
pub struct Engine {
    gpu: Arc<Gpu>,
}

#[wasm_bindgen]
impl Engine {
    /// Opens the browser's WebGPU adapter with its own limits. `kernels` (`auto`, `gpu`, `cpu`)
    /// picks the kernel variants as `--kernels` does; auto takes the CPU-adapter ones on a
    /// fallback adapter such as SwiftShader.
    pub async fn open(kernels: Option<String>) -> Result<Engine, JsValue> {
        let kernels = match kernels.as_deref().unwrap_or("auto") {
            "auto" | "" => KernelSet::Auto,
            "gpu" => KernelSet::Gpu,
            "cpu" => KernelSet::Cpu,
            other => return Err(js_err(format!("kernels `{other}`: use auto, gpu or cpu"))),
        };
        let opts = GpuOptions {
            kernels,
            ..GpuOptions::default()
        };
        let gpu = Gpu::new_async(&opts).await.map_err(js_err)?;
        Ok(Engine { gpu: Arc::new(gpu) })
    }

    /// The adapter as JSON: `wgformer devices`' report plus the one-line description.
    pub fn adapter(&self) -> String {
        let mut v = serde_json::to_value(self.gpu.report()).unwrap_or(Value::Null);
        v["describe"] = json!(self.gpu.describe());
        v["cpu_kernels"] = json!(self.gpu.cpu_kernels());
        v.to_string()
    }

    /// Builds the `task` (`classify`, `qa`, `embed`, `ner`, `fill-mask`, `zero-shot` or
    /// `rerank`) from a model folder's files: `names[i]`
    /// (`config.json`, `model.safetensors`, `tokenizer.json`, `1_Pooling/config.json`...) holds
    /// `contents[i]` (a `Uint8Array`). `origin` (the folder's URL) names the model in errors.
    pub fn load(
        &self,
        origin: String,
        task: String,
        names: Vec<String>,
        contents: js_sys::Array,
    ) -> Result<Pipeline, JsValue> {
        let mut files: Vec<(String, Vec<u8>)> = names
            .into_iter()
            .zip(contents.iter())
            .map(|(n, c)| (n, js_sys::Uint8Array::new(&c).to_vec()))
            .collect();
        let need = |files: &mut Vec<(String, Vec<u8>)>, name: &str| {
            files
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| files.swap_remove(i).1)
                .ok_or_else(|| {
                    js_err(format!(
                        "{origin}: no {name}; a model folder needs config.json, model.safetensors and tokenizer.json"
                    ))
                })
        };
        let weights = need(&mut files, "model.safetensors")?;
        let config = String::from_utf8(need(&mut files, "config.json")?)
            .map_err(|_| js_err(format!("{origin}/config.json is not UTF-8 text")))?;
        files.push(("config.json".into(), config.clone().into_bytes()));
        let files = ModelFiles::memory(&origin, files);
        let model = Model::from_memory(&origin, &config, weights, &self.gpu).map_err(js_err)?;
        let tokenizer = TextTokenizer::from_files(&files).map_err(js_err)?;
        let task = match task.as_str() {
            "classify" => Task::Classify(Classifier::new(model, tokenizer, None).map_err(js_err)?),
            "qa" => Task::Qa(QuestionAnswerer::new(model, tokenizer).map_err(js_err)?),
            "embed" => Task::Embed(Embedder::new(model, tokenizer, &files).map_err(js_err)?),
            "ner" => Task::Ner(TokenClassifier::new(model, tokenizer).map_err(js_err)?),
            "fill-mask" => Task::Fill(FillMasker::new(model, tokenizer).map_err(js_err)?),
            "zero-shot" => {
                Task::ZeroShot(ZeroShotClassifier::new(model, tokenizer).map_err(js_err)?)
            }
            "rerank" => Task::Rerank(
                Reranker::new(Classifier::new(model, tokenizer, None).map_err(js_err)?)
                    .map_err(js_err)?,
            ),
            other => {
                return Err(js_err(format!(
                    "unknown task `{other}`: use classify, qa, embed, ner, fill-mask, zero-shot or rerank"
                )))
            }
        };
        Ok(Pipeline {
            task: Rc::new(task),
        })
    }
}

enum Task {
    Classify(Classifier),
    Qa(QuestionAnswerer),
    Embed(Embedder),
    Ner(TokenClassifier),
    Fill(FillMasker),
    ZeroShot(ZeroShotClassifier),
    Rerank(Reranker),
}

/// A loaded model ready for one task. Each call resolves to the JSON text the CLI's `--json`
/// prints, one value per input in an array (`{"error": ...}` in place of an input that failed).
#[wasm_bindgen]
pub struct Pipeline {
    task: Rc<Task>,
}

/// One JSON value per input: the result, or `{"error": ...}` for an input that failed alone.
fn per_input<T: serde::Serialize>(results: Vec<crate::Result<T>>) -> Value {
    Value::Array(
        results
            .into_iter()
            .map(|r| match r {
                Ok(v) => serde_json::to_value(v).unwrap_or(Value::Null),
                Err(e) => json!({ "error": e.to_string() }),
            })
            .collect(),
    )
}

#[wasm_bindgen]
impl Pipeline {
    /// `classify`, `qa` or `embed`.
    pub fn task(&self) -> String {
        match &*self.task {
            Task::Classify(_) => "classify",
            Task::Qa(_) => "qa",
            Task::Embed(_) => "embed",
            Task::Ner(_) => "ner",
            Task::Fill(_) => "fill-mask",
            Task::ZeroShot(_) => "zero-shot",
            Task::Rerank(_) => "rerank",
        }
        .into()
    }

    /// The model's labels (classification), for the page's bars.
    pub fn labels(&self) -> Vec<String> {
        match &*self.task {
            Task::Classify(c) => c.model.config.id2label.clone(),
            _ => vec![],
        }
    }

    /// Classifies `texts` (with `pairs[i]` as the second text where given and non-empty):
    /// per text, `[{"label","score"}...]` best first, `top_k` labels (`1`, a number or `all`).
    pub fn classify(
        &self,
        texts: Vec<String>,
        pairs: Vec<String>,
        top_k: String,
    ) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Classify(c) = &*task else {
                return Err(js_err(
                    "this model was loaded for another task than classify",
                ));
            };
            let top_k = TopK::parse(&top_k).map_err(js_err)?;
            let inputs: Vec<TextInput> = texts
                .into_iter()
                .enumerate()
                .map(|(i, text)| TextInput {
                    text,
                    text_pair: pairs.get(i).filter(|p| !p.is_empty()).cloned(),
                })
                .collect();
            let r = c
                .classify_async(&inputs, top_k, DEFAULT_BATCH, &|_| {})
                .await
                .map_err(js_err)?;
            Ok(JsValue::from_str(&per_input(r).to_string()))
        })
    }

    /// Answers `question` from `context`: transformers' `{"score","start","end","answer"}`
    /// (a list for `top_k` above 1).
    pub fn qa(&self, question: String, context: String, top_k: usize) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Qa(q) = &*task else {
                return Err(js_err("this model was loaded for another task than qa"));
            };
            // top_k 0 is refused by the pipeline, as by the CLI and the server.
            let params = QaParams {
                top_k,
                ..QaParams::default()
            };
            let input = QaInput {
                id: "0".into(),
                question,
                context,
            };
            let mut r = q
                .answer_async(&[input], &params, DEFAULT_BATCH, &|_| {})
                .await
                .map_err(js_err)?;
            let answers = r.pop().expect("one result per input").map_err(js_err)?;
            // transformers returns a dict for top_k 1 and a list otherwise (as the CLI prints).
            let v = match (params.top_k, answers.as_slice()) {
                (1, [one]) => serde_json::to_value(one),
                _ => serde_json::to_value(&answers),
            }
            .map_err(js_err)?;
            Ok(JsValue::from_str(&v.to_string()))
        })
    }

    /// Sentence embeddings of `texts` (sentence-transformers pooling): one array per text.
    pub fn embed(&self, texts: Vec<String>) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Embed(e) = &*task else {
                return Err(js_err("this model was loaded for another task than embed"));
            };
            let inputs: Vec<TextInput> = texts
                .into_iter()
                .map(|text| TextInput {
                    text,
                    text_pair: None,
                })
                .collect();
            let r = e
                .embed_async(&inputs, DEFAULT_BATCH, &|_| {})
                .await
                .map_err(js_err)?;
            Ok(JsValue::from_str(&per_input(r).to_string()))
        })
    }

    /// Named entities of every text (`aggregation`: none, simple, first, average or max), as
    /// `wgformer ner --json`: per text, transformers' entities.
    pub fn ner(&self, texts: Vec<String>, aggregation: String) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Ner(m) = &*task else {
                return Err(js_err("this model was loaded for another task than ner"));
            };
            let strategy = Aggregation::parse(&aggregation).map_err(js_err)?;
            let r = m
                .classify_ignoring_async(
                    &texts,
                    strategy,
                    &["O".to_string()],
                    DEFAULT_BATCH,
                    &|_| {},
                )
                .await
                .map_err(js_err)?;
            Ok(JsValue::from_str(&per_input(r).to_string()))
        })
    }

    /// The mask token texts must contain (`[MASK]`, `<mask>`...).
    pub fn mask_token(&self) -> String {
        match &*self.task {
            Task::Fill(f) => f.mask_token().to_string(),
            _ => String::new(),
        }
    }

    /// Fills the masks of every text, as `wgformer fill-mask --json`: the `top_k` best tokens
    /// per mask, over the vocabulary or `targets` (none: the vocabulary).
    pub fn fill(&self, texts: Vec<String>, top_k: usize, targets: Vec<String>) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Fill(m) = &*task else {
                return Err(js_err(
                    "this model was loaded for another task than fill-mask",
                ));
            };
            if top_k == 0 {
                return Err(js_err("top_k must be at least 1"));
            }
            let targets = (!targets.is_empty()).then_some(targets);
            let r = m
                .fill_async(&texts, top_k, targets.as_deref(), DEFAULT_BATCH, &|_| {})
                .await
                .map_err(js_err)?;
            Ok(JsValue::from_str(&per_input(r).to_string()))
        })
    }

    /// Zero-shot classification of every text against `labels` through the NLI head, as
    /// `wgformer zero-shot --json`; `template` empty is transformers' default.
    pub fn zero_shot(
        &self,
        texts: Vec<String>,
        labels: Vec<String>,
        template: String,
        multi_label: bool,
    ) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::ZeroShot(m) = &*task else {
                return Err(js_err(
                    "this model was loaded for another task than zero-shot",
                ));
            };
            if labels.is_empty() {
                return Err(js_err("give at least one candidate label"));
            }
            let template = if template.is_empty() {
                zero_shot::DEFAULT_TEMPLATE.to_string()
            } else {
                template
            };
            let r = m
                .classify_async(
                    &texts,
                    &labels,
                    &template,
                    multi_label,
                    DEFAULT_BATCH,
                    &|_| {},
                )
                .await
                .map_err(js_err)?;
            Ok(JsValue::from_str(&per_input(r).to_string()))
        })
    }

    /// The documents ranked for `query` by the cross-encoder, best first, as
    /// `wgformer rerank --json`: `{"index","score","text"}` (`raw`: the logit); a document
    /// that failed is `{"index","error"}` after them.
    pub fn rerank(&self, query: String, docs: Vec<String>, raw: bool) -> js_sys::Promise {
        let task = self.task.clone();
        future_to_promise(async move {
            let Task::Rerank(m) = &*task else {
                return Err(js_err("this model was loaded for another task than rerank"));
            };
            let scores = m
                .scores_async(&query, &docs, raw, DEFAULT_BATCH, &|_| {})
                .await
                .map_err(js_err)?;
            let mut out: Vec<Value> = Reranker::rank(&docs, &scores, true)
                .into_iter()
                .map(|r| json!({ "index": r.index, "score": r.score, "text": r.text }))
                .collect();
            for (index, s) in scores.iter().enumerate() {
                if let Err(e) = s {
                    out.push(json!({ "index": index, "error": e.to_string() }));
                }
            }
            Ok(JsValue::from_str(&Value::Array(out).to_string()))
        })
    }
}
