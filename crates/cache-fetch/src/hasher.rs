//! The in-order hasher: a thread that hashes the sink's bytes from offset 0 as they become
//! contiguous, so the network never waits for it.
//!
//! # Design
//! Receivers write chunks at their offsets and report them to a [`Frontier`]; the frontier
//! is the end of the contiguous run from byte 0. The hasher thread follows it and feeds
//! every requested digest, so every byte is hashed exactly once and a parallel transfer
//! needs no reordering buffer. A resumed file's existing prefix is simply "already
//! written": it is re-hashed (read back from the sink) while the rest downloads.
//!
//! # Performance
//! The frontier also keeps the chunks just written (reference-counted `Bytes`, no copy)
//! when they lie within [`KEEP_WINDOW`] bytes of the hasher's position, and the hasher
//! takes them from memory while they are still in the CPU caches. Anything else — a
//! resumed prefix, the later ranges of a parallel transfer, a hasher that fell behind —
//! is read back from the sink (the page cache) in 1 MiB blocks. Memory stays bounded
//! (the window plus one block) and the receivers never wait for the hasher: a chunk that
//! does not fit in the window is simply not kept.
//!
//! Measured on the development machine (SHA-NI, AVX-512, 1 GiB over loopback): sha256
//! costs ~0.85 s of CPU, blake3 ~0.23 s, reading back from the page cache ~0.15 s; the
//! hasher thread is the longest serial chain of a transfer there.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;
use cache_core::{DigestKinds, Digests, MultiHasher};

use crate::error::Error;
use crate::sink::{Sink, read_exact_at};

const BLOCK: usize = 1 << 20;

/// Written chunks starting less than this far ahead of the hasher are kept in memory for
/// it (bounding the memory a download holds beyond its receive buffers).
pub(crate) const KEEP_WINDOW: u64 = 16 << 20;

#[derive(Default)]
struct State {
    /// Written intervals beyond the contiguous prefix: start → end.
    pending: BTreeMap<u64, u64>,
    contiguous: u64,
    /// Written chunks not hashed yet, by offset (all within `KEEP_WINDOW` of `hashed`).
    kept: BTreeMap<u64, Bytes>,
    kept_bytes: u64,
    /// Where the hasher is.
    hashed: u64,
    closed: bool,
    aborted: bool,
}

/// The hasher's next step.
enum Piece {
    /// These bytes, in memory, start at the hasher's position.
    Kept(Bytes),
    /// Read the sink from the hasher's position up to here.
    Sink(u64),
    /// Everything was hashed.
    Done,
}

/// How far the sink holds contiguous written bytes from 0.
#[derive(Default)]
pub(crate) struct Frontier {
    state: Mutex<State>,
    changed: Condvar,
}

