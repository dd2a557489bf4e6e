//! The request queue and the batcher that drains it on the GPU thread.
//!
//! HTTP handlers tokenize on the async runtime and send one [`Job`] per sequence (a QA window, one
//! text of a client batch) down a channel. The GPU thread, which alone owns the model, loops:
//! block for the first job, take every job queued behind it, sort them by length, cut them into
//! batches under the token budget (rows × padded length ≤ `max_batch_tokens`), the row limit
//! (`max_batch_requests`) and the adapter's binding limit, and run each batch through the model's
//! cached graphs. Each job is answered on its own oneshot channel, so one client's inputs may ride
//! in several batches and one batch carries many clients.
//!
//! A batch that fails (an error or a panic inside the run) is retried row by row, so only the rows
//! that fail alone get an error and the others their answers; the loop keeps serving either way.

use crate::models::Sequence;
use crate::pipelines::RowOutput;
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::Receiver;
use std::time::Instant;
use tokio::sync::oneshot;

use super::metrics::Metrics;

/// What the GPU thread answers for one job: its outputs, or why the run failed.
pub type JobResult = std::result::Result<RowOutput, String>;

/// One sequence to run and where its answer goes.
pub struct Job {
    pub seq: Sequence,
    pub enqueued: Instant,
    pub reply: oneshot::Sender<JobResult>,
}

/// How big one forward pass may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Rows × padded sequence length.
    pub max_batch_tokens: usize,
    /// Rows.
    pub max_batch_requests: usize,
}

/// What the batcher needs from a model: its padding rule, its row limit, and a run.
pub trait Runner {
    /// The padded length a sequence of `len` tokens runs at.
    fn bucket(&self, len: usize) -> usize;
    /// The most rows of padded length `seq` one run may hold (the adapter's limits).
    fn max_rows(&self, seq: usize) -> usize;
    /// Runs `rows`, answering one output per row in order.
    fn run(&mut self, rows: &[Sequence]) -> crate::Result<Vec<RowOutput>>;
}

/// Cuts `lens` (sorted ascending) into consecutive batches: each grows while its rows, its
/// padded tokens (rows × the bucket of its longest row) and the runner's row limit allow, and
/// holds at least one row (the server checks at start that one longest input fits the budget).
pub fn plan_batches(lens: &[usize], limits: BatchLimits, runner: &dyn Runner) -> Vec<Range<usize>> {
    let mut out = vec![];
    let mut start = 0;
    while start < lens.len() {
        let mut end = start + 1;
        while end < lens.len() {
            let rows = end + 1 - start;
            let seq = runner.bucket(lens[end]);
            if rows > limits.max_batch_requests
                || rows * seq > limits.max_batch_tokens
                || rows > runner.max_rows(seq)
            {
                break;
            }
            end += 1;
        }
        out.push(start..end);
        start = end;
    }
    out
}

/// The row count a batch of `n` real rows runs at: the next of 1, 2, 4, 8, 12, 16, 24, 32, 48,
/// 64, 96, ... (powers of two and their midpoints), at most `cap` (and never below `n`).
///
/// Graphs are built per (rows, padded length) and building one costs several forward passes on
/// some adapters, so batch shapes are kept to a few sizes: the extra rows (copies of a real row,
/// whose outputs are dropped) cost at most half a batch of compute, a new graph per distinct row
/// count would cost far more.
pub fn padded_rows(n: usize, cap: usize) -> usize {
    let mut size = 1;
    while size < n {
        size = if size < 8 {
            size * 2
        } else if size.is_power_of_two() {
            size + size / 2
        } else {
            // A midpoint 3·2^k: up to 4·2^k.
            size / 3 * 4
        };
    }
    size.min(cap).max(n)
}

/// Serves jobs until every sender is dropped (the server has stopped and drained), then returns.
pub fn run_loop(runner: &mut dyn Runner, rx: Receiver<Job>, limits: BatchLimits, m: &Metrics) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(j) = rx.try_recv() {
            jobs.push(j);
        }
        m.queue_size.decrement(jobs.len() as f64);
        // Clients that went away need no answer.
        jobs.retain(|j| !j.reply.is_closed());
        // Stable: equal lengths keep arrival order.
        jobs.sort_by_key(|j| j.seq.ids.len());
        let lens: Vec<usize> = jobs.iter().map(|j| j.seq.ids.len()).collect();
        let plan = plan_batches(&lens, limits, runner);
        let mut jobs = jobs.into_iter();
        for r in plan {
            let batch: Vec<Job> = jobs.by_ref().take(r.len()).collect();
            run_batch(runner, batch, limits, m);
        }
    }
}

