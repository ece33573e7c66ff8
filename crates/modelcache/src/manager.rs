//! `CacheManager` and its builder: opening the cache from the layered configuration,
//! choosing the acquisition strategy, and the get-style operations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cache_core::{RepoPath, RepoType, Revision, Sha256};
use cache_store::{Store, StoreConfig};
use camino::Utf8PathBuf;

use crate::config::{ConfigLoader, EffectiveConfig, Key};
use crate::error::CacheError;
use crate::progress::{NoProgress, Progress};
use crate::strategy::{AcquireContext, AcquisitionStrategy, CacheOnlyAcquisition};
use crate::types::{AcquireRequest, Acquired, ModelRef};

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the Hub token comes from.
#[derive(Clone, Debug)]
enum TokenChoice {
    /// As huggingface_hub finds it (`HF_TOKEN`, the token file).
    Discover,
    /// Given (or explicitly none).
    Given(#[cfg_attr(not(feature = "downloads"), expect(dead_code, reason = "only downloads use a token"))] Option<String>),
}

/// What every clone of a manager shares.
pub(crate) struct Inner {
    pub(crate) config: EffectiveConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) strategy: Arc<dyn AcquisitionStrategy>,
    #[cfg_attr(not(feature = "downloads"), expect(dead_code, reason = "only downloads report progress"))]
    pub(crate) progress: Arc<dyn Progress>,
    /// The resolver and its HTTP client, built on first use: a cache hit that needs no
    /// network (offline, a commit, inside `revalidate_after`) never pays for a client
    /// (TLS roots are read from disk) — it matters for whole-process warm hits.
    #[cfg(feature = "downloads")]
    pub(crate) hub: std::sync::OnceLock<cache_hf::HubCache>,
    #[cfg(feature = "downloads")]
    pub(crate) hub_config: cache_hf::HubConfig,
}

#[cfg(feature = "downloads")]
impl Inner {
    /// The resolver, built the first time it is needed.
    pub(crate) fn hub(&self) -> Result<&cache_hf::HubCache, CacheError> {
        if let Some(hub) = self.hub.get() {
            return Ok(hub);
        }
        let hub = cache_hf::HubCache::new(&self.hub_config, Arc::clone(&self.store))
            .map_err(|e| crate::error::from_hub(e, "", Path::new("")))?;
        // Another thread may have won the race: either value is equivalent.
        Ok(self.hub.get_or_init(|| hub))
    }
}

/// The cache: get models, files and URLs (downloaded once, verified, shared between
/// processes), inspect, verify, prune and clear it.
///
/// `Send + Sync` and cheap to clone (an `Arc`): share one across tasks and threads. Two
/// managers, or two processes, asking for the same file at once cause one download.
///
/// ```no_run
/// # async fn run() -> Result<(), modelcache::CacheError> {
/// use modelcache::CacheManager;
/// let cache = CacheManager::builder().cache_dir("/tmp/hub").home("/tmp/modelcache").build()?;
/// let snapshot = cache.get_model("openai/whisper-tiny").await?;
/// let config = cache.get_file("openai/whisper-tiny", "main", "config.json").await?;
/// assert!(config.starts_with(&snapshot) || cache.is_cached("openai/whisper-tiny"));
/// let stats = cache.stats()?;
/// println!("{} models, {} bytes", stats.total_models, stats.total_size_bytes);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CacheManager {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for CacheManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManager")
            .field("cache_dir", &self.inner.store.hub_dir())
            .field("home", &self.inner.store.home_dir())
            .field("strategy", &self.inner.strategy.name())
            .finish_non_exhaustive()
    }
}

/// Builds a [`CacheManager`]: directories, configuration, token, strategy, progress.
#[must_use]
pub struct CacheManagerBuilder {
    env: EnvFn,
    file: Option<PathBuf>,
    settings: Vec<(Key, String)>,
    token: TokenChoice,
    strategy: Option<Arc<dyn AcquisitionStrategy>>,
    progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for CacheManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheManagerBuilder").field("file", &self.file).field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Default for CacheManagerBuilder {
    fn default() -> Self {
        CacheManagerBuilder {
            env: Arc::new(|k| std::env::var(k).ok()),
            file: None,
            settings: Vec::new(),
            token: TokenChoice::Discover,
            strategy: None,
            progress: Arc::new(NoProgress),
        }
    }
}

impl CacheManagerBuilder {
    /// Reads environment variables (`HF_*`, `MODELCACHE_*`, `XDG_*`) through `env` instead
    /// of the process environment.
    pub fn env(mut self, env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// The hub cache directory (huggingface_hub's `cache_dir`).
    pub fn cache_dir(self, dir: impl AsRef<Path>) -> Self {
        let v = dir.as_ref().to_string_lossy().into_owned();
        self.set(Key::CacheDir, v)
    }

    /// The modelcache home (index, generic artifacts).
    pub fn home(self, dir: impl AsRef<Path>) -> Self {
        let v = dir.as_ref().to_string_lossy().into_owned();
        self.set(Key::Home, v)
    }

    /// Reads this configuration file instead of the default one.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Sets a configuration value explicitly (highest precedence), e.g.
    /// `set(ConfigKey::MaxSize, "10GiB")`; validated by [`build`](Self::build).
    pub fn set(mut self, key: Key, value: impl Into<String>) -> Self {
        self.settings.push((key, value.into()));
        self
    }

    /// Offline mode: never touch the network.
    pub fn offline(self, offline: bool) -> Self {
        self.set(Key::Offline, offline.to_string())
    }

    /// The Hub token (`None`: no token even if `HF_TOKEN` is set). Without this call the
    /// token is found as huggingface_hub finds it.
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = TokenChoice::Given(token.map(str::to_owned));
        self
    }

