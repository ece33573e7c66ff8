//! Writing a blob: lock, stage into a resumable `.incomplete` file, commit (fsync, size
//! and digest check, rename, snapshot link, ref, index), in the order DESIGN.md's
//! "Download protocol" gives. Nothing is visible in `snapshots/` before the commit.
//! Which ranges of a staging file are complete is kept in a record in the home (see
//! `record`); it goes whenever its staging file goes.

use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use cache_core::{BlobId, CommitHash, DigestKinds, Digests, Etag, Repo, RepoPath, Revision, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result, is_disk_full};
use crate::index::Row;
use crate::layout::{self, RepoLayout};
use crate::lock::{self, BlobLock, Held, LockWait, Target};
use crate::record::{self, Identity, RangeRecord};
use crate::store::Store;
use crate::{fsx, hash, scan};

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

/// An open `.incomplete` file under a blob lock, for a transfer to write into (with
/// positional writes; it may also truncate). It is not truncated when opened: it holds
/// the [`Staging::completed_ranges`] of an earlier attempt, possibly by a crashed process.
pub struct Staging {
    pub(crate) held: Arc<Held>,
    pub(crate) dir: Dir,
    pub(crate) name: String,
    pub(crate) abs: Utf8PathBuf,
    pub(crate) file: std::fs::File,
    pub(crate) resumed_from: u64,
    pub(crate) expected_size: Option<u64>,
    pub(crate) completed: Vec<Range<u64>>,
    pub(crate) record: Box<RecordAt>,
}

/// Where a staging file's range record lives (in the home) and what ties it to the file.
pub(crate) struct RecordAt {
    pub(crate) home: Dir,
    pub(crate) rel: Utf8PathBuf,
    pub(crate) abs: Utf8PathBuf,
    pub(crate) id: Identity,
    /// The part of the completed ranges known to be on disk (synced).
    pub(crate) durable: Vec<Range<u64>>,
}

impl std::fmt::Debug for Staging {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Staging")
            .field("path", &self.abs)
            .field("completed", &self.completed)
            .field("record", &self.record.abs)
            .finish_non_exhaustive()
    }
}

impl Staging {
    /// The staging file, open for reading and writing.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// The end of the complete run from byte 0 when staged: a sequential transfer resumes
    /// from here. (Equal to the file's length unless an interrupted parallel transfer left
    /// it with holes; see [`Staging::completed_ranges`].)
    pub fn resume_from(&self) -> u64 {
        self.resumed_from
    }

    /// The byte ranges known complete when staged, sorted and disjoint: those its range
    /// record names when the record is valid, else its safe prefix (the bytes before its
    /// first hole). A transfer fetches only the rest.
    pub fn completed_ranges(&self) -> &[Range<u64>] {
        &self.completed
    }

    /// A handle that records, crash-safely, which ranges are complete while a transfer
    /// writes (see [`RangeRecord::save`]); the next [`Store::stage`] resumes from it.
    pub fn range_record(&self) -> Result<RangeRecord> {
        let r = &self.record;
        let file = self.file.try_clone().map_err(Error::io("open", self.abs.clone()))?;
        let home = r.home.try_clone().map_err(Error::io("open", r.abs.clone()))?;
        Ok(RangeRecord::new(file, home, (r.rel.clone(), r.abs.clone()), r.id.clone(), r.durable.clone()))
    }

    /// Deletes the range record (the staging file is gone, committed or cleared).
    pub(crate) fn remove_record(&self) {
        if let Err(e) = record::remove(&self.record.home, &self.record.rel) {
            tracing::warn!(record = %self.record.abs, "cannot remove a progress record: {e}");
        }
    }

    /// Deletes the staging file and its record (a full disk, a wrong digest).
    pub(crate) fn remove_all(&self) {
        self.remove_record();
        let _ = self.dir.remove_file(&self.name);
    }

    /// The size announced when staging, if any.
    pub fn expected_size(&self) -> Option<u64> {
        self.expected_size
    }

    /// The staging file's absolute path.
    pub fn path(&self) -> &Utf8Path {
        &self.abs
    }

