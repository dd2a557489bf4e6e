//! `wgformer qa | classify | embed | eval` — to be written.

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct QaArgs {}
#[derive(Args)]
pub struct ClassifyArgs {}
#[derive(Args)]
pub struct EmbedArgs {}
#[derive(Subcommand)]
pub enum EvalCommand {
    Squad,
    Classify,
}

pub fn qa(_a: QaArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
pub fn classify(_a: ClassifyArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
pub fn embed(_a: EmbedArgs) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
pub fn eval(_a: EvalCommand) -> anyhow::Result<()> {
    anyhow::bail!("todo")
}
