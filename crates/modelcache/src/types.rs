//! Requests and results of the facade. Results serialize with stable field names: they
//! are the `--json` output of the CLI, and that output deserializes back into them.

use std::path::PathBuf;

use cache_core::{DownloadFailures, Evictions, Histograms, Repo, RepoPath, RepoType, Revision, Sha256, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::CacheError;

/// A repository and optionally a revision, as users write it: `org/name`,
/// `org/name@v1.0`, `datasets/org/name@main`.
///
/// ```
/// use modelcache::{ModelRef, RepoType};
/// let r = ModelRef::parse("org/name@refs/pr/1", RepoType::Model)?;
/// assert_eq!((r.repo.to_string(), r.revision.unwrap().to_string()), ("org/name".into(), "refs/pr/1".into()));
/// let d = ModelRef::parse("datasets/org/data", RepoType::Model)?;
/// assert_eq!(d.repo.repo_type, RepoType::Dataset);
/// # Ok::<(), modelcache::CacheError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ModelRef {
    /// The repository.
    pub repo: Repo,
    /// The revision, when given.
    pub revision: Option<Revision>,
}

impl ModelRef {
    /// Parses `[TYPE/]id[@revision]` or an `hf://` URI naming a repository (the forms
    /// are in [`ModelRef::parse_location`]'s module docs); `repo_type` applies when the
    /// value names no type. A value naming a file (`hf://org/name/config.json`) is an
    /// invalid-input error: [`ModelRef::parse_location`] reads those.
    pub fn parse(value: &str, repo_type: RepoType) -> Result<Self, CacheError> {
        match Self::parse_location(value, repo_type)? {
            (r, None) => Ok(r),
            (_, Some(path)) => Err(CacheError::InvalidInput {
                what: "repository",
                value: value.chars().take(120).collect(),
                reason: format!("it names the file `{path}`, where a repository is expected"),
            }),
        }
    }

    /// The revision, `main` when none was given.
    pub fn revision_or_main(&self) -> Revision {
        self.revision.clone().unwrap_or_default()
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.revision {
            Some(r) => write!(f, "{}@{r}", self.repo),
            None => write!(f, "{}", self.repo),
        }
    }
}

/// What to acquire.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireRequest {
    /// One file of a repository.
    File {
        /// The repository.
        repo: Repo,
        /// The revision (branch, tag or commit).
        revision: Revision,
        /// The file.
        path: RepoPath,
    },
    /// A snapshot: every file of the revision matched by `include` (all when empty) and
    /// not by `exclude` (the Hub's `allow_patterns`/`ignore_patterns` semantics).
    Snapshot {
        /// The repository.
        repo: Repo,
        /// The revision.
        revision: Revision,
        /// Globs of files to take.
        include: Vec<String>,
        /// Globs of files to leave out.
        exclude: Vec<String>,
    },
    /// A generic artifact from any URL, verified against `sha256` when given.
    Url {
        /// The URL.
        url: String,
        /// The SHA-256 it must have.
        sha256: Option<Sha256>,
        /// The file name to store it under instead of the URL's last segment: 1 to 100
        /// bytes of `[A-Za-z0-9._-]`, not starting with a dot. Part of the artifact's
        /// identity (the same URL under two names is two entries sharing one blob).
        name: Option<String>,
    },
}

impl AcquireRequest {
    /// A URL request whose chosen `name` (if any) is checked now rather than when it is
    /// fetched: 1 to 100 bytes of `[A-Za-z0-9._-]`, not starting with a dot; anything
    /// else is an invalid-input error.
    pub fn url(url: impl Into<String>, sha256: Option<Sha256>, name: Option<String>) -> Result<Self, CacheError> {
        let url = url.into();
        crate::strategy::artifact_key(&url, sha256, name.as_deref())?;
        Ok(AcquireRequest::Url { url, sha256, name })
    }

