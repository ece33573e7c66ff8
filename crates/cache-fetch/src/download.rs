//! `Fetcher::download`: one file into a sink — resume from what the sink holds, one
//! stream or parallel ranges, hashing on the side, restart from zero when the server will
//! not resume, and a final check against the expected etag.
//!
//! # Resume
//! The sink names the ranges it holds ([`Sink::completed_ranges`], from its progress
//! record) or, without a record, holds `N` bytes from 0. Only the gaps are fetched: a
//! single gap to the end as `Range: bytes=N-`, several (or a parallel transfer) as
//! bounded ranges. A `206` whose `Content-Range` starts where asked continues it; a `200`
//! means the server ignored the range, so the sink is cleared and that very response is
//! used from byte 0; a mismatched range starts over. Kept bytes are re-hashed from disk
//! when the in-order hasher reaches them, so a resumed file's digests are those of an
//! uninterrupted download. If a resumed file fails its etag check, what was kept may be
//! stale (or a record wrong): the transfer starts over once from zero before reporting a
//! mismatch. A transfer that fails in the process records what it wrote, or truncates
//! the sink to its contiguous prefix (see `checkpoint`).
//!
//! # Parallel ranges
//! Chosen from measured throughput, not from the size alone. When the expected size is
//! known and more than `parallel_threshold` bytes are missing, the first request asks for
//! the first gap, open-ended when it runs to the end (`bytes=N-`, even from 0: a `206`
//! proves range support). Its answer resolves the redirect (the CDN URL is then used for
//! every range, without the token unless it is the same origin). The stream is measured
//! for `probe_window`:
//! - **Fast** (at least `parallel_below_rate`): it goes on alone to the end. One stream
//!   costs the least CPU: every chunk is hashed from memory as it arrives, with no range
//!   bookkeeping, no reading back, one connection. On such a link a second connection
//!   would only compete with the hasher for the cores.
//! - **Slow** (a per-connection cap, a long fat link): the stream keeps one more
//!   `chunk_size` past what it consumed, and the rest — of its range and of any other gap
//!   of a resumed file — is cut into `chunk_size` ranges; up to `parallelism` run
//!   concurrently, each written at its offset. The first stream's connection is dropped
//!   at its cut, wasting what was in flight on it (little: the link is slow).
//!
//! `probe_window = 0` splits from the start (the first request then asks for one range),
//! `parallel_below_rate = 0` never splits. A server that answers `200` falls back to one
//! stream. Whatever runs, a sink with a progress record gets a checkpoint every
//! `checkpoint_interval` bytes, so a kill before, during or after the split resumes from
//! the written ranges.
//!
//! # Timeouts
//! `read_timeout` abandons (and retries) a request that sends nothing for that long;
//! `download_timeout`, when set, bounds the whole call — every request, retry, backoff
//! and restart — and ends it with [`Error::DownloadTimeout`] through the same path as any
//! other error, so what was written stays resumable.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cache_core::{DigestKinds, Digests, Etag};
use futures_util::future::{self, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Url;
use reqwest::header::CONTENT_LENGTH;

use crate::checkpoint::{self, CheckpointJob};
use crate::client::{Fetcher, Token, parse_url};
use crate::error::{Error, redact};
use crate::frontier::Frontier;
use crate::hasher::{HashJob, follow, hash_all};
use crate::progress::{Event, Progress};
use crate::ranges;
use crate::sink::Sink;
use crate::stream::{ContentRange, Counters, Fail, Reach, content_range};

/// Files at most this large are hashed after the transfer instead of by a thread.
const HASH_INLINE_MAX: u64 = 4 << 20;

/// Files at most this large are hashed on the transfer's own task (~0.1 ms of work),
/// sparing a trip through the blocking pool per small file.
const HASH_ON_TASK_MAX: u64 = 128 << 10;

/// The smallest range a split transfer requests.
const MIN_CHUNK: u64 = 64 * 1024;

/// What to download and how to check it.
#[derive(Clone, Debug)]
pub struct DownloadRequest {
    /// The URL (for Hub files: the `resolve/` URL; its redirect is followed).
    pub url: String,
    /// Sent to the URL's origin only.
    pub token: Option<Token>,
    /// The size the resolver announced (`X-Linked-Size`); enables parallel ranges and is
    /// checked at the end.
    pub expected_size: Option<u64>,
    /// When set, the digests must match it (else [`Error::ChecksumMismatch`]).
    pub expected_etag: Option<Etag>,
    /// Digests to compute (the etag's are always added, and blake3 when no etag is
    /// checked: it is then the only record of the content; with an etag, the store
    /// records a blake3 at the first `verify`, off the transfer's critical path).
    pub digests: DigestKinds,
    /// Name used in progress events (default: the URL's last path segment).
    pub label: String,
}

impl DownloadRequest {
    /// A request for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let label = redact(&url).rsplit('/').next().unwrap_or_default().to_owned();
        DownloadRequest { url, token: None, expected_size: None, expected_etag: None, digests: DigestKinds::default(), label }
    }

    /// Sets the bearer token.
    #[must_use]
    pub fn token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self
    }

    /// Sets the expected size.
    #[must_use]
    pub fn expected_size(mut self, size: u64) -> Self {
        self.expected_size = Some(size);
        self
    }

    /// Sets the expected etag (its digest is computed and checked).
    #[must_use]
    pub fn expected_etag(mut self, etag: Etag) -> Self {
        self.expected_etag = Some(etag);
        self
    }

    /// Asks for more digests.
    #[must_use]
    pub fn digests(mut self, kinds: DigestKinds) -> Self {
        self.digests = kinds;
        self
    }

    /// Sets the progress label.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    fn kinds(&self) -> DigestKinds {
        let etag = self.expected_etag.map(|e| e.required()).unwrap_or_default();
        DigestKinds {
            sha256: self.digests.sha256 || etag.sha256,
            git_sha1: self.digests.git_sha1 || etag.git_sha1,
            blake3: self.digests.blake3 || self.expected_etag.is_none(),
        }
    }
}