impl Frontier {
    /// A frontier whose first `prefix` bytes are already in the sink.
    pub(crate) fn new(prefix: u64) -> Arc<Self> {
        Arc::new(Frontier { state: Mutex::new(State { contiguous: prefix, ..State::default() }), changed: Condvar::new() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `data` was written at `start`; keeps it for the hasher if it is near.
    pub(crate) fn written(&self, start: u64, data: Bytes) {
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
        if start <= s.contiguous {
            s.contiguous = s.contiguous.max(end);
            // Absorb pending intervals the prefix now reaches.
            while let Some((&a, &b)) = s.pending.first_key_value() {
                if a > s.contiguous {
                    break;
                }
                s.contiguous = s.contiguous.max(b);
                s.pending.remove(&a);
            }
            drop(s);
            self.changed.notify_all();
        } else {
            let e = s.pending.entry(start).or_insert(end);
            *e = (*e).max(end);
        }
    }

    /// The contiguous prefix.
    pub(crate) fn contiguous(&self) -> u64 {
        self.lock().contiguous
    }

    /// No more bytes will be written: the hasher finishes at the frontier.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// The transfer failed or restarts: the hasher stops without a result.
    pub(crate) fn abort(&self) {
        self.lock().aborted = true;
        self.changed.notify_all();
    }

    /// Records that the hasher reached `pos` and waits for what it hashes next; `None`
    /// when the transfer was aborted.
    fn next_piece(&self, pos: u64) -> Option<Piece> {
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
}

/// Hashes `sink[from..to]` into `hasher`.
pub(crate) fn hash_range(sink: &dyn Sink, hasher: &mut MultiHasher, from: u64, to: u64, buf: &mut [u8]) -> Result<(), Error> {
    let mut pos = from;
    while pos < to {
        let n = usize::try_from(to - pos).map_or(buf.len(), |r| r.min(buf.len()));
        read_exact_at(sink, pos, &mut buf[..n]).map_err(|e| Error::io("read back", e))?;
        hasher.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(())
}

/// Hashes a whole sink of `len` bytes in the calling thread.
pub(crate) fn hash_all(sink: &dyn Sink, kinds: DigestKinds, len: u64) -> Result<Digests, Error> {
    let mut h = MultiHasher::new(kinds, len);
    let mut buf = vec![0u8; usize::try_from(len).map_or(BLOCK, |l| l.clamp(1, BLOCK))];
    hash_range(sink, &mut h, 0, len, &mut buf)?;
    Ok(h.finalize())
}

/// A hashing thread following a frontier.
pub(crate) struct HashJob {
    result: tokio::sync::oneshot::Receiver<Option<Result<Digests, Error>>>,
}

/// Hashes the sink as `frontier` advances, up to its end (memory first, else the sink).
pub(crate) fn follow(sink: &dyn Sink, kinds: DigestKinds, len: u64, frontier: &Frontier) -> Option<Result<Digests, Error>> {
    let mut h = MultiHasher::new(kinds, len);
    let mut buf = Vec::new();
    let mut pos = 0;
    loop {
        match frontier.next_piece(pos)? {
            Piece::Kept(data) => {
                h.update(&data);
                pos += data.len() as u64;
            }
            Piece::Sink(end) => {
                if buf.is_empty() {
                    buf = vec![0u8; BLOCK];
                }
                if let Err(e) = hash_range(sink, &mut h, pos, end, &mut buf) {
                    return Some(Err(e));
                }
                pos = end;
            }
            Piece::Done => return Some(Ok(h.finalize())),
        }
    }
}

impl HashJob {
    /// Starts hashing `sink` (whose final length is `len`) as `frontier` advances.
    pub(crate) fn spawn(sink: Arc<dyn Sink>, kinds: DigestKinds, len: u64, frontier: Arc<Frontier>) -> Result<HashJob, Error> {
        let (tx, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("modelcache-hash".into())
            .spawn(move || {
                let _ = tx.send(follow(&*sink, kinds, len, &frontier));
            })
            .map_err(|e| Error::io("start the hashing thread for", e))?;
        Ok(HashJob { result })
    }

    /// Waits for the digests (after [`Frontier::close`]); `None` if aborted.
    pub(crate) async fn finish(self) -> Option<Result<Digests, Error>> {
        match self.result.await {
            Ok(result) => result,
            Err(_) => Some(Err(Error::io("hash", std::io::Error::other("the hashing thread panicked")))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::{Blake3, GitSha1, Sha256};

    fn sample(len: usize) -> Vec<u8> {
        (0..u32::try_from(len).unwrap()).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
    }

    #[test]
    fn frontier_advances_only_over_contiguous_bytes() {
        let f = Frontier::new(10);
        let w = |a: u64, b: u64| f.written(a, Bytes::from(vec![0; usize::try_from(b - a).unwrap()]));
        w(20, 30);
        assert_eq!(f.contiguous(), 10);
        w(40, 50);
        w(10, 20);
        assert_eq!(f.contiguous(), 30);
        w(30, 40);
        assert_eq!(f.contiguous(), 50);
        w(0, 5);
        assert_eq!(f.contiguous(), 50);
    }

    #[test]
    fn near_chunks_are_hashed_from_memory_and_far_ones_from_the_sink() {
        let window = usize::try_from(KEEP_WINDOW).unwrap();
        let len = window + 3_000_000;
        let data = sample(len);
        let far = window + 1_000_000;
        let file = tempfile::tempfile().unwrap();
        file.write_at(0, &data).unwrap();
        // What the sink holds at 1000..500_000 is stale: only the kept chunk is right.
        file.write_at(1000, &vec![0; 499_000]).unwrap();
        let frontier = Frontier::new(1000);
        frontier.written(far as u64, Bytes::copy_from_slice(&data[far..]));
        frontier.written(1000, Bytes::copy_from_slice(&data[1000..500_000]));
        frontier.written(500_000, Bytes::copy_from_slice(&data[500_000..far]));
        frontier.close();
        let d = follow(&file, DigestKinds::ALL, len as u64, &frontier).unwrap().unwrap();
        assert_eq!(d.size, len as u64);
        assert_eq!(d.sha256, Some(Sha256::of(&data)));
        assert_eq!(d.blake3, Some(Blake3::of(&data)));
        let state = frontier.lock();
        assert!(state.kept.is_empty() && state.kept_bytes == 0);
    }

    #[tokio::test]
    async fn out_of_order_writes_hash_like_one_pass() {
        let data = sample(3_000_000);
        let file: Arc<dyn Sink> = Arc::new(tempfile::tempfile().unwrap());
        file.write_at(0, &data[..1000]).unwrap();
        let frontier = Frontier::new(1000);
        let job = HashJob::spawn(Arc::clone(&file), DigestKinds::ALL, data.len() as u64, Arc::clone(&frontier)).unwrap();
        for (a, b) in [(2_000_000_usize, 3_000_000_usize), (1000, 500_000), (500_000, 2_000_000)] {
            file.write_at(a as u64, &data[a..b]).unwrap();
            frontier.written(a as u64, Bytes::copy_from_slice(&data[a..b]));
        }
        frontier.close();
        let d = job.finish().await.unwrap().unwrap();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, Some(Sha256::of(&data)));
        assert_eq!(d.git_sha1, Some(GitSha1::of(&data)));
        assert_eq!(d.blake3, Some(Blake3::of(&data)));
        assert_eq!(hash_all(&*file, DigestKinds::ALL, data.len() as u64).unwrap(), d);
    }

    #[tokio::test]
    async fn an_aborted_job_returns_nothing() {
        let file: Arc<dyn Sink> = Arc::new(tempfile::tempfile().unwrap());
        let frontier = Frontier::new(0);
        let job = HashJob::spawn(file, DigestKinds::ALL, 10, Arc::clone(&frontier)).unwrap();
        frontier.abort();
        assert!(job.finish().await.is_none());
    }
}
