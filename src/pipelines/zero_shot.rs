//! Zero-shot classification over an NLI model with the rules of transformers'
//! `zero-shot-classification` pipeline (transformers 5): each candidate label becomes the
//! hypothesis `hypothesis_template.format(label)` paired with the text (the premise, the only
//! part truncated); the entailment logit decides.
//!
//! - one label, or `multi_label`: each label independently, softmax of (contradiction,
//!   entailment) and the entailment probability;
//! - otherwise: softmax of the entailment logits across the labels.
//!
//! The entailment label is the first of `id2label` whose name starts with `entail` (any case);
//! contradiction is label 0, or the last label when entailment is label 0.

use serde::Serialize;

use crate::{Error, Result};

/// The pipeline's default hypothesis.
pub const DEFAULT_TEMPLATE: &str = "This example is {}.";

/// One text's result, serialised as transformers prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZeroShotResult {
    pub sequence: String,
    /// Best first.
    pub labels: Vec<String>,
    pub scores: Vec<f64>,
}

/// Which logits zero-shot reads: (entailment, contradiction), and whether an entailment label
/// was found. Without one transformers warns and uses index -1 (the last label); so does this.
pub fn nli_ids(id2label: &[String]) -> (usize, usize, bool) {
    let last = id2label.len().saturating_sub(1);
    let found = id2label
        .iter()
        .position(|l| l.to_lowercase().starts_with("entail"));
    let entail = found.unwrap_or(last);
    let contra = if entail == 0 { last } else { 0 };
    (entail, contra, found.is_some())
}

/// Candidate labels given as one string: split on commas, trimmed, empty ones dropped
/// (transformers' `_parse_labels`).
pub fn parse_labels(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `template.format(label)` for the Python format strings a hypothesis template uses: `{}` and
/// `{0}` take the label, `{{` and `}}` are braces; any other field is refused.
pub fn format_template(template: &str, label: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::Input(format!(
            "hypothesis template {template:?}: {why}; use {{}} where the label goes (e.g. {DEFAULT_TEMPLATE:?})"
        ))
    };
    let mut out = String::new();
    let mut it = template.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                out.push('{');
            }
            '{' => {
                let mut field = String::new();
                loop {
                    match it.next() {
                        Some('}') => break,
                        Some(ch) => field.push(ch),
                        None => return Err(bad("a `{` is never closed")),
                    }
                }
                if field.is_empty() || field == "0" {
                    out.push_str(label);
                } else {
                    return Err(bad(&format!(
                        "the field {{{field}}} cannot be filled with one label"
                    )));
                }
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                out.push('}');
            }
            '}' => return Err(bad("a single `}` must be written `}}`")),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Checks the call as transformers does before any model work: at least one label, a
/// non-empty text, a template the first label changes. Returns the hypotheses.
pub fn hypotheses(text: &str, labels: &[String], template: &str) -> Result<Vec<String>> {
    if labels.is_empty() || text.is_empty() {
        return Err(Error::Input(
            "You must include at least one label and at least one sequence.".into(),
        ));
    }
    let first = format_template(template, &labels[0])?;
    if first == template {
        return Err(Error::Input(format!(
            "The provided hypothesis_template \"{template}\" was not able to be formatted with the target labels. \
             Make sure the passed template includes formatting syntax such as {{}} where the label should go."
        )));
    }
    labels
        .iter()
        .map(|l| format_template(template, l))
        .collect()
}

/// Scores each label from its (premise, hypothesis) row of NLI logits and sorts them, best
/// first. Ties come out as numpy's `reversed(argsort)` gives them: the later label first.
pub fn postprocess(
    text: &str,
    labels: &[String],
    logits: &[Vec<f32>],
    entail: usize,
    contra: usize,
    multi_label: bool,
) -> ZeroShotResult {
    let scores: Vec<f32> = if multi_label || labels.len() == 1 {
        logits
            .iter()
            .map(|l| {
                let (c, e) = (l[contra] as f64, l[entail] as f64);
                let m = c.max(e);
                let (ec, ee) = ((c - m).exp(), (e - m).exp());
                (ee / (ec + ee)) as f32
            })
            .collect()
    } else {
        let ent: Vec<f64> = logits.iter().map(|l| l[entail] as f64).collect();
        let m = ent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = ent.iter().map(|x| (x - m).exp()).sum();
        ent.iter().map(|x| ((x - m).exp() / sum) as f32).collect()
    };
    let mut order: Vec<usize> = (0..labels.len()).collect();
    // Ascending and stable, then reversed: best first, ties in reverse label order.
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order.reverse();
    ZeroShotResult {
        sequence: text.to_string(),
        labels: order.iter().map(|&i| labels[i].clone()).collect(),
        scores: order.iter().map(|&i| scores[i] as f64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entailment_label_from_id2label() {
        assert_eq!(
            nli_ids(&s(&["entailment", "neutral", "contradiction"])),
            (0, 2, true)
        );
        assert_eq!(
            nli_ids(&s(&["CONTRADICTION", "NEUTRAL", "ENTAILMENT"])),
            (2, 0, true)
        );
        assert_eq!(nli_ids(&s(&["LABEL_0", "LABEL_1"])), (1, 0, false));
    }

    #[test]
    fn templates_as_python_formats_them() {
        assert_eq!(
            format_template("This example is {}.", "sports").unwrap(),
            "This example is sports."
        );
        assert_eq!(format_template("{0} / {{x}}", "a").unwrap(), "a / {x}");
        assert!(format_template("{label}", "a").is_err());
        assert!(format_template("oops }", "a").is_err());
        let e = hypotheses("t", &s(&["a"]), "no placeholder")
            .unwrap_err()
            .to_string();
        assert!(e.contains("was not able to be formatted"), "{e}");
        let e = hypotheses("", &s(&["a"]), DEFAULT_TEMPLATE)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("at least one label and at least one sequence"),
            "{e}"
        );
        assert!(hypotheses("t", &[], DEFAULT_TEMPLATE).is_err());
        assert_eq!(parse_labels(" a, b ,,c "), s(&["a", "b", "c"]));
    }

    #[test]
    fn single_and_multi_label_scores() {
        let labels = s(&["x", "y", "z"]);
        // [entailment, neutral, contradiction]
        let logits = vec![
            vec![1.0, 0.0, 0.0],
            vec![3.0, 0.0, 1.0],
            vec![1.0, 5.0, -1.0],
        ];
        let r = postprocess("t", &labels, &logits, 0, 2, false);
        assert_eq!(r.labels, s(&["y", "z", "x"]), "z ties x, later first");
        let total: f64 = r.scores.iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
        let m = postprocess("t", &labels, &logits, 0, 2, true);
        assert_eq!(m.labels, s(&["z", "y", "x"]));
        assert!((m.scores[0] - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-7);
        // One label is always scored independently.
        let one = postprocess("t", &s(&["x"]), &logits[..1], 0, 2, false);
        assert!((one.scores[0] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-7);
    }
}
