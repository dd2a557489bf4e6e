//! Sentence embeddings the sentence-transformers way: pool a row's token vectors (mean, CLS or
//! max over the real tokens), then optionally L2-normalise.

use crate::models::files::ModelFiles;
use std::path::Path;

use serde_json::Value;

use crate::{Error, Result};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Average over the real (unpadded) tokens.
    Mean,
    /// The first token (`[CLS]` / `<s>`).
    Cls,
    /// Per-dimension maximum over the real tokens.
    Max,
}

/// Pooling and normalisation of a sentence-transformers model folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolingConfig {
    pub pooling: Pooling,
    /// L2-normalise the pooled vector (a `Normalize` module in `modules.json`).
    pub normalize: bool,
}

impl Default for PoolingConfig {
    /// Mean pooling without normalisation: what sentence-transformers builds for a plain
    /// Hugging Face folder that has no `modules.json`.
    fn default() -> Self {
        PoolingConfig {
            pooling: Pooling::Mean,
            normalize: false,
        }
    }
}

impl PoolingConfig {
    /// Reads `modules.json` and the pooling module's `config.json` (usually `1_Pooling/`).
    ///
    /// Without `modules.json` the folder is a plain Hugging Face model: mean pooling, no
    /// normalisation (from `1_Pooling/config.json` if that alone exists). Modules wgformer cannot
    /// reproduce (Dense, ...) and pooling modes other than mean, CLS and max are errors rather than
    /// silently different embeddings.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::from_files(&ModelFiles::dir(dir))
    }

    /// As [`load`](Self::load), from a folder on disk or its files in memory.
    pub fn from_files(dir: &ModelFiles) -> Result<Self> {
        let modules_path = dir.path("modules.json");
        let Some(modules) = dir.read_json("modules.json")? else {
            let pooling_cfg = dir.path("1_Pooling/config.json");
            return Ok(PoolingConfig {
                pooling: match dir.read_json("1_Pooling/config.json")? {
                    Some(cfg) => pooling_from_config(&pooling_cfg, &cfg)?,
                    None => Pooling::Mean,
                },
                normalize: false,
            });
        };
        let list = modules
            .as_array()
            .ok_or_else(|| Error::model(&modules_path, "expected a JSON list of modules"))?;
        let mut pooling = None;
        let mut normalize = false;
        for m in list {
            let ty = m.get("type").and_then(Value::as_str).ok_or_else(|| {
                Error::model(
                    &modules_path,
                    format!("module without a string `type`: {m}"),
                )
            })?;
            // "sentence_transformers.models.Pooling": the class name is what matters.
            match ty.rsplit('.').next().unwrap_or(ty) {
                "Transformer" => {}
                "Normalize" => normalize = true,
                "Pooling" => {
                    let sub = m.get("path").and_then(Value::as_str).unwrap_or("1_Pooling");
                    let rel = format!("{}/config.json", sub.trim_end_matches('/'));
                    let cfg_path = dir.path(&rel);
                    let cfg = dir.read_json(&rel)?.ok_or_else(|| {
                        Error::model(
                            dir.root(),
                            format!(
                                "modules.json lists a Pooling module but {} is missing; copy the \
                                 model's pooling folder too",
                                cfg_path.display()
                            ),
                        )
                    })?;
                    pooling = Some(pooling_from_config(&cfg_path, &cfg)?);
                }
                other => {
                    return Err(Error::model(
                        &modules_path,
                        format!(
                            "module `{ty}` ({other}) is not supported: wgformer runs Transformer, \
                             Pooling and Normalize only, so its embeddings would differ"
                        ),
                    ))
                }
            }
        }
        Ok(PoolingConfig {
            pooling: pooling.unwrap_or(Pooling::Mean),
            normalize,
        })
    }
}

/// The settings of `sentence_bert_config.json` that change the tokens sentence-transformers'
/// `Transformer` module feeds the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SentenceBertConfig {
    /// `max_seq_length`: the truncation length, passed to the tokenizer as `max_length` (e.g.
    /// 256 for all-MiniLM-L6-v2); `None` when the file or the key is absent.
    pub max_seq_length: Option<usize>,
    /// `do_lower_case`: every text is lower-cased (Python's `str.lower`) before tokenizing.
    pub do_lower_case: bool,
}

impl SentenceBertConfig {
    /// Reads `sentence_bert_config.json`; a folder without one gets the defaults (no length,
    /// no lower-casing), as sentence-transformers builds for a plain Hugging Face model.
    pub fn from_files(dir: &ModelFiles) -> Result<Self> {
        let path = dir.path("sentence_bert_config.json");
        let Some(cfg) = dir.read_json("sentence_bert_config.json")? else {
            return Ok(Self::default());
        };
        let max_seq_length = match cfg.get("max_seq_length") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n as usize),
                _ => {
                    return Err(Error::model(
                        &path,
                        format!("`max_seq_length` must be a positive integer, found {v}"),
                    ))
                }
            },
        };
        let do_lower_case = match cfg.get("do_lower_case") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(Error::model(
                    &path,
                    format!("`do_lower_case` must be true or false, found {v}"),
                ))
            }
        };
        Ok(SentenceBertConfig {
            max_seq_length,
            do_lower_case,
        })
    }
}

