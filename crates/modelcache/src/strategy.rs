//! Acquisition strategies: how a request for a file, a snapshot or a URL is satisfied.
//!
//! - [`NetworkAcquisition`]: the cache first, the Hub (or the URL) for what is missing or
//!   stale, with the Hub's freshness rules. Needs the `downloads` feature.
//! - [`CacheOnlyAcquisition`]: the cache alone, never the network; a miss says where to
//!   place files and how to enable downloads.
//! - [`HybridAcquisition`]: strategies tried in order until one succeeds; by default
//!   ([`HybridAcquisition::assemble`]) the network when built and allowed, then the cache.
//!
//! The manager picks one with [`select_strategy`] from the configuration (`strategy`;
//! unset: offline or `auto_download = false` → cache-only, otherwise network when built
//! with `downloads`), or takes one from
//! [`CacheManagerBuilder::strategy`](crate::CacheManagerBuilder::strategy).
//! [`available_strategies`] lists what this build has.
//!
//! # Same logic in both builds
//! Nothing here depends on the `downloads` feature: the network strategy asks the build
//! edge (`network.rs` or `network_off.rs`) whether it exists and how to reach the Hub.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cache_hf::FileFilter;
use cache_hf::offline::{self, FileLookup};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{CacheError, ErrorKind, from_hub};
use crate::manager::Inner;
use crate::types::{AcquireRequest, Acquired};

/// What a strategy may use: the manager's cache, configuration and progress sink.
pub struct AcquireContext<'a> {
    pub(crate) inner: &'a Inner,
}

impl std::fmt::Debug for AcquireContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcquireContext").field("cache_dir", &self.cache_dir()).finish_non_exhaustive()
    }
}

impl AcquireContext<'_> {
    /// The hub cache directory.
    pub fn cache_dir(&self) -> PathBuf {
        self.inner.store.hub_dir().as_std_path().to_owned()
    }

    /// Whether the configuration forbids the network.
    pub fn offline(&self) -> bool {
        self.inner.config.config.offline
    }

    /// Where the files of a request go in the cache (for messages).
    pub fn placement(&self, request: &AcquireRequest) -> PathBuf {
        match request {
            AcquireRequest::File { repo, path, .. } => {
                self.cache_dir().join(repo.folder_name()).join("snapshots/<commit>").join(path.as_str())
            }
            AcquireRequest::Snapshot { repo, .. } => self.cache_dir().join(repo.folder_name()).join("snapshots/<commit>"),
            AcquireRequest::Url { .. } => self.inner.store.home_dir().join("artifacts").into_std_path_buf(),
        }
    }
}

/// One way of satisfying requests.
#[async_trait]
pub trait AcquisitionStrategy: Send + Sync + std::fmt::Debug {
    /// A short name: `network`, `cache-only`, `hybrid`.
    fn name(&self) -> &'static str;
    /// What it does, in one sentence.
    fn description(&self) -> String;
    /// What it needs to work (features, settings, connectivity).
    fn requirements(&self) -> Vec<String>;
    /// Whether it can work in this build.
    fn is_available(&self) -> bool;
    /// Whether it may bring files in from elsewhere (a repair re-fetches only then).
    fn downloads(&self) -> bool {
        true
    }
    /// Satisfies one request.
    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError>;
    /// Name, description, availability and requirements together (what `modelcache
    /// config` shows).
    fn acquisition_info(&self) -> AcquisitionInfo {
        AcquisitionInfo {
            name: self.name().to_owned(),
            description: self.description(),
            available: self.is_available(),
            requirements: self.requirements(),
        }
    }
}

/// What a strategy is, as [`AcquisitionStrategy::acquisition_info`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquisitionInfo {
    /// `network`, `cache-only`, `hybrid`.
    pub name: String,
    /// What it does, in one sentence.
    pub description: String,
    /// Whether it can work in this build.
    pub available: bool,
    /// What it needs to work.
    pub requirements: Vec<String>,
}

/// A strategy as the configuration names it (`strategy = "hybrid"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StrategyKind {
    /// [`NetworkAcquisition`].
    Network,
    /// [`CacheOnlyAcquisition`].
    CacheOnly,
    /// [`HybridAcquisition::assemble`]: the network when allowed, then the cache.
    Hybrid,
}

impl StrategyKind {
    /// Every kind, in the order `available_strategies` lists them.
    pub const ALL: [StrategyKind; 3] = [StrategyKind::Network, StrategyKind::CacheOnly, StrategyKind::Hybrid];