    /// A short name for messages: `org/name@main/config.json`, `org/name@main`, the URL
    /// without `user:password@` or query ([`cache_core::redact_url`]).
    pub fn describe(&self) -> String {
        match self {
            AcquireRequest::File { repo, revision, path } => format!("{repo}@{revision}/{path}"),
            AcquireRequest::Snapshot { repo, revision, .. } => format!("{repo}@{revision}"),
            AcquireRequest::Url { url, .. } => cache_core::redact_url(url),
        }
    }

    /// What progress events call the request: the file's path in the repository, the
    /// repository for a snapshot, the artifact's file name (else its redacted URL).
    pub fn label(&self) -> std::borrow::Cow<'_, str> {
        match self {
            AcquireRequest::File { path, .. } => path.as_str().into(),
            AcquireRequest::Snapshot { repo, .. } => repo.to_string().into(),
            AcquireRequest::Url { name: Some(name), .. } => name.as_str().into(),
            AcquireRequest::Url { url, name: None, .. } => cache_core::redact_url(url).into(),
        }
    }

    /// The Hub repository asked for (`None` for a URL).
    pub fn repo(&self) -> Option<&Repo> {
        match self {
            AcquireRequest::File { repo, .. } | AcquireRequest::Snapshot { repo, .. } => Some(repo),
            AcquireRequest::Url { .. } => None,
        }
    }
}

/// What an acquisition produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acquired {
    /// The file, or the snapshot directory.
    pub path: PathBuf,
    /// The commit, for Hub files and snapshots.
    pub commit: Option<String>,
    /// Whether nothing had to be downloaded.
    pub from_cache: bool,
    /// Files the request covers: 1 for a file or a URL, the selected files of a snapshot
    /// (`files - files_downloaded` were cache hits).
    #[serde(default)]
    pub files: usize,
    /// Files downloaded now.
    pub files_downloaded: usize,
    /// Body bytes downloaded now.
    pub bytes_downloaded: u64,
    /// For a snapshot: the `include` globs that match no file of the revision's listing
    /// (empty when every one matched, or when the listing is unknown). When it is every
    /// `include` glob, the snapshot took no file.
    #[serde(default)]
    pub unmatched_include: Vec<String>,
}

/// What a listed item is: a Hub repository of one of its three types, or a generic
/// artifact fetched from a URL (stored in the modelcache home). Serialized as `model`,
/// `dataset`, `space` or `url`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemType {
    /// A model repository.
    Model,
    /// A dataset repository.
    Dataset,
    /// A Space.
    Space,
    /// A URL artifact.
    Url,
}

impl ItemType {
    /// `model`, `dataset`, `space` or `url`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Model => "model",
            ItemType::Dataset => "dataset",
            ItemType::Space => "space",
            ItemType::Url => "url",
        }
    }

    /// The Hub repository type, `None` for a URL artifact.
    pub fn repo_type(self) -> Option<RepoType> {
        match self {
            ItemType::Model => Some(RepoType::Model),
            ItemType::Dataset => Some(RepoType::Dataset),
            ItemType::Space => Some(RepoType::Space),
            ItemType::Url => None,
        }
    }
}

impl From<RepoType> for ItemType {
    fn from(t: RepoType) -> Self {
        match t {
            RepoType::Model => ItemType::Model,
            RepoType::Dataset => ItemType::Dataset,
            RepoType::Space => ItemType::Space,
        }
    }
}

impl std::fmt::Display for ItemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hit, miss and download counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Blobs downloaded.
    pub downloads: u64,
    /// Body bytes downloaded.
    pub bytes_downloaded: u64,
    /// `hits / (hits + misses)`, when there was a lookup.
    pub hit_ratio: Option<f64>,
    /// Failed requests that needed a download, by cause (a failure counts once per
    /// request; misses while downloads are off and invalid input are not failures).
    pub failures: DownloadFailures,
    /// `downloads / (downloads + failures)`, when there was either.
    pub download_success_rate: Option<f64>,
    /// Entries evicted (by `prune` or auto-prune), by reason.
    #[serde(default)]
    pub evictions: Evictions,
    /// Times a blob lock was busy (another thread or process downloading it) and this
    /// cache waited.
    #[serde(default)]
    pub lock_waits: u64,
    /// Seconds spent in those waits.
    #[serde(default)]
    pub lock_wait_seconds: f64,
    /// Download duration and throughput, hit latency ([`Histogram::cumulative`](crate::Histogram::cumulative) gives the
    /// buckets in seconds or bytes per second).
    #[serde(default)]
    pub histograms: Histograms,
}

