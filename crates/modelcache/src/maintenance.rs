//! Inspecting and maintaining the cache: list, stats, verify (and repair), remove, clear,
//! prune (eviction plus stale downloads and locks), pin.
//!
//! Dry runs compute what would go from the disk listing (each blob counted once, and
//! only when no remaining file links it), so their byte counts match a real run.

use std::collections::{BTreeMap, BTreeSet};

use cache_core::{EntryKey, EvictReason, EvictionPolicy, Protection, Repo, RepoPath, Timestamp, plan_eviction, redact_url};
use cache_store::{RepoListing, Scope};

use crate::artifacts::{self, shown, shown_owner};
use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::progress::ProgressEvent;
use crate::types::{
    CacheStats, CachedModelInfo, CorruptedFile, Counters, FileInfo, IncompleteDownload, IntegrityReport, ModelRef, PruneOptions,
    PruneReport, PrunedEntry, RemoveReport, RepairedState, RepoInfo, RevisionInfo,
};

fn reason(r: EvictReason) -> String {
    match r {
        EvictReason::Expired => "expired",
        EvictReason::OverSize => "over_size",
    }
    .to_owned()
}

impl CacheManager {
    /// Makes the index agree with the disk (files added or removed by other tools).
    pub fn reconcile(&self) -> Result<(), CacheError> {
        self.inner.store.reconcile()?;
        Ok(())
    }

    /// Every cached repository with its revisions, files, sizes, last use, pins and
    /// incomplete downloads, as they are on disk: repositories whose folders changed since
    /// the last listing are scanned, the others are read from the index. Then every URL
    /// artifact (`repo_type` [`ItemType::Url`](crate::ItemType::Url), one file, its
    /// [`ArtifactInfo`](crate::ArtifactInfo) in `artifact`).
    ///
    /// What it lists adds up to [`stats`](Self::stats)' `total_size_bytes` right after:
    /// the sum of the `size_bytes`, a blob shared by several artifacts (equal `sha256`), or
    /// a payload of huggingface_hub's cross-repo store linked from several repositories,
    /// counted once.
    pub fn list(&self) -> Result<Vec<RepoInfo>, CacheError> {
        let store = &self.inner.store;
        // Listing first: it records in the index what changed on disk, which `stats` reads.
        let listed = store.list()?;
        let artifacts = self.artifact_listings()?;
        let usage: BTreeMap<Repo, (Option<Timestamp>, bool)> =
            store.stats()?.per_repo.into_iter().map(|r| (r.repo, (r.last_used, r.pinned))).collect();
        Ok(listed
            .into_iter()
            .map(|l| {
                let (last_used, pinned) = usage.get(&l.repo).copied().unwrap_or((None, false));
                RepoInfo {
                    model_id: l.repo.to_string(),
                    repo_type: l.repo.repo_type.into(),
                    repo_id: l.repo.id.to_string(),
                    files: l.revisions.iter().map(|r| r.files.len() as u64).sum(),
                    size_bytes: l.size_bytes,
                    last_used,
                    pinned,
                    revisions: l
                        .revisions
                        .into_iter()
                        .map(|r| RevisionInfo {
                            commit: r.commit.to_string(),
                            refs: r.refs,
                            files: r
                                .files
                                .iter()
                                .map(|f| FileInfo {
                                    path: f.path.as_str().to_owned(),
                                    size_bytes: f.size,
                                    blob: f.blob.as_str().to_owned(),
                                })
                                .collect(),
                            size_bytes: r.size_bytes,
                        })
                        .collect(),
                    incomplete: l
                        .incomplete
                        .into_iter()
                        .map(|i| IncompleteDownload {
                            path: i.path.into_std_path_buf(),
                            etag: i.etag,
                            size_bytes: i.size,
                            modified: i.modified,
                        })
                        .collect(),
                    artifact: None,
                }
            })
            .chain(artifacts.iter().map(artifacts::repo_info))
            .collect())
    }