    /// The name the configuration and the command line use.
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Network => "network",
            StrategyKind::CacheOnly => "cache-only",
            StrategyKind::Hybrid => "hybrid",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> Option<StrategyKind> {
        StrategyKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Every strategy this build has, with its info: the network strategy only when built
/// with `downloads`; the hybrid one as [`HybridAcquisition::default`] assembles itself.
pub fn available_strategies() -> Vec<AcquisitionInfo> {
    let mut all: Vec<Arc<dyn AcquisitionStrategy>> = Vec::new();
    if NetworkAcquisition.is_available() {
        all.push(Arc::new(NetworkAcquisition));
    }
    all.push(Arc::new(CacheOnlyAcquisition));
    all.push(Arc::new(HybridAcquisition::default()));
    all.iter().map(|s| s.acquisition_info()).collect()
}

/// The strategy a configuration selects. `strategy` unset (`auto`): cache-only when
/// offline, with `auto_download = false` or without `downloads`, the network otherwise.
/// `hybrid`: [`HybridAcquisition::assemble`] with the network allowed unless offline or
/// `auto_download = false`. `network`, `cache-only`: that strategy.
pub fn select_strategy(c: &Config) -> Arc<dyn AcquisitionStrategy> {
    let network_allowed = !c.offline && c.auto_download;
    match c.strategy {
        None if network_allowed && NetworkAcquisition.is_available() => Arc::new(NetworkAcquisition),
        None | Some(StrategyKind::CacheOnly) => Arc::new(CacheOnlyAcquisition),
        Some(StrategyKind::Network) => Arc::new(NetworkAcquisition),
        Some(StrategyKind::Hybrid) => Arc::new(HybridAcquisition::assemble(network_allowed)),
    }
}

/// The cache alone: never touches the network.
#[derive(Clone, Copy, Debug, Default)]
pub struct CacheOnlyAcquisition;

#[async_trait]
impl AcquisitionStrategy for CacheOnlyAcquisition {
    fn name(&self) -> &'static str {
        "cache-only"
    }

    fn description(&self) -> String {
        "serves files already in the cache and never touches the network".to_owned()
    }

    fn requirements(&self) -> Vec<String> {
        vec!["files already in the hub cache, in huggingface_hub's layout (by modelcache, huggingface_hub or hf-hub)".to_owned()]
    }

    fn is_available(&self) -> bool {
        true
    }

    fn downloads(&self) -> bool {
        false
    }

    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        cache_only(ctx, request)
    }
}

fn hit(path: PathBuf, commit: Option<String>) -> Acquired {
    Acquired { path, commit, from_cache: true, files: 1, files_downloaded: 0, bytes_downloaded: 0, unmatched_include: Vec::new() }
}

pub(crate) fn filter(include: &[String], exclude: &[String]) -> Result<FileFilter, CacheError> {
    FileFilter::new(include, exclude).map_err(|e| from_hub(e, "", std::path::Path::new("")))
}

/// A file at a commit found cached and sound by one lookup: what [`CacheManager::fetch`](crate::CacheManager::fetch)
/// answers before it takes the lease (see `hold.rs`, "Hits without a lease"). Anything
/// else — a branch or tag, a miss, a hit that deserves a check, an error — is `None`,
/// left to the leased path, which looks again and counts.
pub(crate) fn sound_commit_file(ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Option<Acquired> {
    let AcquireRequest::File { repo, revision, path } = request else { return None };
    let commit = revision.commit()?;
    let found = ctx.inner.store.probe_sound(repo, revision, path).ok()??;
    Some(hit(found.path.into_std_path_buf(), Some(commit.as_str().to_owned())))
}

/// A file at a commit that is already cached, answered without the strategy: a commit
/// never needs the network once cached, whatever the strategy. `None` when the strategy
/// must decide (a branch or tag, a miss — not counted here, the strategy counts it); a
/// suspect hit that proves corrupted is an error, exactly as the strategy would report it.
pub(crate) fn cached_commit_file(ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Option<Result<Acquired, CacheError>> {
    let AcquireRequest::File { repo, revision, path } = request else { return None };
    revision.commit()?;
    match offline::probe_file(&ctx.inner.store, repo, revision, path) {
        Ok(Some((path, commit))) => Some(Ok(hit(path.into_std_path_buf(), Some(commit.to_string())))),
        Ok(None) => None,
        Err(e) => Some(Err(from_hub(e, &request.describe(), &ctx.placement(request)))),
    }
}

/// The store's key for a URL request; a chosen name must already be safe (no silent
/// renaming of what the user typed).
pub(crate) fn artifact_key(
    url: &str,
    sha256: Option<cache_core::Sha256>,
    name: Option<&str>,
) -> Result<cache_store::ArtifactKey, CacheError> {
    let mut key = cache_store::ArtifactKey::new(url);
    if let Some(s) = sha256 {
        key = key.with_sha256(s);
    }
    if let Some(name) = name {
        if !cache_store::ArtifactKey::is_safe_name(name) {
            return Err(CacheError::InvalidInput {
                what: "file name",
                value: name.chars().take(64).collect(),
                reason: "use 1 to 100 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`".to_owned(),
            });
        }
        key = key.with_name(name);
    }
    Ok(key)
}

fn cache_only(ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
    let store = &ctx.inner.store;
    // Messages are built only on failure: a hit allocates nothing for them.
    let hub_err = |e| from_hub(e, &request.describe(), &ctx.placement(request));
    let miss = || CacheError::offline_miss(request.describe(), crate::error::DOWNLOADS_OFF.to_owned(), &ctx.placement(request));
    match request {
        AcquireRequest::File { repo, revision, path } => match offline::lookup_file(store, repo, revision, path, None) {
            Ok(FileLookup::Hit { path, commit }) => Ok(hit(path.into_std_path_buf(), Some(commit.to_string()))),
            Ok(FileLookup::NotInRepo(_)) => Err(hub_err(cache_hf::Error::EntryNotFound {
                repo: repo.clone(),
                revision: revision.to_string(),
                path: path.to_string(),
                cached: true,
            })),
            Ok(FileLookup::Miss { .. }) => Err(miss()),
            Err(e) => Err(hub_err(e)),
        },
        AcquireRequest::Snapshot { repo, revision, include, exclude } => {
            let filter = filter(include, exclude)?;
            let (dir, commit, files) = offline::cached_snapshot_files(store, repo, revision, &filter).map_err(hub_err)?;
            Ok(Acquired { files, ..hit(dir.into_std_path_buf(), Some(commit.to_string())) })
        }
        AcquireRequest::Url { url, sha256, name } => {
            let key = artifact_key(url, *sha256, name.as_deref())?;
            match store.find_artifact(&key)? {
                Some(p) => Ok(hit(p.into_std_path_buf(), None)),
                None => Err(miss()),
            }
        }
    }
}

/// The cache first, then the network for what is missing or stale.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetworkAcquisition;

#[async_trait]
impl AcquisitionStrategy for NetworkAcquisition {
    fn name(&self) -> &'static str {
        "network"
    }

    fn description(&self) -> String {
        "serves cached files and downloads what is missing or stale from the Hub (or the URL), verified".to_owned()
    }

    fn requirements(&self) -> Vec<String> {
        vec![
            "the `downloads` feature".to_owned(),
            "network access to the Hub endpoint (`HF_ENDPOINT`), or to the URL".to_owned(),
            "a token (`HF_TOKEN`) for private or gated repositories".to_owned(),
        ]
    }

    fn is_available(&self) -> bool {
        crate::network::BUILT
    }

    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        ctx.inner.network.acquire(ctx, request).await
    }
}

