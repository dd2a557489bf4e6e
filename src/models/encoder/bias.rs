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

#[cfg(test)]
mod tests {
    use super::*;

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
