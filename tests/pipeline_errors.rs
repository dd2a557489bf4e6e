//! Pipelines on bad or awkward inputs: each a clear error or a correct answer, never a panic.

mod common;
use common::*;
use wgformer::pipelines::classify::TopK;
use wgformer::pipelines::input::{QaInput, TextInput};
use wgformer::pipelines::qa::{self, QaParams};
use wgformer::pipelines::{Classifier, QuestionAnswerer};

/// A golden SQuAD row the model answers confidently (transformers' score > 0.97).
const GOLD_ID: &str = "5726a21bf1498d1400e8e57a";

fn gold() -> serde_json::Value {
    jsonl("squad-visible.hf.jsonl")
        .into_iter()
        .find(|r| r["id"] == GOLD_ID)
        .unwrap_or_else(|| panic!("squad-visible.hf.jsonl has no question {GOLD_ID}"))
}

fn qa_input(id: &str, q: &str, c: &str) -> QaInput {
    QaInput {
        id: id.into(),
        question: q.into(),
        context: c.into(),
    }
}

/// Python's `s[a:b]` on code points.
fn py_slice(s: &str, a: usize, b: usize) -> String {
    s.chars().skip(a).take(b.saturating_sub(a)).collect()
}

#[test]
fn qa_bad_inputs_error_alone_and_long_contexts_are_windowed() {
    let g = gold();
    let (q, c) = (
        g["question"].as_str().unwrap(),
        g["context"].as_str().unwrap(),
    );
    let (answer, start, end) = (
        g["answer"].as_str().unwrap(),
        g["start"].as_u64().unwrap() as usize,
        g["end"].as_u64().unwrap() as usize,
    );
    let qa = QuestionAnswerer::load(&models().join("distilminilm-squad"), &gpu())
        .unwrap_or_else(|e| panic!("loading distilminilm-squad: {e}"));
    let p = QaParams::default();

    // The context six times over: far past the model's 512 positions.
    let copies = 6;
    let long: String = vec![c; copies].join(" ");
    let period = c.chars().count() + 1;
    let feats = qa::prepare(qa.tokenizer.inner(), q, &long, &p).unwrap();
    let tokens: usize = qa
        .tokenizer
        .encode(q, Some(&long), Some(usize::MAX))
        .unwrap()
        .ids
        .len();
    assert!(
        tokens > qa.model.max_sequence(),
        "test needs a context past the {} positions ({tokens} tokens)",
        qa.model.max_sequence()
    );
    assert!(feats.windows.len() > 1, "{} windows", feats.windows.len());
    assert!(feats.windows.iter().all(|w| w.len() <= p.seq_len()));

    // A very long question (no room for context in max_seq_len 384).
    let long_q = vec![q; 40].join(" ");

    let inputs = vec![
        qa_input("empty-question", "", c),
        qa_input("gold", q, c),
        qa_input("empty-context", q, ""),
        qa_input("long-context", q, &long),
        qa_input("long-question", &long_q, c),
        qa_input("whitespace-context", q, "   \n\t "),
    ];
    let out = qa
        .answer(&inputs, &p, 4, &|_| {})
        .expect("bad inputs must fail alone, not the whole call");
    assert_eq!(out.len(), inputs.len());

    let err = |k: usize| -> String {
        match &out[k] {
            Err(e) => e.to_string(),
            Ok(a) => panic!("{}: expected an error, got {a:?}", inputs[k].id),
        }
    };
    let e = err(0);
    assert!(e.contains("question is empty"), "empty question: {e}");
    let e = err(2);
    assert!(e.contains("context is empty"), "empty context: {e}");
    let e = err(4);
    assert!(e.contains("no room"), "long question: {e}");

    // The good input among bad ones: transformers' answer.
    let a = &out[1].as_ref().expect("gold question")[0];
    assert_eq!(
        (a.answer.as_str(), a.start, a.end),
        (answer, start, end),
        "gold question among bad inputs"
    );
    // Batched with errors and long windows: the very score of the question answered alone.
    // (Its parity with transformers' score is pipeline_squad's business.)
    let alone = qa.answer(&inputs[1..2], &p, 1, &|_| {}).unwrap();
    let alone = &alone[0].as_ref().expect("gold question alone")[0];
    assert_eq!(a, alone, "gold question: batched with bad inputs vs alone");

    // The windowed long context: the gold text, at one of the copies of the gold span.
    let a = &out[3].as_ref().expect("long context")[0];
    eprintln!(
        "long context: {tokens} tokens, {} windows: {:?} at {}..{} score {}",
        feats.windows.len(),
        a.answer,
        a.start,
        a.end,
        a.score
    );
    assert_eq!(a.answer, answer, "long context answer");
    assert_eq!(
        py_slice(&long, a.start, a.end),
        a.answer,
        "offsets index the long context"
    );
    assert!(
        a.start >= start
            && (a.start - start).is_multiple_of(period)
            && a.end - a.start == end - start,
        "long context: {}..{} is not a copy of the gold span {start}..{end} (period {period})",
        a.start,
        a.end
    );

    // Whitespace-only context: no context tokens at all. Either a clear error or no answer.
    match &out[5] {
        Err(e) => eprintln!("whitespace context: error {e}"),
        Ok(a) => assert!(
            a.iter().all(|x| x.answer.trim().is_empty()),
            "whitespace context gave {a:?}"
        ),
    }

    // Nothing to do is no error.
    assert!(qa.answer(&[], &p, 4, &|_| {}).unwrap().is_empty());
    // Only bad inputs: each its own error, no forward pass needed.
    let bad = qa.answer(&[qa_input("x", "", "")], &p, 4, &|_| {}).unwrap();
    assert!(bad[0].is_err());
    // Bad parameters: errors, not panics.
    for bad_p in [
        QaParams {
            top_k: 0,
            ..QaParams::default()
        },
        QaParams {
            max_answer_len: 0,
            ..QaParams::default()
        },
        QaParams {
            doc_stride: Some(500),
            ..QaParams::default()
        },
    ] {
        let r = qa.answer(&inputs[1..2], &bad_p, 4, &|_| {});
        let is_err = match &r {
            Err(_) => true,
            Ok(v) => v[0].is_err(),
        };
        assert!(is_err, "{bad_p:?} should be refused");
    }
    // A shorter window alone gets transformers' stride for it (min(128 / 2, 128) = 64), not
    // 128, which no 128-token window can take.
    let short = QaParams {
        max_seq_len: Some(128),
        ..QaParams::default()
    };
    let r = qa.answer(&inputs[1..2], &short, 4, &|_| {}).unwrap();
    assert!(r[0].as_ref().is_ok_and(|a| !a.is_empty()), "{:?}", r[0]);
}

