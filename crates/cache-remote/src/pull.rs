//! Pulling one blob into a sink: one HEAD (a missing object is a plain miss, a wrong size
//! is corruption), then ranged GETs of [`TierOptions::chunk`](crate::TierOptions) bytes,
//! `parallelism` in flight and written in order, hashed while they arrive.
//!
//! # Performance
//! Each GET's body is written into the sink at its offsets as it arrives (a directory
//! tier's file is copied in 1 MiB blocks), so no range is held whole in memory whatever
//! `chunk` and `parallelism` are. The digest is computed on a thread of its own that
//! follows the in-order end, reading the bytes back from the page cache: the receive
//! path never waits for SHA-256, which costs about as much CPU as receiving.
//!
//! # Verified, resumable
//! What the sink already holds from byte 0 (its completed ranges) is read back and hashed
//! first, and only the rest is fetched; the completed prefix is recorded every 64 MiB and
//! when a transfer fails, so a resumed pull (from the tier or the Hub) fetches the rest
//! only. At the end the digest the key names decides: a mismatch empties the sink, is
//! counted as corruption (never as a miss) and marks the key for repair by the next
//! verified push.

use std::sync::Arc;

use cache_core::{Digests, MultiHasher};
use cache_fetch::{Event, Progress, Sink};
use futures_util::StreamExt;
use object_store::ObjectStoreExt;

use crate::counters::Counters;
use crate::error::Error;
use crate::layout::BlobKey;
use crate::tier::{Failure, Tier};

/// How a pull from one tier ended.
#[derive(Debug)]
pub enum Pulled {
    /// The sink holds the verified blob.
    Hit(Digests),
    /// The tier does not hold it.
    Miss,
    /// The tier's object is not the blob its key names; the sink was emptied.
    Corrupt,
    /// The tier could not be used (down, stalled, skipped, unknown format, not readable).
    Failed(Error),
    /// The tier is not read by this process (`wo`).
    NotRead,
}

const RECORD_EVERY: u64 = 64 << 20;

/// The contiguous run from byte 0 that `ranges` cover.
fn held_prefix(ranges: &[std::ops::Range<u64>], size: u64) -> u64 {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut end = 0;
    for r in sorted {
        if r.start > end {
            break;
        }
        end = end.max(r.end);
    }
    end.min(size)
}

