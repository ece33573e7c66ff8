//! Pure logic of modelcache: identifiers, digests, entry metadata, eviction planning.
//!
//! Everything here is a value or a function of values: no I/O, no clock reads (time is a
//! parameter), no async. The layers above share these types, so a repo id validated here
//! is safe to join to a path everywhere.
//!
//! # Layering
//! Depends on serde, thiserror and the hash crates (blake3, sha2, sha1). Never on tokio,
//! reqwest or any I/O crate (`cargo xtask test-matrix` fails if it does).
//!
//! # Invariants
//! - Parsers never panic; they reject bad input with an [`Error`] that names the value.
//! - A [`RepoPath`], [`Revision`] or [`RepoId`] that parsed can be joined to a directory
//!   without escaping it.
//! - [`plan_eviction`] never chooses a pinned, in-use or recently used entry.
//!
//! # Example
//! ```
//! use cache_core::{Etag, Repo, RepoPath, Revision, Sha256};
//! let repo: Repo = Repo::model("google-bert/bert-base-uncased".parse()?);
//! let path: RepoPath = "config.json".parse()?;
//! let rev: Revision = "main".parse()?;
//! assert_eq!(repo.folder_name(), "models--google-bert--bert-base-uncased");
//! assert!(rev.commit().is_none());
//! let etag = Etag::Sha256(Sha256::of(b"weights"));
//! assert_eq!(etag.to_string().len(), 64);
//! # let _ = path;
//! # Ok::<(), cache_core::Error>(())
//! ```

mod digest;
mod entry;
mod error;
mod evict;
mod metrics;
mod path;
mod repo;
mod revision;
mod similar;
mod units;
mod url;

pub use digest::{
    Blake3, Blake3Hasher, DigestKinds, DigestMismatch, Digests, Etag, GitSha1, GitSha1Hasher, MultiHasher, Sha256, Sha256Hasher,
    constant_time_eq,
};
pub use entry::{BlobId, CacheSummary, Counters, DownloadFailures, EntryKey, EntryMeta, FailureCause, RepoSummary, Timestamp};
pub use error::{Error, Result, Shown};
pub use evict::{
    DEFAULT_IN_USE_GRACE, DEFAULT_LOW_WATERMARK, EvictReason, Eviction, EvictionPlan, EvictionPolicy, Protection, plan_eviction,
};
pub use metrics::{
    BOUNDS, BUCKETS, Evictions, Histogram, HistogramKind, Histograms, download_observations, eviction_counter_name,
};
pub use path::{MAX_COMPONENT_LEN, MAX_PATH_LEN, RepoPath};
pub use repo::{MAX_REPO_NAME_LEN, Repo, RepoId, RepoType};
pub use revision::{CommitHash, MAX_REVISION_LEN, Revision};
pub use similar::edit_distance;
pub use units::{ByteSize, format_duration, parse_duration};
pub use url::redact_url;
