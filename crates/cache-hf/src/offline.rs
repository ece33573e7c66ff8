//! The offline half: answering from the cache alone, as `huggingface_hub` does with
//! `HF_HUB_OFFLINE=1`, plus the cheap integrity check of every hit.
//!
//! # Integrity on the hit path
//! Hashing every hit would make a hit cost as much as reading the file. Instead a hit is
//! *suspect* when the blob's size differs from the size the caller expects (a listing or
//! the Hub said so) or when the blob was modified after its snapshot link was created:
//! the protocol renames the blob into place before it links it (so does
//! `huggingface_hub`), so a blob newer than its link was written to afterwards. Only a
//! suspect hit is re-hashed ([`Store::verify`] with repair); a corrupted one is removed
//! and reported as [`Error::Corrupted`].

use cache_core::{CommitHash, Repo, RepoPath, Revision};
use cache_store::{Hit, Scope, Store};
use camino::Utf8PathBuf;

use crate::error::{Error, Result};
use crate::patterns::FileFilter;

/// The answer for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileLookup {
    /// Committed and intact.
    Hit {
        /// Its snapshot path.
        path: Utf8PathBuf,
        /// The commit it belongs to.
        commit: CommitHash,
    },
    /// The Hub said earlier that the file is not in this commit (`.no_exist`).
    NotInRepo(CommitHash),
    /// Not cached (`commit`: the revision's cached commit, if the ref is known).
    Miss {
        /// The commit the revision resolved to in the cache.
        commit: Option<CommitHash>,
    },
}

/// The answer for a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotLookup {
    /// Every file the listing has (and the filter takes) is cached.
    Complete {
        /// `snapshots/<commit>`.
        dir: Utf8PathBuf,
        /// The commit.
        commit: CommitHash,
        /// Files taken.
        files: usize,
    },
    /// The listing has files the filter takes that are not cached.
    Incomplete {
        /// The commit.
        commit: CommitHash,
        /// What is missing.
        missing: Vec<RepoPath>,
    },
    /// No listing recorded for the commit: completeness is unknown. `dir` is the snapshot
    /// folder when it exists (what `huggingface_hub` returns offline).
    Unlisted {
        /// The commit.
        commit: CommitHash,
        /// `snapshots/<commit>`, if it exists.
        dir: Option<Utf8PathBuf>,
    },
    /// The revision is not cached at all.
    NoRevision,
}

/// `snapshots/<commit>` of a repo, absolute.
pub fn snapshot_dir(store: &Store, repo: &Repo, commit: &CommitHash) -> Utf8PathBuf {
    store.hub_dir().join(repo.folder_name()).join("snapshots").join(commit.as_str())
}

/// Looks a file up in the cache (recording the hit), checking a hit cheaply and fully
/// when suspect (see the module docs). `expected_size`: the size the file must have,
/// when known.
pub fn lookup_file(
    store: &Store,
    repo: &Repo,
    revision: &Revision,
    path: &RepoPath,
    expected_size: Option<u64>,
) -> Result<FileLookup> {
    find_file(store, repo, revision, path, expected_size, true)
}

