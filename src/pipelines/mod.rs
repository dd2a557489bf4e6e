//! Pipelines: tokenization, batching and post-processing with the semantics of Hugging Face
//! transformers' pipelines. Plain Rust: no GPU code here.

pub mod classify;
pub mod embed;
pub mod input;
pub mod qa;
pub mod squad;
pub mod tokenize;