/// One cached repository or URL artifact, as `stats()` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedModelInfo {
    /// `org/name` (models), `datasets/org/name`, `spaces/org/name`; an artifact's name.
    pub model_id: String,
    /// Model, dataset, space or url.
    pub repo_type: ItemType,
    /// Bytes on disk (each blob once).
    pub size_bytes: u64,
    /// Files across its revisions.
    pub files: u64,
    /// Cached commits.
    pub revisions: Vec<String>,
    /// When its first file was downloaded (ms since the epoch).
    pub downloaded_at: Option<Timestamp>,
    /// When it was last used (ms since the epoch).
    pub last_accessed: Option<Timestamp>,
    /// Whether it (or part of it) is pinned.
    pub pinned: bool,
    /// For a URL artifact (`repo_type` `url`, no revisions), what it is.
    pub artifact: Option<crate::ArtifactInfo>,
}

/// The cache at a glance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Repositories in the cache.
    pub total_models: usize,
    /// URL artifacts in the cache.
    pub total_artifacts: usize,
    /// Bytes on disk, artifacts included: the sum of the `size_bytes` of `models`, except
    /// that a blob shared by several URL artifacts (equal `sha256`, e.g. one URL under two
    /// names), or a payload of huggingface_hub's cross-repo store linked from several
    /// repositories, is counted once.
    pub total_size_bytes: u64,
    /// What the same files would take without sharing between repositories: each
    /// repository's blobs counted once per repository (so a blob two repositories share
    /// as one inode, after a cross-repo hit or `dedup`, counts twice). The difference to
    /// `total_size_bytes` is what sharing saves.
    pub logical_size_bytes: u64,
    /// Files (snapshot entries and artifacts).
    pub total_files: u64,
    /// The hub cache directory.
    pub cache_dir: PathBuf,
    /// The modelcache home.
    pub home_dir: PathBuf,
    /// Per repository, then per URL artifact.
    pub models: Vec<CachedModelInfo>,
    /// Hit, miss and download counters.
    pub counters: Counters,
    /// Free bytes on the hub cache's filesystem, when known.
    pub free_disk_bytes: Option<u64>,
}

/// One file of a cached revision. Equality compares what JSON carries (path and size).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path in the repository.
    pub path: String,
    /// Size in bytes.
    pub size_bytes: u64,
    /// The identity of the blob holding it (a repo blob path, a payload of
    /// huggingface_hub's shared store, or `inode:<dev>:<ino>/<etag>` for a blob that is
    /// one inode with other repos' blobs): equal for files that share their bytes, so
    /// totals count them once. Not in JSON.
    #[serde(skip)]
    pub blob: String,
}

impl PartialEq for FileInfo {
    fn eq(&self, other: &Self) -> bool {
        (&self.path, self.size_bytes) == (&other.path, other.size_bytes)
    }
}

impl Eq for FileInfo {}

impl FileInfo {
    /// Whether its blob may be shared with other repositories (one inode, or a payload of
    /// the shared store), so a total over several repositories must count it once.
    pub fn is_shared_blob(&self) -> bool {
        self.blob.starts_with("inode:") || self.blob.starts_with("blobs/")
    }
}

/// One cached revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionInfo {
    /// The commit.
    pub commit: String,
    /// Branches and tags pointing at it.
    pub refs: Vec<String>,
    /// Its files.
    pub files: Vec<FileInfo>,
    /// Bytes of its distinct blobs.
    pub size_bytes: u64,
}

/// An interrupted or in-flight download.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncompleteDownload {
    /// The `.incomplete` file.
    pub path: PathBuf,
    /// The blob it will become.
    pub etag: String,
    /// Bytes so far.
    pub size_bytes: u64,
    /// Last written (ms since the epoch).
    pub modified: Timestamp,
}

