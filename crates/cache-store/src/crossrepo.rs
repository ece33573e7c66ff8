//! Cross-repo hits: on a miss for a blob that another repo of this cache already holds
//! (the same etag: the same sha256 for LFS files, the same git-sha1 otherwise), the blob
//! is placed from that copy instead of being transferred.
//!
//! # How a blob is placed
//! A hard link to the other repo's blob, made under a temporary name in the repo folder
//! and renamed to `blobs/<etag>` (the same atomic publish as a download's commit). Where
//! a hard link is impossible (`EXDEV`, `EPERM`, `EMLINK`, a filesystem without links),
//! a reflink (`FICLONE`, through `reflink-copy`), else a copy (`copy_file_range`); the
//! first fallback of a process is said once as a warning. Either way both names are
//! regular files: removing either repo (by modelcache, `hf cache rm`, `rm -rf`) unlinks
//! one name and leaves the other whole, and `huggingface_hub` sees two ordinary blobs.
//!
//! # No wrong byte
//! The other copy is trusted without hashing only when a commit of ours checked it and it
//! was not modified since, as a hit would trust it: its index row was recorded after the
//! blob's last write (a row read from the disk, for a file another tool wrote, carries
//! the blob's own mtime instead). Otherwise the placed file is hashed against the etag
//! before it is published, and a mismatch leaves nothing behind (the caller downloads).
//!
//! # Accounting
//! A blob that is one inode with other names gets one identity in the index for all of
//! them (`scan::inode_id`), so totals and eviction count its bytes once; removing one
//! name frees nothing while another name keeps the inode.
//!
//! # Races
//! The other repo may be removed or evicted at any moment: its blob is either still there
//! when the hard link is made (the inode then has our name too, and lives on), or it is
//! gone and the link fails (`ENOENT`: the next candidate, or a download). Nothing of the
//! other repo is written, locked or leased.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, Ordering};

use cache_core::{DigestKinds, Repo};
use camino::{Utf8Path, Utf8PathBuf};

use crate::commit::CommitRequest;
use crate::error::{Error, Result};
use crate::index::Row;
use crate::layout::RepoLayout;
use crate::lock::{BlobLock, Target};
use crate::store::Store;
use crate::{fsx, hash};

/// How a file was placed from another copy of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placement {
    /// A hard link: one inode, no bytes written.
    Hardlink,
    /// A reflink (copy-on-write clone): shared extents, no bytes written.
    Reflink,
    /// A copy of the bytes (`copy_file_range`, which filesystems may still share).
    Copy,
    /// A symbolic link to the cache's file.
    Symlink,
}

