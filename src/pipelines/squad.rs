//! The official SQuAD v1.1 evaluation (`evaluate-v1.1.py`): answer normalization, exact match,
//! token F1 (each maxed over the ground truths) and their averages ×100 over a dataset.

use std::collections::HashMap;
use std::path::Path;

use crate::{Error, Result};

/// One question of a SQuAD v1.1 file, with its paragraph's context and all ground-truth texts.
#[derive(Debug, Clone, PartialEq)]
pub struct SquadQuestion {
    /// The question id (`qas[].id`), the key of a predictions map.
    pub id: String,
    /// The question text.
    pub question: String,
    /// The paragraph the answer is to be found in.
    pub context: String,
    /// Every ground-truth answer text, in file order (duplicates kept, as the official script).
    pub answers: Vec<String>,
}

/// Scores over a dataset, as the official script prints them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SquadScores {
    /// Exact match, in percent (0..=100).
    pub exact_match: f64,
    /// Mean token F1, in percent (0..=100).
    pub f1: f64,
    /// Number of questions in the dataset (missing predictions count as 0).
    pub total: usize,
}

/// Python's `str.isspace()`: Unicode White_Space plus the separators U+001C..U+001F, which
/// `str.split()` also splits on but Rust's `char::is_whitespace` does not.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python `re`'s `\w` for str patterns: alphanumerics and underscore.
fn is_py_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The official `normalize_answer`: lower-case, drop ASCII punctuation (`string.punctuation`),
/// replace the whole words a/an/the by a space, then collapse whitespace to single spaces.
pub fn normalize_answer(s: &str) -> String {
    let lowered = s.to_lowercase();
    let no_punc: String = lowered
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    // `re.sub(r"\b(a|an|the)\b", " ", text)` matches exactly the maximal runs of word
    // characters that are an article, so replace those runs.
    let mut no_articles = String::with_capacity(no_punc.len());
    let mut rest = no_punc.as_str();
    while let Some(c) = rest.chars().next() {
        let run_len = if is_py_word(c) {
            rest.find(|c: char| !is_py_word(c)).unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        let (piece, tail) = rest.split_at(run_len);
        if matches!(piece, "a" | "an" | "the") {
            no_articles.push(' ');
        } else {
            no_articles.push_str(piece);
        }
        rest = tail;
    }
    no_articles
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1.0 when the normalized prediction equals the normalized ground truth, else 0.0.
fn exact_one(prediction: &str, ground_truth: &str) -> f64 {
    f64::from(u8::from(
        normalize_answer(prediction) == normalize_answer(ground_truth),
    ))
}

/// Token F1 between normalized prediction and one normalized ground truth (bag of tokens).
fn f1_one(prediction: &str, ground_truth: &str) -> f64 {
    let pred = normalize_answer(prediction);
    let gold = normalize_answer(ground_truth);
    let pred: Vec<&str> = pred.split(' ').filter(|t| !t.is_empty()).collect();
    let gold: Vec<&str> = gold.split(' ').filter(|t| !t.is_empty()).collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &gold {
        *counts.entry(t).or_default() += 1;
    }
    // Counter intersection: each predicted token matches at most as often as it is in gold.
    let mut same = 0usize;
    for t in &pred {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Exact match of `prediction`, maxed over `ground_truths` (0.0 when there are none).
pub fn exact_match(prediction: &str, ground_truths: &[String]) -> f64 {
    ground_truths
        .iter()
        .map(|g| exact_one(prediction, g))
        .fold(0.0, f64::max)
}

/// Token F1 of `prediction`, maxed over `ground_truths` (0.0 when there are none).
pub fn f1_score(prediction: &str, ground_truths: &[String]) -> f64 {
    ground_truths
        .iter()
        .map(|g| f1_one(prediction, g))
        .fold(0.0, f64::max)
}

#[derive(serde::Deserialize)]
struct RawFile {
    data: Vec<RawArticle>,
}

#[derive(serde::Deserialize)]
struct RawArticle {
    paragraphs: Vec<RawParagraph>,
}

#[derive(serde::Deserialize)]
struct RawParagraph {
    context: String,
    qas: Vec<RawQa>,
}

#[derive(serde::Deserialize)]
struct RawQa {
    id: String,
    question: String,
    answers: Vec<RawAnswer>,
}

#[derive(serde::Deserialize)]
struct RawAnswer {
    text: String,
}

/// Reads a SQuAD v1.1 JSON file (`{"data": [{"paragraphs": [{"context", "qas": [{"id",
/// "question", "answers": [{"text"}]}]}]}]}`) into its questions, in file order.
///
/// Errors on unreadable files, files not in that layout, and questions without any answer
/// (the official script cannot score those).
pub fn load_dataset(path: impl AsRef<Path>) -> Result<Vec<SquadQuestion>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading SQuAD file {}", path.display()), e))?;
    let raw: RawFile = serde_json::from_str(&text).map_err(|e| {
        Error::Input(format!(
            "{}: not a SQuAD v1.1 JSON file ({{\"data\": [{{\"paragraphs\": [{{\"context\", \"qas\"}}]}}]}}): {e}",
            path.display()
        ))
    })?;
    let mut out = Vec::new();
    for article in raw.data {
        for para in article.paragraphs {
            for qa in para.qas {
                if qa.answers.is_empty() {
                    return Err(Error::Input(format!(
                        "{}: question {} has no answers; SQuAD v1.1 evaluation needs at least one",
                        path.display(),
                        qa.id
                    )));
                }
                out.push(SquadQuestion {
                    id: qa.id,
                    question: qa.question,
                    context: para.context.clone(),
                    answers: qa.answers.into_iter().map(|a| a.text).collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The official `evaluate`: EM and F1 averaged over every question of `dataset`, ×100; a
/// question without a prediction scores 0. An empty dataset gives zeros.
pub fn evaluate(dataset: &[SquadQuestion], predictions: &HashMap<String, String>) -> SquadScores {
    let (mut em, mut f1) = (0.0f64, 0.0f64);
    // Summing in dataset order keeps the float sums identical to the official script's.
    for q in dataset {
        if let Some(pred) = predictions.get(&q.id) {
            em += exact_match(pred, &q.answers);
            f1 += f1_score(pred, &q.answers);
        }
    }
    let total = dataset.len();
    if total == 0 {
        return SquadScores {
            exact_match: 0.0,
            f1: 0.0,
            total,
        };
    }
    SquadScores {
        exact_match: 100.0 * em / total as f64,
        f1: 100.0 * f1 / total as f64,
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::pipelines::test_shared as shared;

    #[test]
    fn hf_predictions_reproduce_hf_scores() {
        let data = load_dataset(shared("data/squad-v1.1-dev-visible.json")).unwrap();
        let mut preds = HashMap::new();
        for line in std::fs::read_to_string(shared("fixtures/squad-visible.hf.jsonl"))
            .unwrap()
            .lines()
        {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            preds.insert(
                r["id"].as_str().unwrap().to_owned(),
                r["answer"].as_str().unwrap().to_owned(),
            );
        }
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(shared("fixtures/squad-visible.hf.summary.json")).unwrap(),
        )
        .unwrap();
        let s = evaluate(&data, &preds);
        assert_eq!(s.total as u64, summary["questions"].as_u64().unwrap());
        assert_eq!(preds.len(), s.total);
        let (em, f1) = (
            summary["exact_match"].as_f64().unwrap(),
            summary["f1"].as_f64().unwrap(),
        );
        assert!(
            (s.exact_match - em).abs() < 1e-9,
            "EM {} vs HF {em}",
            s.exact_match
        );
        assert!((s.f1 - f1).abs() < 1e-9, "F1 {} vs HF {f1}", s.f1);

        // Missing predictions count as zero, they are not skipped.
        let mut half = preds.clone();
        let dropped: Vec<String> = data.iter().take(100).map(|q| q.id.clone()).collect();
        for id in &dropped {
            half.remove(id);
        }
        let kept = evaluate(&data[100..], &preds);
        let s2 = evaluate(&data, &half);
        let n = data.len() as f64;
        assert!((s2.f1 - kept.f1 * (n - 100.0) / n).abs() < 1e-9);
    }

    #[test]
    fn normalization_follows_the_official_script() {
        // lower, strip ASCII punctuation, drop a/an/the as whole words, squeeze whitespace
        assert_eq!(normalize_answer("The  Denver Broncos!"), "denver broncos");
        assert_eq!(
            normalize_answer("an apple, a pear & the plum."),
            "apple pear plum"
        );
        // only whole words: "theater", "anna", "cat" keep their letters
        assert_eq!(
            normalize_answer("Theater of Anna's cat"),
            "theater of annas cat"
        );
        // punctuation goes before articles are looked for: "the-end" -> "theend"
        assert_eq!(normalize_answer("the-end"), "theend");
        assert_eq!(normalize_answer("(the) end"), "end");
        // non-ASCII punctuation stays, non-ASCII letters are lower-cased
        assert_eq!(normalize_answer("«Ça» — ÉCOLE"), "«ça» — école");
        assert_eq!(normalize_answer("\tA\u{a0}b\n"), "b");
        assert_eq!(normalize_answer("..."), "");
    }

    #[test]
    fn em_and_f1_max_over_ground_truths() {
        let golds = vec!["Denver Broncos".to_string(), "the Broncos".to_string()];
        assert_eq!(exact_match("broncos", &golds), 1.0);
        assert_eq!(exact_match("Denver", &golds), 0.0);
        // "Denver": vs gold 1 p=1 r=1/2 -> 2/3; vs gold 2 no overlap -> 0
        assert!((f1_score("Denver", &golds) - 2.0 / 3.0).abs() < 1e-15);
        // repeated tokens only match as often as they occur in the gold
        let g = vec!["a b b c".to_string()];
        assert!(
            (f1_score("b b b", &g) - 2.0 * (2.0 / 3.0) * (2.0 / 3.0) / (4.0 / 3.0)).abs() < 1e-15
        );
        // empty after normalization scores 0, as in the official script
        assert_eq!(f1_score("the", &["a".to_string()]), 0.0);
        assert_eq!(exact_match("the", &["a".to_string()]), 1.0);
        assert_eq!(f1_score("x", &[]), 0.0);
    }

    #[test]
    fn malformed_files_are_clear_errors() {
        let dir = std::env::temp_dir().join(format!("wgformer-squad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let bad = write("bad.json", r#"{"data": [{"paragraphs": [{"qas": []}]}]}"#);
        let e = load_dataset(&bad).unwrap_err().to_string();
        assert!(
            e.contains("not a SQuAD v1.1") && e.contains("context"),
            "{e}"
        );
        let noans = write(
            "noans.json",
            r#"{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "x", "question": "q", "answers": []}]}]}]}"#,
        );
        assert!(load_dataset(&noans)
            .unwrap_err()
            .to_string()
            .contains("no answers"));
        assert!(load_dataset(dir.join("missing.json")).is_err());
        let good = write(
            "good.json",
            r#"{"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": "Paris is big.",
                "qas": [{"id": "x", "question": "What?", "answers": [{"text": "Paris", "answer_start": 0}]}]}]}]}"#,
        );
        let d = load_dataset(&good).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].context.as_str(), d[0].answers[0].as_str()),
            ("Paris is big.", "Paris")
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