/// One repository or URL artifact as `list()` reports it (from the disk, with usage from
/// the index).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// `org/name`, `datasets/org/name`, `spaces/org/name`; an artifact's name.
    pub model_id: String,
    /// Model, dataset, space or url.
    pub repo_type: ItemType,
    /// The repository id (`org/name`); an artifact's name.
    pub repo_id: String,
    /// Cached revisions.
    pub revisions: Vec<RevisionInfo>,
    /// Files across revisions.
    pub files: u64,
    /// Bytes on disk (each blob once).
    pub size_bytes: u64,
    /// Last use (ms since the epoch), when known.
    pub last_used: Option<Timestamp>,
    /// Whether it (or part of it) is pinned.
    pub pinned: bool,
    /// Interrupted or in-flight downloads.
    pub incomplete: Vec<IncompleteDownload>,
    /// For a URL artifact (`repo_type` `url`: no revisions, one file), what it is.
    pub artifact: Option<crate::ArtifactInfo>,
}

/// A file whose content does not match its digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptedFile {
    /// The repository (or the artifact's URL).
    pub model_id: String,
    /// The entry: `org/name@<commit>/<path>` or the artifact key.
    pub entry: String,
    /// The digest it should have.
    pub expected: String,
    /// The digest it has.
    pub actual: String,
    /// What `expected` and `actual` are: `sha256` or `git-sha1` (the digest that names
    /// the blob), `blake3` (the digest recorded at download), or `size` (byte counts).
    #[serde(default)]
    pub algorithm: String,
    /// The digest that names the blob (its file name under `blobs/`): the sha256 of an
    /// LFS file or URL artifact, the git-sha1 of a small Hub file.
    #[serde(default)]
    pub blob: String,
}

impl CorruptedFile {
    /// Which digest `expected` is, given the blob's name: the name itself (its length
    /// says `sha256` or `git-sha1`), byte counts (`size`), or the recorded `blake3`.
    pub(crate) fn algorithm_of(expected: &str, blob: &str) -> &'static str {
        if expected.ends_with(" bytes") {
            "size"
        } else if expected == blob {
            if blob.len() == 40 { "git-sha1" } else { "sha256" }
        } else {
            "blake3"
        }
    }
}

/// The outcome of an integrity check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    /// Repositories whose every file checked out.
    pub valid_models: Vec<String>,
    /// Repositories with at least one corrupted file.
    pub corrupted_models: Vec<String>,
    /// Repositories with files whose content is gone (dangling links, stale entries).
    pub missing_models: Vec<String>,
    /// Files that checked out.
    pub valid_files: u64,
    /// Each corrupted file.
    pub corrupted: Vec<CorruptedFile>,
    /// Each missing entry.
    pub missing: Vec<String>,
    /// Refs that are not refs (not UTF-8, not a commit hash, a directory), relative to
    /// the hub cache: lookups treat them as absent, a repair removes them.
    #[serde(default)]
    pub bad_refs: Vec<String>,
    /// Repositories not checked because their folder (or one in it) is a symlink leading
    /// outside the cache.
    #[serde(default)]
    pub skipped: Vec<String>,
    /// Whether corrupted and missing entries (and bad refs) were removed.
    pub repaired: bool,
    /// Entries downloaded again after the repair.
    pub refetched: Vec<String>,
    /// After a repair that found damage: the damaged entries checked again.
    #[serde(default)]
    pub after_repair: Option<RepairedState>,
}

/// What a repair left: every entry found damaged, checked again after it was removed and
/// (when downloads are allowed) fetched again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairedState {
    /// Files valid now in the scope checked (the valid ones before, and the ones fetched
    /// again that checked out).
    pub valid_files: u64,
    /// Entries still corrupted.
    pub corrupted: Vec<String>,
    /// Entries still missing.
    pub missing: Vec<String>,
    /// Damaged entries removed and not downloaded again (offline, or the download
    /// failed): no longer cached; the next `get` fetches them.
    pub not_cached: Vec<String>,
}

