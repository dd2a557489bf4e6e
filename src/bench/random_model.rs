//! Hugging Face BERT folders with seeded random f16 weights, written once to a cache folder and
//! loaded with [`Model::load`](crate::models::Model::load) like any download, so benchmarks of
//! standard shapes need no network and exercise the real loading path.

use crate::models::Sequence;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};

/// Standard encoder shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum RandomConfig {
    /// all-MiniLM-L6 / MiniLM-L6-H384: 6 layers, hidden 384, 12 heads, FFN 1536.
    #[value(name = "minilm-l6")]
    MiniLmL6,
    /// bert-base-uncased: 12 layers, hidden 768, 12 heads, FFN 3072.
    #[value(name = "bert-base")]
    BertBase,
}

impl RandomConfig {
    pub fn name(self) -> &'static str {
        match self {
            RandomConfig::MiniLmL6 => "minilm-l6",
            RandomConfig::BertBase => "bert-base",
        }
    }

    /// (layers, hidden, heads, intermediate)
    fn dims(self) -> (usize, usize, usize, usize) {
        match self {
            RandomConfig::MiniLmL6 => (6, 384, 12, 1536),
            RandomConfig::BertBase => (12, 768, 12, 3072),
        }
    }

    /// `config.json` of a `BertForSequenceClassification` with two labels.
    pub fn config_json(self) -> serde_json::Value {
        let (layers, hidden, heads, ff) = self.dims();
        serde_json::json!({
            "architectures": ["BertForSequenceClassification"],
            "model_type": "bert",
            "hidden_act": "gelu",
            "hidden_size": hidden,
            "num_attention_heads": heads,
            "num_hidden_layers": layers,
            "intermediate_size": ff,
            "layer_norm_eps": 1e-12,
            "max_position_embeddings": MAX_POS,
            "type_vocab_size": 2,
            "vocab_size": VOCAB,
            "pad_token_id": 0,
            "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
            "dtype": "float16",
            "wgformer_random_weights": true,
        })
    }

    /// Every tensor (name, shape, is a LayerNorm parameter) in `BertForSequenceClassification`.
    pub fn tensors(self) -> Vec<(String, Vec<usize>, Init)> {
        let (layers, h, _, ff) = self.dims();
        let mut v = vec![];
        let lin = |v: &mut Vec<(String, Vec<usize>, Init)>, p: &str, out: usize, inp: usize| {
            v.push((format!("{p}.weight"), vec![out, inp], Init::Random));
            v.push((format!("{p}.bias"), vec![out], Init::Random));
        };
        let norm = |v: &mut Vec<(String, Vec<usize>, Init)>, p: &str, n: usize| {
            v.push((format!("{p}.weight"), vec![n], Init::One));
            v.push((format!("{p}.bias"), vec![n], Init::Zero));
        };
        let e = "bert.embeddings";
        v.push((
            format!("{e}.word_embeddings.weight"),
            vec![VOCAB, h],
            Init::Random,
        ));
        v.push((
            format!("{e}.position_embeddings.weight"),
            vec![MAX_POS, h],
            Init::Random,
        ));
        v.push((
            format!("{e}.token_type_embeddings.weight"),
            vec![2, h],
            Init::Random,
        ));
        norm(&mut v, &format!("{e}.LayerNorm"), h);
        for i in 0..layers {
            let p = format!("bert.encoder.layer.{i}");
            lin(&mut v, &format!("{p}.attention.self.query"), h, h);
            lin(&mut v, &format!("{p}.attention.self.key"), h, h);
            lin(&mut v, &format!("{p}.attention.self.value"), h, h);
            lin(&mut v, &format!("{p}.attention.output.dense"), h, h);
            norm(&mut v, &format!("{p}.attention.output.LayerNorm"), h);
            lin(&mut v, &format!("{p}.intermediate.dense"), ff, h);
            lin(&mut v, &format!("{p}.output.dense"), h, ff);
            norm(&mut v, &format!("{p}.output.LayerNorm"), h);
        }
        lin(&mut v, "bert.pooler.dense", h, h);
        lin(&mut v, "classifier", 2, h);
        v
    }

    /// The folder for this shape under the cache (written on first use).
    pub fn dir(self) -> Result<PathBuf> {
        let root = super::ceilings::cache_dir()
            .unwrap_or_else(|| std::env::temp_dir().join("wgformer"))
            .join(format!("random-{}-seed{SEED}", self.name()));
        self.write(&root)?;
        Ok(root)
    }

    /// Writes `config.json` and `model.safetensors` into `dir` unless a complete copy is there.
    pub fn write(self, dir: &Path) -> Result<()> {
        let config = dir.join("config.json");
        let weights = dir.join("model.safetensors");
        // config.json is written last, so its presence marks a complete folder.
        if config.is_file() && weights.is_file() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
        let mut data: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
        for (name, shape, init) in self.tensors() {
            let n: usize = shape.iter().product();
            let vals: Vec<half::f16> = (0..n)
                .map(|_| {
                    half::f16::from_f32(match init {
                        // BERT's initializer_range: keeps activations in range through the layers.
                        Init::Random => rng.random_range(-0.035f32..0.035),
                        Init::One => 1.0,
                        Init::Zero => 0.0,
                    })
                })
                .collect();
            data.push((name, shape, bytemuck::cast_slice(&vals).to_vec()));
        }
        let views = data
            .iter()
            .map(|(name, shape, bytes)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| Error::weight(name, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize_to_file(views, None, &weights)
            .map_err(|e| Error::model(dir, format!("writing model.safetensors: {e}")))?;
        let text = serde_json::to_string_pretty(&self.config_json())
            .map_err(|e| Error::model(dir, e.to_string()))?;
        std::fs::write(&config, text)
            .map_err(|e| Error::io(format!("writing {}", config.display()), e))?;
        Ok(())
    }
}

/// How a random tensor is filled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    Random,
    One,
    Zero,
}

const VOCAB: usize = 30522;
const MAX_POS: usize = 512;
const SEED: u64 = 20240601;

/// `batch` rows of exactly `seq` valid token ids: `[CLS]` (101) first, `[SEP]` (102) last where
/// the vocabulary has them, seeded random ids between.
pub fn random_rows(batch: usize, seq: usize, vocab: usize, seed: u64) -> Result<Vec<Sequence>> {
    if batch == 0 || seq == 0 {
        return Err(Error::Input(format!(
            "--batch and --seq must be at least 1 (got {batch} and {seq})"
        )));
    }
    if vocab < 2 {
        return Err(Error::Input(format!(
            "a vocabulary of {vocab} ids is too small"
        )));
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Skip the special/unused ids at the start of BERT vocabularies where the vocab is large.
    let lo = if vocab > 2000 { 1000 } else { 1 };
    Ok((0..batch)
        .map(|_| {
            let mut ids: Vec<u32> = (0..seq)
                .map(|_| rng.random_range(lo..vocab) as u32)
                .collect();
            if vocab > 102 {
                ids[0] = 101;
                if seq > 1 {
                    ids[seq - 1] = 102;
                }
            }
            Sequence::new(ids)
        })
        .collect())
}
