//! `wgformer bench soak`: many forwards over a mix of batch sizes and lengths, watching resident
//! memory and GPU-buffer bytes for growth (a leak shows as growth after warm-up).

use crate::models::Model;
use crate::Result;
use serde::Serialize;

/// Batch sizes and sequence lengths the soak cycles through (lengths past the model's limit
/// are clamped): 4 × 5 shapes, more graphs than the default cache holds, so graphs are
/// evicted and rebuilt as a server's would be.
pub const BATCHES: [usize; 4] = [1, 2, 3, 8];
pub const LENGTHS: [usize; 5] = [3, 9, 17, 31, 64];
/// Forwards in one pass over every shape.
pub const CYCLE: usize = BATCHES.len() * LENGTHS.len();

/// Memory at one point of the soak.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Sample {
    /// Forwards run so far.
    pub runs: usize,
    /// Resident set size of this process (VmRSS), bytes; `None` off Linux.
    pub resident_bytes: Option<u64>,
    /// Bytes of GPU buffers wgformer holds (weights + cached graphs).
    pub gpu_buffer_bytes: u64,
    /// Graphs built so far (cache misses).
    pub graph_builds: u64,
}

/// This process's resident set size from `/proc/self/status`.
pub fn resident_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    Some(
        kb.trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()?
            * 1024,
    )
}

/// The shape of forward `i`: batch size and length.
pub fn shape(i: usize) -> (usize, usize) {
    (
        BATCHES[i % BATCHES.len()],
        LENGTHS[(i / BATCHES.len()) % LENGTHS.len()],
    )
}

/// Runs `runs` forwards of `model` (rounded up to whole cycles) and samples memory at the
/// start, after the first two cycles (warm: every shape built twice), in the middle and at the
/// end. Token ids are a fixed pseudo-random sequence, so runs are comparable.
pub fn soak(model: &Model, runs: usize) -> Result<Vec<Sample>> {
    let runs = runs.max(2 * CYCLE).next_multiple_of(CYCLE);
    let sample = |runs| Sample {
        runs,
        resident_bytes: resident_bytes(),
        gpu_buffer_bytes: model.gpu().buffer_bytes(),
        graph_builds: model.graph_builds(),
    };
    let vocab = model.config.vocab_size as u64;
    let max_len = model.max_sequence();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut samples = vec![sample(0)];
    let marks = [2 * CYCLE, (runs / 2).next_multiple_of(CYCLE), runs];
    for i in 0..runs {
        let (batch, len) = shape(i);
        let rows: Vec<crate::models::Sequence> = (0..batch)
            .map(|_| {
                let ids = (0..len.min(max_len))
                    .map(|_| {
                        x = x
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((x >> 33) % vocab) as u32
                    })
                    .collect();
                crate::models::Sequence::new(ids)
            })
            .collect();
        model.forward(&rows)?;
        if marks.contains(&(i + 1)) && samples.last().is_none_or(|s| s.runs != i + 1) {
            samples.push(sample(i + 1));
        }
    }
    Ok(samples)
}
