//! Tokenization with the exact behaviour of a Hugging Face *fast* tokenizer called as the pipelines call
//! it: special tokens added, truncation `longest_first` to a maximum length, no padding.
//!
//! The heavy lifting is done by the `tokenizers` crate, the same Rust code the Python fast tokenizers
//! run, so token ids are identical by construction as long as we reproduce the call sequence
//! (encode each sequence without special tokens, truncate to `max_len` minus the special tokens the
//! post-processor will add, then post-process).

use std::path::Path;

use tokenizers::models::ModelWrapper;
use tokenizers::tokenizer::{Decoder, Encoding, PostProcessor, Tokenizer};
use tokenizers::utils::truncation::{
    truncate_encodings, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::models::files::ModelFiles;
use crate::{Error, Result};

/// Below this a `model_max_length` is taken as real; transformers writes `int(1e30)`
/// (`VERY_LARGE_INTEGER`) when a tokenizer has no limit of its own.
const MAX_LENGTH_SENTINEL: f64 = 1e12;

/// The length used when neither `tokenizer_config.json` nor `config.json` says anything: the
/// 512 positions of BERT-family encoders.
const DEFAULT_MAX_LENGTH: usize = 512;

/// Token ids and token type ids of one (possibly paired) input, special tokens included, unpadded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Vocabulary ids, one per token.
    pub ids: Vec<u32>,
    /// Segment ids (0 for the first text, 1 for the pair where the post-processor says so).
    pub type_ids: Vec<u32>,
}

/// A Hugging Face fast tokenizer (`tokenizer.json`) with the model's maximum input length.
#[derive(Clone)]
pub struct TextTokenizer {
    tok: Tokenizer,
    /// `tok` without its post-processor, for the first step of encoding: `Tokenizer::encode`
    /// runs the post-processor even without special tokens, and a byte-level one trims offsets
    /// (`trim_offsets`) each time it runs; it must run once, when the special tokens go in.
    raw: Tokenizer,
    model_max_length: usize,
    /// Whether transformers hands `token_type_ids` to the model (its `model_input_names`);
    /// when not, the model sees zeros whatever the post-processor says.
    type_ids_input: bool,
    /// The special tokens transformers knows by role (`mask_token`, `unk_token`, `pad_token`).
    special: SpecialTokens,
    /// `clean_up_tokenization_spaces` of `tokenizer_config.json` (transformers 5 default: false).
    clean_up_spaces: bool,
    /// `truncation_side` of `tokenizer_config.json`: which end over-long inputs lose
    /// (transformers' default: the right).
    truncation_side: TruncationDirection,
}

/// How a pair is cut down to the maximum length (transformers' `TruncationStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// `truncation=True`: tokens come off the longer sequence first.
    LongestFirst,
    /// `only_first`: only the first sequence is cut (the zero-shot premise, never the
    /// hypothesis); when that cannot reach the limit, nothing is cut, as transformers retries.
    OnlyFirst,
    /// No truncation at all (fill-mask calls the tokenizer without it).
    None,
}

/// Special tokens by role, as transformers reads them from `tokenizer_config.json` (or
/// `special_tokens_map.json`): the token and its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub mask: Option<(String, u32)>,
    pub unk: Option<(String, u32)>,
    pub pad: Option<(String, u32)>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("model_max_length", &self.model_max_length)
            .field("vocab_size", &self.tok.get_vocab_size(true))
            .finish()
    }
}