impl Placement {
    /// Its name in messages and `--json`: `hardlink`, `reflink`, `copy`, `symlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Hardlink => "hardlink",
            Placement::Reflink => "reflink",
            Placement::Copy => "copy",
            Placement::Symlink => "symlink",
        }
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A blob placed from another repo of the cache ([`Store::link_from_other_repo`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CrossRepoHit {
    /// The snapshot path of the requested file.
    pub path: Utf8PathBuf,
    /// The repo whose blob was used.
    pub from: Repo,
    /// How the blob was placed.
    pub placement: Placement,
}

/// Whether a failed `link(2)` means this filesystem (or this pair of places) cannot have
/// hard links, so a reflink or a copy should be tried instead.
pub(crate) fn links_unsupported(e: &io::Error) -> bool {
    use rustix::io::Errno;
    Errno::from_io_error(e)
        .is_some_and(|n| [Errno::XDEV, Errno::PERM, Errno::MLINK, Errno::NOTSUP, Errno::OPNOTSUPP, Errno::NOSYS].contains(&n))
        || e.kind() == io::ErrorKind::Unsupported
}

/// Said once per process: hard links are impossible here.
static SAID_NO_LINKS: AtomicBool = AtomicBool::new(false);

/// Writes a clone of `src` into the new, empty `dst`: a reflink where the filesystem
/// supports it, else a copy (`copy_file_range` through `io::copy`).
pub(crate) fn clone_or_copy(src: &std::fs::File, dst: &std::fs::File) -> io::Result<Placement> {
    if reflink_copy::reflink_file(src, dst).is_ok() {
        return Ok(Placement::Reflink);
    }
    dst.set_len(0)?;
    let (mut from, mut to) = (src, dst);
    io::copy(&mut from, &mut to)?;
    Ok(Placement::Copy)
}

impl Store {
    /// On a miss for the locked blob: when another repo of this cache holds a blob with
    /// the same etag, places it here (a hard link, else a reflink, else a copy; see the
    /// module docs) through the normal publish path (`blobs/<etag>`, the snapshot link,
    /// the ref, the index) with no transfer. `None` when no other repo has a usable copy:
    /// the caller downloads. Call it after [`Store::has_blob`] said no, under the lock.
    pub fn link_from_other_repo(&self, lock: &BlobLock, req: &CommitRequest) -> Result<Option<CrossRepoHit>> {
        if lock.held.target != (Target::Hub { repo: req.repo.clone(), etag: req.etag }) {
            return Err(Error::InvalidRequest { reason: format!("the lock `{}` is not for `{}`", lock.lock_file(), req.etag) });
        }
        let layout = RepoLayout::new(&req.repo);
        for row in self.index()?.rows_with_etag(&req.etag.to_string(), &layout.folder)? {
            let Ok(from) = Repo::from_folder_name(&row.repo) else { continue };
            if let Some((placement, blake3)) = self.place_from(&from, &row, &layout, req)? {
                let blob = self.blob_id(&layout, &req.etag);
                if placement == Placement::Hardlink {
                    // Every name of the inode gets its identity: its bytes count once.
                    self.index()?.rename_blob(&row.blob, blob.as_str())?;
                }
                let (path, new_row) = self.link_entry(req, &layout, blob, req.size, blake3, true)?;
                self.index()?.upsert(&new_row, None)?;
                tracing::info!(repo = %req.repo, path = %req.path, from = %from, placement = %placement, "cross-repo hit");
                return Ok(Some(CrossRepoHit { path, from, placement }));
            }
        }
        Ok(None)
    }

    /// Places `from`'s blob as this repo's `blobs/<etag>`: `None` when it is not usable
    /// (gone, another size, a link into the shared store, bytes that do not match).
    fn place_from(
        &self,
        from: &Repo,
        row: &Row,
        layout: &RepoLayout,
        req: &CommitRequest,
    ) -> Result<Option<(Placement, Option<String>)>> {
        let src = RepoLayout::new(from).blob(&req.etag);
        let Ok(meta) = self.hub.symlink_metadata(&src) else { return Ok(None) };
        if !meta.is_file() || meta.len() != req.size || !self.is_contained(&RepoLayout::new(from)) {
            return Ok(None);
        }
        let modified = meta.modified().map(|t| cache_core::Timestamp::from_system_time(t.into_std()).as_unix_millis());
        // A row a commit of ours wrote was checked against the etag then: it was recorded
        // after the blob's last write (or with the BLAKE3 computed while writing it). A
        // row read from the disk (another tool's file) carries the blob's own mtime.
        let trusted = modified.is_ok_and(|m| m < row.downloaded_at || (row.blake3.is_some() && m <= row.downloaded_at));
        self.ensure_repo_dir(layout)?;
        let tmp = layout.root().join(fsx::temp_name());
        let placed = self.place_file(&src, &tmp);
        let placement = match placed {
            Ok(p) => p,
            Err(e) if fsx::is_not_found(&e) => return Ok(None),
            Err(e) => return Err(Error::io("place", self.hub_path.join(&tmp))(e)),
        };
        // A trusted copy is not hashed again; without a recorded BLAKE3 (downloads leave it
        // to the first `verify`), the new row has none either.
        let check = if trusted { Check::Trusted(row.blake3.clone()) } else { Check::Hash };
        let result = self.check_and_publish(&tmp, layout, req, placement, check);
        if !matches!(result, Ok(Published::Yes(_))) {
            let _ = self.hub.remove_file(&tmp);
        }
        result.map(|p| match p {
            Published::Yes(blake3) => Some((placement, blake3)),
            Published::Mismatch => None,
        })
    }

    /// Makes `tmp` (in the repo folder) a hard link to, else a clone of, `src`.
    fn place_file(&self, src: &Utf8Path, tmp: &Utf8Path) -> io::Result<Placement> {
        match self.hub.hard_link(src, &self.hub, tmp) {
            Ok(()) => return Ok(Placement::Hardlink),
            Err(e) if !links_unsupported(&e) => return Err(e),
            Err(e) => {
                if !SAID_NO_LINKS.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot hard-link blobs in `{}` ({e}): blobs found in other repos are reflinked, or copied where reflinks are unsupported",
                        self.hub_path
                    );
                }
            }
        }
        let from = self.hub.open(src)?.into_std();
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        let to = self.hub.open_with(tmp, &o)?.into_std();
        let placement = clone_or_copy(&from, &to)?;
        to.sync_all()?;
        Ok(placement)
    }

    /// Checks the placed file (size; digest unless `check` trusts it), makes it read-only
    /// and renames it to the blob, with its BLAKE3 when known.
    fn check_and_publish(
        &self,
        tmp: &Utf8Path,
        layout: &RepoLayout,
        req: &CommitRequest,
        placement: Placement,
        check: Check,
    ) -> Result<Published> {
        let abs = self.hub_path.join(tmp);
        let file = self.hub.open(tmp).map_err(Error::io("open", abs.clone()))?.into_std();
        let size = file.metadata().map_err(Error::io("stat", abs.clone()))?.len();
        if size != req.size {
            return Ok(Published::Mismatch);
        }
        let blake3 = if let Check::Trusted(b) = check {
            b
        } else {
            let kinds = DigestKinds { blake3: true, ..req.etag.required() };
            let digests = hash::digests(&file, kinds, size).map_err(Error::io("read", abs.clone()))?;
            let Some(b) = digests.blake3.filter(|_| req.etag.verify(&digests).is_ok()) else {
                tracing::warn!(blob = %req.etag, %placement, "another repo's copy of the blob does not match its digest: not used (`modelcache verify` finds it)");
                return Ok(Published::Mismatch);
            };
            Some(b.to_string())
        };
        set_read_only(&file).map_err(Error::io("protect", abs.clone()))?;
        let blob = layout.blob(&req.etag);
        fsx::create_dirs(&self.hub, &layout.blobs()).map_err(Error::io("create", self.hub_path.join(layout.blobs())))?;
        self.hub.rename(tmp, &self.hub, &blob).map_err(Error::io("rename", abs))?;
        Ok(Published::Yes(blake3))
    }
}

