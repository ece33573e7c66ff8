//! Keep machine-learning artifacts on local disk: downloaded once, verified, shared
//! between processes, bounded in size, usable offline.
//!
//! This is the facade most users depend on: [`CacheManager`] (get models, files and URLs;
//! list, stats, verify, remove, prune, pin), the acquisition strategies (network,
//! cache-only, hybrid), configuration loading with provenance, progress events and
//! background cleanup, and reproducible model sets ([`Manifest`] → [`Lock`] →
//! [`CacheManager::sync`], [`CacheManager::verify_lock`], deterministic tar bundles:
//! [`CacheManager::bundle_create`], [`CacheManager::bundle_import`]). Hub repositories
//! live in the Hugging Face cache layout byte for byte, so Python's `huggingface_hub` and
//! modelcache share one cache.
//!
//! # Layering
//! Depends on every lower crate. With `--no-default-features` (no `downloads`) it is
//! cache-only with the same API, and its dependency tree holds neither tokio nor reqwest
//! (`cargo xtask test-matrix` checks this); its async functions then run inline. The
//! difference lives in one edge module (`network.rs`, or `network_off.rs` without the
//! feature): which strategies exist and how a request reaches the Hub. The manager, the
//! strategies and the errors read the same in both builds. The `remote` feature (implies
//! `downloads`; on in the CLI) adds the team tiers (`cache-remote`, `object_store`): a
//! blob source asked before the Hub and pushes after downloads (`team.rs`).
//!
//! # Invariants
//! - Nothing half-downloaded is ever returned; every download is verified against its
//!   etag before it is visible, and a cached file found corrupted is removed, not served.
//! - A revision given as a commit never touches the network when cached; branches and
//!   tags are re-resolved unless inside `revalidate_after`.
//! - A path returned stays valid while it is used: while the call that returns it runs
//!   (its repository is leased from the first lookup to the return, auto-prune
//!   included; a file at a commit that one lookup finds cached and sound is that lookup's
//!   answer, with no lease), while a [`Hold`] on its repository lives, and for `in_use_grace` after
//!   it was returned (its use is recorded at the return). `rm`, `clean` and eviction skip
//!   what is in use, in every process, and report it as `skipped_in_use`.
//! - A snapshot is returned only when every file of its filtered listing is present.
//! - Library code never prints: progress is [`Progress`] events, diagnostics `tracing`.
//!   Every successful request reports how it was served: `Finished` per downloaded file,
//!   or one [`ProgressEvent::FromCache`] when this process transferred nothing; `tracing` gets a
//!   `download` event either way (fields `repo`, `file`, `bytes`, `duration_ms`,
//!   `source` = `hub` or `cache`, `retries`).
//! - [`CacheManager::stats`]' counters (hits, misses, downloads, failures by cause,
//!   evictions by reason, lock waits, histograms) are those of every process that used
//!   the cache; a hit adds to them in memory only (written in batches).
//! - URL artifacts appear wherever Hub repositories do ([`CacheManager::list`],
//!   [`CacheManager::stats`], verify, prune reports), their URLs without `user:password@`
//!   or query ([`redact_url`]); remove, pin and verify name them by name, URL or id
//!   ([`CacheManager::resolve_target`]).
//! - Right after [`CacheManager::list`], [`CacheManager::stats`]' `total_size_bytes` is the
//!   sum of the listed `size_bytes`, a blob shared by several URL artifacts (or a payload
//!   of huggingface_hub's cross-repo store linked from several repositories, or a blob
//!   several repositories share as one inode) counted once; `logical_size_bytes` counts
//!   shared blobs once per repository.
//! - A file another repository of the cache already holds (same digest) is never
//!   downloaded again: it becomes a hard link (else a reflink, else a copy), or a link to
//!   huggingface_hub's shared-store payload. Removing any repository, by any tool, never
//!   affects another; [`CacheManager::dedup`] does the same for duplicates already there.
//! - [`CacheManager::materialize`] (`get --to DIR`) writes only inside the directory and
//!   never into the cache: only the `hardlink` mode shares the cache's (read-only) file.
//! - With `max_size` or `max_age` set, the limits apply by themselves (`auto_prune`): a
//!   size limit after every download, an age limit alone at most once per
//!   `cleanup_interval` (default a day) after a download, never while offline; the last
//!   run's time is kept in the home, never in the hub cache.
//! - References read as people type them ([`ModelRef::parse_location`]: `hf cache ls` ids
//!   such as `dataset/org/name`, `hf://` URIs); a short commit
//!   ([`CacheManager::expand_revision`], [`CacheManager::find_commit`]) resolves only
//!   against commits cached locally, never through the network, and one matching several
//!   cached commits is an [`CacheError::Ambiguous`] error listing them.
//! - A lock is byte-identical for the same manifest and Hub state; with a lock the Hub is
//!   never asked to resolve a revision; a cached file that differs from the lock is
//!   reported, never silently replaced; a bundle import publishes nothing until every blob
//!   matched its lock, and never writes outside the cache.
//! - With team tiers (`remote`): a get never fails because of a tier (down, slow, denied,
//!   corrupt: the Hub serves, the fault is counted in `CacheManager::remote_stats`);
//!   a pulled blob is verified before it is published; a `ro` tier is never written;
//!   pushes run beside the command and `CacheManager::finish_pushes` waits for them at
//!   most `remote_wait`, remembering the rest in the home for a later command.
//! - `--json` output deserializes back into the result types ([`RepoInfo`],
//!   [`CacheStats`], [`PruneReport`]…).
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), modelcache::CacheError> {
//! use modelcache::{CacheManager, ConfigKey, ModelRef, RepoType};
//! let cache = CacheManager::builder()
//!     .cache_dir("/tmp/hub")
//!     .home("/tmp/modelcache")
//!     .set(ConfigKey::MaxSize, "20GiB")
//!     .build()?;
//! let dir = cache.get_model("openai/whisper-tiny").await?;
//! let model = ModelRef::parse("openai/whisper-tiny@main", RepoType::Model)?;
//! let only_json = cache.get_snapshot(&model, &["*.json".to_owned()], &[]).await?;
//! println!("{} and {}", dir.display(), only_json.path.display());
//! for repo in cache.list()? {
//!     println!("{} {} bytes", repo.model_id, repo.size_bytes);
//! }
//! # Ok(()) }
//! ```

mod artifacts;
mod background;
mod cleanup;
mod config;
mod dedup;
mod dirs;
mod doctor;
mod doctor_env;
mod error;
mod hold;
mod lockfile;
mod maintenance;
mod manager;
mod materialize;
#[cfg(feature = "downloads")]
mod network;
#[cfg(not(feature = "downloads"))]
#[path = "network_off.rs"]
mod network;
mod progress;
mod refs;
mod strategy;
#[cfg(feature = "remote")]
mod team;
mod token_source;
mod tokenizer;
mod types;

pub use artifacts::{ArtifactInfo, Target};
pub use background::BackgroundPrune;
pub use cache_core::{
    ByteSize, CommitHash, DownloadFailures, EvictReason, EvictionPolicy, Evictions, FailureCause, Histogram, HistogramKind,
    Histograms, Repo, RepoId, RepoPath, RepoType, Revision, Sha256, Timestamp, edit_distance, format_duration, parse_duration,
    redact_url,
};
#[cfg(feature = "remote")]
pub use cache_remote::{PendingPush, TierListing, TierStats, TierVerifyReport};
pub use cache_store::LockMode;
pub use config::{
    Config, ConfigError, ConfigLoader, DEFAULT_CLEANUP_INTERVAL, DEFAULT_ENDPOINT, EffectiveConfig, Key as ConfigKey, RawValue,
    RemoteTier, Source as ConfigSource, UnknownKey,
};
pub use dedup::DedupReport;
pub use doctor::{Check, CheckStatus, DoctorReport};
pub use error::{CacheError, ErrorKind, Missing};
pub use hold::Hold;
pub use lockfile::{
    BUNDLE_LOCK_ENTRY, BUNDLE_MTIME, BundleReport, ImportOptions, ImportReport, LOCK_FILE, LOCK_VERSION, Lock, LockChange,
    LockCheck, LockResolution, LockedFile, LockedRepo, LockedUrl, LockfileError, MANIFEST_FILE, Manifest, ModelSpec, SyncOptions,
    SyncReport, Upgrade, UrlSpec, stale_entries,
};
pub use manager::{CacheManager, CacheManagerBuilder};
pub use materialize::{LinkMode, MaterializeReport, MaterializedEntry};
pub use network::FEATURES;
pub use progress::{NoProgress, Progress, ProgressEvent};
pub use strategy::{
    AcquireContext, AcquisitionInfo, AcquisitionStrategy, CacheOnlyAcquisition, HybridAcquisition, NetworkAcquisition,
    StrategyKind, available_strategies, select_strategy,
};
#[cfg(feature = "remote")]
pub use team::{PushReport, PushSummary};
pub use token_source::TokenSource;
pub use tokenizer::{TOKENIZER_EXTRAS, TOKENIZER_FILES, TokenizerFiles};
pub use types::{
    AcquireRequest, Acquired, CacheStats, CachedModelInfo, CorruptedFile, Counters, FileInfo, IncompleteDownload,
    IntegrityReport, ItemType, ModelRef, PruneOptions, PruneReport, PrunedEntry, RemoveReport, RepairedState, RepoInfo,
    RevisionInfo,
};
