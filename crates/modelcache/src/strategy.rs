//! Acquisition strategies: how a request for a file, a snapshot or a URL is satisfied.
//!
//! - [`NetworkAcquisition`]: the cache first, the Hub (or the URL) for what is missing or
//!   stale, with the Hub's freshness rules. Needs the `downloads` feature.
//! - [`CacheOnlyAcquisition`]: the cache alone, never the network; a miss says where to
//!   place files and how to enable downloads.
//! - [`HybridAcquisition`]: strategies tried in order until one succeeds.
//!
//! The manager picks one from the configuration (offline or `auto_download = false` →
//! cache-only; otherwise network when built with `downloads`), or takes one from
//! [`CacheManagerBuilder::strategy`](crate::CacheManagerBuilder::strategy).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cache_hf::FileFilter;
use cache_hf::offline::{self, FileLookup};

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
    Acquired { path, commit, from_cache: true, files_downloaded: 0, bytes_downloaded: 0 }
}

pub(crate) fn filter(include: &[String], exclude: &[String]) -> Result<FileFilter, CacheError> {
    FileFilter::new(include, exclude).map_err(|e| from_hub(e, "", std::path::Path::new("")))
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
    let miss = || {
        CacheError::offline_miss(
            request.describe(),
            "it is not in the cache and downloads are off".to_owned(),
            &ctx.placement(request),
        )
    };
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
            let (dir, commit) = offline::cached_snapshot(store, repo, revision, &filter).map_err(hub_err)?;
            Ok(hit(dir.into_std_path_buf(), Some(commit.to_string())))
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
        cfg!(feature = "downloads")
    }

    #[cfg(feature = "downloads")]
    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        network(ctx, request).await
    }

    #[cfg(not(feature = "downloads"))]
    async fn acquire(&self, _: &AcquireContext<'_>, _: &AcquireRequest) -> Result<Acquired, CacheError> {
        Err(CacheError::StrategyUnavailable {
            strategy: self.name().to_owned(),
            reason: "modelcache was built without the `downloads` feature".to_owned(),
        })
    }
}

#[cfg(feature = "downloads")]
async fn network(ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
    let hub = ctx.inner.hub()?;
    let hub_err = |e| from_hub(e, &request.describe(), &ctx.placement(request));
    let observer: Arc<dyn cache_hf::Observer> = Arc::new(crate::progress::Forward(Arc::clone(&ctx.inner.progress)));
    match request {
        AcquireRequest::File { repo, revision, path } => {
            let o = hub.get_file(repo, revision, path, &observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.path.into_std_path_buf(),
                commit: Some(o.commit.to_string()),
                from_cache: o.from_cache,
                files_downloaded: usize::from(!o.from_cache),
                bytes_downloaded: o.bytes_downloaded,
            })
        }
        AcquireRequest::Snapshot { repo, revision, include, exclude } => {
            let filter = filter(include, exclude)?;
            let o = hub.snapshot(repo, revision, &filter, &observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.dir.into_std_path_buf(),
                commit: Some(o.commit.to_string()),
                from_cache: o.downloaded == 0,
                files_downloaded: o.downloaded,
                bytes_downloaded: o.bytes_downloaded,
            })
        }
        AcquireRequest::Url { url, sha256, name } => {
            let key = artifact_key(url, *sha256, name.as_deref())?;
            let o = hub.get_artifact(&key, &observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.path.into_std_path_buf(),
                commit: None,
                from_cache: o.from_cache,
                files_downloaded: usize::from(!o.from_cache),
                bytes_downloaded: o.bytes_downloaded,
            })
        }
    }
}

/// Strategies tried in order: the first success wins. A strategy that is unavailable is
/// skipped; a "not found", network or not-cached failure moves on to the next; any other
/// failure (integrity, disk full, invalid input) stops at once.
#[derive(Clone, Debug)]
pub struct HybridAcquisition {
    strategies: Vec<Arc<dyn AcquisitionStrategy>>,
}

impl HybridAcquisition {
    /// Tries `strategies` in this order.
    pub fn new(strategies: Vec<Arc<dyn AcquisitionStrategy>>) -> Self {
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

    fn requirements(&self) -> Vec<String> {
        vec!["at least one available strategy".to_owned()]
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