fn run_batch(runner: &mut dyn Runner, mut jobs: Vec<Job>, limits: BatchLimits, m: &Metrics) {
    // Clients may have gone while earlier batches of this drain ran: a request of many rows
    // (QA windows) must not keep the GPU busy for nobody.
    jobs.retain(|j| !j.reply.is_closed());
    if jobs.is_empty() {
        return;
    }
    let now = Instant::now();
    let (rows, replies): (Vec<Sequence>, Vec<_>) = jobs
        .into_iter()
        .map(|j| {
            m.queue_duration
                .record(now.duration_since(j.enqueued).as_secs_f64());
            (j.seq, j.reply)
        })
        .unzip();
    let n = rows.len();
    let seq = runner.bucket(rows.iter().map(|r| r.ids.len()).max().unwrap_or(0));
    let cap = limits
        .max_batch_requests
        .min(limits.max_batch_tokens / seq.max(1))
        .min(runner.max_rows(seq));
    let mut padded = rows.clone();
    padded.resize(padded_rows(n, cap), rows[0].clone());
    m.batch_size.record(n as f64);
    m.batch_tokens.record((padded.len() * seq) as f64);
    match attempt(runner, &padded) {
        Ok(mut outs) => {
            outs.truncate(n);
            m.inference_duration.record(now.elapsed().as_secs_f64());
            for (reply, out) in replies.into_iter().zip(outs) {
                let _ = reply.send(Ok(out));
            }
        }
        Err(e) if n == 1 => {
            m.batch_failures.increment(1);
            tracing::warn!("a batch of one row failed: {e}");
            let _ = replies.into_iter().next().map(|r| r.send(Err(e)));
        }
        Err(e) => {
            m.batch_failures.increment(1);
            tracing::warn!("a batch of {n} rows failed ({e}); running its rows one by one");
            for (row, reply) in rows.into_iter().zip(replies) {
                if reply.is_closed() {
                    continue;
                }
                let r = attempt(runner, std::slice::from_ref(&row))
                    .map(|mut o| o.pop().expect("one output for one row"));
                if let Err(e) = &r {
                    m.batch_failures.increment(1);
                    tracing::warn!("a row of {} tokens failed alone: {e}", row.ids.len());
                }
                let _ = reply.send(r);
            }
        }
    }
}

