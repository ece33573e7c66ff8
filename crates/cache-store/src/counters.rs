//! Counter rows beyond hits, misses and downloads: evictions by reason, lock waits and
//! histogram buckets, all rows of the index's `counters` table.
//!
//! # No migration
//! Each row is created on first use (`INSERT OR IGNORE`, then `value = value + ?`), and a
//! missing row reads as 0, so an index made before these figures were counted needs no
//! schema change, and concurrent processes never lose each other's additions.
//!
//! # Rows
//! `evicted_expired`, `evicted_over_size`; `lock_waits`, `lock_wait_micros`;
//! per histogram (`download_seconds`, `download_bytes_per_second`, `hit_seconds`)
//! `hist_<name>_bucket_<i>` (observations in bucket `i`, not cumulative, `i` =
//! [`BOUNDS`](cache_core::BOUNDS) for `+Inf`) and `hist_<name>_sum` (in microseconds or
//! bytes per second).
//!
//! # Performance
//! Hits never write here one by one: their latency is kept in memory with the batched
//! usage records (`usage`) and added by the flush, one statement per non-empty bucket.

use std::time::Duration;

use cache_core::{EvictReason, Histogram, HistogramKind, Histograms, eviction_counter_name};

use crate::error::Result;
use crate::index::{Index, to_i64};

pub(crate) const LOCK_WAITS: &str = "lock_waits";
pub(crate) const LOCK_WAIT_MICROS: &str = "lock_wait_micros";

/// Adds `by` to the counter `name`, creating its row at 0 first.
fn bump(tx: &rusqlite::Transaction<'_>, name: &str, by: u64) -> rusqlite::Result<()> {
    if by == 0 {
        return Ok(());
    }
    tx.execute("INSERT OR IGNORE INTO counters VALUES (?1, 0)", [name])?;
    tx.execute("UPDATE counters SET value = value + ?2 WHERE name = ?1", rusqlite::params![name, to_i64(by)])?;
    Ok(())
}

/// Adds every non-empty bucket and sum of `h` to its rows.
pub(crate) fn add_histograms(tx: &rusqlite::Transaction<'_>, h: &Histograms) -> rusqlite::Result<()> {
    for kind in HistogramKind::ALL {
        let one = h.get(kind);
        for (i, n) in one.buckets.iter().enumerate() {
            bump(tx, &kind.bucket_counter(i), *n)?;
        }
        bump(tx, &kind.sum_counter(), one.sum)?;
    }
    Ok(())
}

/// The histograms from the counter rows (`get` reads a row, 0 when absent).
pub(crate) fn read_histograms(get: &dyn Fn(&str) -> u64) -> Histograms {
    let mut out = Histograms::default();
    for kind in HistogramKind::ALL {
        let h: &mut Histogram = out.get_mut(kind);
        for (i, n) in h.buckets.iter_mut().enumerate() {
            *n = get(&kind.bucket_counter(i));
        }
        h.sum = get(&kind.sum_counter());
    }
    out
}

impl Index {
    /// Counts evicted entries by reason.
    pub(crate) fn add_evictions(&self, counts: &[(EvictReason, u64)]) -> Result<()> {
        if counts.iter().all(|(_, n)| *n == 0) {
            return Ok(());
        }
        self.write("update counters", |tx| counts.iter().try_for_each(|(r, n)| bump(tx, eviction_counter_name(*r), *n)))
    }

    /// Counts one wait for a busy blob lock and its length.
    pub(crate) fn add_lock_wait(&self, waited: Duration) -> Result<()> {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.write("update counters", |tx| {
            bump(tx, LOCK_WAITS, 1)?;
            bump(tx, LOCK_WAIT_MICROS, micros.max(1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    #[test]
    fn new_counters_start_at_zero_and_add_up_without_a_migration() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("i.sqlite3")).unwrap();
        let (idx, _) = Index::open(&path).unwrap();
        let c = idx.counters().unwrap();
        assert_eq!((c.evictions.total(), c.lock_waits, c.histograms), (0, 0, Histograms::default()));

        idx.add_evictions(&[(EvictReason::OverSize, 3), (EvictReason::Expired, 0)]).unwrap();
        idx.add_evictions(&[(EvictReason::Expired, 2)]).unwrap();
        idx.add_lock_wait(Duration::from_millis(1500)).unwrap();
        idx.add_lock_wait(Duration::from_millis(500)).unwrap();
        let mut hits = Histogram::default();
        hits.observe(HistogramKind::HitSeconds, 40);
        hits.observe(HistogramKind::HitSeconds, 2_000_000);
        idx.add_lookups(2, 0, &hits).unwrap();
        idx.add_lookups(1, 0, &hits).unwrap();

        let c = idx.counters().unwrap();
        assert_eq!((c.evictions.expired, c.evictions.over_size), (2, 3));
        assert_eq!((c.lock_waits, c.lock_wait_micros), (2, 2_000_000));
        let h = c.histograms.hit_seconds;
        assert_eq!((h.buckets[0], h.buckets[cache_core::BOUNDS], h.count(), h.sum), (2, 2, 4, 4_000_080));
        assert_eq!(c.histograms.download_seconds.count(), 0);
    }

    #[test]
    fn a_download_observes_its_duration_and_throughput() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("i.sqlite3")).unwrap();
        let (idx, _) = Index::open(&path).unwrap();
        let row = crate::index::Row {
            repo: "models--a".into(),
            revision: "c".into(),
            path: "f".into(),
            blob: "b".into(),
            etag: None,
            size: 1_000_000,
            blake3: None,
            downloaded_at: 1,
            last_used: 1,
        };
        idx.upsert(&row, Some((1_000_000, Duration::from_millis(250)))).unwrap();
        let h = idx.counters().unwrap().histograms;
        assert_eq!((h.download_seconds.count(), h.download_seconds.sum), (1, 250_000));
        assert_eq!(h.download_seconds.buckets[HistogramKind::DownloadSeconds.bucket_of(250_000)], 1);
        assert_eq!((h.download_bytes_per_second.count(), h.download_bytes_per_second.sum), (1, 4_000_000));
    }

    #[test]
    fn a_busy_blob_lock_counts_one_wait_and_a_free_one_none() {
        let tmp = tempfile::tempdir().unwrap();
        let root = camino::Utf8Path::from_path(tmp.path()).unwrap();
        let store = crate::Store::open(crate::StoreConfig::new(root.join("hub"), root.join("home"))).unwrap();
        let repo = cache_core::Repo::model("org/busy".parse().unwrap());
        let etag = cache_core::Etag::Sha256(cache_core::Sha256::of(b"x"));
        let first = store.lock_blob(&repo, &etag, &mut |_| panic!("a free lock is not waited for")).unwrap();
        assert_eq!(store.stats().unwrap().counters.lock_waits, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let tx = tx.clone();
                store
                    .lock_blob(&repo, &etag, &mut move |_| {
                        let _ = tx.send(());
                    })
                    .map(drop)
            });
            // Release only once the second locker has seen the lock busy.
            rx.recv_timeout(Duration::from_secs(30)).unwrap();
            drop(first);
            waiter.join().unwrap().unwrap();
        });
        let c = store.stats().unwrap().counters;
        assert_eq!(c.lock_waits, 1);
        assert!(c.lock_wait_micros > 0);
    }
}
