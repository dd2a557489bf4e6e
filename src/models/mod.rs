//! Models loaded from a Hugging Face folder (`config.json`, `model.safetensors`), run as cached
//! command graphs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wgformer::{Gpu, GpuOptions, models::{Model, Sequence}};
//! let gpu = Arc::new(Gpu::new(&GpuOptions::default())?);
//! let model = Model::load("path/to/minilm-sst2".as_ref(), &gpu)?;
//! let out = model.forward(&[Sequence::new(vec![101, 1037, 9882, 102])])?;
//! println!("logits {:?}", out.logits[0]);
//! # Ok::<(), wgformer::Error>(())
//! ```

pub mod albert;
pub mod bert;
pub mod config;
pub mod deberta_v2;
pub mod distilbert;
pub mod electra;
pub mod encoder;
pub mod files;
pub mod modernbert;
pub mod mpnet;
pub mod roberta;
pub mod weights;

use crate::gpu::Gpu;
use crate::graph::{Graph, GraphBuilder, PlanReport, RunStats};
use crate::{Error, Result};
use config::{Family, ModelConfig};
pub use encoder::Readback;
use encoder::{GraphIo, Network, Positions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use weights::Weights;

/// The architecture file's description of `cfg` and the name prefixes its weights may carry;
/// an error names a setting the architecture file does not run.
pub fn architecture(
    cfg: &ModelConfig,
) -> std::result::Result<(encoder::NetworkSpec, &'static [&'static str]), String> {
    Ok(match cfg.family {
        Family::Bert => (bert::spec(cfg), bert::PREFIXES),
        Family::DistilBert => (distilbert::spec(cfg), distilbert::PREFIXES),
        Family::Roberta => (roberta::spec(cfg), roberta::PREFIXES),
        Family::Electra => (electra::spec(cfg), electra::PREFIXES),
        Family::Albert => (albert::spec(cfg), albert::PREFIXES),
        Family::Mpnet => (mpnet::spec(cfg)?, mpnet::PREFIXES),
        Family::DebertaV2 => (deberta_v2::spec(cfg)?, deberta_v2::PREFIXES),
        Family::ModernBert => (modernbert::spec(cfg)?, modernbert::PREFIXES),
    })
}

/// One tokenized sequence (unpadded). `type_ids` may be empty (all zeros).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequence {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
}

impl Sequence {
    pub fn new(ids: Vec<u32>) -> Sequence {
        Sequence {
            ids,
            type_ids: vec![],
        }
    }
}

/// What one forward pass returns, per row, unpadded.
#[derive(Clone, Debug)]
pub struct Output {
    pub lens: Vec<usize>,
    pub hidden_size: usize,
    /// Last hidden state per row: `len × hidden`, row-major. Empty rows unless it was read back
    /// (a model without a head, [`Readback::LastHidden`] or [`Readback::AllHidden`]).
    pub last_hidden: Vec<Vec<f32>>,
    /// With [`Model::forward_with_hidden`]: `[state][row]`, state 0 the embeddings output.
    pub hidden_states: Vec<Vec<Vec<f32>>>,
    /// Classification: `num_labels` per row. QA: `2 × len` per row, start and end interleaved.
    /// Token classification: `len × num_labels` per row. Masked LM: `len × vocab` per row.
    /// With [`Model::forward_selected`]: one entry per selected token instead, in the order
    /// given (`num_labels` or `vocab` logits each).
    pub logits: Vec<Vec<f32>>,
}

impl Output {
    /// Start and end logits of a QA row.
    pub fn qa_logits(&self, row: usize) -> (Vec<f32>, Vec<f32>) {
        let l = &self.logits[row];
        (
            l.iter().step_by(2).copied().collect(),
            l.iter().skip(1).step_by(2).copied().collect(),
        )
    }
}

/// (batch, bucketed sequence length, what is read back, bucketed count of selected tokens).
type GraphKey = (usize, usize, Readback, usize);

struct CachedGraph {
    key: GraphKey,
    graph: Graph,
    io: GraphIo,
}

