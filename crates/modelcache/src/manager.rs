//! `CacheManager` and its builder: opening the cache from the layered configuration,
//! choosing the acquisition strategy, and the get-style operations.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cache_core::{FailureCause, RepoPath, RepoType, Revision, Sha256};
use cache_store::{Store, StoreConfig};
use camino::Utf8PathBuf;

use crate::config::{ConfigLoader, EffectiveConfig, Key};
use crate::error::{CacheError, ErrorKind};
use crate::network::{Network, TokenChoice};
use crate::progress::{NoProgress, Progress, ProgressEvent};
use crate::strategy::{AcquireContext, AcquisitionInfo, AcquisitionStrategy, select_strategy};
use crate::token_source::TokenSource;
use crate::types::{AcquireRequest, Acquired, ModelRef};

type EnvFn = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What every clone of a manager shares.
pub(crate) struct Inner {
    pub(crate) config: EffectiveConfig,
    pub(crate) store: Arc<Store>,
    pub(crate) strategy: Arc<dyn AcquisitionStrategy>,
    /// The resolver (built on first use) and the progress sink; nothing in a cache-only
    /// build.
    pub(crate) network: Network,
    /// Where hits are reported (`ProgressEvent::FromCache`), in both builds.
    pub(crate) progress: Arc<dyn Progress>,
    /// Where the Hub token comes from (named in refusals, never the value).
    pub(crate) token_source: TokenSource,
    /// The team tiers, when configured.
    #[cfg(feature = "remote")]
    pub(crate) team: Option<Arc<crate::team::TeamTier>>,
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
    remotes: Vec<String>,
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
            remotes: Vec::new(),
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

    /// Adds a team tier, `URL[:MODE]` (`s3://bucket/prefix:ro`, `file:///mnt/models`; mode
    /// `rw` when absent), tried in the order added; replaces the configured tiers
    /// (`remote` in config.toml, `MODELCACHE_REMOTE`). Needs the `remote` feature to be
    /// used; `none` turns every tier off.
    pub fn remote(mut self, tier: &str) -> Self {
        self.remotes.push(tier.to_owned());
        self
    }

    /// Receives download progress, lock waits and hits (`ProgressEvent::FromCache`).
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
        if !self.remotes.is_empty() {
            loader = loader.set(Key::Remote, self.remotes.join(","));
        }
        let config = loader.load()?;
        let c = &config.config;
        let utf8 = |p: &Path| {
            Utf8PathBuf::from_path_buf(p.to_owned())
                .map_err(|p| CacheError::DirectoryNotAccessible { path: p, source: "the path is not valid UTF-8".into() })
        };
        let mut store_config = StoreConfig::new(utf8(&c.cache_dir)?, utf8(&c.home)?)
            .lock_stall_timeout(c.lock_stall_timeout)
            .lock_mode(c.lock_mode)
            .lock_lease(c.lock_lease);
        store_config.free_space_margin = c.free_space_margin.map(cache_core::ByteSize::bytes);
        // huggingface_hub's switches, read as it reads them: its shared blob store is used
        // unless either disables it; symlinks off means copies in `snapshots/`.
        let hf_set = |name: &str| (self.env)(name).is_some_and(|v| crate::config::hf_truthy(&v));
        store_config = store_config
            .shared_blobs(!hf_set("HF_HUB_DISABLE_SHARED_BLOBS") && !hf_set("HF_HUB_DISABLE_XET"))
            .force_copy(hf_set("HF_HUB_DISABLE_SYMLINKS"));
        let store = Store::open(store_config).map_err(|e| match e {
            cache_store::Error::Io { path, source, .. } => {
                CacheError::DirectoryNotAccessible { path: path.into_std_path_buf(), source: Box::new(source) }
            }
            other => other.into(),
        })?;
        let store = Arc::new(store);
        let strategy = self.strategy.clone().unwrap_or_else(|| select_strategy(c));
        tracing::debug!(cache_dir = %store.hub_dir(), strategy = strategy.name(), "cache opened");
        let token_source = match &self.token {
            TokenChoice::Given(t) => TokenSource::given(t.as_deref()),
            TokenChoice::Discover => TokenSource::discover(&*self.env),
        };
        #[cfg_attr(not(feature = "remote"), expect(unused_mut, reason = "only the team tier is attached afterwards"))]
        let mut network = Network::new(c, self.token, &*self.env, Arc::clone(&self.progress));
        #[cfg(feature = "remote")]
        let team = crate::team::TeamTier::open(c, &*self.env, &store, Arc::clone(&self.progress))?.map(Arc::new);
        #[cfg(feature = "remote")]
        if let Some(t) = &team {
            network.source = Some(Arc::clone(t) as Arc<dyn cache_hf::BlobSource>);
        }
        Ok(CacheManager {
            inner: Arc::new(Inner {
                config,
                store,
                strategy,
                network,
                progress: self.progress,
                token_source,
                #[cfg(feature = "remote")]
                team,
            }),
        })
    }
}

