//! `huggingface_hub` 2.x's cross-repo shared blob store, spoken with its own protocol
//! (`huggingface_hub/utils/_shared_blobs.py`):
//!
//! ```text
//! <hub>/blobs/.huggingface-shared-blobs   marker, "1\n": the store exists and is owned
//! <hub>/blobs/<2hex>/<xet_hash>           payload: a read-only regular file
//! <hub>/blobs/<2hex>/<xet_hash>.refs      manifest: one `<repo folder>/blobs/<etag>` a line
//! <hub>/blobs/<2hex>/<xet_hash>.lock      flock for publishing, referencing and sweeping
//! <repo>/blobs/<etag> -> ../../blobs/<2hex>/<xet_hash>   a repo blob using the payload
//! ```
//!
//! # Reuse
//! On a miss whose listing names a Xet hash, under the payload's lock: the payload must be
//! a regular file of the expected size (and, unless a commit of ours recorded its BLAKE3,
//! have the etag's digest: no wrong byte is published); then a temporary symlink is made
//! beside the repo blob, the manifest line is appended and fsynced, and the symlink is
//! renamed into place. So a manifest never misses a reference that exists.
//!
//! # Removal (the sweep)
//! After a repo blob that links into the store is removed, under the payload's lock: a
//! manifest that is missing or cannot be read keeps the payload (a leak beats a loss);
//! otherwise its lines are checked against the disk (each must be a repo blob that is
//! still a symlink to this payload). Any left: the manifest is rewritten with them (temp
//! file, fsync, rename). None: the payload and its manifest are deleted.

use cap_std::fs::OpenOptionsExt;
use std::io::{self, Write};

use cache_core::DigestKinds;
use camino::{Utf8Path, Utf8PathBuf};
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

use crate::commit::CommitRequest;
use crate::error::{Error, Result};
use crate::layout::{RepoLayout, SHARED_BLOBS};
use crate::lock::{BlobLock, Target};
use crate::store::Store;
use crate::{fsx, hash, scan};

/// The marker file of an owned store and its content.
const MARKER: &str = ".huggingface-shared-blobs";
const MARKER_CONTENT: &str = "1\n";

/// Whether `s` is a Xet hash (64 lowercase hex digits).
pub(crate) fn is_xet_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `blobs/<2hex>/<xet_hash>`.
fn payload_rel(xet: &str) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{SHARED_BLOBS}/{}/{xet}", &xet[..2]))
}

fn sibling(payload: &Utf8Path, suffix: &str) -> Utf8PathBuf {
    payload.with_file_name(format!("{}{suffix}", payload.file_name().unwrap_or_default()))
}

/// Whether `<hub>/blobs` is a marked store (a real folder with the marker, version 1).
fn is_store(hub: &Dir) -> bool {
    let marker = Utf8Path::new(SHARED_BLOBS).join(MARKER);
    hub.symlink_metadata(SHARED_BLOBS).is_ok_and(|m| m.is_dir())
        && hub.symlink_metadata(&marker).is_ok_and(|m| m.is_file())
        && hub.read_to_string(&marker).is_ok_and(|s| s == MARKER_CONTENT)
}

/// The payload's lock, held (flock, shared with Python's `filelock`) until dropped.
fn lock(hub: &Dir, payload: &Utf8Path) -> io::Result<cap_std::fs::File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true);
    o.follow(FollowSymlinks::No);
    o.mode(0o666);
    let file = hub.open_with(sibling(payload, ".lock"), &o)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("the shared blob lock is not a regular file"));
    }
    let std = file.into_std();
    std.lock()?;
    Ok(cap_std::fs::File::from_std(std))
}

/// Appends one reference to the manifest and flushes it to disk.
fn append_reference(hub: &Dir, payload: &Utf8Path, reference: &str) -> io::Result<()> {
    let mut o = OpenOptions::new();
    o.append(true).create(true);
    o.follow(FollowSymlinks::No);
    o.mode(0o666);
    let mut f = hub.open_with(sibling(payload, ".refs"), &o)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("the shared blob manifest is not a regular file"));
    }
    f.write_all(format!("{reference}\n").as_bytes())?;
    f.sync_all()
}

/// Whether a manifest line names a repo blob (`<type>s--<name>/blobs/<etag>`).
fn is_repo_blob_reference(line: &str) -> bool {
    let parts: Vec<&str> = line.split('/').collect();
    matches!(parts.as_slice(), [folder, "blobs", name]
        if !name.is_empty() && ["datasets--", "models--", "spaces--"].iter().any(|p| folder.len() > p.len() && folder.starts_with(p)))
}