/// What a download did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transfer {
    /// Digests of the whole file (size included): hand them to the store.
    pub digests: Digests,
    /// Bytes that were already in the sink and kept.
    pub resumed_from: u64,
    /// Body bytes received over the network (including any later discarded).
    pub bytes_received: u64,
    /// Bytes thrown away because the transfer had to start over.
    pub bytes_discarded: u64,
    /// Retries (of requests and of broken bodies).
    pub retries: u32,
    /// HTTP requests sent, retries and redirects' first hops included.
    pub requests: u32,
    /// Whether parallel ranges were used.
    pub parallel: bool,
    /// The URL that served the bytes (query removed).
    pub url: String,
}

/// State of one download, shared by its concurrent ranges.
pub(crate) struct Run<'a> {
    pub(crate) fetcher: &'a Fetcher,
    pub(crate) req: &'a DownloadRequest,
    pub(crate) sink: &'a Arc<dyn Sink>,
    pub(crate) progress: &'a dyn Progress,
    pub(crate) start_url: Url,
    pub(crate) counters: Counters,
    /// When the whole download must have finished ([`FetchConfig::download_timeout`]).
    ///
    /// [`FetchConfig::download_timeout`]: crate::FetchConfig::download_timeout
    pub(crate) deadline: Option<tokio::time::Instant>,
}

struct Outcome {
    digests: Digests,
    /// Bytes of the sink kept from before this download.
    kept: u64,
    parallel: bool,
    url: Url,
}

