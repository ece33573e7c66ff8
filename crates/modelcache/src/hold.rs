//! Keeping returned paths valid: the lease every get holds, [`Hold`] for callers that use
//! files longer than a call, and the in-use checks removal and eviction make.
//!
//! # How a path stays valid
//! A repo's (or URL artifact's) *lease* is a shared `flock` in the modelcache home
//! ([`cache_store::Lease`]). `rm`, `clean` and eviction try the exclusive side and skip
//! (or refuse) a leased repo, in any process. [`CacheManager::fetch`] takes the lease
//! before its first lookup and releases it when it returns, so nothing it looked up,
//! downloaded or is about to return can go meanwhile — not even by its own auto-prune.
//! At the return it records the use of every path it returns, so eviction's
//! `in_use_grace` protects them from that moment, after the process has exited too. A
//! caller that keeps using files longer takes a [`Hold`].
//!
//! # Hits without a lease
//! One request takes no lease: a file at a commit that a single lookup finds cached and
//! sound (its blob unchanged since it was linked — what a repeated hit is). That lookup
//! `stat`s the file and is the whole answer, and the lease would end at the return, so it
//! could protect only the instant between the `stat` and the return: a removal landing
//! there is, to the caller, the same as one landing just after the return, which the
//! lease allows too (the call reads as "the get, then the removal"). Everything with more
//! than one step still takes the lease first — a branch or tag to resolve, a snapshot's
//! files that must all be there together, a suspect hit to verify, anything to download —
//! and looks again under it. The saving is an `open`, two lock pairs and a `close` per
//! hit (9.5 µs → 2.7 µs in-process). `holds::pinned_hits_racing_removal_return_paths_that_were_there_during_the_call`
//! races such hits with `rm`, `clean` and `prune` and checks every returned path.
//!
//! # Cost
//! A lease is an `open` and a `flock` of a small file in the home: no write, no index.
//! It waits only while a removal of that repo is running (removal never waits, so this
//! cannot deadlock). Checking a snapshot at the return reads its listing and stats each
//! file once more; recording the uses is in memory (flushed with the hits), except
//! after a download, which flushes them at once.
//!
//! # Checking without holding
//! [`CacheManager::is_in_use`] and [`CacheManager::is_file_in_use`] try the exclusive
//! side of a lease for an instant: a removal running at that very instant may see the
//! repo busy and skip it, which errs on the safe side.

use std::path::{Component, Path};

use cache_core::{CommitHash, EntryKey, Etag, Repo, RepoPath, Timestamp};
use cache_store::{ArtifactKey, Lease};

use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::types::{AcquireRequest, Acquired, ModelRef};

/// Keeps a repository's files from removal and eviction — by every process — while it
/// lives (see [`CacheManager::hold`]). Dropping it releases the repository.
#[must_use = "the repository is protected only while the hold lives"]
pub struct Hold {
    what: String,
    _lease: Lease,
}

impl Hold {
    /// What is held (`org/name`).
    pub fn target(&self) -> &str {
        &self.what
    }
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold").field("target", &self.what).finish_non_exhaustive()
    }
}

/// What a path under one of the cache's roots names.
enum Named {
    /// A repo, a revision of it (`snapshots/<commit>`), or a file of a revision.
    Hub { repo: Repo, commit: Option<CommitHash>, path: Option<RepoPath> },
    /// A URL artifact, by id.
    Artifact { id: String },
}

impl CacheManager {
    /// Protects a repository (every revision of it) from removal (`rm`, `clean`) and
    /// eviction (`prune`, auto-prune) in every process until the returned [`Hold`] is
    /// dropped. Waits only while a removal of that repository is running. The repository
    /// need not be cached yet.
    pub fn hold(&self, model: &ModelRef) -> Result<Hold, CacheError> {
        let lease = self.inner.store.lease(&model.repo)?;
        Ok(Hold { what: model.repo.to_string(), _lease: lease })
    }

