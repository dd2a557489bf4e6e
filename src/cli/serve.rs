//! `wgformer serve`: parse arguments, start the server, wait for Ctrl-C or SIGTERM.

use super::GpuArgs;
use clap::Args;
use wgformer::hub;
use wgformer::serve::{shutdown_signal, ServeOptions, Server};

#[derive(Args)]
pub struct ServeArgs {
    /// Local Hugging Face folder or hub id; its head decides the routes (a base encoder:
    /// /embed and /v1/embeddings; a classifier: /predict, and /rerank with one label; QA: /qa).
    #[arg(long)]
    model: String,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port (printed on start).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Most rows × padded tokens in one forward pass.
    #[arg(long, default_value_t = 16384)]
    max_batch_tokens: usize,
    /// Most rows in one forward pass.
    #[arg(long, default_value_t = 64)]
    max_batch_requests: usize,
    /// Inference requests served at once; more are answered 429.
    #[arg(long, default_value_t = 512)]
    max_concurrent_requests: usize,
    /// Inputs in one request; more are answered 413.
    #[arg(long, default_value_t = 32)]
    max_client_batch_size: usize,
    /// Context windows one /qa request may make (a long context, or a doc_stride close to the
    /// window, makes many); more are answered 413.
    #[arg(long, default_value_t = 256)]
    max_qa_windows: usize,
    /// Request body bytes; more are answered 413.
    #[arg(long, default_value_t = 2_000_000)]
    payload_limit: usize,
    /// Truncate over-long inputs to the model's length instead of answering 413.
    #[arg(long)]
    auto_truncate: bool,
    /// Worker threads of the HTTP runtime (default: one per core).
    #[arg(long)]
    http_threads: Option<usize>,
    #[command(flatten)]
    gpu: GpuArgs,
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("wgformer=info,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let opts = ServeOptions {
        model_dir: dir,
        model_id: a.model.clone(),
        host: a.host.clone(),
        port: a.port,
        max_batch_tokens: a.max_batch_tokens,
        max_batch_requests: a.max_batch_requests,
        max_concurrent_requests: a.max_concurrent_requests,
        max_client_batch_size: a.max_client_batch_size,
        max_qa_windows: a.max_qa_windows,
        payload_limit: a.payload_limit,
        auto_truncate: a.auto_truncate,
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("wgformer-http");
    if let Some(n) = a.http_threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let server = Server::start(opts, gpu.clone()).await?;
        let info = server.info();
        eprintln!(
            "wgformer serve: {} ({}, {}) on {}",
            a.model,
            info["architecture"].as_str().unwrap_or("?"),
            info["task"].as_str().unwrap_or("?"),
            gpu.describe()
        );
        // The line scripts and tests wait for (stdout, flushed by println!'s line buffering).
        println!("listening on http://{}", server.local_addr());
        use std::io::Write;
        std::io::stdout().flush()?;
        server
            .run(async {
                shutdown_signal().await;
                eprintln!("wgformer serve: shutting down (finishing the requests in flight)");
            })
            .await?;
        eprintln!("wgformer serve: stopped");
        anyhow::Ok(())
    })
}