impl Fetcher {
    /// Downloads `request.url` into `sink`, fetching only what it does not hold yet (see
    /// [`Sink::completed_ranges`]), and returns the digests of the whole file. Memory stays
    /// bounded (a few MiB) whatever the size. On error the sink keeps every byte safely
    /// written (recorded, or within its contiguous prefix), so a later call resumes.
    pub async fn download(
        &self,
        request: &DownloadRequest,
        sink: Arc<dyn Sink>,
        progress: &dyn Progress,
    ) -> Result<Transfer, Error> {
        let run = Run {
            fetcher: self,
            req: request,
            sink: &sink,
            progress,
            start_url: parse_url(&request.url)?,
            counters: Counters::default(),
            deadline: self.config.download_timeout.map(|d| tokio::time::Instant::now() + d),
        };
        let label = request.label.as_str();
        let mut discarded = 0;
        let mut have = run.initial_ranges(&mut discarded)?;
        let resumed_from = ranges::covered(&have);
        progress.event(&Event::Started { label, total: request.expected_size, resumed_from });
        let mut restarts = 0;
        let mut mismatch_retried = false;
        let outcome = loop {
            let result = run.attempt(&have, &mut discarded).await;
            let reason = match result {
                Ok(o) => match request.expected_etag.map(|e| e.verify(&o.digests)) {
                    // A body corrupted in transit (or a resumed file whose old part was
                    // wrong) gets one more download from zero; a second mismatch is final.
                    Some(Err(m)) if !mismatch_retried => {
                        mismatch_retried = true;
                        if have.is_empty() {
                            format!("the download does not match its etag ({m})")
                        } else {
                            format!("the resumed file does not match its etag ({m})")
                        }
                    }
                    Some(Err(m)) => {
                        return Err(Error::ChecksumMismatch {
                            url: redact(o.url.as_str()),
                            expected: m.expected,
                            actual: m.actual,
                        });
                    }
                    _ => break o,
                },
                Err(Fail::Restart(reason)) if restarts < 2 => reason,
                Err(Fail::Restart(reason)) => return Err(Error::Protocol { url: redact(&request.url), reason }),
                Err(Fail::Error(e)) => return Err(e),
            };
            tracing::warn!(url = %redact(&request.url), %reason, "restarting the transfer from zero");
            restarts += 1;
            discarded += run.discard(sink.size().map_err(|e| Error::io("read the size of", e))?)?;
            have = Vec::new();
        };
        if let Some(expected) = request.expected_size.filter(|&s| s != outcome.digests.size) {
            return Err(Error::SizeMismatch { url: redact(outcome.url.as_str()), expected, actual: outcome.digests.size });
        }
        progress.event(&Event::Finished { label, bytes: outcome.digests.size });
        let c = &run.counters;
        Ok(Transfer {
            digests: outcome.digests,
            resumed_from: outcome.kept,
            bytes_received: c.received.load(Ordering::Relaxed),
            bytes_discarded: discarded,
            retries: c.retries.load(Ordering::Relaxed),
            requests: c.requests.load(Ordering::Relaxed),
            parallel: outcome.parallel,
            url: redact(outcome.url.as_str()),
        })
    }
}

