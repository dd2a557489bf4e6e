//! The token-classification and masked-LM heads on the tiny2 models: every layer's hidden state
//! and the logits of each golden model wgformer runs (the NER models: per-token logits) against
//! transformers' goldens on a right-padded batch, and the masked-LM head on selected tokens equal
//! to the same head on every token.

mod common;
mod tiny2_util;
use common::*;
use tiny2_util::*;
use wgformer::models::config::HeadKind;
use wgformer::models::{Model, Readback, Sequence};

#[test]
fn tiny2_models_match_golden_hidden_states_and_logits() {
    golden_parity(&gpu());
}

/// The same with the workgroup-memory (GPU) kernel variants forced, the tiled matmul included.
#[test]
fn tiny2_models_match_goldens_with_gpu_kernels() {
    golden_parity(wgformer::gpu::test_gpu_gpu_kernels());
}

fn golden_parity(gpu: &std::sync::Arc<wgformer::Gpu>) {
    let golden = Golden::open(shared().join("fixtures/tiny2/tiny-golden.safetensors"));
    let cases = golden_cases();
    let per_token = cases
        .iter()
        .filter(|c| {
            c["architecture"]
                .as_str()
                .unwrap()
                .ends_with("ForTokenClassification")
        })
        .count();
    assert!(per_token > 0, "no token-classification golden");
    for case in &cases {
        let name = case["model"].as_str().unwrap();
        let model = Model::load(&tiny2(name), gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            model.config.architecture,
            case["architecture"].as_str().unwrap()
        );
        let rows = golden_rows(case);
        let lens: Vec<usize> = rows.iter().map(|r| r.ids.len()).collect();
        assert!(lens.windows(2).any(|w| w[0] != w[1]), "{name}: not padded");
        let out = model.forward_with_hidden(&rows).unwrap();
        let states = case["hidden_layers"].as_u64().unwrap() as usize;
        assert_eq!(out.hidden_states.len(), states, "{name}");
        for k in 0..states {
            let (shape, want) = golden.get(&format!("{name}.hidden.{k}"));
            let (seq, h) = (shape[1], shape[2]);
            for (r, len) in lens.iter().enumerate() {
                let w = &want[r * seq * h..(r * seq + len) * h];
                let d = max_abs(&out.hidden_states[k][r], w);
                assert!(d < TOL, "{name} hidden {k} row {r}: max |diff| {d:e}");
            }
        }
        let (shape, want) = golden.get(&format!("{name}.logits"));
        if shape.len() == 2 {
            // One row of labels per sequence (sequence classification).
            let d = max_abs(&out.logits.concat(), &want);
            assert!(d < TOL, "{name} logits: max |diff| {d:e}");
            continue;
        }
        assert_eq!(model.config.head, HeadKind::TokenClassification, "{name}");
        let (seq, labels) = (shape[1], shape[2]);
        assert_eq!(labels, model.config.num_labels());
        for (r, len) in lens.iter().enumerate() {
            let w = &want[r * seq * labels..(r * seq + len) * labels];
            let d = max_abs(&out.logits[r], w);
            assert!(d < TOL, "{name} logits row {r}: max |diff| {d:e}");
        }
        // The head-only graph reads the same logits.
        let plain = model.forward(&rows).unwrap();
        assert_eq!(plain.logits, out.logits, "{name}");
        // Selected tokens: the same numbers, in the order asked.
        let last = lens[0] - 1;
        let pick = [(2, 1), (0, last), (1, 0), (0, 3)];
        let sel = model.forward_selected(&rows, &pick).unwrap();
        for (k, &(r, t)) in pick.iter().enumerate() {
            let full = &out.logits[r][t * labels..(t + 1) * labels];
            let d = max_abs(&sel.logits[k], full);
            assert!(d < 1e-6, "{name} selected ({r},{t}): max |diff| {d:e}");
        }
    }
}

/// The masked-LM head of every MLM architecture: logits of selected tokens (the fill-mask
/// path, one-hot gather then the head) equal the head run on every token, and reading the
/// hidden states of an MLM checkpoint skips the vocabulary-wide head.
#[test]
fn masked_lm_head_on_selected_tokens_equals_every_token() {
    masked_lm_selection(&gpu());
}

#[test]
fn masked_lm_selection_with_gpu_kernels() {
    masked_lm_selection(wgformer::gpu::test_gpu_gpu_kernels());
}

