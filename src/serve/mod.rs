//! `wgformer serve`: an HTTP inference server with TEI's and OpenAI's routes and dynamic batching.
//!
//! Layering: this module sits above [`crate::pipelines`] and uses their pre- and post-processing
//! (tokenization, pooling, label scores, QA windows and spans) unchanged. Threads:
//! - the async runtime (tokio) accepts connections, parses and validates requests, tokenizes,
//!   post-processes and answers;
//! - one GPU thread owns the model and runs the [`batcher`]: every forward pass happens there.
//!
//! ```no_run
//! # async fn demo() -> wgformer::Result<()> {
//! use std::sync::Arc;
//! use wgformer::{Gpu, GpuOptions, serve::{ServeOptions, Server}};
//! let gpu = Arc::new(Gpu::new(&GpuOptions::default())?);
//! let opts = ServeOptions::new("models/minilm-sst2".into(), "minilm-sst2".into());
//! let server = Server::start(opts, gpu).await?;
//! println!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod api;
pub mod batcher;
pub mod error;
pub mod metrics;
mod routes;

use crate::gpu::Gpu;
use crate::models::config::{HeadKind, ModelConfig};
use crate::models::{Model, Readback, Sequence};
use crate::pipelines::classify::ClassifyFunction;
use crate::pipelines::embed::PoolingConfig;
use crate::pipelines::tokenize::TextTokenizer;
use crate::pipelines::{Classifier, Embedder, QuestionAnswerer, RowOutput};
use crate::{Error, Result};
use batcher::{BatchLimits, Job, Runner};
use metrics::Metrics;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use tokio::sync::Semaphore;

/// Server settings, named as TEI names them; [`ServeOptions::new`] gives TEI's defaults.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The resolved local model folder.
    pub model_dir: PathBuf,
    /// The name `/info` and `/v1/embeddings` report (the `--model` argument).
    pub model_id: String,
    pub host: String,
    /// 0 picks a free port ([`Server::local_addr`] says which).
    pub port: u16,
    /// Rows × padded length of one forward pass.
    pub max_batch_tokens: usize,
    /// Rows of one forward pass.
    pub max_batch_requests: usize,
    /// Inference requests served at once; more get 429.
    pub max_concurrent_requests: usize,
    /// Inputs in one request; more get 413.
    pub max_client_batch_size: usize,
    /// Context windows one `/qa` request may make; more get 413.
    pub max_qa_windows: usize,
    /// Request body bytes; more get 413.
    pub payload_limit: usize,
    /// Truncate over-long inputs instead of answering 413 (a request's `truncate` overrides).
    pub auto_truncate: bool,
}

impl ServeOptions {
    pub fn new(model_dir: PathBuf, model_id: String) -> ServeOptions {
        ServeOptions {
            model_dir,
            model_id,
            host: "127.0.0.1".into(),
            port: 8080,
            max_batch_tokens: 16384,
            max_batch_requests: 64,
            max_concurrent_requests: 512,
            max_client_batch_size: 32,
            max_qa_windows: 256,
            payload_limit: 2_000_000,
            auto_truncate: false,
        }
    }
}

/// The loaded model's task: which routes it answers.
#[derive(Debug, Clone)]
pub enum Task {
    /// A base encoder: `/embed`, `/v1/embeddings`; texts are prepared as sentence-transformers
    /// prepares them (stripped, lower-cased with `do_lower_case`).
    Embed {
        pooling: PoolingConfig,
        do_lower_case: bool,
    },
    /// A sequence classifier: `/predict`, and `/rerank` when it has one logit.
    Classify { function: ClassifyFunction },
    /// Extractive QA: `/qa`.
    Qa,
}

impl Task {
    pub fn name(&self, num_labels: usize) -> &'static str {
        match self {
            Task::Embed { .. } => "feature-extraction",
            Task::Classify { .. } if num_labels == 1 => "text-classification (reranker)",
            Task::Classify { .. } => "text-classification",
            Task::Qa => "question-answering",
        }
    }
}

/// What the handlers know about the model (the model itself stays on the GPU thread).
pub struct ModelInfo {
    pub config: ModelConfig,
    pub tokenizer: TextTokenizer,
    pub task: Task,
    /// Longest input in tokens (special tokens included): the tokenizer's limit capped by the
    /// position table, or sentence-transformers' `max_seq_length` for embedders.
    pub max_input_length: usize,
    pub weights_dtype: String,
    pub parameters: usize,
}

/// Shared by every handler.
pub(crate) struct AppState {
    pub opts: ServeOptions,
    pub info: ModelInfo,
    pub adapter: String,
    pub gpu_report: serde_json::Value,
    pub jobs: mpsc::Sender<Job>,
    pub permits: Arc<Semaphore>,
    pub metrics: Arc<Metrics>,
    pub healthy: Arc<AtomicBool>,
}

/// The model as the batcher sees it.
struct ModelRunner {
    model: Model,
    readback: Readback,
    /// Cleared when the device is lost: `/health` then answers 503.
    healthy: Arc<AtomicBool>,
}

impl Runner for ModelRunner {
    fn bucket(&self, len: usize) -> usize {
        self.model.bucket(len)
    }
    fn max_rows(&self, seq: usize) -> usize {
        self.model.max_batch(seq)
    }
    fn run(&mut self, rows: &[Sequence]) -> Result<Vec<RowOutput>> {
        let out = self
            .model
            .forward_reading(rows, self.readback)
            .inspect_err(|e| {
                if matches!(e, Error::Gpu(m) if m.contains("device was lost")) {
                    self.healthy.store(false, Ordering::SeqCst);
                }
            })?;
        Ok(out
            .logits
            .into_iter()
            .zip(out.last_hidden)
            .map(|(logits, last_hidden)| RowOutput {
                logits,
                last_hidden,
            })
            .collect())
    }
}

