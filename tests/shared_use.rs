//! Task objects shared between threads: one `Classifier` used from 8 threads at once gives every
//! input the answer it gets alone, and the same input gives bit-identical scores run after run.

mod common;
use common::*;
use std::sync::Arc;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::Classifier;

fn text(t: &str) -> TextInput {
    TextInput {
        text: t.to_owned(),
        text_pair: None,
    }
}

#[test]
fn one_classifier_many_threads_every_answer_as_alone() {
    fn assert_shareable<T: Send + Sync>() {}
    assert_shareable::<Classifier>();
    let clf = Arc::new(Classifier::load(&models().join("minilm-sst2"), &gpu(), None).unwrap());
    let texts: Vec<TextInput> = [
        "a gorgeous, witty, seductive movie .",
        "the plot is nothing but boilerplate clichés from start to finish .",
        "it 's a bad sign when you 're rooting for the film to end .",
        "a masterpiece four years in the making .",
        "",
        "not bad at all , actually .",
    ]
    .into_iter()
    .map(text)
    .collect();
    let alone: Vec<_> = texts
        .iter()
        .map(|t| {
            clf.classify(std::slice::from_ref(t), TopK::All, 1, &|_| {})
                .unwrap()
        })
        .map(|mut r| r.remove(0).unwrap())
        .collect();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let clf = clf.clone();
            let texts = texts.clone();
            std::thread::spawn(move || {
                (0..6)
                    .map(|round| {
                        // Different groupings per thread and round: 1, 2 or 3 texts a call.
                        let start = (t + round) % texts.len();
                        let n = 1 + (t + round) % 3;
                        let idx: Vec<usize> = (0..n).map(|k| (start + k) % texts.len()).collect();
                        let batch: Vec<TextInput> = idx.iter().map(|&i| texts[i].clone()).collect();
                        let out = clf.classify(&batch, TopK::All, 4, &|_| {}).unwrap();
                        (idx, out)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut answers = 0;
    for th in threads {
        for (idx, out) in th.join().unwrap() {
            for (i, got) in idx.into_iter().zip(out) {
                let got = got.unwrap();
                assert_eq!(got.len(), alone[i].len());
                for (g, a) in got.iter().zip(&alone[i]) {
                    assert_eq!(g.label, a.label, "text {i}: label order");
                    // Other batch neighbours change the padding, not the numbers beyond 1e-5.
                    assert!((g.score - a.score).abs() < 1e-5, "text {i}: {g:?} vs {a:?}");
                }
                answers += 1;
            }
        }
    }
    assert_eq!(
        answers,
        (0..8)
            .flat_map(|t| (0..6).map(move |r| 1 + (t + r) % 3))
            .sum::<usize>()
    );
}

#[test]
fn the_same_input_gives_bit_identical_scores_every_run() {
    let clf = Classifier::load(&models().join("minilm-sst2"), &gpu(), None).unwrap();
    let batch: Vec<TextInput> = ["an odd , haunting film .", "dull ."]
        .into_iter()
        .map(text)
        .collect();
    let first = clf.classify(&batch, TopK::All, 2, &|_| {}).unwrap();
    for _ in 0..5 {
        let again = clf.classify(&batch, TopK::All, 2, &|_| {}).unwrap();
        for (a, b) in first.iter().zip(&again) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            let bits = |v: &Vec<wgformer::pipelines::classify::LabelScore>| {
                v.iter()
                    .map(|l| (l.label.clone(), l.score.to_bits()))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(a), bits(b));
        }
    }
}