    /// Uses this strategy instead of the one the configuration selects.
    pub fn strategy(mut self, strategy: Arc<dyn AcquisitionStrategy>) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Receives download progress and lock waits.
    pub fn progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Loads the configuration and opens the cache (creating its directories, 0700).
    pub fn build(self) -> Result<CacheManager, CacheError> {
        let env = Arc::clone(&self.env);
        let mut loader = ConfigLoader::with_env(move |k| env(k));
        if let Some(f) = &self.file {
            loader = loader.config_file(f);
        }
        for (k, v) in &self.settings {
            loader = loader.set(*k, v.clone());
        }
        let config = loader.load()?;
        let c = &config.config;
        let utf8 = |p: &Path| {
            Utf8PathBuf::from_path_buf(p.to_owned())
                .map_err(|p| CacheError::DirectoryNotAccessible { path: p, source: "the path is not valid UTF-8".into() })
        };
        let mut store_config = StoreConfig::new(utf8(&c.cache_dir)?, utf8(&c.home)?);
        store_config.free_space_margin = c.free_space_margin.map(cache_core::ByteSize::bytes);
        let store = Store::open(store_config).map_err(|e| match e {
            cache_store::Error::Io { path, source, .. } => {
                CacheError::DirectoryNotAccessible { path: path.into_std_path_buf(), source: Box::new(source) }
            }
            other => other.into(),
        })?;
        let store = Arc::new(store);
        let strategy = self.strategy.clone().unwrap_or_else(|| default_strategy(c));
        tracing::debug!(cache_dir = %store.hub_dir(), strategy = strategy.name(), "cache opened");
        #[cfg(feature = "downloads")]
        let hub_config = {
            let token = match &self.token {
                TokenChoice::Given(t) => t.as_deref().and_then(cache_hf::token_from),
                TokenChoice::Discover => cache_hf::discover_token(&*self.env),
            };
            let mut h = cache_hf::HubConfig::new(c.endpoint.clone());
            h.token = token;
            h.offline = c.offline;
            h.revalidate_after = c.revalidate_after;
            h.parallelism = c.parallelism;
            h.fetch.read_timeout = c.download_timeout;
            h.fetch.retries = c.retries;
            h
        };
        Ok(CacheManager {
            inner: Arc::new(Inner {
                config,
                store,
                strategy,
                progress: self.progress,
                #[cfg(feature = "downloads")]
                hub: std::sync::OnceLock::new(),
                #[cfg(feature = "downloads")]
                hub_config,
            }),
        })
    }
}

/// Offline or `auto_download = false` → cache-only; otherwise the network (when built
/// with `downloads`).
fn default_strategy(c: &crate::config::Config) -> Arc<dyn AcquisitionStrategy> {
    if c.offline || !c.auto_download || !cfg!(feature = "downloads") {
        Arc::new(CacheOnlyAcquisition)
    } else {
        Arc::new(crate::strategy::NetworkAcquisition)
    }
}

fn parse<T: std::str::FromStr<Err = cache_core::Error>>(value: &str) -> Result<T, CacheError> {
    value.parse::<T>().map_err(CacheError::from)
}

impl CacheManager {
    /// The default directories and configuration (see DESIGN.md), from the process
    /// environment and the config file.
    pub fn new() -> Result<CacheManager, CacheError> {
        Self::builder().build()
    }

    /// The default configuration with this hub cache directory.
    pub fn with_cache_dir(dir: impl AsRef<Path>) -> Result<CacheManager, CacheError> {
        Self::builder().cache_dir(dir).build()
    }

    /// A builder.
    pub fn builder() -> CacheManagerBuilder {
        CacheManagerBuilder::default()
    }

    /// The effective configuration, with the source of every value
    /// ([`EffectiveConfig::explain`]).
    pub fn config(&self) -> &EffectiveConfig {
        &self.inner.config
    }

    /// The hub cache directory (canonical).
    pub fn cache_dir(&self) -> &Path {
        self.inner.store.hub_dir().as_std_path()
    }

    /// The modelcache home (canonical).
    pub fn home_dir(&self) -> &Path {
        self.inner.store.home_dir().as_std_path()
    }

    /// The acquisition strategy in use.
    pub fn strategy(&self) -> &Arc<dyn AcquisitionStrategy> {
        &self.inner.strategy
    }

