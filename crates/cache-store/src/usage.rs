//! Deferred usage tracking: hits record their last-use time in memory and are flushed to
//! the index in batches (explicitly, when enough are pending, and on drop), as cargo's
//! global cache tracker does, so a cache hit costs no disk write.

use foldhash::HashMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_core::{BUCKETS, Histogram, HistogramKind};

/// `(repo, revision, path)` as the index keys entries.
pub(crate) type Key = (String, String, String);

/// Pending uses are keyed by `repo NUL revision NUL path` (no part can hold a NUL), so a
/// repeated hit finds its entry without allocating.
#[derive(Default)]
pub(crate) struct Usage {
    pending: Mutex<HashMap<String, i64>>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Hit latency, per bucket and summed (microseconds), as [`Histogram`] counts.
    hit_buckets: [AtomicU64; BUCKETS],
    hit_micros: AtomicU64,
}

/// What a flush writes.
pub(crate) struct Batch {
    pub(crate) touched: Vec<(String, String, String, i64)>,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) hit_latency: Histogram,
}

impl Usage {
    fn pending(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a hit that took `latency` to answer; returns how many entries are now
    /// pending. Two atomic additions for the latency: no lock, no write.
    pub(crate) fn hit(&self, repo: &str, revision: &str, path: &str, now: i64, latency: Duration) -> usize {
        self.hits.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.hit_buckets[HistogramKind::HitSeconds.bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.hit_micros.fetch_add(micros, Ordering::Relaxed);
        self.touch(repo, revision, path, now)
    }

    /// Records a use at `now` without counting a lookup; returns how many entries are
    /// now pending.
    pub(crate) fn touch(&self, repo: &str, revision: &str, path: &str, now: i64) -> usize {
        thread_local! {
            static KEY: RefCell<String> = const { RefCell::new(String::new()) };
        }
        KEY.with_borrow_mut(|key| {
            join_into(key, repo, revision, path);
            let mut p = self.pending();
            match p.get_mut(key.as_str()) {
                Some(t) => *t = (*t).max(now),
                None => {
                    p.insert(key.clone(), now);
                }
            }
            p.len()
        })
    }

    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// The pending last-use time of an entry, if any.
    pub(crate) fn last_used(&self, key: &Key) -> Option<i64> {
        let mut joined = String::new();
        join_into(&mut joined, &key.0, &key.1, &key.2);
        self.pending().get(&joined).copied()
    }

    /// Unflushed hits and misses.
    pub(crate) fn unflushed(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }

    /// Unflushed hit latencies.
    pub(crate) fn unflushed_latency(&self) -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|i| self.hit_buckets[i].load(Ordering::Relaxed)),
            sum: self.hit_micros.load(Ordering::Relaxed),
        }
    }

    /// Takes everything pending (give it back with [`Usage::restore`] if writing fails).
    pub(crate) fn take(&self) -> Batch {
        let touched = self
            .pending()
            .drain()
            .filter_map(|(k, t)| {
                let mut parts = k.splitn(3, '\0');
                Some((parts.next()?.to_owned(), parts.next()?.to_owned(), parts.next()?.to_owned(), t))
            })
            .collect();
        let hit_latency = Histogram {
            buckets: std::array::from_fn(|i| self.hit_buckets[i].swap(0, Ordering::Relaxed)),
            sum: self.hit_micros.swap(0, Ordering::Relaxed),
        };
        Batch { touched, hits: self.hits.swap(0, Ordering::Relaxed), misses: self.misses.swap(0, Ordering::Relaxed), hit_latency }
    }

    pub(crate) fn restore(&self, batch: Batch) {
        self.hits.fetch_add(batch.hits, Ordering::Relaxed);
        self.misses.fetch_add(batch.misses, Ordering::Relaxed);
        for (a, n) in self.hit_buckets.iter().zip(batch.hit_latency.buckets) {
            a.fetch_add(n, Ordering::Relaxed);
        }
        self.hit_micros.fetch_add(batch.hit_latency.sum, Ordering::Relaxed);
        let mut p = self.pending();
        for (a, b, c, t) in batch.touched {
            let mut key = String::new();
            join_into(&mut key, &a, &b, &c);
            let e = p.entry(key).or_insert(t);
            *e = (*e).max(t);
        }
    }
}

fn join_into(buf: &mut String, repo: &str, revision: &str, path: &str) {
    buf.clear();
    buf.push_str(repo);
    buf.push('\0');
    buf.push_str(revision);
    buf.push('\0');
    buf.push_str(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_the_latest_use_and_survive_a_failed_flush() {
        let u = Usage::default();
        assert_eq!(u.hit("r", "c", "p", 5, Duration::from_micros(30)), 1);
        assert_eq!(u.hit("r", "c", "p", 3, Duration::from_secs(2)), 1);
        u.miss();
        assert_eq!(u.last_used(&("r".into(), "c".into(), "p".into())), Some(5));
        let b = u.take();
        assert_eq!((b.touched.len(), b.hits, b.misses), (1, 2, 1));
        assert_eq!((b.hit_latency.count(), b.hit_latency.sum), (2, 2_000_030));
        assert_eq!(u.unflushed(), (0, 0));
        assert_eq!(u.unflushed_latency().count(), 0);
        u.restore(b);
        assert_eq!(u.unflushed(), (2, 1));
        assert_eq!(u.unflushed_latency().buckets[cache_core::BOUNDS], 1, "the 2 s hit is above every bound");
        assert_eq!(u.take().touched, [("r".into(), "c".into(), "p".into(), 5)]);
    }
}
