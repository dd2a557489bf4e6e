//! Post-processing of sequence-classification logits with the rules of transformers'
//! `text-classification` pipeline (`TextClassificationPipeline.postprocess`).

use serde::Serialize;

use crate::{Error, Result};

/// The function turning logits into scores (transformers' `ClassificationFunction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifyFunction {
    /// `exp(x - max) / sum(exp(x - max))` over the labels.
    Softmax,
    /// `1 / (1 + exp(-x))` per label, independently.
    Sigmoid,
    /// The raw logits.
    None,
}

impl ClassifyFunction {
    /// The function transformers' pipeline applies, in its order of precedence: an `explicit`
    /// choice (`function_to_apply=`); `problem_type == "regression"` → none;
    /// `"multi_label_classification"` or a single label → sigmoid;
    /// `"single_label_classification"` or several labels → softmax; otherwise (no labels) none.
    ///
    /// Note a one-label model gets sigmoid even when marked `single_label_classification`: the
    /// pipeline tests `num_labels == 1` before `single_label_classification`.
    pub fn choose(
        problem_type: Option<&str>,
        num_labels: usize,
        explicit: Option<ClassifyFunction>,
    ) -> ClassifyFunction {
        if let Some(f) = explicit {
            return f;
        }
        match problem_type {
            Some("regression") => ClassifyFunction::None,
            Some("multi_label_classification") => ClassifyFunction::Sigmoid,
            _ if num_labels == 1 => ClassifyFunction::Sigmoid,
            Some("single_label_classification") => ClassifyFunction::Softmax,
            _ if num_labels > 1 => ClassifyFunction::Softmax,
            _ => ClassifyFunction::None,
        }
    }

    /// Parses a `function_to_apply` value as transformers accepts it: `softmax`, `sigmoid` or
    /// `none`, in any case.
    pub fn parse(s: &str) -> Result<ClassifyFunction> {
        match s.to_ascii_lowercase().as_str() {
            "softmax" => Ok(ClassifyFunction::Softmax),
            "sigmoid" => Ok(ClassifyFunction::Sigmoid),
            "none" => Ok(ClassifyFunction::None),
            _ => Err(Error::Input(format!(
                "unknown classification function {s:?}: use softmax, sigmoid or none"
            ))),
        }
    }
}

/// How many labels to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    /// transformers' default (`top_k=1` without the argument given): the single best label.
    One,
    /// The `n` best labels, best first (`top_k=n`).
    N(usize),
    /// Every label, best first (`top_k=None`).
    All,
}

impl TopK {
    /// `1`, a larger number, or `all` (also `none`, transformers' spelling).
    pub fn parse(s: &str) -> Result<TopK> {
        match s {
            "all" | "none" => Ok(TopK::All),
            "1" => Ok(TopK::One),
            n => match n.parse::<usize>() {
                Ok(0) => Err(Error::Input("top-k must be at least 1".into())),
                Ok(n) => Ok(TopK::N(n)),
                Err(_) => Err(Error::Input(format!("top-k {n}: give a number or `all`"))),
            },
        }
    }
}

/// One label and its score, serialised as transformers prints it: `{"label": ..., "score": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f64,
}

