//! Maintenance: stats, pins, removal, clear and eviction of Hub files (listings are in
//! `listing`).
//!
//! Removal never deletes what is in use: a repo whose lease a reader holds is refused
//! (or skipped by eviction), and a blob whose lock is held (a transfer or commit in
//! flight, by any process, Python included) is left for later.
//!
//! Removal deletes exactly the snapshot entries its scan found, then folders with `rmdir`
//! only, bottom-up, never a whole tree: a file another program (`huggingface_hub`, say)
//! writes into the repo meanwhile stays, and so do its folders.

use std::collections::{BTreeMap, HashSet};

use cache_core::Repo;
use cache_core::{BlobId, CacheSummary, CommitHash, EntryKey, EntryMeta, Etag, RepoPath, RepoSummary, Revision, Timestamp};
use camino::Utf8Path;

use crate::artifacts::ArtifactKey;
use crate::error::{Error, Result};
use crate::fsx;
use crate::index::Row;
use crate::layout::RepoLayout;
use crate::lock;
use crate::scan::{self, SnapFile};
use crate::store::Store;

/// What an operation applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// Every Hub repo and every artifact.
    All,
    /// One repo.
    Repo(Repo),
    /// One revision of a repo (a branch or tag is resolved through `refs/`).
    Revision(Repo, Revision),
    /// One file of a revision.
    File(Repo, Revision, RepoPath),
    /// Every generic artifact.
    Artifacts,
    /// One generic artifact.
    Artifact(ArtifactKey),
}

/// What a removal did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Entries (files) removed.
    pub entries: u64,
    /// Blob bytes freed.
    pub bytes_freed: u64,
    /// Repos or artifacts left alone because another process is using them.
    pub skipped_in_use: Vec<String>,
}

impl Store {
    /// Every entry the index knows (Hub files and artifacts), with pending last-use
    /// times and pins applied: the input of eviction planning.
    pub fn entries(&self) -> Result<Vec<EntryMeta>> {
        let pins: HashSet<(String, String, String)> = self.index()?.pins()?.into_iter().collect();
        let pinned = |r: &Row| {
            pins.contains(&(r.repo.clone(), String::new(), String::new()))
                || pins.contains(&(r.repo.clone(), r.revision.clone(), String::new()))
                || pins.contains(&(r.repo.clone(), r.revision.clone(), r.path.clone()))
        };
        let mut out = Vec::new();
        for r in self.index()?.rows(None)? {
            let (Ok(repo), Ok(commit), Ok(path)) =
                (Repo::from_folder_name(&r.repo), CommitHash::new(&r.revision), RepoPath::new(&r.path))
            else {
                continue;
            };
            let pending = self.usage.last_used(&(r.repo.clone(), r.revision.clone(), r.path.clone()));
            out.push(meta(&r, EntryKey::Hub { repo, commit, path }, pending, pinned(&r)));
        }
        let apins: HashSet<String> = self.artifact_index()?.pins()?.into_iter().map(|p| p.1).collect();
        for r in self.artifact_index()?.rows(None)? {
            let pending = self.usage.last_used(&(r.repo.clone(), r.revision.clone(), r.path.clone()));
            let pinned = apins.contains(&r.revision);
            out.push(meta(&r, EntryKey::Artifact { key: r.path.clone() }, pending, pinned));
        }
        Ok(out)
    }

    /// Repos, files and bytes (each blob once, shared-store payloads included once),
    /// per-repo sizes and last use, and the counters. Reads the index only; call
    /// [`Store::reconcile`] first to pick up changes other tools made.
    pub fn stats(&self) -> Result<CacheSummary> {
        let s = self.index()?.summary()?;
        let a = self.artifact_index()?.summary()?;
        let pinned: HashSet<String> = self.index()?.pins()?.into_iter().map(|p| p.0).collect();
        let mut revisions: BTreeMap<&str, Vec<CommitHash>> = BTreeMap::new();
        for (repo, rev) in &s.revisions {
            if let Ok(c) = CommitHash::new(rev) {
                revisions.entry(repo).or_default().push(c);
            }
        }
        let mut per_repo = Vec::with_capacity(s.per_repo.len());
        for (folder, files, size, first, last) in &s.per_repo {
            let Ok(repo) = Repo::from_folder_name(folder) else { continue };
            per_repo.push(RepoSummary {
                repo,
                revisions: revisions.remove(folder.as_str()).unwrap_or_default(),
                files: *files,
                size_bytes: *size,
                downloaded_at: Some(Timestamp::from_unix_millis(*first)),
                last_used: Some(Timestamp::from_unix_millis(*last)),
                pinned: pinned.contains(folder),
            });
        }
        let batch_last = self.usage_snapshot();
        for r in &mut per_repo {
            if let Some(t) = batch_last.get(&r.repo.folder_name()) {
                r.last_used = r.last_used.max(Some(Timestamp::from_unix_millis(*t)));
            }
        }
        let mut counters = self.index()?.counters()?;
        // Artifact downloads are counted in the artifact index; lookups all in this one.
        let artifact_counters = self.artifact_index()?.counters()?;
        counters.downloads += artifact_counters.downloads;
        counters.bytes_downloaded += artifact_counters.bytes_downloaded;
        counters.histograms.download_seconds.add(&artifact_counters.histograms.download_seconds);
        counters.histograms.download_bytes_per_second.add(&artifact_counters.histograms.download_bytes_per_second);
        counters.histograms.hit_seconds.add(&self.usage.unflushed_latency());
        let (hits, misses) = self.usage.unflushed();
        counters.hits += hits;
        counters.misses += misses;
        Ok(CacheSummary {
            repos: per_repo.len() as u64,
            files: s.files + a.files,
            total_bytes: s.total_bytes + a.total_bytes,
            logical_bytes: self.index()?.logical_bytes()? + a.total_bytes,
            per_repo,
            counters,
        })
    }