    /// Writes at an offset; a full disk deletes the staging file and is reported as
    /// [`Error::DiskFull`].
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.file.write_all_at(buf, offset).map_err(|e| self.write_error(e))
    }

    /// Maps an error from writing the staging file: ENOSPC deletes it (nothing is left
    /// behind) and becomes [`Error::DiskFull`]; other errors keep it for a resume.
    pub fn write_error(&self, e: io::Error) -> Error {
        if is_disk_full(&e) {
            self.remove_all();
            let available = fsx::free_space(&self.dir).unwrap_or(0);
            Error::DiskFull { path: self.abs.clone(), needed: self.expected_size.unwrap_or(0), available }
        } else {
            Error::io("write", self.abs.clone())(e)
        }
    }

    /// Deletes the staging file and its range record.
    pub fn discard(self) -> Result<()> {
        self.remove_record();
        fsx::remove_file_if_exists(&self.dir, Utf8Path::new(&self.name)).map(drop).map_err(Error::io("remove", self.abs.clone()))
    }

    /// Fsyncs (when `sync`: a batch syncs the filesystem once instead), checks size and
    /// digest, returns the digests (with BLAKE3 when known). On any mismatch or a full
    /// disk the staging file is deleted.
    pub(crate) fn check(
        &self,
        what: &str,
        size: u64,
        etag: Option<&Etag>,
        given: Option<Digests>,
        sync: bool,
    ) -> Result<Digests> {
        let fail = |e: Error| {
            self.remove_all();
            e
        };
        if sync {
            self.file.sync_all().map_err(|e| fail(self.write_error(e)))?;
        }
        let actual = self.file.metadata().map_err(Error::io("stat", self.abs.clone()))?.len();
        if actual != size {
            return Err(fail(Error::ChecksumMismatch {
                what: what.to_owned(),
                expected: format!("{size} bytes"),
                actual: format!("{actual} bytes"),
            }));
        }
        let needed = etag.map_or(DigestKinds { sha256: true, ..DigestKinds::default() }, Etag::required);
        let covers =
            |d: &Digests| d.size == size && (!needed.sha256 || d.sha256.is_some()) && (!needed.git_sha1 || d.git_sha1.is_some());
        let digests = match given.filter(covers) {
            Some(d) => d,
            None => hash::digests(&self.file, needed, size).map_err(Error::io("read", self.abs.clone()))?,
        };
        if let Some(etag) = etag
            && let Err(m) = etag.verify(&digests)
        {
            return Err(fail(Error::ChecksumMismatch { what: what.to_owned(), expected: m.expected, actual: m.actual }));
        }
        Ok(digests)
    }

    /// The first half of a commit: the staging file is the request's, complete, and
    /// (after an fsync when `sync`) has the etag's digest.
    pub(crate) fn check_for(&self, req: &CommitRequest, sync: bool) -> Result<Digests> {
        if self.held.target != (Target::Hub { repo: req.repo.clone(), etag: req.etag }) {
            return Err(Error::InvalidRequest { reason: format!("the staging file `{}` is not for `{}`", self.abs, req.etag) });
        }
        let blob_rel = RepoLayout::new(&req.repo).blob(&req.etag);
        self.check(blob_rel.as_str(), req.size, Some(&req.etag), req.digests, sync)
    }
}

/// Where a staging file lives and where its range record goes.
pub(crate) struct StagingAt<'a> {
    pub(crate) root: &'a Dir,
    pub(crate) root_abs: &'a Utf8Path,
    pub(crate) blobs_rel: &'a Utf8Path,
    pub(crate) name: String,
    /// Home-relative path of the range record.
    pub(crate) record_rel: Utf8PathBuf,
    /// What the record names as its blob (the etag, or the artifact id).
    pub(crate) blob: String,
}

/// Opens (creating) `<blobs>/<name>` without truncating it, checking free space first,
/// and works out which of its ranges are complete.
pub(crate) fn open_staging(store: &Store, held: Arc<Held>, at: StagingAt<'_>, expected_size: Option<u64>) -> Result<Staging> {
    let StagingAt { root, root_abs, blobs_rel, name, record_rel, blob } = at;
    let blobs_abs = root_abs.join(blobs_rel);
    let dir = match root.open_dir(blobs_rel) {
        Err(e) if fsx::is_not_found(&e) => {
            fsx::create_dirs(root, blobs_rel).map_err(Error::io("create", &blobs_abs))?;
            root.open_dir(blobs_rel)
        }
        opened => opened,
    }
    .map_err(Error::io("open", &blobs_abs))?;
    let abs = blobs_abs.join(&name);
    let existing = match dir.symlink_metadata(&name) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => {
            return Err(Error::InvalidRequest { reason: format!("`{abs}` exists and is not a regular file") });
        }
        Err(_) => 0,
    };
    if let Some(size) = expected_size {
        let needed = size.saturating_sub(existing).saturating_add(store.config.free_space_margin);
        let available = fsx::free_space(&dir).map_err(Error::io("check free space", &blobs_abs))?;
        if available < needed {
            return Err(Error::DiskFull { path: blobs_abs, needed, available });
        }
    }
    let file = dir.open_with(&name, &fsx::rw_options(true)).map_err(Error::io("open", &abs))?.into_std();
    let len = file.metadata().map_err(Error::io("stat", &abs))?.len();
    let home = store.home.try_clone().map_err(Error::io("open", store.home_path.clone()))?;
    let id = Identity::of(&file, blob, expected_size).map_err(Error::io("stat", &abs))?;
    let mut record =
        Box::new(RecordAt { abs: store.home_path.join(&record_rel), home, rel: record_rel, id, durable: Vec::new() });
    let completed = if expected_size.is_some_and(|s| len > s) {
        record::remove(&record.home, &record.rel).map_err(Error::io("remove", record.abs.clone()))?;
        file.set_len(0).map_err(Error::io("truncate", &abs))?;
        Vec::new()
    } else {
        let (completed, durable) = record::completed(&record.home, &record.rel, &file, &record.id, len);
        record.durable = durable;
        completed
    };
    let resumed_from = completed.first().filter(|r| r.start == 0).map_or(0, |r| r.end);
    Ok(Staging { held, dir, name, abs, file, resumed_from, expected_size, completed, record })
}

