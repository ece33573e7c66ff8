//! Counted figures beyond hits and downloads: evictions by reason, lock waits, and
//! fixed-bucket histograms (download duration and throughput, hit latency).
//!
//! Every figure is an integer (durations in microseconds, throughput in bytes per
//! second), so the index keeps them as plain counter rows and concurrent processes add
//! to them with `value = value + ?` without losing updates.

use serde::{Deserialize, Serialize};

use crate::evict::EvictReason;

/// Entries evicted, by reason (manual removal is not an eviction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evictions {
    /// Unused for longer than `max_age`.
    pub expired: u64,
    /// Least recently used while the cache was over `max_size`.
    pub over_size: u64,
}

impl Evictions {
    /// The count of one reason.
    pub fn get(&self, reason: EvictReason) -> u64 {
        match reason {
            EvictReason::Expired => self.expired,
            EvictReason::OverSize => self.over_size,
        }
    }

    /// Every eviction.
    pub fn total(&self) -> u64 {
        self.expired + self.over_size
    }
}

/// The index's counter name of an eviction reason (`evicted_expired`, ...).
pub fn eviction_counter_name(reason: EvictReason) -> &'static str {
    match reason {
        EvictReason::Expired => "evicted_expired",
        EvictReason::OverSize => "evicted_over_size",
    }
}

/// Buckets of every histogram: [`BOUNDS`] upper bounds plus `+Inf`.
pub const BUCKETS: usize = 11;

/// Finite upper bounds per histogram.
pub const BOUNDS: usize = BUCKETS - 1;

/// Which histogram: each has its own bounds and unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistogramKind {
    /// Seconds from opening a blob's staging file to its commit (recorded in microseconds).
    DownloadSeconds,
    /// Bytes per second a download received (body bytes over its duration).
    DownloadBytesPerSecond,
    /// Seconds a lookup took to answer from the cache (recorded in microseconds).
    HitSeconds,
}

impl HistogramKind {
    /// Every histogram.
    pub const ALL: [HistogramKind; 3] =
        [HistogramKind::DownloadSeconds, HistogramKind::DownloadBytesPerSecond, HistogramKind::HitSeconds];

    /// The metric's base name (`download_seconds`, ...), also the index rows' stem.
    pub fn name(self) -> &'static str {
        match self {
            HistogramKind::DownloadSeconds => "download_seconds",
            HistogramKind::DownloadBytesPerSecond => "download_bytes_per_second",
            HistogramKind::HitSeconds => "hit_seconds",
        }
    }

    /// Upper bounds in the recorded unit (microseconds or bytes per second), ascending.
    pub fn bounds(self) -> [u64; BOUNDS] {
        match self {
            HistogramKind::DownloadSeconds => {
                [10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000, 300_000_000]
            }
            HistogramKind::DownloadBytesPerSecond => [
                10_000,
                100_000,
                1_000_000,
                10_000_000,
                50_000_000,
                100_000_000,
                250_000_000,
                500_000_000,
                1_000_000_000,
                10_000_000_000,
            ],
            HistogramKind::HitSeconds => [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 100_000, 1_000_000],
        }
    }

    /// Recorded units per metric unit (microseconds per second, or 1): a recorded value
    /// divided by it is in seconds or bytes per second.
    pub fn divisor(self) -> f64 {
        match self {
            HistogramKind::DownloadSeconds | HistogramKind::HitSeconds => 1e6,
            HistogramKind::DownloadBytesPerSecond => 1.0,
        }
    }

    /// The bucket a value falls in (the last one is `+Inf`).
    pub fn bucket_of(self, value: u64) -> usize {
        self.bounds().iter().position(|b| value <= *b).unwrap_or(BOUNDS)
    }

    /// The index row counting bucket `i` (`hist_download_seconds_bucket_3`).
    pub fn bucket_counter(self, i: usize) -> String {
        format!("hist_{}_bucket_{i}", self.name())
    }

    /// The index row holding the sum of observations, in the recorded unit.
    pub fn sum_counter(self) -> String {
        format!("hist_{}_sum", self.name())
    }
}