/// Loads the folder with the pipeline its head calls for.
fn load(
    dir: &std::path::Path,
    gpu: &Arc<Gpu>,
    healthy: Arc<AtomicBool>,
) -> Result<(ModelRunner, ModelInfo)> {
    let head = ModelConfig::load(dir)?.head;
    let (model, tokenizer, task, max_input_length, readback) = match head {
        HeadKind::Base => {
            let e = Embedder::load(dir, gpu)?;
            let task = Task::Embed {
                pooling: e.pooling,
                do_lower_case: e.do_lower_case,
            };
            (e.model, e.tokenizer, task, e.max_len, Readback::LastHidden)
        }
        HeadKind::SequenceClassification => {
            let c = Classifier::load(dir, gpu, None)?;
            let max = c.tokenizer.model_max_length().min(c.model.max_sequence());
            let task = Task::Classify {
                function: c.function,
            };
            (c.model, c.tokenizer, task, max, Readback::Head)
        }
        HeadKind::QuestionAnswering => {
            let q = QuestionAnswerer::load(dir, gpu)?;
            let max = q.model.max_sequence();
            (q.model, q.tokenizer, Task::Qa, max, Readback::Head)
        }
        HeadKind::TokenClassification | HeadKind::MaskedLm => {
            return Err(Error::model(
                dir,
                format!(
                    "`wgformer serve` has no routes for a {head:?} head yet (it serves embeddings, sequence classification, reranking and QA); use `wgformer ner` or `wgformer fill-mask`"
                ),
            ));
        }
    };
    let info = ModelInfo {
        config: model.config.clone(),
        tokenizer,
        task,
        max_input_length,
        weights_dtype: model.weights_dtype.clone(),
        parameters: model.parameters,
    };
    Ok((
        ModelRunner {
            model,
            readback,
            healthy,
        },
        info,
    ))
}

/// A started server: the model is loaded on its GPU thread and the port is bound.
pub struct Server {
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    gpu_thread: std::thread::JoinHandle<()>,
}

impl Server {
    /// Loads the model on a new GPU thread, then binds `host:port`.
    pub async fn start(opts: ServeOptions, gpu: Arc<Gpu>) -> Result<Server> {
        if opts.max_batch_requests == 0
            || opts.max_concurrent_requests == 0
            || opts.max_client_batch_size == 0
            || opts.max_qa_windows == 0
        {
            return Err(Error::Input(
                "--max-batch-requests, --max-concurrent-requests, --max-client-batch-size and --max-qa-windows must be at least 1"
                    .into(),
            ));
        }
        let metrics = Arc::new(Metrics::new());
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let limits = BatchLimits {
            max_batch_tokens: opts.max_batch_tokens,
            max_batch_requests: opts.max_batch_requests,
        };
        let healthy = Arc::new(AtomicBool::new(true));
        let gpu_thread = {
            let (dir, gpu, metrics, healthy) = (
                opts.model_dir.clone(),
                gpu.clone(),
                metrics.clone(),
                healthy.clone(),
            );
            std::thread::Builder::new()
                .name("wgformer-gpu".into())
                .spawn(move || {
                    let (mut runner, info) = match load(&dir, &gpu, healthy.clone()) {
                        Ok(x) => x,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let budget = runner.model.bucket(info.max_input_length);
                    if limits.max_batch_tokens < budget {
                        let _ = ready_tx.send(Err(Error::Input(format!(
                            "--max-batch-tokens {} is below the model's longest input ({} tokens, \
                             {budget} padded): raise it to at least {budget}",
                            limits.max_batch_tokens, info.max_input_length
                        ))));
                        return;
                    }
                    if ready_tx.send(Ok(info)).is_err() {
                        return;
                    }
                    batcher::run_loop(&mut runner, rx, limits, &metrics);
                    healthy.store(false, Ordering::SeqCst);
                })
                .map_err(|e| Error::io("starting the GPU thread", e))?
        };
        let info = match ready_rx.await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::Gpu(
                    "the GPU thread died while loading the model".into(),
                ))
            }
        };
        let addr = format!("{}:{}", opts.host, opts.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::io(format!("binding {addr}"), e))?;
        let state = Arc::new(AppState {
            permits: Arc::new(Semaphore::new(opts.max_concurrent_requests)),
            adapter: gpu.describe(),
            gpu_report: serde_json::to_value(gpu.report()).unwrap_or_default(),
            opts,
            info,
            jobs,
            metrics,
            healthy,
        });
        Ok(Server {
            listener,
            state,
            gpu_thread,
        })
    }

    /// The bound address (with the port the system picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// What `/info` answers.
    pub fn info(&self) -> serde_json::Value {
        routes::info_json(&self.state)
    }

    /// Serves until `shutdown` completes; then stops accepting, finishes the requests in flight,
    /// lets the GPU thread drain its queue and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Server {
            listener,
            state,
            gpu_thread,
        } = self;
        let upkeep = {
            let m = state.metrics.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    m.upkeep();
                }
            })
        };
        let app = routes::router(state);
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        upkeep.abort();
        // The router (and with it the last job sender) is dropped: the GPU thread finishes what
        // is queued and ends.
        tokio::task::spawn_blocking(move || gpu_thread.join())
            .await
            .ok()
            .and_then(|r| r.ok())
            .ok_or_else(|| Error::Gpu("the GPU thread panicked".into()))?;
        served.map_err(|e| Error::io("serving HTTP", e))
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