    /// Records that what a [`fetch`](Self::fetch) returned is used now, as `fetch` does
    /// when it returns, so `in_use_grace` counts from this moment: for a caller that hands
    /// paths on later than `fetch` returned them (the CLI prints the results of several
    /// requests together). A snapshot that lost a file meanwhile is an error. Pair it with
    /// a [`Hold`] taken before the fetch so nothing goes in between.
    pub fn mark_used(&self, request: &AcquireRequest, acquired: &Acquired) -> Result<(), CacheError> {
        self.record_returned(request, acquired)
    }

    /// The lease a request holds while it runs: its repo's, or its URL artifact's.
    pub(crate) fn lease_for(&self, request: &AcquireRequest) -> Result<Lease, CacheError> {
        let store = &self.inner.store;
        Ok(match request {
            AcquireRequest::File { repo, .. } | AcquireRequest::Snapshot { repo, .. } => store.lease(repo)?,
            AcquireRequest::Url { url, sha256, name } => {
                store.lease_artifact(&crate::strategy::artifact_key(url, *sha256, name.as_deref())?)?
            }
        })
    }

    /// Checks that a snapshot is complete, and records the use of every returned file at
    /// this moment (flushed at once after a download, so other processes' evictions see it).
    pub(crate) fn record_returned(&self, request: &AcquireRequest, acquired: &Acquired) -> Result<(), CacheError> {
        let store = &self.inner.store;
        let commit = acquired.commit.as_deref().and_then(|c| cache_core::CommitHash::new(c).ok());
        match (request, commit) {
            (AcquireRequest::File { repo, path, .. }, Some(commit)) => store.record_use(repo, &commit, [path]),
            (AcquireRequest::Snapshot { repo, include, exclude, .. }, Some(commit)) => {
                if let Some(tree) = store.read_tree(repo, &commit)? {
                    let filter = crate::strategy::filter(include, exclude)?;
                    let at = cache_core::Revision::from(commit);
                    let mut present = Vec::new();
                    let mut missing = Vec::new();
                    for p in tree.files.keys().filter(|p| filter.matches(p.as_str())) {
                        if store.is_cached(repo, &at, p)? {
                            present.push(p);
                        } else {
                            missing.push(p.to_string());
                        }
                    }
                    if !missing.is_empty() {
                        tracing::warn!(request = %request.describe(), missing = missing.len(), "snapshot incomplete after acquisition");
                        return Err(CacheError::IncompleteSnapshot { model_id: request.describe(), missing });
                    }
                    store.record_use(repo, &commit, present);
                }
            }
            (AcquireRequest::Url { url, sha256, name }, _) => {
                store.record_artifact_use(&crate::strategy::artifact_key(url, *sha256, name.as_deref())?);
            }
            _ => {}
        }
        if !acquired.from_cache {
            // What was fetched is there: a busy index costs only the early record (the
            // uses stay pending and are written with the next flush).
            if let Err(e) = store.flush() {
                tracing::warn!("could not record cache usage: {e}");
            }
        }
        Ok(())
    }

    /// Whether a repository is in use: held by a get, a [`Hold`] (of any process, this
    /// one included) or a transfer (a blob lock, Python's included), or any of its files
    /// used within `in_use_grace`. Removal skips such a repository; eviction keeps such
    /// files.
    pub fn is_in_use(&self, model: &ModelRef) -> Result<bool, CacheError> {
        let store = &self.inner.store;
        if store.is_leased(&model.repo)? || store.is_blob_locked(&model.repo, None)? {
            return Ok(true);
        }
        self.used_within_grace(|k| matches!(k, EntryKey::Hub { repo, .. } if *repo == model.repo))
    }