    fn usage_snapshot(&self) -> BTreeMap<String, i64> {
        let batch = self.usage.take();
        let mut out = BTreeMap::new();
        for (repo, _, _, t) in &batch.touched {
            let e = out.entry(repo.clone()).or_insert(*t);
            *e = (*e).max(*t);
        }
        self.usage.restore(batch);
        out
    }

    /// Protects a repo, revision, file or artifact from eviction.
    /// Returns whether it was not pinned before.
    pub fn pin(&self, scope: &Scope) -> Result<bool> {
        self.set_pin(scope, true)
    }

    /// Removes pins at or below `scope`; returns whether there was one.
    pub fn unpin(&self, scope: &Scope) -> Result<bool> {
        self.set_pin(scope, false)
    }

    fn set_pin(&self, scope: &Scope, on: bool) -> Result<bool> {
        let commit = |repo: &Repo, rev: &Revision| {
            self.resolve(repo, rev)?
                .ok_or_else(|| Error::InvalidRequest { reason: format!("revision `{rev}` of `{repo}` is not cached") })
        };
        let pin = match scope {
            Scope::Repo(r) => (r.folder_name(), String::new(), String::new()),
            Scope::Revision(r, rev) => (r.folder_name(), commit(r, rev)?.to_string(), String::new()),
            Scope::File(r, rev, p) => (r.folder_name(), commit(r, rev)?.to_string(), p.to_string()),
            Scope::Artifact(k) => return self.artifact_index()?.set_pin(&(String::new(), k.id(), String::new()), on),
            Scope::All | Scope::Artifacts => {
                return Err(Error::InvalidRequest { reason: "pin a repo, a revision, a file or an artifact".into() });
            }
        };
        self.index()?.set_pin(&pin, on)
    }

    /// Removes a file, a revision, a repo, artifacts or everything, with the links,
    /// empty folders, orphaned blobs and refs that go with them. A repo in use by another
    /// process ([`Store::lease`]) is refused with [`Error::InUse`] (with `All`, skipped).
    pub fn remove(&self, scope: &Scope) -> Result<Removed> {
        match scope {
            Scope::All => self.clear(),
            Scope::Artifacts | Scope::Artifact(_) => self.remove_artifacts(scope),
            Scope::Repo(repo) => self.remove_hub(repo, None, None),
            Scope::Revision(repo, rev) => match self.resolve(repo, rev)? {
                Some(c) => self.remove_hub(repo, Some(&c), None),
                None => Ok(Removed::default()),
            },
            Scope::File(repo, rev, path) => match self.resolve(repo, rev)? {
                Some(c) => self.remove_hub(repo, Some(&c), Some(path)),
                None => Ok(Removed::default()),
            },
        }
    }