impl RepairedState {
    /// Nothing corrupted or missing is left.
    pub fn is_clean(&self) -> bool {
        self.corrupted.is_empty() && self.missing.is_empty()
    }
}

impl IntegrityReport {
    /// No corruption, nothing missing, no bad ref.
    pub fn is_clean(&self) -> bool {
        self.corrupted.is_empty() && self.missing.is_empty() && self.bad_refs.is_empty()
    }
}

/// What a removal did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveReport {
    /// Whether nothing was actually removed.
    pub dry_run: bool,
    /// Files (snapshot entries, artifacts) removed.
    pub entries: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Repositories left alone because another process uses them.
    pub skipped_in_use: Vec<String>,
}

/// One entry chosen by a prune.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrunedEntry {
    /// `org/name@<commit>/<path>` or the artifact key.
    pub entry: String,
    /// `expired` or `over_size`.
    pub reason: String,
    /// Bytes its removal frees.
    pub bytes: u64,
}

/// What a prune did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    /// Whether nothing was actually removed.
    pub dry_run: bool,
    /// Entries evicted.
    pub evicted: Vec<PrunedEntry>,
    /// Entries the policy chose but that were in use at that moment.
    pub skipped_in_use: Vec<String>,
    /// Bytes freed by eviction.
    pub bytes_freed: u64,
    /// Total size before.
    pub size_before: u64,
    /// Total size after.
    pub size_after: u64,
    /// Stale `.incomplete` files removed.
    pub stale_incomplete_removed: u64,
    /// Stale lock and temporary files removed.
    pub stale_locks_removed: u64,
    /// Bytes freed by removing stale files.
    pub stale_bytes_freed: u64,
    /// The size limit the prune aimed for (bytes), when one was set.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Once over `max_size`, the size it evicts down to (`low_watermark × max_size`).
    #[serde(default)]
    pub target_size: Option<u64>,
    /// The age limit (seconds since the last use), when one was set.
    #[serde(default)]
    pub max_age_secs: Option<u64>,
    /// The in-use grace (seconds): files used more recently are never evicted.
    #[serde(default)]
    pub in_use_grace_secs: u64,
    /// Files the in-use grace kept (used within it), whatever the limits.
    #[serde(default)]
    pub kept_recently_used: u64,
    /// Bytes of the files the in-use grace kept (each blob once).
    #[serde(default)]
    pub kept_recently_used_bytes: u64,
    /// Files kept because they are pinned.
    #[serde(default)]
    pub kept_pinned: u64,
    /// Files in the cache before the prune.
    #[serde(default)]
    pub files_before: u64,
}

impl PruneReport {
    /// Whether neither a size nor an age limit was set (only stale files were cleared).
    pub fn no_limit(&self) -> bool {
        self.max_size.is_none() && self.max_age_secs.is_none()
    }

    /// Whether the eviction takes nearly everything: at least 90 % of the cached bytes,
    /// or every file that is not pinned (something being evicted either way).
    pub fn evicts_nearly_everything(&self) -> bool {
        let evicted = self.evicted.len() as u64;
        evicted > 0
            && (u128::from(self.bytes_freed) * 10 >= u128::from(self.size_before) * 9
                || evicted >= self.files_before.saturating_sub(self.kept_pinned))
    }
}

/// How to prune: the configured policy with these overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Overrides `max_size`.
    pub max_size: Option<u64>,
    /// Overrides `max_age`.
    pub max_age: Option<std::time::Duration>,
    /// Report without removing.
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupted_file_says_which_digest_it_compared() {
        let sha = "a".repeat(64);
        let git = "b".repeat(40);
        assert_eq!(CorruptedFile::algorithm_of(&sha, &sha), "sha256");
        assert_eq!(CorruptedFile::algorithm_of(&git, &git), "git-sha1");
        assert_eq!(CorruptedFile::algorithm_of(&"c".repeat(64), &sha), "blake3");
        assert_eq!(CorruptedFile::algorithm_of("10 bytes", &sha), "size");
    }
}