impl Tier {
    /// Pulls `key` (`size` bytes) into `sink`, verified; `label` names it in progress
    /// events.
    pub async fn pull(&self, key: &BlobKey, size: u64, sink: &Arc<dyn Sink>, label: &str, progress: &dyn Progress) -> Pulled {
        if !self.mode().reads() {
            return Pulled::NotRead;
        }
        if let Err(e) = self.probe().await {
            return Pulled::Failed(e);
        }
        let k = key.key();
        let path = self.path(&k);
        let meta = match self.call("look up", &k, self.store.head(&path)).await {
            Ok(m) => m,
            Err(Failure::NotFound) => {
                Counters::bump(&self.counters.misses, 1);
                return Pulled::Miss;
            }
            Err(f) => {
                return Pulled::Failed(f.into_error(self, &k).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() }));
            }
        };
        if meta.size != size {
            tracing::warn!(tier = %self.url(), key = %k, expected = size, found = meta.size, "remote object has the wrong size: not used");
            self.corrupt(&k);
            return Pulled::Corrupt;
        }
        let mut outcome = self.transfer(key, &k, size, sink, label, progress).await;
        if let Ok((None, resumed)) = outcome
            && resumed > 0
        {
            // The part an earlier attempt left may be what was wrong: once more from zero.
            let _ = sink.set_len(0);
            let _ = sink.record_completed(&[]);
            progress.event(&Event::Restarted { label, discarded: resumed });
            outcome = self.transfer(key, &k, size, sink, label, progress).await;
        }
        match outcome.map(|(d, _)| d) {
            Ok(Some(d)) => {
                Counters::bump(&self.counters.hits, 1);
                tracing::info!(tier = %self.url(), key = %k, bytes = size, "pulled from the remote tier");
                Pulled::Hit(d)
            }
            Ok(None) => {
                let _ = sink.set_len(0);
                let _ = sink.record_completed(&[]);
                self.corrupt(&k);
                Pulled::Corrupt
            }
            Err(e) => Pulled::Failed(e),
        }
    }

    /// Like [`Tier::pull`] for a blob whose size is not known beforehand (a URL artifact
    /// by its SHA-256): the object's size is taken from the tier.
    pub async fn pull_unsized(&self, key: &BlobKey, sink: &Arc<dyn Sink>, label: &str, progress: &dyn Progress) -> Pulled {
        if !self.mode().reads() {
            return Pulled::NotRead;
        }
        if let Err(e) = self.probe().await {
            return Pulled::Failed(e);
        }
        let k = key.key();
        match self.call("look up", &k, self.store.head(&self.path(&k))).await {
            Ok(meta) => self.pull(key, meta.size, sink, label, progress).await,
            Err(Failure::NotFound) => {
                Counters::bump(&self.counters.misses, 1);
                Pulled::Miss
            }
            Err(f) => Pulled::Failed(f.into_error(self, &k).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() })),
        }
    }

    fn corrupt(&self, key: &str) {
        Counters::bump(&self.counters.corrupt, 1);
        self.repair.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.to_owned());
    }

    /// Streams the object into the sink; `Ok(None)` when it did not hash to its key. Also
    /// says how many bytes were resumed from the sink.
    async fn transfer(
        &self,
        key: &BlobKey,
        k: &str,
        size: u64,
        sink: &Arc<dyn Sink>,
        label: &str,
        progress: &dyn Progress,
    ) -> Result<(Option<Digests>, u64), Error> {
        let io = |op, source| Error::Io { op, path: label.to_owned(), source };
        let etag = key.etag();
        let len = sink.size().map_err(|e| io("read", e))?;
        // A sink without a record holds its first `len` bytes (cache-fetch's convention).
        let ranges = sink
            .completed_ranges()
            .map_err(|e| io("read the progress of", e))?
            .unwrap_or_else(|| std::iter::once(0..len).collect());
        let held = held_prefix(&ranges, size);
        let resumed = if len < held { 0 } else { held };
        // The hasher re-reads what an earlier attempt left while the first ranges travel.
        let (hash, hashed) = Hashing::start(Arc::clone(sink), MultiHasher::new(etag.required(), size), resumed);
        let mut pos = resumed;
        progress.event(&Event::Started { label, total: Some(size), resumed_from: pos });
        let chunk = self.options.chunk.max(1);
        let ranges: Vec<std::ops::Range<u64>> =
            (pos..size).step_by(usize::try_from(chunk).unwrap_or(usize::MAX)).map(|s| s..(s + chunk).min(size)).collect();
        let path = self.path(k);
        let mut parts = futures_util::stream::iter(ranges)
            .map(|r| {
                let path = path.clone();
                async move { (r.clone(), self.call("get", k, land(&*self.store, &path, r, sink)).await) }
            })
            .buffered(self.options.parallelism.max(1));
        let mut recorded = pos;
        let mut failure = None;
        while let Some((range, got)) = parts.next().await {
            match got {
                Ok(Landed::Written(n)) if n == range.end - range.start => {}
                Ok(Landed::Written(_)) => {
                    // A short read: the object changed under us; the digest would say so.
                    failure = Some(Error::Timeout {
                        url: self.url().to_owned(),
                        op: "get",
                        key: k.to_owned(),
                        after: self.options.request_timeout,
                    });
                    break;
                }
                Ok(Landed::WriteFailed(e)) => {
                    failure = Some(io("write", e));
                    break;
                }
                Err(f) => {
                    failure = Some(f.into_error(self, k).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() }));
                    break;
                }
            }
            // The hasher follows the in-order end, reading the bytes back from the sink.
            if hash.send(range.end).await.is_err() {
                break;
            }
            let n = range.end - range.start;
            pos = range.end;
            Counters::bump(&self.counters.bytes_pulled, n);
            progress.event(&Event::Advanced { label, bytes: n });
            if pos - recorded >= RECORD_EVERY && sink.records_progress() {
                let _ = sink.record_completed(std::slice::from_ref(&(0..pos)));
                recorded = pos;
            }
        }
        drop(parts);
        drop(hash);
        let digests = hashed.finish().await;
        if let Some(e) = failure {
            if sink.records_progress() && pos > 0 {
                let _ = sink.record_completed(std::slice::from_ref(&(0..pos)));
            }
            return Err(e);
        }
        let digests = digests.map_err(|e| io("read back", e))?;
        if digests.size != size {
            return Err(io("read back", std::io::Error::other("the hashing thread stopped early")));
        }
        if let Err(m) = etag.verify(&digests) {
            tracing::warn!(tier = %self.url(), key = k, expected = %m.expected, actual = %m.actual, "remote object does not match its digest: discarded");
            return Ok((None, resumed));
        }
        progress.event(&Event::Finished { label, bytes: size });
        Ok((Some(digests), resumed))
    }
}

/// How one ranged GET ended once its body was in the sink.
enum Landed {
    /// This many bytes were written at the range's offsets.
    Written(u64),
    /// The sink refused a write (a local problem, not the tier's).
    WriteFailed(std::io::Error),
}