/// One histogram's counts: observations per bucket (not cumulative) and their sum in the
/// recorded unit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    /// Observations per bucket; the last is above every bound.
    pub buckets: [u64; BUCKETS],
    /// Sum of the observations (microseconds or bytes per second).
    pub sum: u64,
}

impl Histogram {
    /// Adds one observation.
    pub fn observe(&mut self, kind: HistogramKind, value: u64) {
        self.buckets[kind.bucket_of(value)] += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// Observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another histogram's counts.
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// `(upper bound in the metric's unit, cumulative count)` per bucket, `+Inf` last, as
    /// the `OpenMetrics` text writes them.
    #[expect(clippy::cast_precision_loss, reason = "bounds are round numbers well below 2^53")]
    pub fn cumulative(&self, kind: HistogramKind) -> Vec<(f64, u64)> {
        let mut total = 0;
        let bounds = kind.bounds().map(|b| b as f64 / kind.divisor());
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| {
                total += n;
                (bounds.get(i).copied().unwrap_or(f64::INFINITY), total)
            })
            .collect()
    }
}

/// The histograms kept in the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histograms {
    /// Download duration.
    pub download_seconds: Histogram,
    /// Download throughput.
    pub download_bytes_per_second: Histogram,
    /// Hit latency.
    pub hit_seconds: Histogram,
}

impl Histograms {
    /// One histogram.
    pub fn get(&self, kind: HistogramKind) -> &Histogram {
        match kind {
            HistogramKind::DownloadSeconds => &self.download_seconds,
            HistogramKind::DownloadBytesPerSecond => &self.download_bytes_per_second,
            HistogramKind::HitSeconds => &self.hit_seconds,
        }
    }

    /// One histogram, to change.
    pub fn get_mut(&mut self, kind: HistogramKind) -> &mut Histogram {
        match kind {
            HistogramKind::DownloadSeconds => &mut self.download_seconds,
            HistogramKind::DownloadBytesPerSecond => &mut self.download_bytes_per_second,
            HistogramKind::HitSeconds => &mut self.hit_seconds,
        }
    }

    /// Adds another set's counts.
    pub fn add(&mut self, other: &Histograms) {
        for k in HistogramKind::ALL {
            self.get_mut(k).add(other.get(k));
        }
    }
}

/// The observations of one download: its duration and its throughput.
pub fn download_observations(bytes: u64, duration: std::time::Duration) -> [(HistogramKind, u64); 2] {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    let rate = u64::try_from(u128::from(bytes) * 1_000_000 / u128::from(micros.max(1))).unwrap_or(u64::MAX);
    [(HistogramKind::DownloadSeconds, micros), (HistogramKind::DownloadBytesPerSecond, rate)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds_and_cumulate_to_the_count() {
        let k = HistogramKind::HitSeconds;
        let mut h = Histogram::default();
        for v in [50, 51, 1_000_000, 1_000_001] {
            h.observe(k, v);
        }
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum, 2_000_102);
        let c = h.cumulative(k);
        assert_eq!(c.len(), BUCKETS);
        assert_eq!(c[0], (50e-6, 1));
        assert_eq!(c[1].1, 2);
        assert_eq!(c[BOUNDS - 1], (1.0, 3));
        assert_eq!(c[BOUNDS], (f64::INFINITY, 4));
    }

    #[test]
    fn a_download_is_observed_as_duration_and_rate() {
        let obs = download_observations(2_000_000, std::time::Duration::from_millis(500));
        assert_eq!(obs, [(HistogramKind::DownloadSeconds, 500_000), (HistogramKind::DownloadBytesPerSecond, 4_000_000)]);
        let instant = download_observations(10, std::time::Duration::ZERO);
        assert_eq!(instant[1], (HistogramKind::DownloadBytesPerSecond, 10_000_000), "a zero duration counts as 1 µs");
    }
}
