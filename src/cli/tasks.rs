//! `wgformer qa | classify | embed | ner | fill-mask | zero-shot | rerank | eval`: parse
//! arguments, call the pipelines, print.

use super::GpuArgs;
use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::path::PathBuf;
use wgformer::hub;
use wgformer::pipelines::classify::{ClassifyFunction, TopK};
use wgformer::pipelines::fill_mask::{self, FillOutput};
use wgformer::pipelines::input::{self, Item, QaInput, TextInput};
use wgformer::pipelines::qa::{QaAnswer, QaParams};
use wgformer::pipelines::token_classification::{Aggregation, Entity};
use wgformer::pipelines::zero_shot::{self, ZeroShotResult};
use wgformer::pipelines::{
    squad, Classifier, Embedder, FillMasker, QuestionAnswerer, Reranker, TokenClassifier,
    ZeroShotClassifier, DEFAULT_BATCH,
};

#[derive(Args)]
pub struct QaArgs {
    /// Local Hugging Face folder or hub id.
    #[arg(long, default_value = hub::DEFAULT_QA_MODEL)]
    model: String,
    #[arg(long, short)]
    question: Option<String>,
    #[arg(long, short)]
    context: Option<String>,
    /// JSONL of {"id","question","context"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    #[arg(long, default_value_t = 1)]
    top_k: usize,
    /// Overlap, in tokens, of consecutive context windows [default: min(max-seq-len / 2, 128),
    /// as transformers]
    #[arg(long)]
    doc_stride: Option<usize>,
    #[arg(long, default_value_t = 15)]
    max_answer_len: usize,
    /// Longest window in tokens [default: min(the tokenizer's model_max_length, 384), as
    /// transformers; at most the model's positions]
    #[arg(long)]
    max_seq_len: Option<usize>,
    #[arg(long, default_value_t = 64)]
    max_question_len: usize,
    #[arg(long)]
    handle_impossible_answer: bool,
    /// Print transformers' JSON (`{"score","start","end","answer"}`), one line per input.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Local Hugging Face folder or hub id.
    #[arg(long, default_value = hub::DEFAULT_CLASSIFY_MODEL)]
    model: String,
    /// Texts to classify.
    texts: Vec<String>,
    /// Second text of a pair (NLI, paraphrase), applied to every positional text.
    #[arg(long)]
    pair: Option<String>,
    /// One text per line, or JSONL {"text","text_pair"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// Labels to return: a number or `all`.
    #[arg(long, default_value = "1")]
    top_k: String,
    /// softmax, sigmoid or none (default: as transformers picks from the config).
    #[arg(long)]
    function: Option<String>,
    /// Print transformers' JSON (`[{"label","score"}]`), one line per input.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct EmbedArgs {
    /// Local Hugging Face / sentence-transformers folder or hub id.
    #[arg(long, default_value = hub::DEFAULT_EMBED_MODEL)]
    model: String,
    texts: Vec<String>,
    /// One text per line, or JSONL {"text"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// Print one JSON array per input (default prints a short summary).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Exact match and F1 on a SQuAD v1.1 file, with the official normalisation.
    Squad(EvalSquadArgs),
    /// Accuracy on a TSV (a header, then `sentence<TAB>label`, as GLUE SST-2).
    Classify(EvalClassifyArgs),
}