impl Store {
    /// On a miss whose listing names the Xet hash `xet`: when a usable payload of
    /// `huggingface_hub`'s shared store holds it, links this repo's blob to it with the
    /// store's own protocol (see the module docs) and publishes the snapshot file; no
    /// transfer. `None`: the caller downloads (also when the store is absent or turned
    /// off, or symlinks are).
    pub fn link_from_shared_store(&self, lock: &BlobLock, req: &CommitRequest, xet: &str) -> Result<Option<Utf8PathBuf>> {
        if lock.held.target != (Target::Hub { repo: req.repo.clone(), etag: req.etag }) {
            return Err(Error::InvalidRequest { reason: format!("the lock `{}` is not for `{}`", lock.lock_file(), req.etag) });
        }
        if !self.config.shared_blobs || self.config.force_copy || !is_xet_hash(xet) || !is_store(&self.hub) {
            return Ok(None);
        }
        let layout = RepoLayout::new(&req.repo);
        let payload = payload_rel(xet);
        let abs = self.hub_path.join(&payload);
        let Ok(_held) = lock_payload(self, &payload) else { return Ok(None) };
        let usable = self.hub.symlink_metadata(&payload).is_ok_and(|m| m.is_file() && m.len() == req.size);
        if !usable {
            return Ok(None);
        }
        let id = payload.as_str();
        let blake3 = if let Some(b) = self.index()?.blake3_of(id)? {
            b
        } else {
            let file = self.hub.open(&payload).map_err(Error::io("open", abs.clone()))?.into_std();
            let kinds = DigestKinds { blake3: true, ..req.etag.required() };
            let digests = hash::digests(&file, kinds, req.size).map_err(Error::io("read", abs.clone()))?;
            let Some(b) = digests.blake3.filter(|_| req.etag.verify(&digests).is_ok()) else {
                tracing::warn!(payload = %abs, etag = %req.etag, "a shared-store payload does not match the digest its repo names: not used");
                return Ok(None);
            };
            b.to_string()
        };
        self.ensure_repo_dir(&layout)?;
        fsx::create_dirs(&self.hub, &layout.blobs()).map_err(Error::io("create", self.hub_path.join(layout.blobs())))?;
        let blob = layout.blob(&req.etag);
        let tmp = layout.blobs().join(format!(".{}.{}.shared", req.etag, &fsx::temp_name()[fsx::TEMP_PREFIX.len()..]));
        let target = format!("../../{payload}");
        let linked = (|| {
            self.hub.symlink(&target, &tmp)?;
            append_reference(&self.hub, &payload, blob.as_str())?;
            self.hub.rename(&tmp, &self.hub, &blob)
        })();
        if let Err(e) = linked {
            let _ = self.hub.remove_file(&tmp);
            tracing::debug!(blob = %blob, "could not link from the shared store: {e}");
            return Ok(None);
        }
        let (path, row) =
            self.link_entry(req, &layout, cache_core::BlobId::from_relative_path(id), req.size, Some(blake3), false)?;
        self.index()?.upsert(&row, None)?;
        tracing::info!(repo = %req.repo, path = %req.path, payload = %abs, "linked from the shared store");
        Ok(Some(path))
    }

    /// Removes the repo blob `blob_rel` and, when it linked into the shared store, sweeps
    /// the payload (see the module docs). Returns the bytes freed: the blob's own when it
    /// was a regular file with no other name, the payload's when the sweep deleted it.
    pub(crate) fn remove_blob(&self, blob_rel: &Utf8Path) -> Result<u64> {
        use cap_std::fs::MetadataExt;
        let Ok(meta) = self.hub.symlink_metadata(blob_rel) else { return Ok(0) };
        let payload = meta.is_symlink().then(|| scan::shared_target(&self.hub, blob_rel)).flatten();
        let own = if meta.is_file() && meta.nlink() == 1 { meta.len() } else { 0 };
        let err = Error::io("remove", self.hub_path.join(blob_rel));
        if !fsx::remove_file_if_exists(&self.hub, blob_rel).map_err(err)? {
            return Ok(0);
        }
        Ok(own + payload.map_or(0, |p| self.sweep(&p)))
    }

    /// The sweep of one payload; the bytes it freed. Any doubt keeps the payload.
    pub(crate) fn sweep(&self, payload: &Utf8Path) -> u64 {
        let name = payload.file_name().unwrap_or_default();
        let valid = payload.parent().and_then(Utf8Path::file_name).is_some_and(|p| name.len() == 64 && name.starts_with(p));
        if !valid || !is_xet_hash(name) || !is_store(&self.hub) {
            return 0;
        }
        let swept = (|| -> io::Result<u64> {
            let _held = lock(&self.hub, payload)?;
            let manifest = sibling(payload, ".refs");
            if !self.hub.symlink_metadata(&manifest).is_ok_and(|m| m.is_file()) {
                return Ok(0);
            }
            let Ok(text) = self.hub.read_to_string(&manifest) else { return Ok(0) };
            let mut refs = std::collections::BTreeSet::new();
            for line in text.lines() {
                if line.starts_with('/') || line.split('/').any(|p| p == "..") || !is_repo_blob_reference(line) {
                    continue;
                }
                let candidate = Utf8Path::new(line);
                match self.hub.symlink_metadata(candidate) {
                    Err(e) if fsx::is_not_found(&e) => continue,
                    Err(e) => return Err(e),
                    Ok(m) if !m.is_symlink() => continue,
                    Ok(_) => {}
                }
                if scan::shared_target(&self.hub, candidate).as_deref() == Some(payload) {
                    refs.insert(line.to_owned());
                }
            }
            if !refs.is_empty() {
                let content: String = refs.iter().flat_map(|r| [r.as_str(), "\n"]).collect();
                fsx::replace(
                    &self.hub,
                    payload.parent().unwrap_or(Utf8Path::new(SHARED_BLOBS)),
                    &manifest,
                    content.as_bytes(),
                    true,
                )?;
                return Ok(0);
            }
            let Ok(m) = self.hub.symlink_metadata(payload) else { return Ok(0) };
            if !m.is_file() {
                return Ok(0);
            }
            self.hub.remove_file(payload)?;
            let _ = self.hub.remove_file(&manifest);
            tracing::info!(payload = %self.hub_path.join(payload), "removed a shared-store payload no repo uses");
            Ok(m.len())
        })();
        swept.unwrap_or_else(|e| {
            tracing::debug!(payload = %payload, "shared-store sweep kept the payload: {e}");
            0
        })
    }
}

/// [`lock`] through the store's root.
fn lock_payload(store: &Store, payload: &Utf8Path) -> io::Result<cap_std::fs::File> {
    lock(&store.hub, payload)
}
