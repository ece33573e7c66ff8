//! Verified on-disk cache: layout, atomic commit, locks, index, eviction.
//!
//! This crate owns the cache directory. It keeps Hub repositories exactly as
//! `huggingface_hub` lays them out (`models--org--name/{blobs,snapshots,refs}`), so Python
//! and Rust processes share one cache, and keeps modelcache's own index (`SQLite`) in the
//! modelcache home, never in the hub cache.
//!
//! # Layering
//! Depends on `cache-core`, cap-std, camino, rusqlite. Never on tokio or reqwest
//! (`cargo xtask test-matrix` fails if it does). Its API is synchronous; async callers use
//! `spawn_blocking`.
//!
//! # Invariants
//! - A blob is visible only after fsync and a digest check.
//! - Removal never deletes what another process holds a lock on, nor a file written after
//!   its scan (folders go with `rmdir` only).
//! - Every file access goes through a cap-std `Dir` on one of the two roots, and every
//!   name joined to a path is a validated `cache-core` type or a hash: no input reaches
//!   outside the roots. A repo folder moved to another disk and symlinked back (the
//!   folder, or its `blobs/`, `snapshots/`, `refs/`) is not followed: whole-cache
//!   operations (list, verify, reconcile, evict, clean, clear) skip it with a warning
//!   ([`IntegrityReport::skipped`]), and naming it fails with [`Error::OutsideCache`].
//! - Lookups never write or open the index (the first check of a file in a process reads
//!   its recorded size through the open connection); hits (with their latency, for the
//!   `hit_seconds` histogram) are recorded in memory and flushed in batches ([`Store::flush`], on drop, or when enough are pending)
//!   as one append to the usage journal beside the index, which every reader of last uses
//!   or counters (eviction, [`Store::entries`], [`Store::stats`]) merges first: a use
//!   recorded by a process that has exited protects its file from eviction all the same.
//! - A hit of a Hub file never opens the URL artifacts' index, nor, when its blob is
//!   unchanged since its snapshot link was made (its `ctime` is not after the link's
//!   creation), the hub's: the index opens on first use (see the `lookup` module).
//! - A hit never depends on the index: one that cannot be read is set aside and rebuilt
//!   from the disk.
//! - A hit whose blob is not the size it was committed with, or was modified after its
//!   link, is reported suspect ([`Hit::is_suspect`]); [`Store::verify`] reports it
//!   corrupted.
//! - The hub cache is valid for `huggingface_hub`'s `scan_cache_dir` at every instant: a
//!   repo folder gets its `snapshots/` before anything else, and a ref is written only
//!   once `snapshots/<commit>/` exists, so a download killed at any step hides nothing.
//! - Listings ([`Store::list`], [`Store::artifacts`]) show what is on disk and record it
//!   in the index, so [`Store::stats`] right after a listing counts what was listed, each
//!   blob once (a payload of huggingface_hub's cross-repo store is in the listing of each
//!   repo linking it, and once in the totals).
//! - Published blobs are read-only files. A blob may be one inode with other repos'
//!   blobs (a cross-repo hit, [`Store::dedup`]) or a symlink into `huggingface_hub`'s
//!   shared store ([`Store::link_from_shared_store`]); removing one repo unlinks its own
//!   names only, so another repo sharing the bytes is never affected, and a shared-store
//!   payload goes only when its manifest proves no repo links it.
//! - Every physical blob has one identity in the index (its path, the payload's path, or
//!   `inode:<dev>:<ino>/<etag>`), so totals and eviction count its bytes once.
//! - [`Store::materialize`] writes only inside the directory it is given, and only reads
//!   the cache.
//! - Nothing of modelcache's own goes into the hub cache: range records and holder
//!   records live in the home and go with their staging file or lock (commit, discard,
//!   mismatch, `clean_stale`, remove, clear; a lock's release).
//! - One blob, one transfer, in every [`LockMode`] but `none`, on a filesystem that honours
//!   the mode's locks: racing processes find the winner's blob. With `none` (or where
//!   locks do nothing) transfers may be duplicated and a wrong byte is still never
//!   published.
//! - A lock holder alive on this machine is never taken over, however slow or stopped; a
//!   holder proved gone (see [`Store::lock_blob`]) is taken over by exactly one waiter,
//!   which resumes only what the partial's range record proves.
//!
//! # Download protocol
//! [`Store::has_blob`] → [`Store::lock_blob`] → `has_blob` again (→ [`Store::link_existing`])
//! → [`Store::link_from_shared_store`] when the listing names a Xet hash → [`Store::link_from_other_repo`]
//! → [`Store::stage`] (resume: [`Staging::completed_ranges`]) → write, recording progress
//! with [`Staging::range_record`] → [`Store::commit`].
//!
//! # Resume
//! A staging file survives crashes and reboots. Which of its byte ranges are complete is
//! kept in a [`RangeRecord`] (`<home>/hubs/<key>/partial/<repo>/<etag>.ranges`), replaced
//! atomically at each checkpoint and trusted in the same boot; ranges a background
//! `fdatasync` covered are also trusted after a reboot. So a transfer that wrote ranges
//! out of order resumes with only its gaps. A missing, corrupt or foreign
//! record (another blob, size or file identity, ranges past the end) is ignored: then
//! only the file's safe prefix counts, the bytes before its first hole, so a file left
//! with holes by an older run never resumes from its length. Either way the digest check
//! at commit decides.
//!
//! # Example
//! ```no_run
//! use std::io::Write;
//! use cache_core::{Etag, Repo, Revision, Sha256};
//! use cache_store::{CommitRequest, Store, StoreConfig};
//!
//! let store = Store::open(StoreConfig::new("/tmp/hub", "/tmp/modelcache"))?;
//! let repo = Repo::model("org/model".parse()?);
//! let (commit, path) = ("0123456789abcdef0123456789abcdef01234567".parse()?, "config.json".parse()?);
//! let body = b"{}";
//! let etag = Etag::Sha256(Sha256::of(body));
//! let lock = store.lock_blob(&repo, &etag, &mut |wait| eprintln!("waiting for {}", wait.lock_file))?;
//! let staging = store.stage(&lock, Some(body.len() as u64))?;
//! staging.write_at(body, 0)?;
//! let request = CommitRequest::new(repo.clone(), commit, path, etag, 2).with_ref(Revision::main());
//! let snapshot = store.commit(staging, &request)?;
//! assert_eq!(store.find(&repo, &Revision::main(), &"config.json".parse()?)?, Some(snapshot));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Unix only: `flock` locks shared with Python, relative symlinks, `openat`-style access
// (rustix, `std::os::unix`). Linux-only calls (`syncfs`, `/proc`) have Unix fallbacks.
#[cfg(not(unix))]
compile_error!("cache-store supports Unix systems only (Linux; macOS untested): it needs flock, symlinks and POSIX file APIs");

