//! `wgformer profile`: per-kernel GPU timing of one model forward, a per-kind table in which each
//! kind is compared with the adapter ceiling that bounds it (compute kinds with the f32 FMA peak,
//! memory-bound kinds with streaming read bandwidth), and an optional Chrome trace.

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use wgformer::bench::ceilings::{self, Bound, Ceiling};
use wgformer::bench::{random_rows, Ceilings, RandomConfig};
use wgformer::models::Model;
use wgformer::profiler::{self, ForwardProfile, KindTotal, Profiler};
use wgformer::Gpu;

#[derive(Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    gpu: super::GpuArgs,
    #[command(flatten)]
    model: ModelChoice,
    /// Rows in the batch.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Tokens per row (random valid ids, [CLS] first and [SEP] last).
    #[arg(long, default_value_t = 128)]
    seq: usize,
    /// Profiled runs averaged (after one warm-up run).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Write a Chrome trace (open in https://ui.perfetto.dev) with one event per node.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Ceilings file (default: the per-adapter cache written by `wgformer bench ceilings`).
    #[arg(long, value_name = "FILE")]
    ceilings: Option<PathBuf>,
    /// Time each node on the host around its own submit even where timestamps exist.
    #[arg(long)]
    host_timing: bool,
    /// Also list the N slowest nodes.
    #[arg(long, default_value_t = 0, value_name = "N")]
    top: usize,
}

/// A model folder or a standard shape with random weights.
#[derive(Args, Clone, Debug)]
#[group(required = true, multiple = false)]
pub struct ModelChoice {
    /// Hugging Face model folder.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// A standard shape with seeded random f16 weights (no download).
    #[arg(long, value_enum)]
    pub config: Option<RandomConfig>,
}

impl ModelChoice {
    pub fn load(&self, gpu: &Arc<Gpu>) -> anyhow::Result<(Model, String)> {
        let (dir, name) = match (&self.model, self.config) {
            (Some(d), _) => (d.clone(), d.display().to_string()),
            (None, Some(c)) => (
                c.dir().context("writing the random-weight model folder")?,
                format!("{} (random weights)", c.name()),
            ),
            (None, None) => anyhow::bail!("pass --model DIR or --config minilm-l6|bert-base"),
        };
        Ok((Model::load(&dir, gpu)?, name))
    }
}

/// Cached ceilings for this adapter, measured quickly (and cached) when there are none.
pub fn ceilings_for(
    gpu: &Arc<Gpu>,
    file: Option<&PathBuf>,
    quiet: bool,
) -> (Option<Ceilings>, Option<String>) {
    let path = file.cloned().or_else(|| ceilings::default_path(gpu));
    if let Some(p) = &path {
        if p.is_file() {
            return match Ceilings::load(p) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(format!("{e}"))),
            };
        }
        if file.is_some() {
            return (
                None,
                Some(format!(
                    "{} does not exist; run `wgformer bench ceilings --ceilings {}`",
                    p.display(),
                    p.display()
                )),
            );
        }
    }
    if !quiet {
        eprintln!("no ceilings cached for {}: measuring quickly (run `wgformer bench ceilings` for a full measurement)", gpu.describe());
    }
    match Ceilings::measure(gpu, true, |_| {}) {
        Ok(c) => {
            let note = path
                .as_ref()
                .and_then(|p| c.save(p).err())
                .map(|e| format!("could not cache ceilings: {e}"));
            (Some(c), note.or(Some("ceilings measured quickly; run `wgformer bench ceilings` for a full measurement".into())))
        }
        Err(e) => (
            None,
            Some(format!(
                "could not measure ceilings ({e}); run `wgformer bench ceilings`"
            )),
        ),
    }
}

/// The ceiling that bounds kind `k` and `k`'s rate as a percentage of it (GFLOP/s against a
/// compute peak, GB/s against bandwidth).
fn against(ceil: Option<&Ceilings>, k: &KindTotal) -> Option<(Ceiling, Option<f64>)> {
    let c = ceil?.for_kind(&k.kind)?;
    let rate = match c.bound {
        Bound::Compute => k.gflops(),
        Bound::Bandwidth => k.gbytes(),
    };
    let p = c.percent(rate);
    Some((c, p))
}

