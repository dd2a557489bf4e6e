//! The small files of a model folder (tokenizer, pooling and config JSON), read from disk or from
//! contents already in memory (the browser downloads them), so one loader serves both.

use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A model folder's files: a directory, or named contents with the origin (a URL) they came from.
pub enum ModelFiles {
    Dir(PathBuf),
    Memory {
        origin: PathBuf,
        files: HashMap<String, Vec<u8>>,
    },
}

impl ModelFiles {
    pub fn dir(dir: &Path) -> ModelFiles {
        ModelFiles::Dir(dir.to_path_buf())
    }

    /// Files by their path in the folder (`tokenizer.json`, `1_Pooling/config.json`...); a file
    /// that is not listed is absent. `origin` names the folder in errors.
    pub fn memory(origin: &str, files: impl IntoIterator<Item = (String, Vec<u8>)>) -> ModelFiles {
        ModelFiles::Memory {
            origin: PathBuf::from(origin),
            files: files.into_iter().collect(),
        }
    }

    /// The folder (or origin) errors name.
    pub fn root(&self) -> &Path {
        match self {
            ModelFiles::Dir(d) => d,
            ModelFiles::Memory { origin, .. } => origin,
        }
    }

    /// Where `rel` is, for messages.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// The bytes of `rel`, `None` when the folder has no such file.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>> {
        match self {
            ModelFiles::Dir(d) => {
                let p = d.join(rel);
                if !p.is_file() {
                    return Ok(None);
                }
                std::fs::read(&p)
                    .map(Some)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))
            }
            ModelFiles::Memory { files, .. } => Ok(files.get(rel).cloned()),
        }
    }

    /// `rel` parsed as JSON: `None` when absent, an error naming it when invalid.
    pub fn read_json(&self, rel: &str) -> Result<Option<serde_json::Value>> {
        let Some(bytes) = self.read(rel)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::model(self.path(rel), format!("not valid JSON: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_files_read_absent_and_invalid() {
        let f = ModelFiles::memory(
            "/models/m",
            [
                ("config.json".to_string(), br#"{"a": 1}"#.to_vec()),
                ("1_Pooling/config.json".to_string(), b"{broken".to_vec()),
            ],
        );
        assert_eq!(f.read_json("config.json").unwrap().unwrap()["a"], 1);
        assert!(f.read("tokenizer.json").unwrap().is_none());
        assert!(f.read_json("modules.json").unwrap().is_none());
        let e = f
            .read_json("1_Pooling/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/models/m/1_Pooling/config.json") && e.contains("not valid JSON"),
            "{e}"
        );
    }
}
