//! Determinism across groupings: a row's outputs are bit-identical whatever batch it runs in —
//! alone, beside longer rows (more padding), beside other rows, at any position, in batches of
//! any size — on a tiny model and on a task model, with the CPU-adapter kernels and with the
//! workgroup-memory (GPU) kernels whose tile sizes depend on the batch shape.

mod common;
use common::*;
use std::sync::Arc;
use wgformer::models::{Model, Readback, Sequence};
use wgformer::Gpu;

fn ids(seed: u32, len: usize, vocab: u32) -> Sequence {
    Sequence::new(
        (0..len as u32)
            .map(|i| 1 + (seed.wrapping_mul(7919).wrapping_add(i * 104_729)) % (vocab - 1))
            .collect(),
    )
}

fn check(model: &Model) {
    let vocab = model.config.vocab_size as u32;
    let max = model.max_sequence();
    let lens = [3, 9, 17, 40.min(max), max];
    let rows: Vec<Sequence> = lens
        .iter()
        .enumerate()
        .map(|(k, &l)| ids(k as u32 + 1, l, vocab))
        .collect();
    let alone: Vec<_> = rows
        .iter()
        .map(|r| {
            let o = model
                .forward_reading(std::slice::from_ref(r), Readback::LastHidden)
                .unwrap();
            (o.logits[0].clone(), o.last_hidden[0].clone())
        })
        .collect();
    // Groupings: the row with each neighbour before and after it, all rows in several orders,
    // and eight copies of it among the others.
    let mut groupings: Vec<Vec<usize>> = vec![];
    for i in 0..rows.len() {
        for j in 0..rows.len() {
            groupings.push(vec![i, j]);
            groupings.push(vec![j, i, j]);
        }
    }
    groupings.push((0..rows.len()).collect());
    groupings.push((0..rows.len()).rev().collect());
    groupings.push([0, 0, 4, 1, 1, 3, 2, 2].to_vec());
    for g in &groupings {
        let batch: Vec<Sequence> = g.iter().map(|&i| rows[i].clone()).collect();
        let out = model.forward_reading(&batch, Readback::LastHidden).unwrap();
        for (k, &i) in g.iter().enumerate() {
            assert!(
                out.logits[k] == alone[i].0 && out.last_hidden[k] == alone[i].1,
                "{}: row {i} (length {}) at position {k} of grouping {g:?} differs from alone",
                model.config.architecture,
                lens[i]
            );
        }
    }
}

fn both_kernel_sets(f: impl Fn(&Arc<Gpu>)) {
    f(&gpu());
    f(wgformer::gpu::test_gpu_gpu_kernels());
}

#[test]
fn tiny_model_rows_are_bit_identical_in_any_grouping() {
    both_kernel_sets(|gpu| {
        for name in ["tiny-bert", "tiny-roberta"] {
            let m = Model::load(&shared().join("fixtures/tiny").join(name), gpu).unwrap();
            check(&m);
        }
    });
}

#[test]
fn task_model_rows_are_bit_identical_in_any_grouping() {
    both_kernel_sets(|gpu| {
        let mut m = Model::load(&models().join("minilm-sst2"), gpu).unwrap();
        // Short rows only: 6 layers of width 384 on a software adapter.
        m.set_graph_cache(4);
        let vocab = m.config.vocab_size as u32;
        let rows: Vec<Sequence> = [2, 7, 19, 33]
            .iter()
            .map(|&l| ids(l as u32, l, vocab))
            .collect();
        let alone: Vec<Vec<f32>> = rows
            .iter()
            .map(|r| m.forward(std::slice::from_ref(r)).unwrap().logits.remove(0))
            .collect();
        for g in [vec![0, 3], vec![3, 0, 1], vec![1, 2, 3, 0, 0, 2]] {
            let batch: Vec<Sequence> = g.iter().map(|&i| rows[i].clone()).collect();
            let out = m.forward(&batch).unwrap();
            for (k, &i) in g.iter().enumerate() {
                assert_eq!(out.logits[k], alone[i], "row {i} in {g:?}");
            }
        }
    });
}
