//! Progress as events: the library reports, front ends draw (the library never prints).
//! The same trait exists with and without the `downloads` feature.

use std::path::Path;
use std::time::Duration;

/// Something that happened to one download, or a request answered from the cache.
/// `label` names the file (its path in the repository, or an artifact's file name).
///
/// # Order
/// A request that downloads sends [`Planned`](ProgressEvent::Planned) once, before its
/// first transfer; then each file sends `Started`, any number of `Sized`, `Advanced`,
/// `Retrying`, `Restarted`, and `Finished` when it is in the cache. A request that
/// transferred nothing sends [`FromCache`](ProgressEvent::FromCache). A file another
/// process brought in while this one waited for its lock sends `WaitingForLock` events
/// and no `Finished`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// What a request will download, before it starts: front ends size an overall bar
    /// with it.
    Planned {
        /// The request: a file's path, `org/name@revision` for a snapshot, or an
        /// artifact's file name.
        label: &'a str,
        /// Files to download.
        files: usize,
        /// Files of the request already in the cache.
        cached: usize,
        /// Bytes to download, when the sizes are known beforehand (a URL's is not).
        bytes: Option<u64>,
    },
    /// A transfer began; `resumed_from` bytes were kept from an interrupted attempt.
    Started {
        /// Which file.
        label: &'a str,
        /// Its size, when known.
        total: Option<u64>,
        /// Bytes already there.
        resumed_from: u64,
    },
    /// The size became known after `Started`.
    Sized {
        /// Which file.
        label: &'a str,
        /// Its size.
        total: u64,
    },
    /// More bytes arrived.
    Advanced {
        /// Which file.
        label: &'a str,
        /// New bytes since the last event.
        bytes: u64,
    },
    /// A request failed and is retried after `delay`.
    Retrying {
        /// Which file.
        label: &'a str,
        /// 1 for the first retry.
        attempt: u32,
        /// How many retries are allowed (the `retries` setting): `attempt` of `retries`.
        retries: u32,
        /// The wait.
        delay: Duration,
        /// Why, for a person: `rate limited by the Hub (429)`, `the Hub failed (503)`,
        /// `connection reset`.
        reason: &'a str,
    },
    /// Bytes were thrown away and the transfer starts over.
    Restarted {
        /// Which file.
        label: &'a str,
        /// Bytes discarded.
        discarded: u64,
    },
    /// The transfer completed and was verified.
    Finished {
        /// Which file.
        label: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// Another thread or process is downloading this blob; this one waits for its lock
    /// (reported about once a second).
    WaitingForLock {
        /// Which file.
        label: &'a str,
        /// The lock file.
        lock_file: &'a Path,
        /// Who holds it (`pid 1234 (python3)`, `pid 77 (modelcache) on node-3, stopped`),
        /// when known.
        holder: Option<&'a str>,
        /// How far the holder got, when known.
        incomplete_bytes: Option<u64>,
        /// How fast the holder's download grows, in bytes per second, when known.
        speed: Option<u64>,
        /// How long the holder has held the lock, when its record says.
        held_for: Option<Duration>,
        /// How long this one has waited.
        waited: Duration,
    },
    /// A request was answered from the cache with nothing transferred by this process
    /// ("loaded from cache"; also when another process downloaded the file while this one
    /// waited for its lock); a request that transferred anything reports `Finished` per
    /// file instead. Sent once per request, while its files are held, so `path` is ready
    /// to use.
    FromCache {
        /// What was asked for: the file's path in the repository, the repository
        /// (`org/name`) for a snapshot, or the artifact's file name for a URL.
        label: &'a str,
        /// The file, or the snapshot directory.
        path: &'a Path,
    },
}

/// Receives [`ProgressEvent`]s, from download tasks and blocking threads: keep it cheap.
///
/// Closures implement it:
/// ```
/// use modelcache::{Progress, ProgressEvent};
/// let progress = |e: &ProgressEvent<'_>| if let ProgressEvent::Finished { label, .. } = e { let _ = label; };
/// progress.event(&ProgressEvent::Finished { label: "config.json", bytes: 10 });
/// ```
pub trait Progress: Send + Sync {
    /// Handles one event.
    fn event(&self, event: &ProgressEvent<'_>);
}

impl<F: Fn(&ProgressEvent<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: &ProgressEvent<'_>) {
        self(event);
    }
}

/// Ignores every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: &ProgressEvent<'_>) {}
}