    /// Totals, per-repository sizes and use, counters and free disk space.
    pub fn stats(&self) -> Result<CacheStats, CacheError> {
        let store = &self.inner.store;
        // Listing the artifacts first makes their index agree with the disk.
        let artifacts = self.artifact_listings()?;
        let s = store.stats()?;
        let mut models: Vec<CachedModelInfo> = s
            .per_repo
            .iter()
            .map(|r| CachedModelInfo {
                model_id: r.repo.to_string(),
                repo_type: r.repo.repo_type.into(),
                size_bytes: r.size_bytes,
                files: r.files,
                revisions: r.revisions.iter().map(ToString::to_string).collect(),
                downloaded_at: r.downloaded_at,
                last_accessed: r.last_used,
                pinned: r.pinned,
                artifact: None,
            })
            .collect();
        let total_models = models.len();
        models.extend(artifacts.iter().map(artifacts::model_info));
        let c = s.counters;
        Ok(CacheStats {
            total_models,
            total_artifacts: artifacts.len(),
            total_size_bytes: s.total_bytes,
            logical_size_bytes: s.logical_bytes,
            total_files: s.files,
            cache_dir: self.cache_dir().to_owned(),
            home_dir: self.home_dir().to_owned(),
            models,
            counters: Counters {
                hits: c.hits,
                misses: c.misses,
                downloads: c.downloads,
                bytes_downloaded: c.bytes_downloaded,
                hit_ratio: c.hit_ratio(),
                failures: c.failures,
                download_success_rate: c.download_success_rate(),
                evictions: c.evictions,
                lock_waits: c.lock_waits,
                #[expect(clippy::cast_precision_loss, reason = "seconds for display and export")]
                lock_wait_seconds: c.lock_wait_micros as f64 / 1e6,
                histograms: c.histograms,
            },
            free_disk_bytes: store.free_space().ok(),
        })
    }

    /// Re-hashes every cached file (no repair).
    pub async fn validate_integrity(&self) -> Result<IntegrityReport, CacheError> {
        self.verify(None, false).await
    }

    /// Re-hashes the cached files of `target` (everything when `None`). With `repair`,
    /// corrupted and missing files are removed and, when the strategy may download, fetched
    /// again.
    pub async fn verify(&self, target: Option<&ModelRef>, repair: bool) -> Result<IntegrityReport, CacheError> {
        let scope = match target {
            None => Scope::All,
            Some(ModelRef { repo, revision: None }) => Scope::Repo(repo.clone()),
            Some(ModelRef { repo, revision: Some(r) }) => Scope::Revision(repo.clone(), r.clone()),
        };
        self.verify_scope(scope, repair).await
    }

    /// [`verify`](Self::verify) of a store scope. Repositories and artifacts are named as
    /// reports show them (artifacts by their redacted URL).
    pub(crate) async fn verify_scope(&self, scope: Scope, repair: bool) -> Result<IntegrityReport, CacheError> {
        let listing =
            if matches!(scope, Scope::Artifacts | Scope::Artifact(_)) { Vec::new() } else { self.inner.store.list()? };
        let listing: Vec<&RepoListing> = listing.iter().filter(|l| in_scope(&scope, l)).collect();
        let mut repos: BTreeSet<String> = listing.iter().map(|l| l.repo.to_string()).collect();
        let (mut files, mut bytes) = self.verify_plan(&scope, &listing)?;
        for a in self.artifact_listings()? {
            let wanted = match &scope {
                Scope::All | Scope::Artifacts => true,
                Scope::Artifact(k) => k.id() == a.id,
                _ => false,
            };
            if wanted {
                repos.insert(redact_url(a.key.url()));
                files += 1;
                bytes += a.size;
            }
        }
        // Progress: one overall bar of the blobs to hash (`Planned`), each checked blob
        // `Advanced` by its size and `Finished`, under one label.
        self.inner.progress.event(&ProgressEvent::Planned { label: VERIFY, files, cached: 0, bytes: Some(bytes) });
        let raw = self
            .blocking(move |m| {
                let progress = &m.inner.progress;
                Ok(m.inner.store.verify_reporting(&scope, repair, &mut |bytes| {
                    progress.event(&ProgressEvent::Advanced { label: VERIFY, bytes });
                    progress.event(&ProgressEvent::Finished { label: VERIFY, bytes });
                })?)
            })
            .await?;
        let mut report = IntegrityReport {
            valid_files: raw.valid,
            repaired: raw.repaired,
            bad_refs: raw.bad_refs.clone(),
            skipped: raw.skipped.clone(),
            ..IntegrityReport::default()
        };
        let mut corrupted = BTreeSet::new();
        let mut missing = BTreeSet::new();
        for c in &raw.corrupted {
            corrupted.insert(shown_owner(&c.key));
            report.corrupted.push(CorruptedFile {
                model_id: shown_owner(&c.key),
                entry: shown(&c.key),
                expected: c.expected.clone(),
                actual: c.actual.clone(),
                algorithm: CorruptedFile::algorithm_of(&c.expected, blob_name(&c.blob)).to_owned(),
                blob: blob_name(&c.blob).to_owned(),
            });
        }
        for k in &raw.missing {
            missing.insert(shown_owner(k));
            report.missing.push(shown(k));
        }
        report.valid_models = repos.into_iter().filter(|r| !corrupted.contains(r) && !missing.contains(r)).collect();
        report.corrupted_models = corrupted.into_iter().collect();
        report.missing_models = missing.into_iter().collect();
        if repair && self.inner.strategy.downloads() && !self.config().config.offline {
            for key in raw.corrupted.iter().map(|c| &c.key).chain(&raw.missing) {
                let request = match key {
                    EntryKey::Hub { repo, commit, path } => {
                        crate::AcquireRequest::File { repo: repo.clone(), revision: (*commit).into(), path: path.clone() }
                    }
                    EntryKey::Artifact { key } => artifacts::refetch_request(key),
                };
                match self.fetch(&request).await {
                    Ok(_) => report.refetched.push(shown(key)),
                    Err(e) => tracing::warn!(entry = %shown(key), "could not fetch a repaired file again: {e}"),
                }
            }
        }
        if repair && !report.is_clean() {
            report.after_repair = Some(self.recheck(&raw, &report).await?);
        }
        Ok(report)
    }

