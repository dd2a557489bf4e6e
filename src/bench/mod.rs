//! Benchmark support: random-weight model folders (so benchmarks need no download), random
//! token rows, single-kernel graphs, adapter ceilings and end-to-end latency.
//!
//! Everything here drives the same [`Graph`](crate::graph::Graph) and
//! [`Profiler`](crate::profiler::Profiler) that real models use, so a kernel benchmark times
//! exactly the dispatch a forward would record.

pub mod ceilings;
pub mod kernels;
pub mod random_model;
pub mod soak;

pub use ceilings::Ceilings;
pub use random_model::{random_rows, RandomConfig};

/// The value at quantile `q` (0..=1) of `v`, nearest rank; 0 for an empty slice.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// Parses a `1,8,32` style list of positive integers.
pub fn parse_list(s: &str) -> crate::Result<Vec<usize>> {
    let v: Vec<usize> = s
        .split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                crate::Error::Input(format!("`{x}` in `{s}` is not a positive integer"))
            })
        })
        .collect::<crate::Result<_>>()?;
    if v.is_empty() {
        return Err(crate::Error::Input(format!(
            "`{s}` lists no sizes; write e.g. 1,8,32"
        )));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let v = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.9), 5.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn lists_parse_and_reject_bad_items() {
        assert_eq!(parse_list("1, 8,32").unwrap(), vec![1, 8, 32]);
        assert!(parse_list("1,0").is_err());
        assert!(parse_list("1,x").is_err());
        assert!(parse_list("").is_err());
    }
}
