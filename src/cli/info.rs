//! `wgformer info --model DIR`: what a model folder holds and how wgformer will run it. Reads only
//! config.json and the safetensors header (no GPU): every tensor the architecture needs is
//! checked for presence, shape and dtype, so a folder that `info` accepts loads. With `--batch`
//! and `--seq` it also loads the model on the GPU and plans that shape's activations.

use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use wgformer::models::architecture;
use wgformer::models::config::{Family, HeadKind, ModelConfig};
use wgformer::models::encoder::{
    AttentionKind, HeadSpec, NetworkSpec, Pooling, PositionBiasSpec, QkvSpec, Transform,
};
use wgformer::models::weights::Weights;

#[derive(Args)]
pub struct InfoArgs {
    /// A Hugging Face model folder, or a hub id (from the cache, or downloaded once).
    #[arg(long)]
    model: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// With `--seq`: also plan a forward of this many rows on the GPU and report its
    /// activation bytes.
    #[arg(long, requires = "seq")]
    batch: Option<usize>,
    /// With `--batch`: tokens per row of that plan.
    #[arg(long, requires = "batch")]
    seq: Option<usize>,
    #[command(flatten)]
    gpu: super::GpuArgs,
}

/// A planned forward of `batch × seq` (`--batch`, `--seq`).
#[derive(Serialize)]
struct Plan {
    batch: usize,
    seq: usize,
    adapter: String,
    /// Bytes of the activation buffers the graph plans (after sharing by lifetime).
    activation_bytes: u64,
    /// The weights as uploaded to that adapter.
    weight_bytes: u64,
}

#[derive(Serialize)]
struct Sizes {
    layers: usize,
    hidden: usize,
    heads: usize,
    head_dim: usize,
    intermediate: usize,
    embedding: usize,
    vocab: usize,
    max_positions: usize,
    /// The longest sequence one row may have (RoBERTa reserves `pad_token_id + 1` positions).
    max_sequence: usize,
    type_vocab: usize,
    /// ALBERT: parameter groups the layers share.
    #[serde(skip_serializing_if = "Option::is_none")]
    hidden_groups: Option<usize>,
}

