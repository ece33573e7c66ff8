//! Generic artifacts (a URL, a test fixture): stored in the modelcache home in the same
//! verified blob + link form as Hub files, keyed by URL (and expected SHA-256).
//!
//! ```text
//! <home>/artifacts/blobs/<sha256>              committed content
//! <home>/artifacts/blobs/<id>.incomplete       staging (resumable)
//! <home>/artifacts/partial/<id>.ranges         its range record (see `record`)
//! <home>/artifacts/partial/<id>.holder         who holds its lock (see `holder`)
//! <home>/artifacts/entries/<id>/<file-name>    -> ../../blobs/<sha256>
//! <home>/artifacts/entries/<id>/.key           the key, so the index can be rebuilt
//! <home>/artifacts/locks/<id>.lock             per-artifact download lock
//! <home>/artifacts/leases/<id>.lock            shared while in use
//! <home>/artifacts/gc.lock                     commits (shared) vs blob collection (exclusive)
//! ```
//! `<id>` is 32 hex digits of the BLAKE3 of the key: no input ever becomes a path. The
//! `<file-name>` is the URL's last segment, or the name the caller chose
//! ([`ArtifactKey::with_name`]), reduced to `[A-Za-z0-9._-]` either way.

use std::io::Read;

use cache_core::{Digests, Etag, Sha256, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};
use crate::holder::{self, RecordAt};
use crate::index::Row;
use crate::lock::{self, BlobLock, Lease, LockWait, Seen, Target};
use crate::maintenance::{Removed, Scope};
use crate::staging::{Staging, StagingAt, open_staging};
use crate::store::Store;
use crate::{fsx, layout, record};

/// The identity of a generic artifact: where it comes from and, optionally, the SHA-256
/// it must have (then a different download under the same URL is a different artifact).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey {
    url: String,
    sha256: Option<Sha256>,
    name: Option<String>,
}

impl ArtifactKey {
    /// An artifact known by its URL (or any source string).
    pub fn new(url: impl Into<String>) -> Self {
        ArtifactKey { url: url.into(), sha256: None, name: None }
    }

    /// Stores the artifact under this file name instead of the URL's last segment. The
    /// name is part of the key (the same URL under two names is two entries sharing one
    /// blob) and is reduced to a safe name as [`ArtifactKey::file_name`] describes;
    /// [`ArtifactKey::is_safe_name`] says whether a name is kept as given.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(sanitize(&name.into()));
        self
    }

    /// Whether `name` is used unchanged by [`ArtifactKey::with_name`]: 1 to 100 bytes of
    /// `[A-Za-z0-9._-]`, not starting with a dot.
    pub fn is_safe_name(name: &str) -> bool {
        sanitize(name) == name
    }

    /// The file name chosen with [`ArtifactKey::with_name`], if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Requires this content digest.
    #[must_use]
    pub fn with_sha256(mut self, sha256: Sha256) -> Self {
        self.sha256 = Some(sha256);
        self
    }

    /// The source URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The expected SHA-256, if given.
    pub fn sha256(&self) -> Option<Sha256> {
        self.sha256
    }

    /// The key as stored and shown: the URL, plus `#sha256=<hex>` when a digest is given,
    /// plus `#name=<name>` when a file name was chosen.
    pub fn to_key_string(&self) -> String {
        let mut s = self.url.clone();
        if let Some(sha) = &self.sha256 {
            s.push_str("#sha256=");
            s.push_str(&sha.to_string());
        }
        if let Some(name) = &self.name {
            s.push_str("#name=");
            s.push_str(name);
        }
        s
    }

    /// Parses [`ArtifactKey::to_key_string`]'s output.
    pub fn from_key_string(s: &str) -> Self {
        let (rest, name) = match s.rsplit_once("#name=") {
            Some((rest, name)) if Self::is_safe_name(name) => (rest, Some(name.to_owned())),
            _ => (s, None),
        };
        let mut key = match rest.rsplit_once("#sha256=").and_then(|(url, hex)| Some((url, Sha256::from_hex(hex).ok()?))) {
            Some((url, sha256)) => ArtifactKey { url: url.to_owned(), sha256: Some(sha256), name: None },
            None => ArtifactKey::new(rest),
        };
        key.name = name;
        key
    }

    /// 32 hex digits naming this artifact on disk.
    pub fn id(&self) -> String {
        blake3::hash(self.to_key_string().as_bytes()).to_hex()[..32].to_owned()
    }

    /// A safe file name (`[A-Za-z0-9._-]`, no leading dot, at most 100 bytes) from the
    /// chosen name or the URL's last segment, or `artifact`.
    pub fn file_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        let path = cache_core::redact_url(&self.url);
        let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
        sanitize(last)
    }
}