/// Strategies tried in order: the first success wins. A strategy that is unavailable is
/// skipped; a "not found", network or not-cached failure moves on to the next; any other
/// failure (integrity, disk full, invalid input) stops at once.
#[derive(Clone, Debug)]
pub struct HybridAcquisition {
    strategies: Vec<Arc<dyn AcquisitionStrategy>>,
}

impl Default for HybridAcquisition {
    /// [`assemble`](Self::assemble) with the network allowed.
    fn default() -> Self {
        HybridAcquisition::assemble(true)
    }
}

impl HybridAcquisition {
    /// Tries `strategies` in this order.
    pub fn new(strategies: Vec<Arc<dyn AcquisitionStrategy>>) -> Self {
        HybridAcquisition { strategies }
    }

    /// The standard hybrid: the network when this build has it and `network_allowed`
    /// (not offline, downloads on), then the cache alone.
    pub fn assemble(network_allowed: bool) -> Self {
        let mut strategies: Vec<Arc<dyn AcquisitionStrategy>> = Vec::new();
        if network_allowed && NetworkAcquisition.is_available() {
            strategies.push(Arc::new(NetworkAcquisition));
        }
        strategies.push(Arc::new(CacheOnlyAcquisition));
        HybridAcquisition { strategies }
    }

    /// The strategies, in order.
    pub fn strategies(&self) -> &[Arc<dyn AcquisitionStrategy>] {
        &self.strategies
    }
}

#[async_trait]
impl AcquisitionStrategy for HybridAcquisition {
    fn name(&self) -> &'static str {
        "hybrid"
    }

    fn description(&self) -> String {
        let names: Vec<&str> = self.strategies.iter().map(|s| s.name()).collect();
        format!("tries {} in order until one succeeds", names.join(", then "))
    }

    /// The sorted, de-duplicated union of its strategies' requirements.
    fn requirements(&self) -> Vec<String> {
        let mut all: Vec<String> = self.strategies.iter().flat_map(|s| s.requirements()).collect();
        all.sort();
        all.dedup();
        all
    }

    fn is_available(&self) -> bool {
        self.strategies.iter().any(|s| s.is_available())
    }

    fn downloads(&self) -> bool {
        self.strategies.iter().any(|s| s.is_available() && s.downloads())
    }

    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        let mut first_real: Option<CacheError> = None;
        let mut last: Option<CacheError> = None;
        for s in self.strategies.iter().filter(|s| s.is_available()) {
            match s.acquire(ctx, request).await {
                Ok(a) => return Ok(a),
                Err(e) => match e.kind() {
                    ErrorKind::Remote | ErrorKind::NotCachedOffline => {
                        tracing::debug!(strategy = s.name(), error = %e, "strategy failed, trying the next one");
                        if e.kind() == ErrorKind::Remote && first_real.is_none() {
                            first_real = Some(e);
                        } else {
                            last = Some(e);
                        }
                    }
                    _ => return Err(e),
                },
            }
        }
        Err(first_real.or(last).unwrap_or_else(|| CacheError::StrategyUnavailable {
            strategy: self.name().to_owned(),
            reason: "none of its strategies is available in this build".to_owned(),
        }))
    }
}