/// Reads `range` of the object at `path` and writes it into the sink at the same offsets
/// as the body arrives, so no range is ever held whole in memory. A directory tier's file
/// is copied in 1 MiB blocks on a blocking thread (`object_store` streams it in 8 KiB reads).
async fn land(
    store: &dyn object_store::ObjectStore,
    path: &object_store::path::Path,
    range: std::ops::Range<u64>,
    sink: &Arc<dyn Sink>,
) -> object_store::Result<Landed> {
    let opts = object_store::GetOptions::default().with_range(Some(range.clone()));
    let result = store.get_opts(path, opts).await?;
    let mut at = range.start;
    match result.payload {
        object_store::GetResultPayload::File(file, _) => {
            let sink = Arc::clone(sink);
            let copied = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; usize::try_from(range.end - range.start).map_or(BLOCK, |n| n.min(BLOCK))];
                while at < range.end {
                    let want = usize::try_from(range.end - at).map_or(buf.len(), |n| n.min(buf.len()));
                    let got = Sink::read_at(&file, at, &mut buf[..want]).map_err(|e| (true, e))?;
                    if got == 0 {
                        break;
                    }
                    sink.write_at(at, &buf[..got]).map_err(|e| (false, e))?;
                    at += got as u64;
                }
                Ok::<_, (bool, std::io::Error)>(at - range.start)
            })
            .await
            .map_err(|e| object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) })?;
            match copied {
                Ok(n) => Ok(Landed::Written(n)),
                Err((true, e)) => Err(object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) }),
                Err((false, e)) => Ok(Landed::WriteFailed(e)),
            }
        }
        object_store::GetResultPayload::Stream(mut body) => {
            while let Some(frame) = body.next().await {
                let frame = frame?;
                if at + frame.len() as u64 > range.end {
                    // More than asked for: not the object we measured.
                    return Ok(Landed::Written(u64::MAX));
                }
                if let Err(e) = sink.write_at(at, &frame) {
                    return Ok(Landed::WriteFailed(e));
                }
                at += frame.len() as u64;
            }
            Ok(Landed::Written(at - range.start))
        }
    }
}

const BLOCK: usize = 1 << 20;

/// The hashing thread of one transfer: it hashes the sink from byte 0 up to each end it is
/// handed, reading the bytes back (from the page cache, in 1 MiB blocks), so the receive
/// path never waits for the digest (SHA-256 of 1 GiB is ~0.85 s of CPU, as long as the
/// transfer itself) and holds no range in memory. The first `resumed` bytes, which an
/// earlier attempt left, are hashed the same way while the first ranges travel.
struct Hashing(tokio::task::JoinHandle<std::io::Result<Digests>>);

impl Hashing {
    fn start(sink: Arc<dyn Sink>, mut hasher: MultiHasher, resumed: u64) -> (tokio::sync::mpsc::Sender<u64>, Hashing) {
        // Ends are a few bytes each: the receive loop never waits to hand one over.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1024);
        let job = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; BLOCK];
            let mut pos = 0;
            let mut end = resumed;
            loop {
                while pos < end {
                    let n = usize::try_from(end - pos).map_or(buf.len(), |r| r.min(buf.len()));
                    let got = sink.read_at(pos, &mut buf[..n])?;
                    if got == 0 {
                        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the partial file shrank"));
                    }
                    hasher.update(&buf[..got]);
                    pos += got as u64;
                }
                match rx.blocking_recv() {
                    Some(next) => end = next,
                    None => return Ok(hasher.finalize()),
                }
            }
        });
        (tx, Hashing(job))
    }

    /// The digests, once the sender is dropped.
    async fn finish(self) -> std::io::Result<Digests> {
        self.0.await.map_err(|e| std::io::Error::other(format!("the hashing thread failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cache_core::{DigestKinds, MultiHasher, Sha256};
    use cache_fetch::Sink;

    use super::{Hashing, held_prefix};

    fn sample(len: usize) -> Vec<u8> {
        (0..u32::try_from(len).unwrap()).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
    }

    #[tokio::test]
    async fn the_hashing_thread_follows_the_written_ends_from_the_resumed_prefix_on() {
        let data = sample(3_000_000);
        let file: Arc<dyn Sink> = Arc::new(tempfile::tempfile().unwrap());
        // An earlier attempt left 1.5 MB (more than one read-back block).
        let resumed = 1_500_000;
        file.write_at(0, &data[..resumed]).unwrap();
        let hasher = MultiHasher::new(DigestKinds::ALL, data.len() as u64);
        let (tx, job) = Hashing::start(Arc::clone(&file), hasher, resumed as u64);
        let mut at = resumed;
        for part in data[resumed..].chunks(700_000) {
            file.write_at(at as u64, part).unwrap();
            at += part.len();
            tx.send(at as u64).await.unwrap();
        }
        drop(tx);
        let d = job.finish().await.unwrap();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, Some(Sha256::of(&data)));
    }

    #[tokio::test]
    async fn a_partial_file_shorter_than_its_record_is_an_error_not_a_digest() {
        let file: Arc<dyn Sink> = Arc::new(tempfile::tempfile().unwrap());
        file.write_at(0, &[7; 1000]).unwrap();
        let (tx, job) = Hashing::start(file, MultiHasher::new(DigestKinds::ALL, 5000), 2000);
        drop(tx);
        let e = job.finish().await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn only_the_run_from_zero_counts_as_held() {
        assert_eq!(held_prefix(&[0..10, 10..20, 30..40], 100), 20);
        assert_eq!(held_prefix(&[5..10, 20..30], 100), 0);
        assert_eq!(held_prefix(&[10..20, 0..12], 15), 15);
        assert_eq!(held_prefix(&[], 15), 0);
    }
}