#[test]
fn wrong_head_is_a_clear_error() {
    let gpu = gpu();
    let e = Classifier::load(&models().join("distilminilm-squad"), &gpu, None)
        .err()
        .expect("a Classifier on a QA model folder must be refused")
        .to_string();
    assert!(
        e.contains("sequence-classification") && e.contains("DistilBertForQuestionAnswering"),
        "{e}"
    );
    let e = QuestionAnswerer::load(&models().join("minilm-sst2"), &gpu)
        .err()
        .expect("a QuestionAnswerer on a classification folder must be refused")
        .to_string();
    assert!(
        e.contains("question-answering") && e.contains("BertForSequenceClassification"),
        "{e}"
    );
    let missing = shared().join("models/no-such-model");
    let e = Classifier::load(&missing, &gpu, None)
        .err()
        .expect("a missing folder must be refused")
        .to_string();
    assert!(e.contains("no-such-model"), "{e}");
}

#[test]
fn classifier_edge_inputs() {
    let clf = Classifier::load(&models().join("minilm-sst2"), &gpu(), None).unwrap();
    assert!(clf.classify(&[], TopK::All, 8, &|_| {}).unwrap().is_empty());
    // Far past 512 tokens: truncated like truncation=True, answered; batch 0 means 1.
    let long = "a gorgeous , witty , seductive movie . ".repeat(200);
    let inputs = [
        TextInput {
            text: long,
            text_pair: None,
        },
        TextInput {
            text: String::new(),
            text_pair: None,
        },
    ];
    let out = clf.classify(&inputs, TopK::One, 0, &|_| {}).unwrap();
    for (i, o) in out.iter().enumerate() {
        let o = o.as_ref().unwrap_or_else(|e| panic!("input {i}: {e}"));
        assert_eq!(o.len(), 1);
        assert!(o[0].score.is_finite() && o[0].score >= 0.5, "{o:?}");
    }
    assert_eq!(out[0].as_ref().unwrap()[0].label, "POSITIVE");
}
