//! `wgformer profile` (per-kernel GPU timing) — to be written.

use clap::Args;

#[derive(Args)]
pub struct ProfileArgs {
    #[command(flatten)]
    gpu: super::GpuArgs,
}

pub fn run(_a: ProfileArgs) -> anyhow::Result<()> {
    anyhow::bail!("profile is not implemented yet")
}