/// One run, with errors and panics turned into a message.
fn attempt(runner: &mut dyn Runner, rows: &[Sequence]) -> Result<Vec<RowOutput>, String> {
    match catch_unwind(AssertUnwindSafe(|| runner.run(rows))) {
        Ok(Ok(outs)) if outs.len() == rows.len() => Ok(outs),
        Ok(Ok(outs)) => Err(format!(
            "the model answered {} rows for {}",
            outs.len(),
            rows.len()
        )),
        Ok(Err(e)) => Err(format!("model run failed: {e}")),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!("model run panicked: {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// Answers each row with the sum of its ids; fails any batch holding id 666 and panics on
    /// any batch holding id 777; records the batch sizes it ran.
    struct Mock {
        batches: Vec<usize>,
    }

    impl Runner for Mock {
        fn bucket(&self, len: usize) -> usize {
            len.next_multiple_of(4)
        }
        fn max_rows(&self, _seq: usize) -> usize {
            6
        }
        fn run(&mut self, rows: &[Sequence]) -> crate::Result<Vec<RowOutput>> {
            self.batches.push(rows.len());
            if rows.iter().any(|r| r.ids.contains(&777)) {
                panic!("boom");
            }
            if rows.iter().any(|r| r.ids.contains(&666)) {
                return Err(crate::Error::Input("bad row".into()));
            }
            Ok(rows
                .iter()
                .map(|r| RowOutput {
                    logits: vec![r.ids.iter().sum::<u32>() as f32],
                    last_hidden: vec![],
                })
                .collect())
        }
    }

    fn limits(tokens: usize, rows: usize) -> BatchLimits {
        BatchLimits {
            max_batch_tokens: tokens,
            max_batch_requests: rows,
        }
    }

    #[test]
    fn padded_row_counts() {
        let sizes: Vec<usize> = (1..=70).map(|n| padded_rows(n, 1000)).collect();
        let mut distinct = sizes.clone();
        distinct.dedup();
        assert_eq!(distinct, [1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96]);
        for (n, &p) in (1..=70).zip(&sizes) {
            assert!(p >= n && (n < 5 || p * 2 <= n * 3 + 3), "{n} -> {p}");
        }
        assert_eq!(padded_rows(20, 20), 20);
        assert_eq!(padded_rows(17, 20), 20);
        assert_eq!(padded_rows(9, 5), 9);
    }

    #[test]
    fn plans_respect_every_limit() {
        let m = Mock { batches: vec![] };
        let lens = [1, 2, 3, 4, 5, 8, 9, 9, 30];
        // Rows only.
        let p = plan_batches(&lens, limits(1000, 4), &m);
        assert_eq!(p, vec![0..4, 4..8, 8..9]);
        // Tokens: 4 rows of bucket 4 = 16; a 5th row (len 5, bucket 8) would make 40.
        let p = plan_batches(&lens, limits(16, 100), &m);
        assert_eq!(p, vec![0..4, 4..6, 6..7, 7..8, 8..9]);
        // The runner's row limit (6).
        let p = plan_batches(&lens, limits(10_000, 100), &m);
        assert_eq!(p, vec![0..6, 6..9]);
        // A row over the budget still runs, alone.
        assert_eq!(plan_batches(&[50], limits(16, 4), &m), vec![0..1]);
        assert!(plan_batches(&[], limits(16, 4), &m).is_empty());
    }

    /// A client that leaves while earlier batches of the same drain run gets no batch run for
    /// it (a request of many QA windows must not hold the GPU for nobody).
    #[test]
    fn jobs_whose_client_left_during_the_drain_are_not_run() {
        struct Leaving {
            ran: Vec<Vec<u32>>,
            /// The receivers of jobs whose clients leave once the first batch has run.
            leave: Vec<oneshot::Receiver<JobResult>>,
        }
        impl Runner for Leaving {
            fn bucket(&self, len: usize) -> usize {
                len
            }
            fn max_rows(&self, _seq: usize) -> usize {
                2
            }
            fn run(&mut self, rows: &[Sequence]) -> crate::Result<Vec<RowOutput>> {
                self.ran.push(rows.iter().map(|r| r.ids[0]).collect());
                self.leave.clear();
                Ok(rows
                    .iter()
                    .map(|r| RowOutput {
                        logits: vec![r.ids[0] as f32],
                        last_hidden: vec![],
                    })
                    .collect())
            }
        }
        let (tx, rx) = mpsc::channel();
        let mut runner = Leaving {
            ran: vec![],
            leave: vec![],
        };
        let mut stay = vec![];
        for i in 0..6u32 {
            let (rtx, rrx) = oneshot::channel();
            tx.send(Job {
                seq: Sequence::new(vec![i]),
                enqueued: Instant::now(),
                reply: rtx,
            })
            .unwrap();
            if i < 2 {
                stay.push(rrx);
            } else {
                runner.leave.push(rrx);
            }
        }
        drop(tx);
        run_loop(&mut runner, rx, limits(1000, 2), &Metrics::new());
        assert_eq!(
            runner.ran,
            vec![vec![0, 1]],
            "only the first batch had a client"
        );
        for (i, mut r) in stay.into_iter().enumerate() {
            assert_eq!(r.try_recv().unwrap().unwrap().logits, vec![i as f32]);
        }
    }

    #[test]
    fn loop_answers_every_job_and_isolates_failures() {
        let (tx, rx) = mpsc::channel();
        let mut receivers = vec![];
        // Queue everything first so one drain sees it all (a deterministic plan).
        for i in 0..20u32 {
            let (rtx, rrx) = oneshot::channel();
            let ids = match i {
                5 => vec![666, 1],
                11 => vec![777],
                _ => vec![i, 100, 2 * i],
            };
            tx.send(Job {
                seq: Sequence::new(ids.clone()),
                enqueued: Instant::now(),
                reply: rtx,
            })
            .unwrap();
            receivers.push((ids, rrx));
        }
        // A job whose client left: skipped.
        let (rtx, rrx) = oneshot::channel();
        drop(rrx);
        tx.send(Job {
            seq: Sequence::new(vec![1]),
            enqueued: Instant::now(),
            reply: rtx,
        })
        .unwrap();
        drop(tx);
        let metrics = Metrics::new();
        let mut mock = Mock { batches: vec![] };
        // Silence the expected panic's message.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        run_loop(&mut mock, rx, limits(1000, 8), &metrics);
        std::panic::set_hook(hook);
        for (ids, mut rrx) in receivers {
            let got = rrx.try_recv().expect("every job is answered");
            match ids[0] {
                666 => assert!(got.err().unwrap().contains("bad row")),
                777 => assert!(got.err().unwrap().contains("panicked: boom")),
                _ => {
                    let want = ids.iter().sum::<u32>() as f32;
                    assert_eq!(got.unwrap().logits, vec![want]);
                }
            }
        }
        // Sorted by length: the two 1–2-token rows then 18 three-token rows, in batches of at
        // most 6 (the runner's limit); the failing batches were rerun row by row.
        let total: usize = mock.batches.iter().sum();
        assert!(mock.batches.iter().all(|&b| b <= 6), "{:?}", mock.batches);
        assert!(total > 20, "failed batches rerun: {:?}", mock.batches);
        let text = metrics.render();
        assert!(text.contains("wgformer_batch_failures_total"), "{text}");
    }
}
