//! `Frontier`: which bytes of the sink are written — the contiguous run from byte 0 that
//! the hasher follows, the ranges beyond it, and the bytes not yet checkpointed.
//!
//! # Design
//! Receivers report every chunk they wrote ([`Frontier::written`]). The frontier merges
//! it into a set of written ranges (a prefix plus a few intervals beyond it, one per
//! running range request, since each request writes sequentially), keeps chunks near the
//! hasher in memory for it (see `hasher`), and counts bytes written since the last
//! checkpoint so the checkpointer (see `checkpoint`) knows when to persist the set.
//! Ranges the sink held before the transfer are simply "already written".

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// Written chunks starting less than this far ahead of the hasher are kept in memory for
/// it (bounding the memory a download holds beyond its receive buffers).
pub(crate) const KEEP_WINDOW: u64 = 16 << 20;

#[derive(Default)]
struct State {
    /// Written intervals beyond the contiguous prefix, merged: start → end.
    pending: BTreeMap<u64, u64>,
    contiguous: u64,
    /// Written chunks not hashed yet, by offset (all within `KEEP_WINDOW` of `hashed`).
    kept: BTreeMap<u64, Bytes>,
    kept_bytes: u64,
    /// Where the hasher is.
    hashed: u64,
    /// Bytes written since the last checkpoint was taken.
    unrecorded: u64,
    closed: bool,
    aborted: bool,
}

/// The hasher's next step.
pub(crate) enum Piece {
    /// These bytes, in memory, start at the hasher's position.
    Kept(Bytes),
    /// Read the sink from the hasher's position up to here.
    Sink(u64),
    /// Everything was hashed.
    Done,
}

/// Which bytes of the sink are written, shared by receivers, hasher and checkpointer.
#[derive(Default)]
pub(crate) struct Frontier {
    state: Mutex<State>,
    /// The contiguous prefix grew, or the transfer ended (the hasher waits on it).
    changed: Condvar,
    /// A checkpoint is due, or the transfer ended (the checkpointer waits on it).
    due: Condvar,
}

impl Frontier {
    /// A frontier whose first `prefix` bytes are already in the sink.
    #[cfg(test)]
    pub(crate) fn new(prefix: u64) -> Arc<Self> {
        Self::with_ranges(std::slice::from_ref(&(0..prefix)))
    }

    /// A frontier over a sink already holding `ranges` (normalized).
    pub(crate) fn with_ranges(ranges: &[Range<u64>]) -> Arc<Self> {
        let f = Arc::new(Frontier::default());
        {
            let mut s = f.lock();
            for r in ranges.iter().filter(|r| r.start < r.end) {
                s.insert(r.start, r.end);
            }
        }
        f
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `data` was written at `start`; keeps it for the hasher if it is near.
    /// Wakes the checkpointer once `checkpoint_every` bytes were written since the last
    /// checkpoint.
    pub(crate) fn written(&self, start: u64, data: Bytes, checkpoint_every: u64) {
        let end = start + data.len() as u64;
        if start >= end {
            return;
        }
        let mut s = self.lock();
        if start >= s.hashed && end <= s.hashed + KEEP_WINDOW && s.kept_bytes + (end - start) <= KEEP_WINDOW {
            s.kept_bytes += end - start;
            if let Some(old) = s.kept.insert(start, data) {
                s.kept_bytes -= old.len() as u64;
            }
        }
        let before = s.unrecorded;
        s.unrecorded += end - start;
        let due = before < checkpoint_every && s.unrecorded >= checkpoint_every;
        let grew = s.insert(start, end);
        drop(s);
        if grew {
            self.changed.notify_all();
        }
        if due {
            self.due.notify_all();
        }
    }

    /// The contiguous prefix.
    pub(crate) fn contiguous(&self) -> u64 {
        self.lock().contiguous
    }

    /// Every written range, normalized.
    pub(crate) fn ranges(&self) -> Vec<Range<u64>> {
        self.lock().ranges()
    }

    /// No more bytes will be written: the hasher finishes at the frontier.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
        self.due.notify_all();
    }

    /// The transfer failed or restarts: the hasher stops without a result.
    pub(crate) fn abort(&self) {
        self.lock().aborted = true;
        self.changed.notify_all();
        self.due.notify_all();
    }

