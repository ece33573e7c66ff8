//! The cache-only edge (built without `downloads`): the same items as `network.rs`, so
//! the manager, the strategies and the errors read the same in both builds. Nothing here
//! touches the network; async functions run inline.

use std::sync::Arc;

use crate::config::Config;
use crate::error::CacheError;
use crate::progress::Progress;
use crate::strategy::AcquireContext;
use crate::types::{AcquireRequest, Acquired};

/// Whether this build can download (the network strategy exists).
pub(crate) const BUILT: bool = false;

/// The cargo features this build of the crate has (what `modelcache --version` reports).
pub const FEATURES: &[&str] = &[];

/// Where the Hub token would come from (unused: nothing is sent anywhere).
#[derive(Clone, Debug)]
pub(crate) enum TokenChoice {
    /// As huggingface_hub finds it.
    Discover,
    /// Given (or explicitly none).
    /// (Read only to name its source in `config`.)
    Given(Option<String>),
}

/// Nothing to keep: there is no resolver in this build.
pub(crate) struct Network;

impl Network {
    /// Takes what a downloading build would use, and drops it.
    pub(crate) fn new(_: &Config, _: TokenChoice, _: &dyn Fn(&str) -> Option<String>, _: Arc<dyn Progress>) -> Network {
        Network
    }

    /// Always fails: this build cannot download.
    #[expect(clippy::unused_async, reason = "the same signature as the downloading build")]
    pub(crate) async fn acquire(&self, _: &AcquireContext<'_>, _: &AcquireRequest) -> Result<Acquired, CacheError> {
        Err(CacheError::StrategyUnavailable {
            strategy: "network".to_owned(),
            reason: "modelcache was built without the `downloads` feature".to_owned(),
        })
    }
}

impl Network {
    /// `lock` needs the Hub: unavailable in this build.
    #[expect(clippy::unused_async, reason = "the same signature as the downloading build")]
    pub(crate) async fn resolve_listing(
        &self,
        _: &Arc<cache_store::Store>,
        repo: &cache_core::Repo,
        revision: &cache_core::Revision,
    ) -> Result<(cache_core::CommitHash, cache_store::Tree), CacheError> {
        Err(CacheError::StrategyUnavailable {
            strategy: "network".to_owned(),
            reason: format!("resolving `{repo}@{revision}` needs the `downloads` feature"),
        })
    }

    /// `sync` cannot download in this build.
    #[expect(clippy::unused_async, reason = "the same signature as the downloading build")]
    pub(crate) async fn fetch_locked(
        &self,
        _: &Arc<cache_store::Store>,
        repo: &cache_core::Repo,
        commit: cache_core::CommitHash,
        _: &[(cache_core::RepoPath, cache_core::Etag, u64)],
    ) -> Result<u64, CacheError> {
        Err(CacheError::StrategyUnavailable {
            strategy: "network".to_owned(),
            reason: format!("downloading files of `{repo}@{commit}` needs the `downloads` feature"),
        })
    }
}

/// Runs `work` inline: there is no runtime to keep free.
#[expect(clippy::unused_async, reason = "the same signature as the downloading build")]
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CacheError> + Send + 'static,
) -> Result<T, CacheError> {
    work()
}

/// Without transfers, every other resolver error is passed on as it is.
pub(crate) fn from_hub_transfer(e: cache_hf::Error, _: &str) -> CacheError {
    CacheError::Hub(e)
}