#[derive(Serialize)]
struct Info {
    model: PathBuf,
    architecture: String,
    model_type: String,
    family: Family,
    head: HeadKind,
    head_layers: String,
    /// How attention sees positions (plain, a shared relative bias, disentangled).
    attention: String,
    activation: String,
    layer_norm_eps: f32,
    sizes: Sizes,
    stored_dtype: String,
    /// Every tensor in model.safetensors (including any the head does not use).
    parameters: usize,
    /// Tensors the architecture reads, each checked for presence, shape and dtype.
    tensors_used: usize,
    /// Bytes those tensors take on the GPU (matrices as stored f16 or f32, bf16 widened to
    /// f32, vectors f32); `profile` adds the planned activations of a batch × length.
    weight_bytes: u64,
    labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem_type: Option<String>,
    runs_as: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<Plan>,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let dir = wgformer::hub::resolve(&a.model)?;
    let mut info = describe(&dir)?;
    if let (Some(batch), Some(seq)) = (a.batch, a.seq) {
        if batch == 0 || seq == 0 {
            anyhow::bail!("--batch and --seq must be at least 1");
        }
        let gpu = a.gpu.open()?;
        let model = wgformer::models::Model::load(&dir, &gpu)?;
        if seq > model.max_sequence() {
            anyhow::bail!(
                "--seq {seq} is longer than this model's {} positions",
                model.max_sequence()
            );
        }
        info.plan = Some(Plan {
            batch,
            seq,
            adapter: gpu.describe(),
            activation_bytes: model.activation_bytes(batch, seq)?,
            weight_bytes: model.weight_bytes(),
        });
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let s = &info.sizes;
    println!("model         {}", info.model.display());
    println!(
        "architecture  {}",
        display_or(&info.architecture, "(none given: base model)")
    );
    println!(
        "model_type    {} (family {:?})",
        info.model_type, info.family
    );
    println!("head          {:?}: {}", info.head, info.head_layers);
    println!(
        "layers        {}{}",
        s.layers,
        s.hidden_groups
            .map(|g| format!(" sharing {g} parameter group(s)"))
            .unwrap_or_default()
    );
    println!(
        "hidden        {} ({} heads × {})",
        s.hidden, s.heads, s.head_dim
    );
    println!("attention     {}", info.attention);
    println!("intermediate  {} ({})", s.intermediate, info.activation);
    println!("embedding     {}", s.embedding);
    println!("vocab         {}", s.vocab);
    println!(
        "positions     {} (longest row {} tokens)",
        s.max_positions, s.max_sequence
    );
    println!("token types   {}", s.type_vocab);
    println!("layer norm ε  {:e}", info.layer_norm_eps);
    println!("stored dtype  {}", info.stored_dtype);
    println!(
        "parameters    {} ({}; {} tensors used)",
        info.parameters,
        human(info.parameters),
        info.tensors_used
    );
    println!(
        "GPU weights   {:.2} MB{}",
        info.weight_bytes as f64 / 1e6,
        if info.plan.is_none() {
            " (activations: add --batch B --seq S)"
        } else {
            ""
        }
    );
    if let Some(p) = &info.plan {
        println!(
            "planned       {} × {}: activations {:.2} MB, weights {:.2} MB on {}",
            p.batch,
            p.seq,
            p.activation_bytes as f64 / 1e6,
            p.weight_bytes as f64 / 1e6,
            p.adapter
        );
    }
    if matches!(
        info.head,
        HeadKind::SequenceClassification | HeadKind::TokenClassification
    ) {
        println!("labels        {}", info.labels.join(", "));
        if let Some(p) = &info.problem_type {
            println!("problem type  {p}");
        }
    }
    println!("runs as       {}", info.runs_as);
    Ok(())
}

fn display_or<'a>(s: &'a str, empty: &'a str) -> &'a str {
    if s.is_empty() {
        empty
    } else {
        s
    }
}

fn human(n: usize) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2}B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.1}K", n as f64 / 1e3),
        n => n.to_string(),
    }
}

fn describe(dir: &Path) -> anyhow::Result<Info> {
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: not a folder; pass a Hugging Face model folder (config.json, model.safetensors)",
            dir.display()
        );
    }
    let cfg = ModelConfig::load(dir)?;
    let (spec, prefixes) =
        architecture(&cfg).map_err(|m| anyhow::anyhow!("{}: {m}", dir.display()))?;
    let w = Weights::open(dir, prefixes)?;
    let used = spec.expected(cfg.num_heads);
    for (name, shape) in &used {
        w.check(name, shape)?;
    }
    let stored_dtype = w.dtype_summary();
    let mut names: Vec<&(String, Vec<usize>)> = used.iter().collect();
    names.sort();
    names.dedup();
    let mut weight_bytes = 0u64;
    for (name, shape) in &names {
        let t = w.get(name, shape)?;
        weight_bytes += if shape.len() == 1 {
            4 * t.numel() as u64
        } else {
            t.gpu_layout(true).1.len() as u64
        };
    }
    Ok(Info {
        model: dir.to_path_buf(),
        head_layers: head_layers(&spec.head, &spec.embeddings.word),
        attention: attention(&spec),
        activation: format!("{:?}", cfg.act),
        layer_norm_eps: cfg.layer_norm_eps,
        sizes: Sizes {
            layers: cfg.num_layers,
            hidden: cfg.hidden_size,
            heads: cfg.num_heads,
            head_dim: cfg.hidden_size / cfg.num_heads,
            intermediate: cfg.intermediate_size,
            embedding: cfg.embedding_size,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions,
            max_sequence: cfg.max_sequence(),
            type_vocab: cfg.type_vocab_size,
            hidden_groups: (cfg.family == Family::Albert).then_some(cfg.num_hidden_groups),
        },
        runs_as: runs_as(&stored_dtype),
        plan: None,
        stored_dtype,
        parameters: w.parameter_count(),
        tensors_used: names.len(),
        weight_bytes,
        labels: cfg.id2label.clone(),
        problem_type: cfg.problem_type.clone(),
        architecture: cfg.architecture,
        model_type: cfg.model_type,
        family: cfg.family,
        head: cfg.head,
    })
}

