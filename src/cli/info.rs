//! `wgformer info --model DIR` (filled in with the encoder families).

use clap::Args;

#[derive(Args)]
pub struct InfoArgs {
    /// A Hugging Face model folder.
    #[arg(long)]
    model: std::path::PathBuf,
}

pub fn run(a: InfoArgs) -> anyhow::Result<()> {
    let cfg = wgformer::models::config::ModelConfig::load(&a.model)?;
    println!("{}", serde_json::to_string_pretty(&cfg)?);
    Ok(())
}
