//! Command-line parsing and dispatch. Each subcommand lives in its own file and only calls the
//! library.

mod bench;
mod devices;
mod info;
mod profile;
mod serve;
mod tasks;

use clap::{Args, Parser, Subcommand};
use std::sync::Arc;
use wgformer::gpu::{BackendChoice, KernelSet, MatmulChoice, Precision};
use wgformer::{Gpu, GpuOptions};

#[derive(Parser)]
#[command(
    name = "wgformer",
    version,
    about = "Transformer encoders on any GPU through wgpu"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Adapter selection, shared by every command that runs on the GPU.
#[derive(Args, Clone, Debug)]
pub struct GpuArgs {
    /// Graphics API to use.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub backend: BackendChoice,
    /// Adapter index (see `wgformer devices`) or a substring of its name.
    #[arg(long, global = true)]
    pub adapter: Option<String>,
    /// Do not use native f16 in shaders even where the adapter supports it.
    #[arg(long, global = true)]
    pub no_f16: bool,
    /// Kernel variants: tuned for GPUs or for CPU adapters (auto picks by adapter type).
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub kernels: KernelSet,
    /// Matmul kernel: cooperative matrices (tensor cores) where available, or the portable one.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub matmul: MatmulChoice,
    /// Arithmetic: f32 (Hugging Face's numbers), f16 (tensor cores), auto (f16 on GPUs with
    /// SHADER_F16, f32 on CPU adapters).
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub precision: Precision,
    /// Plan for a storage-binding limit below the adapter's (bytes): larger weights are split
    /// into row blocks. For testing what a smaller GPU (WebGPU's 128 MiB) would run.
    #[arg(long, global = true)]
    pub max_binding_bytes: Option<u64>,
}

impl GpuArgs {
    pub fn open(&self) -> anyhow::Result<Arc<Gpu>> {
        let gpu = Gpu::new(&GpuOptions {
            backend: self.backend,
            adapter: self.adapter.clone(),
            no_f16: self.no_f16,
            kernels: self.kernels,
            matmul: self.matmul,
            precision: self.precision,
            max_binding_bytes: self.max_binding_bytes,
        })?;
        Ok(Arc::new(gpu))
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// List every GPU adapter with its features and limits.
    Devices(devices::DevicesArgs),
    /// Answer questions from a context (extractive QA).
    Qa(tasks::QaArgs),
    /// Label texts (sentiment, NLI, any *ForSequenceClassification).
    Classify(tasks::ClassifyArgs),
    /// Sentence embeddings.
    Embed(tasks::EmbedArgs),
    /// Label every token (named entities; any *ForTokenClassification).
    Ner(tasks::NerArgs),
    /// Predict the masked tokens of texts (any *ForMaskedLM).
    FillMask(tasks::FillMaskArgs),
    /// Classify texts into labels chosen at run time with an NLI model.
    ZeroShot(tasks::ZeroShotArgs),
    /// Rank documents against a query with a cross-encoder.
    Rerank(tasks::RerankArgs),
    /// Evaluate on SQuAD v1.1 or a classification TSV.
    #[command(subcommand)]
    Eval(tasks::EvalCommand),
    /// Describe a model folder: architecture, sizes, dtype, head, labels.
    Info(info::InfoArgs),
    /// Benchmarks: kernels, adapter ceilings, end-to-end forward.
    Bench(bench::BenchArgs),
    /// Per-kernel GPU timing of a model's forward pass, with a Chrome trace.
    Profile(profile::ProfileArgs),
    /// HTTP inference server (TEI and OpenAI routes) with dynamic batching.
    Serve(serve::ServeArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices(a) => devices::run(a),
        Command::Qa(a) => tasks::qa(a),
        Command::Classify(a) => tasks::classify(a),
        Command::Embed(a) => tasks::embed(a),
        Command::Ner(a) => tasks::ner(a),
        Command::FillMask(a) => tasks::fill_mask(a),
        Command::ZeroShot(a) => tasks::zero_shot(a),
        Command::Rerank(a) => tasks::rerank(a),
        Command::Eval(a) => tasks::eval(a),
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Profile(a) => profile::run(a),
        Command::Serve(a) => serve::run(a),
    }
}
