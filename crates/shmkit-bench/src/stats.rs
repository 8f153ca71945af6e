//! Statistics over latency samples: median, nearest-rank percentiles, and the spread of
//! per-round medians.
//!
//! Percentiles use the nearest-rank definition: the p-th percentile of `n` sorted
//! samples is the sample at rank `ceil(p / 100 * n)` (1-based). It is always one of the
//! measured values, never an interpolation, which keeps p99.9 honest for small counts.
//! The median is the usual one: the middle sample, or the mean of the two middle ones.

use serde::Serialize;

/// The median of sorted samples: the middle value, or the mean of the two middle values.
/// `None` when empty.
pub fn median(sorted: &[u64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    if n % 2 == 1 {
        Some(sorted[n / 2] as f64)
    } else {
        Some((sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0)
    }
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of sorted samples. `None` when empty.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    // p * n / 100 in floating point can land a hair above an integer (99.9% of 1000 is
    // 999.0000000000001): treat values within rounding error of an integer as that one.
    let x = p * n as f64 / 100.0;
    let rank = if (x - x.round()).abs() < 1e-9 {
        x.round()
    } else {
        x.ceil()
    } as usize;
    Some(sorted[rank.clamp(1, n) - 1])
}

/// Median of unsorted floating-point values (used for per-round figures).
pub fn median_f64(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A latency distribution in nanoseconds, pooled over all rounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    /// Number of samples.
    pub samples: usize,
    /// Median over all samples.
    pub median_ns: f64,
    /// 99th percentile (nearest rank).
    pub p99_ns: u64,
    /// 99.9th percentile (nearest rank).
    pub p999_ns: u64,
    /// Smallest sample.
    pub min_ns: u64,
    /// Largest sample.
    pub max_ns: u64,
    /// The median of each round, in round order: their spread shows the noise.
    pub round_medians_ns: Vec<f64>,
}

impl Latency {
    /// Summarises per-round samples (each round's samples in any order). `None` when
    /// there is no sample at all.
    pub fn from_rounds(rounds: &[Vec<u64>]) -> Option<Latency> {
        let mut round_medians = Vec::with_capacity(rounds.len());
        let mut all = Vec::with_capacity(rounds.iter().map(Vec::len).sum());
        for r in rounds {
            let mut s = r.clone();
            s.sort_unstable();
            if let Some(m) = median(&s) {
                round_medians.push(m);
            }
            all.extend_from_slice(r);
        }
        all.sort_unstable();
        Some(Latency {
            samples: all.len(),
            median_ns: median(&all)?,
            p99_ns: percentile(&all, 99.0)?,
            p999_ns: percentile(&all, 99.9)?,
            min_ns: *all.first()?,
            max_ns: *all.last()?,
            round_medians_ns: round_medians,
        })
    }

    /// The smallest and largest per-round median.
    pub fn spread(&self) -> (f64, f64) {
        spread(&self.round_medians_ns)
    }
}

/// Smallest and largest of finite values; (NaN, NaN) when there are none.
pub fn spread(values: &[f64]) -> (f64, f64) {
    let mut lo = f64::NAN;
    let mut hi = f64::NAN;
    for &v in values.iter().filter(|v| v.is_finite()) {
        lo = if lo.is_nan() { v } else { lo.min(v) };
        hi = if hi.is_nan() { v } else { hi.max(v) };
    }
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7.0));
        assert_eq!(median(&[1, 2, 10]), Some(2.0));
        assert_eq!(median(&[1, 2, 3, 10]), Some(2.5));
    }

    #[test]
    fn nearest_rank_percentiles_match_hand_computed_values() {
        // 1..=10: p50 -> rank 5 -> 5; p90 -> rank 9 -> 9; p99 -> rank ceil(9.9)=10 -> 10.
        let v: Vec<u64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50.0), Some(5));
        assert_eq!(percentile(&v, 90.0), Some(9));
        assert_eq!(percentile(&v, 99.0), Some(10));
        assert_eq!(percentile(&v, 99.9), Some(10));
        // 1..=1000: p99 -> rank 990 -> 990; p99.9 -> rank 999 -> 999.
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 99.0), Some(990));
        assert_eq!(percentile(&v, 99.9), Some(999));
        // 1..=2000: p99.9 -> rank 1998.
        let v: Vec<u64> = (1..=2000).collect();
        assert_eq!(percentile(&v, 99.9), Some(1998));
        assert_eq!(percentile(&[], 99.0), None);
        assert_eq!(percentile(&[42], 0.1), Some(42));
    }

    #[test]
    fn latency_pools_rounds_and_keeps_round_medians() {
        let rounds = vec![vec![30, 10, 20], vec![100, 40, 50, 60]];
        let l = Latency::from_rounds(&rounds).unwrap();
        // Pooled sorted: 10 20 30 40 50 60 100 -> median 40.
        assert_eq!(l.samples, 7);
        assert_eq!(l.median_ns, 40.0);
        assert_eq!(l.min_ns, 10);
        assert_eq!(l.max_ns, 100);
        // p99 of 7 samples: rank ceil(6.93) = 7 -> 100.
        assert_eq!(l.p99_ns, 100);
        assert_eq!(l.round_medians_ns, vec![20.0, 55.0]);
        assert_eq!(l.spread(), (20.0, 55.0));
        assert!(Latency::from_rounds(&[vec![], vec![]]).is_none());
    }

    #[test]
    fn median_f64_ignores_non_finite() {
        assert_eq!(median_f64(&[3.0, f64::NAN, 1.0, 2.0]), Some(2.0));
        assert_eq!(median_f64(&[4.0, 1.0]), Some(2.5));
        assert_eq!(median_f64(&[]), None);
    }
}