/// `[A-Za-z0-9._-]` only (others become `_`), no leading dot, at most 100 bytes; never
/// empty (`artifact`).
fn sanitize(name: &str) -> String {
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).take(100).collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() { "artifact".to_owned() } else { clean.to_owned() }
}

const ROOT: &str = "artifacts";

fn entry_dir(id: &str) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{ROOT}/entries/{id}"))
}

impl Store {
    /// The stored file of an artifact, or `None`. Records the hit in memory.
    pub fn find_artifact(&self, key: &ArtifactKey) -> Result<Option<Utf8PathBuf>> {
        let started = std::time::Instant::now();
        let id = key.id();
        let rel = entry_dir(&id).join(key.file_name());
        let found = matches!(self.home.metadata(&rel), Ok(m) if m.is_file());
        if found {
            let n = self.usage.hit("", &id, &key.to_key_string(), Timestamp::now().as_unix_millis(), started.elapsed());
            self.maybe_flush(n);
            Ok(Some(self.home_path.join(rel)))
        } else {
            self.usage.miss();
            Ok(None)
        }
    }

    /// Records that an artifact was used just now, without counting a lookup (see
    /// [`Store::record_use`]).
    pub fn record_artifact_use(&self, key: &ArtifactKey) {
        let n = self.usage.touch("", &key.id(), &key.to_key_string(), Timestamp::now().as_unix_millis());
        self.maybe_flush(n);
    }

    /// Whether any process holds a lease on the artifact with this id
    /// ([`ArtifactKey::id`], the folder name of its entry) right now; `false` for
    /// anything that is not an id.
    pub fn is_artifact_leased(&self, id: &str) -> Result<bool> {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let rel = Utf8PathBuf::from(format!("{ROOT}/leases/{id}.lock"));
        Ok(lock::try_exclusive(&self.home, &rel, &self.home_path.join(&rel), false)?.is_none())
    }

    /// Holds an artifact in use (see [`Store::lease`]).
    pub fn lease_artifact(&self, key: &ArtifactKey) -> Result<Lease> {
        let rel = Utf8PathBuf::from(format!("{ROOT}/leases/{}.lock", key.id()));
        lock::lease(&self.home, &rel, &self.home_path.join(&rel))
    }

