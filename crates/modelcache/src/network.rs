//! The `downloads` edge: everything that needs tokio and the HTTP client lives here, so
//! the manager, the strategies and the errors read the same with and without the feature.
//! `network_off.rs` has the same items for a cache-only build.
//!
//! What differs between the two builds is only which strategies exist
//! ([`BUILT`]), how a request reaches the Hub, and where blocking work runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use crate::config::Config;
use crate::error::{CacheError, from_hub};
use crate::progress::{Progress, ProgressEvent};
use crate::strategy::{AcquireContext, artifact_key, filter};
use crate::types::{AcquireRequest, Acquired};

/// Whether this build can download (the network strategy exists).
pub(crate) const BUILT: bool = true;

/// The cargo features this build of the crate has (what `modelcache --version` reports).
#[cfg(not(feature = "remote"))]
pub const FEATURES: &[&str] = &["downloads"];
/// The cargo features this build of the crate has (what `modelcache --version` reports).
#[cfg(feature = "remote")]
pub const FEATURES: &[&str] = &["downloads", "remote"];

/// Where the Hub token comes from.
#[derive(Clone, Debug)]
pub(crate) enum TokenChoice {
    /// As huggingface_hub finds it (`HF_TOKEN`, the token file).
    Discover,
    /// Given (or explicitly none).
    Given(Option<String>),
}

/// The resolver, its settings and the progress sink of one manager.
pub(crate) struct Network {
    /// Built on first use: a cache hit that needs no network (offline, a commit, inside
    /// `revalidate_after`) never pays for a client (TLS roots are read from disk) — it
    /// matters for whole-process warm hits.
    hub: OnceLock<cache_hf::HubCache>,
    pub(crate) config: cache_hf::HubConfig,
    progress: Arc<dyn Progress>,
    /// Asked before the Hub (the team tiers), when configured.
    pub(crate) source: Option<Arc<dyn cache_hf::BlobSource>>,
}

impl Network {
    /// The Hub settings of `c`.
    pub(crate) fn new(
        c: &Config,
        token: TokenChoice,
        env: &dyn Fn(&str) -> Option<String>,
        progress: Arc<dyn Progress>,
    ) -> Network {
        let token = match token {
            TokenChoice::Given(t) => t.as_deref().and_then(cache_hf::token_from),
            TokenChoice::Discover => cache_hf::discover_token(env),
        };
        let mut h = cache_hf::HubConfig::new(c.endpoint.clone());
        h.token = token;
        h.offline = c.offline;
        h.revalidate_after = c.revalidate_after;
        // One setting bounds both levels: files of a snapshot in flight, and range
        // requests of one large file.
        h.parallelism = c.parallelism;
        h.fetch.parallelism = c.parallelism;
        h.fetch.read_timeout = c.read_timeout;
        h.fetch.download_timeout = c.download_timeout;
        h.fetch.retries = c.retries;
        Network { hub: OnceLock::new(), config: h, progress, source: None }
    }

    /// The resolver, built the first time it is needed.
    fn hub(&self, store: &Arc<cache_store::Store>) -> Result<&cache_hf::HubCache, CacheError> {
        if let Some(hub) = self.hub.get() {
            return Ok(hub);
        }
        let mut hub = cache_hf::HubCache::new(&self.config, Arc::clone(store)).map_err(|e| from_hub(e, "", Path::new("")))?;
        if let Some(source) = &self.source {
            hub = hub.with_source(Arc::clone(source));
        }
        // Another thread may have won the race: either value is equivalent.
        Ok(self.hub.get_or_init(|| hub))
    }

    /// Satisfies a request from the cache, downloading what is missing or stale.
    pub(crate) async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        let hub = self.hub(&ctx.inner.store)?;
        let repo = request.repo().map_or_else(String::new, ToString::to_string);
        let source = if matches!(request, AcquireRequest::Url { .. }) { "the server" } else { "the Hub" };
        let observer: Arc<dyn cache_hf::Observer> = Arc::new(Forward {
            progress: Arc::clone(&self.progress),
            repo,
            files: Mutex::default(),
            retries: self.config.fetch.retries,
            source,
        });
        acquire(hub, &observer, ctx, request).await
    }
}

