//! The HTTP routes: parse and validate on the async runtime, tokenize, queue the sequences for the
//! GPU thread, post-process with the pipelines' own functions, answer JSON.

use super::api::{
    self, EmbeddingValue, OpenAiEmbedding, OpenAiEmbeddingsResponse, OpenAiInput, OpenAiUsage,
    PairInput, PredictResponse, QaResponse, Rank, SimpleToken,
};
use super::batcher::Job;
use super::error::{ApiError, ErrorType, OpenAiError};
use super::{AppState, Task};
use crate::models::Sequence;
use crate::pipelines::classify::{self, ClassifyFunction, TopK};
use crate::pipelines::embed::{self, Pooling, PoolingConfig};
use crate::pipelines::qa::{self, QaParams};
use crate::pipelines::RowOutput;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::oneshot;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

type S = State<Arc<AppState>>;
type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let inference = Router::new()
        .route("/embed", post(embed))
        .route("/predict", post(predict))
        .route("/rerank", post(rerank))
        .route("/qa", post(qa_route))
        .route("/v1/embeddings", post(openai_embeddings))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limit_concurrency,
        ));
    let payload_limit = state.opts.payload_limit;
    Router::new()
        .merge(inference)
        .route("/tokenize", post(tokenize))
        .route("/info", get(info))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // tower-http's limit alone (axum's default 2 MB limit would otherwise apply too).
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(payload_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            declared_too_large,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// Middleware

/// Counts every routed request by route, status and error type, with its latency.
async fn track(State(s): S, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let t0 = Instant::now();
    let resp = next.run(req).await;
    let et = resp.extensions().get::<ErrorType>().map(|e| e.as_str());
    s.metrics.request(
        &route,
        resp.status().as_u16(),
        t0.elapsed().as_secs_f64(),
        et,
    );
    resp
}

/// Decrements the in-flight gauge however the request ends (a client may go away mid-request).
struct InFlight(Arc<AppState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.decrement(1.0);
    }
}

/// `--max-concurrent-requests`: over it, 429 at once.
async fn limit_concurrency(State(s): S, req: Request, next: Next) -> Response {
    let Ok(permit) = s.permits.clone().try_acquire_owned() else {
        return ApiError::overloaded(s.opts.max_concurrent_requests).into_response();
    };
    s.metrics.in_flight.increment(1.0);
    let guard = InFlight(s.clone());
    let resp = next.run(req).await;
    drop(guard);
    drop(permit);
    resp
}

/// Bodies declared (Content-Length) over `--payload-limit`: read and dropped (up to
/// [`DRAIN_LIMIT`]) before answering 413, so the client finishes sending and reads the JSON error
/// instead of a connection reset. Bodies without a declared length are limited as they stream by
/// tower-http's limit further in.
async fn declared_too_large(State(s): S, req: Request, next: Next) -> Response {
    use http_body_util::BodyExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(n) = declared.filter(|&n| n > s.opts.payload_limit as u64) else {
        return next.run(req).await;
    };
    if n <= DRAIN_LIMIT {
        let mut body = req.into_body();
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    }
    let mut resp = payload_too_large(&s).into_response();
    resp.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    resp
}

/// The most bytes of an over-limit body read (and dropped) to answer it cleanly.
const DRAIN_LIMIT: u64 = 64 << 20;

fn payload_too_large(s: &AppState) -> ApiError {
    ApiError::too_large(format!(
        "the request body is larger than the payload limit of {} bytes (--payload-limit)",
        s.opts.payload_limit
    ))
}

fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| err.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!("a request handler panicked: {what}");
    ApiError::backend(format!("internal error while handling the request: {what}")).into_response()
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorType::Validation,
        format!(
            "no route {method} {}; routes: POST /embed /predict /rerank /qa /v1/embeddings /tokenize, \
             GET /info /health /metrics",
            uri.path()
        ),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    let want = if matches!(uri.path(), "/info" | "/health" | "/metrics") {
        "GET"
    } else {
        "POST"
    };
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorType::Validation,
        format!("{} takes {want}, not {method}", uri.path()),
    )
}

// ---------------------------------------------------------------------------------------------
// Bodies