impl TextTokenizer {
    /// Loads `dir/tokenizer.json` and works out the maximum input length.
    ///
    /// Truncation and padding stored in `tokenizer.json` are removed: some packages bake in e.g.
    /// "pad/truncate to 128", while the pipelines decide lengths per call.
    ///
    /// `model_max_length` is, in order: `tokenizer_config.json`'s `model_max_length` (what
    /// transformers uses for `truncation=True`), unless it is transformers' "no limit" sentinel
    /// (`int(1e30)`); else `config.json`'s `max_position_embeddings` (minus the `pad_token_id + 1`
    /// positions RoBERTa-style models reserve); else 512. Where transformers would not truncate at
    /// all (sentinel), capping at the position table is the only length the model can run.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::from_files(&ModelFiles::dir(dir))
    }

    /// As [`load`](Self::load), from a folder on disk or its files in memory.
    pub fn from_files(dir: &ModelFiles) -> Result<Self> {
        let Some(bytes) = dir.read("tokenizer.json")? else {
            return Err(Error::model(
                dir.root(),
                "no tokenizer.json: wgformer needs the fast tokenizer file; create it in Python with \
                 `AutoTokenizer.from_pretrained(DIR).save_pretrained(DIR)` (a fast tokenizer writes tokenizer.json)",
            ));
        };
        let path = dir.path("tokenizer.json");
        let mut tok = Tokenizer::from_bytes(&bytes)
            .map_err(|e| Error::model(&path, format!("cannot parse tokenizer.json: {e}")))?;
        tok.with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("cannot disable truncation: {e}")))?;
        tok.with_padding(None);
        let model_max_length = match tokenizer_config_max_length(dir)? {
            Some(n) => n,
            None => config_max_positions(dir)?.unwrap_or(DEFAULT_MAX_LENGTH),
        };
        let type_ids_input = tokenizer_config_type_ids(dir)?;
        let (special, clean_up_spaces) = tokenizer_config_special(dir, &tok)?;
        let truncation_side = tokenizer_config_truncation_side(dir)?;
        Ok(Self {
            raw: without_post_processor(&tok),
            tok,
            model_max_length,
            type_ids_input,
            special,
            clean_up_spaces,
            truncation_side,
        })
    }

    /// Wraps an already loaded tokenizer (its own truncation/padding are removed, as in [`load`](Self::load)).
    pub fn from_tokenizer(mut tok: Tokenizer, model_max_length: usize) -> Result<Self> {
        tok.with_truncation(None)
            .map_err(|e| Error::Tokenizer(format!("cannot disable truncation: {e}")))?;
        tok.with_padding(None);
        let special = SpecialTokens {
            mask: well_known(&tok, &["[MASK]", "<mask>"]),
            unk: well_known(&tok, &["[UNK]", "<unk>"]),
            pad: well_known(&tok, &["[PAD]", "<pad>"]),
        };
        Ok(Self {
            raw: without_post_processor(&tok),
            tok,
            model_max_length,
            type_ids_input: true,
            special,
            clean_up_spaces: false,
            truncation_side: TruncationDirection::Right,
        })
    }

    /// Encodes `text` (and `pair`) with special tokens, truncated `longest_first` to `max_len`
    /// tokens in all (special tokens included), as the pipelines' `truncation=True` does.
    /// `max_len: None` means [`model_max_length`](Self::model_max_length).
    pub fn encode(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: Option<usize>,
    ) -> Result<Encoded> {
        let enc = self.encode_full(text, pair, max_len)?;
        Ok(self.model_inputs(&enc))
    }

    /// Like [`encode`](Self::encode) but returns the whole `tokenizers` encoding (offsets, word
    /// ids, sequence ids...), for pipelines that map tokens back to text.
    pub fn encode_full(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: Option<usize>,
    ) -> Result<Encoding> {
        self.encode_with(text, pair, max_len, Truncation::LongestFirst, false)
    }

    /// [`encode`](Self::encode) with another truncation strategy.
    pub fn encode_truncating(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: Option<usize>,
        truncation: Truncation,
    ) -> Result<Encoded> {
        let enc = self.encode_with(text, pair, max_len, truncation, false)?;
        Ok(self.model_inputs(&enc))
    }

    /// One text as the token-classification pipeline encodes it (`truncation=True`, special
    /// tokens, their mask), with offsets in characters (Unicode scalar values, as Python
    /// indexes strings) rather than bytes.
    pub fn encode_with_char_offsets(&self, text: &str, max_len: Option<usize>) -> Result<Encoding> {
        self.encode_with(text, None, max_len, Truncation::LongestFirst, true)
    }

    /// Ids and the token types the model takes from an encoding.
    pub fn model_inputs(&self, enc: &Encoding) -> Encoded {
        let type_ids = if self.type_ids_input {
            enc.get_type_ids().to_vec()
        } else {
            vec![0; enc.len()]
        };
        Encoded {
            ids: enc.get_ids().to_vec(),
            type_ids,
        }
    }

    fn encode_with(
        &self,
        text: &str,
        pair: Option<&str>,
        max_len: Option<usize>,
        truncation: Truncation,
        char_offsets: bool,
    ) -> Result<Encoding> {
        let max_len = match truncation {
            Truncation::None => usize::MAX,
            _ => max_len.unwrap_or(self.model_max_length),
        };
        let encode = |t: &str| {
            if char_offsets {
                self.raw.encode_char_offsets(t, false)
            } else {
                self.raw.encode(t, false)
            }
        };
        let first =
            encode(text).map_err(|e| Error::Tokenizer(format!("cannot encode text: {e}")))?;
        // An empty pair is no pair: transformers' fast tokenizers encode `(text, "")` as `text`
        // alone (`[(text, text_pair)] if text_pair else [text]`), so the pipelines do too.
        let pair = pair.filter(|p| !p.is_empty());
        let second = match pair {
            Some(p) => {
                let mut e = encode(p)
                    .map_err(|e| Error::Tokenizer(format!("cannot encode text pair: {e}")))?;
                // The tokenizer gives the second sequence type id 1 before post-processing.
                e.set_type_ids(vec![1; e.len()]);
                Some(e)
            }
            None => None,
        };
        // Truncation happens before the special tokens go in, so it gets their count subtracted,
        // exactly as `tokenizers` does when truncation is set on the tokenizer.
        let added = self
            .tok
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(second.is_some()));
        if max_len <= added {
            return Err(Error::Input(format!(
                "maximum length {max_len} leaves no room for text: the tokenizer adds {added} special tokens \
                 by itself; use a maximum length above {added}"
            )));
        }
        let (first, second) = if truncation == Truncation::None {
            (first, second)
        } else {
            let params = TruncationParams {
                max_length: max_len - added,
                strategy: if truncation == Truncation::OnlyFirst {
                    TruncationStrategy::OnlyFirst
                } else {
                    TruncationStrategy::LongestFirst
                },
                stride: 0,
                direction: self.truncation_side,
            };
            let total = first.len() + second.as_ref().map_or(0, Encoding::len);
            let first_too_short = truncation == Truncation::OnlyFirst
                && total > params.max_length
                && first.len() <= total - params.max_length;
            if first_too_short {
                // transformers catches tokenizers' "too short" error and encodes untruncated.
                (first, second)
            } else {
                truncate_encodings(first, second, &params).map_err(|e| {
                    Error::Tokenizer(format!("cannot truncate to {max_len} tokens: {e}"))
                })?
            }
        };
        self.tok
            .post_process(first, second, true)
            .map_err(|e| Error::Tokenizer(format!("cannot add special tokens: {e}")))
    }

    /// The wrapped `tokenizers` tokenizer (no truncation, no padding).
    pub fn inner(&self) -> &Tokenizer {
        &self.tok
    }

    /// The longest input (special tokens included) the model takes; see [`load`](Self::load).
    pub fn model_max_length(&self) -> usize {
        self.model_max_length
    }

    /// The special tokens known by role.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The vocabulary string of `id` (`convert_ids_to_tokens`), e.g. `##ing`, `Ġworld`, `▁Paris`.
    pub fn id_to_token(&self, id: u32) -> String {
        self.tok.id_to_token(id).unwrap_or_default()
    }

    /// The id of a vocabulary string, added tokens included (`get_vocab()[token]`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tok.token_to_id(token)
    }

    /// transformers' `convert_tokens_to_string`: the tokenizer's decoder over the token strings
    /// (WordPiece joins `##` pieces, byte-level BPE maps bytes back, Metaspace turns `▁` into
    /// spaces), or the tokens joined by spaces when it has none.
    pub fn tokens_to_string(&self, tokens: &[String]) -> Result<String> {
        match self.tok.get_decoder() {
            Some(d) => d
                .decode(tokens.to_vec())
                .map_err(|e| Error::Tokenizer(format!("cannot decode tokens: {e}"))),
            None => Ok(tokens.join(" ")),
        }
    }

    /// transformers' `decode`: the tokenizer's own decode, then `clean_up_tokenization` when
    /// `tokenizer_config.json` asks for it, except on BPE models (transformers 5 skips it there).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        let text = self
            .tok
            .decode(ids, skip_special_tokens)
            .map_err(|e| Error::Tokenizer(format!("cannot decode: {e}")))?;
        let bpe = matches!(self.tok.get_model(), ModelWrapper::BPE(_));
        Ok(if self.clean_up_spaces && !bpe {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// Whether the model marks word-continuing pieces (`continuing_subword_prefix`, e.g. `##`
    /// for WordPiece): transformers' token classification then decides what is a subword by
    /// token length, otherwise by the characters around each token.
    pub fn word_aware(&self) -> bool {
        match self.tok.get_model() {
            ModelWrapper::WordPiece(w) => !w.continuing_subword_prefix.is_empty(),
            ModelWrapper::BPE(b) => b
                .continuing_subword_prefix
                .as_deref()
                .is_some_and(|p| !p.is_empty()),
            _ => false,
        }
    }
}

/// transformers' `clean_up_tokenization`: spaces before punctuation and English contractions.
pub fn clean_up_tokenization(text: &str) -> String {
    let mut t = text.to_string();
    for (from, to) in [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ] {
        t = t.replace(from, to);
    }
    t
}

fn without_post_processor(tok: &Tokenizer) -> Tokenizer {
    let mut raw = tok.clone();
    raw.with_post_processor(None::<tokenizers::processors::PostProcessorWrapper>);
    raw
}

/// The first of `names` that is in the vocabulary, with its id.
fn well_known(tok: &Tokenizer, names: &[&str]) -> Option<(String, u32)> {
    names
        .iter()
        .find_map(|n| tok.token_to_id(n).map(|id| (n.to_string(), id)))
}

/// A special token entry: a string, or an object with `content` (the `AddedToken` form).
fn token_entry(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The mask, unknown and padding tokens (from `tokenizer_config.json`, else
/// `special_tokens_map.json`, else the usual `[MASK]`/`<mask>`... names when the vocabulary has
/// them) and `clean_up_tokenization_spaces`.
fn tokenizer_config_special(dir: &ModelFiles, tok: &Tokenizer) -> Result<(SpecialTokens, bool)> {
    let cfg = dir.read_json("tokenizer_config.json")?;
    let map = dir.read_json("special_tokens_map.json")?;
    let role = |key: &str, fallback: &[&str]| -> Option<(String, u32)> {
        let named = [&cfg, &map]
            .into_iter()
            .flatten()
            .find_map(|c| c.get(key).and_then(token_entry));
        match named {
            Some(t) => tok.token_to_id(&t).map(|id| (t, id)),
            None => well_known(tok, fallback),
        }
    };
    let special = SpecialTokens {
        mask: role("mask_token", &["[MASK]", "<mask>"]),
        unk: role("unk_token", &["[UNK]", "<unk>"]),
        pad: role("pad_token", &["[PAD]", "<pad>"]),
    };
    let clean = cfg
        .as_ref()
        .and_then(|c| c.get("clean_up_tokenization_spaces"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok((special, clean))
}

/// `truncation_side` of `tokenizer_config.json` (`"right"` when absent or null).
fn tokenizer_config_truncation_side(dir: &ModelFiles) -> Result<TruncationDirection> {
    let Some(cfg) = dir.read_json("tokenizer_config.json")? else {
        return Ok(TruncationDirection::Right);
    };
    match cfg.get("truncation_side").filter(|v| !v.is_null()) {
        None => Ok(TruncationDirection::Right),
        Some(v) if v == "right" => Ok(TruncationDirection::Right),
        Some(v) if v == "left" => Ok(TruncationDirection::Left),
        Some(v) => Err(Error::model(
            dir.path("tokenizer_config.json"),
            format!("`truncation_side` must be \"right\" or \"left\", found {v}"),
        )),
    }
}

/// `model_max_length` from `tokenizer_config.json`, `None` when absent, null or the sentinel.
fn tokenizer_config_max_length(dir: &ModelFiles) -> Result<Option<usize>> {
    let path = dir.path("tokenizer_config.json");
    let Some(cfg) = dir.read_json("tokenizer_config.json")? else {
        return Ok(None);
    };
    let Some(v) = cfg.get("model_max_length").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    // `int(1e30)` does not fit u64, so serde_json gives it as a float: compare as f64.
    let n = v.as_f64().ok_or_else(|| {
        Error::model(
            &path,
            format!("`model_max_length` must be a number, found {v}"),
        )
    })?;
    if n >= MAX_LENGTH_SENTINEL {
        return Ok(None);
    }
    if n < 1.0 || n.fract() != 0.0 {
        return Err(Error::model(
            &path,
            format!("`model_max_length` must be a positive integer, found {v}"),
        ));
    }
    Ok(Some(n as usize))
}

/// Whether transformers passes `token_type_ids` to the model: `model_input_names` of
/// `tokenizer_config.json` when given; else not for the generic fast class
/// (`PreTrainedTokenizerFast` / `TokenizersBackend`, whose transformers 5 default is
/// `["input_ids", "attention_mask"]`), else yes (the model-specific classes of the BERT family).
fn tokenizer_config_type_ids(dir: &ModelFiles) -> Result<bool> {
    let Some(cfg) = dir.read_json("tokenizer_config.json")? else {
        return Ok(true);
    };
    if let Some(names) = cfg.get("model_input_names").and_then(|v| v.as_array()) {
        return Ok(names.iter().any(|n| n == "token_type_ids"));
    }
    let class = cfg.get("tokenizer_class").and_then(|v| v.as_str());
    Ok(!matches!(
        class,
        Some("PreTrainedTokenizerFast" | "TokenizersBackend")
    ))
}

/// The input length the position table of `config.json` allows, if it says.
fn config_max_positions(dir: &ModelFiles) -> Result<Option<usize>> {
    let Some(cfg) = dir.read_json("config.json")? else {
        return Ok(None);
    };
    let Some(positions) = cfg.get("max_position_embeddings").and_then(|v| v.as_u64()) else {
        return Ok(None);
    };
    let model_type = cfg.get("model_type").and_then(|v| v.as_str()).unwrap_or("");
    // RoBERTa-style position ids start after the padding index, so `pad_token_id + 1` rows are
    // never used by real tokens (514 positions → 512 tokens).
    let offset = if matches!(model_type, "roberta" | "xlm-roberta" | "camembert") {
        cfg.get("pad_token_id")
            .and_then(|v| v.as_u64())
            .unwrap_or(1)
            + 1
    } else {
        0
    };
    Ok(positions
        .checked_sub(offset)
        .filter(|&n| n > 0)
        .map(|n| n as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn shared() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared")
    }

    fn jsonl(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn ids(v: &serde_json::Value) -> Vec<u32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect()
    }

    /// Every tiny model's tokenizer gives the pipeline's exact ids (empty, non-ASCII, pair, over-long).
    #[test]
    fn tiny_pipeline_ids_match_hf() {
        let dir = shared().join("fixtures/tiny");
        let rows = jsonl(&dir.join("tiny-pipeline.hf.jsonl"));
        let mut models = std::collections::BTreeSet::new();
        let mut truncated = 0;
        for r in &rows {
            let model = r["model"].as_str().unwrap();
            models.insert(model.to_string());
            let tok = TextTokenizer::load(&dir.join(model)).unwrap();
            assert_eq!(tok.model_max_length(), 64, "{model}");
            let text = r["text"].as_str().unwrap();
            let pair = r["text_pair"].as_str();
            let want = ids(&r["input_ids"]);
            let got = tok.encode(text, pair, None).unwrap();
            assert_eq!(got.ids, want, "{model}: {text:?} / {pair:?}");
            assert_eq!(got.type_ids.len(), want.len());
            if want.len() == 64 {
                truncated += 1;
                // Without the limit the text is longer: truncation really happened.
                assert!(tok.encode(text, pair, Some(1000)).unwrap().ids.len() > 64);
            }
        }
        assert_eq!(models.len(), 7, "{models:?}");
        assert_eq!(truncated, 7);
    }

    /// The browser's way in: a folder's files held in memory tokenize exactly like the folder
    /// (Hugging Face's ids, the same length limit read from tokenizer_config.json/config.json).
    #[test]
    fn files_in_memory_tokenize_like_the_folder() {
        let dir = shared().join("fixtures/tiny");
        for r in jsonl(&dir.join("tiny-pipeline.hf.jsonl")) {
            let model = r["model"].as_str().unwrap();
            let files = std::fs::read_dir(dir.join(model))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.is_file())
                .map(|p| {
                    let name = p.file_name().unwrap().to_str().unwrap().to_string();
                    (name, std::fs::read(&p).unwrap())
                });
            let tok = TextTokenizer::from_files(&ModelFiles::memory(model, files)).unwrap();
            assert_eq!(tok.model_max_length(), 64, "{model}");
            let got = tok
                .encode(r["text"].as_str().unwrap(), r["text_pair"].as_str(), None)
                .unwrap();
            assert_eq!(got.ids, ids(&r["input_ids"]), "{model}");
        }
        let none = ModelFiles::memory("https://example.org/m", std::iter::empty());
        let e = TextTokenizer::from_files(&none).err().unwrap().to_string();
        assert!(
            e.contains("https://example.org/m") && e.contains("no tokenizer.json"),
            "{e}"
        );
    }

    /// A pair truncated `longest_first` keeps both texts, trimming the longer one first.
    #[test]
    fn pair_truncation_is_longest_first() {
        // A BERT tokenizer that hands the model token types, so the pair's tokens are visible.
        let tok = TextTokenizer::load(&shared().join("models/minilm-sst2")).unwrap();
        let long = "one two three ".repeat(10);
        let e = tok.encode(&long, Some("a good film"), Some(16)).unwrap();
        assert_eq!(e.ids.len(), 16);
        let pair_len = e.type_ids.iter().filter(|&&t| t == 1).count();
        let alone = tok.encode("a good film", None, None).unwrap().ids.len() - 2;
        assert_eq!(pair_len, alone + 1, "pair kept whole, plus its [SEP]");
        assert!(tok.encode(&long, Some("x"), Some(3)).is_err());
        // An empty pair is dropped, as transformers' fast tokenizers drop it.
        assert_eq!(
            tok.encode("a good film", Some(""), None).unwrap(),
            tok.encode("a good film", None, None).unwrap()
        );
    }

    /// all-MiniLM-L6-v2 embedding inputs (max_length 256) come out the same with minilm-sst2's tokenizer.
    #[test]
    fn embedding_ids_match_hf() {
        let tok = TextTokenizer::load(&shared().join("models/minilm-sst2")).unwrap();
        assert_eq!(tok.model_max_length(), 512);
        let rows = jsonl(&shared().join("fixtures/embeddings.hf.jsonl"));
        assert_eq!(rows.len(), 10);
        for r in &rows {
            let s = r["sentence"].as_str().unwrap();
            assert_eq!(
                tok.encode(s, None, Some(256)).unwrap().ids,
                ids(&r["input_ids"]),
                "{s:?}"
            );
        }
    }

    /// The f32 base model from `scripts/fetch-models.sh` (which `.ci/run` runs): its tokenizer.json
    /// bakes in truncation/padding to 128, which must be gone, and its vocabulary is minilm-sst2's.
    #[test]
    fn base_minilm_tokenizer_has_no_baked_truncation() {
        let dir = std::env::var("WGFORMER_MODELS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".models"))
            .join("all-MiniLM-L6-v2");
        assert!(
            dir.join("tokenizer.json").is_file(),
            "{} absent: run scripts/fetch-models.sh (or set WGFORMER_MODELS_DIR)",
            dir.display()
        );
        let base = TextTokenizer::load(&dir).unwrap();
        let sst2 = TextTokenizer::load(&shared().join("models/minilm-sst2")).unwrap();
        assert_eq!(base.model_max_length(), 512);
        assert_eq!(base.inner().get_vocab(true), sst2.inner().get_vocab(true));
        let long = "the plot is nothing but boilerplate clichés . ".repeat(40);
        let e = base.encode(&long, None, Some(256)).unwrap();
        assert_eq!(e.ids.len(), 256);
        assert_eq!(e, sst2.encode(&long, None, Some(256)).unwrap());
        let short = base.encode("a man is eating food .", None, None).unwrap();
        assert_eq!(short.ids.len(), 8, "no padding to 128");
        let crate::pipelines::embed::PoolingConfig { pooling, normalize } =
            crate::pipelines::embed::PoolingConfig::load(&dir).unwrap();
        assert_eq!(
            (pooling, normalize),
            (crate::pipelines::embed::Pooling::Mean, true)
        );
        assert_eq!(
            crate::pipelines::embed::SentenceBertConfig::from_files(&ModelFiles::dir(&dir))
                .unwrap()
                .max_seq_length,
            Some(256)
        );
    }

    #[test]
    fn missing_tokenizer_json_is_a_clear_error() {
        let err = TextTokenizer::load(&shared().join("fixtures")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("tokenizer.json") && msg.contains("fast tokenizer"),
            "{msg}"
        );
    }

    fn tiny2(name: &str) -> TextTokenizer {
        TextTokenizer::load(&shared().join("fixtures/tiny2").join(name)).unwrap()
    }

    /// Special tokens by role from tokenizer_config.json, and whether the model marks
    /// word continuations, for the three tokenizer families.
    #[test]
    fn special_tokens_and_word_awareness() {
        let bert = tiny2("tiny-bert-ner");
        let s = bert.special();
        assert_eq!(s.mask, Some(("[MASK]".to_string(), 4)));
        assert_eq!(s.unk, Some(("[UNK]".to_string(), 3)));
        assert_eq!(s.pad, Some(("[PAD]".to_string(), 0)));
        assert!(bert.word_aware());
        let roberta = tiny2("tiny-roberta-ner");
        assert_eq!(roberta.special().mask, Some(("<mask>".to_string(), 4)));
        assert_eq!(roberta.special().pad, Some(("<pad>".to_string(), 1)));
        assert!(
            !roberta.word_aware(),
            "byte-level BPE without a continuation prefix"
        );
        assert!(!tiny2("tiny-xlm-roberta-ner").word_aware(), "Unigram");
    }

    /// Offsets in characters, and a byte-level tokenizer's offsets trimmed of the leading space
    /// once (the post-processor runs once), as transformers reports them.
    #[test]
    fn char_offsets_and_byte_level_trimming() {
        let roberta = tiny2("tiny-roberta-ner");
        let e = roberta
            .encode_with_char_offsets("Marie Curie", None)
            .unwrap();
        let toks: Vec<String> = e
            .get_ids()
            .iter()
            .map(|&i| roberta.id_to_token(i))
            .collect();
        let k = toks.iter().position(|t| t == "ĠC").expect("a ĠC token");
        assert_eq!(e.get_offsets()[k], (6, 7));
        assert_eq!(e.get_special_tokens_mask()[0], 1);
        let bert = tiny2("tiny-bert-ner");
        let e = bert.encode_with_char_offsets("Zürich ☕ x", None).unwrap();
        let last = e.get_offsets()[e.len() - 2];
        assert_eq!(last, (9, 10), "characters, not bytes");
    }

    /// only_first cuts the premise and keeps the hypothesis; when the premise cannot give
    /// enough, nothing is cut (transformers retries without truncation).
    #[test]
    fn only_first_truncation() {
        let bert = tiny2("tiny-bert-nli");
        let premise = "one two three ".repeat(30);
        let hyp = "This example is sports.";
        let e = bert
            .encode_truncating(&premise, Some(hyp), Some(24), Truncation::OnlyFirst)
            .unwrap();
        assert_eq!(e.ids.len(), 24);
        // The hypothesis whole at the end: its tokens (without [CLS]) close the pair.
        let h = bert.encode(hyp, None, None).unwrap().ids;
        assert!(e.ids.ends_with(&h[1..]), "{:?} / {h:?}", e.ids);
        let long_hyp = "sports ".repeat(40);
        let e = bert
            .encode_truncating(
                "short premise",
                Some(&long_hyp),
                Some(24),
                Truncation::OnlyFirst,
            )
            .unwrap();
        assert!(e.ids.len() > 24, "untruncated");
        let none = bert
            .encode_truncating(&premise, None, None, Truncation::None)
            .unwrap();
        assert!(none.ids.len() > 64);
    }

    /// Decoding as transformers: the tokenizer's decoder, special tokens kept or skipped, and
    /// `clean_up_tokenization` only where the config asks.
    #[test]
    fn decoding_and_clean_up() {
        let bert = tiny2("tiny-bert-mlm");
        let e = bert.encode("the capital is [MASK].", None, None).unwrap();
        assert_eq!(bert.decode(&e.ids, true).unwrap(), "the capital is.");
        assert!(bert.decode(&e.ids, false).unwrap().starts_with("[CLS] the"));
        let toks = vec!["un".to_string(), "##der".to_string(), "stand".to_string()];
        assert_eq!(bert.tokens_to_string(&toks).unwrap(), "under stand");
        assert_eq!(
            clean_up_tokenization("a , b . it ' s we 're do n't"),
            "a, b. it's we're don't"
        );
    }

    /// `truncation_side: "left"` keeps the end of an over-long input (transformers hands it to
    /// the fast tokenizer as the truncation direction): the kept tokens are the last ones of the
    /// untruncated encoding, for single texts and for pairs (longest first).
    #[test]
    fn truncation_side_left_keeps_the_end() {
        let tmp = std::env::temp_dir().join(format!("wgformer-tok-left-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let src = shared().join("fixtures/tiny/tiny-bert");
        std::fs::copy(src.join("tokenizer.json"), tmp.join("tokenizer.json")).unwrap();
        let right = TextTokenizer::load(&tmp).unwrap();
        std::fs::write(
            tmp.join("tokenizer_config.json"),
            r#"{"truncation_side": "left"}"#,
        )
        .unwrap();
        let left = TextTokenizer::load(&tmp).unwrap();
        let text = "one two three four five six seven eight nine ten";
        let full = right.encode(text, None, None).unwrap().ids;
        let (cls, sep) = (full[0], full[full.len() - 1]);
        let words = &full[1..full.len() - 1];
        assert!(words.len() > 6);
        let keep = |ids: &[u32]| [vec![cls], ids.to_vec(), vec![sep]].concat();
        assert_eq!(
            right.encode(text, None, Some(8)).unwrap().ids,
            keep(&words[..6])
        );
        assert_eq!(
            left.encode(text, None, Some(8)).unwrap().ids,
            keep(&words[words.len() - 6..])
        );
        // A pair: each side keeps as many tokens as with right truncation (tokenizers' longest
        // first), taken from its end instead of its start.
        let pair = "alpha beta";
        let p = right.encode(pair, None, None).unwrap().ids;
        let pair_words = &p[1..p.len() - 1];
        let r = right.encode(text, Some(pair), Some(12)).unwrap().ids;
        let n1 = r.iter().position(|&t| t == sep).unwrap() - 1;
        let n2 = r.len() - 3 - n1;
        assert_eq!(r[1..1 + n1], words[..n1]);
        assert!(n2 < pair_words.len(), "both sides must lose tokens here");
        let want = [
            vec![cls],
            words[words.len() - n1..].to_vec(),
            vec![sep],
            pair_words[pair_words.len() - n2..].to_vec(),
            vec![sep],
        ]
        .concat();
        assert_eq!(left.encode(text, Some(pair), Some(12)).unwrap().ids, want);
        std::fs::write(
            tmp.join("tokenizer_config.json"),
            r#"{"truncation_side": "middle"}"#,
        )
        .unwrap();
        let e = TextTokenizer::load(&tmp).unwrap_err().to_string();
        assert!(e.contains("truncation_side"), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn sentinel_max_length_falls_back_to_positions() {
        let tmp = std::env::temp_dir().join(format!("wgformer-tok-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(
            tmp.join("tokenizer_config.json"),
            r#"{"model_max_length": 1000000000000000019884624838656}"#,
        )
        .unwrap();
        std::fs::write(
            tmp.join("config.json"),
            r#"{"model_type": "xlm-roberta", "max_position_embeddings": 514, "pad_token_id": 1}"#,
        )
        .unwrap();
        assert_eq!(
            tokenizer_config_max_length(&ModelFiles::dir(&tmp)).unwrap(),
            None
        );
        assert_eq!(
            config_max_positions(&ModelFiles::dir(&tmp)).unwrap(),
            Some(512)
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