    /// After a repair: each damaged entry checked again (not the whole scope: a repair
    /// of a large cache hashes it once).
    async fn recheck(&self, raw: &cache_store::IntegrityReport, report: &IntegrityReport) -> Result<RepairedState, CacheError> {
        let keys: Vec<EntryKey> = raw.corrupted.iter().map(|c| c.key.clone()).chain(raw.missing.iter().cloned()).collect();
        let scopes: Vec<Scope> = keys
            .iter()
            .map(|k| match k {
                EntryKey::Hub { repo, commit, path } => Scope::File(repo.clone(), (*commit).into(), path.clone()),
                EntryKey::Artifact { key } => Scope::Artifact(cache_store::ArtifactKey::from_key_string(key)),
            })
            .collect();
        let again = self
            .blocking(move |m| scopes.iter().map(|s| Ok(m.inner.store.verify(s, false)?)).collect::<Result<Vec<_>, CacheError>>())
            .await?;
        let mut state = RepairedState { valid_files: report.valid_files, ..RepairedState::default() };
        for r in &again {
            state.valid_files += r.valid;
            state.corrupted.extend(r.corrupted.iter().map(|c| shown(&c.key)));
            state.missing.extend(r.missing.iter().map(shown));
        }
        state.not_cached = keys.iter().map(shown).filter(|k| !report.refetched.contains(k)).collect();
        Ok(state)
    }

    /// Removes a model (`org/name`), or one revision (`org/name@rev`).
    pub async fn remove_model(&self, model_id: &str) -> Result<RemoveReport, CacheError> {
        let r = ModelRef::parse(model_id, cache_core::RepoType::Model)?;
        self.remove(&r, &[], false).await
    }

