//! Writing a blob: lock, stage into a resumable `.incomplete` file, commit (fsync, size
//! and digest check, rename, snapshot link, ref, index), in the order ARCHITECTURE.md's
//! "Download protocol" gives. Nothing is visible in `snapshots/` before the commit.
//! The staging file itself is `staging`'s; many commits at once are `batch`'s.

use std::io;
use std::time::{Duration, SystemTime};

use cache_core::{BlobId, CommitHash, Digests, Etag, Repo, RepoPath, Revision, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result, is_disk_full};
use crate::holder::RecordAt;
use crate::index::Row;
use crate::layout::{self, RepoLayout};
use crate::lock::{self, BlobLock, LockWait, Seen, Target};
use crate::record;
use crate::staging::{Staging, StagingAt, open_staging};
use crate::store::Store;
use crate::{fsx, scan};

/// What a committed blob is: where it goes and what it must be.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CommitRequest {
    /// The repository.
    pub repo: Repo,
    /// The commit the file belongs to.
    pub commit: CommitHash,
    /// The file's path in the repository.
    pub path: RepoPath,
    /// The etag: the blob's name and the digest it must have.
    pub etag: Etag,
    /// The size it must have.
    pub size: u64,
    /// A branch or tag to point at `commit` (`refs/<name>`).
    pub ref_name: Option<Revision>,
    /// Digests computed while streaming; when absent or not covering what the etag
    /// needs, the store hashes the file itself.
    pub digests: Option<Digests>,
}

impl CommitRequest {
    /// A request without ref update or precomputed digests.
    pub fn new(repo: Repo, commit: CommitHash, path: RepoPath, etag: Etag, size: u64) -> Self {
        CommitRequest { repo, commit, path, etag, size, ref_name: None, digests: None }
    }

    /// Also point `refs/<name>` at the commit.
    #[must_use]
    pub fn with_ref(mut self, name: Revision) -> Self {
        self.ref_name = Some(name);
        self
    }

    /// Digests the caller computed while writing the staging file.
    #[must_use]
    pub fn with_digests(mut self, digests: Digests) -> Self {
        self.digests = Some(digests);
        self
    }
}

impl Store {
    /// Takes the exclusive lock of a Hub blob (`.locks/<repo>/<etag>.lock`) in the store's
    /// [`LockMode`](crate::LockMode), waiting while its holder makes progress and
    /// reporting to `observer` (about once a second) who holds it, how far and how fast it
    /// got. A holder proved gone is taken over after `lock_lease` without progress
    /// ([`BlobLock::taken_over`] says why). After it returns, check [`Store::has_blob`]
    /// again: the holder may have committed the blob meanwhile (a waiter also returns,
    /// without a lock, as soon as the blob appears).
    pub fn lock_blob(&self, repo: &Repo, etag: &Etag, observer: &mut dyn FnMut(&LockWait<'_>)) -> Result<BlobLock> {
        let layout = RepoLayout::new(repo);
        let rel = layout.lock_file(etag);
        let blobs = layout.blobs();
        let etag_s = etag.to_string();
        let blob = layout.blob(etag);
        let mut progress = || Seen {
            staged: incomplete_progress(&self.hub, &blobs, &etag_s),
            published: self.hub.symlink_metadata(&blob).is_ok_and(|m| m.is_file()),
        };
        let record = layout::holder_record(&self.state, &layout.folder, &etag_s);
        let home = self.home.try_clone().map_err(Error::io("open", self.home_path.clone()))?;
        let locks = self.root_locks().hub;
        let req = lock::Request {
            dir: &self.hub,
            rel: &rel,
            abs: self.hub_path.join(&rel),
            target: Target::Hub { repo: repo.clone(), etag: *etag },
            mode: locks.mode,
            stall_timeout: self.config.lock_stall_timeout,
            lease: self.config.lock_lease,
            record: RecordAt { home, rel: record },
            keep_record: locks.keeps_holder_records(),
        };
        let lock = lock::acquire(req, &mut progress, observer)?;
        self.record_lock_wait(&lock);
        Ok(lock)
    }

    /// Opens `blobs/<etag>.incomplete` for the locked blob (see [`Staging`]). With a known
    /// size, first checks free space (keeping the configured margin).
    pub fn stage(&self, lock: &BlobLock, expected_size: Option<u64>) -> Result<Staging> {
        let Target::Hub { repo, etag } = &lock.held.target else {
            return Err(Error::InvalidRequest { reason: "this lock is for an artifact: use `stage_artifact`".into() });
        };
        let repo_layout = RepoLayout::new(repo);
        self.ensure_repo_dir(&repo_layout)?;
        let at = StagingAt {
            root: &self.hub,
            root_abs: &self.hub_path,
            blobs_rel: &repo_layout.blobs(),
            name: format!("{etag}.incomplete"),
            record_rel: layout::range_record(&self.state, &repo_layout.folder, &etag.to_string()),
            blob: etag.to_string(),
        };
        open_staging(self, lock.held.clone(), at, expected_size)
    }

    /// Publishes a staged blob: fsync, size and digest check (a mismatch deletes the
    /// staging file: [`Error::ChecksumMismatch`]), rename to `blobs/<etag>`, link
    /// `snapshots/<commit>/<path>`, update `refs/`, record in the index. Returns the
    /// snapshot path.
    pub fn commit(&self, staging: Staging, req: &CommitRequest) -> Result<Utf8PathBuf> {
        let digests = staging.check_for(req, true)?;
        let (path, row, bytes) = self.place_staged(staging, req, digests)?;
        self.index()?.upsert(&row, Some(bytes))?;
        tracing::info!(repo = %req.repo, path = %req.path, commit = %req.commit, size = row.size, "committed");
        Ok(path)
    }

    /// The second half of a commit, once the staging file is checked and durable: rename
    /// it to its blob, link the snapshot, update the ref. Returns the snapshot path, the
    /// index row to record and the bytes this download transferred with its duration.
    pub(crate) fn place_staged(
        &self,
        staging: Staging,
        req: &CommitRequest,
        digests: Digests,
    ) -> Result<(Utf8PathBuf, Row, (u64, Duration))> {
        let layout = RepoLayout::new(&req.repo);
        let blob_rel = layout.blob(&req.etag);
        staging.remove_record();
        if self.is_file(&blob_rel)? {
            // Committed meanwhile (a writer where locks do not work): same digest, same bytes.
            let _ = staging.dir.remove_file(&staging.name);
        } else {
            let name = req.etag.to_string();
            match staging.dir.rename(&staging.name, &staging.dir, &name) {
                Ok(()) => {
                    // Published blobs are read-only (the file handle still names the inode).
                    if let Err(e) = crate::crossrepo::set_read_only(&staging.file) {
                        tracing::warn!(blob = %blob_rel, "cannot make the blob read-only: {e}");
                    }
                }
                // Without locks (`lock_mode = none`, or a filesystem that ignores them) two
                // writers share the staging file; the other one renamed it between our check
                // and our rename. The blob is the inode we just verified.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && self.is_file(&blob_rel)? => {
                    tracing::debug!(blob = %blob_rel, "published meanwhile by a writer without locks");
                }
                Err(e) => {
                    if is_disk_full(&e) {
                        let _ = staging.dir.remove_file(&staging.name);
                    }
                    return Err(Error::io("rename", staging.abs.clone())(e));
                }
            }
        }
        let bytes = req.size.saturating_sub(record::covered(&staging.completed));
        let took = staging.started.elapsed();
        drop(staging);
        let blake3 = digests.blake3.map(|b| b.to_string());
        let (path, row) = self.link_entry(req, &layout, BlobId::hub(&req.repo, &req.etag), req.size, blake3, true)?;
        Ok((path, row, (bytes, took)))
    }

