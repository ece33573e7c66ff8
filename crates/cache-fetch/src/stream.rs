//! One byte range of a transfer: request it, stream the body into the sink at its offset,
//! and on a broken or stalled body resume from the last byte written.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_RANGE;
use reqwest::{Method, Url};

use crate::client::{Headers, Redirects, Req, http_error, transport_error};
use crate::download::Run;
use crate::error::{Error, redact};
use crate::frontier::Frontier;
use crate::progress::Event;
use crate::retry::backoff;

/// Received chunks smaller than this are gathered (copied) into writes of `WRITE_BUF`
/// bytes; larger ones (the usual case on a fast link) are written as they are, without a
/// copy, and handed to the hasher.
const DIRECT_WRITE_MIN: usize = 32 * 1024;
const WRITE_BUF: usize = 256 * 1024;
/// An attempt that delivered at least this much does not count against the retries.
const PROGRESS_RESETS_RETRIES: u64 = 1 << 20;

/// Why a range could not be completed.
pub(crate) enum Fail {
    /// The server does not honour ranges as asked (or the file changed): start over from 0.
    Restart(String),
    /// Give up with this error.
    Error(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Error(e)
    }
}

/// `Content-Range: bytes a-b/total` (total may be `*`), or `bytes */total`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ContentRange {
    pub(crate) range: Option<(u64, u64)>,
    pub(crate) total: Option<u64>,
}

pub(crate) fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = if total.trim() == "*" { None } else { Some(total.trim().parse().ok()?) };
    let range = if range.trim() == "*" {
        None
    } else {
        let (a, b) = range.trim().split_once('-')?;
        let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
        if b < a || total.is_some_and(|t| b >= t) {
            return None;
        }
        Some((a, b + 1))
    };
    Some(ContentRange { range, total })
}

pub(crate) fn content_range(resp: &reqwest::Response) -> Option<ContentRange> {
    resp.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range)
}

/// Counters shared by the concurrent ranges of one transfer.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) received: AtomicU64,
    pub(crate) retries: AtomicU32,
    pub(crate) requests: AtomicU32,
}

/// Where a running stream may be cut: the end it stops at, lowered when the rest of its
/// range is split into parallel ranges, and how far it has consumed its body. The
/// download's task both runs the stream and cuts it, so a cut never falls behind bytes
/// already taken.
pub(crate) struct Reach {
    end: AtomicU64,
    at: AtomicU64,
}

impl Reach {
    pub(crate) fn new(range: &Range<u64>) -> Self {
        Reach { end: AtomicU64::new(range.end), at: AtomicU64::new(range.start) }
    }

    /// Points at a new stream over `range`.
    pub(crate) fn reset(&self, range: &Range<u64>) {
        self.end.store(range.end, Ordering::Relaxed);
        self.at.store(range.start, Ordering::Relaxed);
    }

    /// Lets the stream keep `keep` bytes past what it consumed and returns what it gave
    /// up (empty when it keeps everything left).
    pub(crate) fn cut(&self, keep: u64) -> Range<u64> {
        let end = self.end.load(Ordering::Relaxed);
        let cut = self.at.load(Ordering::Relaxed).saturating_add(keep).min(end);
        self.end.store(cut, Ordering::Relaxed);
        cut..end
    }

    fn end(&self) -> u64 {
        self.end.load(Ordering::Relaxed)
    }
}

/// The end of a stream: its reach's, when it has one (it may be lowered), else `end`.
fn limit(end: Option<u64>, reach: Option<&Reach>) -> Option<u64> {
    reach.map_or(end, |r| Some(r.end()))
}

enum Broken {
    Net(reqwest::Error),
    Disk(Error),
    /// The download's deadline passed.
    Deadline,
}