    /// Removes a repository, a revision, or files of a revision; with `dry_run`, reports
    /// what would go without removing anything. A repository in use (a get or a
    /// [`Hold`](crate::Hold) of any process holds it) is kept and named in
    /// `skipped_in_use`.
    pub async fn remove(&self, target: &ModelRef, files: &[RepoPath], dry_run: bool) -> Result<RemoveReport, CacheError> {
        let store = &self.inner.store;
        let scopes: Vec<Scope> = match (&target.revision, files) {
            (None, []) => vec![Scope::Repo(target.repo.clone())],
            (rev, []) => vec![Scope::Revision(target.repo.clone(), rev.clone().unwrap_or_default())],
            (rev, files) => {
                files.iter().map(|p| Scope::File(target.repo.clone(), rev.clone().unwrap_or_default(), p.clone())).collect()
            }
        };
        let listing = store.list()?.into_iter().find(|l| l.repo == target.repo);
        let Some(listing) = listing else { return Err(CacheError::NotInCache { what: target.to_string() }) };
        let commit = match &target.revision {
            Some(rev) => {
                Some(store.resolve(&target.repo, rev)?.ok_or_else(|| CacheError::NotInCache { what: target.to_string() })?)
            }
            None => None,
        };
        if dry_run {
            let doomed = |c: &str, p: &str| {
                commit.is_none_or(|x| x.as_str() == c) && (files.is_empty() || files.iter().any(|f| f.as_str() == p))
            };
            let (entries, bytes_freed) = planned_removal(&listing, doomed);
            return Ok(RemoveReport { dry_run: true, entries, bytes_freed, skipped_in_use: Vec::new() });
        }
        self.blocking(move |m| {
            let mut report = RemoveReport::default();
            for scope in &scopes {
                let r = match m.inner.store.remove(scope) {
                    Ok(r) => r,
                    // Held by a get or a `Hold` of some process: kept, and reported.
                    Err(cache_store::Error::InUse { what }) => {
                        if !report.skipped_in_use.contains(&what) {
                            report.skipped_in_use.push(what);
                        }
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                report.entries += r.entries;
                report.bytes_freed += r.bytes_freed;
                report.skipped_in_use.extend(r.skipped_in_use);
            }
            Ok(report)
        })
        .await
    }

    /// Removes everything not in use, keeping the (empty) directories.
    pub async fn clear_cache(&self) -> Result<RemoveReport, CacheError> {
        self.clear(false).await
    }

    /// Like [`clear_cache`](Self::clear_cache); with `dry_run`, only reports.
    pub async fn clear(&self, dry_run: bool) -> Result<RemoveReport, CacheError> {
        if dry_run {
            let s = self.stats()?;
            return Ok(RemoveReport {
                dry_run: true,
                entries: s.total_files,
                bytes_freed: s.total_size_bytes,
                skipped_in_use: Vec::new(),
            });
        }
        self.blocking(|m| {
            let r = m.inner.store.clear()?;
            tracing::info!(entries = r.entries, bytes = r.bytes_freed, "cache cleared");
            Ok(RemoveReport { dry_run: false, entries: r.entries, bytes_freed: r.bytes_freed, skipped_in_use: r.skipped_in_use })
        })
        .await
    }

    /// Evicts by `policy` (pins and recently used files are kept), then removes stale
    /// `.incomplete` files and unused lock files.
    pub async fn prune(&self, policy: &EvictionPolicy) -> Result<PruneReport, CacheError> {
        let policy = *policy;
        self.blocking(move |m| m.prune_now(&policy, false)).await
    }

    /// Prunes with the configured policy, overridden by `options`.
    pub async fn prune_with(&self, options: &PruneOptions) -> Result<PruneReport, CacheError> {
        let mut policy = self.config().config.eviction_policy();
        if let Some(s) = options.max_size {
            policy.max_size = Some(s);
        }
        if let Some(a) = options.max_age {
            policy.max_age = Some(a);
        }
        let dry_run = options.dry_run;
        self.blocking(move |m| m.prune_now(&policy, dry_run)).await
    }

    pub(crate) fn prune_now(&self, policy: &EvictionPolicy, dry_run: bool) -> Result<PruneReport, CacheError> {
        policy.validate()?;
        let store = &self.inner.store;
        let now = Timestamp::now();
        let grace = policy.in_use_grace;
        if dry_run {
            store.flush()?;
            let entries = store.entries()?;
            let plan = plan_eviction(&entries, &BTreeSet::new(), policy, now);
            let cutoff = now.saturating_sub(grace);
            let stale: Vec<_> = store.list()?.into_iter().flat_map(|l| l.incomplete).filter(|i| i.modified <= cutoff).collect();
            return Ok(PruneReport {
                dry_run: true,
                evicted: plan
                    .evict
                    .iter()
                    .map(|e| PrunedEntry { entry: shown(&e.entry.key), reason: reason(e.reason), bytes: e.frees })
                    .collect(),
                bytes_freed: plan.bytes_freed,
                size_before: plan.size_before,
                size_after: plan.size_after,
                stale_incomplete_removed: stale.len() as u64,
                stale_bytes_freed: stale.iter().map(|i| i.size).sum(),
                ..aims(policy, &plan, entries.len())
            });
        }
        let size_before = store.stats()?.total_bytes;
        // The store plans the same way; planning here too gives each eviction its reason.
        let entries = store.entries()?;
        let plan = plan_eviction(&entries, &BTreeSet::new(), policy, now);
        let planned: BTreeMap<String, (String, u64)> =
            plan.evict.iter().map(|e| (shown(&e.entry.key), (reason(e.reason), e.frees))).collect();
        let r = store.evict(policy, now)?;
        let evicted: Vec<PrunedEntry> = r
            .evicted
            .iter()
            .map(|k| {
                let entry = shown(k);
                let (reason, bytes) = planned.get(&entry).cloned().unwrap_or_default();
                PrunedEntry { entry, reason, bytes }
            })
            .collect();
        for e in &evicted {
            tracing::info!(entry = %e.entry, "evicted");
        }
        let clean = store.clean_stale(grace)?;
        Ok(PruneReport {
            dry_run: false,
            evicted,
            skipped_in_use: r.skipped_in_use.iter().map(shown).collect(),
            bytes_freed: r.bytes_freed,
            size_before,
            size_after: store.stats()?.total_bytes,
            stale_incomplete_removed: clean.incomplete_removed,
            stale_locks_removed: clean.locks_removed + clean.temp_removed,
            stale_bytes_freed: clean.bytes_freed,
            ..aims(policy, &plan, entries.len())
        })
    }

    /// Protects a repository (or one revision) from eviction.
    pub fn pin(&self, target: &ModelRef) -> Result<(), CacheError> {
        self.inner.store.pin(&pin_scope(target))?;
        Ok(())
    }

    /// Removes the pins of a repository (or of one revision); returns whether there was
    /// one (`false`: it was not pinned, nothing changed).
    pub fn unpin(&self, target: &ModelRef) -> Result<bool, CacheError> {
        Ok(self.inner.store.unpin(&pin_scope(target))?)
    }
}

/// What a prune aimed for and what protection kept, from its policy and plan (the
/// fields of a [`PruneReport`] that say why it evicted what it did).
fn aims(policy: &EvictionPolicy, plan: &cache_core::EvictionPlan<'_>, files: usize) -> PruneReport {
    let mut recent_blobs = BTreeMap::new();
    let (mut recent, mut pinned) = (0, 0);
    for (e, why) in &plan.protected {
        match why {
            Protection::RecentlyUsed => {
                recent += 1;
                recent_blobs.insert(&e.blob, e.size);
            }
            Protection::Pinned => pinned += 1,
            _ => {}
        }
    }
    PruneReport {
        max_size: policy.max_size,
        target_size: policy.target_size(),
        max_age_secs: policy.max_age.map(|a| a.as_secs()),
        in_use_grace_secs: policy.in_use_grace.as_secs(),
        kept_recently_used: recent,
        kept_recently_used_bytes: recent_blobs.values().sum(),
        kept_pinned: pinned,
        files_before: files as u64,
        ..PruneReport::default()
    }
}

/// A blob's file name: the digest that names it.
fn blob_name(blob: &cache_core::BlobId) -> &str {
    blob.as_str().rsplit('/').next().unwrap_or_default()
}

fn pin_scope(target: &ModelRef) -> Scope {
    match &target.revision {
        None => Scope::Repo(target.repo.clone()),
        Some(r) => Scope::Revision(target.repo.clone(), r.clone()),
    }
}

/// The label of a verification's progress events.
const VERIFY: &str = "verify";

impl CacheManager {
    /// The distinct blobs (and their bytes) a verification of `scope` hashes in the
    /// repositories `listing` holds: what its progress counts.
    fn verify_plan(&self, scope: &Scope, listing: &[&RepoListing]) -> Result<(usize, u64), CacheError> {
        let commit = match scope {
            Scope::Revision(r, rev) | Scope::File(r, rev, _) => self.inner.store.resolve(r, rev)?,
            _ => None,
        };
        let mut blobs: BTreeMap<(&Repo, &str), u64> = BTreeMap::new();
        for l in listing {
            for rev in l.revisions.iter().filter(|r| commit.is_none_or(|c| c == r.commit)) {
                for f in &rev.files {
                    if matches!(scope, Scope::File(_, _, p) if *p != f.path) {
                        continue;
                    }
                    blobs.insert((&l.repo, f.blob.as_str()), f.size);
                }
            }
        }
        Ok((blobs.len(), blobs.values().sum()))
    }
}

fn in_scope(scope: &Scope, l: &RepoListing) -> bool {
    match scope {
        Scope::Repo(r) | Scope::Revision(r, _) | Scope::File(r, ..) => &l.repo == r,
        Scope::Artifacts | Scope::Artifact(_) => false,
        _ => true,
    }
}

/// Entries and bytes a removal of the files `doomed(commit, path)` selects would free:
/// a blob counts when no remaining file of the repository links it.
fn planned_removal(listing: &RepoListing, doomed: impl Fn(&str, &str) -> bool) -> (u64, u64) {
    let mut removed_blobs: BTreeMap<&str, u64> = BTreeMap::new();
    let mut kept_blobs: BTreeSet<&str> = BTreeSet::new();
    let mut entries = 0;
    for rev in &listing.revisions {
        for f in &rev.files {
            if doomed(rev.commit.as_str(), f.path.as_str()) {
                entries += 1;
                removed_blobs.insert(f.blob.as_str(), f.size);
            } else {
                kept_blobs.insert(f.blob.as_str());
            }
        }
    }
    let bytes = removed_blobs.iter().filter(|(b, _)| !kept_blobs.contains(*b)).map(|(_, s)| s).sum();
    (entries, bytes)
}