/// [`lookup_file`] without counting a miss: for a first look that another one follows on
/// a miss (so one request is one miss).
#[cfg(feature = "network")]
pub(crate) fn peek_file(store: &Store, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<FileLookup> {
    find_file(store, repo, revision, path, None, false)
}

/// Like [`lookup_file`] for a caller that asks ahead of another path which looks again on
/// a miss: a hit is checked and counted, a miss is not counted (so one request is one miss).
pub fn probe_file(store: &Store, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Option<(Utf8PathBuf, CommitHash)>> {
    let Some(commit) = store.resolve(repo, revision)? else { return Ok(None) };
    let Some(hit) = store.probe(repo, &Revision::from(commit), path)? else { return Ok(None) };
    check_hit(store, repo, &commit, path, &hit, None)?;
    Ok(Some((hit.path, commit)))
}

/// Whether a file the commit's listing names (so never a `.no_exist` one) is cached with
/// the listed size; a hit is checked and counted, a miss counted.
#[cfg(feature = "network")]
pub(crate) fn is_listed_file_cached(store: &Store, repo: &Repo, commit: &CommitHash, path: &RepoPath, size: u64) -> Result<bool> {
    let Some(hit) = store.lookup(repo, &Revision::from(*commit), path)? else { return Ok(false) };
    check_hit(store, repo, commit, path, &hit, Some(size))?;
    Ok(true)
}

fn find_file(
    store: &Store,
    repo: &Repo,
    revision: &Revision,
    path: &RepoPath,
    expected_size: Option<u64>,
    count_miss: bool,
) -> Result<FileLookup> {
    let Some(commit) = store.resolve(repo, revision)? else {
        return Ok(FileLookup::Miss { commit: None });
    };
    let at = Revision::from(commit);
    let found = if count_miss { store.lookup(repo, &at, path)? } else { store.probe(repo, &at, path)? };
    match found {
        Some(hit) => {
            check_hit(store, repo, &commit, path, &hit, expected_size)?;
            tracing::debug!(%repo, %commit, %path, "cache hit");
            Ok(FileLookup::Hit { path: hit.path, commit })
        }
        None if store.is_no_exist(repo, &at, path)? => Ok(FileLookup::NotInRepo(commit)),
        None => {
            tracing::debug!(%repo, %commit, %path, "cache miss");
            Ok(FileLookup::Miss { commit: Some(commit) })
        }
    }
}

/// Like [`lookup_file`], with the offline answers as errors: not in the repo →
/// [`Error::EntryNotFound`], not cached → [`Error::NotCached`].
pub fn cached_file(store: &Store, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Utf8PathBuf> {
    match lookup_file(store, repo, revision, path, None)? {
        FileLookup::Hit { path, .. } => Ok(path),
        FileLookup::NotInRepo(_) => {
            Err(Error::EntryNotFound { repo: repo.clone(), revision: revision.to_string(), path: path.to_string(), cached: true })
        }
        FileLookup::Miss { .. } => Err(Error::NotCached { what: format!("{path} of {repo}@{revision}") }),
    }
}

/// Whether a hit is suspect: its size is not the expected one (the caller's or the
/// recorded one), or its blob was modified after the link to it was made.
fn suspect(hit: &Hit, expected_size: Option<u64>) -> bool {
    hit.is_suspect() || expected_size.is_some_and(|s| s != hit.size)
}

/// The cheap integrity check of a hit; a suspect hit is re-hashed and, when corrupted,
/// removed with every link to its blob.
pub fn check_hit(
    store: &Store,
    repo: &Repo,
    commit: &CommitHash,
    path: &RepoPath,
    hit: &Hit,
    expected_size: Option<u64>,
) -> Result<()> {
    if !suspect(hit, expected_size) {
        return Ok(());
    }
    tracing::info!(%repo, %commit, %path, "cached file looks modified: verifying it");
    let scope = Scope::File(repo.clone(), Revision::from(*commit), path.clone());
    let report = store.verify(&scope, true)?;
    if let Some(c) = report.corrupted.first() {
        tracing::warn!(%repo, %commit, %path, expected = %c.expected, actual = %c.actual, "removed a corrupted cached file");
        return Err(Error::Corrupted {
            repo: repo.clone(),
            path: path.to_string(),
            expected: c.expected.clone(),
            actual: c.actual.clone(),
        });
    }
    tracing::debug!(%repo, %commit, %path, "suspect cached file verified intact");
    Ok(())
}

/// Looks a snapshot up in the cache: complete, incomplete (with what is missing),
/// unlisted, or absent. Records a use of every cached file it takes. A file found
/// corrupted (see the module docs) is removed and the answer is [`Error::Corrupted`]:
/// damage is reported as damage, never as "not cached".
pub fn lookup_snapshot(store: &Store, repo: &Repo, revision: &Revision, filter: &FileFilter) -> Result<SnapshotLookup> {
    let Some(commit) = store.resolve(repo, revision)? else {
        return Ok(SnapshotLookup::NoRevision);
    };
    let dir = snapshot_dir(store, repo, &commit);
    let Some(tree) = store.read_tree(repo, &commit)? else {
        return Ok(SnapshotLookup::Unlisted { commit, dir: dir.is_dir().then_some(dir) });
    };
    let at = Revision::from(commit);
    let mut missing = Vec::new();
    let mut corrupted = None;
    let mut files = 0;
    for (path, entry) in tree.files.iter().filter(|(p, _)| filter.matches(p.as_str())) {
        match store.lookup(repo, &at, path)? {
            Some(hit) => match check_hit(store, repo, &commit, path, &hit, Some(entry.lfs_size.unwrap_or(entry.size))) {
                Ok(()) => files += 1,
                // Every file is still checked (and a corrupted one removed); the first
                // damage found is the answer.
                Err(e @ Error::Corrupted { .. }) => {
                    corrupted.get_or_insert(e);
                }
                Err(e) => return Err(e),
            },
            None => missing.push(path.clone()),
        }
    }
    if let Some(e) = corrupted {
        return Err(e);
    }
    if missing.is_empty() {
        Ok(SnapshotLookup::Complete { dir, commit, files })
    } else {
        Ok(SnapshotLookup::Incomplete { commit, missing })
    }
}

/// Like [`lookup_snapshot`], with offline answers as errors: complete → its directory;
/// incomplete → [`Error::IncompleteSnapshot`]; unlisted → the snapshot directory when it
/// exists; otherwise [`Error::NotCached`].
pub fn cached_snapshot(
    store: &Store,
    repo: &Repo,
    revision: &Revision,
    filter: &FileFilter,
) -> Result<(Utf8PathBuf, CommitHash)> {
    cached_snapshot_files(store, repo, revision, filter).map(|(dir, commit, _)| (dir, commit))
}

/// Like [`cached_snapshot`], with the number of files taken (0 when unlisted).
pub fn cached_snapshot_files(
    store: &Store,
    repo: &Repo,
    revision: &Revision,
    filter: &FileFilter,
) -> Result<(Utf8PathBuf, CommitHash, usize)> {
    match lookup_snapshot(store, repo, revision, filter)? {
        SnapshotLookup::Complete { dir, commit, files } => Ok((dir, commit, files)),
        SnapshotLookup::Unlisted { dir: Some(dir), commit } => Ok((dir, commit, 0)),
        SnapshotLookup::Incomplete { commit, missing } => Err(Error::IncompleteSnapshot {
            repo: repo.clone(),
            commit: commit.to_string(),
            missing: missing.iter().map(ToString::to_string).collect(),
        }),
        SnapshotLookup::Unlisted { dir: None, .. } | SnapshotLookup::NoRevision => {
            Err(Error::NotCached { what: format!("{repo}@{revision} ({})", filter.describe()) })
        }
    }
}
