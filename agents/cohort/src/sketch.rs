//! Mergeable, deletable quantile sketches: counts per bucket. Exact buckets for small
//! integers (days, purchase counts); logarithmic buckets (1% relative accuracy, after
//! DDSketch) for money. Unlike KLL or t-digest, a member whose values change is removed
//! and re-added exactly, and merging partitions is adding counts, so any split of the
//! population into partitions merges to the same sketch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Relative accuracy of logarithmic buckets.
const GAMMA: f64 = 1.02;

/// Counts per bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    counts: BTreeMap<i32, u64>,
    total: u64,
}

/// The logarithmic bucket of a non-negative amount (values below 1 share bucket -1).
pub fn log_bucket(value: f64) -> i32 {
    if value < 1.0 {
        -1
    } else {
        (value.ln() / GAMMA.ln()).floor() as i32
    }
}

/// A representative value of a logarithmic bucket (its geometric middle).
pub fn log_value(bucket: i32) -> f64 {
    if bucket < 0 {
        0.0
    } else {
        GAMMA.powf(f64::from(bucket) + 0.5)
    }
}

impl Histogram {
    pub fn add(&mut self, bucket: i32) {
        *self.counts.entry(bucket).or_insert(0) += 1;
        self.total += 1;
    }

    /// Remove one count of `bucket` (a member whose value changed); absent buckets are
    /// left alone.
    pub fn remove(&mut self, bucket: i32) {
        if let Some(count) = self.counts.get_mut(&bucket) {
            *count -= 1;
            self.total -= 1;
            if *count == 0 {
                self.counts.remove(&bucket);
            }
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&bucket, &count) in &other.counts {
            *self.counts.entry(bucket).or_insert(0) += count;
        }
        self.total += other.total;
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Position of `bucket` in [0, 1): the share of counts strictly below it. Ties take
    /// the lowest rank (as RFM practice does), so when 60% of members bought once they all
    /// score 1 on frequency rather than a misleading middle score.
    pub fn position(&self, bucket: i32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let below: u64 = self.counts.range(..bucket).map(|(_, c)| c).sum();
        below as f64 / self.total as f64
    }

    /// The bucket at quantile `q` (lowest bucket whose cumulative share reaches q).
    pub fn quantile(&self, q: f64) -> Option<i32> {
        let target = (q.clamp(0.0, 1.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (&bucket, &count) in &self.counts {
            seen += count;
            if seen >= target {
                return Some(bucket);
            }
        }
        None
    }

    /// Share of counts at or above `bucket`.
    pub fn share_at_least(&self, bucket: i32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.counts.range(bucket..).map(|(_, c)| c).sum::<u64>() as f64 / self.total as f64
    }

    pub fn max_bucket(&self) -> Option<i32> {
        self.counts.keys().next_back().copied()
    }
}

/// A histogram frozen for lookups: cumulative counts, so a position is a binary search
/// instead of a walk over the buckets (re-scoring a million members is a million lookups).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cdf {
    /// (bucket, members in lower buckets), ascending.
    below: Vec<(i32, u64)>,
    total: u64,
}

impl Cdf {
    pub fn of(histogram: &Histogram) -> Cdf {
        let mut below = Vec::with_capacity(histogram.counts.len());
        let mut seen = 0;
        for (&bucket, &count) in &histogram.counts {
            below.push((bucket, seen));
            seen += count;
        }
        Cdf {
            below,
            total: histogram.total,
        }
    }

    /// Same as [`Histogram::position`].
    pub fn position(&self, bucket: i32) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let i = self.below.partition_point(|&(b, _)| b < bucket);
        let below = self.below.get(i).map_or(self.total, |&(_, n)| n);
        below as f64 / self.total as f64
    }
}

/// The `groups`-quantile a position falls in, 1 (bottom) to `groups` (top).
pub fn quantile_group(position: f64, groups: i32) -> i32 {
    1 + ((position * f64::from(groups)).floor() as i32).clamp(0, groups - 1)
}

/// A quintile score from a position: 1 (bottom fifth) to 5 (top fifth).
pub fn quintile(position: f64) -> i32 {
    quantile_group(position, 5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_merges_to_the_same_sketch_and_deletion_is_exact() {
        let values: Vec<f64> = (0..1000)
            .map(|i| 1.0 + (i * 37 % 997) as f64 * 3.7)
            .collect();
        let mut whole = Histogram::default();
        let (mut left, mut right) = (Histogram::default(), Histogram::default());
        for (i, v) in values.iter().enumerate() {
            whole.add(log_bucket(*v));
            if i % 3 == 0 { &mut left } else { &mut right }.add(log_bucket(*v));
        }
        left.merge(&right);
        assert_eq!(left, whole);
        let before = whole.clone();
        whole.add(log_bucket(12345.0));
        whole.remove(log_bucket(12345.0));
        assert_eq!(whole, before);
        // Quantiles within the bucket accuracy.
        let median = log_value(whole.quantile(0.5).unwrap());
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = sorted[499];
        assert!((median - exact).abs() / exact < 0.02, "{median} vs {exact}");
    }

    #[test]
    fn ties_share_a_score() {
        let mut h = Histogram::default();
        for _ in 0..80 {
            h.add(1);
        }
        for v in 2..22 {
            h.add(v);
        }
        // 80% of members bought once: they all take the lowest rank, score 1; the
        // top fifth (above 80% of members) scores 5.
        assert_eq!(quintile(h.position(1)), 1);
        assert_eq!(quintile(h.position(2)), 5);
        assert_eq!(quintile(h.position(21)), 5);
        let cdf = Cdf::of(&h);
        for bucket in -1..25 {
            assert_eq!(cdf.position(bucket), h.position(bucket), "{bucket}");
        }
    }
}