/// The raw request body, read under the payload limit; parsed by [`RawBody::parse`] once the
/// handler knows the route fits the model (so `/qa` on a classifier says so whatever the body).
pub(crate) struct RawBody(Bytes);

impl FromRequest<Arc<AppState>> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(RawBody(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(payload_too_large(state)),
            Err(r) => Err(ApiError::malformed(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {}", r.body_text()),
            )),
        }
    }
}

impl RawBody {
    fn parse<T: DeserializeOwned>(&self) -> ApiResult<T> {
        if self.0.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::empty(
                "the request body is empty: send a JSON object",
            ));
        }
        serde_json::from_slice(&self.0).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::malformed(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("invalid request: {e}"),
            ),
            _ => ApiError::malformed(
                StatusCode::BAD_REQUEST,
                format!("the request body is not valid JSON: {e}"),
            ),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Shared steps

impl AppState {
    fn num_labels(&self) -> usize {
        self.info.config.num_labels()
    }

    fn wrong_model(&self, route: &str, needs: &str) -> ApiError {
        let task = self.info.task.name(self.num_labels());
        let use_ = match self.info.task {
            Task::Embed { .. } => "/embed or /v1/embeddings",
            Task::Classify { .. } if self.num_labels() == 1 => "/predict or /rerank",
            Task::Classify { .. } => "/predict",
            Task::Qa => "/qa",
        };
        ApiError::unsupported(format!(
            "{route} needs {needs}, but this server runs `{}` ({task}): use {use_}",
            self.info.config.architecture
        ))
    }

    fn pooling(&self, route: &str) -> ApiResult<PoolingConfig> {
        match &self.info.task {
            Task::Embed { pooling, .. } => Ok(*pooling),
            _ => Err(self.wrong_model(route, "an embedding model (a base encoder)")),
        }
    }

    fn classifier(&self, route: &str) -> ApiResult<ClassifyFunction> {
        match &self.info.task {
            Task::Classify { function } => Ok(*function),
            _ => Err(self.wrong_model(
                route,
                "a sequence-classification model (*ForSequenceClassification)",
            )),
        }
    }

    /// Empty requests get 400, too many inputs 413.
    fn check_count(&self, n: usize, field: &str) -> ApiResult<()> {
        if n == 0 {
            return Err(ApiError::empty(format!(
                "`{field}` is empty: give at least one input"
            )));
        }
        let max = self.opts.max_client_batch_size;
        if n > max {
            return Err(ApiError::too_large(format!(
                "`{field}` holds {n} inputs but a request may hold at most {max} \
                 (--max-client-batch-size); split it"
            )));
        }
        Ok(())
    }

    fn truncating(&self, truncate: Option<bool>) -> bool {
        truncate.unwrap_or(self.opts.auto_truncate)
    }

    fn too_long(&self, index: Option<usize>, tokens: usize) -> ApiError {
        let at = index.map_or(String::new(), |i| format!("input {i}: "));
        ApiError::too_large(format!(
            "{at}{tokens} tokens, but this model takes at most {} tokens per input; send \
             \"truncate\": true or start the server with --auto-truncate",
            self.info.max_input_length
        ))
    }

    /// Tokenizes one input; over the model's length it is truncated (`truncate`) or refused.
    /// A text to embed as sentence-transformers hands it to the tokenizer (as `Embedder`).
    fn embed_text(&self, text: &str) -> String {
        let lower = matches!(
            self.info.task,
            Task::Embed {
                do_lower_case: true,
                ..
            }
        );
        crate::pipelines::embed::st_preprocess(text, lower)
    }

    fn encode(
        &self,
        index: Option<usize>,
        text: &str,
        pair: Option<&str>,
        truncate: bool,
    ) -> ApiResult<Sequence> {
        let tok = &self.info.tokenizer;
        let max = self.info.max_input_length;
        let e = tok
            .encode(text, pair, Some(usize::MAX))
            .map_err(|e| ApiError::from_input(&e, index))?;
        let e = if e.ids.len() <= max {
            e
        } else if truncate {
            tok.encode(text, pair, Some(max))
                .map_err(|e| ApiError::from_input(&e, index))?
        } else {
            return Err(self.too_long(index, e.ids.len()));
        };
        Ok(Sequence {
            ids: e.ids,
            type_ids: e.type_ids,
        })
    }

