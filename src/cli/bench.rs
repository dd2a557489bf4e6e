//! `wgformer bench`: single kernels, the adapter's ceilings, and end-to-end forward latency.

use super::profile::ModelChoice;
use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Instant;
use wgformer::bench::{
    ceilings, kernels, parse_list, quantile, random_rows, Ceilings, RandomConfig,
};
use wgformer::profiler::Timing;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(flatten)]
    gpu: super::GpuArgs,
    #[command(subcommand)]
    command: Option<BenchCommand>,
    /// Without a subcommand: the end-to-end benchmark (`bench e2e`).
    #[command(flatten)]
    e2e: E2eArgs,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// GFLOP/s of one matmul `Y[m,n] = X[m,k]·W[n,k]ᵀ`.
    Matmul(MatmulArgs),
    /// Matmul over a size sweep, softmax and layer-norm at encoder shapes.
    Kernels(KernelsArgs),
    /// Measure and cache the adapter's f32/f16 FMA peaks and streaming read bandwidth (plus a
    /// buffer copy and wgformer's best matmul as reference points).
    Ceilings(CeilingsArgs),
    /// End-to-end forward latency and throughput over a batch × sequence grid.
    E2e(E2eArgs),
    /// Many forwards over a mix of batch sizes and lengths: resident memory and GPU-buffer
    /// bytes at the start, after warm-up, in the middle and at the end (leaks show as growth).
    Soak(SoakArgs),
}

#[derive(Args)]
struct SoakArgs {
    /// A Hugging Face model folder.
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Forwards to run (rounded up to whole cycles of the 20 shapes).
    #[arg(long, default_value_t = 10_000)]
    runs: usize,
    /// Graphs the model keeps built (each holds its activation buffers).
    #[arg(long, default_value_t = wgformer::models::GRAPH_CACHE)]
    graph_cache: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct MatmulArgs {
    #[arg(long, default_value_t = 512)]
    m: usize,
    #[arg(long, default_value_t = 512)]
    n: usize,
    #[arg(long, default_value_t = 512)]
    k: usize,
    /// W stored as f16 (as model weights are).
    #[arg(long)]
    f16: bool,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct KernelsArgs {
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Largest square matmul of the sweep (default 1024 on software adapters, 4096 on GPUs).
    #[arg(long)]
    max_size: Option<usize>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CeilingsArgs {
    /// Where to write them (default: the per-adapter file `profile` reads).
    #[arg(long, value_name = "FILE")]
    ceilings: Option<PathBuf>,
    /// Smaller buffers, fewer matmul shapes and runs.
    #[arg(long)]
    quick: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone, Debug)]
struct E2eArgs {
    /// A standard shape with seeded random f16 weights.
    #[arg(long, value_enum)]
    config: Option<RandomConfig>,
    /// A Hugging Face model folder instead (or as well: `--model` wins).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Batch sizes, e.g. 1,8,32.
    #[arg(long, default_value = "1,8")]
    batch: String,
    /// Sequence lengths, e.g. 128,384.
    #[arg(long, default_value = "128")]
    seq: String,
    /// Timed forwards per grid point (after one warm-up that builds the graph).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long)]
    json: bool,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    match a.command {
        Some(BenchCommand::Matmul(m)) => matmul(&a.gpu, m),
        Some(BenchCommand::Kernels(k)) => kernels_cmd(&a.gpu, k),
        Some(BenchCommand::Ceilings(c)) => ceilings_cmd(&a.gpu, c),
        Some(BenchCommand::E2e(e)) => e2e(&a.gpu, e),
        Some(BenchCommand::Soak(s)) => soak(&a.gpu, s),
        None => {
            if a.e2e.config.is_none() && a.e2e.model.is_none() {
                anyhow::bail!(
                    "say what to benchmark: `bench matmul`, `bench kernels`, `bench ceilings`, or `bench --config minilm-l6|bert-base` / `bench e2e --model DIR`"
                );
            }
            e2e(&a.gpu, a.e2e)
        }
    }
}

fn soak(g: &super::GpuArgs, a: SoakArgs) -> anyhow::Result<()> {
    use wgformer::bench::soak;
    let gpu = g.open()?;
    let mut model =
        wgformer::models::Model::load(&wgformer::hub::resolve(&a.model.to_string_lossy())?, &gpu)?;
    model.set_graph_cache(a.graph_cache);
    let t = Instant::now();
    let samples = soak::soak(&model, a.runs)?;
    let secs = t.elapsed().as_secs_f64();
    let (mid, end) = (&samples[samples.len() - 2], &samples[samples.len() - 1]);
    let growth = |a: u64, b: u64| 100.0 * (b as f64 - a as f64) / a.max(1) as f64;
    let rss_growth = mid
        .resident_bytes
        .zip(end.resident_bytes)
        .map(|(a, b)| growth(a, b));
    let gpu_growth = growth(mid.gpu_buffer_bytes, end.gpu_buffer_bytes);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "adapter": gpu.describe(),
                "model": a.model,
                "graph_cache": a.graph_cache,
                "weight_bytes": model.weight_bytes(),
                "seconds": secs,
                "samples": samples,
                "resident_growth_pct_middle_to_end": rss_growth,
                "gpu_growth_pct_middle_to_end": gpu_growth,
            })
        );
        return Ok(());
    }
    println!(
        "soak: {} on {}, graph cache {}, batches {:?} × lengths {:?}, {:.1} s",
        a.model.display(),
        gpu.describe(),
        a.graph_cache,
        soak::BATCHES,
        soak::LENGTHS,
        secs
    );
    println!(
        "{:>8}  {:>14}  {:>16}  {:>12}",
        "forwards", "resident MB", "GPU buffers MB", "graph builds"
    );
    for s in &samples {
        let rss = s
            .resident_bytes
            .map_or("n/a".to_string(), |b| format!("{:.2}", b as f64 / 1e6));
        println!(
            "{:>8}  {:>14}  {:>16.3}  {:>12}",
            s.runs,
            rss,
            s.gpu_buffer_bytes as f64 / 1e6,
            s.graph_builds
        );
    }
    println!(
        "growth middle → end: resident {}, GPU buffers {gpu_growth:+.3} %",
        rss_growth.map_or("n/a".to_string(), |g| format!("{g:+.3} %"))
    );
    Ok(())
}