#[derive(Args)]
pub struct EvalSquadArgs {
    #[arg(long, default_value = hub::DEFAULT_QA_MODEL)]
    model: String,
    /// SQuAD v1.1 JSON (e.g. dev-v1.1.json).
    #[arg(long)]
    data: PathBuf,
    /// Only the first N questions.
    #[arg(long)]
    limit: Option<usize>,
    /// Where to write `{id: answer}`.
    #[arg(long, default_value = "predictions.json")]
    predictions: PathBuf,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct EvalClassifyArgs {
    #[arg(long, default_value = hub::DEFAULT_CLASSIFY_MODEL)]
    model: String,
    #[arg(long)]
    data: PathBuf,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

fn bar(total: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} ({eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    // Small jobs finish before a bar is worth drawing.
    if total < 8 {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    pb
}

/// Inputs by line number: those that parsed, and the errors of those that did not.
type Split<T> = (Vec<(usize, T)>, Vec<(usize, String)>);

/// Items that parsed, and reports of those that did not (kept in line order for output).
fn split_items<T>(items: Vec<Item<T>>) -> Split<T> {
    let (mut ok, mut bad) = (vec![], vec![]);
    for it in items {
        match it.value {
            Ok(v) => ok.push((it.line, v)),
            Err(e) => bad.push((it.line, e)),
        }
    }
    (ok, bad)
}

/// Runs `each` on every parsed input with its result, reporting the unreadable lines `bad` in
/// their places between them (by line number), so `--json` output lines follow input lines.
fn in_line_order<I, R>(
    inputs: &[(usize, I)],
    results: Vec<R>,
    bad: &[(usize, String)],
    json: bool,
    mut each: impl FnMut(usize, &I, R) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut bad = bad.iter().peekable();
    for ((line, inp), r) in inputs.iter().zip(results) {
        while let Some((at, e)) = bad.next_if(|(at, _)| at < line) {
            report_error(*at, e, e, json);
        }
        each(*line, inp, r)?;
    }
    for (at, e) in bad {
        report_error(*at, e, e, json);
    }
    Ok(())
}

/// One input that failed: `shown` on stderr, and with `--json` a `{"line","error"}` line in its
/// place on stdout so outputs stay aligned with inputs.
fn report_error(line: usize, shown: &str, err: &str, json: bool) {
    eprintln!("error: {shown}");
    if json {
        println!("{}", serde_json::json!({ "line": line, "error": err }));
    }
}

pub fn qa(a: QaArgs) -> anyhow::Result<()> {
    let params = QaParams {
        top_k: a.top_k,
        doc_stride: a.doc_stride,
        max_answer_len: a.max_answer_len,
        max_seq_len: a.max_seq_len,
        max_question_len: a.max_question_len,
        handle_impossible_answer: a.handle_impossible_answer,
        ..QaParams::default()
    };
    let (inputs, bad) = match (&a.input, &a.question, &a.context) {
        (Some(path), None, None) => split_items(input::read_qa(path)?),
        (None, Some(q), Some(c)) => (
            vec![(
                0,
                QaInput {
                    id: "0".into(),
                    question: q.clone(),
                    context: c.clone(),
                },
            )],
            vec![],
        ),
        _ => anyhow::bail!(
            "give --question and --context, or --input FILE (JSONL of {{\"id\",\"question\",\"context\"}})"
        ),
    };
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let qa = QuestionAnswerer::load(&dir, &gpu)?;
    let list: Vec<QaInput> = inputs.iter().map(|(_, i)| i.clone()).collect();
    let pb = bar(list.len(), "answering");
    let answers = qa.answer(&list, &params, a.batch_size, &|n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    let mut failed = !bad.is_empty();
    in_line_order(&inputs, answers, &bad, a.json, |line, inp, ans| {
        match ans {
            Ok(ans) => print_answers(&inp.id, &ans, a.json, params.top_k)?,
            Err(e) => {
                failed = true;
                let where_ = if a.input.is_some() {
                    format!("line {line}: ")
                } else {
                    String::new()
                };
                report_error(line, &format!("{where_}{e}"), &e.to_string(), a.json);
            }
        }
        Ok(())
    })?;
    if failed && list.len() <= 1 {
        anyhow::bail!("no answer");
    }
    Ok(())
}

fn print_answers(id: &str, ans: &[QaAnswer], json: bool, top_k: usize) -> anyhow::Result<()> {
    if json {
        // transformers returns a dict for top_k 1 and a list otherwise.
        let s = match (top_k, ans) {
            (1, [one]) => serde_json::to_string(one)?,
            _ => serde_json::to_string(ans)?,
        };
        println!("{s}");
        return Ok(());
    }
    if ans.is_empty() {
        println!("{id}: no answer found");
    }
    for x in ans {
        println!(
            "{}  (score {:.4}, characters {}..{}{})",
            x.answer,
            x.score,
            x.start,
            x.end,
            if id == "0" {
                String::new()
            } else {
                format!(", id {id}")
            }
        );
    }
    Ok(())
}

fn parse_top_k(s: &str) -> anyhow::Result<TopK> {
    TopK::parse(s).with_context(|| format!("--top-k {s}"))
}

fn text_inputs(
    texts: &[String],
    pair: Option<&String>,
    file: Option<&String>,
) -> anyhow::Result<Split<TextInput>> {
    match (file, texts.is_empty()) {
        (Some(path), true) => Ok(split_items(with_pair(input::read_texts(path)?, pair))),
        (None, false) => Ok((
            texts
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        i + 1,
                        TextInput {
                            text: t.clone(),
                            text_pair: pair.cloned(),
                        },
                    )
                })
                .collect(),
            vec![],
        )),
        (Some(_), false) => anyhow::bail!("give texts or --input FILE, not both"),
        (None, true) => anyhow::bail!("nothing to do: give texts as arguments or --input FILE"),
    }
}

/// `--pair` as the second text of every input line that has none of its own; a line with its
/// own `text_pair` as well is refused (which of the two was meant cannot be told).
fn with_pair(items: Vec<Item<TextInput>>, pair: Option<&String>) -> Vec<Item<TextInput>> {
    let Some(pair) = pair else { return items };
    items
        .into_iter()
        .map(|it| Item {
            line: it.line,
            value: it.value.and_then(|t| match t.text_pair {
                None => Ok(TextInput {
                    text_pair: Some(pair.clone()),
                    ..t
                }),
                Some(_) => Err(format!(
                    "line {}: has its own \"text_pair\" and --pair was given too; give one",
                    it.line
                )),
            }),
        })
        .collect()
}

pub fn classify(a: ClassifyArgs) -> anyhow::Result<()> {
    let top_k = parse_top_k(&a.top_k)?;
    let function = a
        .function
        .as_deref()
        .map(ClassifyFunction::parse)
        .transpose()?;
    let (inputs, bad) = text_inputs(&a.texts, a.pair.as_ref(), a.input.as_ref())?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let c = Classifier::load(&dir, &gpu, function)?;
    let list: Vec<TextInput> = inputs.iter().map(|(_, i)| i.clone()).collect();
    let pb = bar(list.len(), "classifying");
    let results = c.classify(&list, top_k, a.batch_size, &|n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    in_line_order(&inputs, results, &bad, a.json, |line, inp, r| {
        match r {
            Ok(labels) if a.json => println!("{}", serde_json::to_string(&labels)?),
            Ok(labels) => {
                let shown: Vec<String> = labels
                    .iter()
                    .map(|l| format!("{} {:.4}", l.label, l.score))
                    .collect();
                println!("{}\t{}", shown.join(", "), inp.text);
            }
            Err(e) => report_error(line, &format!("line {line}: {e}"), &e.to_string(), a.json),
        }
        Ok(())
    })
}

pub fn embed(a: EmbedArgs) -> anyhow::Result<()> {
    let (inputs, bad) = text_inputs(&a.texts, None, a.input.as_ref())?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let e = Embedder::load(&dir, &gpu)?;
    let list: Vec<TextInput> = inputs.iter().map(|(_, i)| i.clone()).collect();
    let pb = bar(list.len(), "embedding");
    let results = e.embed(&list, a.batch_size, &|n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    in_line_order(&inputs, results, &bad, a.json, |line, inp, r| {
        match r {
            Ok(v) if a.json => println!("{}", serde_json::to_string(&v)?),
            Ok(v) => {
                let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
                println!(
                    "[{}, ...] ({} dims)\t{}",
                    head.join(", "),
                    v.len(),
                    inp.text
                );
            }
            Err(err) => report_error(
                line,
                &format!("line {line}: {err}"),
                &err.to_string(),
                a.json,
            ),
        }
        Ok(())
    })
}

pub fn eval(cmd: EvalCommand) -> anyhow::Result<()> {
    match cmd {
        EvalCommand::Squad(a) => eval_squad(a),
        EvalCommand::Classify(a) => eval_classify(a),
    }
}

fn eval_squad(a: EvalSquadArgs) -> anyhow::Result<()> {
    let mut data = squad::load_dataset(&a.data)?;
    if let Some(n) = a.limit {
        data.truncate(n);
    }
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let qa = QuestionAnswerer::load(&dir, &gpu)?;
    let inputs: Vec<QaInput> = data
        .iter()
        .map(|q| QaInput {
            id: q.id.clone(),
            question: q.question.clone(),
            context: q.context.clone(),
        })
        .collect();
    let pb = bar(inputs.len(), "squad");
    let t0 = std::time::Instant::now();
    let answers = qa.answer(&inputs, &QaParams::default(), a.batch_size, &|n| {
        pb.set_position(n as u64)
    })?;
    pb.finish_and_clear();
    let mut preds = HashMap::new();
    for (q, ans) in data.iter().zip(answers) {
        match ans {
            Ok(ans) => {
                preds.insert(
                    q.id.clone(),
                    ans.first().map(|x| x.answer.clone()).unwrap_or_default(),
                );
            }
            Err(e) => eprintln!("error: question {}: {e}", q.id),
        }
    }
    let scores = squad::evaluate(&data, &preds);
    std::fs::write(&a.predictions, serde_json::to_string_pretty(&preds)?)
        .with_context(|| format!("writing {}", a.predictions.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "exact_match": scores.exact_match,
            "f1": scores.f1,
            "total": scores.total,
            "seconds": t0.elapsed().as_secs_f64(),
            "adapter": gpu.describe(),
            "predictions": a.predictions,
        })
    );
    Ok(())
}

fn eval_classify(a: EvalClassifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("reading {}", a.data.display()))?;
    let mut rows = vec![];
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let (sentence, label) = line.rsplit_once('\t').with_context(|| {
            format!(
                "{} line {}: expected `sentence<TAB>label`",
                a.data.display(),
                i + 1
            )
        })?;
        let label: usize = label.trim().parse().with_context(|| {
            format!(
                "{} line {}: label `{label}` is not an integer id",
                a.data.display(),
                i + 1
            )
        })?;
        rows.push((sentence.to_string(), label));
    }
    if let Some(n) = a.limit {
        rows.truncate(n);
    }
    anyhow::ensure!(
        !rows.is_empty(),
        "{}: no rows after the header",
        a.data.display()
    );
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let c = Classifier::load(&dir, &gpu, None)?;
    let inputs: Vec<TextInput> = rows
        .iter()
        .map(|(s, _)| TextInput {
            text: s.clone(),
            text_pair: None,
        })
        .collect();
    let pb = bar(inputs.len(), "classify");
    let t0 = std::time::Instant::now();
    let results = c.classify(&inputs, TopK::One, a.batch_size, &|n| {
        pb.set_position(n as u64)
    })?;
    pb.finish_and_clear();
    let labels = &c.model.config.id2label;
    let mut correct = 0;
    for ((_, gold), r) in rows.iter().zip(&results) {
        if let Ok(top) = r {
            if labels.get(*gold) == top.first().map(|l| &l.label) {
                correct += 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "accuracy": correct as f64 / rows.len() as f64,
            "correct": correct,
            "total": rows.len(),
            "seconds": t0.elapsed().as_secs_f64(),
            "adapter": gpu.describe(),
        })
    );
    Ok(())
}

#[derive(Args)]
pub struct NerArgs {
    /// Local Hugging Face folder (a *ForTokenClassification model) or hub id.
    #[arg(long)]
    model: String,
    /// Texts to label.
    texts: Vec<String>,
    /// One text per line, or JSONL {"text"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// none, simple, first, average or max (transformers' `aggregation_strategy`).
    #[arg(long, default_value = "none")]
    aggregation_strategy: String,
    /// Print transformers' JSON (a list of entities), one line per input.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct FillMaskArgs {
    /// Local Hugging Face folder (a *ForMaskedLM model) or hub id.
    #[arg(long)]
    model: String,
    /// Texts with the tokenizer's mask token ([MASK], <mask>...).
    texts: Vec<String>,
    /// One text per line, or JSONL {"text"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// Predictions per mask.
    #[arg(long, default_value_t = fill_mask::DEFAULT_TOP_K)]
    top_k: usize,
    /// Only score these tokens (comma-separated; a word outside the vocabulary stands for its
    /// first token).
    #[arg(long, value_delimiter = ',')]
    targets: Option<Vec<String>>,
    /// Print transformers' JSON, one line per input (a list, or a list per mask).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct ZeroShotArgs {
    /// Local Hugging Face folder (an NLI *ForSequenceClassification model) or hub id.
    #[arg(long)]
    model: String,
    /// Texts to classify.
    texts: Vec<String>,
    /// One text per line, or JSONL {"text"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// Candidate labels, comma-separated.
    #[arg(long)]
    labels: String,
    /// Score each label independently (entailment against contradiction).
    #[arg(long)]
    multi_label: bool,
    /// The hypothesis, with {} where the label goes.
    #[arg(long, default_value = zero_shot::DEFAULT_TEMPLATE)]
    hypothesis_template: String,
    /// Print transformers' JSON (`{"sequence","labels","scores"}`), one line per input.
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

#[derive(Args)]
pub struct RerankArgs {
    /// Local Hugging Face folder (a one-label cross-encoder) or hub id.
    #[arg(long)]
    model: String,
    /// The query every document is scored against.
    #[arg(long)]
    query: String,
    /// Documents to rank.
    docs: Vec<String>,
    /// One document per line, or JSONL {"text"} (`-` for stdin).
    #[arg(long)]
    input: Option<String>,
    /// Scores are the raw logits instead of what the pipeline gives (the sigmoid).
    #[arg(long)]
    raw_scores: bool,
    /// Print one JSON line per document, best first: `{"index","score","text"}` (`index`: the
    /// document's 0-based position in the input; `line` too for --input).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    batch_size: usize,
    #[command(flatten)]
    gpu: GpuArgs,
}

/// The texts of a one-text-per-input command, each with its line number (its 1-based position
/// for positional texts), in input order; a JSONL line with a `text_pair` is refused.
fn single_texts(
    texts: &[String],
    file: Option<&String>,
    command: &str,
) -> anyhow::Result<Vec<Item<String>>> {
    let items = match (file, texts.is_empty()) {
        (Some(path), true) => input::read_texts(path)?,
        (None, false) => texts
            .iter()
            .enumerate()
            .map(|(i, t)| Item {
                line: i + 1,
                value: Ok(TextInput {
                    text: t.clone(),
                    text_pair: None,
                }),
            })
            .collect(),
        (Some(_), false) => anyhow::bail!("give texts or --input FILE, not both"),
        (None, true) => anyhow::bail!("nothing to do: give texts as arguments or --input FILE"),
    };
    Ok(items
        .into_iter()
        .map(|it| Item {
            line: it.line,
            value: it.value.and_then(|t| match t.text_pair {
                None => Ok(t.text),
                Some(_) => Err(format!(
                    "line {}: {command} takes one text per input; \"text_pair\" is not used",
                    it.line
                )),
            }),
        })
        .collect())
}

/// The texts that parsed, for the pipeline.
fn good_texts(items: &[Item<String>]) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| i.value.as_ref().ok().cloned())
        .collect()
}

