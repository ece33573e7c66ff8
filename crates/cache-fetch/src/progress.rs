//! Progress as events: the library reports, the CLI draws (the library never prints).

use std::time::Duration;

/// Something that happened to one transfer. `label` is the request's label (usually the
/// file name).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The transfer began; `resumed_from` bytes were already in the sink.
    Started {
        /// Which transfer.
        label: &'a str,
        /// The file's size, when known.
        total: Option<u64>,
        /// Bytes kept from an earlier attempt.
        resumed_from: u64,
    },
    /// The total size became known (from the server) after `Started`.
    Sized {
        /// Which transfer.
        label: &'a str,
        /// The file's size.
        total: u64,
    },
    /// `bytes` more bytes were received and written.
    Advanced {
        /// Which transfer.
        label: &'a str,
        /// New bytes since the last event.
        bytes: u64,
    },
    /// A request failed and will be retried after `delay`.
    Retrying {
        /// Which transfer.
        label: &'a str,
        /// 1 for the first retry.
        attempt: u32,
        /// The wait before the retry.
        delay: Duration,
        /// Why, e.g. `HTTP 503` or `connection reset`.
        reason: &'a str,
    },
    /// Bytes already in the sink were discarded (the server ignored the range, or the
    /// resumed file did not verify) and the transfer starts over from zero.
    Restarted {
        /// Which transfer.
        label: &'a str,
        /// How many bytes were thrown away.
        discarded: u64,
    },
    /// The transfer completed and was hashed; `bytes` is the file's size.
    Finished {
        /// Which transfer.
        label: &'a str,
        /// The file's size.
        bytes: u64,
    },
}

/// Receives [`Event`]s. Called from the downloading task: keep it cheap.
///
/// Closures implement it:
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use cache_fetch::{Event, Progress};
/// let done = AtomicU64::new(0);
/// let progress = |e: &Event<'_>| if let Event::Advanced { bytes, .. } = e { done.fetch_add(*bytes, Ordering::Relaxed); };
/// progress.event(&Event::Advanced { label: "x", bytes: 5 });
/// assert_eq!(done.load(Ordering::Relaxed), 5);
/// ```
pub trait Progress: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: &Event<'_>) {
        self(event);
    }
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &Event<'_>) {}
}