fn parse<T: std::str::FromStr<Err = cache_core::Error>>(value: &str) -> Result<T, CacheError> {
    value.parse::<T>().map_err(CacheError::from)
}

impl CacheManager {
    /// The default directories and configuration (see ARCHITECTURE.md), from the process
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

    /// What the strategy in use does, whether it works in this build and what it needs.
    pub fn acquisition_info(&self) -> AcquisitionInfo {
        self.inner.strategy.acquisition_info()
    }

    /// Satisfies any request (a file, a filtered snapshot, a URL) with the strategy, and
    /// prunes afterwards when something was downloaded, `auto_prune` is on and `max_size`
    /// or `max_age` is set.
    ///
    /// The request's repository (or URL artifact) is held from the first lookup until
    /// this returns, auto-prune included, so no process removes or evicts what it returns
    /// meanwhile; the use of every returned file is recorded at the return, so
    /// `in_use_grace` protects it from then on (see [`hold`](Self::hold)). A snapshot is
    /// returned only when every file of its filtered listing is there. A file at a commit
    /// that one lookup finds cached and sound is answered from that lookup alone (the
    /// hold could only cover the instant before the return; see `hold.rs`).
    pub async fn fetch(&self, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        let started = std::time::Instant::now();
        if let Some(acquired) = crate::strategy::sound_commit_file(&AcquireContext { inner: &self.inner }, request) {
            // Its use was recorded by that lookup, a moment ago.
            self.report_from_cache(request, &acquired, started);
            return Ok(acquired);
        }
        let lease = self.lease_for(request)?;
        let result = self.fetch_held(request, started).await.map_err(|e| self.with_near_miss(request, e));
        drop(lease);
        let offline = self.inner.config.config.offline || !self.inner.strategy.downloads();
        if offline {
            return result.map_err(|e| {
                let (why, undo) = self.why_downloads_are_off();
                e.downloads_off().downloads_off_because(&why, &undo)
            });
        }
        if let Err(e) = &result {
            self.count_failure(e);
        }
        result.map_err(|e| e.with_token_source(&self.inner.token_source))
    }

    /// Where the Hub token comes from: `--token` (a builder call), `HF_TOKEN`, a token
    /// file, or none.
    pub fn token_source(&self) -> &TokenSource {
        &self.inner.token_source
    }

    /// Why downloads are off, naming the setting and where it came from, and how to turn
    /// them on, such as "offline mode was chosen (`HF_HUB_OFFLINE` is set)" and "unset `HF_HUB_OFFLINE`".
    fn why_downloads_are_off(&self) -> (String, String) {
        let c = &self.inner.config;
        let from = |key: Key, what: &str, flag: &str, undo_flag: &str| match c.source(key) {
            crate::config::Source::Env(v) => (format!("{what} (`{v}` is set)"), format!("unset `{v}`")),
            crate::config::Source::File(p) => (
                format!("{what} (`{}` in `{}`)", key.name(), p.display()),
                format!("change `{}` in `{}`", key.name(), p.display()),
            ),
            _ => (format!("{what} (`{flag}`)"), undo_flag.to_owned()),
        };
        if c.config.offline {
            from(Key::Offline, "offline mode was chosen", "--offline", "drop `--offline`")
        } else if c.config.strategy == Some(crate::strategy::StrategyKind::CacheOnly) {
            from(Key::Strategy, "the `cache-only` strategy was chosen", "--strategy cache-only", "pass `--strategy network`")
        } else if !c.config.auto_download {
            from(Key::AutoDownload, "automatic downloads are off", "auto_download = false", "set `auto_download = true`")
        } else if !crate::network::BUILT {
            (
                "this build cannot download (no `downloads` feature)".to_owned(),
                "use a build with the `downloads` feature".to_owned(),
            )
        } else {
            (
                format!("the `{}` strategy was chosen, which never downloads", self.inner.strategy.name()),
                "choose a strategy that downloads, such as `network`,".to_owned(),
            )
        }
    }

