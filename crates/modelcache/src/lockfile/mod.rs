//! Reproducible model sets: a manifest people write (`modelcache.toml`), the lock it
//! resolves to (`modelcache.lock`), `sync` of the cache to a lock, `verify` against it,
//! and deterministic tar bundles of a locked set for machines without network.
//!
//! # Invariants
//! - A lock is byte-identical for the same manifest and Hub state, and written
//!   atomically; `lock` downloads no file body.
//! - With a lock, the Hub is never asked to resolve a revision: files are fetched at the
//!   locked commit with their locked etags, and every blob is checked against its etag
//!   before it is published.
//! - A cached file that differs from the lock is reported, never silently replaced.
//! - A bundle import publishes nothing until every blob of the bundle matched the lock;
//!   its paths never reach the filesystem (the cache layout is rebuilt from the lock),
//!   so nothing outside the cache is ever written.

mod bundle;
mod error;
mod import;
mod layout;
mod lock;
mod manifest;
mod resolve;
mod sync;

pub use bundle::{BUNDLE_LOCK_ENTRY, BUNDLE_MTIME, BundleReport};
pub use error::LockfileError;
pub use import::{ImportOptions, ImportReport};
pub use lock::{LOCK_FILE, LOCK_VERSION, Lock, LockedFile, LockedRepo, LockedUrl};
pub use manifest::{MANIFEST_FILE, Manifest, ModelSpec, UrlSpec};
pub use resolve::{LockChange, LockResolution, Upgrade, stale_entries};
pub use sync::{LockCheck, SyncOptions, SyncReport};