/// Prints one result per input in input order: with `--json` each result's JSON or a
/// `{"line","error"}` line in its place (errors also on stderr); `show` prints a result as text.
/// `results` has one entry per input that parsed. True when some input failed.
fn emit<T: serde::Serialize>(
    items: &[Item<String>],
    results: Vec<wgformer::Result<T>>,
    json: bool,
    show: impl Fn(&str, &T),
) -> anyhow::Result<bool> {
    let mut results = results.into_iter();
    let mut failed = false;
    for it in items {
        match &it.value {
            Err(e) => {
                failed = true;
                report_error(it.line, e, e, json);
            }
            Ok(text) => match results.next().expect("one result per parsed input") {
                Ok(v) if json => println!("{}", serde_json::to_string(&v)?),
                Ok(v) => show(text, &v),
                Err(e) => {
                    failed = true;
                    report_error(
                        it.line,
                        &format!("line {}: {e}", it.line),
                        &e.to_string(),
                        json,
                    );
                }
            },
        }
    }
    Ok(failed)
}

/// Runs a one-text-per-input pipeline over the texts that parsed, with a progress bar, then
/// prints one result per input in input order (see [`emit`]). Fails when the only input did.
fn run_single<T: serde::Serialize>(
    items: &[Item<String>],
    doing: &str,
    json: bool,
    run: impl FnOnce(&[String], &dyn Fn(usize)) -> wgformer::Result<Vec<wgformer::Result<T>>>,
    show: impl Fn(&str, &T),
) -> anyhow::Result<()> {
    let texts = good_texts(items);
    let pb = bar(texts.len(), doing);
    let results = run(&texts, &|n| pb.set_position(n as u64))?;
    pb.finish_and_clear();
    let failed = emit(items, results, json, show)?;
    if failed && items.len() <= 1 {
        anyhow::bail!("no result");
    }
    Ok(())
}