impl Network {
    /// `lock`: the commit `revision` names now (no request for a commit) and that
    /// commit's listing (`trees/<commit>.json` when cached, else one listing request,
    /// then recorded there).
    pub(crate) async fn resolve_listing(
        &self,
        store: &Arc<cache_store::Store>,
        repo: &cache_core::Repo,
        revision: &cache_core::Revision,
    ) -> Result<(cache_core::CommitHash, cache_store::Tree), CacheError> {
        let hub = self.hub(store)?;
        let what = format!("{repo}@{revision}");
        let err = |e| from_hub(e, &what, Path::new(""));
        if hub.is_offline() {
            return Err(CacheError::offline_miss(
                what.clone(),
                crate::error::DOWNLOADS_OFF.to_owned(),
                store.hub_dir().as_std_path(),
            ));
        }
        let commit = match revision.commit() {
            Some(c) => c,
            None => hub.client().resolve_revision(repo, revision).await.map_err(err)?,
        };
        if let Some(tree) = store.read_tree(repo, &commit)? {
            return Ok((commit, tree));
        }
        let files = hub.client().list_files(repo, &cache_core::Revision::from(commit)).await.map_err(err)?;
        let tree = cache_hf::to_tree(&files);
        store.write_tree(repo, &commit, &tree)?;
        Ok((commit, tree))
    }

    /// `sync`: downloads these files of a locked commit through the normal download path
    /// (see [`cache_hf::HubCache::fetch_listed`]). Returns the bytes received.
    pub(crate) async fn fetch_locked(
        &self,
        store: &Arc<cache_store::Store>,
        repo: &cache_core::Repo,
        commit: cache_core::CommitHash,
        files: &[(cache_core::RepoPath, cache_core::Etag, u64)],
    ) -> Result<u64, CacheError> {
        let hub = self.hub(store)?;
        let observer: Arc<dyn cache_hf::Observer> = Arc::new(Forward {
            progress: Arc::clone(&self.progress),
            repo: repo.to_string(),
            files: Mutex::default(),
            retries: self.config.fetch.retries,
            source: "the Hub",
        });
        let what = format!("{repo}@{commit}");
        let o = hub.fetch_listed(repo, commit, files, &observer).await.map_err(|e| from_hub(e, &what, Path::new("")))?;
        Ok(o.bytes_downloaded)
    }
}

async fn acquire(
    hub: &cache_hf::HubCache,
    observer: &Arc<dyn cache_hf::Observer>,
    ctx: &AcquireContext<'_>,
    request: &AcquireRequest,
) -> Result<Acquired, CacheError> {
    let hub_err = |e| from_hub(e, &request.describe(), &ctx.placement(request));
    match request {
        AcquireRequest::File { repo, revision, path } => {
            let o = hub.get_file(repo, revision, path, observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.path.into_std_path_buf(),
                commit: Some(o.commit.to_string()),
                from_cache: o.from_cache,
                files: 1,
                files_downloaded: usize::from(!o.from_cache),
                bytes_downloaded: o.bytes_downloaded,
                unmatched_include: Vec::new(),
            })
        }
        AcquireRequest::Snapshot { repo, revision, include, exclude } => {
            let filter = filter(include, exclude)?;
            let o = hub.snapshot(repo, revision, &filter, observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.dir.into_std_path_buf(),
                commit: Some(o.commit.to_string()),
                from_cache: o.downloaded == 0,
                files: o.files,
                files_downloaded: o.downloaded,
                bytes_downloaded: o.bytes_downloaded,
                unmatched_include: Vec::new(),
            })
        }
        AcquireRequest::Url { url, sha256, name } => {
            let key = artifact_key(url, *sha256, name.as_deref())?;
            let o = hub.get_artifact(&key, observer).await.map_err(hub_err)?;
            Ok(Acquired {
                path: o.path.into_std_path_buf(),
                commit: None,
                from_cache: o.from_cache,
                files: 1,
                files_downloaded: usize::from(!o.from_cache),
                bytes_downloaded: o.bytes_downloaded,
                unmatched_include: Vec::new(),
            })
        }
    }
}

