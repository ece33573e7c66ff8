//! `Fetcher::download`: one file into a sink — resume from what the sink holds, one
//! stream or parallel ranges, hashing on the side, restart from zero when the server will
//! not resume, and a final check against the expected etag.
//!
//! # Resume
//! A sink holding `N` bytes is resumed with `Range: bytes=N-`. A `206` whose
//! `Content-Range` starts at `N` continues it; a `200` means the server ignored the range,
//! so the sink is truncated and that very response is used from byte 0; a mismatched range
//! starts over. The existing prefix is re-hashed from disk, so a resumed file's digests are
//! those of an uninterrupted download. If a resumed file fails its etag check, the prefix
//! may be stale: the transfer starts over once from zero before reporting a mismatch.
//!
//! # Parallel ranges
//! When the expected size is known and more than `parallel_threshold` bytes are missing,
//! the first request asks for one `chunk_size` range. Its answer resolves the redirect
//! (the CDN URL is then used for every range, without the token unless it is the same
//! origin) and proves range support; up to `parallelism` ranges then run concurrently,
//! each written at its offset. A server that answers `200` falls back to one stream.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cache_core::{DigestKinds, Digests, Etag};
use futures_util::stream::{FuturesUnordered, StreamExt};
use reqwest::Url;
use reqwest::header::CONTENT_LENGTH;

use crate::client::{Fetcher, Token, parse_url};
use crate::error::{Error, redact};
use crate::hasher::{Frontier, HashJob, follow, hash_all};
use crate::progress::{Event, Progress};
use crate::sink::Sink;
use crate::stream::{ContentRange, Counters, Fail, content_range};

/// Files at most this large are hashed after the transfer instead of by a thread.
const HASH_INLINE_MAX: u64 = 4 << 20;

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
    /// Digests to compute (the etag's and blake3 are always added).
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
        DigestKinds { sha256: self.digests.sha256 || etag.sha256, git_sha1: self.digests.git_sha1 || etag.git_sha1, blake3: true }
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
}

struct Outcome {
    digests: Digests,
    /// Bytes of the sink kept from before this download.
    kept: u64,
    parallel: bool,
    url: Url,
}

impl Fetcher {
    /// Downloads `request.url` into `sink`, resuming from the bytes it already holds, and
    /// returns the digests of the whole file. Memory stays bounded (a few MiB) whatever the
    /// size. On error the sink keeps every byte safely written, so a later call resumes.
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
        };
        let label = request.label.as_str();
        let mut existing = sink.size().map_err(|e| Error::io("read the size of", e))?;
        let mut discarded = 0;
        if request.expected_size.is_some_and(|s| existing > s) {
            discarded += run.discard(existing)?;
            existing = 0;
        }
        let resumed_from = existing;
        progress.event(&Event::Started { label, total: request.expected_size, resumed_from });
        let mut restarts = 0;
        let outcome = loop {
            let result = run.attempt(existing, &mut discarded).await;
            let reason = match result {
                Ok(o) => match request.expected_etag.map(|e| e.verify(&o.digests)) {
                    Some(Err(m)) if existing > 0 && restarts == 0 => format!("the resumed file does not match its etag ({m})"),
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
            existing = 0;
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
    /// Truncates the sink to zero; returns how many bytes were dropped.
    fn discard(&self, bytes: u64) -> Result<u64, Error> {
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

    /// Hashes a small transfer after the fact, mostly from the chunks its frontier kept.
    async fn hash_written(&self, frontier: Arc<Frontier>) -> Option<Result<Digests, Error>> {
        let (sink, kinds, len) = (Arc::clone(self.sink), self.req.kinds(), frontier.contiguous());
        tokio::task::spawn_blocking(move || follow(&*sink, kinds, len, &frontier))
            .await
            .unwrap_or_else(|e| Some(Err(Error::io("hash", std::io::Error::other(e.to_string())))))
    }

    /// One pass: from `existing` bytes to the end of the file.
    async fn attempt(&self, mut existing: u64, discarded: &mut u64) -> Result<Outcome, Fail> {
        let cfg = &self.fetcher.config;
        let size = self.req.expected_size;
        if existing > 0 && size == Some(existing) {
            let digests = self.hash_whole(existing).await?;
            return Ok(Outcome { digests, kept: existing, parallel: false, url: self.start_url.clone() });
        }
        let chunk = cfg.chunk_size.max(64 * 1024);
        let wants_parallel = cfg.parallelism > 1 && size.is_some_and(|s| s - existing > cfg.parallel_threshold);
        let first_range =
            if wants_parallel { Some((existing, Some(existing + chunk))) } else { (existing > 0).then_some((existing, None)) };
        let (resp, url) = self.open(&self.start_url, first_range).await?;
        let header_len = resp.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let (total, ranged) = match (resp.status().as_u16(), content_range(&resp)) {
            (206, Some(ContentRange { range: Some((a, _)), total })) if a == existing => (total.or(size), true),
            (206, _) => return Err(Fail::Restart("the server answered another range than asked".into())),
            (200, _) => {
                if existing > 0 {
                    tracing::info!(url = %redact(url.as_str()), "the server ignored the range: starting over from zero");
                    *discarded += self.discard(existing)?;
                    existing = 0;
                }
                (header_len.or(size), false)
            }
            (_, Some(ContentRange { range: None, total: Some(t) })) if t == existing && existing > 0 => {
                let digests = self.hash_whole(existing).await?;
                return Ok(Outcome { digests, kept: existing, parallel: false, url });
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

        let frontier = Frontier::new(existing);
        let job = match total {
            Some(t) if t > HASH_INLINE_MAX => {
                Some(HashJob::spawn(Arc::clone(self.sink), self.req.kinds(), t, Arc::clone(&frontier))?)
            }
            _ => None,
        };
        let parallel = ranged && wants_parallel && total.is_some();
        let result = if parallel {
            let total = total.unwrap_or_default();
            self.parallel(&url, existing, total, chunk, resp, &frontier).await
        } else {
            let end = total.filter(|_| ranged || existing == 0);
            self.fetch_range(&url, existing, end, Some(resp), &frontier).await
        };
        if let Err(e) = result {
            frontier.abort();
            if let Some(job) = job {
                job.finish().await;
            }
            return Err(e);
        }
        frontier.close();
        let digests = match job {
            Some(job) => job.finish().await,
            None => self.hash_written(frontier).await,
        }
        .unwrap_or_else(|| Err(Error::io("hash", std::io::Error::other("aborted"))))?;
        Ok(Outcome { digests, kept: existing, parallel, url })
    }

    async fn parallel(
        &self,
        url: &Url,
        start: u64,
        total: u64,
        chunk: u64,
        first: reqwest::Response,
        frontier: &Frontier,
    ) -> Result<(), Fail> {
        let first_end = (start + chunk).min(total);
        let mut next = first_end;
        let mut running = FuturesUnordered::new();
        running.push(self.fetch_range(url, start, Some(first_end), Some(first), frontier));
        loop {
            while running.len() < self.fetcher.config.parallelism && next < total {
                let end = (next + chunk).min(total);
                running.push(self.fetch_range(url, next, Some(end), None, frontier));
                next = end;
            }
            match running.next().await {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    }
}
