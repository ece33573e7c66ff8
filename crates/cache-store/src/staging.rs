//! The staging file of a blob being written: an `.incomplete` file under the blob's lock,
//! resumable (it keeps what an earlier attempt wrote, and a crash-safe record in the home
//! says which ranges of it are complete; see `record`), checked (size, digest) before a
//! commit publishes it.

use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use cache_core::{DigestKinds, Digests, Etag};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::commit::CommitRequest;
use crate::error::{Error, Result, is_disk_full};
use crate::layout::RepoLayout;
use crate::lock::{Held, Target};
use crate::record::{self, Identity, RangeRecord};
use crate::store::Store;
use crate::{fsx, hash};

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
    /// When this run opened it: a commit observes the download's duration from here.
    pub(crate) started: std::time::Instant,
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
        Ok(RangeRecord::new(file, home, (r.rel.clone(), r.abs.clone()), r.id.clone(), r.durable.clone()).beating(&self.held))
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
        self.held.beat();
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
        Ok(m) if m.is_dir() && dir.remove_dir(&name).is_ok() => {
            tracing::warn!(path = %abs, "removed an empty directory standing in for a staging file");
            0
        }
        Ok(_) => return Err(Error::NotAFile { path: abs }),
        Err(_) => 0,
    };
    if let Some(size) = expected_size {
        let (available, total) = fsx::space(&dir).map_err(Error::io("check free space", &blobs_abs))?;
        let needed = size.saturating_sub(existing).saturating_add(store.config.margin_for(total));
        if available < needed {
            return Err(Error::DiskFull { path: blobs_abs, needed, available });
        }
    }
    let file = dir.open_with(&name, &fsx::rw_options(true)).map_err(Error::io("open", &abs))?.into_std();
    let meta = file.metadata().map_err(Error::io("stat", &abs))?;
    let len = meta.len();
    let home = store.home.try_clone().map_err(Error::io("open", store.home_path.clone()))?;
    let id = Identity::of(&meta, blob, expected_size);
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
    Ok(Staging { held, dir, name, abs, file, resumed_from, expected_size, completed, record, started: std::time::Instant::now() })
}