/// Runs blocking cache work off the async threads when a tokio runtime is there, inline
/// otherwise.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    tokio::task::spawn_blocking(work).await.map_err(|e| CacheError::Hub(cache_hf::Error::Task { reason: e.to_string() }))?
}

/// The resolver errors only a downloading build has (transfers), mapped for `model_id`.
pub(crate) fn from_hub_transfer(e: cache_hf::Error, model_id: &str) -> CacheError {
    match e {
        cache_hf::Error::Fetch { what, source } => from_fetch(model_id, &what, source),
        other => CacheError::Hub(other),
    }
}

fn from_fetch(model_id: &str, what: &str, source: cache_fetch::Error) -> CacheError {
    match source {
        cache_fetch::Error::DiskFull { needed, available, .. } => {
            CacheError::DiskFull { needed, available: available.unwrap_or(0) }
        }
        cache_fetch::Error::ChecksumMismatch { expected, actual, .. } => {
            CacheError::ChecksumMismatch { model_id: model_id.to_owned(), expected, actual }
        }
        cache_fetch::Error::SizeMismatch { expected, actual, .. } => CacheError::ChecksumMismatch {
            model_id: model_id.to_owned(),
            expected: format!("{expected} bytes"),
            actual: format!("{actual} bytes"),
        },
        cache_fetch::Error::Http { status: 429, message, url, .. } => {
            let quoted =
                message.as_deref().map(|m| format!(": \"{}\"", m.chars().take(200).collect::<String>())).unwrap_or_default();
            CacheError::DownloadFailed {
                model_id: model_id.to_owned(),
                reason: format!("could not {what}: rate limited by `{url}` (HTTP 429) after every retry{quoted}"),
                offline: false,
                suggestion: "the server limits how fast this client may ask: wait a few minutes and run the command again (downloads resume); set `HF_TOKEN` for a higher limit, or lower `parallelism` (`MODELCACHE_PARALLELISM=2`)".to_owned(),
                source: None,
            }
        }
        source => {
            // A timeout's own hint names the setting to raise.
            let suggestion = if source.is_transient() && !matches!(source, cache_fetch::Error::Timeout { .. }) {
                "check the network connection or `HF_ENDPOINT`, then run the command again (downloads resume); use `--offline` to work from the cache".to_owned()
            } else {
                source.hint().unwrap_or_else(|| "check the network connection or `HF_ENDPOINT`".to_owned())
            };
            CacheError::DownloadFailed {
                model_id: model_id.to_owned(),
                reason: format!("could not {what}"),
                offline: false,
                suggestion,
                source: Some(Box::new(source)),
            }
        }
    }
}

/// Forwards the resolver's transfer events and lock waits of one request to a
/// [`Progress`], and reports each finished transfer as a `download` event (its duration
/// from its first `Started`, and its retries), retry reasons said for a person (and
/// logged at `info`, so `-v` shows them).
struct Forward {
    progress: Arc<dyn Progress>,
    /// The request's repository (`org/name`; empty for a URL).
    repo: String,
    /// Per file in flight: when it started and how often it was retried.
    files: Mutex<HashMap<String, (Instant, u32)>>,
    /// The `retries` setting, for "attempt 1 of 5".
    retries: u32,
    /// Who answers: `the Hub`, or `the server` of a URL.
    source: &'static str,
}

