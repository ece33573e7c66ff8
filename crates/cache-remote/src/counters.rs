//! Per-tier figures of this process: hits, misses, bytes pulled and pushed, and remote
//! errors counted apart from misses (a tier that is down is not "a miss").

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One tier's figures (this process's, or summed over processes by the caller).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TierStats {
    /// The tier's URL.
    pub url: String,
    /// Blobs served from the tier (verified).
    pub hits: u64,
    /// Blobs asked for that the tier does not hold.
    pub misses: u64,
    /// Body bytes pulled from the tier.
    pub bytes_pulled: u64,
    /// Blobs written to the tier.
    pub blobs_pushed: u64,
    /// Body bytes written to the tier.
    pub bytes_pushed: u64,
    /// Failed calls: unreachable, timed out, denied, refused by the server.
    pub errors: u64,
    /// Objects whose bytes did not match their key (never published).
    pub corrupt: u64,
    /// Calls skipped while the circuit breaker was open.
    pub skipped: u64,
    /// Listings found wrong (unreadable, badly signed, or not what the Hub lists) and
    /// replaced by the Hub's.
    pub listings_replaced: u64,
}

impl TierStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &TierStats) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.bytes_pulled += other.bytes_pulled;
        self.blobs_pushed += other.blobs_pushed;
        self.bytes_pushed += other.bytes_pushed;
        self.errors += other.errors;
        self.corrupt += other.corrupt;
        self.skipped += other.skipped;
        self.listings_replaced += other.listings_replaced;
    }

    /// Whether nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == TierStats { url: self.url.clone(), ..TierStats::default() }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) bytes_pulled: AtomicU64,
    pub(crate) blobs_pushed: AtomicU64,
    pub(crate) bytes_pushed: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) corrupt: AtomicU64,
    pub(crate) skipped: AtomicU64,
    pub(crate) listings_replaced: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    /// The figures so far, and resets them (so a caller can persist deltas).
    pub(crate) fn take(&self, url: &str) -> TierStats {
        TierStats {
            url: url.to_owned(),
            hits: self.hits.swap(0, Relaxed),
            misses: self.misses.swap(0, Relaxed),
            bytes_pulled: self.bytes_pulled.swap(0, Relaxed),
            blobs_pushed: self.blobs_pushed.swap(0, Relaxed),
            bytes_pushed: self.bytes_pushed.swap(0, Relaxed),
            errors: self.errors.swap(0, Relaxed),
            corrupt: self.corrupt.swap(0, Relaxed),
            skipped: self.skipped.swap(0, Relaxed),
            listings_replaced: self.listings_replaced.swap(0, Relaxed),
        }
    }

    pub(crate) fn peek(&self, url: &str) -> TierStats {
        TierStats {
            url: url.to_owned(),
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            bytes_pulled: self.bytes_pulled.load(Relaxed),
            blobs_pushed: self.blobs_pushed.load(Relaxed),
            bytes_pushed: self.bytes_pushed.load(Relaxed),
            errors: self.errors.load(Relaxed),
            corrupt: self.corrupt.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            listings_replaced: self.listings_replaced.load(Relaxed),
        }
    }
}
