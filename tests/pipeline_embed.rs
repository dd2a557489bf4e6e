//! Sentence embeddings end to end: all-MiniLM-L6-v2 (f32) through `Embedder` against
//! sentence-transformers (mean pooling, L2 normalisation, max_length 256), batched and one at a
//! time. The model folder comes from scripts/fetch-models.sh (WGFORMER_MODELS_DIR or .models/).

mod common;
use common::*;
use wgformer::pipelines::input::TextInput;
use wgformer::pipelines::Embedder;

const TOL: f32 = 1e-5;

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    let rows = jsonl("embeddings.hf.jsonl");
    assert_eq!(
        rows.len(),
        10,
        "embeddings.hf.jsonl should hold 10 sentences"
    );
    let dir = minilm_f32();
    let emb =
        Embedder::load(&dir, &gpu()).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    assert_eq!(
        emb.max_len, 256,
        "sentence_bert_config.json's max_seq_length"
    );
    let inputs: Vec<TextInput> = rows
        .iter()
        .map(|r| TextInput {
            text: r["sentence"].as_str().unwrap().to_owned(),
            text_pair: None,
        })
        .collect();
    for (r, i) in rows.iter().zip(&inputs) {
        let e = emb
            .tokenizer
            .encode(&i.text, None, Some(emb.max_len))
            .unwrap();
        assert_eq!(e.ids, ids(&r["input_ids"]), "{:?}: token ids", i.text);
    }
    let want: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| {
            r["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();

    let batched = emb.embed(&inputs, 16, &|_| {}).unwrap();
    let mut worst = 0f32;
    for (k, (got, w)) in batched.iter().zip(&want).enumerate() {
        let got = got
            .as_ref()
            .unwrap_or_else(|e| panic!("{:?}: {e}", inputs[k].text));
        let d = max_abs(got, w);
        worst = worst.max(d);
        assert!(d < TOL, "{:?} (batched): max |diff| {d:e}", inputs[k].text);
    }
    for (k, (inp, w)) in inputs.iter().zip(&want).enumerate() {
        let alone = emb.embed(std::slice::from_ref(inp), 1, &|_| {}).unwrap();
        let got = alone[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{:?}: {e}", inp.text));
        let d = max_abs(got, w);
        worst = worst.max(d);
        assert!(d < TOL, "{:?} (alone): max |diff| {d:e}", inputs[k].text);
        let db = max_abs(got, batched[k].as_ref().unwrap());
        assert!(
            db < TOL,
            "{:?}: batched and alone differ by {db:e}",
            inp.text
        );
    }
    eprintln!("embed: 10 sentences, worst |diff| {worst:e}");
}
