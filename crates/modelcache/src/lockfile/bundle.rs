//! `bundle create`: a locked set as one deterministic POSIX tar.
//!
//! # Layout
//! The lock first (`modelcache.lock`), then per repository (sorted as the lock) under
//! `hub/<repo folder>/`: `blobs/<etag>` (each blob of the repository once, sorted),
//! `refs/<revision>` (when the revision is a branch or tag), `snapshots/<commit>/<path>`
//! as relative links to `../../blobs/<etag>`, and `trees/<commit>.json` when the listing is
//! cached. The top is `hub/` because `$HF_HOME/hub` is huggingface_hub's default cache:
//! `tar -xf OUT.tar -C "$HF_HOME"` alone gives a cache it reads (and leaves the lock in
//! `$HF_HOME`, outside the hub cache, where `scan_cache_dir` never looks).
//! URL artifacts follow as `urls/<name>` (sorted by name): they live in the modelcache
//! home, not in huggingface_hub's layout, so `tar -xf` leaves them in `$HF_HOME/urls/`
//! for people to pick up, and `bundle import` stores them in the home like `get URL`.
//!
//! # Deterministic
//! ustar headers with mode 0644 (links 0777), uid/gid 0, empty owner names, every mtime
//! [`BUNDLE_MTIME`], entries in the order above: two bundles of one lock are the same
//! bytes, so a bundle's own SHA-256 can be pinned. Each blob is hashed while it is
//! written and checked against its etag: a bundle never carries a wrong byte.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use cache_core::{Etag, MultiHasher};
use serde::{Deserialize, Serialize};

use super::error::LockfileError;
use super::layout::link_target;
use super::lock::Lock;
use crate::error::CacheError;
use crate::manager::CacheManager;

/// The name of the lock inside a bundle (its first entry).
pub const BUNDLE_LOCK_ENTRY: &str = "modelcache.lock";

/// The modification time of every entry (2020-01-01T00:00:00Z).
pub const BUNDLE_MTIME: u64 = 1_577_836_800;

/// What [`CacheManager::bundle_create`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleReport {
    /// The bundle.
    pub path: PathBuf,
    /// Repositories in it.
    pub repos: usize,
    /// URL artifacts in it.
    pub urls: usize,
    /// Files of the lock in it.
    pub files: usize,
    /// Blobs in it (each once per repository).
    pub blobs: usize,
    /// Content bytes of those blobs.
    pub blob_bytes: u64,
    /// The bundle's size.
    pub size: u64,
    /// The bundle's SHA-256 (hex), to pin it.
    pub sha256: String,
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(BUNDLE_MTIME);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

