//! Attention biases that depend only on positions, computed on the host once per graph shape.

/// MPNet's (T5's bidirectional) bucket for a key `relative` = `j − i` positions from the query:
/// half the buckets per direction, exact below `max_exact`, log-spaced up to `max_distance`.
/// Computed in f32 as transformers does, so bucket edges fall where they fall there.
pub fn relative_bucket(relative: i64, buckets: usize, max_distance: usize) -> usize {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let mut ret = if n < 0 { half } else { 0 };
    let n = n.abs();
    let max_exact = half / 2;
    if n < max_exact {
        ret += n;
    } else {
        let scaled = (n as f32 / max_exact as f32).ln()
            / (max_distance as f64 / max_exact as f64).ln() as f32
            * (half - max_exact) as f32;
        ret += (max_exact + scaled as i64).min(half - 1);
    }
    ret as usize
}

/// The `[heads, 2·seq − 1]` bias for every offset `j − i` (column `j − i + seq − 1`) from a
/// `[buckets, heads]` table, as [`crate::ops::attention::BiasView::relative`] reads it.
pub fn relative_bias(
    table: &[f32],
    heads: usize,
    seq: usize,
    buckets: usize,
    max_distance: usize,
) -> Vec<f32> {
    let width = 2 * seq - 1;
    let mut out = vec![0f32; heads * width];
    for c in 0..width {
        let b = relative_bucket(c as i64 - (seq as i64 - 1), buckets, max_distance);
        for h in 0..heads {
            out[h * width + c] = table[b * heads + h];
        }
    }
    out
}

/// DeBERTa's log bucket of a relative position `relative` = `i − j` (`make_log_bucket_position`):
/// exact within `buckets / 2` either way, log-spaced beyond, reaching `±(buckets − 1)` at
/// `max_position − 1` and growing past it (the caller clamps). Computed in f32 as transformers
/// does, so ceilings fall where they fall there.
pub fn log_bucket(relative: i64, buckets: usize, max_position: usize) -> i64 {
    let mid = (buckets / 2) as i64;
    let abs = relative.abs();
    if abs <= mid {
        return relative;
    }
    let ratio = ((max_position as f64 - 1.0) / mid as f64) as f32;
    let log = ((abs as f32 / mid as f32).ln() / ratio.ln() * (mid - 1) as f32).ceil() as i64;
    (log + mid) * relative.signum()
}

/// DeBERTa's row of the relative table for each offset `i − j` (entry `i − j + seq − 1`) of a
/// `seq`-token sequence, as `(lo, rows)`: the rows used are `lo..lo + width` and `rows[o] − lo`
/// indexes that window, so per-graph matmuls touch only the rows this length reaches.
pub fn disentangled_rows(
    seq: usize,
    span: usize,
    buckets: usize,
    max_relative: usize,
) -> (usize, Vec<u32>) {
    let rows: Vec<i64> = (0..2 * seq as i64 - 1)
        .map(|o| {
            let rel = o - (seq as i64 - 1);
            let b = if buckets > 0 && max_relative > 0 {
                log_bucket(rel, buckets, max_relative)
            } else {
                rel
            };
            (b + span as i64).clamp(0, 2 * span as i64 - 1)
        })
        .collect();
    let lo = *rows.iter().min().unwrap_or(&0);
    (lo as usize, rows.iter().map(|r| (r - lo) as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deberta_log_buckets() {
        // v3-base (256 buckets, 512 positions): exact up to 128, then
        // 128 + ceil(ln(|r|/128) / ln(511/128) · 127), 255 at 511, growing past it.
        for (rel, want) in [(0, 0), (127, 127), (128, 128), (-128, -128), (129, 129)] {
            assert_eq!(log_bucket(rel, 256, 512), want, "{rel}");
        }
        assert_eq!(log_bucket(511, 256, 512), 255);
        assert_eq!(log_bucket(-511, 256, 512), -255);
        assert_eq!(log_bucket(1000, 256, 512), 317);
        // 16 buckets, 64 positions: 8 + ceil(ln(20/8)/ln(63/8)·7) = 12; 63 gives 15.
        assert_eq!(log_bucket(5, 16, 64), 5);
        assert_eq!(log_bucket(20, 16, 64), 12);
        assert_eq!(log_bucket(-20, 16, 64), -12);
        assert_eq!(log_bucket(63, 16, 64), 15);
    }

    #[test]
    fn disentangled_rows_cover_only_the_window_used() {
        // 3 tokens, span 16: offsets −2..=2 are rows 14..=18.
        let (lo, rows) = disentangled_rows(3, 16, 16, 64);
        assert_eq!(lo, 14);
        assert_eq!(rows, [0, 1, 2, 3, 4]);
        // Far offsets clamp to the table: 600 tokens, 256 buckets, 512 positions reach
        // bucket ±(>255), clamped to rows 0 and 511.
        let (lo, rows) = disentangled_rows(600, 256, 256, 512);
        assert_eq!(lo, 0);
        assert_eq!(rows[0], 0);
        assert_eq!(rows[599], 256);
        assert_eq!(*rows.last().unwrap(), 511);
        // No buckets: exact offsets, clamped to ±span.
        let (lo, rows) = disentangled_rows(40, 32, 0, 32);
        assert_eq!(lo, 0);
        assert_eq!(rows[39], 32);
        assert_eq!(rows[39 + 5], 37);
        assert_eq!(*rows.last().unwrap(), 63);
    }

    #[test]
    fn mpnet_buckets_match_the_t5_rule() {
        // 32 buckets, max distance 128: keys after the query use buckets 16..32.
        assert_eq!(relative_bucket(0, 32, 128), 0);
        assert_eq!(relative_bucket(-1, 32, 128), 1);
        assert_eq!(relative_bucket(1, 32, 128), 17);
        assert_eq!(relative_bucket(-7, 32, 128), 7);
        // log range: 8 + trunc(ln(n/8)/ln(16)·8); n = 16 and 32 sit exactly on edges.
        assert_eq!(relative_bucket(-8, 32, 128), 8);
        assert_eq!(relative_bucket(-15, 32, 128), 9);
        assert_eq!(relative_bucket(-16, 32, 128), 10);
        assert_eq!(relative_bucket(-32, 32, 128), 12);
        assert_eq!(relative_bucket(-127, 32, 128), 15);
        assert_eq!(relative_bucket(-1000, 32, 128), 15);
        assert_eq!(relative_bucket(1000, 32, 128), 31);
    }

    #[test]
    fn relative_bias_reads_the_bucket_rows() {
        let heads = 2;
        let table: Vec<f32> = (0..32 * heads).map(|x| x as f32).collect();
        let b = relative_bias(&table, heads, 5, 32, 128);
        // Column 4 is offset 0 (bucket 0), column 0 offset −4 (bucket 4), column 8 offset +4.
        assert_eq!(b[4], table[0]);
        assert_eq!(b[0], table[4 * heads]);
        assert_eq!(b[9 + 8], table[(16 + 4) * heads + 1]);
    }
}