impl Run<'_> {
    /// `fut`'s output, or `None` when the download's deadline passes first.
    pub(crate) async fn before_deadline<T>(&self, fut: impl Future<Output = T>) -> Option<T> {
        match self.deadline {
            Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
            None => Some(fut.await),
        }
    }

    /// The error of a download that ran out of time with `received` bytes written.
    pub(crate) fn deadline_error(&self, url: &Url, received: u64) -> Error {
        Error::DownloadTimeout {
            url: redact(url.as_str()),
            limit: self.fetcher.config.download_timeout.unwrap_or_default(),
            received,
        }
    }

    /// What the sink holds when the download starts: its recorded ranges, else its
    /// length from 0. A sink longer than the expected size is cleared.
    fn initial_ranges(&self, discarded: &mut u64) -> Result<Vec<Range<u64>>, Error> {
        let len = self.sink.size().map_err(|e| Error::io("read the size of", e))?;
        if self.req.expected_size.is_some_and(|s| len > s) {
            *discarded += self.discard(len)?;
            return Ok(Vec::new());
        }
        let held = match self.sink.completed_ranges() {
            Ok(Some(recorded)) => recorded,
            Ok(None) => std::iter::once(0..len).collect(),
            Err(e) => {
                tracing::warn!("cannot read the download progress record ({e}); assuming nothing is complete");
                Vec::new()
            }
        };
        Ok(ranges::normalize(held, len))
    }

    /// Clears the sink's record and truncates it to zero; returns `bytes` (what was
    /// dropped) for the counters.
    fn discard(&self, bytes: u64) -> Result<u64, Error> {
        checkpoint::clear(&**self.sink);
        self.sink.set_len(0).map_err(|e| Error::io("truncate", e))?;
        if bytes > 0 {
            self.progress.event(&Event::Restarted { label: &self.req.label, discarded: bytes });
        }
        Ok(bytes)
    }

    async fn hash_whole(&self, len: u64) -> Result<Digests, Error> {
        let (sink, kinds) = (Arc::clone(self.sink), self.req.kinds());
        tokio::task::spawn_blocking(move || hash_all(&*sink, kinds, len))
            .await
            .unwrap_or_else(|e| Err(Error::io("hash", std::io::Error::other(e.to_string()))))
    }

    /// Hashes a small transfer after the fact, mostly from the chunks its frontier kept:
    /// on this task when it takes well under a millisecond, else on the blocking pool.
    async fn hash_written(&self, frontier: Arc<Frontier>) -> Option<Result<Digests, Error>> {
        let (sink, kinds, len) = (Arc::clone(self.sink), self.req.kinds(), frontier.contiguous());
        if len <= HASH_ON_TASK_MAX {
            return follow(&*sink, kinds, len, &frontier);
        }
        tokio::task::spawn_blocking(move || follow(&*sink, kinds, len, &frontier))
            .await
            .unwrap_or_else(|e| Some(Err(Error::io("hash", std::io::Error::other(e.to_string())))))
    }

    /// One pass: fetch what `have` misses, up to the end of the file.
    async fn attempt(&self, have: &[Range<u64>], discarded: &mut u64) -> Result<Outcome, Fail> {
        let cfg = &self.fetcher.config;
        let size = self.req.expected_size;
        // Without a known size only a prefix can be resumed (with an open-ended range).
        let mut have: Vec<Range<u64>> =
            if size.is_some() { have.to_vec() } else { have.iter().take(1).filter(|r| r.start == 0).cloned().collect() };
        let mut kept = ranges::covered(&have);
        if kept > 0 && size == Some(kept) {
            let digests = self.hash_whole(kept).await?;
            return Ok(Outcome { digests, kept, parallel: false, url: self.start_url.clone() });
        }
        // A large transfer starts as one stream and may be split once it was measured
        // (without a window: split from the start).
        let may_split = cfg.parallelism > 1 && size.is_some_and(|s| s - kept > cfg.parallel_threshold);
        let split_at_once = may_split && cfg.probe_window.is_zero();
        let pieces = size.map(|s| {
            let gaps = ranges::gaps(&have, s);
            if split_at_once { ranges::split(&gaps, cfg.chunk_size.max(MIN_CHUNK)) } else { gaps }
        });
        let prefix = ranges::prefix(&have);
        // The first request resolves the redirect and, answered `206`, proves range support
        // (hence `bytes=0-` when a split may follow).
        let (start, first_range) = match pieces.as_deref() {
            Some([only]) if !split_at_once && Some(only.end) == size => {
                (only.start, (only.start > 0 || may_split).then_some((only.start, None)))
            }
            Some([first, ..]) => (first.start, Some((first.start, Some(first.end)))),
            _ => (prefix, (prefix > 0).then_some((prefix, None))),
        };
        let (resp, url) = self.open(&self.start_url, first_range).await?;
        let header_len = resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let (total, ranged) = match (resp.status().as_u16(), content_range(&resp)) {
            (206, Some(ContentRange { range: Some((a, _)), total })) if a == start => (total.or(size), true),
            (206, _) => return Err(Fail::Restart("the server answered another range than asked".into())),
            (200, _) => {
                if kept > 0 {
                    tracing::info!(url = %redact(url.as_str()), "the server ignored the range: starting over from zero");
                    *discarded += self.discard(kept)?;
                    have.clear();
                    kept = 0;
                }
                (header_len.or(size), false)
            }
            (_, Some(ContentRange { range: None, total: Some(t) })) if t == prefix && kept == prefix && prefix > 0 => {
                let digests = self.hash_whole(prefix).await?;
                return Ok(Outcome { digests, kept: prefix, parallel: false, url });
            }
            (status, _) => return Err(Fail::Restart(format!("HTTP {status} to a range request"))),
        };
        if let (Some(s), Some(t)) = (size, total)
            && s != t
        {
            return Err(Fail::Error(Error::SizeMismatch { url: redact(url.as_str()), expected: s, actual: t }));
        }
        if size.is_none()
            && let Some(t) = total
        {
            self.progress.event(&Event::Sized { label: &self.req.label, total: t });
        }

        let frontier = Frontier::with_ranges(&have);
        // A download future dropped mid-transfer (a timeout, a cancelled task) must not
        // leave the hashing and checkpoint threads waiting for bytes that never come.
        let _release = AbortOnDrop(Arc::clone(&frontier));
        let job = match total {
            Some(t) if t > HASH_INLINE_MAX => {
                Some(HashJob::spawn(Arc::clone(self.sink), self.req.kinds(), t, Arc::clone(&frontier))?)
            }
            _ => None,
        };
        let to_fetch = total.map_or(u64::MAX, |t| t.saturating_sub(kept));
        let checkpoints = if self.sink.records_progress() && to_fetch > cfg.checkpoint_interval {
            CheckpointJob::spawn(Arc::clone(self.sink), Arc::clone(&frontier), cfg.checkpoint_interval)
        } else {
            None
        };
        let result = match (ranged, pieces) {
            (true, Some(pieces)) => self.pieces(&url, pieces, resp, &frontier, may_split.then_some(split_at_once)).await,
            (true, None) => self.fetch_range(&url, start, total, Some(resp), &frontier, None).await.map(|()| false),
            (false, _) => self.fetch_range(&url, 0, total, Some(resp), &frontier, None).await.map(|()| false),
        };
        let parallel = match result {
            Ok(split) => split,
            Err(e) => {
                frontier.abort();
                if let Some(job) = job {
                    job.finish().await;
                }
                if let Some(c) = checkpoints {
                    c.finish().await;
                }
                if matches!(e, Fail::Error(_)) {
                    checkpoint::settle(self.sink, &frontier).await;
                }
                return Err(e);
            }
        };
        frontier.close();
        if let Some(c) = checkpoints {
            c.finish().await;
        }
        let digests = match job {
            Some(job) => job.finish().await,
            None => self.hash_written(frontier).await,
        }
        .unwrap_or_else(|| Err(Error::io("hash", std::io::Error::other("aborted"))))?;
        Ok(Outcome { digests, kept, parallel, url })
    }

    /// Fetches the `gaps` in order, one stream at a time, the first from `first`; returns
    /// whether the transfer was split into parallel ranges.
    ///
    /// With `split` set to `Some(false)`, the stream is measured for `probe_window`: if it
    /// received less than `parallel_below_rate` bytes a second, it keeps one more
    /// `chunk_size` and what is left (of its range and of the other gaps) is cut into
    /// `chunk_size` ranges fetched `parallelism` at a time. A fast stream goes on alone.
    /// `Some(true)`: the gaps are already cut into ranges and run `parallelism` at a time.
    async fn pieces(
        &self,
        url: &Url,
        gaps: Vec<Range<u64>>,
        first: reqwest::Response,
        frontier: &Frontier,
        split: Option<bool>,
    ) -> Result<bool, Fail> {
        let cfg = &self.fetcher.config;
        let mut queue: VecDeque<Range<u64>> = gaps.into();
        let Some(head) = queue.pop_front() else { return Ok(false) };
        let reach = Reach::new(&head);
        let started = tokio::time::Instant::now();
        let received_before = self.counters.received.load(Ordering::Relaxed);
        let may_split = split == Some(false);
        let mut probing = may_split;
        let mut split = split == Some(true);
        let mut running = FuturesUnordered::new();
        let probe = |range: &Range<u64>| may_split.then_some(&reach).inspect(|r| r.reset(range));
        running.push(self.fetch_range(url, head.start, Some(head.end), Some(first), frontier, probe(&head)));
        loop {
            let concurrency = if split { cfg.parallelism } else { 1 };
            while running.len() < concurrency
                && let Some(p) = queue.pop_front()
            {
                let reach = if probing { probe(&p) } else { None };
                running.push(self.fetch_range(url, p.start, Some(p.end), None, frontier, reach));
            }
            let next = if probing {
                let window = std::pin::pin!(tokio::time::sleep_until(started + cfg.probe_window));
                match future::select(running.next(), window).await {
                    Either::Left((next, _)) => Some(next),
                    Either::Right(_) => None,
                }
            } else {
                Some(running.next().await)
            };
            let Some(next) = next else {
                // The window is over: split a slow stream, leave a fast one alone.
                probing = false;
                let received = self.counters.received.load(Ordering::Relaxed) - received_before;
                let elapsed = started.elapsed();
                split = u128::from(received) * 1_000_000 < u128::from(cfg.parallel_below_rate) * elapsed.as_micros();
                let chunk = cfg.chunk_size.max(MIN_CHUNK);
                tracing::debug!(received, ?elapsed, split, "measured the first stream");
                if split {
                    let rest: Vec<Range<u64>> = std::iter::once(reach.cut(chunk)).chain(queue.drain(..)).collect();
                    queue = ranges::split(&rest, chunk).into();
                }
                continue;
            };
            match next {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(split),
            }
        }
    }
}

/// Aborts the frontier when dropped: its threads (hasher, checkpoints) then end. After a
/// transfer that finished, they have already returned and the abort changes nothing.
struct AbortOnDrop(Arc<Frontier>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
