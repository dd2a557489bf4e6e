//! DeBERTa-v2 settings the tiny2 fixture does not reach, against a CPU f64 reference written
//! from transformers' formulas: microsoft/deberta-v3-base's position settings (256 buckets,
//! `max_relative_positions` −1 → 512 positions) on sequences past the exact range, buckets that
//! reach past the table (clamped rows), exact relative positions without buckets, a single
//! position term, the `"p2c|c2p"` string form and unshared position projections. Small random
//! models built in memory; every layer's hidden state of every real token within 1e-4 in a
//! right-padded batch.

mod common;
use common::*;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::json;
use wgformer::models::{Model, Sequence};
use wgformer::ops::activation::Act;

const H: usize = 32;
const HEADS: usize = 4;
const FF: usize = 48;
const VOCAB: usize = 50;
const LAYERS: usize = 2;
const EPS: f64 = 1e-7;

/// Seeded values in [-scale, scale].
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// transformers' `make_log_bucket_position`, written out again here (f32 like torch).
fn bucket(rel: i64, buckets: i64, max_pos: i64) -> i64 {
    let mid = buckets / 2;
    if rel.abs() <= mid {
        return rel;
    }
    let l = ((rel.abs() as f32 / mid as f32).ln()
        / (((max_pos - 1) as f64 / mid as f64) as f32).ln()
        * (mid - 1) as f32)
        .ceil() as i64;
    (l + mid) * rel.signum()
}

fn layer_norm(x: &[f64], g: &[f32], b: &[f32]) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    x.iter()
        .enumerate()
        .map(|(i, v)| (v - mean) / (var + EPS).sqrt() * g[i] as f64 + b[i] as f64)
        .collect()
}

/// `x · Wᵀ + b` per row, `w` `[out, in]`.
fn linear(x: &[Vec<f64>], w: &[f32], b: &[f32]) -> Vec<Vec<f64>> {
    let out = b.len();
    x.iter()
        .map(|r| {
            (0..out)
                .map(|o| {
                    r.iter()
                        .enumerate()
                        .map(|(k, v)| v * w[o * r.len() + k] as f64)
                        .sum::<f64>()
                        + b[o] as f64
                })
                .collect()
        })
        .collect()
}

struct Case {
    buckets: i64,
    max_relative: i64,
    terms: serde_json::Value,
    share: bool,
    lens: [usize; 2],
}

