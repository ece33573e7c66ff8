//! `sync` and `verify --lock`: the cache made to hold exactly what a lock names, and
//! checked against it.
//!
//! # Same answer either way
//! A locked file is *present* when `snapshots/<commit>/<path>` links to
//! `blobs/<etag>` of the lock and that blob has the locked size. Blobs are published
//! only after their digest matched their name (the store's invariant), so for `sync` a
//! link to the right name with the right size is the file; `verify --lock` re-hashes
//! every blob as well, for the deployment check that must not trust the disk.
//!
//! # Performance
//! Checking a complete lock costs a `readlink` and a `stat` per file, no hashing, no
//! index query, no request: `sync --frozen` of a complete lock never opens a connection.
//!
//! # Never a silent repair
//! A file the lock names that is cached but differs (linked to another blob, or a blob
//! of the wrong size) is reported (exit 5) and left alone; with `repair` its link and
//! damaged blob are removed and it is downloaded like a missing one.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use cache_core::{Etag, MultiHasher, Repo, RepoPath};
use cache_store::ArtifactKey;
use serde::{Deserialize, Serialize};

use super::error::LockfileError;
use super::lock::{Lock, LockedFile, LockedRepo};
use crate::error::CacheError;
use crate::manager::CacheManager;

/// How [`CacheManager::sync`] works.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Remove files that differ from the lock and download them again.
    pub repair: bool,
    /// Point `refs/<revision>` at the locked commit for entries that asked for a branch or
    /// tag, so an offline `from_pretrained("org/name")` finds it (default on).
    pub write_refs: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions { repair: false, write_refs: true }
    }
}

/// What [`CacheManager::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Repositories of the lock.
    pub repos: usize,
    /// Files of the lock (repository files and URL artifacts).
    pub files: usize,
    /// Files that were already present.
    pub present: usize,
    /// Files downloaded now.
    pub downloaded: usize,
    /// Body bytes received.
    pub bytes_downloaded: u64,
    /// Files that differed and were replaced (`repair`).
    pub repaired: Vec<String>,
    /// Refs written or moved, as `org/name@main -> <commit>`.
    pub refs_written: Vec<String>,
}

/// How the cache compares with a lock ([`CacheManager::check_lock`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockCheck {
    /// Files of the lock.
    pub files: usize,
    /// Present and as locked.
    pub present: usize,
    /// Not cached, as `org/name@<commit>/<path>` (or a URL artifact's name).
    pub missing: Vec<String>,
    /// Cached but different, with how.
    pub differs: Vec<String>,
}

impl LockCheck {
    /// Every file present and as locked.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.differs.is_empty()
    }
}

/// One file's state.
enum State {
    Present,
    Missing,
    Differs(String),
}

fn label(repo: &LockedRepo, path: &RepoPath) -> String {
    format!("{}@{}/{path}", repo.repo, repo.commit)
}

impl CacheManager {
    fn repo_dir(&self, repo: &Repo) -> PathBuf {
        self.cache_dir().join(repo.folder_name())
    }

    fn file_state(&self, repo: &LockedRepo, file: &LockedFile) -> State {
        let dir = self.repo_dir(&repo.repo);
        let link = dir.join("snapshots").join(repo.commit.as_str()).join(file.path.as_str());
        let Ok(meta) = std::fs::symlink_metadata(&link) else { return State::Missing };
        let blob = if meta.file_type().is_symlink() {
            let Ok(target) = std::fs::read_link(&link) else { return State::Missing };
            let name = target.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if name != file.etag.to_string() {
                return State::Differs(format!("links to blob `{name}`, the lock has `{}`", file.etag));
            }
            dir.join("blobs").join(&name)
        } else if meta.is_file() {
            link.clone()
        } else {
            return State::Differs("is not a file or a link".to_owned());
        };
        match std::fs::symlink_metadata(&blob) {
            Ok(m) if m.is_file() && m.len() == file.size => State::Present,
            Ok(m) if m.is_file() => State::Differs(format!("is {} bytes, the lock has {}", m.len(), file.size)),
            _ => State::Missing,
        }
    }

    /// Compares the cache with `lock` without hashing (see the module docs); reads only
    /// the disk.
    pub fn check_lock(&self, lock: &Lock) -> LockCheck {
        let mut check = LockCheck::default();
        for repo in &lock.models {
            for file in &repo.files {
                check.files += 1;
                match self.file_state(repo, file) {
                    State::Present => check.present += 1,
                    State::Missing => check.missing.push(label(repo, &file.path)),
                    State::Differs(how) => check.differs.push(format!("{} {how}", label(repo, &file.path))),
                }
            }
        }
        for u in &lock.urls {
            check.files += 1;
            let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            match self.inner.store.find_artifact(&key) {
                Ok(Some(p)) => match (std::fs::metadata(p.as_std_path()).map(|m| m.len()), u.size) {
                    (Ok(len), Some(size)) if len != size => {
                        check.differs.push(format!("{} is {len} bytes, the lock has {size}", u.name));
                    }
                    (Ok(_), _) => check.present += 1,
                    (Err(_), _) => check.missing.push(u.name.clone()),
                },
                _ => check.missing.push(u.name.clone()),
            }
        }
        check
    }