impl Store {
    /// Takes the exclusive lock of a Hub blob (`.locks/<repo>/<etag>.lock`), waiting
    /// while its holder makes progress and reporting to `observer` (about once a second)
    /// who holds it and how far it got. After it returns, check [`Store::has_blob`]
    /// again: the holder may have committed the blob meanwhile.
    pub fn lock_blob(&self, repo: &Repo, etag: &Etag, observer: &mut dyn FnMut(&LockWait<'_>)) -> Result<BlobLock> {
        let layout = RepoLayout::new(repo);
        let rel = layout.lock_file(etag);
        let blobs = layout.blobs();
        let etag_s = etag.to_string();
        let mut progress = || incomplete_progress(&self.hub, &blobs, &etag_s);
        let target = Target::Hub { repo: repo.clone(), etag: *etag };
        let abs = self.hub_path.join(&rel);
        lock::acquire(&self.hub, &rel, abs, target, self.config.lock_stall_timeout, &mut progress, observer)
    }

    /// Opens `blobs/<etag>.incomplete` for the locked blob (see [`Staging`]). With a known
    /// size, first checks free space (keeping the configured margin).
    pub fn stage(&self, lock: &BlobLock, expected_size: Option<u64>) -> Result<Staging> {
        let Target::Hub { repo, etag } = &lock.held.target else {
            return Err(Error::InvalidRequest { reason: "this lock is for an artifact: use `stage_artifact`".into() });
        };
        let repo_layout = RepoLayout::new(repo);
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
        self.index.upsert(&row, Some(bytes))?;
        tracing::info!(repo = %req.repo, path = %req.path, commit = %req.commit, size = row.size, "committed");
        Ok(path)
    }

    /// The second half of a commit, once the staging file is checked and durable: rename
    /// it to its blob, link the snapshot, update the ref. Returns the snapshot path, the
    /// index row to record and the bytes this download transferred.
    pub(crate) fn place_staged(
        &self,
        staging: Staging,
        req: &CommitRequest,
        digests: Digests,
    ) -> Result<(Utf8PathBuf, Row, u64)> {
        let layout = RepoLayout::new(&req.repo);
        let blob_rel = layout.blob(&req.etag);
        staging.remove_record();
        if self.is_file(&blob_rel)? {
            // Committed meanwhile (a writer where locks do not work): same digest, same bytes.
            let _ = staging.dir.remove_file(&staging.name);
        } else {
            let name = req.etag.to_string();
            staging.dir.rename(&staging.name, &staging.dir, &name).map_err(|e| {
                if is_disk_full(&e) {
                    let _ = staging.dir.remove_file(&staging.name);
                }
                Error::io("rename", staging.abs.clone())(e)
            })?;
        }
        let bytes = req.size.saturating_sub(record::covered(&staging.completed));
        drop(staging);
        let blake3 = digests.blake3.map(|b| b.to_string());
        let (path, row) = self.link_entry(req, &layout, BlobId::hub(&req.repo, &req.etag), req.size, blake3, true)?;
        Ok((path, row, bytes))
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
        let blake3 = self.index.blake3_of(blob.as_str())?;
        let (path, row) = self.link_entry(req, &layout, blob, size, blake3, false)?;
        self.index.upsert(&row, None)?;
        tracing::info!(repo = %req.repo, path = %req.path, commit = %req.commit, size, "linked");
        Ok(path)
    }

    /// The identity of a repo blob: the shared-store payload it links to, or itself.
    pub(crate) fn blob_id(&self, layout: &RepoLayout, etag: &Etag) -> BlobId {
        let rel = layout.blob(etag);
        let physical = scan::shared_target(&self.hub, &rel).unwrap_or(rel);
        BlobId::from_relative_path(physical.into_string())
    }

    /// Links the snapshot file and updates the ref; returns its path and its index row.
    fn link_entry(
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
pub(crate) fn incomplete_progress(dir: &Dir, blobs: &Utf8Path, etag: &str) -> Option<u64> {
    if let Ok(m) = dir.symlink_metadata(blobs.join(format!("{etag}.incomplete"))) {
        return Some(m.len());
    }
    let entries = fsx::list_dir(dir, blobs).ok()?;
    entries
        .iter()
        .filter(|(n, _)| n.starts_with(etag) && n.ends_with(".incomplete"))
        .filter_map(|(n, _)| dir.symlink_metadata(blobs.join(n)).ok().map(|m| m.len()))
        .max()
}