    /// Waits until `every` bytes were written since the last checkpoint and returns the
    /// written ranges (the new checkpoint); `None` once the transfer ended.
    pub(crate) fn next_checkpoint(&self, every: u64) -> Option<Vec<Range<u64>>> {
        let mut s = self.lock();
        loop {
            if s.aborted || s.closed {
                return None;
            }
            if s.unrecorded >= every {
                s.unrecorded = 0;
                return Some(s.ranges());
            }
            s = self.due.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Records that the hasher reached `pos` and waits for what it hashes next; `None`
    /// when the transfer was aborted.
    pub(crate) fn next_piece(&self, pos: u64) -> Option<Piece> {
        let mut s = self.lock();
        s.hashed = pos;
        loop {
            if s.aborted {
                return None;
            }
            if s.contiguous > pos {
                break;
            }
            if s.closed {
                return Some(Piece::Done);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        // Chunks entirely behind the hasher (none in a well-formed transfer) are dropped.
        while let Some(entry) = s.kept.first_entry() {
            if *entry.key() + entry.get().len() as u64 > pos {
                break;
            }
            let dropped = entry.remove();
            s.kept_bytes -= dropped.len() as u64;
        }
        let contiguous = s.contiguous;
        let next = match s.kept.first_entry() {
            Some(entry) if *entry.key() <= pos => {
                let (start, data) = entry.remove_entry();
                s.kept_bytes -= data.len() as u64;
                let skip = usize::try_from(pos - start).unwrap_or(usize::MAX);
                let take = usize::try_from(contiguous - start).unwrap_or(usize::MAX).min(data.len());
                return Some(Piece::Kept(data.slice(skip..take)));
            }
            Some(entry) => *entry.key(),
            None => u64::MAX,
        };
        Some(Piece::Sink(contiguous.min(next)))
    }

    #[cfg(test)]
    pub(crate) fn kept_is_empty(&self) -> bool {
        let s = self.lock();
        s.kept.is_empty() && s.kept_bytes == 0
    }
}

impl State {
    /// Adds `start..end` to the written set; returns whether the prefix grew.
    fn insert(&mut self, start: u64, mut end: u64) -> bool {
        if start <= self.contiguous {
            if end <= self.contiguous {
                return false;
            }
            self.contiguous = end;
            // Absorb pending intervals the prefix now reaches.
            while let Some((&a, &b)) = self.pending.first_key_value() {
                if a > self.contiguous {
                    break;
                }
                self.contiguous = self.contiguous.max(b);
                self.pending.remove(&a);
            }
            return true;
        }
        // Merge with the interval before (a request continuing its own run) and after.
        let mut start = start;
        if let Some((&a, &b)) = self.pending.range(..=start).next_back()
            && b >= start
        {
            start = a;
            end = end.max(b);
        }
        while let Some((&a, &b)) = self.pending.range(start..).next() {
            if a > end {
                break;
            }
            end = end.max(b);
            self.pending.remove(&a);
        }
        self.pending.insert(start, end);
        false
    }

    fn ranges(&self) -> Vec<Range<u64>> {
        let head = (self.contiguous > 0).then_some(0..self.contiguous);
        head.into_iter().chain(self.pending.iter().map(|(&a, &b)| a..b)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(a: u64, b: u64) -> Bytes {
        Bytes::from(vec![0; usize::try_from(b - a).unwrap()])
    }

    #[test]
    fn frontier_advances_only_over_contiguous_bytes() {
        let f = Frontier::new(10);
        let w = |a: u64, b: u64| f.written(a, zeros(a, b), u64::MAX);
        w(20, 30);
        assert_eq!(f.contiguous(), 10);
        w(40, 50);
        w(10, 20);
        assert_eq!(f.contiguous(), 30);
        w(30, 40);
        assert_eq!(f.contiguous(), 50);
        w(0, 5);
        assert_eq!(f.contiguous(), 50);
        assert_eq!(f.ranges(), vec![0..50]);
    }

    #[test]
    fn written_ranges_merge_as_requests_continue() {
        let f = Frontier::with_ranges(std::slice::from_ref(&(100..200)));
        assert_eq!(f.contiguous(), 0);
        for (a, b) in [(300, 310), (310, 320), (200, 250), (500, 600), (320, 330), (250, 260)] {
            f.written(a, zeros(a, b), u64::MAX);
        }
        assert_eq!(f.ranges(), vec![100..260, 300..330, 500..600]);
        f.written(260, zeros(260, 300), u64::MAX);
        assert_eq!(f.ranges(), vec![100..330, 500..600]);
        f.written(0, zeros(0, 100), u64::MAX);
        assert_eq!((f.contiguous(), f.ranges()), (330, vec![0..330, 500..600]));
    }

    #[test]
    fn checkpoints_come_every_so_many_bytes_and_stop_at_the_end() {
        let f = Frontier::new(0);
        let waiter = {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while let Some(r) = f.next_checkpoint(100) {
                    seen.push(r);
                }
                seen
            })
        };
        f.written(0, zeros(0, 60), 100);
        f.written(200, zeros(200, 260), 100);
        // Let the checkpointer take it before the next write, so the test is exact.
        while f.lock().unrecorded != 0 {
            std::thread::yield_now();
        }
        f.written(60, zeros(60, 90), 100);
        f.close();
        let seen = waiter.join().unwrap();
        assert_eq!(seen, vec![vec![0..60, 200..260]]);
        assert_eq!(f.next_checkpoint(100), None);
    }
}