mod artifact_list;
mod artifacts;
mod batch;
mod clean;
mod commit;
mod config;
mod counters;
mod crossrepo;
mod dedup;
mod error;
mod evict;
mod filesystem;
mod fsx;
mod hash;
mod health;
mod holder;
mod index;
mod journal;
mod layout;
mod listing;
mod lock;
mod lockmode;
mod lookup;
mod maintenance;
mod materialize;
mod memo;
mod mountinfo;
mod ofd;
mod reconcile;
mod record;
mod recover;
mod scan;
mod shared;
mod staging;
mod stamp;
mod store;
mod tree;
mod usage;
mod verify;

pub use artifact_list::ArtifactListing;
pub use artifacts::ArtifactKey;
pub use clean::CleanReport;
pub use commit::CommitRequest;
pub use config::StoreConfig;
pub use crossrepo::{CrossRepoHit, Placement};
pub use dedup::DedupReport;
pub use error::{Error, Result};
pub use evict::EvictReport;
pub use filesystem::{Filesystem, FsKind, LockProbe};
pub use health::{HeldLock, IndexHealth, LockFiles, RootAccess};
pub use holder::Holder;
pub use listing::{FileListing, IncompleteFile, RepoListing, RevisionListing};
pub use lock::{BlobLock, Lease, LockWait};
pub use lockmode::LockMode;
pub use lookup::Hit;
pub use maintenance::{Removed, Scope};
pub use materialize::{LinkMode, Materialized, MaterializedFile, SMALL_TEXT};
pub use mountinfo::Mount;
pub use reconcile::ReconcileReport;
pub use record::RangeRecord;
pub use staging::Staging;
pub use store::Store;
pub use tree::{TREE_FORMAT_VERSION, Tree, TreeEntry};
pub use verify::{Corrupted, IntegrityReport};