    /// Links a blob that is already committed (`has_blob` said so) into a snapshot,
    /// under its lock, updating `refs/` and the index. Returns the snapshot path.
    pub fn link_existing(&self, lock: &BlobLock, req: &CommitRequest) -> Result<Utf8PathBuf> {
        if lock.held.target != (Target::Hub { repo: req.repo.clone(), etag: req.etag }) {
            return Err(Error::InvalidRequest { reason: format!("the lock `{}` is not for `{}`", lock.lock_file(), req.etag) });
        }
        let layout = RepoLayout::new(&req.repo);
        let blob_rel = layout.blob(&req.etag);
        let size = match self.hub.metadata(&blob_rel) {
            Ok(m) if m.is_file() => m.len(),
            _ => return Err(Error::InvalidRequest { reason: format!("blob `{blob_rel}` is not in the cache") }),
        };
        if size != req.size {
            tracing::warn!(blob = %blob_rel, size, expected = req.size, "cached blob has an unexpected size");
        }
        let blob = self.blob_id(&layout, &req.etag);
        let blake3 = self.index()?.blake3_of(blob.as_str())?;
        let (path, row) = self.link_entry(req, &layout, blob, size, blake3, false)?;
        self.index()?.upsert(&row, None)?;
        tracing::info!(repo = %req.repo, path = %req.path, commit = %req.commit, size, "linked");
        Ok(path)
    }

    /// The identity of a repo blob: the shared-store payload it links to, the inode it
    /// shares with other names (`scan::inode_id`), or itself.
    pub(crate) fn blob_id(&self, layout: &RepoLayout, etag: &Etag) -> BlobId {
        use cap_std::fs::MetadataExt;
        let rel = layout.blob(etag);
        if let Some(payload) = scan::shared_target(&self.hub, &rel) {
            return BlobId::from_relative_path(payload.into_string());
        }
        match self.hub.symlink_metadata(&rel) {
            Ok(m) if m.is_file() && m.nlink() > 1 => {
                BlobId::from_relative_path(scan::inode_id(m.dev(), m.ino(), &etag.to_string()))
            }
            _ => BlobId::from_relative_path(rel.into_string()),
        }
    }