/// How the stored dtype reaches the kernels (see `encoder::Uploader`).
fn runs_as(dtype: &str) -> String {
    let parts: Vec<&str> = dtype.split('+').collect();
    let mut s = vec![];
    if parts.contains(&"F32") {
        s.push("f32 weights read as f32");
    }
    if parts.contains(&"F16") {
        s.push("f16 weights read as f16 (matrices; biases and norms widened to f32)");
    }
    if parts.contains(&"BF16") {
        s.push("bf16 weights widened to f32 on load (exact)");
    }
    if s.is_empty() {
        return format!("stored as {dtype}: not a float dtype wgformer reads");
    }
    format!("{}; f32 accumulation", s.join(", "))
}

/// The attention variant and its position settings, from the spec.
fn attention(spec: &NetworkSpec) -> String {
    match &spec.position_bias {
        None => "softmax(Q·Kᵀ/√d)".into(),
        Some(PositionBiasSpec::RelativeBuckets {
            buckets,
            max_distance,
            ..
        }) => format!(
            "relative position bias ({buckets} buckets up to distance {max_distance}), shared by every layer"
        ),
        Some(PositionBiasSpec::Disentangled(d)) => {
            let terms: Vec<&str> = [(d.c2p, "c2p"), (d.p2c, "p2c")]
                .iter()
                .filter_map(|(on, n)| on.then_some(*n))
                .collect();
            let shared = spec.layers.first().is_some_and(|l| {
                match (&l.attention.kind, &l.attention.qkv) {
                    (AttentionKind::Disentangled { pos_k, .. }, QkvSpec::Separate { k, .. }) => {
                        pos_k.w == k.w
                    }
                    _ => false,
                }
            });
            format!(
                "disentangled ({}), scale 1/√(d·{}); relative positions {}, span {}; {} relative embeddings, {} position projections",
                terms.join(" + "),
                d.scale_factor(),
                if d.buckets > 0 {
                    format!("in {} log buckets up to {}", d.buckets, d.max_relative)
                } else {
                    format!("exact up to {}", d.max_relative)
                },
                d.span,
                if d.norm.is_some() { "layer-normed" } else { "raw" },
                if shared { "shared Q/K" } else { "own" }
            )
        }
    }
}

fn name(w: &str) -> &str {
    w.trim_end_matches(".weight")
}

/// `dense → act (→ norm)` of a head's transform.
fn transform(t: &Transform) -> String {
    let mut s = format!("{} → {:?}", name(&t.dense.w), t.act);
    if let Some(n) = &t.norm {
        s.push_str(&format!(" → {}", name(&n.gamma)));
    }
    s
}

fn head_layers(h: &HeadSpec, word_table: &str) -> String {
    match h {
        HeadSpec::Base => "none (hidden states)".into(),
        HeadSpec::Classifier {
            pooling,
            transform: t,
            out,
        } => {
            let pooled = match pooling {
                Pooling::First => "the first token",
                Pooling::Mean => "the mean of the tokens",
            };
            let steps = match t {
                Some(t) => format!("{} → {}", transform(t), name(&out.w)),
                None => name(&out.w).to_string(),
            };
            format!("{steps} on {pooled} ({} labels)", out.out)
        }
        HeadSpec::QuestionAnswering(l) => {
            format!("{} on every token (start, end)", name(&l.w))
        }
        HeadSpec::TokenClassifier { transform: t, out } => {
            let steps = match t {
                Some(t) => format!("{} → {}", transform(t), name(&out.w)),
                None => name(&out.w).to_string(),
            };
            format!("{steps} on every token ({} labels)", out.out)
        }
        HeadSpec::MaskedLm {
            transform: t,
            decoder,
        } => {
            let tied = decoder.w == word_table;
            format!(
                "{} → {} on every token ({} vocabulary logits{})",
                transform(t),
                if tied { "decoder" } else { name(&decoder.w) },
                decoder.out,
                if tied {
                    ", decoder tied to the word embeddings"
                } else {
                    ""
                }
            )
        }
    }
}
