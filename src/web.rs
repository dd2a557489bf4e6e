//! The browser's JS API (wasm32 + WebGPU), through wasm-bindgen: open the adapter, build a task
//! from a model folder's files (downloaded by `web/wgformer.js`), and run it. The same models,
//! graphs, kernels and pipelines as natively; results are the CLI's `--json` values.

use crate::gpu::{Gpu, GpuOptions, KernelSet};
use crate::models::files::ModelFiles;
use crate::models::Model;
use crate::pipelines::classify::TopK;
use crate::pipelines::input::{QaInput, TextInput};
use crate::pipelines::qa::QaParams;
use crate::pipelines::tokenize::TextTokenizer;
use crate::pipelines::{Classifier, Embedder, QuestionAnswerer, DEFAULT_BATCH};
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

    /// Builds the `task` (`classify`, `qa` or `embed`) from a model folder's files: `names[i]`
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
            other => {
                return Err(js_err(format!(
                    "unknown task `{other}`: use classify, qa or embed"
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
            let params = QaParams {
                top_k: top_k.max(1),
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
}
