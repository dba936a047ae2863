//! Percentiles of latency samples.

use serde::{Deserialize, Serialize};

/// Latency distribution in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) min_us: f64,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p90_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) max_us: f64,
}

/// Nearest-rank percentiles of `samples` (nanoseconds).
pub(crate) fn summarize(mut samples: Vec<u64>) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    samples.sort_unstable();
    let n = samples.len();
    let us = |ns: u64| ns as f64 / 1000.0;
    let rank = |q: f64| {
        // Nearest rank: the smallest sample with at least q of all samples at or below it.
        let idx = (q * n as f64).ceil() as usize;
        us(samples[idx.clamp(1, n) - 1])
    };
    let total: u128 = samples.iter().map(|&s| u128::from(s)).sum();
    Summary {
        count: n,
        min_us: us(samples[0]),
        mean_us: total as f64 / n as f64 / 1000.0,
        p50_us: rank(0.50),
        p90_us: rank(0.90),
        p99_us: rank(0.99),
        max_us: us(samples[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = summarize((1..=100).map(|i| i * 1000).collect());
        assert_eq!((s.p50_us, s.p90_us, s.p99_us, s.max_us), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(s.min_us, 1.0);
        assert!((s.mean_us - 50.5).abs() < 1e-9);
        assert_eq!(summarize(vec![7000]).p99_us, 7.0);
        assert_eq!(summarize(Vec::new()).count, 0);
    }
}