/// A text as sentence-transformers' `Transformer.tokenize` hands it to the tokenizer:
/// `str(s).strip()`, then `.lower()` when `do_lower_case`. Python's `strip()` removes what
/// `str.isspace` calls whitespace: Unicode's White_Space plus U+001C..U+001F (bidi B/S), which
/// Rust's `trim` keeps. `to_lowercase` is Python's `lower` (full mappings, final sigma).
pub fn st_preprocess(text: &str, do_lower_case: bool) -> String {
    let stripped =
        text.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
    if do_lower_case {
        stripped.to_lowercase()
    } else {
        stripped.to_owned()
    }
}

fn pooling_from_config(path: &Path, cfg: &Value) -> Result<Pooling> {
    let on = |key: &str| cfg.get(key).and_then(Value::as_bool).unwrap_or(false);
    for key in [
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    ] {
        if on(key) {
            return Err(Error::model(
                path,
                format!("`{key}` is not supported: wgformer pools by mean, CLS or max only"),
            ));
        }
    }
    let modes: Vec<Pooling> = [
        ("pooling_mode_mean_tokens", Pooling::Mean),
        ("pooling_mode_cls_token", Pooling::Cls),
        ("pooling_mode_max_tokens", Pooling::Max),
    ]
    .into_iter()
    .filter(|(k, _)| on(k))
    .map(|(_, p)| p)
    .collect();
    match modes.as_slice() {
        [p] => Ok(*p),
        [] => Err(Error::model(
            path,
            "no pooling mode is on: set one of pooling_mode_mean_tokens, pooling_mode_cls_token, \
             pooling_mode_max_tokens to true",
        )),
        _ => Err(Error::model(
            path,
            "several pooling modes are on (sentence-transformers would concatenate them): \
             wgformer supports exactly one",
        )),
    }
}