#[test]
fn deberta_settings_match_a_cpu_reference() {
    let gpu = gpu();
    let cases = [
        // deberta-v3-base's position settings; 150 tokens reach the log buckets past 128.
        Case {
            buckets: 256,
            max_relative: -1,
            terms: json!(["p2c", "c2p"]),
            share: true,
            lens: [150, 61],
        },
        // Buckets past the 2·16-row table: rows clamp at both ends; c2p alone.
        Case {
            buckets: 16,
            max_relative: 20,
            terms: json!(["c2p"]),
            share: true,
            lens: [45, 30],
        },
        // No buckets: exact offsets clamped to ±24; the string form; own position projections.
        Case {
            buckets: -1,
            max_relative: 24,
            terms: json!("p2c|c2p"),
            share: false,
            lens: [37, 12],
        },
    ];
    for (ci, c) in cases.iter().enumerate() {
        let max_relative = if c.max_relative < 1 {
            512
        } else {
            c.max_relative
        };
        let span = if c.buckets > 0 {
            c.buckets
        } else {
            max_relative
        } as usize;
        let names: Vec<String> = match &c.terms {
            serde_json::Value::String(s) => s.split('|').map(str::to_string).collect(),
            v => v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect(),
        };
        let (c2p, p2c) = (
            names.iter().any(|n| n == "c2p"),
            names.iter().any(|n| n == "p2c"),
        );
        let config = json!({
            "model_type": "deberta-v2",
            "architectures": ["DebertaV2Model"],
            "hidden_size": H, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
            "intermediate_size": FF, "hidden_act": "gelu", "vocab_size": VOCAB,
            "max_position_embeddings": 512, "layer_norm_eps": EPS, "type_vocab_size": 0,
            "position_biased_input": false, "relative_attention": true,
            "position_buckets": c.buckets, "max_relative_positions": c.max_relative,
            "pos_att_type": c.terms, "share_att_key": c.share, "norm_rel_ebd": "layer_norm",
        });

        // Every tensor, made up.
        let mut seed = 100 * ci as u64;
        let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = vec![];
        let mut add = |name: &str, shape: Vec<usize>, scale: f32| {
            seed += 1;
            let n = shape.iter().product();
            t.push((name.to_string(), shape, values(n, seed, scale)));
        };
        add(
            "deberta.embeddings.word_embeddings.weight",
            vec![VOCAB, H],
            1.0,
        );
        add("deberta.embeddings.LayerNorm.weight", vec![H], 1.0);
        add("deberta.embeddings.LayerNorm.bias", vec![H], 0.2);
        add(
            "deberta.encoder.rel_embeddings.weight",
            vec![2 * span, H],
            1.0,
        );
        add("deberta.encoder.LayerNorm.weight", vec![H], 1.0);
        add("deberta.encoder.LayerNorm.bias", vec![H], 0.2);
        for l in 0..LAYERS {
            let p = format!("deberta.encoder.layer.{l}");
            let mut lin = |n: &str, out: usize, inp: usize| {
                add(&format!("{p}.{n}.weight"), vec![out, inp], 0.4);
                add(&format!("{p}.{n}.bias"), vec![out], 0.1);
            };
            for n in ["query_proj", "key_proj", "value_proj"] {
                lin(&format!("attention.self.{n}"), H, H);
            }
            if !c.share {
                lin("attention.self.pos_query_proj", H, H);
                lin("attention.self.pos_key_proj", H, H);
            }
            lin("attention.output.dense", H, H);
            lin("intermediate.dense", FF, H);
            lin("output.dense", H, FF);
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                add(&format!("{p}.{n}.weight"), vec![H], 1.0);
                add(&format!("{p}.{n}.bias"), vec![H], 0.2);
            }
        }
        let get = |name: &str| -> &Vec<f32> {
            &t.iter()
                .find(|x| x.0 == name)
                .unwrap_or_else(|| panic!("{name}"))
                .2
        };
        let bytes: Vec<Vec<u8>> = t
            .iter()
            .map(|x| bytemuck::cast_slice(&x.2).to_vec())
            .collect();
        let views: Vec<(String, TensorView)> = t
            .iter()
            .zip(&bytes)
            .map(|(x, b)| {
                (
                    x.0.clone(),
                    TensorView::new(Dtype::F32, x.1.clone(), b).unwrap(),
                )
            })
            .collect();
        let st = safetensors::serialize(views, None).unwrap();
        let model =
            Model::from_memory(&format!("deberta-case-{ci}"), &config.to_string(), st, &gpu)
                .unwrap_or_else(|e| panic!("case {ci}: {e}"));

        let rows: Vec<Sequence> = c
            .lens
            .iter()
            .enumerate()
            .map(|(r, &n)| {
                Sequence::new((0..n).map(|i| ((i * 7 + r * 3) % VOCAB) as u32).collect())
            })
            .collect();
        let out = model.forward_with_hidden(&rows).unwrap();
        assert_eq!(out.hidden_states.len(), LAYERS + 1);

        // The reference, row by row (padding only hides keys, so each row alone is exact).
        let rel: Vec<Vec<f64>> = get("deberta.encoder.rel_embeddings.weight")
            .chunks(H)
            .map(|r| {
                let r: Vec<f64> = r.iter().map(|&v| v as f64).collect();
                layer_norm(
                    &r,
                    get("deberta.encoder.LayerNorm.weight"),
                    get("deberta.encoder.LayerNorm.bias"),
                )
            })
            .collect();
        let d = H / HEADS;
        let scale = ((d * (1 + usize::from(c2p) + usize::from(p2c))) as f64).sqrt();
        for (r, row) in rows.iter().enumerate() {
            let n = row.ids.len();
            let mut x: Vec<Vec<f64>> = row
                .ids
                .iter()
                .map(|&id| {
                    let w = get("deberta.embeddings.word_embeddings.weight");
                    let e: Vec<f64> = w[id as usize * H..(id as usize + 1) * H]
                        .iter()
                        .map(|&v| v as f64)
                        .collect();
                    layer_norm(
                        &e,
                        get("deberta.embeddings.LayerNorm.weight"),
                        get("deberta.embeddings.LayerNorm.bias"),
                    )
                })
                .collect();
            for state in 0..=LAYERS {
                if state > 0 {
                    let p = format!("deberta.encoder.layer.{}", state - 1);
                    let lin = |x: &[Vec<f64>], name: &str| {
                        linear(
                            x,
                            get(&format!("{p}.{name}.weight")),
                            get(&format!("{p}.{name}.bias")),
                        )
                    };
                    let q = lin(&x, "attention.self.query_proj");
                    let k = lin(&x, "attention.self.key_proj");
                    let v = lin(&x, "attention.self.value_proj");
                    let (pq_name, pk_name) = if c.share {
                        ("attention.self.query_proj", "attention.self.key_proj")
                    } else {
                        (
                            "attention.self.pos_query_proj",
                            "attention.self.pos_key_proj",
                        )
                    };
                    let pos_q = lin(&rel, pq_name);
                    let pos_k = lin(&rel, pk_name);
                    let mut ctx = vec![vec![0f64; H]; n];
                    for hd in 0..HEADS {
                        let dot = |a: &[f64], b: &[f64]| -> f64 {
                            (hd * d..(hd + 1) * d).map(|c| a[c] * b[c]).sum()
                        };
                        for i in 0..n {
                            let scores: Vec<f64> = (0..n)
                                .map(|j| {
                                    let b = if c.buckets > 0 {
                                        bucket(i as i64 - j as i64, c.buckets, max_relative)
                                    } else {
                                        i as i64 - j as i64
                                    };
                                    let idx =
                                        (b + span as i64).clamp(0, 2 * span as i64 - 1) as usize;
                                    let mut s = dot(&q[i], &k[j]);
                                    if c2p {
                                        s += dot(&q[i], &pos_k[idx]);
                                    }
                                    if p2c {
                                        s += dot(&k[j], &pos_q[idx]);
                                    }
                                    s / scale
                                })
                                .collect();
                            let m = scores.iter().cloned().fold(f64::MIN, f64::max);
                            let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                            let z: f64 = e.iter().sum();
                            for j in 0..n {
                                for c in hd * d..(hd + 1) * d {
                                    ctx[i][c] += e[j] / z * v[j][c];
                                }
                            }
                        }
                    }
                    let a = lin(&ctx, "attention.output.dense");
                    let h1: Vec<Vec<f64>> = (0..n)
                        .map(|i| {
                            let s: Vec<f64> = (0..H).map(|c| a[i][c] + x[i][c]).collect();
                            layer_norm(
                                &s,
                                get(&format!("{p}.attention.output.LayerNorm.weight")),
                                get(&format!("{p}.attention.output.LayerNorm.bias")),
                            )
                        })
                        .collect();
                    let f: Vec<Vec<f64>> = lin(&h1, "intermediate.dense")
                        .into_iter()
                        .map(|r| r.into_iter().map(|v| Act::Gelu.reference(v)).collect())
                        .collect();
                    let o = lin(&f, "output.dense");
                    x = (0..n)
                        .map(|i| {
                            let s: Vec<f64> = (0..H).map(|c| o[i][c] + h1[i][c]).collect();
                            layer_norm(
                                &s,
                                get(&format!("{p}.output.LayerNorm.weight")),
                                get(&format!("{p}.output.LayerNorm.bias")),
                            )
                        })
                        .collect();
                }
                let want: Vec<f32> = x.iter().flatten().map(|&v| v as f32).collect();
                let diff = max_abs(&out.hidden_states[state][r], &want);
                assert!(
                    diff < TOL,
                    "case {ci} state {state} row {r}: max |diff| {diff:e}"
                );
            }
        }
    }
}