    /// Makes every file of `lock` present in the cache (see the module docs): what is
    /// missing is downloaded at the locked commit through the normal download path
    /// (resume, retries, one transfer per blob across processes, each blob checked
    /// against its etag); the Hub is never asked to resolve a revision or list a commit.
    /// Errors: files that differ without `repair` ([`LockfileError::Differs`], exit 5),
    /// missing files while downloads are off (exit 4), download failures.
    pub async fn sync(&self, lock: &Lock, options: &SyncOptions) -> Result<SyncReport, CacheError> {
        let check = self.check_lock(lock);
        let mut report =
            SyncReport { repos: lock.models.len(), files: check.files, present: check.present, ..SyncReport::default() };
        if !check.differs.is_empty() && !options.repair {
            return Err(LockfileError::Differs { problems: check.differs, repairable: true }.into());
        }
        if !check.missing.is_empty() || !check.differs.is_empty() {
            let off = self.inner.config.config.offline || !self.inner.strategy.downloads();
            if off {
                let first = check.missing.first().or(check.differs.first()).cloned().unwrap_or_default();
                let n = check.missing.len() + check.differs.len();
                return Err(CacheError::offline_miss(
                    first,
                    format!("{n} file(s) of the lock are not cached and downloads are off"),
                    self.cache_dir(),
                ));
            }
        }
        for repo in &lock.models {
            let mut todo = Vec::new();
            for file in &repo.files {
                match self.file_state(repo, file) {
                    State::Present => {}
                    State::Missing => todo.push((file.path.clone(), file.etag, file.size)),
                    State::Differs(_) => {
                        self.remove_differing(repo, file)?;
                        report.repaired.push(label(repo, &file.path));
                        todo.push((file.path.clone(), file.etag, file.size));
                    }
                }
            }
            if !todo.is_empty() {
                let _lease = self.inner.store.lease(&repo.repo)?;
                report.bytes_downloaded +=
                    self.inner.network.fetch_locked(&self.inner.store, &repo.repo, repo.commit, &todo).await?;
                report.downloaded += todo.len();
            }
            if options.write_refs && repo.revision.commit().is_none() && !repo.files.is_empty() {
                let current = self.inner.store.resolve(&repo.repo, &repo.revision)?;
                if current != Some(repo.commit) {
                    self.inner.store.write_ref(&repo.repo, &repo.revision, &repo.commit)?;
                    report.refs_written.push(format!("{}@{} -> {}", repo.repo, repo.revision, repo.commit));
                }
            }
        }
        for u in &lock.urls {
            let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            if self.inner.store.find_artifact(&key)?.is_some() {
                continue;
            }
            self.get_url_named(&u.url, Some(&u.sha256.to_string()), &u.name).await?;
            report.downloaded += 1;
            report.bytes_downloaded += u.size.unwrap_or(0);
        }
        let after = self.check_lock(lock);
        if !after.is_complete() {
            let mut problems = after.differs;
            problems.extend(after.missing.into_iter().map(|m| format!("{m} is still missing (removed meanwhile?)")));
            return Err(LockfileError::Differs { problems, repairable: false }.into());
        }
        Ok(report)
    }

    /// Removes a differing file's link, and its blob when the blob is the locked one but
    /// damaged (under the blob's lock).
    fn remove_differing(&self, repo: &LockedRepo, file: &LockedFile) -> Result<(), CacheError> {
        let dir = self.repo_dir(&repo.repo);
        let link = dir.join("snapshots").join(repo.commit.as_str()).join(file.path.as_str());
        std::fs::remove_file(&link).map_err(|source| CacheError::Io { op: "remove", path: link.clone(), source })?;
        let blob = dir.join("blobs").join(file.etag.to_string());
        if std::fs::symlink_metadata(&blob).is_ok_and(|m| m.is_file() && m.len() != file.size) {
            let _lock = self.inner.store.lock_blob(&repo.repo, &file.etag, &mut |_| {})?;
            std::fs::remove_file(&blob).map_err(|source| CacheError::Io { op: "remove", path: blob.clone(), source })?;
        }
        Ok(())
    }

    /// Checks the cache against `lock`, offline: every file present, linked to its locked
    /// blob, and every blob re-hashed against its etag (URL artifacts against their
    /// sha256). Reads only the disk.
    pub fn verify_lock(&self, lock: &Lock) -> Result<LockCheck, CacheError> {
        let mut check = self.check_lock(lock);
        let mut hashed = std::collections::BTreeSet::new();
        for repo in &lock.models {
            for file in &repo.files {
                if !matches!(self.file_state(repo, file), State::Present) || !hashed.insert((repo.repo.clone(), file.etag)) {
                    continue;
                }
                let blob = self.repo_dir(&repo.repo).join("blobs").join(file.etag.to_string());
                if let Err(how) = hash_matches(&blob, &file.etag, file.size) {
                    check.present -= 1;
                    check.differs.push(format!("{} {how}", label(repo, &file.path)));
                }
            }
        }
        for u in &lock.urls {
            let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            if let Some(p) = self.inner.store.find_artifact(&key)? {
                let size = std::fs::metadata(p.as_std_path()).map_or(0, |m| m.len());
                if let Err(how) = hash_matches(p.as_std_path(), &Etag::Sha256(u.sha256), size)
                    && check.present > 0
                {
                    check.present -= 1;
                    check.differs.push(format!("{} {how}", u.name));
                }
            }
        }
        Ok(check)
    }
}

/// Hashes `path` and compares with `etag`: `Err(how it differs)`.
pub(crate) fn hash_matches(path: &Path, etag: &Etag, size: u64) -> Result<(), String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut kinds = etag.required();
    kinds.blake3 = false;
    let mut hasher = MultiHasher::new(kinds, size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("cannot be read ({e})"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digests = hasher.finalize();
    etag.verify(&digests).map_err(|m| format!("has digest `{}`, the lock has `{}`", m.actual, m.expected))
}