/// How a placed copy is checked before it is published.
enum Check {
    /// Committed by us and not modified since: no hashing; its recorded BLAKE3, if any.
    Trusted(Option<String>),
    /// Hashed against the etag first.
    Hash,
}

/// What checking a placed copy gave.
enum Published {
    /// Published, with its BLAKE3 when known.
    Yes(Option<String>),
    /// Its bytes do not match: not published.
    Mismatch,
}

/// Removes the write permission bits of a published blob (the shared store's payloads
/// are read-only too): an edit through a path handed out fails instead of changing
/// every name of the blob. `verify` still catches a change made anyway (by root, say).
pub(crate) fn set_read_only(file: &std::fs::File) -> io::Result<()> {
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o222 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & !0o222))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use cache_core::{Etag, Repo, Sha256};
    use camino::Utf8PathBuf;

    use super::Placement;
    use crate::{CommitRequest, Store, StoreConfig};

    fn store() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
        let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
        (tmp, store)
    }

    fn request(repo: &Repo, etag: Etag, size: usize) -> CommitRequest {
        CommitRequest::new(repo.clone(), format!("{:040x}", 1).parse().unwrap(), "w.bin".parse().unwrap(), etag, size as u64)
    }

    fn commit(store: &Store, repo: &Repo, body: &[u8]) -> Utf8PathBuf {
        let etag = Etag::Sha256(Sha256::of(body));
        let lock = store.lock_blob(repo, &etag, &mut |_| {}).unwrap();
        let staging = store.stage(&lock, Some(body.len() as u64)).unwrap();
        staging.write_at(body, 0).unwrap();
        store.commit(staging, &request(repo, etag, body.len())).unwrap()
    }

    #[test]
    fn a_blob_of_another_repo_becomes_one_inode_counted_once() {
        let (_tmp, store) = store();
        let (a, b) = (Repo::model("org/a".parse().unwrap()), Repo::model("org/b".parse().unwrap()));
        let body = vec![7_u8; 10_000];
        let etag = Etag::Sha256(Sha256::of(&body));
        let first = commit(&store, &a, &body);
        let lock = store.lock_blob(&b, &etag, &mut |_| {}).unwrap();
        let hit = store.link_from_other_repo(&lock, &request(&b, etag, body.len())).unwrap().unwrap();
        assert_eq!((hit.from, hit.placement), (a.clone(), Placement::Hardlink));
        let (ma, mb) = (std::fs::metadata(&first).unwrap(), std::fs::metadata(&hit.path).unwrap());
        assert_eq!((ma.ino(), mb.nlink(), mb.mode() & 0o222), (mb.ino(), 2, 0));
        let stats = store.stats().unwrap();
        assert_eq!((stats.total_bytes, stats.logical_bytes), (10_000, 20_000));
        // Listing from the disk gives the same identity: still counted once.
        store.reconcile().unwrap();
        assert_eq!(store.stats().unwrap().total_bytes, 10_000);
        assert!(store.verify(&crate::Scope::All, false).unwrap().is_clean());
    }

    #[test]
    fn a_copy_modified_since_its_commit_is_hashed_and_not_used_when_wrong() {
        let (tmp, store) = store();
        let (a, b) = (Repo::model("org/a".parse().unwrap()), Repo::model("org/b".parse().unwrap()));
        let body = vec![7_u8; 10_000];
        let etag = Etag::Sha256(Sha256::of(&body));
        let first = commit(&store, &a, &body);
        let blob = std::fs::canonicalize(&first).unwrap();
        std::fs::set_permissions(&blob, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"X", 5).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10)).unwrap();
        let lock = store.lock_blob(&b, &etag, &mut |_| {}).unwrap();
        assert_eq!(store.link_from_other_repo(&lock, &request(&b, etag, body.len())).unwrap(), None);
        let folder = tmp.path().join("hub/models--org--b");
        let left: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["snapshots"], "no temporary file and no blob left behind");
        assert_eq!(std::fs::metadata(&blob).unwrap().nlink(), 1);
    }

    #[test]
    fn a_clone_is_a_reflink_or_a_copy_with_the_same_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        std::fs::write(&src, vec![3_u8; 100_000]).unwrap();
        let placement = super::clone_or_copy(&std::fs::File::open(&src).unwrap(), &std::fs::File::create(&dst).unwrap()).unwrap();
        assert!(matches!(placement, Placement::Reflink | Placement::Copy));
        assert_eq!(std::fs::read(&dst).unwrap(), vec![3_u8; 100_000]);
        let unsupported = |code| super::links_unsupported(&std::io::Error::from_raw_os_error(code));
        assert!(unsupported(18) && unsupported(1) && unsupported(31), "EXDEV, EPERM, EMLINK fall back");
        assert!(!unsupported(2), "ENOENT (the other repo was removed) does not");
    }
}