    /// Removes every repo and artifact not in use, keeping the roots.
    pub fn clear(&self) -> Result<Removed> {
        let mut total = Removed::default();
        for repo in scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))? {
            match self.remove_hub(&repo, None, None) {
                Ok(r) => add(&mut total, r),
                Err(Error::InUse { what }) => total.skipped_in_use.push(what),
                Err(Error::OutsideCache { path }) => {
                    tracing::warn!(%repo, folder = %path, "not clearing a repo whose folder leads outside the cache through a symlink");
                }
                Err(e) => return Err(e),
            }
        }
        // Entries of repos whose folder is gone.
        for r in self.index()?.rows(None)? {
            if !self.hub.exists(&r.repo) {
                self.index()?.delete(&r.repo, None, None)?;
            }
        }
        add(&mut total, self.remove_artifacts(&Scope::Artifacts)?);
        self.prune_records(None, None)?;
        Ok(total)
    }

    /// Removes the snapshot entries a scan found (exactly those: a file created since
    /// stays); returns how many there were.
    fn remove_scanned(&self, files: &[&SnapFile]) -> Result<u64> {
        for f in files {
            fsx::remove_file_if_exists(&self.hub, &f.rel).map_err(Error::io("remove", self.hub_path.join(&f.rel)))?;
        }
        Ok(files.len() as u64)
    }

    fn remove_hub(&self, repo: &Repo, commit: Option<&CommitHash>, path: Option<&RepoPath>) -> Result<Removed> {
        self.remove_hub_observed(repo, commit, path, &mut || {})
    }

    /// [`Store::remove_hub`], calling `after_scan` once the repo was scanned.
    pub(crate) fn remove_hub_observed(
        &self,
        repo: &Repo,
        commit: Option<&CommitHash>,
        path: Option<&RepoPath>,
        after_scan: &mut dyn FnMut(),
    ) -> Result<Removed> {
        let layout = RepoLayout::new(repo);
        let Some(_guard) = self.try_exclusive_repo(&layout.folder)? else {
            return Err(Error::InUse { what: repo.to_string() });
        };
        let scan = || self.scan_repo(repo);
        let mut removed = Removed::default();
        let io_err = |p: &Utf8Path| Error::io("remove", self.hub_path.join(p));
        let mut emptied = Vec::new();
        match (commit, path) {
            (Some(c), Some(p)) => {
                let rel = layout.snapshot_file(c, p);
                if fsx::remove_file_if_exists(&self.hub, &rel).map_err(io_err(&rel))? {
                    removed.entries = 1;
                }
                fsx::prune_empty_dirs(&self.hub, &rel, &layout.snapshot(c));
                if fsx::list_dir(&self.hub, &layout.snapshot(c)).map_err(io_err(&rel))?.is_empty() {
                    emptied.push(c.to_string());
                }
                self.index()?.delete(&layout.folder, Some(c.as_str()), Some(p.as_str()))?;
            }
            (Some(c), None) => {
                let before = scan()?;
                after_scan();
                let files: Vec<&SnapFile> = before.files.iter().filter(|f| f.commit == c.as_str()).collect();
                removed.entries = self.remove_scanned(&files)?;
                emptied.push(c.to_string());
                self.index()?.delete(&layout.folder, Some(c.as_str()), None)?;
            }
            (None, _) => {
                let before = scan()?;
                after_scan();
                removed.entries = self.remove_scanned(&before.files.iter().collect::<Vec<_>>())?;
                emptied = before.commits;
                self.index()?.delete(&layout.folder, None, None)?;
            }
        }
        removed.bytes_freed = self.tidy_repo(repo, &emptied)?;
        self.prune_records(Some(&layout.folder), None)?;
        tracing::info!(%repo, entries = removed.entries, bytes = removed.bytes_freed, "removed");
        Ok(removed)
    }

    /// After snapshot entries went: removes the `emptied` revisions whose folders are
    /// empty now (the folders, `.no_exist/`, `trees/` and the refs pointing at them),
    /// then every blob no snapshot links any more and whose lock is free, and the repo
    /// folder when nothing is left. Folders go with `rmdir`, bottom-up: a file another
    /// process wrote meanwhile stays, with its folders (and a revision it is in, with its
    /// refs). Returns the blob bytes freed.
    pub(crate) fn tidy_repo(&self, repo: &Repo, emptied: &[String]) -> Result<u64> {
        let layout = RepoLayout::new(repo);
        let root = self.hub_path.join(&layout.folder);
        let io_err = |op| Error::io(op, root.clone());
        let refs = if emptied.is_empty() { Vec::new() } else { scan::refs(&self.hub, &layout).map_err(io_err("scan"))? };
        for c in emptied {
            let Ok(commit) = CommitHash::new(c) else { continue };
            if !fsx::remove_empty_dirs(&self.hub, &layout.snapshot(&commit)) {
                continue;
            }
            fsx::remove_listed_tree(&self.hub, &layout.no_exist_dir(&commit)).map_err(io_err("remove"))?;
            fsx::remove_file_if_exists(&self.hub, &layout.tree(&commit)).map_err(io_err("remove"))?;
            for (name, _) in refs.iter().filter(|(_, target)| target == c) {
                let rel = layout.refs().join(name);
                fsx::remove_file_if_exists(&self.hub, &rel).map_err(io_err("remove"))?;
                fsx::prune_empty_dirs(&self.hub, &rel, &layout.refs());
            }
        }
        let s = self.scan_repo(repo)?;
        let linked: HashSet<&str> = s.files.iter().filter_map(|f| f.etag.as_deref()).collect();
        let mut freed = 0;
        let mut kept_blobs = 0;
        for name in &s.blobs {
            if linked.contains(name.as_str()) {
                kept_blobs += 1;
                continue;
            }
            let Ok(etag) = Etag::new(name) else { continue };
            let lock_rel = layout.lock_file(&etag);
            let Some(_held) = lock::try_exclusive(&self.hub, &lock_rel, &self.hub_path.join(&lock_rel), false)? else {
                kept_blobs += 1;
                continue;
            };
            // A blob sharing its inode with another repo's frees nothing; one linking into
            // the shared store frees the payload when the sweep finds no other user.
            freed += self.remove_blob(&layout.blob(&etag))?;
            let _ = self.hub.remove_file(&lock_rel);
        }
        if s.commits.is_empty() && s.files.is_empty() && kept_blobs == 0 && s.incomplete.is_empty() {
            // What is left describes revisions that are gone: refs, `.no_exist/`, `trees/`.
            for leftover in [layout.refs(), layout.root().join(".no_exist"), layout.root().join("trees")] {
                fsx::remove_listed_tree(&self.hub, &leftover).map_err(io_err("remove"))?;
            }
            fsx::remove_empty_dirs(&self.hub, &layout.root());
            let _ = self.hub.remove_dir(layout.lock_dir());
        }
        Ok(freed)
    }
}