pub fn ner(a: NerArgs) -> anyhow::Result<()> {
    let strategy = Aggregation::parse(&a.aggregation_strategy)?;
    let items = single_texts(&a.texts, a.input.as_ref(), "ner")?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let m = TokenClassifier::load(&dir, &gpu)?;
    run_single(
        &items,
        "labelling",
        a.json,
        |texts, progress| m.classify(texts, strategy, a.batch_size, progress),
        |text, ents: &Vec<Entity>| {
            println!("{text}");
            if ents.is_empty() {
                println!("  (no entities)");
            }
            for e in ents {
                println!(
                    "  {:<8} {:?} (score {:.4}, characters {}..{})",
                    e.label(),
                    e.word,
                    e.score,
                    e.start,
                    e.end
                );
            }
        },
    )
}

pub fn fill_mask(a: FillMaskArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.top_k > 0, "--top-k must be at least 1");
    let items = single_texts(&a.texts, a.input.as_ref(), "fill-mask")?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let m = FillMasker::load(&dir, &gpu)?;
    run_single(
        &items,
        "filling",
        a.json,
        |texts, progress| m.fill(texts, a.top_k, a.targets.as_deref(), a.batch_size, progress),
        |text, out: &FillOutput| {
            println!("{text}");
            for (k, fills) in out.per_mask().iter().enumerate() {
                for f in fills.iter() {
                    println!(
                        "  mask {}: {:<12} {:.4}  {}",
                        k + 1,
                        format!("{:?}", f.token_str),
                        f.score,
                        f.sequence
                    );
                }
            }
        },
    )
}

