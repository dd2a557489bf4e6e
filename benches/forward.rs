//! Criterion bench of one MiniLM-L6-shaped forward (random f16 weights, batch 1 × 128 tokens),
//! host wall time from inputs written to outputs read.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;
use wgformer::bench::{random_rows, RandomConfig};
use wgformer::gpu::test_gpu;
use wgformer::models::Model;

fn forward(c: &mut Criterion) {
    let gpu = test_gpu();
    let dir = RandomConfig::MiniLmL6.dir().expect("random MiniLM folder");
    let model = Model::load(&dir, gpu).expect("random MiniLM loads");
    let rows = random_rows(1, 128, model.config.vocab_size, 1).expect("rows");
    model.forward(&rows).expect("warm-up forward");
    let mut group = c.benchmark_group("forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("minilm-l6 1x128", |b| {
        b.iter(|| model.forward(&rows).expect("forward"))
    });
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
