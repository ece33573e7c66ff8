//! `StoreConfig`: where the cache lives and the knobs of locking, linking and disk space.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};

use crate::lockmode::LockMode;

/// How to open a [`Store`](crate::Store).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The hub cache (`HF_HUB_CACHE`): repos in `huggingface_hub`'s layout.
    pub hub_dir: Utf8PathBuf,
    /// The modelcache home (`MODELCACHE_HOME`): the index, leases and generic artifacts.
    pub home_dir: Utf8PathBuf,
    /// How long a waiter tolerates a blob lock whose holder makes no visible progress
    /// (its `.incomplete` file does not grow) before giving up. Default 5 minutes.
    pub lock_stall_timeout: Duration,
    /// Which locks a blob lock takes ([`LockMode`]); `Auto` (the default) decides from
    /// the filesystem of the root the lock file is on.
    pub lock_mode: LockMode,
    /// How long a lock holder may show no progress and no heartbeat before a waiter that
    /// can prove it gone (its process no longer runs; on another machine, its heartbeat is
    /// older than this) takes over. A holder that is alive on this machine is never taken
    /// over. Default 1 minute.
    pub lock_lease: Duration,
    /// Copy blobs into `snapshots/` instead of symlinking them (what `huggingface_hub`
    /// does where symlinks are unsupported). Default `false`; the store also falls back to
    /// copying on its own when creating a symlink fails.
    pub force_copy: bool,
    /// Free space to keep on the cache's filesystem beyond a staged file: `Some(bytes)`,
    /// or `None` (the default) for [`StoreConfig::auto_margin`] of the filesystem, so a
    /// small volume is not refused a small file.
    pub free_space_margin: Option<u64>,
    /// How many pending last-use records trigger a flush to the index. Default 1024.
    pub flush_threshold: usize,
    /// Whether a miss may link a payload of `huggingface_hub`'s shared blob store
    /// (`HF_HUB_DISABLE_SHARED_BLOBS` and `HF_HUB_DISABLE_XET` turn it off, as they do
    /// for Python). Default `true`. Removal follows the store's sweep rules either way.
    pub shared_blobs: bool,
}

impl StoreConfig {
    /// A configuration with the defaults for the given directories.
    pub fn new(hub_dir: impl AsRef<Utf8Path>, home_dir: impl AsRef<Utf8Path>) -> Self {
        StoreConfig {
            hub_dir: hub_dir.as_ref().to_owned(),
            home_dir: home_dir.as_ref().to_owned(),
            lock_stall_timeout: Duration::from_mins(5),
            lock_mode: LockMode::Auto,
            lock_lease: Duration::from_mins(1),
            force_copy: false,
            free_space_margin: None,
            flush_threshold: 1024,
            shared_blobs: true,
        }
    }

    /// Sets [`lock_stall_timeout`](Self::lock_stall_timeout).
    #[must_use]
    pub fn lock_stall_timeout(mut self, timeout: Duration) -> Self {
        self.lock_stall_timeout = timeout;
        self
    }

    /// Sets [`lock_mode`](Self::lock_mode).
    #[must_use]
    pub fn lock_mode(mut self, mode: LockMode) -> Self {
        self.lock_mode = mode;
        self
    }

    /// Sets [`lock_lease`](Self::lock_lease).
    #[must_use]
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = lease;
        self
    }

    /// Sets [`force_copy`](Self::force_copy).
    #[must_use]
    pub fn force_copy(mut self, copy: bool) -> Self {
        self.force_copy = copy;
        self
    }

    /// Sets [`free_space_margin`](Self::free_space_margin) to a fixed number of bytes.
    #[must_use]
    pub fn free_space_margin(mut self, bytes: u64) -> Self {
        self.free_space_margin = Some(bytes);
        self
    }

    /// The margin kept by default on a filesystem of `total` bytes: 1 % of it, at most
    /// 64 MiB (reached from 6.4 GiB up). Enough for the index, lock and temporary files
    /// written around a download, without refusing a 33-byte file on a 100 MiB volume.
    pub fn auto_margin(total: u64) -> u64 {
        (total / 100).min(64 << 20)
    }

    /// The margin to keep on a filesystem of `total` bytes with this configuration.
    pub fn margin_for(&self, total: u64) -> u64 {
        self.free_space_margin.unwrap_or_else(|| Self::auto_margin(total))
    }

    /// Sets [`shared_blobs`](Self::shared_blobs).
    #[must_use]
    pub fn shared_blobs(mut self, on: bool) -> Self {
        self.shared_blobs = on;
        self
    }

    /// Sets [`flush_threshold`](Self::flush_threshold).
    #[must_use]
    pub fn flush_threshold(mut self, pending: usize) -> Self {
        self.flush_threshold = pending.max(1);
        self
    }
}
