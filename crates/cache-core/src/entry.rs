//! What the cache knows about each file (`EntryMeta`) and the statistics it reports.
//! Field names are stable: they appear in `--json` output and in the index.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::{Blake3, Etag};
use crate::path::RepoPath;
use crate::repo::Repo;
use crate::revision::CommitHash;

/// A point in time, in milliseconds since the Unix epoch. Pure code takes "now" as a
/// parameter of this type and never reads the clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The epoch.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the epoch.
    pub const fn from_unix_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_unix_millis(self) -> i64 {
        self.0
    }

    /// From a wall-clock time (times before the epoch count as negative).
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// The current wall-clock time. For callers at the edges; pure logic takes `now` as input.
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// How long before `later` this is (zero if `later` is earlier).
    pub fn elapsed_until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// This time minus a duration (saturating).
    #[must_use]
    pub fn saturating_sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// This time plus a duration (saturating).
    #[must_use]
    pub fn saturating_add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }
}

/// What an entry is: a file of a Hub repo at a commit, or a generic artifact (a URL, a
/// fixture) stored in the modelcache home.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EntryKey {
    /// A file of a Hub repository at one commit: `snapshots/<commit>/<path>`.
    Hub {
        /// The repository.
        repo: Repo,
        /// The commit.
        commit: CommitHash,
        /// The file inside the repository.
        path: RepoPath,
    },
    /// A generic artifact, keyed by its source (usually a URL).
    Artifact {
        /// The key it was stored under.
        key: String,
    },
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryKey::Hub { repo, commit, path } => write!(f, "{repo}@{commit}/{path}"),
            // The key starts with the URL: shown without its credentials.
            EntryKey::Artifact { key } => f.write_str(&crate::redact_url(key)),
        }
    }
}

/// The identity of one stored blob, so that entries sharing content are freed together:
/// the blob's path relative to the cache root, such as
/// `models--org--name/blobs/<etag>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BlobId(String);

impl BlobId {
    /// The blob of `repo` named by `etag`.
    pub fn hub(repo: &Repo, etag: &Etag) -> Self {
        BlobId(format!("{}/blobs/{etag}", repo.folder_name()))
    }

    /// Any other blob, named by its path relative to the root it lives in.
    pub fn from_relative_path(path: impl Into<String>) -> Self {
        BlobId(path.into())
    }

    /// The blob's path relative to its root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BlobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the cache records about one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    /// What the entry is.
    pub key: EntryKey,
    /// The blob holding its bytes (shared between entries with equal content).
    pub blob: BlobId,
    /// The content's etag, for Hub files.
    pub etag: Option<Etag>,
    /// Size of the blob in bytes.
    pub size: u64,
    /// BLAKE3 of the content, recorded at commit.
    pub blake3: Option<Blake3>,
    /// When it was committed to the cache.
    pub downloaded_at: Timestamp,
    /// When it was last used (found or fetched).
    pub last_used: Timestamp,
    /// Whether it is protected from eviction.
    pub pinned: bool,
}

/// Why a request that needed a download failed, as counted in [`Counters::failures`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureCause {
    /// The network or the Hub (unreachable, refused, not found, timed out).
    Remote,
    /// Content did not match its digest, or a snapshot came out incomplete.
    Integrity,
    /// The disk was full.
    DiskFull,
    /// Anything else (a filesystem error, a lock timeout).
    Other,
}

impl FailureCause {
    /// Every cause, in display order.
    pub const ALL: [FailureCause; 4] =
        [FailureCause::Remote, FailureCause::Integrity, FailureCause::DiskFull, FailureCause::Other];

    /// The counter's name in the index (`failed_remote`, ...).
    pub fn counter_name(self) -> &'static str {
        match self {
            FailureCause::Remote => "failed_remote",
            FailureCause::Integrity => "failed_integrity",
            FailureCause::DiskFull => "failed_disk_full",
            FailureCause::Other => "failed_other",
        }
    }
}

/// Failed requests that needed a download, by cause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadFailures {
    /// The network or the Hub.
    pub remote: u64,
    /// Digest mismatches and incomplete results.
    pub integrity: u64,
    /// A full disk.
    pub disk_full: u64,
    /// Anything else.
    pub other: u64,
}

impl DownloadFailures {
    /// The count of one cause.
    pub fn get(&self, cause: FailureCause) -> u64 {
        match cause {
            FailureCause::Remote => self.remote,
            FailureCause::Integrity => self.integrity,
            FailureCause::DiskFull => self.disk_full,
            FailureCause::Other => self.other,
        }
    }

