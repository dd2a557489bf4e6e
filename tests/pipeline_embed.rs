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

/// A copy of a tiny model folder in its own temporary directory, removed on drop, with
/// `extra` files written into it (name, contents).
struct TempFolder(std::path::PathBuf);

impl TempFolder {
    fn copy_of(name: &str, extra: &[(&str, &str)]) -> TempFolder {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wgformer-embed-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let src = shared().join("fixtures/tiny").join(name);
        for entry in std::fs::read_dir(&src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        for (file, text) in extra {
            std::fs::write(dir.join(file), text).unwrap();
        }
        TempFolder(dir)
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn input(text: &str, pair: Option<&str>) -> TextInput {
    TextInput {
        text: text.to_owned(),
        text_pair: pair.map(str::to_owned),
    }
}

fn embed_one(emb: &Embedder, i: &TextInput) -> Vec<f32> {
    emb.embed(std::slice::from_ref(i), 1, &|_| {}).unwrap()[0]
        .as_ref()
        .unwrap()
        .clone()
}

/// sentence-transformers' `Transformer.tokenize` lower-cases every text (both sides of a pair)
/// when sentence_bert_config.json says `do_lower_case: true`: a cased text must give exactly
/// the embedding of its lower-cased form (written out here as Python's `str.lower` gives it).
/// tiny-roberta's byte-level BPE is cased, so without the flag the two differ.
#[test]
fn do_lower_case_lowercases_texts_before_tokenizing() {
    let gpu = gpu();
    let lower = TempFolder::copy_of(
        "tiny-roberta",
        &[(
            "sentence_bert_config.json",
            r#"{"max_seq_length": 64, "do_lower_case": true}"#,
        )],
    );
    let cased = TempFolder::copy_of(
        "tiny-roberta",
        &[(
            "sentence_bert_config.json",
            r#"{"max_seq_length": 64, "do_lower_case": false}"#,
        )],
    );
    let lower = Embedder::load(&lower.0, &gpu).unwrap();
    let cased = Embedder::load(&cased.0, &gpu).unwrap();
    assert!(lower.do_lower_case && !cased.do_lower_case);
    for (text, pair, want_text, want_pair) in [
        ("Hello World", None, "hello world", None),
        ("ÉCOLE Straße ΣΊΣΥΦΟΣ", None, "école straße σίσυφος", None),
        (
            "The CAT sat.",
            Some("A Dog RAN."),
            "the cat sat.",
            Some("a dog ran."),
        ),
    ] {
        let got = embed_one(&lower, &input(text, pair));
        let want = embed_one(&cased, &input(want_text, want_pair));
        assert_eq!(got, want, "{text:?} / {pair:?} with do_lower_case");
        let as_is = embed_one(&cased, &input(text, pair));
        assert_ne!(as_is, want, "{text:?}: the tokenizer should be cased");
    }
}

/// sentence-transformers passes `max_length=max_seq_length` to the tokenizer when
/// sentence_bert_config.json gives it, so the tokenizer's `model_max_length` plays no part
/// (only the position table bounds it); without it the length is min(model_max_length,
/// positions). tiny-roberta's tokenizer_config says model_max_length 8 here; its position
/// table holds 64 tokens. The long text's embedding is checked against mean pooling, done
/// here, of the model's last hidden state over the text cut at 20 tokens.
#[test]
fn max_seq_length_is_not_capped_by_model_max_length() {
    let gpu = gpu();
    let tok_cfg = r#"{"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 8,
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
        "cls_token": "<s>", "sep_token": "</s>", "mask_token": "<mask>"}"#;
    let cases = [
        (Some(20), 20),  // given: used as is, model_max_length 8 ignored
        (Some(100), 64), // past the position table: capped there
        (None, 8),       // absent: min(model_max_length, positions)
    ];
    for (given, want) in cases {
        let st = match given {
            Some(n) => format!(r#"{{"max_seq_length": {n}, "do_lower_case": false}}"#),
            None => r#"{"do_lower_case": false}"#.to_owned(),
        };
        let dir = TempFolder::copy_of(
            "tiny-roberta",
            &[
                ("tokenizer_config.json", tok_cfg),
                ("sentence_bert_config.json", &st),
            ],
        );
        let emb = Embedder::load(&dir.0, &gpu).unwrap();
        assert_eq!(emb.max_len, want, "max_seq_length {given:?}");
    }

    let dir = TempFolder::copy_of(
        "tiny-roberta",
        &[
            ("tokenizer_config.json", tok_cfg),
            ("sentence_bert_config.json", r#"{"max_seq_length": 20}"#),
        ],
    );
    let emb = Embedder::load(&dir.0, &gpu).unwrap();
    let text = "one two three four five six seven eight nine ten eleven twelve thirteen \
                fourteen fifteen sixteen seventeen eighteen nineteen twenty twenty-one";
    let cut = emb.tokenizer.encode(text, None, Some(20)).unwrap().ids;
    assert_eq!(cut.len(), 20, "the text must be longer than 20 tokens");
    let out = emb
        .model
        .forward_reading(
            &[wgformer::models::Sequence::new(cut)],
            wgformer::models::Readback::LastHidden,
        )
        .unwrap();
    let dim = emb.model.config.hidden_size;
    let rows: Vec<&[f32]> = out.last_hidden[0].chunks(dim).collect();
    assert_eq!(rows.len(), 20);
    let want: Vec<f32> = (0..dim)
        .map(|j| (rows.iter().map(|r| r[j] as f64).sum::<f64>() / 20.0) as f32)
        .collect();
    let got = embed_one(&emb, &input(text, None));
    let d = max_abs(&got, &want);
    assert!(d < TOL, "20-token embedding: max |diff| {d:e}");
}

/// sentence-transformers strips every text (`str(s).strip()`, both sides of a pair) before
/// tokenizing. tiny-roberta's byte-level BPE turns a leading space into a different token, so
/// unstripped text would embed differently; stripped, it equals the bare text's embedding.
#[test]
fn texts_are_stripped_before_tokenizing() {
    let gpu = gpu();
    let dir = TempFolder::copy_of("tiny-roberta", &[]);
    let emb = Embedder::load(&dir.0, &gpu).unwrap();
    let bare = emb.tokenizer.encode("Hello world", None, None).unwrap().ids;
    let spaced = emb
        .tokenizer
        .encode("  Hello world", None, None)
        .unwrap()
        .ids;
    assert_ne!(bare, spaced, "the tokenizer should keep leading spaces");
    for (text, pair, want_text, want_pair) in [
        ("  Hello world\t\n", None, "Hello world", None),
        ("\u{3000}Hello world\u{1f}", None, "Hello world", None),
        (
            " The cat sat. ",
            Some("\n A dog ran."),
            "The cat sat.",
            Some("A dog ran."),
        ),
    ] {
        let got = embed_one(&emb, &input(text, pair));
        let want = embed_one(&emb, &input(want_text, want_pair));
        assert_eq!(got, want, "{text:?} / {pair:?}");
    }
}