fn timing_name(t: Timing) -> &'static str {
    match t {
        Timing::GpuTimestamps => "GPU timestamps",
        Timing::HostPerSubmit => "host time per submit (no TIMESTAMP_QUERY)",
    }
}

fn matmul(g: &super::GpuArgs, a: MatmulArgs) -> anyhow::Result<()> {
    let gpu = g.open()?;
    let r = kernels::bench_matmul(&gpu, a.m, a.n, a.k, a.f16, a.runs)?;
    if a.json {
        let out = serde_json::json!({"adapter": gpu.describe(), "result": r});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("adapter  {}", gpu.describe());
    println!(
        "timing   {}, median of {} dispatches",
        timing_name(r.timing),
        r.samples
    );
    println!(
        "{}: {:.1} µs median ({:.1} µs best) · {:.2} GFLOP/s · {:.2} GB/s",
        r.name, r.median_us, r.min_us, r.gflops, r.gbytes
    );
    Ok(())
}

/// One benchmark of the `bench kernels` list, run in order under the progress bar.
type KernelJob = Box<dyn Fn() -> wgformer::Result<kernels::KernelResult>>;

fn kernels_cmd(g: &super::GpuArgs, a: KernelsArgs) -> anyhow::Result<()> {
    let gpu = g.open()?;
    let cpu = gpu.info.device_type == wgpu::DeviceType::Cpu;
    let max = a.max_size.unwrap_or(if cpu { 1024 } else { 4096 });
    let mut jobs: Vec<(String, KernelJob)> = vec![];
    let mut s = 128;
    while s <= max {
        for f16 in [false, true] {
            let gpu = gpu.clone();
            let runs = a.runs;
            jobs.push((
                format!("matmul {s}"),
                Box::new(move || kernels::bench_matmul(&gpu, s, s, s, f16, runs)),
            ));
        }
        s *= 2;
    }
    // Encoder shapes: MiniLM attention scores (12 heads, 128 tokens) and hidden 384 LayerNorm.
    for (rows, len) in [(12 * 128, 128), (12 * 384, 384)] {
        let gpu = gpu.clone();
        let runs = a.runs;
        jobs.push((
            format!("softmax {rows}x{len}"),
            Box::new(move || {
                let gr = kernels::softmax_graph(&gpu, rows, len, 2)?;
                kernels::time_graph(&gpu, &format!("softmax {rows}x{len}"), &gr, runs)
            }),
        ));
    }
    for (rows, n) in [(128, 384), (8 * 384, 768)] {
        let gpu = gpu.clone();
        let runs = a.runs;
        jobs.push((
            format!("layer_norm {rows}x{n}"),
            Box::new(move || {
                let gr = kernels::layer_norm_graph(&gpu, rows, n, 2)?;
                kernels::time_graph(&gpu, &format!("layer_norm {rows}x{n} +residual"), &gr, runs)
            }),
        ));
    }
    let bar = indicatif::ProgressBar::new(jobs.len() as u64);
    let mut results = vec![];
    for (name, job) in &jobs {
        bar.set_message(name.clone());
        results.push(job()?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    if a.json {
        let out = serde_json::json!({"adapter": gpu.describe(), "results": results});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("adapter  {}", gpu.describe());
    if let Some(r) = results.first() {
        println!("timing   {}, median per dispatch", timing_name(r.timing));
    }
    println!(
        "{:<32} {:>11} {:>11} {:>9} {:>8}",
        "kernel", "median µs", "best µs", "GFLOP/s", "GB/s"
    );
    for r in &results {
        println!(
            "{:<32} {:>11.1} {:>11.1} {:>9.2} {:>8.2}",
            r.name, r.median_us, r.min_us, r.gflops, r.gbytes
        );
    }
    Ok(())
}

fn ceilings_cmd(g: &super::GpuArgs, a: CeilingsArgs) -> anyhow::Result<()> {
    let gpu = g.open()?;
    let bar = indicatif::ProgressBar::new_spinner();
    let c = Ceilings::measure(&gpu, a.quick, |step| bar.set_message(step.to_string()))?;
    bar.finish_and_clear();
    let path = a.ceilings.clone().or_else(|| ceilings::default_path(&gpu));
    let saved = match &path {
        Some(p) => c
            .save(p)
            .map(|_| p.display().to_string())
            .map_err(anyhow::Error::from),
        None => Err(anyhow::anyhow!(
            "no cache folder (set XDG_CACHE_HOME or HOME, or pass --ceilings FILE)"
        )),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&c)?);
    } else {
        println!("adapter   {}", gpu.describe());
        println!("timing    {}, best of the runs", c.timing);
        println!("ceilings");
        println!(
            "  f32 FMA peak              {:>10.2} GFLOP/s  (32 independent fma chains per invocation)",
            c.f32_fma_gflops
        );
        match c.f16_fma_gflops {
            Some(g) => {
                println!("  f16 FMA peak              {g:>10.2} GFLOP/s  (the same in vec4<f16>)")
            }
            None => println!("  f16 FMA peak              not measured (no SHADER_F16)"),
        }
        match c.coop_gflops {
            Some(g) => println!("  cooperative-matrix peak   {g:>10.2} GFLOP/s"),
            None => println!("  cooperative-matrix peak   not measured"),
        }
        println!(
            "  streaming read bandwidth  {:>10.2} GB/s     (vec4<f32> loads over {} MiB)",
            c.read_gbps,
            c.read_bytes >> 20
        );
        println!("reference points, not ceilings");
        println!(
            "  buffer copy               {:>10.2} GB/s     (read + write, one {} MiB copy_buffer_to_buffer)",
            c.copy_gbps,
            c.copy_bytes >> 20
        );
        println!(
            "  wgformer matmul, best     {:>10.2} GFLOP/s  ({}; {:.1} % of the f32 FMA peak)",
            c.matmul_gflops,
            c.matmul_shape,
            100.0 * c.matmul_gflops / c.f32_fma_gflops.max(1e-9)
        );
    }
    match saved {
        Ok(p) => eprintln!("cached in {p}"),
        Err(e) => eprintln!("not cached: {e}"),
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct E2ePoint {
    batch: usize,
    seq: usize,
    runs: usize,
    p50_ms: f64,
    p90_ms: f64,
    sequences_per_s: f64,
    tokens_per_s: f64,
}

fn e2e(g: &super::GpuArgs, a: E2eArgs) -> anyhow::Result<()> {
    let batches = parse_list(&a.batch).context("--batch")?;
    let seqs = parse_list(&a.seq).context("--seq")?;
    if a.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let choice = ModelChoice {
        model: a.model.clone(),
        config: if a.model.is_some() { None } else { a.config },
    };
    let gpu = g.open()?;
    let (model, name) = choice.load(&gpu)?;
    for &s in &seqs {
        if s > model.max_sequence() {
            anyhow::bail!(
                "--seq {s} exceeds this model's {} positions",
                model.max_sequence()
            );
        }
    }
    let bar = indicatif::ProgressBar::new((batches.len() * seqs.len() * (a.runs + 1)) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} forwards {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut points = vec![];
    for &b in &batches {
        for &s in &seqs {
            bar.set_message(format!("batch {b} seq {s}"));
            let rows = random_rows(b, s, model.config.vocab_size, 7)?;
            // Warm-up: builds the graph and compiles pipelines.
            model.forward(&rows)?;
            bar.inc(1);
            let mut ms = vec![];
            for _ in 0..a.runs {
                let t = Instant::now();
                model.forward(&rows)?;
                ms.push(t.elapsed().as_secs_f64() * 1e3);
                bar.inc(1);
            }
            let p50 = quantile(&ms, 0.5);
            points.push(E2ePoint {
                batch: b,
                seq: s,
                runs: a.runs,
                p50_ms: p50,
                p90_ms: quantile(&ms, 0.9),
                sequences_per_s: b as f64 / (p50 / 1e3),
                tokens_per_s: (b * s) as f64 / (p50 / 1e3),
            });
        }
    }
    bar.finish_and_clear();
    if a.json {
        let out = serde_json::json!({
            "adapter": gpu.describe(),
            "model": name,
            "weights": model.weights_dtype,
            "points": points,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("adapter  {}", gpu.describe());
    println!("model    {name} ({} weights)", model.weights_dtype);
    println!("timing   host wall clock per forward (inputs written → outputs read), {} runs after 1 warm-up", a.runs);
    println!(
        "{:>6} {:>6} {:>10} {:>10} {:>10} {:>11}",
        "batch", "seq", "p50 ms", "p90 ms", "seq/s", "tokens/s"
    );
    for p in &points {
        println!(
            "{:>6} {:>6} {:>10.2} {:>10.2} {:>10.1} {:>11.0}",
            p.batch, p.seq, p.p50_ms, p.p90_ms, p.sequences_per_s, p.tokens_per_s
        );
    }
    Ok(())
}