    /// Every failure.
    pub fn total(&self) -> u64 {
        self.remote + self.integrity + self.disk_full + self.other
    }
}

/// Hit, miss and transfer counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that found nothing cached.
    pub misses: u64,
    /// Blobs downloaded and committed.
    pub downloads: u64,
    /// Body bytes received for those downloads.
    pub bytes_downloaded: u64,
    /// Failed requests that needed a download, by cause.
    #[serde(default)]
    pub failures: DownloadFailures,
    /// Entries evicted, by reason.
    #[serde(default)]
    pub evictions: crate::Evictions,
    /// Times a blob lock was busy and this cache waited for it.
    #[serde(default)]
    pub lock_waits: u64,
    /// Total time spent in those waits, in microseconds.
    #[serde(default)]
    pub lock_wait_micros: u64,
    /// Download duration and throughput, hit latency.
    #[serde(default)]
    pub histograms: crate::Histograms,
}

impl Counters {
    /// Downloads over downloads plus failed requests, or `None` before either. A failed
    /// request counts once however many files it needed.
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    pub fn download_success_rate(&self) -> Option<f64> {
        let total = self.downloads + self.failures.total();
        (total > 0).then(|| self.downloads as f64 / total as f64)
    }

    /// Hits over all lookups, or `None` before the first lookup.
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hits + self.misses;
        (total > 0).then(|| self.hits as f64 / total as f64)
    }
}

/// One repository (or artifact group) in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoSummary {
    /// The repository.
    pub repo: Repo,
    /// Commits with a snapshot in the cache.
    pub revisions: Vec<CommitHash>,
    /// Number of files across those snapshots.
    pub files: u64,
    /// Bytes on disk, each blob counted once.
    pub size_bytes: u64,
    /// When its oldest file was committed, if known.
    pub downloaded_at: Option<Timestamp>,
    /// When any of its files was last used, if known.
    pub last_used: Option<Timestamp>,
    /// Whether any of it is pinned.
    pub pinned: bool,
}

/// The whole cache at a glance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSummary {
    /// Number of repositories.
    pub repos: u64,
    /// Number of files (snapshot entries and artifacts).
    pub files: u64,
    /// Bytes on disk, each blob counted once (a blob several repos share as one inode,
    /// or as one payload of the shared store, too).
    pub total_bytes: u64,
    /// What the files would take without sharing between repos: each repo's blobs
    /// counted once per repo. At least `total_bytes`; the difference is what sharing saves.
    #[serde(default)]
    pub logical_bytes: u64,
    /// Per repository.
    pub per_repo: Vec<RepoSummary>,
    /// Hit, miss and transfer counters.
    pub counters: Counters,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_do_arithmetic_without_overflow() {
        let t = Timestamp::from_unix_millis(10_000);
        assert_eq!(t.saturating_sub(Duration::from_secs(3)).as_unix_millis(), 7_000);
        assert_eq!(t.elapsed_until(Timestamp::from_unix_millis(12_500)), Duration::from_millis(2_500));
        assert_eq!(t.elapsed_until(Timestamp::EPOCH), Duration::ZERO);
        assert_eq!(Timestamp::from_unix_millis(i64::MAX).saturating_add(Duration::MAX).as_unix_millis(), i64::MAX);
        assert!(Timestamp::now() > Timestamp::from_unix_millis(1_700_000_000_000));
    }

    #[test]
    fn entry_keys_have_stable_json() {
        let key = EntryKey::Hub {
            repo: Repo::model("a/b".parse().unwrap()),
            commit: "0123456789abcdef0123456789abcdef01234567".parse().unwrap(),
            path: "x/y.bin".parse().unwrap(),
        };
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"hub","repo":{"type":"model","id":"a/b"},"commit":"0123456789abcdef0123456789abcdef01234567","path":"x/y.bin"}"#
        );
        assert_eq!(serde_json::from_str::<EntryKey>(&json).unwrap(), key);
        assert_eq!(key.to_string(), "a/b@0123456789abcdef0123456789abcdef01234567/x/y.bin");
    }

    #[test]
    fn blob_ids_name_the_hub_blob_path() {
        let repo = Repo::model("a/b".parse().unwrap());
        let etag = Etag::GitSha1(crate::GitSha1::of(b""));
        assert_eq!(BlobId::hub(&repo, &etag).as_str(), "models--a--b/blobs/e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn hit_ratio() {
        assert_eq!(Counters::default().hit_ratio(), None);
        let c = Counters { hits: 3, misses: 1, ..Counters::default() };
        assert_eq!(c.hit_ratio(), Some(0.75));
    }
}
