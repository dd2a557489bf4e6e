//! Bad model folders: each is refused before any GPU work, with a message that names what is wrong
//! and what would be right. Every folder is a copy of `tiny-bert` in a temporary directory, edited
//! there (config.json rewritten, model.safetensors re-serialised or cut short); `shared/` is never
//! touched. The same folders through `wgformer info` give the same messages.

mod common;
use common::*;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use wgformer::models::Model;

/// A copy of a tiny fixture in its own temporary folder, removed on drop.
struct TempModel(PathBuf);

impl TempModel {
    fn copy_of(name: &str) -> TempModel {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wgformer-model-errors-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            name.replace('/', "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A bare name is a `tiny/` model; `tiny2/NAME` one of the second wave.
        let src = match name.strip_prefix("tiny2/") {
            Some(n) => shared().join("fixtures/tiny2").join(n),
            None => shared().join("fixtures/tiny").join(name),
        };
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        TempModel(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Edits config.json as JSON.
    fn config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let p = self.0.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        edit(&mut v);
        std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    /// Re-serialises model.safetensors: `edit` sees every tensor and returns its replacement
    /// (`None` drops it).
    fn tensors(
        &self,
        edit: impl Fn(&str, Dtype, &[usize], &[u8]) -> Option<(Dtype, Vec<usize>, Vec<u8>)>,
    ) {
        let p = self.0.join("model.safetensors");
        let bytes = std::fs::read(&p).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let kept: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .filter_map(|(name, t)| {
                edit(&name, t.dtype(), t.shape(), t.data()).map(|(d, s, b)| (name, d, s, b))
            })
            .collect();
        let views: Vec<(String, TensorView)> = kept
            .iter()
            .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &p).unwrap();
    }
}

impl Drop for TempModel {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The error `Model::load` gives for `dir` (it must fail).
fn load_error(dir: &Path) -> String {
    match Model::load(dir, &gpu()) {
        Ok(_) => panic!("{} loaded but should not have", dir.display()),
        Err(e) => e.to_string(),
    }
}

/// `wgformer info --model dir`: (success, stdout, stderr).
fn info(dir: &Path, json: bool) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgformer"));
    cmd.arg("info").arg("--model").arg(dir);
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Both `Model::load` and `wgformer info` refuse `dir`, and every `needle` is in both messages.
fn refused_with(dir: &Path, needles: &[&str]) -> String {
    let e = load_error(dir);
    for n in needles {
        assert!(e.contains(n), "load error lacks `{n}`: {e}");
    }
    let (ok, _, stderr) = info(dir, false);
    assert!(!ok, "info accepted {}", dir.display());
    for n in needles {
        assert!(stderr.contains(n), "info error lacks `{n}`: {stderr}");
    }
    e
}

const KEY: &str = "bert.encoder.layer.1.attention.self.key.weight";
const FF_IN: &str = "bert.encoder.layer.0.intermediate.dense.weight";
const NORM: &str = "bert.encoder.layer.0.output.LayerNorm.weight";

#[test]
fn the_unedited_copy_loads() {
    let m = TempModel::copy_of("tiny-bert");
    Model::load(m.path(), &gpu()).unwrap();
    let (ok, stdout, stderr) = info(m.path(), false);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("BertForSequenceClassification"), "{stdout}");
}

#[test]
fn missing_tensor_is_named() {
    let m = TempModel::copy_of("tiny-bert");
    m.tensors(|name, d, s, b| (name != KEY).then(|| (d, s.to_vec(), b.to_vec())));
    let e = refused_with(m.path(), &[KEY, "missing", "[32, 32]"]);
    assert!(e.contains("expected shape [32, 32]"), "{e}");
}

#[test]
fn wrong_shape_names_tensor_expected_and_found() {
    let m = TempModel::copy_of("tiny-bert");
    // [64, 32] → [32, 32]: keep the first half of the rows.
    m.tensors(|name, d, s, b| {
        Some(if name == FF_IN {
            (d, vec![32, 32], b[..b.len() / 2].to_vec())
        } else {
            (d, s.to_vec(), b.to_vec())
        })
    });
    refused_with(
        m.path(),
        &[FF_IN, "expected shape [64, 32]", "found [32, 32]"],
    );
}

#[test]
fn integer_tensor_where_a_float_is_expected() {
    let m = TempModel::copy_of("tiny-bert");
    m.tensors(|name, d, s, b| {
        Some(if name == NORM {
            let ints: Vec<i64> = (0..s.iter().product::<usize>() as i64).collect();
            (Dtype::I64, s.to_vec(), bytemuck::cast_slice(&ints).to_vec())
        } else {
            (d, s.to_vec(), b.to_vec())
        })
    });
    refused_with(m.path(), &[NORM, "I64", "supported: F32, F16, BF16"]);
}

#[test]
fn truncated_safetensors() {
    let m = TempModel::copy_of("tiny-bert");
    let p = m.path().join("model.safetensors");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() - 1000]).unwrap();
    refused_with(
        m.path(),
        &[
            "model.safetensors",
            "truncated or corrupt",
            "download it again",
        ],
    );
    // Cut inside the header too.
    std::fs::write(&p, &bytes[..100]).unwrap();
    refused_with(m.path(), &["truncated or corrupt"]);
}

