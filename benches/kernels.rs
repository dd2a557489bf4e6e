//! Criterion benches of single kernels (host wall time of one submit + wait of a graph of one
//! dispatch). Sizes are modest because lavapipe runs them on the CPU; `wgformer bench kernels`
//! gives GPU-timestamped rates.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use wgformer::bench::kernels;
use wgformer::gpu::test_gpu;

fn matmul(c: &mut Criterion) {
    let gpu = test_gpu();
    let mut group = c.benchmark_group("matmul");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    for s in [128usize, 256] {
        let g = kernels::matmul_graph(gpu, s, s, s, true, 1).expect("matmul graph");
        group.throughput(Throughput::Elements((2 * s * s * s) as u64));
        group.bench_with_input(BenchmarkId::new("f16 W", s), &s, |b, _| {
            b.iter(|| g.run(gpu, &[]).expect("matmul run"))
        });
    }
    group.finish();
}

fn softmax(c: &mut Criterion) {
    let gpu = test_gpu();
    let g = kernels::softmax_graph(gpu, 12 * 128, 128, 1).expect("softmax graph");
    let mut group = c.benchmark_group("softmax");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("12x128 rows of 128", |b| {
        b.iter(|| g.run(gpu, &[]).expect("softmax run"))
    });
    group.finish();
}

fn layer_norm(c: &mut Criterion) {
    let gpu = test_gpu();
    let g = kernels::layer_norm_graph(gpu, 128, 384, 1).expect("layer_norm graph");
    let mut group = c.benchmark_group("layer_norm");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.bench_function("128x384 +residual", |b| {
        b.iter(|| g.run(gpu, &[]).expect("layer_norm run"))
    });
    group.finish();
}

criterion_group!(benches, matmul, softmax, layer_norm);
criterion_main!(benches);
