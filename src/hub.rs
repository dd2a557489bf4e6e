//! `--model` resolution: a local Hugging Face folder, or a hub id downloaded once into the
//! Hugging Face cache (`HF_HOME`, `~/.cache/huggingface`) and reused offline afterwards.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// What the pipeline's default models are, as in transformers.
pub const DEFAULT_QA_MODEL: &str = "distilbert/distilbert-base-cased-distilled-squad";
pub const DEFAULT_CLASSIFY_MODEL: &str =
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english";
pub const DEFAULT_EMBED_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";

const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
const OPTIONAL: [&str; 5] = [
    "tokenizer_config.json",
    "special_tokens_map.json",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
];

/// A local folder as is; otherwise `org/name` from the hub (cache first; `HF_HUB_OFFLINE` or
/// `TRANSFORMERS_OFFLINE` set to 1, true, yes or on forbids the network).
pub fn resolve(model: &str) -> Result<PathBuf> {
    let local = Path::new(model);
    if local.is_dir() {
        return Ok(local.to_path_buf());
    }
    if local.exists()
        || model.starts_with('.')
        || model.starts_with('/')
        || model.matches('/').count() > 1
    {
        return Err(Error::model(
            local,
            "not a folder (a local model folder holds config.json, model.safetensors and tokenizer.json; a hub id is org/name)",
        ));
    }
    let offline = env_flag("HF_HUB_OFFLINE") || env_flag("TRANSFORMERS_OFFLINE");
    let cache = hf_hub::Cache::from_env().model(model.to_string());
    if let Some(cfg) = REQUIRED
        .iter()
        .map(|f| cache.get(f))
        .collect::<Option<Vec<_>>>()
        .and_then(|paths| paths.into_iter().next())
    {
        return Ok(cfg
            .parent()
            .expect("cached file has a folder")
            .to_path_buf());
    }
    if offline {
        return Err(Error::model(
            model,
            "not in the Hugging Face cache and HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: download it once with network access, or pass --model <local folder>",
        ));
    }
    let api = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(|e| Error::model(model, format!("cannot reach the Hugging Face hub: {e}")))?;
    let repo = api.model(model.to_string());
    let mut folder = None;
    for f in REQUIRED {
        let p = repo.get(f).map_err(|e| {
            Error::model(
                model,
                format!(
                    "could not download {f} from the Hugging Face hub ({e}); check the model id and your network, or pass --model <local folder>"
                ),
            )
        })?;
        folder = p.parent().map(Path::to_path_buf);
    }
    for f in OPTIONAL {
        // Absent optional files are normal (a plain classifier has no pooling config).
        let _ = repo.get(f);
    }
    folder.ok_or_else(|| Error::model(model, "download produced no files"))
}

/// Whether the boolean environment variable `name` is set to a value huggingface_hub reads as
/// true.
fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| truthy(&v))
}

/// huggingface_hub's truthy values: `1`, `ON`, `YES`, `TRUE`, in any case.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_folders_pass_through_and_bad_paths_are_named() {
        let here = env!("CARGO_MANIFEST_DIR");
        assert_eq!(resolve(here).unwrap(), PathBuf::from(here));
        let e = resolve("./no/such/folder").unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
    }

    #[test]
    fn offline_hub_id_is_a_clear_error() {
        // The hub is unreachable here and in CI: the error must say what to do.
        std::env::set_var(
            "HF_HOME",
            std::env::temp_dir().join("wgformer-empty-hf-home"),
        );
        std::env::set_var("HF_HUB_OFFLINE", "1");
        let e = resolve("someone/some-model").unwrap_err().to_string();
        assert!(e.contains("HF_HUB_OFFLINE") && e.contains("--model"), "{e}");
    }

    #[test]
    fn offline_flags_read_like_huggingface_hub() {
        for v in ["1", "true", "True", "TRUE", "on", "ON", "yes", "Yes", " 1 "] {
            assert!(truthy(v), "{v:?}");
        }
        for v in ["", "0", "false", "off", "no", "2", "y"] {
            assert!(!truthy(v), "{v:?}");
        }
    }
}
