//! The in-order hasher: a thread that hashes the sink's bytes from offset 0 as they become
//! contiguous, so the network never waits for it.
//!
//! # Design
//! Receivers write chunks at their offsets and report them to a [`Frontier`]; the frontier
//! is the end of the contiguous run from byte 0 (see `frontier`). The hasher thread follows it and feeds
//! every requested digest, so every byte is hashed exactly once and a parallel transfer
//! needs no reordering buffer. What a resumed sink already held (a prefix, or ranges a
//! progress record names) is simply "already written": it is re-hashed, read back from
//! the sink, when the frontier reaches it.
//!
//! # Performance
//! The frontier also keeps the chunks just written (reference-counted `Bytes`, no copy)
//! when they lie within `KEEP_WINDOW` bytes of the hasher's position, and the hasher
//! takes them from memory while they are still in the CPU caches. Anything else — a
//! resumed prefix, the later ranges of a parallel transfer, a hasher that fell behind —
//! is read back from the sink (the page cache) in 1 MiB blocks. Memory stays bounded
//! (the window plus one block) and the receivers never wait for the hasher: a chunk that
//! does not fit in the window is simply not kept.
//!
//! Measured on the development machine (SHA-NI, AVX-512, 1 GiB over loopback): sha256
//! costs ~0.85 s of CPU, blake3 ~0.23 s, reading back from the page cache ~0.15 s; the
//! hasher thread is the longest serial chain of a transfer there.

use std::sync::Arc;

use cache_core::{DigestKinds, Digests, MultiHasher};

use crate::error::Error;
use crate::frontier::{Frontier, Piece};
use crate::sink::{Sink, read_exact_at};

const BLOCK: usize = 1 << 20;

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
    use crate::frontier::KEEP_WINDOW;
    use bytes::Bytes;
    use cache_core::{Blake3, GitSha1, Sha256};

    fn sample(len: usize) -> Vec<u8> {
        (0..u32::try_from(len).unwrap()).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
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
        frontier.written(far as u64, Bytes::copy_from_slice(&data[far..]), u64::MAX);
        frontier.written(1000, Bytes::copy_from_slice(&data[1000..500_000]), u64::MAX);
        frontier.written(500_000, Bytes::copy_from_slice(&data[500_000..far]), u64::MAX);
        frontier.close();
        let d = follow(&file, DigestKinds::ALL, len as u64, &frontier).unwrap().unwrap();
        assert_eq!(d.size, len as u64);
        assert_eq!(d.sha256, Some(Sha256::of(&data)));
        assert_eq!(d.blake3, Some(Blake3::of(&data)));
        assert!(frontier.kept_is_empty());
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
            frontier.written(a as u64, Bytes::copy_from_slice(&data[a..b]), u64::MAX);
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