pub fn zero_shot(a: ZeroShotArgs) -> anyhow::Result<()> {
    let labels = zero_shot::parse_labels(&a.labels);
    anyhow::ensure!(
        !labels.is_empty(),
        "--labels: give at least one candidate label (comma-separated)"
    );
    // Refuse a template that cannot take the labels before loading anything.
    zero_shot::hypotheses("x", &labels, &a.hypothesis_template)?;
    let items = single_texts(&a.texts, a.input.as_ref(), "zero-shot")?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let m = ZeroShotClassifier::load(&dir, &gpu)?;
    if !m.entailment_found {
        eprintln!(
            "warning: no label of {:?} starts with \"entail\": reading the last label as entailment, as transformers does",
            m.model.config.id2label
        );
    }
    run_single(
        &items,
        "classifying",
        a.json,
        |texts, progress| {
            m.classify(
                texts,
                &labels,
                &a.hypothesis_template,
                a.multi_label,
                a.batch_size,
                progress,
            )
        },
        |text, r: &ZeroShotResult| {
            let shown: Vec<String> = r
                .labels
                .iter()
                .zip(&r.scores)
                .map(|(l, s)| format!("{l} {s:.4}"))
                .collect();
            println!("{}\t{text}", shown.join(", "));
        },
    )
}

