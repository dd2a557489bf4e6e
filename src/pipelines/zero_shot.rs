//! Zero-shot classification over an NLI model with the rules of transformers'
//! `zero-shot-classification` pipeline (transformers 5): each candidate label becomes the
//! hypothesis `hypothesis_template.format(label)` paired with the text (the premise, the only
//! part truncated); the entailment logit decides.
//!
//! - one label, or `multi_label`: each label independently, softmax of (contradiction,
//!   entailment) and the entailment probability;
//! - otherwise: softmax of the entailment logits across the labels.
//!
//! The entailment label is the first entry of `label2id`, in config.json's order, whose name
//! starts with `entail` (any case), or of `id2label` when the config has no `label2id`;
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
///
/// transformers' `entailment_id` walks `config.label2id.items()` in order and returns the id of
/// the first label starting with `entail`; `label2id` is that map in config.json's order. Only
/// when the config has none is `id2label` walked instead. The contradiction index follows the
/// pipeline's `-1 if entailment_id == 0 else 0` on the id as written (so a written -1 is the
/// last label, and contradiction is then label 0). An entailment id that is not an integer
/// index of the logits is an error naming it.
pub fn nli_ids(
    label2id: Option<&[(String, serde_json::Value)]>,
    id2label: &[String],
) -> std::result::Result<(usize, usize, bool), String> {
    let n = id2label.len() as i64;
    let is_entail = |l: &str| l.to_lowercase().starts_with("entail");
    let found: Option<i64> = match label2id {
        Some(pairs) => match pairs.iter().find(|(l, _)| is_entail(l)) {
            None => None,
            Some((l, v)) => Some(v.as_i64().filter(|i| (-n..n).contains(i)).ok_or_else(|| {
                format!(
                    "config.json's label2id maps the entailment label `{l}` to {v}, which is not \
                     a label index (0..{n}); fix label2id so it matches id2label"
                )
            })?),
        },
        None => id2label.iter().position(|l| is_entail(l)).map(|i| i as i64),
    };
    let raw = found.unwrap_or(-1);
    let index = |i: i64| i.rem_euclid(n.max(1)) as usize;
    let contra = if raw == 0 { -1 } else { 0 };
    Ok((index(raw), index(contra), found.is_some()))
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
/// `{0}` take the label, `{{` and `}}` are braces; any other field is refused. As in Python,
/// `{0}` may repeat but `{}` fields are numbered 0, 1, ... so a second `{}` has no argument
/// (IndexError), and `{}` with `{0}` mixes automatic and manual numbering (ValueError).
pub fn format_template(template: &str, label: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::Input(format!(
            "hypothesis template {template:?}: {why}; use {{}} where the label goes (e.g. {DEFAULT_TEMPLATE:?})"
        ))
    };
    let mut out = String::new();
    let (mut auto, mut manual) = (0usize, false);
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
                    if field.is_empty() {
                        auto += 1;
                    } else {
                        manual = true;
                    }
                    if auto > 1 {
                        return Err(bad(
                            "it has more than one `{}` field, but str.format fills it with one \
                             label, so the second `{}` has nothing to take (Python raises \
                             IndexError and transformers refuses the call); write the label once, \
                             or `{0}` for each place it should repeat",
                        ));
                    }
                    if auto > 0 && manual {
                        return Err(bad(
                            "it mixes `{}` with `{0}`, which Python's str.format refuses \
                             (ValueError: cannot switch between automatic and manual field \
                             numbering); use `{0}` everywhere",
                        ));
                    }
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
            nli_ids(None, &s(&["entailment", "neutral", "contradiction"])),
            Ok((0, 2, true))
        );
        assert_eq!(
            nli_ids(None, &s(&["CONTRADICTION", "NEUTRAL", "ENTAILMENT"])),
            Ok((2, 0, true))
        );
        assert_eq!(
            nli_ids(None, &s(&["LABEL_0", "LABEL_1"])),
            Ok((1, 0, false))
        );
    }

    fn pairs(v: &[(&str, serde_json::Value)]) -> Vec<(String, serde_json::Value)> {
        v.iter().map(|(k, x)| (k.to_string(), x.clone())).collect()
    }

    /// transformers' `entailment_id`: `for label, ind in config.label2id.items(): if
    /// label.lower().startswith("entail"): return ind`, else -1; contradiction is `-1 if
    /// entailment_id == 0 else 0`. Expected indices below are those Python gives.
    #[test]
    fn entailment_label_from_label2id_in_its_order() {
        let id2label = s(&["entailment_a", "neutral", "entailment_b"]);
        // label2id order, not id order, decides between two entail* labels.
        let l2i = pairs(&[
            ("entailment_b", 2.into()),
            ("neutral", 1.into()),
            ("entailment_a", 0.into()),
        ]);
        assert_eq!(nli_ids(Some(&l2i), &id2label), Ok((2, 0, true)));
        // label2id's names count even when id2label has only generic ones.
        let generic = s(&["LABEL_0", "LABEL_1", "LABEL_2"]);
        let l2i = pairs(&[
            ("contradiction", 0.into()),
            ("Entailment", 1.into()),
            ("neutral", 2.into()),
        ]);
        assert_eq!(nli_ids(Some(&l2i), &generic), Ok((1, 0, true)));
        // No entail* key in label2id: -1 (the last label), even if id2label has one.
        let l2i = pairs(&[("a", 0.into()), ("b", 1.into()), ("c", 2.into())]);
        assert_eq!(nli_ids(Some(&l2i), &id2label), Ok((2, 0, false)));
        // Entailment at id 0: contradiction is -1, the last label.
        let l2i = pairs(&[("ENTAILMENT", 0.into()), ("other", 1.into())]);
        assert_eq!(nli_ids(Some(&l2i), &generic), Ok((0, 2, true)));
        // A negative id indexes from the end, as torch does; contradiction stays 0.
        let l2i = pairs(&[("entailment", (-1).into())]);
        assert_eq!(nli_ids(Some(&l2i), &generic), Ok((2, 0, true)));
        for bad in [
            serde_json::json!(3),
            serde_json::json!("1"),
            serde_json::json!(-4),
        ] {
            let l2i = pairs(&[("entailment", bad.clone())]);
            let e = nli_ids(Some(&l2i), &generic).unwrap_err();
            assert!(
                e.contains("label2id") && e.contains(&bad.to_string()),
                "{e}"
            );
        }
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
        // Python: "{0} or {0}".format("a") == "a or a"; "{} or {}".format("a") raises
        // IndexError; "{} or {0}" and "{0} or {}" raise ValueError (mixed numbering).
        assert_eq!(format_template("{0} or {0}", "a").unwrap(), "a or a");
        for (t, why) in [
            ("{} or {}", "more than one `{}`"),
            ("{}{}{}", "more than one `{}`"),
            ("{} or {0}", "mixes `{}` with `{0}`"),
            ("{0} or {}", "mixes `{}` with `{0}`"),
        ] {
            let e = format_template(t, "a").unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(&format!("{t:?}")), "{t}: {e}");
            let e = hypotheses("text", &s(&["a", "b"]), t)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{t}: {e}");
        }
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
