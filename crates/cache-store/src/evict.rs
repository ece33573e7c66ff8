//! Eviction: executing a `cache-core` plan, skipping whatever is in use at that moment.

use std::collections::{BTreeMap, BTreeSet};

use cache_core::{BlobId, CommitHash, EntryKey, Etag, EvictReason, EvictionPolicy, Repo, RepoPath, Timestamp, plan_eviction};

use crate::artifacts::ArtifactKey;
use crate::error::{Error, Result};
use crate::fsx;
use crate::layout::RepoLayout;
use crate::lock;
use crate::maintenance::Scope;
use crate::store::Store;

/// What an eviction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EvictReport {
    /// Entries evicted.
    pub evicted: Vec<EntryKey>,
    /// Entries the plan chose but that were in use at that moment.
    pub skipped_in_use: Vec<EntryKey>,
    /// Blob bytes freed.
    pub bytes_freed: u64,
}

impl Store {
    /// Executes a `cache-core` eviction plan over every entry, skipping entries whose
    /// repo is leased or whose blob lock is held at that moment. Evicted entries are
    /// counted by reason (`evicted_expired`, `evicted_over_size`) and each is reported as
    /// an `eviction` event.
    pub fn evict(&self, policy: &EvictionPolicy, now: Timestamp) -> Result<EvictReport> {
        policy.validate()?;
        self.flush()?;
        let entries = self.entries()?;
        let plan = plan_eviction(&entries, &BTreeSet::new(), policy, now);
        let mut by_repo: BTreeMap<Repo, Vec<(&CommitHash, &RepoPath, &BlobId, EvictReason)>> = BTreeMap::new();
        let mut artifacts = Vec::new();
        for e in &plan.evict {
            match &e.entry.key {
                EntryKey::Hub { repo, commit, path } => {
                    by_repo.entry(repo.clone()).or_default().push((commit, path, &e.entry.blob, e.reason));
                }
                EntryKey::Artifact { key } => artifacts.push((key.clone(), e.reason)),
            }
        }
        let mut report = EvictReport::default();
        let (mut expired, mut over_size) = (0_u64, 0_u64);
        let mut count = |reason: EvictReason| match reason {
            EvictReason::Expired => expired += 1,
            EvictReason::OverSize => over_size += 1,
        };
        for (repo, files) in by_repo {
            let layout = RepoLayout::new(&repo);
            let key = |c: &CommitHash, p: &RepoPath| EntryKey::Hub { repo: repo.clone(), commit: *c, path: p.clone() };
            let Some(_lease) = self.try_exclusive_repo(&layout.folder)? else {
                report.skipped_in_use.extend(files.iter().map(|(c, p, ..)| key(c, p)));
                continue;
            };
            if !self.is_contained(&layout) {
                tracing::warn!(%repo, "not evicting from a repo whose folder leads outside the cache through a symlink");
                continue;
            }
            let mut emptied = Vec::new();
            for (commit, path, blob, reason) in files {
                let etag = blob.as_str().rsplit('/').next().and_then(|n| Etag::new(n).ok());
                let busy = match etag {
                    Some(etag) => {
                        let rel = layout.lock_file(&etag);
                        lock::try_exclusive(&self.hub, &rel, &self.hub_path.join(&rel), false)?.is_none()
                    }
                    None => false,
                };
                if busy {
                    report.skipped_in_use.push(key(commit, path));
                    continue;
                }
                let rel = layout.snapshot_file(commit, path);
                fsx::remove_file_if_exists(&self.hub, &rel).map_err(Error::io("remove", self.hub_path.join(&rel)))?;
                fsx::prune_empty_dirs(&self.hub, &rel, &layout.snapshot(commit));
                if fsx::list_dir(&self.hub, &layout.snapshot(commit)).unwrap_or_default().is_empty() {
                    emptied.push(commit.to_string());
                }
                self.index()?.delete(&layout.folder, Some(commit.as_str()), Some(path.as_str()))?;
                tracing::info!(%repo, %commit, %path, reason = reason_name(reason), "eviction");
                count(reason);
                report.evicted.push(key(commit, path));
            }
            report.bytes_freed += self.tidy_repo(&repo, &emptied)?;
        }
        for (key, reason) in artifacts {
            match self.remove_artifacts(&Scope::Artifact(ArtifactKey::from_key_string(&key))) {
                Ok(r) if r.skipped_in_use.is_empty() => {
                    report.bytes_freed += r.bytes_freed;
                    tracing::info!(artifact = %cache_core::redact_url(&key), reason = reason_name(reason), "eviction");
                    count(reason);
                    report.evicted.push(EntryKey::Artifact { key });
                }
                Ok(_) => report.skipped_in_use.push(EntryKey::Artifact { key }),
                Err(e) => return Err(e),
            }
        }
        let counted = self
            .index()
            .and_then(|index| index.add_evictions(&[(EvictReason::Expired, expired), (EvictReason::OverSize, over_size)]));
        if let Err(e) = counted {
            tracing::warn!("could not count evictions: {e}");
        }
        tracing::info!(evicted = report.evicted.len(), bytes = report.bytes_freed, "evicted");
        Ok(report)
    }
}

/// The reason's name in events and metric labels.
fn reason_name(reason: EvictReason) -> &'static str {
    match reason {
        EvictReason::Expired => "expired",
        EvictReason::OverSize => "over_size",
    }
}