    /// Satisfies any request (a file, a filtered snapshot, a URL) with the strategy, and
    /// prunes afterwards when something was downloaded, `auto_prune` is on and `max_size`
    /// is set.
    pub async fn fetch(&self, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        let ctx = AcquireContext { inner: &self.inner };
        if let Some(answer) = crate::strategy::cached_commit_file(&ctx, request) {
            return answer;
        }
        let acquired = self.inner.strategy.acquire(&ctx, request).await?;
        if acquired.from_cache {
            tracing::debug!(request = %request.describe(), "served from the cache");
        } else {
            tracing::info!(request = %request.describe(), files = acquired.files_downloaded, bytes = acquired.bytes_downloaded, "downloaded");
            self.auto_prune().await;
        }
        Ok(acquired)
    }

    async fn auto_prune(&self) {
        let c = &self.inner.config.config;
        if !(c.auto_prune && c.max_size.is_some()) {
            return;
        }
        let policy = c.eviction_policy();
        match self.blocking(move |m| m.prune_now(&policy, false)).await {
            Ok(r) if !r.evicted.is_empty() => tracing::info!(evicted = r.evicted.len(), bytes = r.bytes_freed, "auto-pruned"),
            Ok(_) => {}
            Err(e) => tracing::warn!("auto-prune failed: {e}"),
        }
    }

    /// Runs blocking cache work off the async threads when a tokio runtime is there.
    #[cfg_attr(not(feature = "downloads"), expect(clippy::unused_async, reason = "inline without a runtime"))]
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CacheManager) -> Result<T, CacheError> + Send + 'static,
    ) -> Result<T, CacheError> {
        #[cfg(feature = "downloads")]
        {
            if tokio::runtime::Handle::try_current().is_ok() {
                let m = self.clone();
                return tokio::task::spawn_blocking(move || f(&m))
                    .await
                    .map_err(|e| CacheError::Hub(cache_hf::Error::Task { reason: e.to_string() }))?;
            }
        }
        f(self)
    }

    /// The snapshot directory of a model (`org/name` or `org/name@revision`), every file
    /// of it cached.
    pub async fn get_model(&self, model_id: &str) -> Result<PathBuf, CacheError> {
        let r = ModelRef::parse(model_id, RepoType::Model)?;
        self.get_snapshot(&r, &[], &[]).await.map(|a| a.path)
    }

    /// A snapshot restricted to files matching `include` (all when empty) and not
    /// `exclude`.
    pub async fn get_snapshot(&self, model: &ModelRef, include: &[String], exclude: &[String]) -> Result<Acquired, CacheError> {
        let request = AcquireRequest::Snapshot {
            repo: model.repo.clone(),
            revision: model.revision_or_main(),
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        };
        self.fetch(&request).await
    }

    /// One file of a model repository at a revision (branch, tag or commit).
    pub async fn get_file(&self, repo: &str, revision: &str, path: &str) -> Result<PathBuf, CacheError> {
        let model = ModelRef::parse(repo, RepoType::Model)?;
        let request =
            AcquireRequest::File { repo: model.repo, revision: parse::<Revision>(revision)?, path: parse::<RepoPath>(path)? };
        self.fetch(&request).await.map(|a| a.path)
    }

    /// A file from any URL, verified against `sha256` (hex) when given.
    pub async fn get_url(&self, url: &str, sha256: Option<&str>) -> Result<PathBuf, CacheError> {
        let sha256 = sha256.map(|s| Sha256::from_hex(s.trim())).transpose()?;
        self.fetch(&AcquireRequest::Url { url: url.to_owned(), sha256, name: None }).await.map(|a| a.path)
    }

    /// Like [`get_url`](Self::get_url), stored under the file name `name` (see
    /// [`AcquireRequest::Url`]); an unsafe name is an invalid-input error.
    pub async fn get_url_named(&self, url: &str, sha256: Option<&str>, name: &str) -> Result<PathBuf, CacheError> {
        let sha256 = sha256.map(|s| Sha256::from_hex(s.trim())).transpose()?;
        self.fetch(&AcquireRequest::Url { url: url.to_owned(), sha256, name: Some(name.to_owned()) }).await.map(|a| a.path)
    }

    /// Whether the whole snapshot of a model (`org/name[@rev]`) is cached: every file of
    /// its recorded listing, or, without a listing, a non-empty snapshot folder. Never
    /// touches the network and does not count as a use.
    pub fn is_cached(&self, model_id: &str) -> bool {
        let Ok(r) = ModelRef::parse(model_id, RepoType::Model) else { return false };
        self.snapshot_cached(&r).unwrap_or(false)
    }

    fn snapshot_cached(&self, r: &ModelRef) -> Result<bool, CacheError> {
        let store = &self.inner.store;
        let Some(commit) = store.resolve(&r.repo, &r.revision_or_main())? else { return Ok(false) };
        let at = Revision::from(commit);
        if let Some(tree) = store.read_tree(&r.repo, &commit)? {
            for p in tree.files.keys() {
                if !store.is_cached(&r.repo, &at, p)? {
                    return Ok(false);
                }
            }
            return Ok(true);
        }
        let dir = cache_hf::offline::snapshot_dir(store, &r.repo, &commit);
        Ok(std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()))
    }
}
