//! Integration tests of the facade: its behavioural contracts against the testkit hub on
//! 127.0.0.1 (with `downloads`), and cache-only operation (with and without it).
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

#[cfg(feature = "downloads")]
mod artifacts;
mod cache_only;
mod config;
#[cfg(feature = "downloads")]
mod contracts;
mod doctor;
#[cfg(feature = "downloads")]
mod holds;
#[cfg(feature = "downloads")]
mod lockfile;
#[cfg(feature = "downloads")]
mod maintenance;
#[cfg(feature = "downloads")]
mod observed;
#[cfg(feature = "downloads")]
mod processes;
#[cfg(feature = "downloads")]
mod properties;
#[cfg(feature = "downloads")]
mod strategies;
#[cfg(feature = "remote")]
mod team;
mod tokenizer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cache_core::{CommitHash, Etag, GitSha1, Repo, RepoPath, Revision};
use cache_store::{CommitRequest, Store, StoreConfig};
use modelcache::{CacheManager, CacheManagerBuilder, ConfigKey};

/// A temporary hub cache, home and `$HOME` (so no real configuration is read).
pub(crate) struct Env {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) vars: HashMap<String, String>,
}

impl Env {
    pub(crate) fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("user");
        std::fs::create_dir_all(&home).unwrap();
        let mut vars = HashMap::new();
        vars.insert("HOME".to_owned(), home.to_str().unwrap().to_owned());
        Env { tmp, vars }
    }

    pub(crate) fn hub_dir(&self) -> PathBuf {
        self.tmp.path().join("hub")
    }

    pub(crate) fn home_dir(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// Adds a variable to the injected environment.
    pub(crate) fn var(mut self, k: &str, v: &str) -> Self {
        self.vars.insert(k.to_owned(), v.to_owned());
        self
    }

    /// A builder with both directories, the injected environment, no retries.
    pub(crate) fn builder(&self) -> CacheManagerBuilder {
        let vars = self.vars.clone();
        CacheManager::builder()
            .env(move |k| vars.get(k).cloned())
            .cache_dir(self.hub_dir())
            .home(self.home_dir())
            .set(ConfigKey::Retries, "0")
            .set(ConfigKey::ReadTimeout, "5s")
    }

    /// A manager on `endpoint`.
    #[cfg(feature = "downloads")]
    pub(crate) fn manager(&self, endpoint: &str) -> CacheManager {
        self.builder().set(ConfigKey::Endpoint, endpoint).build().unwrap()
    }

    /// Commits `files` into the cache directly through the store (as another tool would),
    /// pointing `main` at `commit`.
    pub(crate) fn seed(&self, repo: &Repo, commit: CommitHash, files: &[(&str, &[u8])]) {
        let store = Store::open(StoreConfig::new(
            camino::Utf8PathBuf::from_path_buf(self.hub_dir()).unwrap(),
            camino::Utf8PathBuf::from_path_buf(self.home_dir()).unwrap(),
        ))
        .unwrap();
        for (path, bytes) in files {
            let etag = Etag::GitSha1(GitSha1::of(bytes));
            let req = CommitRequest::new(repo.clone(), commit, path.parse::<RepoPath>().unwrap(), etag, bytes.len() as u64)
                .with_ref(Revision::main());
            let lock = store.lock_blob(repo, &etag, &mut |_| {}).unwrap();
            if store.has_blob(repo, &etag).unwrap() {
                store.link_existing(&lock, &req).unwrap();
                continue;
            }
            let staging = store.stage(&lock, Some(bytes.len() as u64)).unwrap();
            staging.write_at(bytes, 0).unwrap();
            store.commit(staging, &req).unwrap();
        }
    }
}

pub(crate) fn commit(n: u32) -> CommitHash {
    format!("{n:040x}").parse().unwrap()
}

pub(crate) fn model(id: &str) -> Repo {
    Repo::model(id.parse().unwrap())
}

/// Every file under `dir` (recursively, following nothing), relative.
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[cfg(feature = "downloads")]
pub(crate) mod hub {
    use cache_testkit::{Content, RepoSpec, TestHub};

    pub(crate) const WEIGHTS: u64 = 120_000;

    /// `org/model`: config, tokenizer and LFS weights; `org/other` and `org/third`.
    pub(crate) fn specs() -> Vec<RepoSpec> {
        vec![
            RepoSpec::model("org/model")
                .file("config.json", r#"{"hidden_size": 8}"#)
                .file("tokenizer.json", Content::generated(2000, 5))
                .lfs_file("model.safetensors", Content::generated(WEIGHTS, 9)),
            RepoSpec::model("org/other").file("config.json", "{}").file("vocab.txt", "a\nb\n"),
            RepoSpec::model("org/third")
                .file("tokenizer.model", Content::generated(3000, 1))
                .file("x.bin", Content::generated(700, 2)),
        ]
    }

    pub(crate) async fn start() -> TestHub {
        TestHub::start(specs()).await
    }

    /// An endpoint nothing listens on.
    pub(crate) fn dead() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        format!("http://127.0.0.1:{port}")
    }
}
