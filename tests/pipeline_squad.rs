//! The question-answering pipeline end to end on SQuAD (distilminilm-squad): a deterministic
//! spread of the visible dev questions, in batches, against transformers' answers.

mod common;
use common::*;
use std::time::Instant;
use wgformer::pipelines::input::QaInput;
use wgformer::pipelines::qa::QaParams;
use wgformer::pipelines::QuestionAnswerer;

/// Every STEP-th question of squad-visible.hf.jsonl (2897 rows → 322 questions, all articles).
const STEP: usize = 9;

#[test]
fn squad_answers_match_transformers() {
    let all = jsonl("squad-visible.hf.jsonl");
    let summary = json(shared().join("fixtures/squad-visible.hf.summary.json"));
    assert_eq!(all.len() as u64, summary["questions"].as_u64().unwrap());
    let args = &summary["pipeline_args"];
    let rows: Vec<&serde_json::Value> = all.iter().step_by(STEP).collect();
    assert!(rows.len() >= 300, "{} questions", rows.len());

    let gpu = gpu();
    let qa = QuestionAnswerer::load(&models().join("distilminilm-squad"), &gpu)
        .unwrap_or_else(|e| panic!("loading distilminilm-squad: {e}"));
    let params = QaParams {
        top_k: args["top_k"].as_u64().unwrap() as usize,
        doc_stride: Some(args["doc_stride"].as_u64().unwrap() as usize),
        max_answer_len: args["max_answer_len"].as_u64().unwrap() as usize,
        max_seq_len: Some(args["max_seq_len"].as_u64().unwrap() as usize),
        max_question_len: args["max_question_len"].as_u64().unwrap() as usize,
        handle_impossible_answer: args["handle_impossible_answer"].as_bool().unwrap(),
        ..QaParams::default()
    };
    // The fixture ran transformers' defaults: wgformer's, resolved for this model, are the same.
    let ours =
        QaParams::default().resolved(qa.tokenizer.model_max_length(), qa.model.max_sequence());
    assert_eq!(
        (ours.seq_len(), ours.stride()),
        (params.seq_len(), params.stride()),
        "transformers' window length and stride for this tokenizer"
    );
    assert_eq!(
        QaParams {
            doc_stride: None,
            max_seq_len: None,
            ..params.clone()
        },
        QaParams::default(),
        "the fixture used transformers' defaults"
    );
    let inputs: Vec<QaInput> = rows
        .iter()
        .map(|r| QaInput {
            id: r["id"].as_str().unwrap().to_owned(),
            question: r["question"].as_str().unwrap().to_owned(),
            context: r["context"].as_str().unwrap().to_owned(),
        })
        .collect();

    let t = Instant::now();
    let out = qa.answer(&inputs, &params, 16, &|_| {}).unwrap();
    let secs = t.elapsed().as_secs_f64();
    eprintln!(
        "squad: {} questions in {secs:.1}s ({:.0} ms per question) on {}",
        rows.len(),
        1e3 * secs / rows.len() as f64,
        gpu.describe()
    );

    let mut failures = Vec::new();
    let mut worst = 0f64;
    for (r, got) in rows.iter().zip(&out) {
        let id = r["id"].as_str().unwrap();
        let got = match got {
            Ok(g) if g.len() == 1 => &g[0],
            Ok(g) => {
                failures.push(format!("{id}: {} answers, want 1", g.len()));
                continue;
            }
            Err(e) => {
                failures.push(format!("{id}: error {e}"));
                continue;
            }
        };
        let (answer, start, end) = (
            r["answer"].as_str().unwrap(),
            r["start"].as_u64().unwrap() as usize,
            r["end"].as_u64().unwrap() as usize,
        );
        let score = r["score"].as_f64().unwrap();
        let rel = (got.score - score).abs() / score.abs().max(f64::MIN_POSITIVE);
        worst = worst.max(rel);
        if got.answer != answer || got.start != start || got.end != end || rel > 1e-3 {
            failures.push(format!(
                "{id} {:?}: got {:?} {}..{} score {} / transformers {answer:?} {start}..{end} score {score} (rel {rel:e})",
                r["question"], got.answer, got.start, got.end, got.score
            ));
        }
    }
    eprintln!("squad: worst relative score diff {worst:e}");
    assert!(
        failures.is_empty(),
        "{} of {} answers differ from transformers':\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