#[test]
fn missing_safetensors_and_pytorch_only_folders() {
    let m = TempModel::copy_of("tiny-bert");
    std::fs::remove_file(m.path().join("model.safetensors")).unwrap();
    let e = refused_with(m.path(), &["no model.safetensors"]);
    assert!(!e.contains("pytorch_model.bin"), "{e}");
    std::fs::write(m.path().join("pytorch_model.bin"), b"not really").unwrap();
    refused_with(
        m.path(),
        &[
            "no model.safetensors",
            "pytorch_model.bin",
            "safe_serialization",
        ],
    );
}

#[test]
fn unknown_model_type_names_what_is_supported() {
    let m = TempModel::copy_of("tiny-bert");
    m.config(|v| v["model_type"] = "gpt2".into());
    refused_with(
        m.path(),
        &[
            "model_type `gpt2` is not supported",
            "supported: bert, distilbert, roberta",
        ],
    );
    m.config(|v| {
        v.as_object_mut().unwrap().remove("model_type");
    });
    refused_with(m.path(), &["no `model_type`"]);
}

#[test]
fn unsupported_architectures_are_named() {
    let m = TempModel::copy_of("tiny-bert");
    for (model_type, arch) in [
        ("t5", "T5EncoderModel"),
        ("xlnet", "XLNetForSequenceClassification"),
    ] {
        m.config(|v| {
            v["model_type"] = model_type.into();
            v["architectures"] = serde_json::json!([arch]);
        });
        refused_with(
            m.path(),
            &[
                &format!("model_type `{model_type}` is not supported"),
                "electra, albert",
            ],
        );
    }
    // A supported family with a head wgformer does not run.
    m.config(|v| {
        v["model_type"] = "bert".into();
        v["architectures"] = serde_json::json!(["BertForMultipleChoice"]);
    });
    refused_with(
        m.path(),
        &["BertForMultipleChoice", "ForTokenClassification"],
    );
}

#[test]
fn missing_or_broken_config() {
    let m = TempModel::copy_of("tiny-bert");
    let cfg = m.path().join("config.json");
    std::fs::remove_file(&cfg).unwrap();
    refused_with(m.path(), &["cannot read config.json", "needs config.json"]);
    std::fs::write(&cfg, "{\"model_type\": \"bert\",").unwrap();
    refused_with(m.path(), &["config.json is not valid JSON"]);
    let missing = m.path().join("no-such-model");
    refused_with(&missing, &["not a folder"]);
}

#[test]
fn config_that_disagrees_with_the_weights() {
    // A vocabulary the file does not have: the table is named with both shapes.
    let m = TempModel::copy_of("tiny-bert");
    m.config(|v| v["vocab_size"] = 999.into());
    refused_with(
        m.path(),
        &[
            "word_embeddings",
            "expected shape [999, 32]",
            "found [1000, 32]",
        ],
    );
}