pub fn rerank(a: RerankArgs) -> anyhow::Result<()> {
    let items = single_texts(&a.docs, a.input.as_ref(), "rerank")?;
    let dir = hub::resolve(&a.model)?;
    let gpu = a.gpu.open()?;
    let r = Reranker::load(&dir, &gpu)?;
    let docs = good_texts(&items);
    // Position in the input of each document that parsed.
    let positions: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, it)| it.value.is_ok())
        .map(|(k, _)| k)
        .collect();
    let pb = bar(docs.len(), "scoring");
    let scores = r.scores(&a.query, &docs, a.raw_scores, a.batch_size, &|n| {
        pb.set_position(n as u64)
    })?;
    pb.finish_and_clear();
    // Inputs that failed (unreadable lines, untokenizable documents), in input order first.
    let mut failed = false;
    for (k, it) in items.iter().enumerate() {
        let err = match &it.value {
            Err(e) => Some((e.clone(), e.clone())),
            Ok(_) => {
                let j = positions.iter().position(|&p| p == k).expect("parsed");
                scores[j]
                    .as_ref()
                    .err()
                    .map(|e| (format!("line {}: {e}", it.line), e.to_string()))
            }
        };
        if let Some((shown, e)) = err {
            failed = true;
            report_error(it.line, &shown, &e, a.json);
        }
    }
    for rank in Reranker::rank(&docs, &scores, true) {
        let k = positions[rank.index];
        let text = rank.text.unwrap_or_default();
        if a.json {
            let mut v = serde_json::json!({ "index": k, "score": rank.score, "text": text });
            if a.input.is_some() {
                v["line"] = items[k].line.into();
            }
            println!("{v}");
        } else {
            println!("{:.4}\t{k}\t{text}", rank.score);
        }
    }
    if failed && items.len() <= 1 {
        anyhow::bail!("no result");
    }
    Ok(())
}