fn masked_lm_selection(gpu: &std::sync::Arc<wgformer::Gpu>) {
    let models = task_rows("fill-mask");
    assert!(!models.is_empty(), "no fill-mask rows");
    for name in models.keys() {
        let model = Model::load(&tiny2(name), gpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.config.head, HeadKind::MaskedLm, "{name}");
        let vocab = model.config.vocab_size;
        let rows = vec![
            Sequence::new((5..22).collect()),
            Sequence::new(vec![7, 8, 9, 10, 11]),
            Sequence::new(vec![12, 13]),
        ];
        let full = model.forward(&rows).unwrap();
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(full.logits[r].len(), row.ids.len() * vocab, "{name}");
        }
        for pick in [
            vec![(1, 2)],
            vec![(0, 0), (2, 1), (0, 16)],
            (0..5).map(|t| (1, t)).chain([(2, 0), (0, 9)]).collect(),
        ] {
            let sel = model.forward_selected(&rows, &pick).unwrap();
            assert_eq!(sel.logits.len(), pick.len());
            for (k, &(r, t)) in pick.iter().enumerate() {
                let want = &full.logits[r][t * vocab..(t + 1) * vocab];
                let d = max_abs(&sel.logits[k], want);
                assert!(d < 1e-5, "{name} ({r},{t}): max |diff| {d:e}");
            }
        }
        assert!(model.forward_selected(&rows, &[(2, 2)]).is_err());
        assert!(model.forward_selected(&rows, &[(3, 0)]).is_err());
        let hidden = model.forward_reading(&rows, Readback::LastHidden).unwrap();
        assert!(hidden.logits.iter().all(Vec::is_empty), "{name}");
        assert_eq!(hidden.last_hidden[1].len(), 5 * model.config.hidden_size);
    }
}