    /// Counts a failed request by cause; misses and invalid input are not download failures.
    fn count_failure(&self, e: &CacheError) {
        let cause = match e.kind() {
            ErrorKind::Remote => FailureCause::Remote,
            ErrorKind::Integrity => FailureCause::Integrity,
            ErrorKind::DiskFull => FailureCause::DiskFull,
            ErrorKind::Other => FailureCause::Other,
            _ => return,
        };
        if let Err(e) = self.inner.store.record_failure(cause) {
            tracing::warn!("could not count a failed download: {e}");
        }
    }

    async fn fetch_held(&self, request: &AcquireRequest, started: std::time::Instant) -> Result<Acquired, CacheError> {
        let ctx = AcquireContext { inner: &self.inner };
        let mut acquired = match crate::strategy::cached_commit_file(&ctx, request) {
            Some(answer) => answer?,
            None => self.inner.strategy.acquire(&ctx, request).await?,
        };
        if let AcquireRequest::Snapshot { repo, include, .. } = request {
            acquired.unmatched_include = self.unmatched_include(repo, acquired.commit.as_deref(), include);
        }
        self.report_from_cache(request, &acquired, started);
        if !acquired.from_cache {
            tracing::info!(request = %request.describe(), files = acquired.files_downloaded, bytes = acquired.bytes_downloaded, "downloaded");
            #[cfg(feature = "remote")]
            self.push_in_background(request, &acquired);
            // Still under the lease: this request's own repo is skipped.
            self.auto_prune().await;
        }
        self.record_returned(request, &acquired)?;
        Ok(acquired)
    }

    /// Logs and reports an answer for which this process transferred nothing: from the
    /// cache, or from another process's download it waited for.
    fn report_from_cache(&self, request: &AcquireRequest, acquired: &Acquired, started: std::time::Instant) {
        if !acquired.from_cache && acquired.bytes_downloaded != 0 {
            return;
        }
        let label = request.label();
        tracing::info!(
            repo = %request.repo().map_or_else(String::new, ToString::to_string),
            file = %label,
            bytes = 0_u64,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            source = "cache",
            retries = 0_u32,
            "download"
        );
        self.inner.progress.event(&ProgressEvent::FromCache { label: &label, path: &acquired.path });
    }

    /// The `include` globs that match no file of the listing of `repo` at `commit` (none
    /// when the listing is not cached: nothing is claimed without it).
    fn unmatched_include(&self, repo: &cache_core::Repo, commit: Option<&str>, include: &[String]) -> Vec<String> {
        let tree = commit
            .and_then(|c| c.parse::<cache_core::CommitHash>().ok())
            .and_then(|c| self.inner.store.read_tree(repo, &c).ok().flatten());
        let Some(tree) = tree else { return Vec::new() };
        include
            .iter()
            .filter(|glob| {
                let Ok(filter) = crate::strategy::filter(std::slice::from_ref(*glob), &[]) else { return false };
                !tree.files.keys().any(|p| filter.matches(p.as_str()))
            })
            .cloned()
            .collect()
    }

    /// After a download: a size limit is enforced at once (with the age limit, when set);
    /// an age limit alone is applied by the periodic cleanup, at most once per
    /// `cleanup_interval` (see `cleanup.rs`).
    async fn auto_prune(&self) {
        let c = &self.inner.config.config;
        if !c.auto_prune {
            return;
        }
        if c.max_size.is_none() {
            self.cleanup_when_due().await;
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
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&CacheManager) -> Result<T, CacheError> + Send + 'static,
    ) -> Result<T, CacheError> {
        let m = self.clone();
        crate::network::blocking(move || f(&m)).await
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

#[cfg(all(test, feature = "downloads"))]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Key;

    fn hub_config(settings: &[(Key, &str)]) -> cache_hf::HubConfig {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let mut b = CacheManager::builder().env(|_| None).cache_dir(tmp.path().join("hub")).home(tmp.path().join("home"));
        for (k, v) in settings {
            b = b.set(*k, *v);
        }
        b.build().expect("a manager").inner.network.config.clone()
    }

    #[test]
    fn parallelism_and_both_timeouts_reach_the_transfers() {
        let h = hub_config(&[(Key::Parallelism, "3"), (Key::DownloadTimeout, "2h"), (Key::ReadTimeout, "7s")]);
        assert_eq!((h.parallelism, h.fetch.parallelism), (3, 3), "files in flight and ranges of one file");
        assert_eq!(h.fetch.download_timeout, Some(Duration::from_secs(2 * 3600)));
        assert_eq!(h.fetch.read_timeout, Duration::from_secs(7));
        let h = hub_config(&[]);
        assert_eq!((h.fetch.download_timeout, h.fetch.read_timeout), (None, Duration::from_secs(30)));
    }
}