/// A model on the GPU. Graphs are built once per (batch, sequence bucket) and replayed.
pub struct Model {
    pub config: ModelConfig,
    pub dir: PathBuf,
    gpu: Arc<Gpu>,
    net: Network,
    graphs: Mutex<Vec<Arc<CachedGraph>>>,
    /// How many graphs [`graphs`](Self::graphs) keeps (least recently used dropped first).
    graph_cache: usize,
    builds: AtomicU64,
    /// GPU bytes the weights took when loaded.
    weight_bytes: u64,
    /// Stored dtype(s) and parameter count, for reports.
    pub weights_dtype: String,
    pub parameters: usize,
}

/// Graphs a model keeps by default: each holds its activation buffers, so this bounds memory.
pub const GRAPH_CACHE: usize = 12;

impl Model {
    /// Loads `dir` (config.json + model.safetensors), checking every tensor before uploading.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &Path, gpu: &Arc<Gpu>) -> Result<Model> {
        if !dir.is_dir() {
            return Err(Error::model(
                dir,
                "not a folder; pass a Hugging Face model folder (config.json, model.safetensors, tokenizer.json)",
            ));
        }
        let config = ModelConfig::load(dir)?;
        let (_, prefixes) = architecture(&config).map_err(|m| Error::model(dir, m))?;
        let w = Weights::open(dir, prefixes)?;
        Self::assemble(dir, config, &w, gpu)
    }

    /// Loads a model from its files' contents already in memory (a download, a fuzzer's input):
    /// the text of `config.json` and the bytes of `model.safetensors`. `origin` names it.
    pub fn from_memory(
        origin: &str,
        config_json: &str,
        safetensors: Vec<u8>,
        gpu: &Arc<Gpu>,
    ) -> Result<Model> {
        let dir = Path::new(origin);
        let config = ModelConfig::from_text(config_json, &dir.join("config.json"))?;
        let (_, prefixes) = architecture(&config).map_err(|m| Error::model(dir, m))?;
        let w = Weights::from_bytes(origin, safetensors, prefixes)?;
        Self::assemble(dir, config, &w, gpu)
    }

    /// Every check [`from_memory`](Self::from_memory) makes before touching the GPU: the
    /// config, the safetensors header (dtypes, shapes, offsets), and each tensor the
    /// architecture reads (name, shape, bytes, conversion to its GPU layout). What the
    /// loader fuzz target runs; a bad file gives an error, never a panic.
    pub fn check_memory(origin: &str, config_json: &str, safetensors: Vec<u8>) -> Result<()> {
        let dir = Path::new(origin);
        let config = ModelConfig::from_text(config_json, &dir.join("config.json"))?;
        let (spec, prefixes) = architecture(&config).map_err(|m| Error::model(dir, m))?;
        let w = Weights::from_bytes(origin, safetensors, prefixes)?;
        for (name, shape) in spec.expected(config.num_heads) {
            w.check(&name, &shape)?;
            w.get(&name, &shape)?.gpu_layout(true);
        }
        Ok(())
    }

    fn assemble(dir: &Path, config: ModelConfig, w: &Weights, gpu: &Arc<Gpu>) -> Result<Model> {
        let (spec, _) = architecture(&config).map_err(|m| Error::model(dir, m))?;
        // Counted as the GPU bytes the load allocates (exact unless another load runs at once).
        let before = gpu.buffer_bytes();
        let net = Network::load(gpu, config.num_heads, w, &spec)?;
        let weight_bytes = gpu.buffer_bytes().saturating_sub(before);
        Ok(Model {
            weights_dtype: w.dtype_summary(),
            parameters: w.parameter_count(),
            config,
            dir: dir.to_path_buf(),
            gpu: gpu.clone(),
            net,
            graphs: Mutex::new(vec![]),
            graph_cache: GRAPH_CACHE,
            builds: AtomicU64::new(0),
            weight_bytes,
        })
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Keeps at most `n` (at least 1) built graphs, dropping the least recently used: each
    /// holds its activation buffers, so this bounds GPU memory. Default [`GRAPH_CACHE`].
    pub fn set_graph_cache(&mut self, n: usize) {
        self.graph_cache = n.max(1);
        let mut graphs = self.graphs.lock().unwrap();
        let extra = graphs.len().saturating_sub(self.graph_cache);
        graphs.drain(..extra);
    }

    /// GPU bytes of the weights.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// Planned activation bytes of the graph for `batch` rows of `seq` tokens (built and
    /// cached if it was not): what a forward of that shape needs beyond the weights.
    pub fn activation_bytes(&self, batch: usize, seq: usize) -> Result<u64> {
        let c = self.graph(batch, self.bucket(seq), Readback::Head, 0)?;
        Ok(c.graph.plan().planned_activation_bytes)
    }

    /// Notes from loading (e.g. a table split over several bindings).
    pub fn notes(&self) -> &[String] {
        &self.net.notes
    }

    /// How many graphs were built so far (a replay builds none).
    pub fn graph_builds(&self) -> u64 {
        self.builds.load(Ordering::Relaxed)
    }

    /// The longest sequence the model's position table allows.
    pub fn max_sequence(&self) -> usize {
        self.config.max_sequence()
    }

    /// Sequences are padded to a bucket so graphs are shared between nearby lengths; padding is
    /// masked and changes no number of the real tokens.
    pub fn bucket(&self, len: usize) -> usize {
        let b = if len <= 16 {
            len.next_multiple_of(4)
        } else {
            len.next_multiple_of(16)
        };
        b.min(self.max_sequence()).max(len)
    }

    /// The most rows of `seq` tokens one graph can hold within the adapter's binding limit.
    pub fn max_batch(&self, seq: usize) -> usize {
        let c = &self.config;
        // A gated MLP's first projection is twice the inner width.
        let inner = if c.family == Family::ModernBert {
            2 * c.intermediate_size
        } else {
            c.intermediate_size
        };
        let widest = inner.max(3 * c.hidden_size).max(c.embedding_size);
        let per_row = (4 * (seq * widest).max(self.net.attention_floats_per_row(seq))) as u64;
        let limit = self.gpu.max_binding_bytes();
        ((limit / per_row.max(1)) as usize).max(1)
    }

    /// Runs the model on `rows` (padded to a common bucketed length inside) and reads back the
    /// head's logits; [`Output::last_hidden`] is filled only for a model without a head.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward(&self, rows: &[Sequence]) -> Result<Output> {
        self.forward_reading(rows, Readback::Head)
    }

    /// Runs the model and reads back what `readback` names.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_reading(&self, rows: &[Sequence], readback: Readback) -> Result<Output> {
        pollster::block_on(self.forward_reading_async(rows, readback))
    }

    /// As [`forward_reading`](Self::forward_reading), awaiting the GPU (the browser's way).
    pub async fn forward_reading_async(
        &self,
        rows: &[Sequence],
        readback: Readback,
    ) -> Result<Output> {
        self.run_selecting(rows, readback, &[]).await
    }

    /// As [`forward`](Self::forward), also returning every layer's hidden states.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_with_hidden(&self, rows: &[Sequence]) -> Result<Output> {
        self.forward_reading(rows, Readback::AllHidden)
    }

    /// Runs the model and applies a per-token head (masked LM, token classification, QA) only
    /// to the tokens `select` names as `(row, position)`: [`Output::logits`] then holds one
    /// entry per selected token, in that order. A fill-mask call computes and reads back the
    /// vocabulary logits of its mask tokens only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn forward_selected(&self, rows: &[Sequence], select: &[(usize, usize)]) -> Result<Output> {
        pollster::block_on(self.forward_selected_async(rows, select))
    }

    /// As [`forward_selected`](Self::forward_selected), awaiting the GPU.
    pub async fn forward_selected_async(
        &self,
        rows: &[Sequence],
        select: &[(usize, usize)],
    ) -> Result<Output> {
        if select.is_empty() {
            return Err(Error::Input("no tokens selected".into()));
        }
        for (k, &(r, t)) in select.iter().enumerate() {
            let len = rows.get(r).map(|s| s.ids.len());
            if len.is_none_or(|len| t >= len) {
                return Err(Error::Input(format!(
                    "selected token {k} is (row {r}, position {t}), outside the {} row(s) given",
                    rows.len()
                )));
            }
        }
        self.run_selecting(rows, Readback::Head, select).await
    }

    /// Selected-token counts are bucketed like sequence lengths so graphs are shared.
    fn select_bucket(n: usize) -> usize {
        match n {
            0 => 0,
            1..=4 => n.next_power_of_two(),
            _ => n.next_multiple_of(8),
        }
    }

    /// The plan and replay counters of the graph for this shape, if built.
    pub fn graph_report(&self, batch: usize, seq: usize) -> Option<(PlanReport, RunStats, usize)> {
        let key = (batch, self.bucket(seq), Readback::Head, 0);
        let graphs = self.graphs.lock().unwrap();
        graphs
            .iter()
            .find(|c| c.key == key)
            .map(|c| (*c.graph.plan(), c.graph.stats(), c.graph.node_count()))
    }

    /// Hands the cached graph for `rows` (built on a miss) and its input bytes to `f`, for tools
    /// that drive the graph themselves (the profiler).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_graph<R>(
        &self,
        rows: &[Sequence],
        f: impl FnOnce(&crate::graph::GraphRun, &[(crate::graph::TensorId, &[u8])]) -> Result<R>,
    ) -> Result<R> {
        let longest = self.validate(rows)?;
        let seq = self.bucket(longest);
        let c = self.graph(rows.len(), seq, Readback::Head, 0)?;
        let inputs = self.inputs(&c.io, rows, seq, &[]);
        let run = c.graph.lock();
        let slices: Vec<_> = inputs.iter().map(|(t, b)| (*t, b.as_slice())).collect();
        f(&run, &slices)
    }

    fn graph(
        &self,
        batch: usize,
        seq: usize,
        readback: Readback,
        select: usize,
    ) -> Result<Arc<CachedGraph>> {
        let key = (batch, seq, readback, select);
        {
            let mut graphs = self.graphs.lock().unwrap();
            if let Some(i) = graphs.iter().position(|c| c.key == key) {
                let c = graphs.remove(i);
                graphs.push(c.clone());
                return Ok(c);
            }
        }
        let mut g = GraphBuilder::new(&self.gpu);
        let io = self.net.build_graph(&mut g, batch, seq, readback, select)?;
        let graph = g.build()?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        let c = Arc::new(CachedGraph { key, graph, io });
        let mut graphs = self.graphs.lock().unwrap();
        if graphs.len() >= self.graph_cache {
            graphs.remove(0);
        }
        graphs.push(c.clone());
        Ok(c)
    }

    fn validate(&self, rows: &[Sequence]) -> Result<usize> {
        if rows.is_empty() {
            return Err(Error::Input("no sequences to run".into()));
        }
        let c = &self.config;
        let mut longest = 0;
        for (r, s) in rows.iter().enumerate() {
            if s.ids.is_empty() {
                return Err(Error::Input(format!("row {r} has no tokens")));
            }
            if s.ids.len() > self.max_sequence() {
                return Err(Error::Input(format!(
                    "row {r} has {} tokens; this model embeds at most {} positions: truncate the input",
                    s.ids.len(),
                    self.max_sequence()
                )));
            }
            if let Some(bad) = s.ids.iter().find(|&&i| i as usize >= c.vocab_size) {
                return Err(Error::Input(format!(
                    "row {r}: token id {bad} is outside the vocabulary of {} (wrong tokenizer for this model?)",
                    c.vocab_size
                )));
            }
            // Models without token-type embeddings (DistilBERT) ignore the tokenizer's type ids.
            if !s.type_ids.is_empty() && c.type_vocab_size > 0 {
                if s.type_ids.len() != s.ids.len() {
                    return Err(Error::Input(format!(
                        "row {r}: {} token type ids for {} tokens",
                        s.type_ids.len(),
                        s.ids.len()
                    )));
                }
                let limit = c.type_vocab_size;
                if let Some(bad) = s.type_ids.iter().find(|&&t| t as usize >= limit) {
                    return Err(Error::Input(format!(
                        "row {r}: token type id {bad} but the model has {limit} token type(s)"
                    )));
                }
            }
            longest = longest.max(s.ids.len());
        }
        Ok(longest)
    }

    async fn run_selecting(
        &self,
        rows: &[Sequence],
        readback: Readback,
        select: &[(usize, usize)],
    ) -> Result<Output> {
        let longest = self.validate(rows)?;
        let seq = self.bucket(longest);
        let batch = rows.len();
        let picked = Self::select_bucket(select.len());
        let c = self.graph(batch, seq, readback, picked)?;
        let inputs = self.inputs(&c.io, rows, seq, select);
        let slices: Vec<_> = inputs.iter().map(|(t, b)| (*t, b.as_slice())).collect();
        let out = c.graph.run_async(&self.gpu, &slices).await?;
        let h = *c.graph.tensor(c.io.last_hidden).shape.last().unwrap();
        let lens: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        let unpad = |flat: &[f32], width: usize| -> Vec<Vec<f32>> {
            lens.iter()
                .enumerate()
                .map(|(r, &len)| flat[r * seq * width..(r * seq + len) * width].to_vec())
                .collect()
        };
        let last_hidden = if out.has(c.io.last_hidden) {
            unpad(&out.f32(c.io.last_hidden)?, h)
        } else {
            vec![vec![]; batch]
        };
        let mut hidden_states = vec![];
        for t in &c.io.hidden {
            let w = *c.graph.tensor(*t).shape.last().unwrap();
            hidden_states.push(unpad(&out.f32(*t)?, w));
        }
        let logits = match c.io.logits {
            None => vec![vec![]; batch],
            Some(t) => {
                let flat = out.f32(t)?;
                match self.net.logits_per_token() {
                    Some(k) if !select.is_empty() => flat
                        .chunks(k)
                        .take(select.len())
                        .map(<[f32]>::to_vec)
                        .collect(),
                    Some(k) => unpad(&flat, k),
                    None => {
                        let n = self.config.num_labels();
                        flat.chunks(n).map(<[f32]>::to_vec).collect()
                    }
                }
            }
        };
        Ok(Output {
            lens,
            hidden_size: h,
            last_hidden,
            hidden_states,
            logits,
        })
    }

    /// The graph's inputs as bytes: `[ids | positions | types]`, the additive mask, the
    /// one-hot rows picking each selected token and the mean-pooling weights (when the graph
    /// takes them).
    fn inputs(
        &self,
        io: &GraphIo,
        rows: &[Sequence],
        seq: usize,
        select: &[(usize, usize)],
    ) -> Vec<(crate::graph::TensorId, Vec<u8>)> {
        let n = rows.len() * seq;
        let pad = self.config.pad_token_id as u32;
        let mut idx = vec![0u32; 3 * n];
        let mut mask = vec![f32::MIN; n];
        for (r, s) in rows.iter().enumerate() {
            let positions = self.net.positions.of_row(&s.ids);
            for t in 0..seq {
                let i = r * seq + t;
                let real = t < s.ids.len();
                idx[i] = if real { s.ids[t] } else { pad };
                // Batch padding is masked out; it takes the id `pad` and so, after padding,
                // position `pad` as transformers gives it.
                idx[n + i] = match (positions.get(t), self.net.positions) {
                    (Some(&p), _) => p,
                    (None, Positions::Absolute) => t as u32,
                    (None, Positions::AfterPadding { pad }) => pad,
                };
                idx[2 * n + i] = if real {
                    s.type_ids.get(t).copied().unwrap_or(0)
                } else {
                    0
                };
                if real {
                    mask[i] = 0.0;
                }
            }
        }
        let mut inputs = vec![
            (io.idx, bytemuck::cast_slice(&idx).to_vec()),
            (io.mask, bytemuck::cast_slice(&mask).to_vec()),
        ];
        let batch = rows.len();
        if let Some(s) = io.select {
            let picked = Self::select_bucket(select.len());
            let mut onehot = vec![0f32; picked * n];
            for (k, &(r, t)) in select.iter().enumerate() {
                onehot[k * n + r * seq + t] = 1.0;
            }
            inputs.push((s, bytemuck::cast_slice(&onehot).to_vec()));
        }
        // Mean pooling: 1/len on each row's real tokens of the padded [batch·seq].
        if let Some(p) = io.pool {
            let mut pool = vec![0f32; batch * n];
            for (r, s) in rows.iter().enumerate() {
                let w = 1.0 / s.ids.len() as f32;
                pool[r * n + r * seq..][..s.ids.len()].fill(w);
            }
            inputs.push((p, bytemuck::cast_slice(&pool).to_vec()));
        }
        inputs
    }
}
