//! `wgformer bench` — to be written.

use clap::Args;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    gpu: super::GpuArgs,
}

pub fn run(_a: BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("bench is not implemented yet")
}