    /// Links the snapshot file and updates the ref; returns its path and its index row.
    pub(crate) fn link_entry(
        &self,
        req: &CommitRequest,
        layout: &RepoLayout,
        blob: BlobId,
        size: u64,
        blake3: Option<String>,
        new_blob: bool,
    ) -> Result<(Utf8PathBuf, Row)> {
        let (snap, copied) = self.link_snapshot(layout, &req.commit, &req.path, &req.etag, new_blob)?;
        let blob = if copied { BlobId::from_relative_path(snap.as_str()) } else { blob };
        if let Some(name) = &req.ref_name {
            self.write_ref(&req.repo, name, &req.commit)?;
        }
        self.ensure_cachedir_tag();
        let now = Timestamp::now().as_unix_millis();
        let row = Row {
            repo: layout.folder.clone(),
            revision: req.commit.to_string(),
            path: req.path.to_string(),
            blob: blob.as_str().to_owned(),
            etag: Some(req.etag.to_string()),
            size,
            blake3,
            downloaded_at: now,
            last_used: now,
        };
        Ok((self.hub_path.join(snap), row))
    }

    /// Creates `snapshots/<commit>/<path>` → `../../blobs/<etag>` atomically (a temp link
    /// in the repo folder renamed into place). Where symlinks are unavailable (or
    /// `force_copy`), does what `huggingface_hub` does: moves a new blob into the snapshot,
    /// copies an existing one. Returns the snapshot path and whether it is a real file.
    fn link_snapshot(
        &self,
        layout: &RepoLayout,
        commit: &CommitHash,
        path: &RepoPath,
        etag: &Etag,
        new_blob: bool,
    ) -> Result<(Utf8PathBuf, bool)> {
        let snap = layout.snapshot_file(commit, path);
        let abs = self.hub_path.join(&snap);
        let target = (!self.config.force_copy).then(|| fsx::blob_link_target(path.depth(), &etag.to_string()));
        if let Some(target) = &target
            && self.hub.symlink(target, &snap).is_ok()
        {
            // A new link appears whole; a missing directory or an entry to replace takes
            // the general route below.
            return Ok((snap, false));
        }
        if let Some(parent) = snap.parent() {
            fsx::create_dirs(&self.hub, parent).map_err(Error::io("create", abs.parent().unwrap_or(&abs)))?;
        }
        let tmp = layout.root().join(fsx::temp_name());
        if let Some(target) = &target {
            match self.hub.symlink(target, &tmp) {
                Ok(()) => {
                    return self.place(&tmp, &snap).map(|()| (snap, false));
                }
                Err(e) => tracing::warn!(path = %abs, "cannot create a symlink ({e}); copying the blob instead"),
            }
        }
        if new_blob && self.hub.symlink_metadata(layout.blob(etag)).is_ok_and(|m| m.is_file()) {
            return self.place(&layout.blob(etag), &snap).map(|()| (snap, true));
        }
        let copied = (|| {
            let mut src = self.hub.open(layout.blob(etag))?;
            let mut o = cap_std::fs::OpenOptions::new();
            o.write(true).create_new(true);
            let mut dst = self.hub.open_with(&tmp, &o)?;
            io::copy(&mut src, &mut dst)?;
            dst.sync_all()
        })();
        if let Err(e) = copied {
            let _ = self.hub.remove_file(&tmp);
            if is_disk_full(&e) {
                let available = fsx::free_space(&self.hub).unwrap_or(0);
                return Err(Error::DiskFull { path: abs, needed: 0, available });
            }
            return Err(Error::io("copy into", abs)(e));
        }
        self.place(&tmp, &snap).map(|()| (snap, true))
    }

    fn place(&self, tmp: &Utf8Path, snap: &Utf8Path) -> Result<()> {
        self.hub.rename(tmp, &self.hub, snap).map_err(|e| {
            if tmp.file_name().is_some_and(|n| n.starts_with(fsx::TEMP_PREFIX)) {
                let _ = self.hub.remove_file(tmp);
            }
            Error::io("link", self.hub_path.join(snap))(e)
        })?;
        Ok(())
    }
}

/// The largest `.incomplete` file of a blob (ours or `huggingface_hub`'s per-process one).
pub(crate) fn incomplete_progress(dir: &Dir, blobs: &Utf8Path, etag: &str) -> Option<(u64, SystemTime)> {
    let seen =
        |m: cap_std::fs::Metadata| (m.len(), m.modified().map_or(SystemTime::UNIX_EPOCH, cap_std::time::SystemTime::into_std));
    if let Ok(m) = dir.symlink_metadata(blobs.join(format!("{etag}.incomplete"))) {
        return Some(seen(m));
    }
    let entries = fsx::list_dir(dir, blobs).ok()?;
    entries
        .iter()
        .filter(|(n, _)| n.starts_with(etag) && n.ends_with(".incomplete"))
        .filter_map(|(n, _)| dir.symlink_metadata(blobs.join(n)).ok().map(seen))
        .max_by_key(|(len, _)| *len)
}