impl Run<'_> {
    /// Sends a (range) request for the download, following redirects; statuses other than
    /// 200, 206 and 416 become errors.
    pub(crate) async fn open(&self, url: &Url, range: Option<(u64, Option<u64>)>) -> Result<(reqwest::Response, Url), Error> {
        let req = Req {
            method: Method::GET,
            url: url.clone(),
            token_origin: &self.start_url,
            token: self.req.token.as_ref(),
            range,
            redirects: Redirects::All,
            headers: &[],
            timeout: None,
            retry: true,
        };
        let sent = self.before_deadline(self.fetcher.send(&req, &self.req.label, self.progress)).await;
        let (resp, final_url, retries) = sent.ok_or_else(|| self.deadline_error(url, 0))??;
        self.counters.requests.fetch_add(1 + retries, Ordering::Relaxed);
        self.counters.retries.fetch_add(retries, Ordering::Relaxed);
        match resp.status().as_u16() {
            200 | 206 | 416 => Ok((resp, final_url)),
            status => Err(http_error(status, &Headers::from_map(resp.headers()), final_url.as_str())),
        }
    }

    /// Fetches `start..end` (to the end of the body when `end` is `None`) into the sink,
    /// starting with `first` if the caller already holds its response. With a `reach`, its
    /// end replaces `end` and may be lowered while the stream runs.
    pub(crate) async fn fetch_range(
        &self,
        url: &Url,
        start: u64,
        end: Option<u64>,
        mut first: Option<reqwest::Response>,
        frontier: &Frontier,
        reach: Option<&Reach>,
    ) -> Result<(), Fail> {
        let mut pos = start;
        let mut attempt = 0u32;
        let mut buf = BytesMut::with_capacity(WRITE_BUF);
        loop {
            let end = limit(end, reach);
            if end.is_some_and(|e| pos >= e) {
                return Ok(());
            }
            let resp = if let Some(r) = first.take() {
                r
            } else {
                let range = if pos == 0 && end.is_none() { None } else { Some((pos, end)) };
                let (r, _) = self.open(url, range).await?;
                match (r.status().as_u16(), content_range(&r)) {
                    (206, Some(ContentRange { range: Some((a, _)), .. })) if a == pos => {}
                    (200, _) if pos == 0 => {}
                    (status, _) => {
                        return Err(Fail::Restart(format!("asked for bytes from {pos}, got HTTP {status} from another offset")));
                    }
                }
                r
            };
            let before = pos;
            let outcome = self.stream_body(resp, &mut pos, end, &mut buf, frontier, reach).await;
            let end = limit(end, reach);
            let error = match outcome {
                Ok(()) if end.is_none_or(|e| pos >= e) => return Ok(()),
                Ok(()) => None,
                Err(Broken::Disk(e)) => return Err(Fail::Error(e)),
                Err(Broken::Deadline) => return Err(Fail::Error(self.deadline_error(url, pos))),
                Err(Broken::Net(e)) => Some(e),
            };
            if pos - before >= PROGRESS_RESETS_RETRIES {
                attempt = 0;
            }
            if attempt >= self.fetcher.config.retries {
                return Err(Fail::Error(match error {
                    Some(e) => transport_error(e, url, attempt, pos),
                    None => Error::Interrupted {
                        url: redact(url.as_str()),
                        received: pos,
                        retries: attempt,
                        source: "the body ended early".into(),
                    },
                }));
            }
            attempt += 1;
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let reason = error.map_or_else(|| "the body ended early".to_owned(), |e| body_error_reason(&e));
            let delay = backoff(&self.fetcher.config, attempt, None);
            tracing::warn!(url = %redact(url.as_str()), at = pos, attempt, %reason, "transfer interrupted, resuming");
            self.progress.event(&Event::Retrying { label: &self.req.label, attempt, delay, reason: &reason });
            tokio::time::sleep(delay).await;
        }
    }

    async fn stream_body(
        &self,
        mut resp: reqwest::Response,
        pos: &mut u64,
        end: Option<u64>,
        buf: &mut BytesMut,
        frontier: &Frontier,
        reach: Option<&Reach>,
    ) -> Result<(), Broken> {
        loop {
            let Some(next) = self.before_deadline(resp.chunk()).await else {
                self.flush(pos, buf, frontier, end)?;
                return Err(Broken::Deadline);
            };
            let chunk = match next {
                Ok(Some(c)) => c,
                Ok(None) => return self.flush(pos, buf, frontier, end),
                Err(e) => {
                    self.flush(pos, buf, frontier, end)?;
                    return Err(Broken::Net(e));
                }
            };
            self.counters.received.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            // Read after the wait: the stream may have been cut meanwhile.
            let end = limit(end, reach);
            let room = end.map_or(u64::MAX, |e| e.saturating_sub(*pos + buf.len() as u64));
            let take = usize::try_from(room).map_or(chunk.len(), |r| r.min(chunk.len()));
            if take >= DIRECT_WRITE_MIN {
                self.flush(pos, buf, frontier, end)?;
                self.write(pos, chunk.slice(..take), frontier, end)?;
            } else {
                buf.extend_from_slice(&chunk[..take]);
                if buf.len() >= WRITE_BUF || take < chunk.len() {
                    self.flush(pos, buf, frontier, end)?;
                }
            }
            if end.is_some_and(|e| *pos >= e) {
                return self.flush(pos, buf, frontier, end);
            }
            if let Some(r) = reach {
                r.at.store(*pos + buf.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Writes the gathered small chunks.
    fn flush(&self, pos: &mut u64, buf: &mut BytesMut, frontier: &Frontier, end: Option<u64>) -> Result<(), Broken> {
        if buf.is_empty() {
            return Ok(());
        }
        // `split` hands the bytes over without a copy; the buffer is reused once the
        // hasher has dropped them.
        let data = buf.split().freeze();
        buf.reserve(WRITE_BUF);
        self.write(pos, data, frontier, end)
    }

    /// Writes `data` at `pos`, reports it to the hasher and to progress, and advances `pos`.
    fn write(&self, pos: &mut u64, data: Bytes, frontier: &Frontier, end: Option<u64>) -> Result<(), Broken> {
        if let Err(e) = self.sink.write_at(*pos, &data) {
            let total = end.or(self.req.expected_size).unwrap_or(*pos + data.len() as u64);
            return Err(Broken::Disk(disk_error(e, total.saturating_sub(*pos), self.sink.available_space())));
        }
        let n = data.len() as u64;
        frontier.written(*pos, data, self.fetcher.config.checkpoint_interval);
        *pos += n;
        self.progress.event(&Event::Advanced { label: &self.req.label, bytes: n });
        Ok(())
    }
}

fn disk_error(e: io::Error, needed: u64, available: Option<u64>) -> Error {
    if e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
        Error::DiskFull { needed, available, source: e }
    } else {
        Error::io("write", e)
    }
}

fn body_error_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() { "read timed out".to_owned() } else { "connection broke mid-body".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_parse_strictly() {
        let cr = |a, b, t| Some(ContentRange { range: Some((a, b)), total: t });
        assert_eq!(parse_content_range("bytes 0-99/1000"), cr(0, 100, Some(1000)));
        assert_eq!(parse_content_range("bytes 10-10/*"), cr(10, 11, None));
        assert_eq!(parse_content_range("bytes */1000"), Some(ContentRange { range: None, total: Some(1000) }));
        for bad in ["bytes 5-4/10", "bytes 0-10/10", "items 0-1/2", "bytes 0-1", "bytes a-b/3", ""] {
            assert_eq!(parse_content_range(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_full_disk_is_reported_as_such() {
        let e = disk_error(io::Error::from_raw_os_error(28), 100, None);
        assert!(matches!(e, Error::DiskFull { needed: 100, .. }));
        assert!(matches!(disk_error(io::ErrorKind::PermissionDenied.into(), 1, None), Error::Io { .. }));
    }
}