    /// Whether the file (or snapshot directory, or repository folder) at `path` — a path
    /// a get returned, inside the hub cache or the home's artifacts — is in use: its
    /// repository (or artifact) is held by a get or a [`Hold`] of any process, its blob's
    /// lock is held, or it was used within `in_use_grace`. For a directory, any file of
    /// it counts. A path outside the cache is an invalid-input error.
    pub fn is_file_in_use(&self, path: impl AsRef<Path>) -> Result<bool, CacheError> {
        let path = path.as_ref();
        let store = &self.inner.store;
        match self.name_of(path)? {
            Named::Hub { repo, commit, path: file } => {
                let etag = match (&commit, &file) {
                    (Some(c), Some(p)) => {
                        blob_etag(&store.hub_dir().join(repo.folder_name()).join("snapshots").join(c.as_str()).join(p.as_str()))
                    }
                    _ => None,
                };
                let locked = match (&file, &etag) {
                    (Some(_), Some(e)) => store.is_blob_locked(&repo, Some(e))?,
                    _ => store.is_blob_locked(&repo, None)?,
                };
                if locked || store.is_leased(&repo)? {
                    return Ok(true);
                }
                self.used_within_grace(|k| match k {
                    EntryKey::Hub { repo: r, commit: c, path: p } => {
                        *r == repo
                            && commit.is_none_or(|x| x == *c)
                            && file.as_ref().is_none_or(|f| p == f || p.as_str().starts_with(&format!("{f}/")))
                    }
                    EntryKey::Artifact { .. } => false,
                })
            }
            Named::Artifact { id } => {
                if store.is_artifact_leased(&id)? {
                    return Ok(true);
                }
                self.used_within_grace(
                    |k| matches!(k, EntryKey::Artifact { key } if ArtifactKey::from_key_string(key).id() == id),
                )
            }
        }
    }

    /// Whether an entry `selects` takes was used within `in_use_grace` (pending uses of
    /// this process included).
    fn used_within_grace(&self, selects: impl Fn(&EntryKey) -> bool) -> Result<bool, CacheError> {
        let grace = self.inner.config.config.in_use_grace;
        let cutoff = Timestamp::now().saturating_sub(grace);
        Ok(self.inner.store.entries()?.iter().any(|e| selects(&e.key) && e.last_used > cutoff))
    }

    /// What `path` names in the cache.
    fn name_of(&self, path: &Path) -> Result<Named, CacheError> {
        let outside = || CacheError::InvalidInput {
            what: "path",
            value: path.display().to_string().chars().take(200).collect(),
            reason: "it is not inside the hub cache or the modelcache home's artifacts".to_owned(),
        };
        // Returned paths are canonical; a caller's may go through a link to a root.
        let canonical = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => std::fs::canonicalize(dir).ok().map(|d| d.join(name)),
            _ => None,
        };
        let candidates = std::iter::once(path.to_owned()).chain(canonical);
        for p in candidates {
            if let Ok(rest) = p.strip_prefix(self.cache_dir()) {
                let parts = normal_parts(rest).ok_or_else(outside)?;
                let Some(folder) = parts.first() else { return Err(outside()) };
                let repo = Repo::from_folder_name(folder).map_err(|_| outside())?;
                let commit = match (parts.get(1).map(String::as_str), parts.get(2)) {
                    (Some("snapshots"), Some(c)) => Some(CommitHash::new(c).map_err(|_| outside())?),
                    _ => None,
                };
                let file = if commit.is_some() && parts.len() > 3 {
                    Some(parts[3..].join("/").parse::<RepoPath>().map_err(|_| outside())?)
                } else {
                    None
                };
                return Ok(Named::Hub { repo, commit, path: file });
            }
            if let Ok(rest) = p.strip_prefix(self.home_dir().join("artifacts").join("entries")) {
                let parts = normal_parts(rest).ok_or_else(outside)?;
                let Some(id) = parts.first() else { return Err(outside()) };
                return Ok(Named::Artifact { id: id.clone() });
            }
        }
        Err(outside())
    }
}

/// The components of a relative path, `None` when one is not a plain name.
fn normal_parts(rest: &Path) -> Option<Vec<String>> {
    rest.components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// The etag a snapshot link points at (`../../blobs/<etag>`), when it is a link.
fn blob_etag(link: &camino::Utf8Path) -> Option<Etag> {
    let target = std::fs::read_link(link).ok()?;
    Etag::new(target.file_name()?.to_str()?).ok()
}
