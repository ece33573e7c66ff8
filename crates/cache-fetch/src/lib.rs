//! Resumable, verified, fault-tolerant HTTP transfers into a staging file.
//!
//! Streams a body into a sink it is given while hashing it (sha256 or git-sha1 to check
//! against the etag; blake3 only when there is no etag, so a checked transfer costs one
//! digest), resumes with `Range` requests,
//! retries with backoff, splits large files into parallel ranges when one connection
//! proves slow (measured, see `download`) and reports progress as events. It never touches the cache layout: the store hands it a staging file.
//!
//! # Layering
//! Depends on `cache-core`, tokio and reqwest (rustls with ring). Never on `cache-store`.
//! Its types are its own: callers (the Hub resolver) never see reqwest.
//!
//! # Invariants
//! - Memory per download is bounded (the receive buffers of `parallelism` connections, up
//!   to 16 MiB of written chunks kept for the hasher and a 1 MiB read-back block),
//!   whatever the file size. A progress record holds a few ranges per running request.
//! - Every byte of the result is hashed exactly once, off the receiving path; a resumed
//!   file's digests equal an uninterrupted download's.
//! - Nothing is ever assumed complete that was not written: a sink's record only names
//!   written bytes (checkpoints are taken after the writes), a failed parallel transfer
//!   is recorded or cut to its contiguous prefix, and the final etag check decides.
//! - `Authorization` is only ever sent to the origin of the URL the caller gave.
//! - 400, 401, 403, 404 and 416 are never retried; connection errors, timeouts, 408, 429
//!   and 5xx are, with exponential backoff, full jitter and `Retry-After`.
//!   Every retry of a download is an [`Event::Retrying`]; a small request's too when its
//!   [`RequestOptions::report`] names a receiver (someone is waiting for it).
//! - The library never prints: progress is [`Event`]s, diagnostics are `tracing` events.
//! - URLs in errors and logs are shown without user info, query or fragment
//!   ([`cache_core::redact_url`]): a password or a signed query is never printed.
//!
//! # Resume
//! A download fetches only what the sink does not hold: the ranges its progress record
//! names ([`Sink::completed_ranges`]) or, for a plain file, everything past its length.
//! Sinks that keep a record get a checkpoint of the written ranges every
//! [`FetchConfig::checkpoint_interval`] bytes from a background thread, so a kill loses
//! about one interval whatever the parallelism.
//!
//! # Digest mismatches
//! A file that fails its etag check (a body corrupted in transit, or a resumed file whose
//! old part was wrong) is discarded and downloaded again from zero, once, in the same call;
//! a second mismatch is [`Error::ChecksumMismatch`] (the caller discards the sink).
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use cache_fetch::{DownloadRequest, FetchConfig, Fetcher, NoProgress, RequestOptions, Token};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let fetcher = Fetcher::new(FetchConfig::default())?;
//! let url = "https://huggingface.co/org/model/resolve/main/model.safetensors";
//! let token = Some(Token::new("hf_xxx"));
//! // Metadata: the Hub's 302 is returned, not followed.
//! let options = RequestOptions { token: token.clone(), ..RequestOptions::default() };
//! let head = fetcher.head(url, &options).await?.error_for_status()?;
//! let etag = cache_core::Etag::from_header(head.header("x-linked-etag").unwrap_or(""))?;
//! let size: u64 = head.header("x-linked-size").unwrap_or("0").parse()?;
//! // Download into the staging file, resuming whatever it already holds.
//! let file = std::fs::OpenOptions::new().create(true).read(true).write(true).open("blob.incomplete")?;
//! let request = DownloadRequest::new(url).token(token).expected_size(size).expected_etag(etag);
//! let transfer = fetcher.download(&request, Arc::new(file), &NoProgress).await?;
//! println!("{:?} ({} bytes resumed)", transfer.digests.sha256, transfer.resumed_from);
//! # Ok(()) }
//! ```

// Positional file I/O exists for Unix and Windows (`FileExt`); nothing else is supported.
#[cfg(not(any(unix, windows)))]
compile_error!("cache-fetch supports Unix and Windows only: it needs positional file I/O");

mod checkpoint;
mod client;
mod config;
mod download;
mod error;
mod frontier;
mod hasher;
mod progress;
mod ranges;
mod retry;
mod sink;
mod stream;

pub use client::{Fetcher, Headers, Redirects, RequestOptions, Response, RetryReport, Token};
pub use config::FetchConfig;
pub use download::{DownloadRequest, Transfer};
pub use error::Error;
pub use progress::{Event, NoProgress, Progress};
pub use sink::Sink;