/// A writer that hashes what passes through.
struct Hashing<W> {
    inner: W,
    sha: cache_core::Sha256Hasher,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads, for the etag check of each blob.
struct Checked<R> {
    inner: R,
    hasher: Option<MultiHasher>,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

impl CacheManager {
    /// Writes the files of `lock` into the tar `out` (see the module docs), atomically
    /// (a temporary file renamed over `out`). Every file must be present and match the
    /// lock (run [`CacheManager::sync`] first); a blob whose content differs from its
    /// etag is an integrity error and no bundle is left behind.
    pub fn bundle_create(&self, lock: &Lock, out: &Path) -> Result<BundleReport, CacheError> {
        let check = self.check_lock(lock);
        if !check.is_complete() {
            let mut problems = check.differs;
            problems.extend(check.missing.into_iter().map(|m| format!("{m} is not cached")));
            return Err(LockfileError::Differs { problems, repairable: false }.into());
        }
        let dir = match out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let result = self.write_bundle(lock, &tmp, out);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn write_bundle(&self, lock: &Lock, tmp: &Path, out: &Path) -> Result<BundleReport, CacheError> {
        let io = |op, p: &Path| LockfileError::io(op, p.to_owned());
        let file = std::fs::File::create(tmp).map_err(io("create", tmp))?;
        let sink =
            Hashing { inner: std::io::BufWriter::with_capacity(1 << 20, file), sha: cache_core::Sha256Hasher::new(), len: 0 };
        let mut tar = tar::Builder::new(sink);
        tar.mode(tar::HeaderMode::Deterministic);
        let text = lock.to_toml();
        let mut h = header(tar::EntryType::Regular, text.len() as u64, 0o644);
        tar.append_data(&mut h, BUNDLE_LOCK_ENTRY, text.as_bytes()).map_err(io("write", tmp))?;
        let (mut blobs, mut blob_bytes, mut files) = (0, 0, 0);
        for repo in &lock.models {
            let top = format!("hub/{}", repo.repo.folder_name());
            let src = self.cache_dir().join(repo.repo.folder_name());
            let mut etags: Vec<(Etag, u64)> = repo.files.iter().map(|f| (f.etag, f.size)).collect();
            etags.sort();
            etags.dedup();
            for (etag, size) in etags {
                let path = src.join("blobs").join(etag.to_string());
                let f = std::fs::File::open(&path).map_err(io("read", &path))?;
                let mut kinds = etag.required();
                kinds.blake3 = false;
                let mut reader = Checked { inner: f.take(size), hasher: Some(MultiHasher::new(kinds, size)) };
                let mut h = header(tar::EntryType::Regular, size, 0o644);
                tar.append_data(&mut h, format!("{top}/blobs/{etag}"), &mut reader).map_err(io("write", tmp))?;
                let digests = reader.hasher.take().map(MultiHasher::finalize);
                if let Some(Err(m)) = digests.map(|d| etag.verify(&d)) {
                    return Err(CacheError::ChecksumMismatch {
                        model_id: format!("{}: blob `{etag}`", repo.repo),
                        expected: m.expected,
                        actual: m.actual,
                    });
                }
                blobs += 1;
                blob_bytes += size;
            }
            if repo.revision.commit().is_none() {
                let c = repo.commit.to_string();
                let mut h = header(tar::EntryType::Regular, c.len() as u64, 0o644);
                tar.append_data(&mut h, format!("{top}/refs/{}", repo.revision), c.as_bytes()).map_err(io("write", tmp))?;
            }
            for file in &repo.files {
                let mut h = header(tar::EntryType::Symlink, 0, 0o777);
                let at = format!("{top}/snapshots/{}/{}", repo.commit, file.path);
                tar.append_link(&mut h, at, link_target(&file.path, &file.etag)).map_err(io("write", tmp))?;
                files += 1;
            }
            if let Some(tree) = self.inner.store.read_tree(&repo.repo, &repo.commit)? {
                let json = tree.to_json();
                let mut h = header(tree_kind(), json.len() as u64, 0o644);
                tar.append_data(&mut h, format!("{top}/trees/{}.json", repo.commit), json.as_bytes())
                    .map_err(io("write", tmp))?;
            }
        }
        for u in &lock.urls {
            let key = cache_store::ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            let Some(path) = self.inner.store.find_artifact(&key)? else {
                return Err(
                    LockfileError::Differs { problems: vec![format!("{} is not cached", u.name)], repairable: false }.into()
                );
            };
            let path = path.into_std_path_buf();
            let f = std::fs::File::open(&path).map_err(io("read", &path))?;
            let size = f.metadata().map_err(io("read", &path))?.len();
            let kinds = cache_core::DigestKinds { sha256: true, git_sha1: false, blake3: false };
            let mut reader = Checked { inner: f.take(size), hasher: Some(MultiHasher::new(kinds, size)) };
            let mut h = header(tar::EntryType::Regular, size, 0o644);
            tar.append_data(&mut h, format!("urls/{}", u.name), &mut reader).map_err(io("write", tmp))?;
            let actual = reader.hasher.take().map(MultiHasher::finalize).and_then(|d| d.sha256);
            if actual != Some(u.sha256) {
                return Err(CacheError::ChecksumMismatch {
                    model_id: u.name.clone(),
                    expected: u.sha256.to_string(),
                    actual: actual.map(|a| a.to_string()).unwrap_or_default(),
                });
            }
            blobs += 1;
            blob_bytes += size;
            files += 1;
        }
        let mut sink = tar.into_inner().map_err(io("write", tmp))?;
        sink.flush().map_err(io("write", tmp))?;
        let Hashing { inner, sha, len } = sink;
        let file =
            inner.into_inner().map_err(|e| LockfileError::Io { op: "write", path: tmp.to_owned(), source: e.into_error() })?;
        file.sync_all().map_err(io("write", tmp))?;
        drop(file);
        std::fs::rename(tmp, out).map_err(io("rename", tmp))?;
        Ok(BundleReport {
            path: out.to_owned(),
            repos: lock.models.len(),
            urls: lock.urls.len(),
            files,
            blobs,
            blob_bytes,
            size: len,
            sha256: sha.finalize().to_string(),
        })
    }
}

fn tree_kind() -> tar::EntryType {
    tar::EntryType::Regular
}