/// Pools one row of hidden states `hidden` (row-major, `[tokens, dim]`, possibly padded) over its
/// first `len` tokens, the real ones, and L2-normalises if `cfg` says so.
///
/// Computed in f64, returned as f32. Mean divides by `max(len, 1e-9)` and max fills with `-1e9`
/// like sentence-transformers, so an empty row gives zeros (mean) or `-1e9` (max) instead of NaN.
/// Normalisation divides by `max(‖v‖, 1e-12)` like torch's `F.normalize`. `len` beyond the rows
/// present is cut to `hidden.len() / dim`; `dim == 0` gives an empty vector.
pub fn pool(hidden: &[f32], len: usize, dim: usize, cfg: &PoolingConfig) -> Vec<f32> {
    if dim == 0 {
        return Vec::new();
    }
    let len = len.min(hidden.len() / dim);
    let rows = hidden[..len * dim].chunks_exact(dim);
    let mut v: Vec<f64> = match cfg.pooling {
        Pooling::Mean => {
            let mut sum = vec![0f64; dim];
            for row in rows {
                for (s, &x) in sum.iter_mut().zip(row) {
                    *s += x as f64;
                }
            }
            let n = (len as f64).max(1e-9);
            sum.into_iter().map(|s| s / n).collect()
        }
        Pooling::Max => {
            let mut max = vec![-1e9f64; dim];
            for row in rows {
                for (m, &x) in max.iter_mut().zip(row) {
                    *m = m.max(x as f64);
                }
            }
            max
        }
        // The first token counts even in a row marked empty, as in sentence-transformers.
        Pooling::Cls => match hidden.get(..dim) {
            Some(first) => first.iter().map(|&x| x as f64).collect(),
            None => vec![0.0; dim],
        },
    };
    if cfg.normalize {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v.into_iter().map(|x| x as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values are what Python gives for `s.strip()` and `s.strip().lower()`.
    #[test]
    fn st_preprocess_is_python_strip_then_lower() {
        let cases = [
            ("  Hello World \n", "Hello World", "hello world"),
            ("\u{1c}\u{1d}x\u{1e}\u{1f}", "x", "x"),
            ("\u{a0}\u{3000}\u{2028}Ab\u{85}\t\u{b}\u{c}\r", "Ab", "ab"),
            // Not whitespace for Python: zero-width space and U+180E stay.
            (
                "\u{200b}A\u{180e}",
                "\u{200b}A\u{180e}",
                "\u{200b}a\u{180e}",
            ),
            ("ΟΔΟΣ İ", "ΟΔΟΣ İ", "οδος i\u{307}"),
            ("   ", "", ""),
        ];
        for (text, stripped, lowered) in cases {
            assert_eq!(st_preprocess(text, false), stripped, "{text:?}");
            assert_eq!(st_preprocess(text, true), lowered, "{text:?} lowered");
        }
    }

    fn cfg(pooling: Pooling, normalize: bool) -> PoolingConfig {
        PoolingConfig { pooling, normalize }
    }

    // 3 real tokens + 1 padding row, dim 2.
    const H: [f32; 8] = [1.0, -2.0, 3.0, 4.0, -0.5, 0.25, 100.0, 100.0];

    #[test]
    fn mean_cls_max_against_hand_values() {
        let close = |a: &[f32], b: &[f64]| {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((*x as f64 - y).abs() < 1e-7, "{a:?} vs {b:?}");
            }
        };
        close(
            &pool(&H, 3, 2, &cfg(Pooling::Mean, false)),
            &[3.5 / 3.0, 2.25 / 3.0],
        );
        close(&pool(&H, 3, 2, &cfg(Pooling::Max, false)), &[3.0, 4.0]);
        close(&pool(&H, 3, 2, &cfg(Pooling::Cls, false)), &[1.0, -2.0]);
        let (a, b) = (3.5f64 / 3.0, 2.25f64 / 3.0);
        let n = (a * a + b * b).sqrt();
        close(&pool(&H, 3, 2, &cfg(Pooling::Mean, true)), &[a / n, b / n]);
        close(&pool(&H, 3, 2, &cfg(Pooling::Max, true)), &[0.6, 0.8]);
        // The padding row only counts when it is inside len.
        close(&pool(&H, 4, 2, &cfg(Pooling::Max, false)), &[100.0, 100.0]);
    }

    #[test]
    fn degenerate_rows_give_no_nan() {
        let zero = [0f32; 4];
        assert_eq!(pool(&zero, 2, 2, &cfg(Pooling::Mean, true)), vec![0.0, 0.0]);
        assert_eq!(pool(&H, 0, 2, &cfg(Pooling::Mean, false)), vec![0.0, 0.0]);
        assert_eq!(pool(&H, 0, 2, &cfg(Pooling::Max, false)), vec![-1e9, -1e9]);
        assert_eq!(pool(&H, 9, 2, &cfg(Pooling::Mean, false)).len(), 2);
        assert!(pool(&H, 3, 0, &cfg(Pooling::Mean, false)).is_empty());
    }

    /// Mean over many f32 values that f32 accumulation would get visibly wrong.
    #[test]
    fn mean_is_accumulated_in_f64() {
        let n = 100_000usize;
        let hidden: Vec<f32> = (0..n).map(|i| if i == 0 { 1e8 } else { 1.0 }).collect();
        let want = (1e8 + (n - 1) as f64) / n as f64;
        let got = pool(&hidden, n, 1, &cfg(Pooling::Mean, false))[0] as f64;
        assert!((got - want).abs() / want < 1e-7, "{got} vs {want}");
    }

    fn tmp_dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("wgformer-embed-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
        d
    }

    #[test]
    fn load_reads_modules_and_pooling() {
        let d = tmp_dir("st");
        // No modules.json at all: the documented default.
        assert_eq!(PoolingConfig::load(&d).unwrap(), PoolingConfig::default());
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        // Listed pooling module without its config: an error naming the file.
        let e = PoolingConfig::load(&d).unwrap_err().to_string();
        assert!(e.contains("1_Pooling"), "{e}");
        let write_pool = |mean: bool, cls: bool, max: bool| {
            std::fs::write(
                d.join("1_Pooling/config.json"),
                format!(
                    r#"{{"word_embedding_dimension":384,"pooling_mode_cls_token":{cls},
                    "pooling_mode_mean_tokens":{mean},"pooling_mode_max_tokens":{max},
                    "pooling_mode_mean_sqrt_len_tokens":false}}"#
                ),
            )
            .unwrap();
        };
        write_pool(true, false, false);
        assert_eq!(PoolingConfig::load(&d).unwrap(), cfg(Pooling::Mean, true));
        write_pool(false, true, false);
        assert_eq!(PoolingConfig::load(&d).unwrap(), cfg(Pooling::Cls, true));
        write_pool(false, false, true);
        assert_eq!(PoolingConfig::load(&d).unwrap(), cfg(Pooling::Max, true));
        write_pool(true, false, true);
        assert!(PoolingConfig::load(&d)
            .unwrap_err()
            .to_string()
            .contains("several"));
        write_pool(false, false, false);
        assert!(PoolingConfig::load(&d).is_err());
        std::fs::write(
            d.join("modules.json"),
            r#"[{"type":"sentence_transformers.models.Transformer","path":""},
                {"type":"sentence_transformers.models.Dense","path":"2_Dense"}]"#,
        )
        .unwrap();
        assert!(PoolingConfig::load(&d)
            .unwrap_err()
            .to_string()
            .contains("Dense"));
        std::fs::write(d.join("modules.json"), "{not json").unwrap();
        assert!(PoolingConfig::load(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn sentence_max_seq_length_reads_config() {
        let d = tmp_dir("len");
        assert_eq!(
            SentenceBertConfig::from_files(&ModelFiles::dir(&d))
                .unwrap()
                .max_seq_length,
            None
        );
        std::fs::write(
            d.join("sentence_bert_config.json"),
            r#"{"max_seq_length": 256, "do_lower_case": false}"#,
        )
        .unwrap();
        assert_eq!(
            SentenceBertConfig::from_files(&ModelFiles::dir(&d))
                .unwrap()
                .max_seq_length,
            Some(256)
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
