//! `verify`: re-hash committed content against the recorded BLAKE3 (fast) or the etag's
//! digest, report corrupted and missing entries, and optionally repair.

use std::collections::{BTreeMap, HashMap};

use cache_core::{Blake3, BlobId, CommitHash, EntryKey, Etag, Repo, RepoPath};
use camino::Utf8Path;

use crate::artifacts::ArtifactKey;
use crate::error::{Error, Result};
use crate::hash;
use crate::layout::RepoLayout;
use crate::maintenance::Scope;
use crate::scan::{self, SnapFile};
use crate::store::Store;

/// One entry whose content does not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corrupted {
    /// The entry.
    pub key: EntryKey,
    /// Its blob.
    pub blob: BlobId,
    /// The digest it should have.
    pub expected: String,
    /// The digest it has.
    pub actual: String,
}

/// The outcome of [`Store::verify`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Entries whose content checked out.
    pub valid: u64,
    /// Entries whose content does not match.
    pub corrupted: Vec<Corrupted>,
    /// Snapshot links or index entries whose blob is gone.
    pub missing: Vec<EntryKey>,
    /// Refs that are not refs (not UTF-8, not a commit hash, an empty directory), as
    /// paths relative to the hub cache. Lookups treat them as absent; a repair removes them.
    pub bad_refs: Vec<String>,
    /// Repos not checked because their folder (or a folder in it) is a symlink leading
    /// outside the cache ([`Error::OutsideCache`]).
    pub skipped: Vec<String>,
    /// Whether corrupted and missing entries (and bad refs) were removed.
    pub repaired: bool,
}

impl IntegrityReport {
    /// No corruption, nothing missing, no bad ref.
    pub fn is_clean(&self) -> bool {
        self.corrupted.is_empty() && self.missing.is_empty() && self.bad_refs.is_empty()
    }
}

enum Check {
    Blake3(Blake3),
    Etag(Etag),
    Unknown,
}

impl Store {
    /// Hashes a blob that has no BLAKE3 recorded (downloads check the etag digest and
    /// leave the BLAKE3 to this first verify): one pass checks the etag and, when it
    /// matches, records the BLAKE3 for the next verifies. `(expected, actual)`.
    fn check_by_etag(&self, file: &std::fs::File, etag: &Etag, blob: &str, rel: &Utf8Path) -> Result<(String, String)> {
        let (named, b3) = hash::etag_digest_and_blake3(file, etag).map_err(Error::io("read", self.hub_path.join(rel)))?;
        if named == etag.to_string()
            && let Err(e) = self.index().and_then(|index| index.record_blake3(blob, &b3.to_string()))
        {
            tracing::warn!(blob, "could not record the blob's blake3: {e}");
        }
        Ok((etag.to_string(), named))
    }

    /// Re-hashes the committed files in `scope`. With `repair`, corrupted blobs and
    /// their links, dangling links and stale index entries are removed (a later download
    /// fetches them again).
    ///
    /// A repair removes the links to a corrupted blob before the blob, and each link
    /// before its index entry, so every state in between is a valid cache for
    /// `huggingface_hub` (no dangling link) and an interrupted repair loses nothing that
    /// a second one would not remove.
    pub fn verify(&self, scope: &Scope, repair: bool) -> Result<IntegrityReport> {
        self.verify_observed(scope, repair, &mut || {}, &mut |_| {})
    }

    /// [`Store::verify`], calling `checked(bytes)` after each blob it checked (hashed, or
    /// found the wrong size): for progress. A blob linked from several files is checked,
    /// and reported, once.
    pub fn verify_reporting(&self, scope: &Scope, repair: bool, checked: &mut dyn FnMut(u64)) -> Result<IntegrityReport> {
        self.verify_observed(scope, repair, &mut || {}, checked)
    }

