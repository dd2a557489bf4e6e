//! `model.safetensors` through mmap (or from bytes already in memory): name resolution across Hugging Face's naming variants, and
//! checks of presence, dtype and shape before anything reaches the GPU.

use crate::ops::DType;
use crate::{Error, Result};
use safetensors::tensor::{Dtype, Metadata};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

/// Where the file's bytes live: mapped from disk, or owned (downloaded, fuzzed, embedded).
enum Bytes {
    #[cfg(not(target_arch = "wasm32"))]
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

pub struct Weights {
    path: PathBuf,
    mmap: Bytes,
    header_len: usize,
    meta: Metadata,
    /// The model prefix found in the file (`bert.`, `distilbert.`...), tried on every lookup.
    prefixes: Vec<String>,
}

/// One tensor's raw little-endian bytes and what they are.
pub struct HostTensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

impl HostTensor {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            Dtype::F32 => bytemuck::pod_collect_to_vec(&self.bytes),
            Dtype::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => self
                .bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => unreachable!("dtype checked at lookup"),
        }
    }

    /// The bytes in the GPU layout: f16 stays f16 (packed, padded to a word) when `keep_f16`;
    /// bf16 widens to f32 exactly (no shader reads bf16).
    pub fn gpu_layout(&self, keep_f16: bool) -> (DType, Vec<u8>) {
        if self.dtype == Dtype::F16 && keep_f16 {
            let mut b = self.bytes.clone();
            b.resize(b.len().next_multiple_of(4), 0);
            return (DType::F16, b);
        }
        (DType::F32, bytemuck::cast_slice(&self.to_f32()).to_vec())
    }
}

impl Weights {
    /// Maps `dir/model.safetensors` and validates its header against the file size.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(dir: &Path, prefixes: &[&str]) -> Result<Weights> {
        let path = dir.join("model.safetensors");
        if !path.exists() {
            let hint = if dir.join("pytorch_model.bin").exists() {
                "; the folder has only pytorch_model.bin: convert it to safetensors (e.g. save_pretrained(..., safe_serialization=True))"
            } else {
                ""
            };
            return Err(Error::model(dir, format!("no model.safetensors{hint}")));
        }
        let file =
            std::fs::File::open(&path).map_err(|e| Error::io(path.display().to_string(), e))?;
        // SAFETY: the file is opened read-only and not modified while mapped by this process.
        let mmap = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io(path.display().to_string(), e))?;
        Self::parse(path, Bytes::Mapped(mmap), prefixes)
    }

    /// The same checks over a safetensors file already in memory; `origin` names it in errors.
    pub fn from_bytes(origin: &str, bytes: Vec<u8>, prefixes: &[&str]) -> Result<Weights> {
        Self::parse(PathBuf::from(origin), Bytes::Owned(bytes), prefixes)
    }

    fn parse(path: PathBuf, mmap: Bytes, prefixes: &[&str]) -> Result<Weights> {
        let bad = |e: safetensors::SafeTensorError| {
            Error::model(
                &path,
                format!("model.safetensors is truncated or corrupt ({e}); download it again"),
            )
        };
        SafeTensors::deserialize(&mmap).map_err(bad)?;
        let (header_len, meta) = SafeTensors::read_metadata(&mmap).map_err(bad)?;
        Ok(Weights {
            path,
            mmap,
            header_len,
            meta,
            prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor name in the file.
    pub fn names(&self) -> Vec<String> {
        self.meta.tensors().into_keys().collect()
    }

    /// The stored dtype of the first matrix-like tensor (for reports).
    pub fn dtype_summary(&self) -> String {
        let mut seen: Vec<String> = self
            .meta
            .tensors()
            .values()
            .map(|i| format!("{:?}", i.dtype))
            .collect();
        seen.sort();
        seen.dedup();
        seen.join("+")
    }

    pub fn parameter_count(&self) -> usize {
        self.meta
            .tensors()
            .values()
            .map(|i| i.shape.iter().product::<usize>())
            .sum()
    }

    /// The stored name for `name`: as given, with or without the model prefix, with the
    /// legacy `LayerNorm.gamma/beta` spelling, and for a masked-LM head's output bias
    /// (`cls.predictions.bias`, `lm_head.bias`, `predictions.bias`) also as the decoder's bias it
    /// is tied to (`….decoder.bias`), which some checkpoints store instead.
    fn resolve(&self, name: &str) -> Option<String> {
        let mut bases = vec![name.to_string()];
        if let Some(head) = name.strip_suffix(".bias") {
            if head.ends_with("predictions") || head.ends_with("lm_head") {
                bases.push(format!("{head}.decoder.bias"));
            }
        }
        if let Some(s) = name.strip_suffix("LayerNorm.weight") {
            bases.push(format!("{s}LayerNorm.gamma"));
        }
        if let Some(s) = name.strip_suffix("LayerNorm.bias") {
            bases.push(format!("{s}LayerNorm.beta"));
        }
        for b in &bases {
            if self.meta.info(b).is_some() {
                return Some(b.clone());
            }
            for p in &self.prefixes {
                let with = format!("{p}{b}");
                if self.meta.info(&with).is_some() {
                    return Some(with);
                }
                if let Some(without) = b.strip_prefix(p.as_str()) {
                    if self.meta.info(without).is_some() {
                        return Some(without.to_string());
                    }
                }
            }
        }
        None
    }

    pub fn has(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// Checks that `name` exists with `shape` and a float dtype, without reading it.
    pub fn check(&self, name: &str, shape: &[usize]) -> Result<()> {
        let stored = self.resolve(name).ok_or_else(|| {
            Error::weight(
                name,
                format!(
                    "missing from {} (expected shape {shape:?}); is this folder the architecture its config.json says?",
                    self.path.display()
                ),
            )
        })?;
        let info = self.meta.info(&stored).unwrap();
        if info.shape != shape {
            return Err(Error::weight(
                &stored,
                format!("expected shape {shape:?}, found {:?}", info.shape),
            ));
        }
        if !matches!(info.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            return Err(Error::weight(
                &stored,
                format!(
                    "dtype {:?} is not supported (supported: F32, F16, BF16)",
                    info.dtype
                ),
            ));
        }
        Ok(())
    }

    /// Reads a checked tensor.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        self.check(name, shape)?;
        let stored = self.resolve(name).unwrap();
        let info = self.meta.info(&stored).unwrap();
        let start = 8 + self.header_len + info.data_offsets.0;
        let end = 8 + self.header_len + info.data_offsets.1;
        Ok(HostTensor {
            name: stored,
            dtype: info.dtype,
            shape: info.shape.clone(),
            bytes: self.mmap[start..end].to_vec(),
        })
    }
}
