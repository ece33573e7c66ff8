//! Response bodies: plain ones, and file bodies streamed in chunks with the shaping of a
//! [`BodyPlan`] (per-connection throttle, drop, stall, corruption) and byte counting.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use tokio::time::Instant;

use crate::content::{CHUNK, Content};
use crate::faults::BodyPlan;
use crate::server::Shared;

/// The body type of every response.
pub(crate) type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;

pub(crate) fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// How far behind its schedule a paced connection may catch up, and how early a chunk may
/// go rather than sleeping for less than the timer's resolution.
const SLACK: Duration = Duration::from_millis(2);

/// Per-connection pacing: the instant at which the connection may send its next byte.
#[derive(Debug)]
pub(crate) struct Pacer(Mutex<Instant>);

impl Pacer {
    pub(crate) fn new() -> Self {
        Pacer(Mutex::new(Instant::now()))
    }

    /// Reserves `n` bytes at `bps`; returns when they may be sent. A connection that fell
    /// behind its schedule (a timer fires up to a millisecond late) may catch up on up to
    /// `SLACK` of it, so high rates are reached with a millisecond timer.
    fn reserve(&self, n: usize, bps: u64) -> Instant {
        let mut next = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let start = (*next).max(now.checked_sub(SLACK).unwrap_or(now));
        #[expect(clippy::cast_precision_loss, reason = "pacing needs no exact arithmetic")]
        let cost = Duration::from_secs_f64(n as f64 / bps as f64);
        *next = start + cost;
        start
    }
}

struct FileBody {
    content: Content,
    pos: u64,
    end: u64,
    sent: u64,
    plan: BodyPlan,
    pacer: Arc<Pacer>,
    shared: Arc<Shared>,
    path: String,
}

fn cut(reason: &str) -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, format!("testkit fault: {reason}"))
}

impl FileBody {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, io::Error>> {
        if self.pos >= self.end {
            return None;
        }
        let mut n = (self.end - self.pos).min(CHUNK as u64);
        if let Some(bps) = self.plan.throttle_bps {
            // Smaller chunks at low rates keep the pacing smooth.
            n = n.min((bps / 50).max(1024));
        }
        if let Some(after) = self.plan.drop_after {
            if self.sent >= after {
                // Let hyper flush what was sent (it flushes while the body is pending),
                // so the peer receives exactly `after` bytes before the connection drops.
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.pos = self.end;
                return Some(Err(cut("connection dropped")));
            }
            n = n.min(after - self.sent);
        }
        if let Some((after, pause)) = self.plan.stall {
            if self.sent >= after {
                tokio::time::sleep(pause).await;
                self.pos = self.end;
                return Some(Err(cut("stalled")));
            }
            n = n.min(after - self.sent);
        }
        let len = usize::try_from(n).unwrap_or(CHUNK);
        if let Some(bps) = self.plan.throttle_bps {
            let at = self.pacer.reserve(len, bps);
            if at > Instant::now() + SLACK / 2 {
                tokio::time::sleep_until(at).await;
            }
        }
        let mut chunk = self.content.slice(self.pos, self.pos + n);
        if self.plan.corrupt && self.sent == 0 && !chunk.is_empty() {
            let mut bad = BytesMut::from(&chunk[..]);
            bad[0] ^= 0xff;
            chunk = bad.freeze();
        }
        self.pos += n;
        self.sent += n;
        self.shared.stats().add_bytes(&self.path, n);
        Some(Ok(chunk))
    }
}

/// Streams `content[start..end]` shaped by `plan`, counting bytes under `path`.
pub(crate) fn file_body(
    content: Content,
    range: (u64, u64),
    plan: BodyPlan,
    pacer: Arc<Pacer>,
    shared: Arc<Shared>,
    path: String,
) -> Body {
    let state = FileBody { content, pos: range.0, end: range.1, sent: 0, plan, pacer, shared, path };
    let s = stream::unfold(state, |mut st| async move {
        let item = st.next_chunk().await?;
        Some((item.map(Frame::data), st))
    });
    BodyExt::boxed(StreamBody::new(s))
}
