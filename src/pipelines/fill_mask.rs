//! Post-processing of masked-LM logits with the rules of transformers' `fill-mask` pipeline
//! (`FillMaskPipeline`, transformers 5): a softmax over the whole vocabulary at each mask token,
//! restricted to `targets` when given, the `top_k` best (capped at the number of targets), each
//! with the text decoded with that token in place of its mask.

use serde::Serialize;

use crate::{Error, Result};

/// The pipeline's default number of predictions per mask.
pub const DEFAULT_TOP_K: usize = 5;

/// One prediction, serialised as transformers prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fill {
    pub score: f64,
    pub token: u32,
    /// `decode([token])`.
    pub token_str: String,
    /// The input with this token in place of the mask (special tokens dropped when the text has
    /// one mask; kept, like the other masks, when it has several).
    pub sequence: String,
}

/// One text's predictions: a list for a text with one mask, a list per mask (in text order)
/// when it has several, as the pipeline returns them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FillOutput {
    Single(Vec<Fill>),
    Multi(Vec<Vec<Fill>>),
}

impl FillOutput {
    /// The predictions of each mask, in text order.
    pub fn per_mask(&self) -> Vec<&[Fill]> {
        match self {
            FillOutput::Single(v) => vec![v.as_slice()],
            FillOutput::Multi(m) => m.iter().map(Vec::as_slice).collect(),
        }
    }
}

/// The mask positions of `ids`, or transformers' refusal when there is none.
pub fn mask_positions(ids: &[u32], mask_id: u32, mask_token: &str) -> Result<Vec<usize>> {
    let pos: Vec<usize> = ids
        .iter()
        .enumerate()
        .filter(|(_, &id)| id == mask_id)
        .map(|(i, _)| i)
        .collect();
    if pos.is_empty() {
        return Err(Error::Input(format!(
            "No mask_token ({mask_token}) found on the input"
        )));
    }
    Ok(pos)
}

/// Softmax over `logits` (in f64, max subtracted), read at `candidates` (all ids when `None`),
/// and the `top_k` best as (id, probability), best first; equal probabilities keep the lower
/// candidate index first.
pub fn top_predictions(
    logits: &[f32],
    candidates: Option<&[u32]>,
    top_k: usize,
) -> Vec<(u32, f64)> {
    let max = logits
        .iter()
        .map(|&x| x as f64)
        .fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let prob = |id: u32| ((logits[id as usize] as f64 - max).exp() / sum) as f32 as f64;
    let mut scored: Vec<(u32, f64)> = match candidates {
        Some(c) => c.iter().map(|&id| (id, prob(id))).collect(),
        None => (0..logits.len() as u32).map(|id| (id, prob(id))).collect(),
    };
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.truncate(top_k);
    scored
}

/// The target ids as transformers resolves `targets`: a vocabulary string as is, otherwise the
/// first token of the target tokenized without special tokens (none: the target is skipped);
/// duplicates removed. `lookup` gives a vocabulary id, `first_token` that first token.
pub fn resolve_targets(
    targets: &[String],
    lookup: &dyn Fn(&str) -> Option<u32>,
    first_token: &dyn Fn(&str) -> Result<Option<u32>>,
) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = vec![];
    for t in targets {
        let id = match lookup(t) {
            Some(id) => Some(id),
            None => first_token(t)?,
        };
        if let Some(id) = id {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    if ids.is_empty() {
        return Err(Error::Input(
            "At least one target must be provided when passed.".into(),
        ));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_over_vocabulary_and_targets() {
        let logits = [0.0f32, 2.0, 1.0, 2.0, -1.0];
        let top = top_predictions(&logits, None, 3);
        let ids: Vec<u32> = top.iter().map(|t| t.0).collect();
        assert_eq!(ids, [1, 3, 2], "ties keep the lower id first");
        let total: f64 = top_predictions(&logits, None, 10).iter().map(|t| t.1).sum();
        assert!((total - 1.0).abs() < 1e-6);
        // Targets: probabilities of the full softmax, not renormalised.
        let t = top_predictions(&logits, Some(&[4, 0]), 5);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0, 0);
        let full = top_predictions(&logits, None, 5);
        let p0 = full.iter().find(|x| x.0 == 0).unwrap().1;
        assert_eq!(t[0].1, p0);
    }

    #[test]
    fn masks_and_targets() {
        assert_eq!(
            mask_positions(&[1, 4, 7, 4, 2], 4, "[MASK]").unwrap(),
            [1, 3]
        );
        let e = mask_positions(&[1, 7, 2], 4, "[MASK]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("No mask_token ([MASK]) found on the input"),
            "{e}"
        );
        let lookup = |t: &str| match t {
            "a" => Some(10),
            "b" => Some(11),
            _ => None,
        };
        let first = |t: &str| Ok(if t == "zz" { None } else { Some(12) });
        let ids = resolve_targets(
            &[
                "b".into(),
                "a".into(),
                "b".into(),
                "xyz".into(),
                "zz".into(),
            ],
            &lookup,
            &first,
        )
        .unwrap();
        assert_eq!(ids, [11, 10, 12]);
        assert!(resolve_targets(&["zz".into()], &lookup, &first).is_err());
        assert!(resolve_targets(&[], &lookup, &first).is_err());
    }

    #[test]
    fn json_shapes() {
        let f = Fill {
            score: 0.5,
            token: 7,
            token_str: "x".into(),
            sequence: "a x.".into(),
        };
        let one = serde_json::to_string(&FillOutput::Single(vec![f.clone()])).unwrap();
        assert_eq!(
            one,
            r#"[{"score":0.5,"token":7,"token_str":"x","sequence":"a x."}]"#
        );
        let two =
            serde_json::to_string(&FillOutput::Multi(vec![vec![f.clone()], vec![f]])).unwrap();
        assert!(two.starts_with("[[{") && two.ends_with("}]]"));
    }
}
