//! Shared helpers: a temporary cache, committing bytes, re-executing this binary as a child.

use std::process::{Child, Command, Stdio};

use cache_core::{CommitHash, Etag, GitSha1, Repo, RepoPath, Revision, Sha256};
use cache_store::{CommitRequest, Store, StoreConfig};
use camino::{Utf8Path, Utf8PathBuf};

/// Set in a child process: the role it plays.
pub(crate) const CHILD_ENV: &str = "CACHE_STORE_TEST_CHILD";

pub(crate) struct TestCache {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) store: Store,
}

impl TestCache {
    pub(crate) fn new() -> Self {
        Self::with(|c| c)
    }

    pub(crate) fn with(f: impl FnOnce(StoreConfig) -> StoreConfig) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(f(config(root(&tmp)))).unwrap();
        TestCache { tmp, store }
    }

    pub(crate) fn root(&self) -> Utf8PathBuf {
        root(&self.tmp)
    }

    pub(crate) fn hub(&self) -> Utf8PathBuf {
        self.root().join("hub")
    }

    pub(crate) fn reopen(&mut self) {
        let cfg = self.store.config().clone();
        let old = std::mem::replace(&mut self.store, Store::open(cfg).unwrap());
        drop(old);
    }
}

pub(crate) fn root(tmp: &tempfile::TempDir) -> Utf8PathBuf {
    Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap()
}

#[expect(clippy::needless_pass_by_value, reason = "callers build the root inline")]
pub(crate) fn config(root: Utf8PathBuf) -> StoreConfig {
    StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)
}

pub(crate) fn repo(id: &str) -> Repo {
    Repo::model(id.parse().unwrap())
}

pub(crate) fn commit(n: u32) -> CommitHash {
    format!("{n:040x}").parse().unwrap()
}

pub(crate) fn path(p: &str) -> RepoPath {
    p.parse().unwrap()
}

pub(crate) fn rev(r: &str) -> Revision {
    r.parse().unwrap()
}

/// The etag the Hub gives these bytes: sha256 for "LFS" files (`lfs`), git-sha1 otherwise.
pub(crate) fn etag_of(bytes: &[u8], lfs: bool) -> Etag {
    if lfs { Etag::Sha256(Sha256::of(bytes)) } else { Etag::GitSha1(GitSha1::of(bytes)) }
}

/// Runs the download protocol for `bytes` (no ref update).
pub(crate) fn put(store: &Store, repo: &Repo, c: CommitHash, p: &str, bytes: &[u8]) -> Utf8PathBuf {
    put_req(
        store,
        CommitRequest::new(repo.clone(), c, path(p), etag_of(bytes, bytes.len().is_multiple_of(2)), bytes.len() as u64),
        bytes,
    )
}

#[expect(clippy::needless_pass_by_value, reason = "callers build the request inline")]
pub(crate) fn put_req(store: &Store, req: CommitRequest, bytes: &[u8]) -> Utf8PathBuf {
    let lock = store.lock_blob(&req.repo, &req.etag, &mut |_| {}).unwrap();
    if store.has_blob(&req.repo, &req.etag).unwrap() {
        return store.link_existing(&lock, &req).unwrap();
    }
    let staging = store.stage(&lock, Some(bytes.len() as u64)).unwrap();
    staging.file().set_len(0).unwrap();
    staging.write_at(bytes, 0).unwrap();
    store.commit(staging, &req).unwrap()
}

/// Spawns this test binary running `test` as a child with `role`.
pub(crate) fn spawn_child(test: &str, role: &str, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"]).env(CHILD_ENV, role);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap()
}

pub(crate) fn child_role() -> Option<String> {
    std::env::var(CHILD_ENV).ok()
}

/// Every regular file and symlink under `dir`, relative, with symlink targets.
pub(crate) fn tree_listing(dir: &Utf8Path) -> Vec<(String, Option<String>)> {
    fn walk(base: &Utf8Path, dir: &Utf8Path, out: &mut Vec<(String, Option<String>)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = Utf8PathBuf::from_path_buf(e.path()).unwrap();
            let t = e.file_type().unwrap();
            let rel = p.strip_prefix(base).unwrap().to_string();
            if t.is_dir() {
                walk(base, &p, out);
            } else if t.is_symlink() {
                out.push((rel, Some(std::fs::read_link(&p).unwrap().to_str().unwrap().to_owned())));
            } else {
                out.push((rel, None));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
