//! Materializing cached files into a plain directory (`get … --to DIR`): the files under
//! their repo paths, as a [`LinkMode`] says, with `huggingface_hub`'s `local_dir`
//! metadata. The protocol (modes and their safety, incremental re-runs, nothing outside
//! the directory) is `cache_store`'s `Store::materialize`.

use std::path::{Path, PathBuf};

use cache_core::{CommitHash, Repo, RepoPath};
pub use cache_store::LinkMode;
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::types::{AcquireRequest, Acquired};

/// Which repo paths to place.
type Select = Box<dyn Fn(&str) -> bool + Send>;

/// One file of a materialized directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterializedEntry {
    /// Its path in the repository and under the directory.
    pub path: String,
    /// How it is placed: `reflink`, `copy`, `hardlink` or `symlink`.
    pub mode: String,
    /// Whether it was in place already and left alone.
    pub unchanged: bool,
    /// Its size.
    pub size_bytes: u64,
}

/// What [`CacheManager::materialize`] placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterializeReport {
    /// The directory.
    pub dir: PathBuf,
    /// Each file, in path order.
    pub files: Vec<MaterializedEntry>,
}

impl MaterializeReport {
    /// Files placed by this run (not left alone).
    pub fn placed(&self) -> usize {
        self.files.iter().filter(|f| !f.unchanged).count()
    }
}

impl CacheManager {
    /// Places every cached file of the snapshot folder `snapshot` (as `get_model` returns
    /// it: `<hub>/models--org--name/snapshots/<commit>`) under `dir`, as `mode` says, with
    /// `huggingface_hub`'s `local_dir` metadata, so `hf download --local-dir dir` finds
    /// them up to date. Re-running is incremental.
    pub async fn materialize(&self, snapshot: &Path, dir: &Path, mode: LinkMode) -> Result<MaterializeReport, CacheError> {
        let (repo, commit) = self.snapshot_of(snapshot)?;
        let dir = dir.to_owned();
        self.blocking(move |m| m.materialize_now(&repo, &commit, &dir, mode, &|_| true)).await
    }

    /// Materializes what `request` acquired (`acquired`): the requested file, or the
    /// snapshot's files its `include`/`exclude` select.
    pub async fn materialize_acquired(
        &self,
        request: &AcquireRequest,
        acquired: &Acquired,
        dir: &Path,
        mode: LinkMode,
    ) -> Result<MaterializeReport, CacheError> {
        let commit = acquired.commit.as_deref().map(CommitHash::new).transpose()?;
        let (repo, commit, select): (Repo, CommitHash, Select) = match (request, commit) {
            (AcquireRequest::File { repo, path, .. }, Some(c)) => {
                let path: RepoPath = path.clone();
                (repo.clone(), c, Box::new(move |p: &str| p == path.as_str()))
            }
            (AcquireRequest::Snapshot { repo, include, exclude, .. }, Some(c)) => {
                let filter = crate::strategy::filter(include, exclude)?;
                (repo.clone(), c, Box::new(move |p: &str| filter.matches(p)))
            }
            _ => {
                return Err(CacheError::InvalidInput {
                    what: "request",
                    value: request.describe(),
                    reason: "only files of a repository can be placed into a directory".into(),
                });
            }
        };
        let dir = dir.to_owned();
        self.blocking(move |m| m.materialize_now(&repo, &commit, &dir, mode, &*select)).await
    }

    fn materialize_now(
        &self,
        repo: &Repo,
        commit: &CommitHash,
        dir: &Path,
        mode: LinkMode,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<MaterializeReport, CacheError> {
        let store = &self.inner.store;
        let dir = Utf8Path::from_path(dir).ok_or_else(|| CacheError::InvalidInput {
            what: "directory",
            value: dir.display().to_string(),
            reason: "the path is not valid UTF-8".into(),
        })?;
        let _lease = store.lease(repo)?;
        let done = store.materialize(repo, commit, dir, mode, select)?;
        Ok(MaterializeReport {
            dir: done.dir.into_std_path_buf(),
            files: done
                .files
                .into_iter()
                .map(|f| MaterializedEntry {
                    path: f.path.to_string(),
                    mode: f.placement.as_str().to_owned(),
                    unchanged: f.unchanged,
                    size_bytes: f.size,
                })
                .collect(),
        })
    }

    /// The repo and commit of a snapshot folder of this cache.
    fn snapshot_of(&self, snapshot: &Path) -> Result<(Repo, CommitHash), CacheError> {
        let invalid = || CacheError::InvalidInput {
            what: "snapshot",
            value: snapshot.display().to_string(),
            reason: format!("not a snapshot folder of `{}` (`<repo folder>/snapshots/<commit>`)", self.cache_dir().display()),
        };
        let canonical = snapshot.canonicalize().map_err(|_| invalid())?;
        let rel = canonical.strip_prefix(self.cache_dir()).map_err(|_| invalid())?;
        let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        let [folder, "snapshots", commit] = parts.as_slice() else { return Err(invalid()) };
        let repo = Repo::from_folder_name(folder).map_err(|_| invalid())?;
        let commit = CommitHash::new(commit).map_err(|_| invalid())?;
        Ok((repo, commit))
    }
}
