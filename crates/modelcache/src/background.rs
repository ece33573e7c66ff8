//! Automatic maintenance for long-running processes: a thread that prunes the cache with
//! the configured policy at an interval, and stops cleanly when asked (or dropped).
//!
//! A plain thread rather than a task: it works with and without the `downloads` feature
//! (no runtime needed) and its work is blocking filesystem and database work anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::CacheError;
use crate::manager::CacheManager;

/// A running background prune. [`stop`](BackgroundPrune::stop) (or dropping it) ends the
/// thread after the current run, if any.
#[derive(Debug)]
pub struct BackgroundPrune {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    runs: Arc<AtomicU64>,
}

impl BackgroundPrune {
    /// Completed prune runs so far.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::warn!("the background prune thread panicked");
        }
    }
}

impl Drop for BackgroundPrune {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl CacheManager {
    /// Starts pruning with the configured policy every `interval` (the first run after one
    /// interval). Errors of a run are logged, not fatal.
    pub fn start_background_prune(&self, interval: Duration) -> Result<BackgroundPrune, CacheError> {
        let (tx, rx) = mpsc::channel::<()>();
        let runs = Arc::new(AtomicU64::new(0));
        let (manager, counter) = (self.clone(), Arc::clone(&runs));
        let thread = std::thread::Builder::new()
            .name("modelcache-prune".to_owned())
            .spawn(move || {
                // A message or a hung-up sender (the handle stopped or dropped) ends the loop.
                while let Err(RecvTimeoutError::Timeout) = rx.recv_timeout(interval) {
                    let policy = manager.config().config.eviction_policy();
                    match manager.prune_now(&policy, false) {
                        Ok(r) => tracing::debug!(evicted = r.evicted.len(), bytes = r.bytes_freed, "background prune"),
                        Err(e) => tracing::warn!("background prune failed: {e}"),
                    }
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|source| CacheError::Io {
                op: "start the background prune thread for",
                path: self.cache_dir().to_owned(),
                source,
            })?;
        Ok(BackgroundPrune { stop: Some(tx), thread: Some(thread), runs })
    }
}