    /// Takes an artifact's download lock (see [`Store::lock_blob`]).
    pub fn lock_artifact(&self, key: &ArtifactKey, observer: &mut dyn FnMut(&LockWait<'_>)) -> Result<BlobLock> {
        let id = key.id();
        let rel = Utf8PathBuf::from(format!("{ROOT}/locks/{id}.lock"));
        let staging = Utf8PathBuf::from(format!("{ROOT}/blobs/{id}.incomplete"));
        let entry = entry_dir(&id).join(key.file_name());
        let mut progress =
            || Seen {
                staged: self.home.symlink_metadata(&staging).ok().map(|m| {
                    (m.len(), m.modified().map_or(std::time::SystemTime::UNIX_EPOCH, cap_std::time::SystemTime::into_std))
                }),
                published: self.home.metadata(&entry).is_ok_and(|m| m.is_file()),
            };
        let home = self.home.try_clone().map_err(Error::io("open", self.home_path.clone()))?;
        let locks = self.root_locks().home;
        let req = lock::Request {
            dir: &self.home,
            rel: &rel,
            abs: self.home_path.join(&rel),
            record: RecordAt { home, rel: Utf8PathBuf::from(format!("{}/{id}{}", layout::ARTIFACT_RECORDS, holder::SUFFIX)) },
            target: Target::Artifact { id },
            mode: locks.mode,
            stall_timeout: self.config.lock_stall_timeout,
            lease: self.config.lock_lease,
            keep_record: locks.keeps_holder_records(),
        };
        let lock = lock::acquire(req, &mut progress, observer)?;
        self.record_lock_wait(&lock);
        Ok(lock)
    }

    /// Opens the artifact's resumable staging file (see [`Store::stage`]).
    pub fn stage_artifact(&self, lock: &BlobLock, expected_size: Option<u64>) -> Result<Staging> {
        let Target::Artifact { id } = &lock.held.target else {
            return Err(Error::InvalidRequest { reason: "this lock is for a Hub blob: use `stage`".into() });
        };
        let at = StagingAt {
            root: &self.home,
            root_abs: &self.home_path,
            blobs_rel: Utf8Path::new("artifacts/blobs"),
            name: format!("{id}.incomplete"),
            record_rel: Utf8PathBuf::from(format!("{}/{id}{}", layout::ARTIFACT_RECORDS, record::SUFFIX)),
            blob: id.clone(),
        };
        open_staging(self, lock.held.clone(), at, expected_size)
    }

    /// Publishes a staged artifact: fsync, size check (when `size` is given), SHA-256
    /// check against the key's digest (when it has one), rename to `blobs/<sha256>`,
    /// link, record. Returns the artifact's path.
    pub fn commit_artifact(
        &self,
        staging: Staging,
        key: &ArtifactKey,
        size: Option<u64>,
        digests: Option<Digests>,
    ) -> Result<Utf8PathBuf> {
        let id = key.id();
        if staging.held.target != (Target::Artifact { id: id.clone() }) {
            return Err(Error::InvalidRequest {
                reason: format!("the staging file `{}` is not for `{}`", staging.abs, cache_core::redact_url(&key.url)),
            });
        }
        let size = match size {
            Some(s) => s,
            None => staging.file.metadata().map_err(Error::io("stat", staging.abs.clone()))?.len(),
        };
        let expected = key.sha256.map(Etag::Sha256);
        let d = staging.check(&key.to_key_string(), size, expected.as_ref(), digests, true)?;
        let sha = d.sha256.ok_or_else(|| Error::InvalidRequest { reason: "no sha256 was computed".into() })?;
        let gc_rel = Utf8PathBuf::from(format!("{ROOT}/gc.lock"));
        let _gc = lock::lease(&self.home, &gc_rel, &self.home_path.join(&gc_rel))?;
        let blob_name = sha.to_string();
        staging.remove_record();
        if staging.dir.symlink_metadata(&blob_name).is_ok() {
            let _ = staging.dir.remove_file(&staging.name);
        } else {
            staging.dir.rename(&staging.name, &staging.dir, &blob_name).map_err(Error::io("rename", staging.abs.clone()))?;
            let _ = staging.dir.open(".").and_then(|d| d.sync_all());
        }
        let bytes = size.saturating_sub(record::covered(&staging.completed));
        let took = staging.started.elapsed();
        drop(staging);
        let dir = entry_dir(&id);
        let link = dir.join(key.file_name());
        let abs = self.home_path.join(&link);
        let io = |op| Error::io(op, abs.clone());
        fsx::create_dirs(&self.home, &dir).map_err(io("create"))?;
        fsx::write_atomic(&self.home, Utf8Path::new(ROOT), &dir.join(".key"), key.to_key_string().as_bytes())
            .map_err(io("write"))?;
        let tmp = Utf8PathBuf::from(ROOT).join(fsx::temp_name());
        self.home.symlink(format!("../../blobs/{blob_name}"), &tmp).map_err(io("link"))?;
        self.home.rename(&tmp, &self.home, &link).map_err(|e| {
            let _ = self.home.remove_file(&tmp);
            io("link")(e)
        })?;
        let now = Timestamp::now().as_unix_millis();
        let row = Row {
            repo: String::new(),
            revision: id,
            path: key.to_key_string(),
            blob: format!("{ROOT}/blobs/{blob_name}"),
            etag: Some(blob_name),
            size,
            blake3: d.blake3.map(|b| b.to_string()),
            downloaded_at: now,
            last_used: now,
        };
        self.artifact_index()?.upsert(&row, Some((bytes, took)))?;
        Ok(abs)
    }

    /// Stores an artifact from a reader (a fixture, a file already fetched): lock, stage,
    /// copy, commit. Returns the existing path when it is already stored.
    pub fn put_artifact(&self, key: &ArtifactKey, reader: &mut dyn Read) -> Result<Utf8PathBuf> {
        if let Some(p) = self.find_artifact(key)? {
            return Ok(p);
        }
        let lock = self.lock_artifact(key, &mut |_| {})?;
        if let Some(p) = self.find_artifact(key)? {
            return Ok(p);
        }
        let staging = self.stage_artifact(&lock, None)?;
        staging.file().set_len(0).map_err(Error::io("truncate", staging.abs.clone()))?;
        let mut f = staging.file();
        if let Err(e) = std::io::copy(reader, &mut f) {
            return Err(staging.write_error(e));
        }
        self.commit_artifact(staging, key, None, None)
    }

    /// Removes one artifact or all of them (those not leased), then blobs no entry links.
    pub(crate) fn remove_artifacts(&self, scope: &Scope) -> Result<Removed> {
        let ids: Vec<String> = match scope {
            Scope::Artifact(k) => vec![k.id()],
            _ => fsx::list_dir(&self.home, &Utf8PathBuf::from(format!("{ROOT}/entries")))
                .map_err(Error::io("list", self.home_path.join(ROOT)))?
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
        };
        let mut removed = Removed::default();
        for id in ids {
            let lease_rel = Utf8PathBuf::from(format!("{ROOT}/leases/{id}.lock"));
            let Some(_guard) = lock::try_exclusive(&self.home, &lease_rel, &self.home_path.join(&lease_rel), false)? else {
                removed.skipped_in_use.push(id);
                continue;
            };
            let dir = entry_dir(&id);
            if self.home.exists(&dir) {
                fsx::remove_dir_all_if_exists(&self.home, &dir).map_err(Error::io("remove", self.home_path.join(&dir)))?;
                removed.entries += 1;
            }
            for r in self.artifact_index()?.rows(None)?.iter().filter(|r| r.revision == id) {
                self.artifact_index()?.delete(&r.repo, Some(&r.revision), Some(&r.path))?;
            }
        }
        removed.bytes_freed = self.gc_artifacts()?;
        Ok(removed)
    }

    /// Deletes artifact blobs no entry links (under the exclusive `gc.lock`).
    fn gc_artifacts(&self) -> Result<u64> {
        let gc_rel = Utf8PathBuf::from(format!("{ROOT}/gc.lock"));
        let mut file = None;
        for _ in 0..200 {
            file = lock::try_exclusive(&self.home, &gc_rel, &self.home_path.join(&gc_rel), true)?;
            if file.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if file.is_none() {
            return Ok(0);
        }
        let linked: std::collections::HashSet<String> = self.artifact_links()?.into_iter().map(|(_, _, sha)| sha).collect();
        let blobs = Utf8PathBuf::from(format!("{ROOT}/blobs"));
        let mut freed = 0;
        for (name, _) in fsx::list_dir(&self.home, &blobs).map_err(Error::io("list", self.home_path.join(&blobs)))? {
            if layout::is_etag_name(&name) && !linked.contains(&name) {
                let rel = blobs.join(&name);
                let size = self.home.symlink_metadata(&rel).map_or(0, |m| m.len());
                if fsx::remove_file_if_exists(&self.home, &rel).map_err(Error::io("remove", self.home_path.join(&rel)))? {
                    freed += size;
                }
            }
        }
        Ok(freed)
    }

    /// `(id, link path, sha256)` of every artifact entry on disk.
    pub(crate) fn artifact_links(&self) -> Result<Vec<(String, Utf8PathBuf, String)>> {
        let entries = Utf8PathBuf::from(format!("{ROOT}/entries"));
        let mut out = Vec::new();
        for (id, t) in fsx::list_dir(&self.home, &entries).map_err(Error::io("list", self.home_path.join(&entries)))? {
            if !t.is_dir() {
                continue;
            }
            for (name, t) in fsx::list_dir(&self.home, &entries.join(&id)).unwrap_or_default() {
                let rel = entries.join(&id).join(&name);
                if t.is_symlink()
                    && let Ok(Some(target)) = fsx::read_link(&self.home, &rel)
                    && let Some(sha) = target.strip_prefix("../../blobs/")
                {
                    out.push((id.clone(), rel, sha.to_owned()));
                }
            }
        }
        Ok(out)
    }

    /// The key stored next to an artifact entry.
    pub(crate) fn artifact_key(&self, id: &str) -> Option<String> {
        self.home.read_to_string(entry_dir(id).join(".key")).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_names_are_safe() {
        let k = ArtifactKey::new("https://x.test/a/b/model.onnx?download=1").with_sha256(Sha256::of(b"x"));
        assert_eq!(ArtifactKey::from_key_string(&k.to_key_string()), k);
        assert_eq!(k.file_name(), "model.onnx");
        assert_eq!(k.id().len(), 32);
        assert_ne!(k.id(), ArtifactKey::new(k.url()).id());
        assert_eq!(ArtifactKey::new("https://x.test/../../etc/passwd").file_name(), "passwd");
        assert_eq!(ArtifactKey::new("https://x.test/..").file_name(), "artifact");
        assert_eq!(ArtifactKey::new("a/\u{0}b c").file_name(), "_b_c");
        assert_eq!(ArtifactKey::new("").file_name(), "artifact");
    }

    #[test]
    fn a_chosen_name_is_part_of_the_key_and_kept_safe() {
        let url = "https://x.test/download?id=7";
        let plain = ArtifactKey::new(url).with_sha256(Sha256::of(b"x"));
        let named = plain.clone().with_name("weights.bin");
        assert_eq!(named.file_name(), "weights.bin");
        assert_eq!(named.name(), Some("weights.bin"));
        assert_ne!(named.id(), plain.id());
        assert_eq!(ArtifactKey::from_key_string(&named.to_key_string()), named);
        let unsigned = ArtifactKey::new(url).with_name("w.bin");
        assert_eq!(unsigned.to_key_string(), "https://x.test/download?id=7#name=w.bin");
        assert_eq!(ArtifactKey::from_key_string(&unsigned.to_key_string()), unsigned);
        assert_eq!(ArtifactKey::new(url).with_name("../../etc/passwd").file_name(), "_.._etc_passwd");
        assert_eq!(ArtifactKey::new(url).with_name(".key").file_name(), "key");
        assert_eq!(ArtifactKey::new(url).with_name("..").file_name(), "artifact");
        assert!(ArtifactKey::is_safe_name("model-1.onnx"));
        for bad in ["", ".hidden", "a/b", "a\u{0}b", "with space", &"x".repeat(101)] {
            assert!(!ArtifactKey::is_safe_name(bad), "{bad:?}");
        }
    }
}