pub fn run(a: ProfileArgs) -> anyhow::Result<()> {
    if a.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let gpu = a.gpu.open()?;
    let (model, name) = a.model.load(&gpu)?;
    let rows = random_rows(a.batch, a.seq, model.config.vocab_size, 1)?;
    let runs = model.with_graph(&rows, |graph, inputs| {
        let mut prof = if a.host_timing {
            Profiler::host_timed(&gpu, graph)
        } else {
            Profiler::new(&gpu, graph)?
        };
        let runs = profiler::profile_graph(&mut prof, graph, inputs, 1, a.runs)?;
        Ok((runs, prof.note()))
    })?;
    let (runs, note) = runs;
    let mean = ForwardProfile::mean(&runs)?;
    // The graph just profiled is cached: its plan is the activations this shape needs.
    let memory = serde_json::json!({
        "weight_bytes": model.weight_bytes(),
        "planned_activation_bytes": model.activation_bytes(a.batch, a.seq)?,
        "gpu_buffer_bytes": gpu.buffer_bytes(),
    });
    let (ceil, ceil_note) = ceilings_for(&gpu, a.ceilings.as_ref(), a.json);

    if let Some(path) = &a.trace {
        let text = serde_json::to_string(&mean.chrome_trace())?;
        std::fs::write(path, text).with_context(|| format!("writing trace {}", path.display()))?;
    }
    let kinds = mean.by_kind();
    if a.json {
        let out = serde_json::json!({
            "adapter": gpu.describe(),
            "model": name,
            "batch": a.batch,
            "seq": a.seq,
            "runs": a.runs,
            "timing": mean.timing,
            "note": note,
            "memory": memory,
            "ceilings": ceil,
            "ceilings_note": ceil_note,
            "kinds": kinds.iter().map(|k| {
                let c = against(ceil.as_ref(), k);
                serde_json::json!({
                    "kind": k.kind, "calls": k.calls, "total_us": k.total_us, "mean_us": k.mean_us(),
                    "percent": 100.0 * k.total_us / mean.gpu_sum_us.max(1e-9),
                    "flops": k.flops, "bytes": k.bytes, "gflops": k.gflops(), "gbytes": k.gbytes(),
                    "ceiling": c.as_ref().map(|(c, _)| c),
                    "percent_of_ceiling": c.and_then(|(_, p)| p),
                })
            }).collect::<Vec<_>>(),
            "forward": mean,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }

    println!("adapter   {}", gpu.describe());
    println!("model     {name}");
    println!(
        "input     batch {} × seq {} · {} nodes · mean of {} runs after 1 warm-up · {}",
        a.batch,
        a.seq,
        mean.nodes.len(),
        a.runs,
        match mean.timing {
            profiler::Timing::GpuTimestamps => "GPU timestamps",
            profiler::Timing::HostPerSubmit => "host time per submit",
        }
    );
    if let Some(n) = &note {
        println!("note      {n}");
    }
    let mb = |k: &str| memory[k].as_u64().unwrap_or(0) as f64 / 1e6;
    println!(
        "memory    weights {:.2} MB · planned activations {:.2} MB · all GPU buffers {:.2} MB",
        mb("weight_bytes"),
        mb("planned_activation_bytes"),
        mb("gpu_buffer_bytes")
    );
    match &ceil {
        Some(c) => println!(
            "ceilings  f32 FMA peak {:.1} GFLOP/s{} · streaming read bandwidth {:.1} GB/s",
            c.f32_fma_gflops,
            c.f16_fma_gflops
                .map(|g| format!(" · f16 FMA peak {g:.1} GFLOP/s"))
                .unwrap_or_default(),
            c.read_gbps
        ),
        None => println!("ceilings  none (run `wgformer bench ceilings`)"),
    }
    if let Some(n) = &ceil_note {
        println!("          {n}");
    }
    println!();
    println!(
        "{:<12} {:>5} {:>11} {:>10} {:>7} {:>9} {:>8}  {:<8} {:>7}",
        "kernel", "calls", "total µs", "mean µs", "% fwd", "GFLOP/s", "GB/s", "vs", "% peak"
    );
    for k in &kinds {
        let (vs, pct) = match against(ceil.as_ref(), k) {
            Some((c, p)) => (c.short, p.map_or("-".into(), |p| format!("{p:.1}"))),
            None => ("-", "-".into()),
        };
        println!(
            "{:<12} {:>5} {:>11.1} {:>10.1} {:>7.1} {:>9.2} {:>8.2}  {:<8} {:>7}",
            k.kind,
            k.calls,
            k.total_us,
            k.mean_us(),
            100.0 * k.total_us / mean.gpu_sum_us.max(1e-9),
            k.gflops(),
            k.gbytes(),
            vs,
            pct,
        );
    }
    let flops: u64 = kinds.iter().map(|k| k.flops).sum();
    println!(
        "{:<12} {:>5} {:>11.1} {:>10} {:>7.1} {:>9.2}",
        "total",
        mean.nodes.len(),
        mean.gpu_sum_us,
        "",
        100.0,
        profiler::rate(flops as f64, mean.gpu_sum_us)
    );
    println!();
    println!(
        "forward   GPU {:.1} µs (sum of nodes) · {:.1} µs (first begin → last end) · wall {:.1} µs (inputs written → outputs read)",
        mean.gpu_sum_us, mean.gpu_span_us, mean.wall_us
    );
    println!(
        "host      {:.1} µs wall − span · of which {:.1} µs writing inputs, recording {} nodes and submitting (the rest: waiting for completion, readback)",
        (mean.wall_us - mean.gpu_span_us).max(0.0),
        mean.record_us,
        mean.nodes.len()
    );
    if a.top > 0 {
        let mut nodes = mean.nodes.clone();
        nodes.sort_by(|x, y| y.us.total_cmp(&x.us));
        println!();
        println!(
            "{:<32} {:<12} {:>10} {:>9} {:>8}",
            "node", "kernel", "µs", "GFLOP/s", "GB/s"
        );
        for n in nodes.iter().take(a.top) {
            println!(
                "{:<32} {:<12} {:>10.1} {:>9.2} {:>8.2}",
                n.label,
                n.kind,
                n.us,
                profiler::rate(n.flops as f64, n.us),
                profiler::rate(n.bytes as f64, n.us)
            );
        }
    }
    if let Some(p) = &a.trace {
        println!(
            "trace     {} ({} events; open in https://ui.perfetto.dev)",
            p.display(),
            mean.nodes.len()
        );
    }
    Ok(())
}
