//! Integration tests of cache-hf against the testkit hub on 127.0.0.1.
#![cfg(feature = "network")]
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod errors;
mod files;
mod freshness;
mod resume;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use cache_core::{Repo, RepoPath, Revision};
use cache_hf::{FetchConfig, HubCache, HubConfig, NoObserver, Observer};
use cache_store::{Store, StoreConfig};
use cache_testkit::{Content, RepoSpec, TestHub};
use camino::Utf8PathBuf;

/// A temporary cache (hub cache and home) shared by the `HubCache`s of one test.
pub(crate) struct Env {
    pub(crate) _tmp: tempfile::TempDir,
    pub(crate) store: Arc<Store>,
}

impl Env {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
        let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
        Env { _tmp: tmp, store: Arc::new(store) }
    }

    pub(crate) fn hub_dir(&self) -> Utf8PathBuf {
        self.store.hub_dir().to_owned()
    }

    /// A `HubCache` for `endpoint` with fast timeouts and no retries, adjusted by `f`.
    pub(crate) fn cache(&self, endpoint: &str, f: impl FnOnce(&mut HubConfig)) -> HubCache {
        let mut c = HubConfig::new(endpoint);
        c.fetch = fetch_config();
        f(&mut c);
        HubCache::new(&c, Arc::clone(&self.store)).unwrap()
    }
}

pub(crate) fn fetch_config() -> FetchConfig {
    let mut c = FetchConfig::default();
    c.connect_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
    c.retries = 0;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_cap = Duration::from_millis(20);
    c
}

pub(crate) fn observer() -> Arc<dyn Observer> {
    Arc::new(NoObserver)
}

/// An address nothing listens on.
pub(crate) fn dead_endpoint() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

pub(crate) fn model(id: &str) -> Repo {
    Repo::model(id.parse().unwrap())
}

pub(crate) fn rev(r: &str) -> Revision {
    r.parse().unwrap()
}

pub(crate) fn path(p: &str) -> RepoPath {
    p.parse().unwrap()
}

pub(crate) const LFS_SIZE: u64 = 200_000;

/// `org/model`: two regular files and an LFS file.
pub(crate) fn spec() -> RepoSpec {
    RepoSpec::model("org/model")
        .file("config.json", r#"{"hidden_size": 8}"#)
        .file("tokenizer.json", Content::generated(3000, 5))
        .lfs_file("model.safetensors", Content::generated(LFS_SIZE, 9))
}

pub(crate) async fn hub() -> TestHub {
    TestHub::start([spec()]).await
}