/// A tiny deterministic generator for made-up head weights.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// ELECTRA's generator head, ALBERT's MLM head and DeBERTa-v2's two (`legacy: true`:
/// `cls.predictions`; `legacy: false`: `lm_predictions.lm_head`) — no transformers goldens in
/// shared/: a copy of the tiny model turned into `*ForMaskedLM` with made-up head weights, its
/// logits at selected tokens against a CPU f64 reference over the model's own last hidden
/// state. Checks the names, the hidden → embedding_size projection, the activation (ELECTRA,
/// DeBERTa: exact gelu; ALBERT: the config's gelu_new), the LayerNorm over embedding_size and
/// the tied decoder `[vocab, embedding_size]` with its bias.
#[test]
fn masked_lm_heads_without_goldens_match_a_cpu_reference() {
    use safetensors::tensor::TensorView;
    use safetensors::{Dtype, SafeTensors};
    use wgformer::ops::activation::Act;
    let gpu = gpu();
    for (name, arch, dense, norm, bias, act, e, legacy) in [
        (
            "tiny/tiny-electra",
            "ElectraForMaskedLM",
            "generator_predictions.dense",
            "generator_predictions.LayerNorm",
            "generator_lm_head.bias",
            Act::Gelu,
            16,
            None,
        ),
        (
            "tiny/tiny-albert",
            "AlbertForMaskedLM",
            "predictions.dense",
            "predictions.LayerNorm",
            "predictions.bias",
            Act::GeluNew,
            16,
            None,
        ),
        (
            "tiny2/tiny-deberta-v2",
            "DebertaV2ForMaskedLM",
            "cls.predictions.transform.dense",
            "cls.predictions.transform.LayerNorm",
            "cls.predictions.bias",
            Act::Gelu,
            32,
            Some(true),
        ),
        (
            "tiny2/tiny-deberta-v2",
            "DebertaV2ForMaskedLM",
            "lm_predictions.lm_head.dense",
            "lm_predictions.lm_head.LayerNorm",
            "lm_predictions.lm_head.bias",
            Act::Gelu,
            32,
            Some(false),
        ),
    ] {
        let src = shared().join("fixtures").join(name);
        let name = name.rsplit('/').next().unwrap();
        let dir = std::env::temp_dir().join(format!("wgformer-mlm-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            if src.join(f).exists() {
                std::fs::copy(src.join(f), dir.join(f)).unwrap();
            }
        }
        let mut cfg = json(src.join("config.json"));
        cfg["architectures"] = serde_json::json!([arch]);
        if let Some(l) = legacy {
            cfg["legacy"] = l.into();
        }
        std::fs::write(dir.join("config.json"), cfg.to_string()).unwrap();
        let (h, vocab) = (32usize, 1000usize);
        let eps = cfg["layer_norm_eps"].as_f64().unwrap_or(1e-12);
        let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec()))
            .collect();
        let word: Vec<f32> = tensors
            .iter()
            .find(|t| t.0.ends_with("embeddings.word_embeddings.weight"))
            .map(|t| bytemuck::pod_collect_to_vec(&t.2))
            .unwrap();
        let head = [
            (format!("{dense}.weight"), vec![e, h], values(e * h, 1, 0.3)),
            (format!("{dense}.bias"), vec![e], values(e, 2, 0.1)),
            (format!("{norm}.weight"), vec![e], values(e, 3, 0.5)),
            (format!("{norm}.bias"), vec![e], values(e, 4, 0.1)),
            (bias.to_string(), vec![vocab], values(vocab, 5, 0.2)),
        ];
        for (n, shape, v) in &head {
            tensors.push((n.clone(), shape.clone(), bytemuck::cast_slice(v).to_vec()));
        }
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(n, s, b)| {
                (
                    n.clone(),
                    TensorView::new(Dtype::F32, s.clone(), b).unwrap(),
                )
            })
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join("model.safetensors")).unwrap();

        let model = Model::load(&dir, &gpu).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(model.config.head, HeadKind::MaskedLm);
        let rows = vec![
            Sequence::new(vec![2, 40, 41, 42, 43, 44, 3]),
            Sequence::new(vec![2, 50, 3]),
        ];
        let hidden = model.forward_reading(&rows, Readback::LastHidden).unwrap();
        let pick = [(0, 3), (1, 1), (0, 6)];
        let got = model.forward_selected(&rows, &pick).unwrap();
        let (dw, db, g, b, vb) = (&head[0].2, &head[1].2, &head[2].2, &head[3].2, &head[4].2);
        for (k, &(r, t)) in pick.iter().enumerate() {
            let x = &hidden.last_hidden[r][t * h..(t + 1) * h];
            let y: Vec<f64> = (0..e)
                .map(|o| {
                    let s: f64 = (0..h).map(|i| dw[o * h + i] as f64 * x[i] as f64).sum();
                    act.reference(s + db[o] as f64)
                })
                .collect();
            let mean = y.iter().sum::<f64>() / e as f64;
            let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / e as f64;
            let n: Vec<f64> = (0..e)
                .map(|i| (y[i] - mean) / (var + eps).sqrt() * g[i] as f64 + b[i] as f64)
                .collect();
            let want: Vec<f32> = (0..vocab)
                .map(|v| {
                    let s: f64 = (0..e).map(|i| word[v * e + i] as f64 * n[i]).sum();
                    (s + vb[v] as f64) as f32
                })
                .collect();
            let d = max_abs(&got.logits[k], &want);
            assert!(d < 1e-4, "{name} ({r},{t}): max |diff| {d:e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The f16 precision path (f16 activations between kernels where the adapter has SHADER_F16,
/// matmul inputs rounded to f16): NER logits stay within 2e-2 of the goldens and MLM logits at
/// selected tokens within 2e-2 of the f32 run, while a wrong kernel is off by order 1.
#[test]
fn heads_stay_close_in_f16() {
    let f16 = wgformer::gpu::test_gpu_f16().clone();
    let f32 = gpu();
    let golden = Golden::open(shared().join("fixtures/tiny2/tiny-golden.safetensors"));
    for case in golden_cases() {
        let name = case["model"].as_str().unwrap();
        let model = Model::load(&tiny2(name), &f16).unwrap();
        let rows = golden_rows(&case);
        let out = model.forward(&rows).unwrap();
        let (shape, want) = golden.get(&format!("{name}.logits"));
        if shape.len() != 3 {
            continue;
        }
        let (seq, labels) = (shape[1], shape[2]);
        for (r, row) in rows.iter().enumerate() {
            let len = row.ids.len();
            let w = &want[r * seq * labels..(r * seq + len) * labels];
            let d = max_abs(&out.logits[r], w);
            assert!(d < 2e-2, "{name} f16 logits row {r}: max |diff| {d:e}");
        }
    }
    let rows = vec![
        Sequence::new((5..22).collect()),
        Sequence::new(vec![7, 8, 9, 10, 11]),
    ];
    let pick = [(0, 3), (1, 4), (0, 16)];
    for name in task_rows("fill-mask").keys() {
        let a = Model::load(&tiny2(name), &f16).unwrap();
        let b = Model::load(&tiny2(name), &f32).unwrap();
        let x = a.forward_selected(&rows, &pick).unwrap();
        let y = b.forward_selected(&rows, &pick).unwrap();
        for k in 0..pick.len() {
            let d = max_abs(&x.logits[k], &y.logits[k]);
            assert!(d < 2e-2, "{name} f16 MLM logits {k}: max |diff| {d:e}");
        }
    }
}