/// Applies `f` to one row of `logits` and returns labels with scores, best first.
///
/// Scores are computed in f64, then rounded to f32: transformers computes them in numpy float32
/// and hands out those f32 values as Python floats, so rounding makes ours the nearest values to
/// theirs. Ties keep label order (the pipeline's sort is stable; its argmax takes the first).
/// Labels missing from `id2label` are named `LABEL_{i}`, transformers' default. NaN logits sort
/// above everything (IEEE total order), where Python's sort would be arbitrary.
pub fn postprocess(
    logits: &[f32],
    f: ClassifyFunction,
    id2label: &[String],
    top_k: TopK,
) -> Vec<LabelScore> {
    let scores: Vec<f32> = match f {
        ClassifyFunction::Softmax => softmax(logits),
        ClassifyFunction::Sigmoid => logits
            .iter()
            .map(|&x| (1.0 / (1.0 + (-(x as f64)).exp())) as f32)
            .collect(),
        ClassifyFunction::None => logits.to_vec(),
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Stable sort, descending, on the f32 values transformers sorts on.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let keep = match top_k {
        TopK::One => 1,
        TopK::N(n) => n,
        TopK::All => order.len(),
    };
    order
        .into_iter()
        .take(keep)
        .map(|i| LabelScore {
            label: id2label
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{i}")),
            score: scores[i] as f64,
        })
        .collect()
}

/// Softmax in f64 with the max subtracted (as the pipeline does, so large logits do not overflow).
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits
        .iter()
        .map(|&x| x as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|&x| (x as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn top_k_parses_like_the_pipeline_argument() {
        assert_eq!(TopK::parse("1").unwrap(), TopK::One);
        assert_eq!(TopK::parse("3").unwrap(), TopK::N(3));
        assert_eq!(TopK::parse("all").unwrap(), TopK::All);
        assert_eq!(TopK::parse("none").unwrap(), TopK::All);
        assert!(TopK::parse("0")
            .unwrap_err()
            .to_string()
            .contains("at least 1"));
        assert!(TopK::parse("x")
            .unwrap_err()
            .to_string()
            .contains("a number or `all`"));
    }

    fn labels(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Every SST-2 sentence: softmax of HF's logits, all labels, equals HF's pipeline output.
    #[test]
    fn sst2_softmax_matches_hf_pipeline() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/fixtures/sst2-visible.hf.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let id2label = labels(&["NEGATIVE", "POSITIVE"]);
        let (mut n, mut worst) = (0, 0f64);
        for line in text.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let logits: Vec<f32> = r["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let got = postprocess(&logits, ClassifyFunction::Softmax, &id2label, TopK::All);
            let want = r["hf"].as_array().unwrap();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert_eq!(g.label, w["label"].as_str().unwrap(), "{line}");
                let d = (g.score - w["score"].as_f64().unwrap()).abs();
                worst = worst.max(d);
                assert!(d < 1e-6, "{line}: {} vs {}", g.score, w["score"]);
            }
            n += 1;
        }
        assert_eq!(n, 436);
        eprintln!("sst2: {n} sentences, worst score difference {worst:e}");
        assert!(worst < 1e-7, "worst difference {worst:e}");
    }

    #[test]
    fn choose_follows_pipeline_precedence() {
        use ClassifyFunction as F;
        let c = ClassifyFunction::choose;
        assert_eq!(c(Some("regression"), 1, None), F::None);
        assert_eq!(c(Some("regression"), 3, None), F::None);
        assert_eq!(c(Some("multi_label_classification"), 5, None), F::Sigmoid);
        assert_eq!(c(Some("single_label_classification"), 1, None), F::Sigmoid);
        assert_eq!(c(Some("single_label_classification"), 2, None), F::Softmax);
        assert_eq!(c(None, 1, None), F::Sigmoid);
        assert_eq!(c(None, 3, None), F::Softmax);
        assert_eq!(c(None, 0, None), F::None);
        assert_eq!(c(Some("regression"), 1, Some(F::Softmax)), F::Softmax);
        assert_eq!(ClassifyFunction::parse("SIGMOID").unwrap(), F::Sigmoid);
        assert!(ClassifyFunction::parse("relu").is_err());
    }

    #[test]
    fn sigmoid_and_none_scores() {
        let l = labels(&["a", "b", "c"]);
        let logits = [0.0f32, 2.0, -1.5];
        let s = postprocess(&logits, ClassifyFunction::Sigmoid, &l, TopK::All);
        let want = [("b", 2.0f64), ("a", 0.0), ("c", -1.5)];
        for (g, (lab, x)) in s.iter().zip(want) {
            assert_eq!(g.label, lab);
            assert!((g.score - 1.0 / (1.0 + (-x).exp())).abs() < 1e-7);
        }
        let n = postprocess(&logits, ClassifyFunction::None, &l, TopK::All);
        let got: Vec<(&str, f64)> = n.iter().map(|x| (x.label.as_str(), x.score)).collect();
        assert_eq!(got, vec![("b", 2.0), ("a", 0.0), ("c", -1.5)]);
        // Large logits neither overflow nor give NaN.
        let big = postprocess(&[1000.0, -1000.0], ClassifyFunction::Softmax, &l, TopK::All);
        assert_eq!((big[0].score, big[1].score), (1.0, 0.0));
        let sig = postprocess(&[-200.0], ClassifyFunction::Sigmoid, &l, TopK::One);
        assert_eq!(sig[0].score, 0.0);
    }

    #[test]
    fn top_k_and_ties() {
        let l = labels(&["a", "b", "c", "d"]);
        let logits = [1.0f32, 3.0, 3.0, 2.0];
        let names = |k| -> Vec<String> {
            postprocess(&logits, ClassifyFunction::Softmax, &l, k)
                .into_iter()
                .map(|x| x.label)
                .collect()
        };
        assert_eq!(names(TopK::One), ["b"]); // first of the tied best, like argmax
        assert_eq!(names(TopK::N(2)), ["b", "c"]);
        assert_eq!(names(TopK::N(10)), ["b", "c", "d", "a"]);
        assert_eq!(names(TopK::N(0)), Vec::<String>::new());
        assert_eq!(names(TopK::All), ["b", "c", "d", "a"]);
        let total: f64 = postprocess(&logits, ClassifyFunction::Softmax, &l, TopK::All)
            .iter()
            .map(|x| x.score)
            .sum();
        assert!((total - 1.0).abs() < 1e-6);
        // Too few label names: transformers' default names.
        let short = postprocess(&logits, ClassifyFunction::None, &l[..1], TopK::One);
        assert_eq!(short[0].label, "LABEL_1");
        let json = serde_json::to_string(&short[0]).unwrap();
        assert_eq!(json, r#"{"label":"LABEL_1","score":3.0}"#);
    }
}
