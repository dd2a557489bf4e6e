//! The library without the CLI: load a Hugging Face folder, tokenize, run the forward pass.
//!
//! `cargo run --release --example forward -- ../shared/models/minilm-sst2 "a gorgeous, witty movie"`

use std::sync::Arc;
use std::time::Instant;
use wgformer::models::{Model, Sequence};
use wgformer::{Gpu, GpuOptions};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: forward MODEL_DIR TEXT"))?;
    let text = args.next().unwrap_or_else(|| "hello world".into());

    let t0 = Instant::now();
    let gpu = Arc::new(Gpu::new(&GpuOptions::default())?);
    println!("adapter: {}  ({:.0?})", gpu.describe(), t0.elapsed());

    let t0 = Instant::now();
    let model = Model::load(dir.as_ref(), &gpu)?;
    println!(
        "model: {} ({:.0?})",
        model.config.architecture,
        t0.elapsed()
    );

    let tok = tokenizers::Tokenizer::from_file(format!("{dir}/tokenizer.json"))
        .map_err(anyhow::Error::msg)?;
    let enc = tok
        .encode(text.as_str(), true)
        .map_err(anyhow::Error::msg)?;
    let seq = Sequence {
        ids: enc.get_ids().to_vec(),
        type_ids: enc.get_type_ids().to_vec(),
    };
    for i in 0..3 {
        let t0 = Instant::now();
        let out = model.forward(std::slice::from_ref(&seq))?;
        println!("run {i}: {:.1?}  logits {:?}", t0.elapsed(), out.logits[0]);
    }
    let long = Sequence::new(vec![101; 128]);
    let batch = vec![long; 8];
    for i in 0..2 {
        let t0 = Instant::now();
        model.forward(&batch)?;
        println!("batch 8 x 128, run {i}: {:.1?}", t0.elapsed());
    }
    Ok(())
}