    /// [`Store::verify_reporting`], calling `after_step` after each removal a repair makes.
    pub(crate) fn verify_observed(
        &self,
        scope: &Scope,
        repair: bool,
        after_step: &mut dyn FnMut(),
        checked: &mut dyn FnMut(u64),
    ) -> Result<IntegrityReport> {
        let mut report = IntegrityReport { repaired: repair, ..IntegrityReport::default() };
        let (repos, commit, path) = match scope {
            Scope::All => (scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))?, None, None),
            Scope::Repo(r) => (vec![r.clone()], None, None),
            Scope::Revision(r, rev) => match self.resolve(r, rev)? {
                Some(c) => (vec![r.clone()], Some(c), None),
                None => return Ok(report),
            },
            Scope::File(r, rev, p) => match self.resolve(r, rev)? {
                Some(c) => (vec![r.clone()], Some(c), Some(p.clone())),
                None => return Ok(report),
            },
            Scope::Artifacts | Scope::Artifact(_) => (Vec::new(), None, None),
        };
        for repo in &repos {
            match self.verify_repo(repo, (commit.as_ref(), path.as_ref()), repair, &mut report, (after_step, checked)) {
                Err(Error::OutsideCache { path }) if *scope == Scope::All => {
                    tracing::warn!(%repo, folder = %path, "not verifying a repo whose folder leads outside the cache through a symlink");
                    report.skipped.push(repo.to_string());
                }
                done => done?,
            }
        }
        if matches!(scope, Scope::All | Scope::Artifacts | Scope::Artifact(_)) {
            let only = match scope {
                Scope::Artifact(k) => Some(k.id()),
                _ => None,
            };
            self.verify_artifacts(only.as_deref(), repair, &mut report, checked)?;
        }
        Ok(report)
    }

    fn verify_repo(
        &self,
        repo: &Repo,
        (commit, path): (Option<&CommitHash>, Option<&RepoPath>),
        repair: bool,
        report: &mut IntegrityReport,
        (after_step, checked): (&mut dyn FnMut(), &mut dyn FnMut(u64)),
    ) -> Result<()> {
        let layout = RepoLayout::new(repo);
        let s = self.scan_repo(repo)?;
        if commit.is_none() {
            self.check_refs(&layout.refs(), repair, report)?;
        }
        let in_scope = |c: &str, p: &str| commit.is_none_or(|x| x.as_str() == c) && path.is_none_or(|x| x.as_str() == p);
        let rows = self.index()?.rows(Some(&layout.folder))?;
        let etags: HashMap<(&str, &str), &str> =
            rows.iter().filter_map(|r| Some(((r.revision.as_str(), r.path.as_str()), r.etag.as_deref()?))).collect();
        let sizes: HashMap<(&str, &str), u64> = rows.iter().map(|r| ((r.revision.as_str(), r.path.as_str()), r.size)).collect();
        let key = |c: &str, p: &str| -> Option<EntryKey> {
            Some(EntryKey::Hub { repo: repo.clone(), commit: CommitHash::new(c).ok()?, path: RepoPath::new(p).ok()? })
        };
        let mut by_blob: BTreeMap<&str, Vec<&SnapFile>> = BTreeMap::new();
        let mut doomed: Vec<&SnapFile> = Vec::new();
        let mut bad_blobs: Vec<&Utf8Path> = Vec::new();
        for f in s.files.iter().filter(|f| in_scope(&f.commit, &f.path)) {
            if f.size.is_none() {
                report.missing.extend(key(&f.commit, &f.path));
                doomed.push(f);
            } else {
                by_blob.entry(f.blob_id.as_str()).or_default().push(f);
            }
        }
        for (blob, files) in &by_blob {
            let first = files[0];
            let check = match self.index()?.blake3_of(blob)?.and_then(|b| Blake3::from_hex(&b).ok()) {
                Some(b) => Check::Blake3(b),
                None => match first.etag.as_deref().or_else(|| etags.get(&(first.commit.as_str(), first.path.as_str())).copied())
                {
                    Some(e) => Etag::new(e).map_or(Check::Unknown, Check::Etag),
                    None => Check::Unknown,
                },
            };
            let rel = first.blob_rel.as_deref().unwrap_or(&first.rel);
            // A blob of another size than it was committed with (truncated, say) needs no hashing.
            let on_disk = first.size.unwrap_or(0);
            let recorded = files.iter().find_map(|f| sizes.get(&(f.commit.as_str(), f.path.as_str())).filter(|s| **s != on_disk));
            let file = self.hub.open(rel).map_err(Error::io("open", self.hub_path.join(rel)))?.into_std();
            let (expected, actual) = match check {
                _ if recorded.is_some() => (format!("{} bytes", recorded.copied().unwrap_or(0)), format!("{on_disk} bytes")),
                Check::Blake3(want) => {
                    (want.to_string(), hash::blake3(&file).map_err(Error::io("read", self.hub_path.join(rel)))?.to_string())
                }
                Check::Etag(etag) => self.check_by_etag(&file, &etag, blob, rel)?,
                Check::Unknown => (String::new(), String::new()),
            };
            checked(on_disk);
            if expected == actual {
                report.valid += files.len() as u64;
                continue;
            }
            tracing::warn!(blob, expected, actual, "corrupted blob");
            // Links out of scope to the same blob are corrupted too, and go with it in a
            // repair: none may be left dangling.
            let others =
                s.files.iter().filter(|f| f.blob_rel.is_some() && f.blob_rel == first.blob_rel && !in_scope(&f.commit, &f.path));
            for f in files.iter().copied().chain(others) {
                if let Some(key) = key(&f.commit, &f.path) {
                    report.corrupted.push(Corrupted {
                        key,
                        blob: BlobId::from_relative_path(*blob),
                        expected: expected.clone(),
                        actual: actual.clone(),
                    });
                }
                doomed.push(f);
            }
            bad_blobs.extend(first.blob_rel.as_deref());
        }
        // Index entries without a file on disk.
        for r in rows.iter().filter(|r| in_scope(&r.revision, &r.path)) {
            let on_disk = s.files.iter().any(|f| f.commit == r.revision && f.path == r.path);
            if !on_disk {
                report.missing.extend(key(&r.revision, &r.path));
                if repair {
                    self.index()?.delete(&r.repo, Some(&r.revision), Some(&r.path))?;
                }
            }
        }
        if repair && !doomed.is_empty() {
            // Links first, blobs last: no state in between has a dangling link.
            let mut emptied = Vec::new();
            for f in doomed {
                let _ = self.hub.remove_file(&f.rel);
                after_step();
                let snap = layout.snapshots().join(&f.commit);
                crate::fsx::prune_empty_dirs(&self.hub, &f.rel, &snap);
                if crate::fsx::list_dir(&self.hub, &snap).unwrap_or_default().is_empty() && !emptied.contains(&f.commit) {
                    emptied.push(f.commit.clone());
                }
                self.index()?.delete(&layout.folder, Some(&f.commit), Some(&f.path))?;
            }
            for b in bad_blobs {
                let _ = self.remove_blob(b);
                after_step();
            }
            self.tidy_repo(repo, &emptied)?;
        }
        Ok(())
    }

    /// Reports (and with `repair` removes) what under `dir` is not a ref: a file that is
    /// not a commit hash in UTF-8, an empty directory.
    fn check_refs(&self, dir: &Utf8Path, repair: bool, report: &mut IntegrityReport) -> Result<()> {
        let entries = crate::fsx::list_dir(&self.hub, dir).map_err(Error::io("list", self.hub_path.join(dir)))?;
        for (name, t) in entries {
            let rel = dir.join(&name);
            let bad = if t.is_dir() {
                self.check_refs(&rel, repair, report)?;
                crate::fsx::list_dir(&self.hub, &rel).is_ok_and(|e| e.is_empty())
            } else if name.starts_with(crate::fsx::TEMP_PREFIX) {
                false
            } else {
                let text = self.hub.read(&rel).ok().and_then(|b| String::from_utf8(b).ok());
                text.is_none_or(|s| CommitHash::new(s.trim()).is_err())
            };
            if bad {
                tracing::warn!(path = %self.hub_path.join(&rel), "not a ref");
                report.bad_refs.push(rel.to_string());
                if repair {
                    let _ = if t.is_dir() { self.hub.remove_dir(&rel) } else { self.hub.remove_file(&rel) };
                }
            }
        }
        Ok(())
    }

    fn verify_artifacts(
        &self,
        only: Option<&str>,
        repair: bool,
        report: &mut IntegrityReport,
        checked: &mut dyn FnMut(u64),
    ) -> Result<()> {
        for (id, link, sha) in self.artifact_links()? {
            if only.is_some_and(|o| o != id) {
                continue;
            }
            let key = EntryKey::Artifact { key: self.artifact_key(&id).unwrap_or_else(|| id.clone()) };
            let blob = format!("artifacts/blobs/{sha}");
            let Ok(file) = self.home.open(&link).map(cap_std::fs::File::into_std) else {
                report.missing.push(key);
                if repair {
                    self.remove_artifacts(&Scope::Artifact(ArtifactKey::from_key_string(
                        &self.artifact_key(&id).unwrap_or_default(),
                    )))?;
                }
                continue;
            };
            let read_err = || Error::io("read", self.home_path.join(&link));
            let (expected, actual) = if let Some(b) = self.artifact_index()?.blake3_of(&blob)? {
                (b, hash::blake3(&file).map_err(read_err())?.to_string())
            } else {
                (sha.clone(), hash::etag_digest(&file, &Etag::new(&sha)?).map_err(read_err())?)
            };
            checked(file.metadata().map_or(0, |m| m.len()));
            if expected == actual {
                report.valid += 1;
            } else {
                report.corrupted.push(Corrupted { key, blob: BlobId::from_relative_path(&blob), expected, actual });
                if repair {
                    let _ = self.home.remove_file(Utf8Path::new(&blob));
                    self.remove_artifacts(&Scope::Artifact(ArtifactKey::from_key_string(
                        &self.artifact_key(&id).unwrap_or_default(),
                    )))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use cache_core::{Etag, Revision, Sha256};
    use camino::Utf8PathBuf;

    use crate::{CommitRequest, Scope, Store, StoreConfig};

    /// Snapshot links under `dir` whose target is gone.
    fn dangling(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                dangling(&p, out);
            } else if std::fs::metadata(&p).is_err() {
                out.push(p.display().to_string());
            }
        }
    }

    #[test]
    fn a_repair_removes_links_before_the_blob_so_no_step_leaves_a_dangling_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
        let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
        let repo = cache_core::Repo::model("org/model".parse().unwrap());
        let body = b"the weights".to_vec();
        let etag = Etag::Sha256(Sha256::of(&body));
        let mut snaps = Vec::new();
        for (n, p) in [(1, "a.bin"), (1, "copy/a.bin"), (2, "a.bin")] {
            let commit = format!("{n:040x}").parse().unwrap();
            let req = CommitRequest::new(repo.clone(), commit, p.parse().unwrap(), etag, body.len() as u64);
            let lock = store.lock_blob(&repo, &etag, &mut |_| {}).unwrap();
            snaps.push(if store.has_blob(&repo, &etag).unwrap() {
                store.link_existing(&lock, &req).unwrap()
            } else {
                let staging = store.stage(&lock, Some(body.len() as u64)).unwrap();
                staging.write_at(&body, 0).unwrap();
                store.commit(staging, &req).unwrap()
            });
        }
        // Same size, other bytes: only hashing finds it.
        std::fs::write(std::fs::canonicalize(&snaps[0]).unwrap(), b"THE WEIGHTS").unwrap();

        let snapshots = root.join("hub/models--org--model/snapshots");
        let blob = root.join(format!("hub/models--org--model/blobs/{etag}"));
        let mut steps = Vec::new();
        let scope = Scope::File(
            repo.clone(),
            Revision::from(format!("{:040x}", 1).parse::<cache_core::CommitHash>().unwrap()),
            "a.bin".parse().unwrap(),
        );
        let mut checked = Vec::new();
        let report = store
            .verify_observed(
                &scope,
                true,
                &mut || {
                    let mut bad = Vec::new();
                    dangling(snapshots.as_std_path(), &mut bad);
                    assert!(bad.is_empty(), "dangling links after step {}: {bad:?}", steps.len());
                    steps.push(blob.exists());
                },
                &mut |bytes| checked.push(bytes),
            )
            .unwrap();
        assert_eq!(report.corrupted.len(), 3, "every link to the corrupted blob: {report:?}");
        assert_eq!(checked, [11], "one blob hashed, reported once with its size");
        assert_eq!(steps, [true, true, true, false], "three links, then the blob");
        assert!(!blob.exists());
        assert!(store.list().unwrap().is_empty());
    }
}