impl Forward {
    fn files(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, u32)>> {
        self.files.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn track(&self, event: &cache_fetch::Event<'_>) {
        use cache_fetch::Event as E;
        match *event {
            E::Started { label, .. } => {
                self.files().entry(label.to_owned()).or_insert((Instant::now(), 0));
            }
            E::Retrying { label, .. } => {
                self.files().entry(label.to_owned()).or_insert((Instant::now(), 0)).1 += 1;
            }
            E::Finished { label, bytes } => {
                let (started, retries) = self.files().remove(label).unwrap_or((Instant::now(), 0));
                tracing::info!(
                    repo = %self.repo,
                    file = %label,
                    bytes,
                    duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    source = "hub",
                    retries,
                    "download"
                );
            }
            _ => {}
        }
    }
}

/// `HTTP 429` → `rate limited by the Hub (429)`; other reasons as they are.
pub(crate) fn retry_reason(reason: &str, source: &str) -> String {
    let Some(status) = reason.strip_prefix("HTTP ").and_then(|s| s.trim().parse::<u16>().ok()) else {
        return reason.to_owned();
    };
    match status {
        429 => format!("rate limited by {source} ({status})"),
        408 | 504 => format!("{source} timed out ({status})"),
        _ if status >= 500 => format!("{source} failed ({status})"),
        _ => format!("{source} answered {status}"),
    }
}

impl cache_hf::Observer for Forward {
    fn transfer(&self, event: &cache_fetch::Event<'_>) {
        use cache_fetch::Event as E;
        self.track(event);
        let e = match *event {
            E::Started { label, total, resumed_from } => ProgressEvent::Started { label, total, resumed_from },
            E::Sized { label, total } => ProgressEvent::Sized { label, total },
            E::Advanced { label, bytes } => ProgressEvent::Advanced { label, bytes },
            E::Retrying { label, attempt, delay, reason } => {
                let reason = retry_reason(reason, self.source);
                let retries = self.retries.max(attempt);
                let delay_text = if delay < std::time::Duration::from_secs(1) {
                    format!("{} ms", delay.as_millis())
                } else {
                    format!("{:.1} s", delay.as_secs_f64())
                };
                tracing::info!("{label}: {reason}, retrying in {delay_text} [{attempt}/{retries}]");
                self.progress.event(&ProgressEvent::Retrying { label, attempt, retries, delay, reason: &reason });
                return;
            }
            E::Restarted { label, discarded } => ProgressEvent::Restarted { label, discarded },
            E::Finished { label, bytes } => ProgressEvent::Finished { label, bytes },
            _ => return,
        };
        self.progress.event(&e);
    }

    fn planned(&self, label: &str, files: usize, cached: usize, bytes: Option<u64>) {
        self.progress.event(&ProgressEvent::Planned { label, files, cached, bytes });
    }

    fn lock_wait(&self, label: &str, wait: &cache_store::LockWait<'_>) {
        self.progress.event(&ProgressEvent::WaitingForLock {
            label,
            lock_file: wait.lock_file.as_std_path(),
            holder: wait.holder,
            incomplete_bytes: wait.incomplete_bytes,
            speed: wait.speed,
            held_for: wait.record.and_then(|r| std::time::SystemTime::now().duration_since(r.since).ok()),
            waited: wait.waited,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_reasons_are_said_for_a_person() {
        assert_eq!(retry_reason("HTTP 429", "the Hub"), "rate limited by the Hub (429)");
        assert_eq!(retry_reason("HTTP 503", "the server"), "the server failed (503)");
        assert_eq!(retry_reason("HTTP 408", "the Hub"), "the Hub timed out (408)");
        assert_eq!(retry_reason("connection reset", "the Hub"), "connection reset");
    }

    #[test]
    fn a_rate_limit_that_outlasts_the_retries_is_named_and_quoted() {
        let source = cache_fetch::Error::Http {
            status: 429,
            code: None,
            message: Some("You have exceeded our hourly quota".into()),
            url: "http://h/api/models/a/b".into(),
        };
        let e = from_fetch("a/b", "list the files", source);
        assert_eq!(e.kind().exit_code(), 3);
        let text = e.to_string();
        assert!(text.contains("rate limited") && text.contains("\"You have exceeded our hourly quota\""), "{text}");
        assert!(!e.hint().contains("network"), "{}", e.hint());
    }
}