/// `wgformer info` on each tiny family: text and JSON.
#[test]
fn info_describes_every_tiny_family() {
    let tiny = shared().join("fixtures/tiny");
    for (name, family, dtype, embedding, runs) in [
        ("tiny-bert", "Bert", "F32", 32, "f32 weights"),
        ("tiny-bert-bf16", "Bert", "BF16", 32, "bf16 weights widened"),
        ("tiny-distilbert", "DistilBert", "F32", 32, "f32 weights"),
        ("tiny-roberta", "Roberta", "F32", 32, "f32 weights"),
        (
            "tiny-xlm-roberta",
            "Roberta",
            "F16",
            32,
            "f16 weights read as f16",
        ),
        ("tiny-electra", "Electra", "F32", 16, "f32 weights"),
        ("tiny-albert", "Albert", "F32", 16, "f32 weights"),
    ] {
        let (ok, stdout, stderr) = info(&tiny.join(name), true);
        assert!(ok, "{name}: {stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["family"], family, "{name}");
        assert_eq!(v["stored_dtype"], dtype, "{name}");
        assert_eq!(v["head"], "SequenceClassification", "{name}");
        assert_eq!(v["sizes"]["layers"], 2, "{name}");
        assert_eq!(v["sizes"]["hidden"], 32, "{name}");
        assert_eq!(v["sizes"]["heads"], 4, "{name}");
        assert_eq!(v["sizes"]["embedding"], embedding, "{name}");
        assert_eq!(v["sizes"]["vocab"], 1000, "{name}");
        assert_eq!(v["labels"], serde_json::json!(["A", "B", "C"]), "{name}");
        assert!(v["parameters"].as_u64().unwrap() > 10_000, "{name}");
        let r = v["runs_as"].as_str().unwrap();
        assert!(
            r.contains(runs) && r.contains("f32 accumulation"),
            "{name}: {r}"
        );
        let (ok, text, _) = info(&tiny.join(name), false);
        assert!(ok);
        for needle in [
            "architecture",
            "parameters",
            "labels        A, B, C",
            "runs as",
        ] {
            assert!(text.contains(needle), "{name}: no `{needle}` in\n{text}");
        }
    }
    // RoBERTa reserves pad + 1 positions; ALBERT reports its shared groups.
    let (_, stdout, _) = info(&tiny.join("tiny-roberta"), true);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sizes"]["max_positions"], 66);
    assert_eq!(v["sizes"]["max_sequence"], 64);
    let (_, stdout, _) = info(&tiny.join("tiny-albert"), true);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["sizes"]["hidden_groups"], 1);
}

/// DeBERTa settings wgformer does not run are refused by name (the fixture's v3 settings
/// load); unshared keys and another bucket count name the tensors they would need.
#[test]
fn deberta_settings_outside_v3_are_refused_by_name() {
    let m = TempModel::copy_of("tiny2/tiny-deberta-v2");
    Model::load(m.path(), &gpu()).unwrap();
    let cases: [(&str, serde_json::Value, &[&str]); 5] = [
        (
            "conv_kernel_size",
            3.into(),
            &["conv_kernel_size", "not supported"],
        ),
        (
            "embedding_size",
            16.into(),
            &["embedding_size", "16", "hidden_size"],
        ),
        (
            "pos_att_type",
            serde_json::json!(["c2p", "p2p"]),
            &["`p2p`", "c2p, p2c"],
        ),
        ("pos_att_type", "p2c|c2p|p2p".into(), &["`p2p`"]),
        (
            "pooler_hidden_act",
            "swish".into(),
            &["pooler_hidden_act", "swish"],
        ),
    ];
    for (key, value, needles) in cases {
        let m = TempModel::copy_of("tiny2/tiny-deberta-v2");
        m.config(|v| v[key] = value.clone());
        refused_with(m.path(), needles);
    }
    // Unshared keys need each layer's own position projections: named when absent.
    let m = TempModel::copy_of("tiny2/tiny-deberta-v2");
    m.config(|v| v["share_att_key"] = false.into());
    refused_with(m.path(), &["attention.self.pos_query_proj.weight"]);
    // Relative embeddings sized for other settings are named with the shape expected.
    let m = TempModel::copy_of("tiny2/tiny-deberta-v2");
    m.config(|v| v["position_buckets"] = 8.into());
    refused_with(m.path(), &["rel_embeddings", "16"]);
}

/// transformers runs `position_embedding_type` relative_key / relative_key_query (distance
/// embeddings in attention) for BERT, RoBERTa, ELECTRA and ALBERT; wgformer runs absolute
/// positions only, so those configs are refused, naming the setting; "absolute" still loads.
#[test]
fn relative_position_embedding_types_are_refused() {
    for name in ["tiny-bert", "tiny-roberta", "tiny-electra", "tiny-albert"] {
        let m = TempModel::copy_of(name);
        for kind in ["relative_key", "relative_key_query"] {
            m.config(|v| v["position_embedding_type"] = kind.into());
            refused_with(
                m.path(),
                &["`position_embedding_type`", kind, "only \"absolute\""],
            );
        }
        m.config(|v| v["position_embedding_type"] = "absolute".into());
        Model::load(m.path(), &gpu()).unwrap_or_else(|e| panic!("{name} absolute: {e}"));
    }
}