fn add(total: &mut Removed, r: Removed) {
    total.entries += r.entries;
    total.bytes_freed += r.bytes_freed;
    total.skipped_in_use.extend(r.skipped_in_use);
}

fn meta(r: &Row, key: EntryKey, pending: Option<i64>, pinned: bool) -> EntryMeta {
    EntryMeta {
        key,
        blob: BlobId::from_relative_path(&r.blob),
        etag: r.etag.as_deref().and_then(|e| Etag::new(e).ok()),
        size: r.size,
        blake3: r.blake3.as_deref().and_then(|b| cache_core::Blake3::from_hex(b).ok()),
        downloaded_at: Timestamp::from_unix_millis(r.downloaded_at),
        last_used: Timestamp::from_unix_millis(pending.map_or(r.last_used, |p| p.max(r.last_used))),
        pinned,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

    use cache_core::{Etag, Sha256};
    use camino::Utf8PathBuf;

    use crate::{CommitRequest, Store, StoreConfig};

    #[test]
    fn removal_never_deletes_a_file_written_after_its_scan() {
        for round in 0..24 {
            let tmp = tempfile::tempdir().unwrap();
            let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
            let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
            let repo = cache_core::Repo::model("org/model".parse().unwrap());
            let commit: cache_core::CommitHash = format!("{:040x}", 1).parse().unwrap();
            let body = b"weights";
            let etag = Etag::Sha256(Sha256::of(body));
            let lock = store.lock_blob(&repo, &etag, &mut |_| {}).unwrap();
            let staging = store.stage(&lock, Some(body.len() as u64)).unwrap();
            staging.write_at(body, 0).unwrap();
            let req = CommitRequest::new(repo.clone(), commit, "a.bin".parse().unwrap(), etag, body.len() as u64);
            store.commit(staging, &req).unwrap();
            drop(lock);
            let dir = root.join(format!("hub/models--org--model/snapshots/{commit}"));
            let (stop, next) = (AtomicBool::new(false), AtomicUsize::new(0));
            std::thread::scope(|s| {
                // Another program adding files to the revision while it is removed.
                let writer = s.spawn(|| {
                    let mut made = Vec::new();
                    while !stop.load(SeqCst) && made.len() < 5_000 {
                        let i = next.fetch_add(1, SeqCst);
                        if std::fs::write(dir.join(format!("new-{i}")), b"x").is_ok() {
                            made.push(i);
                        }
                    }
                    made
                });
                for _ in 0..10_000 {
                    if next.load(SeqCst) >= 3 {
                        break;
                    }
                    std::thread::yield_now();
                }
                let mut scanned_before = 0;
                let one_revision = (round % 2 == 1).then_some(&commit);
                store.remove_hub_observed(&repo, one_revision, None, &mut || scanned_before = next.load(SeqCst)).unwrap();
                stop.store(true, SeqCst);
                let made = writer.join().unwrap();
                for i in made.iter().filter(|i| **i >= scanned_before) {
                    assert!(
                        dir.join(format!("new-{i}")).exists(),
                        "round {round}: `new-{i}`, written after the scan, was deleted"
                    );
                }
            });
        }
    }
}