    /// Token ids given by the client, used as they are.
    fn check_ids(
        &self,
        index: Option<usize>,
        mut ids: Vec<u32>,
        truncate: bool,
    ) -> ApiResult<Sequence> {
        let at = index.map_or(String::new(), |i| format!("input {i}: "));
        if ids.is_empty() {
            return Err(ApiError::empty(format!("{at}no token ids")));
        }
        let vocab = self.info.config.vocab_size;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(ApiError::validation(format!(
                "{at}token id {bad} is outside the model's vocabulary of {vocab}"
            )));
        }
        let max = self.info.max_input_length;
        if ids.len() > max {
            if !truncate {
                return Err(self.too_long(index, ids.len()));
            }
            ids.truncate(max);
        }
        Ok(Sequence::new(ids))
    }

    /// Queues every sequence for the GPU thread and waits for all of their outputs.
    async fn run(&self, seqs: Vec<Sequence>) -> ApiResult<Vec<RowOutput>> {
        let tokens: usize = seqs.iter().map(|s| s.ids.len()).sum();
        self.metrics.input_tokens.increment(tokens as u64);
        let mut waiting = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let (tx, rx) = oneshot::channel();
            self.metrics.queue_size.increment(1.0);
            let job = Job {
                seq,
                enqueued: Instant::now(),
                reply: tx,
            };
            if self.jobs.send(job).is_err() {
                self.metrics.queue_size.decrement(1.0);
                return Err(ApiError::unhealthy(
                    "the GPU thread has stopped; restart the server",
                ));
            }
            waiting.push(rx);
        }
        let mut out = Vec::with_capacity(waiting.len());
        for rx in waiting {
            match rx.await {
                Ok(Ok(o)) => out.push(o),
                Ok(Err(e)) => return Err(ApiError::backend(e)),
                Err(_) => {
                    return Err(ApiError::unhealthy(
                        "the GPU thread stopped before answering; restart the server",
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// Pools each row's last hidden state, then keeps `dimensions` (re-normalising when the vectors
/// are normalised, as shortened OpenAI embeddings are).
fn pool_rows(
    s: &AppState,
    outs: &[RowOutput],
    lens: &[usize],
    cfg: &PoolingConfig,
    dimensions: Option<usize>,
) -> ApiResult<Vec<Vec<f32>>> {
    let dim = s.info.config.hidden_size;
    if let Some(d) = dimensions {
        if d == 0 || d > dim {
            return Err(ApiError::validation(format!(
                "dimensions {d}: this model's embeddings have {dim}; ask for 1..={dim}"
            )));
        }
    }
    Ok(outs
        .iter()
        .zip(lens)
        .map(|(o, &len)| {
            let mut v = embed::pool(&o.last_hidden, len, dim, cfg);
            if let Some(d) = dimensions.filter(|&d| d < dim) {
                v.truncate(d);
                if cfg.normalize {
                    let n = v.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
                    if n > 0.0 {
                        v.iter_mut().for_each(|x| *x = (*x as f64 / n) as f32);
                    }
                }
            }
            v
        })
        .collect())
}

/// Runs `f` (tokenization: CPU work that grows with the payload) on tokio's blocking pool, so
/// a large request never stalls the runtime's workers serving other connections.
async fn off_runtime<T: Send + 'static>(
    s: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let s = s.clone();
    tokio::task::spawn_blocking(move || f(&s))
        .await
        .map_err(|e| ApiError::backend(format!("tokenization failed: {e}")))?
}

fn index_if(many: bool, i: usize) -> Option<usize> {
    many.then_some(i)
}

// ---------------------------------------------------------------------------------------------
// Routes

async fn embed(State(s): S, body: RawBody) -> ApiResult<Json<Vec<Vec<f32>>>> {
    let pooling = s.pooling("/embed")?;
    let req: api::EmbedRequest = body.parse()?;
    api::check_truncation_direction(&req.truncation_direction)?;
    if req.prompt_name.is_some() {
        return Err(ApiError::validation(
            "prompt_name: this server has no prompts configured",
        ));
    }
    let (texts, single) = api::texts("inputs", &req.inputs)?;
    s.check_count(texts.len(), "inputs")?;
    let truncate = s.truncating(req.truncate);
    let seqs = off_runtime(&s, move |s| {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| s.encode(index_if(!single, i), &s.embed_text(t), None, truncate))
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let lens: Vec<usize> = seqs.iter().map(|q| q.ids.len()).collect();
    let outs = s.run(seqs).await?;
    let cfg = PoolingConfig {
        normalize: req.normalize.unwrap_or(pooling.normalize),
        ..pooling
    };
    Ok(Json(pool_rows(&s, &outs, &lens, &cfg, req.dimensions)?))
}

async fn predict(State(s): S, body: RawBody) -> ApiResult<Json<PredictResponse>> {
    let function = s.classifier("/predict")?;
    let req: api::PredictRequest = body.parse()?;
    api::check_truncation_direction(&req.truncation_direction)?;
    let (inputs, single) = api::predict_inputs(&req.inputs)?;
    s.check_count(inputs.len(), "inputs")?;
    let truncate = s.truncating(req.truncate);
    let seqs = off_runtime(&s, move |s| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, PairInput { text, pair })| {
                s.encode(index_if(!single, i), text, pair.as_deref(), truncate)
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let outs = s.run(seqs).await?;
    let f = if req.raw_scores {
        ClassifyFunction::None
    } else {
        function
    };
    let labels = &s.info.config.id2label;
    let mut all: Vec<_> = outs
        .iter()
        .map(|o| classify::postprocess(&o.logits, f, labels, TopK::All))
        .collect();
    Ok(Json(if single {
        PredictResponse::Single(all.pop().expect("one input"))
    } else {
        PredictResponse::Batch(all)
    }))
}

async fn rerank(State(s): S, body: RawBody) -> ApiResult<Json<Vec<Rank>>> {
    s.classifier("/rerank")?;
    let n = s.num_labels();
    if n != 1 {
        return Err(ApiError::unsupported(format!(
            "/rerank needs a cross-encoder (a sequence-classification model with one label), but \
             `{}` has {n} labels: use /predict",
            s.info.config.architecture
        )));
    }
    let req: api::RerankRequest = body.parse()?;
    api::check_truncation_direction(&req.truncation_direction)?;
    s.check_count(req.texts.len(), "texts")?;
    let truncate = s.truncating(req.truncate);
    let (seqs, req) = off_runtime(&s, move |s| {
        let seqs = req
            .texts
            .iter()
            .enumerate()
            .map(|(i, t)| s.encode(Some(i), &req.query, Some(t), truncate))
            .collect::<ApiResult<Vec<_>>>()?;
        Ok((seqs, req))
    })
    .await?;
    let outs = s.run(seqs).await?;
    let f = if req.raw_scores {
        ClassifyFunction::None
    } else {
        ClassifyFunction::Sigmoid
    };
    let labels = &s.info.config.id2label;
    let mut ranks: Vec<Rank> = outs
        .iter()
        .enumerate()
        .map(|(index, o)| Rank {
            index,
            score: classify::postprocess(&o.logits, f, labels, TopK::One)[0].score,
            text: req.return_text.then(|| req.texts[index].clone()),
        })
        .collect();
    // Best first; ties keep input order.
    ranks.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(Json(ranks))
}

async fn qa_route(State(s): S, body: RawBody) -> ApiResult<Json<QaResponse>> {
    if !matches!(s.info.task, Task::Qa) {
        return Err(s.wrong_model(
            "/qa",
            "an extractive question-answering model (*ForQuestionAnswering)",
        ));
    }
    let req: api::QaRequest = body.parse()?;
    let d = QaParams::default();
    let p = QaParams {
        top_k: req.top_k.unwrap_or(d.top_k),
        doc_stride: req.doc_stride,
        max_answer_len: req.max_answer_len.unwrap_or(d.max_answer_len),
        max_seq_len: req.max_seq_len,
        max_question_len: req.max_question_len.unwrap_or(d.max_question_len),
        handle_impossible_answer: req
            .handle_impossible_answer
            .unwrap_or(d.handle_impossible_answer),
        align_to_words: req.align_to_words.unwrap_or(d.align_to_words),
        max_windows: Some(s.opts.max_qa_windows),
    }
    .resolved(
        s.info.tokenizer.model_max_length(),
        s.info.config.max_sequence(),
    );
    let params = p.clone();
    let feats = off_runtime(&s, move |s| {
        qa::prepare(
            s.info.tokenizer.inner(),
            &req.question,
            &req.context,
            &params,
        )
        .map_err(|e| ApiError::from_input(&e, None))
    })
    .await?;
    let seqs: Vec<Sequence> = feats
        .windows
        .iter()
        .map(|w| Sequence {
            ids: w.ids.clone(),
            type_ids: w.type_ids.clone(),
        })
        .collect();
    let outs = s.run(seqs).await?;
    let (mut starts, mut ends) = (vec![], vec![]);
    for o in &outs {
        starts.push(o.logits.iter().step_by(2).copied().collect());
        ends.push(o.logits.iter().skip(1).step_by(2).copied().collect());
    }
    let answers =
        qa::decode(&feats, &starts, &ends, &p).map_err(|e| ApiError::from_input(&e, None))?;
    // transformers returns a dict for top_k 1 and a list otherwise (as `wgformer qa --json`).
    Ok(Json(if p.top_k == 1 && answers.len() == 1 {
        QaResponse::One(answers.into_iter().next().expect("one answer"))
    } else {
        QaResponse::Many(answers)
    }))
}

/// OpenAI's embeddings route: its errors too in OpenAI's shape (the official clients read
/// `error.message`), a body that cannot be read included.
async fn openai_embeddings(
    state: S,
    body: Result<RawBody, ApiError>,
) -> Result<Json<OpenAiEmbeddingsResponse>, OpenAiError> {
    Ok(openai_embeddings_inner(state, body?).await?)
}

async fn openai_embeddings_inner(
    State(s): S,
    body: RawBody,
) -> ApiResult<Json<OpenAiEmbeddingsResponse>> {
    let pooling = s.pooling("/v1/embeddings")?;
    let req: api::OpenAiEmbeddingsRequest = body.parse()?;
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::validation(format!(
                "encoding_format {other:?}: use \"float\" or \"base64\""
            )))
        }
    };
    let inputs = api::openai_inputs(&req.input)?;
    s.check_count(inputs.len(), "input")?;
    let truncate = s.opts.auto_truncate;
    let many = inputs.len() > 1;
    let seqs = off_runtime(&s, move |s| {
        inputs
            .into_iter()
            .enumerate()
            .map(|(i, inp)| match inp {
                OpenAiInput::Text(t) => {
                    s.encode(index_if(many, i), &s.embed_text(&t), None, truncate)
                }
                OpenAiInput::Ids(ids) => s.check_ids(index_if(many, i), ids, truncate),
            })
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let lens: Vec<usize> = seqs.iter().map(|q| q.ids.len()).collect();
    let tokens: usize = lens.iter().sum();
    let outs = s.run(seqs).await?;
    let vectors = pool_rows(&s, &outs, &lens, &pooling, req.dimensions)?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| OpenAiEmbedding {
            object: "embedding",
            index,
            embedding: if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                EmbeddingValue::Float(v)
            },
        })
        .collect();
    Ok(Json(OpenAiEmbeddingsResponse {
        object: "list",
        data,
        model: s.opts.model_id.clone(),
        usage: OpenAiUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    }))
}

async fn tokenize(State(s): S, body: RawBody) -> ApiResult<Json<Vec<Vec<SimpleToken>>>> {
    let req: api::TokenizeRequest = body.parse()?;
    if req.prompt_name.is_some() {
        return Err(ApiError::validation(
            "prompt_name: this server has no prompts configured",
        ));
    }
    let (texts, single) = api::texts("inputs", &req.inputs)?;
    s.check_count(texts.len(), "inputs")?;
    let add_special = req.add_special_tokens;
    let out = off_runtime(&s, move |s| {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| tokens_of(s, text, add_special, index_if(!single, i)))
            .collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    Ok(Json(out))
}

/// TEI's tokens of one text: byte offsets into it, none for special tokens.
fn tokens_of(
    s: &AppState,
    text: &str,
    add_special: bool,
    index: Option<usize>,
) -> ApiResult<Vec<SimpleToken>> {
    let enc = s
        .info
        .tokenizer
        .inner()
        .encode(text, add_special)
        .map_err(|e| {
            ApiError::from_input(
                &crate::Error::Tokenizer(format!("cannot encode text: {e}")),
                index,
            )
        })?;
    let special = enc.get_special_tokens_mask();
    Ok(enc
        .get_ids()
        .iter()
        .zip(enc.get_tokens())
        .zip(enc.get_offsets())
        .enumerate()
        .map(|(k, ((&id, piece), &(start, stop)))| {
            if special.get(k).is_some_and(|&m| m == 1) {
                SimpleToken {
                    id,
                    text: piece.clone(),
                    special: true,
                    start: None,
                    stop: None,
                }
            } else {
                SimpleToken {
                    id,
                    text: text.get(start..stop).unwrap_or(piece).to_string(),
                    special: false,
                    start: Some(start),
                    stop: Some(stop),
                }
            }
        })
        .collect())
}

pub(crate) fn info_json(s: &AppState) -> Value {
    let c = &s.info.config;
    let id2label: serde_json::Map<String, Value> = c
        .id2label
        .iter()
        .enumerate()
        .map(|(i, l)| (i.to_string(), json!(l)))
        .collect();
    let label2id: serde_json::Map<String, Value> = c
        .id2label
        .iter()
        .enumerate()
        .map(|(i, l)| (l.clone(), json!(i)))
        .collect();
    let (model_type, routes) = match &s.info.task {
        Task::Embed { pooling, .. } => (
            json!({"embedding": {
                "pooling": match pooling.pooling {
                    Pooling::Mean => "mean",
                    Pooling::Cls => "cls",
                    Pooling::Max => "max",
                },
                "normalize": pooling.normalize,
            }}),
            vec!["/embed", "/v1/embeddings"],
        ),
        Task::Classify { .. } if c.num_labels() == 1 => (
            json!({"reranker": {"id2label": id2label, "label2id": label2id}}),
            vec!["/predict", "/rerank"],
        ),
        Task::Classify { .. } => (
            json!({"classifier": {"id2label": id2label, "label2id": label2id}}),
            vec!["/predict"],
        ),
        Task::Qa => (json!({"question_answering": {}}), vec!["/qa"]),
    };
    let mut all_routes: Vec<&str> = routes;
    all_routes.extend(["/tokenize", "/info", "/health", "/metrics"]);
    json!({
        "model_id": s.opts.model_id,
        "model_sha": null,
        "model_dtype": s.info.weights_dtype,
        "model_type": model_type,
        "architecture": c.architecture,
        "task": s.info.task.name(c.num_labels()),
        "routes": all_routes,
        "hidden_size": c.hidden_size,
        "num_layers": c.num_layers,
        "parameters": s.info.parameters,
        "max_input_length": s.info.max_input_length,
        "max_concurrent_requests": s.opts.max_concurrent_requests,
        "max_batch_tokens": s.opts.max_batch_tokens,
        "max_batch_requests": s.opts.max_batch_requests,
        "max_client_batch_size": s.opts.max_client_batch_size,
        "max_qa_windows": s.opts.max_qa_windows,
        "payload_limit": s.opts.payload_limit,
        "auto_truncate": s.opts.auto_truncate,
        "tokenization_workers": null,
        "adapter": s.adapter,
        "device": s.gpu_report,
        "version": env!("CARGO_PKG_VERSION"),
    })
}

async fn info(State(s): S) -> Json<Value> {
    Json(info_json(&s))
}

async fn health(State(s): S) -> ApiResult<Json<Value>> {
    if !s.healthy.load(Ordering::SeqCst) {
        return Err(ApiError::unhealthy("the GPU thread has stopped"));
    }
    Ok(Json(json!({"status": "ok"})))
}

async fn metrics(State(s): S) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
        .into_response()
}
