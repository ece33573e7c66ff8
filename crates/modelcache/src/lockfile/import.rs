//! `bundle import`: a bundle streamed into the cache, all or nothing.
//!
//! # Checks
//! The tar is read once, in order, never extracted: its first entry must be the lock;
//! every later path must be relative, without `..`, `.` or empty components, and one of
//! the layout's (`hub/<folder of a locked repository>/blobs/<etag>`, `refs/<revision>`,
//! `snapshots/<commit>/<path>`, `trees/<commit>.json`); links are allowed only in
//! `snapshots/` and only to exactly `../../blobs/<etag>` of the locked file. Anything else
//! is refused before a byte is written (exit 2). Tar paths are only compared with the
//! lock, never used to build a path on disk: the layout is rebuilt from the lock through
//! the store, so nothing outside the cache can be touched.
//!
//! # All or nothing
//! Each blob the cache lacks is written into its staging file (`blobs/<etag>.incomplete`,
//! under the blob's lock, as a download would be) while it is hashed, and compared with
//! its etag and locked size. Only when every blob of the bundle matched, and every locked
//! file has its blob, are the staged blobs published (one durability pass for them all),
//! the snapshots linked, the listings and refs written. On the first mismatch the staged
//! files are deleted and folders the import created are removed: nothing of it is visible
//! (exit 5). Blobs already in the cache are skipped (read past, not written). A failure
//! while publishing (a disk error after every digest matched) can leave part of the set
//! published: each published file is verified and complete, and running the import
//! again finishes it. A kill at any point leaves at most `.incomplete` staging files,
//! which the next download resumes and `prune` clears.
//!
//! # Performance
//! One sequential read of the tar, one write and one hash per new blob, no second read:
//! the digests computed while staging are handed to the commit.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use cache_core::{Digests, Etag, MultiHasher, Repo, RepoPath};
use cache_store::{ArtifactKey, BlobLock, CommitRequest, Staging, Tree};
use serde::{Deserialize, Serialize};

use super::bundle::BUNDLE_LOCK_ENTRY;
use super::error::LockfileError;
use super::layout::{Place, link_target, place, safe_path};
use super::lock::{Lock, LockedRepo};
use super::manifest::shown;
use crate::error::CacheError;
use crate::manager::CacheManager;

/// The largest lock or listing a bundle may carry.
const MAX_SMALL_ENTRY: u64 = 64 << 20;

/// How [`CacheManager::bundle_import`] works.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// The lock the bundle must carry (its repositories, commits and files; the
    /// manifest hash aside): a bundle made from another lock is refused before anything
    /// is written. Without it, the bundle's own lock decides what is imported.
    pub expect: Option<Lock>,
}

/// What [`CacheManager::bundle_import`] did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Repositories of the bundle's lock.
    pub repos: usize,
    /// Files of the bundle's lock.
    pub files: usize,
    /// Blobs written (or that would be).
    pub blobs_written: usize,
    /// Blobs already in the cache, skipped.
    pub blobs_skipped: usize,
    /// Bytes of the blobs written.
    pub bytes_written: u64,
    /// The bundle's lock (TOML), to save next to the project with `--lock`.
    #[serde(skip)]
    pub lock: Option<Lock>,
}

/// What the lock says one repository folder holds.
struct Expected<'a> {
    locked: &'a LockedRepo,
    /// etag → size.
    blobs: BTreeMap<Etag, u64>,
    /// snapshot path → link target.
    links: BTreeMap<String, String>,
}

/// A blob staged under its lock, waiting for the rest of the bundle.
struct Staged {
    staging: Staging,
    lock: BlobLock,
    what: StagedKind,
    size: u64,
    digests: Digests,
}

/// What a staged blob becomes.
enum StagedKind {
    /// `blobs/<etag>` of a repository.
    Blob(Repo, Etag),
    /// A URL artifact (in the modelcache home).
    Url(ArtifactKey),
}

/// Copies a tar entry into `staging` (when given) while hashing it.
fn copy_hashing(
    entry: &mut dyn Read,
    buf: &mut [u8],
    hasher: &mut MultiHasher,
    staging: Option<&Staging>,
    bundle: &Path,
) -> Result<(), CacheError> {
    let mut offset = 0u64;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) => return Err(LockfileError::Io { op: "read the bundle", path: bundle.to_owned(), source: e }.into()),
        };
        hasher.update(&buf[..n]);
        if let Some(s) = staging {
            s.write_at(&buf[..n], offset)?;
        }
        offset += n as u64;
    }
}

fn truncate(staging: &Staging) -> Result<(), CacheError> {
    staging
        .file()
        .set_len(0)
        .map_err(|e| LockfileError::Io { op: "truncate", path: staging.path().as_std_path().to_owned(), source: e }.into())
}

/// What a bundle read gave: its lock, the report so far, the listings to write.
type Bundled = (Lock, ImportReport, Vec<(usize, Tree)>);

impl CacheManager {
    /// Imports the bundle at `path` (see the module docs). Errors: an unsafe or unknown
    /// entry ([`LockfileError::HostileBundle`], exit 2), content that does not match the
    /// lock ([`LockfileError::BundleMismatch`], exit 5); either way nothing of the import
    /// is visible.
    pub fn bundle_import(&self, path: &Path, options: &ImportOptions) -> Result<ImportReport, CacheError> {
        let file = std::fs::File::open(path).map_err(LockfileError::io("open the bundle", path))?;
        let mut created = Vec::new();
        let mut staged = Vec::new();
        let result = self.read_bundle(path, file, options, &mut staged, &mut created);
        match result {
            Ok((lock, mut report, trees)) if !options.dry_run => {
                report.blobs_written = staged.len();
                self.publish(&lock, staged, &trees)?;
                report.lock = Some(lock);
                Ok(report)
            }
            Ok((lock, mut report, _)) => {
                report.lock = Some(lock);
                Ok(report)
            }
            Err(e) => {
                for s in staged {
                    let _ = s.staging.discard();
                }
                // Folders only this import created, and only while empty.
                for dir in created.iter().rev() {
                    for sub in ["blobs", "snapshots", "refs", "trees", ""] {
                        let _ = std::fs::remove_dir(Path::new(dir).join(sub));
                    }
                }
                Err(e)
            }
        }
    }

    #[expect(clippy::too_many_lines, reason = "one pass over the tar: each arm is one kind of entry")]
    fn read_bundle(
        &self,
        path: &Path,
        file: std::fs::File,
        options: &ImportOptions,
        staged: &mut Vec<Staged>,
        created: &mut Vec<PathBuf>,
    ) -> Result<Bundled, CacheError> {
        let hostile = |entry: &[u8], reason: String| LockfileError::HostileBundle {
            path: path.to_owned(),
            entry: shown(&String::from_utf8_lossy(entry)),
            reason,
        };
        let mismatch = |reason: String| LockfileError::BundleMismatch { path: path.to_owned(), reason };
        let io = |e: std::io::Error| LockfileError::Io { op: "read the bundle", path: path.to_owned(), source: e };
        let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
        let mut entries = archive.entries().map_err(io)?;
        let lock = {
            let mut first = match entries.next() {
                Some(e) => e.map_err(io)?,
                None => return Err(mismatch("the bundle is empty".to_owned()).into()),
            };
            let name = first.path_bytes().into_owned();
            if name != BUNDLE_LOCK_ENTRY.as_bytes() || first.header().entry_type() != tar::EntryType::Regular {
                return Err(mismatch(format!(
                    "its first entry is `{}`, not the lock `{BUNDLE_LOCK_ENTRY}`",
                    shown(&String::from_utf8_lossy(&name))
                ))
                .into());
            }
            if first.size() > MAX_SMALL_ENTRY {
                return Err(mismatch("its lock is larger than 64 MiB".to_owned()).into());
            }
            let mut text = String::new();
            first.read_to_string(&mut text).map_err(io)?;
            Lock::parse(&text, &path.join(BUNDLE_LOCK_ENTRY))?
        };
        if let Some(want) = &options.expect
            && (want.models != lock.models || want.urls != lock.urls)
        {
            let differs = want
                .models
                .iter()
                .find(|w| lock.model(&w.repo) != Some(*w))
                .map_or_else(|| "its entries".to_owned(), |w| format!("`{}`", w.repo));
            return Err(mismatch(format!("it was made from another lock ({differs} differs from the lock given)")).into());
        }
        let mut expected: Vec<Expected<'_>> = Vec::new();
        let mut folders = BTreeMap::new();
        for (i, r) in lock.models.iter().enumerate() {
            let mut blobs = BTreeMap::new();
            let mut links = BTreeMap::new();
            for f in &r.files {
                blobs.insert(f.etag, f.size);
                links.insert(format!("{}/{}", r.commit, f.path), link_target(&f.path, &f.etag));
            }
            folders.insert(r.repo.folder_name(), i);
            expected.push(Expected { locked: r, blobs, links });
        }
        let store = &self.inner.store;
        let mut seen: BTreeSet<(usize, Etag)> = BTreeSet::new();
        let mut seen_urls: BTreeSet<usize> = BTreeSet::new();
        let url_names: BTreeMap<String, usize> = lock.urls.iter().enumerate().map(|(i, u)| (u.name.clone(), i)).collect();
        let mut trees = Vec::new();
        let mut report = ImportReport {
            dry_run: options.dry_run,
            repos: lock.models.len(),
            files: lock.models.iter().map(|m| m.files.len()).sum::<usize>() + lock.urls.len(),
            blobs_written: 0,
            blobs_skipped: 0,
            bytes_written: 0,
            lock: None,
        };
        let mut buf = vec![0u8; 1 << 20];
        for entry in entries {
            let mut entry = entry.map_err(io)?;
            let raw = entry.path_bytes().into_owned();
            let rel = safe_path(&raw).map_err(|r| hostile(&raw, r))?;
            let kind = entry.header().entry_type();
            if kind == tar::EntryType::Directory && (rel == "hub" || rel == "urls" || rel.starts_with("hub/")) {
                // A folder creates nothing here: the layout is rebuilt from the lock.
                continue;
            }
            let place = place(rel, &folders, &url_names).ok_or_else(|| {
                hostile(&raw, "not a path of the hub cache layout for a repository of the bundle's lock".to_owned())
            })?;
            let allowed = match place {
                Place::Link(..) => kind == tar::EntryType::Symlink,
                Place::Dir => kind == tar::EntryType::Directory,
                _ => kind == tar::EntryType::Regular,
            };
            if !allowed {
                return Err(hostile(
                    &raw,
                    format!(
                        "a {kind:?} entry where the layout has {}",
                        match place {
                            Place::Link(..) => "a link",
                            Place::Dir => "a folder",
                            _ => "a regular file",
                        }
                    ),
                )
                .into());
            }
            match place {
                Place::Dir => {}
                Place::Link(i, at) => {
                    let target = entry.link_name_bytes().map(std::borrow::Cow::into_owned).unwrap_or_default();
                    let want = expected[i].links.get(at);
                    if want.map(String::as_bytes) != Some(target.as_slice()) {
                        return Err(hostile(
                            &raw,
                            format!(
                                "links to `{}`, where the lock allows only `{}`",
                                shown(&String::from_utf8_lossy(&target)),
                                want.map_or("nothing", String::as_str)
                            ),
                        )
                        .into());
                    }
                }
                Place::Ref(i, name) => {
                    let r = expected[i].locked;
                    if r.revision.as_str() != name || r.revision.commit().is_some() {
                        return Err(mismatch(format!("`{rel}` is a ref the lock does not have")).into());
                    }
                    let mut text = String::new();
                    entry.by_ref().take(1024).read_to_string(&mut text).map_err(io)?;
                    if text.trim() != r.commit.as_str() {
                        return Err(
                            mismatch(format!("`{rel}` points at `{}`, the lock at `{}`", shown(text.trim()), r.commit)).into()
                        );
                    }
                }
                Place::Tree(i, commit) => {
                    if commit != expected[i].locked.commit.as_str() {
                        return Err(mismatch(format!("`{rel}` is the listing of a commit the lock does not have")).into());
                    }
                    if entry.size() > MAX_SMALL_ENTRY {
                        return Err(mismatch(format!("`{rel}` is larger than 64 MiB")).into());
                    }
                    let mut text = String::new();
                    entry.read_to_string(&mut text).map_err(io)?;
                    let tree = Tree::from_json(&text)
                        .ok_or_else(|| mismatch(format!("`{rel}` is not a listing huggingface_hub reads")))?;
                    for f in &expected[i].locked.files {
                        let e = tree.files.get(&f.path);
                        let (etag, size) = match e {
                            Some(e) => match &e.lfs_sha256 {
                                Some(s) => (Etag::new(s).ok(), e.lfs_size.unwrap_or(e.size)),
                                None => (Etag::new(&e.blob_id).ok(), e.size),
                            },
                            None => (None, 0),
                        };
                        if etag != Some(f.etag) || size != f.size {
                            return Err(mismatch(format!("`{rel}` disagrees with the lock about `{}`", f.path)).into());
                        }
                    }
                    trees.push((i, tree));
                }
                Place::Url(i) => {
                    let u = &lock.urls[i];
                    if u.size.is_some_and(|s| s != entry.size()) {
                        return Err(mismatch(format!("`{rel}` is {} bytes, the lock says {:?}", entry.size(), u.size)).into());
                    }
                    if !seen_urls.insert(i) {
                        return Err(mismatch(format!("`{rel}` appears twice")).into());
                    }
                    let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
                    if store.find_artifact(&key)?.is_some() {
                        report.blobs_skipped += 1;
                        continue;
                    }
                    let size = entry.size();
                    let check = |d: &Digests| match d.sha256 {
                        Some(got) if got == u.sha256 => Ok(()),
                        got => Err(format!(
                            "`{rel}` has sha256 `{}`, the lock `{}`",
                            got.map(|g| g.to_string()).unwrap_or_default(),
                            u.sha256
                        )),
                    };
                    let one = self.stage_entry(&mut entry, &mut buf, StagedKind::Url(key), size, options, path, &check)?;
                    report.bytes_written += size;
                    match one {
                        Some(s) => staged.push(s),
                        None => report.blobs_written += 1,
                    }
                }
                Place::Blob(i, etag) => {
                    let exp = &expected[i];
                    let Some(&size) = exp.blobs.get(&etag) else {
                        return Err(mismatch(format!("`{rel}` is a blob the lock does not name")).into());
                    };
                    if entry.size() != size {
                        return Err(mismatch(format!("`{rel}` is {} bytes, the lock says {size}", entry.size())).into());
                    }
                    if !seen.insert((i, etag)) {
                        return Err(mismatch(format!("`{rel}` appears twice")).into());
                    }
                    let repo = &exp.locked.repo;
                    if store.has_blob(repo, &etag)? {
                        report.blobs_skipped += 1;
                        continue;
                    }
                    let dir = self.cache_dir().join(repo.folder_name());
                    if !options.dry_run && !dir.exists() {
                        created.push(dir);
                    }
                    let check = |d: &Digests| {
                        etag.verify(d).map_err(|m| {
                            format!("`{rel}` has digest `{}`, not the `{}` its name and the lock give", m.actual, m.expected)
                        })
                    };
                    let one = self.stage_entry(
                        &mut entry,
                        &mut buf,
                        StagedKind::Blob(repo.clone(), etag),
                        size,
                        options,
                        path,
                        &check,
                    )?;
                    report.bytes_written += size;
                    match one {
                        Some(s) => staged.push(s),
                        None => report.blobs_written += 1,
                    }
                }
            }
        }
        for (i, exp) in expected.iter().enumerate() {
            for etag in exp.blobs.keys() {
                if !seen.contains(&(i, *etag)) && !store.has_blob(&exp.locked.repo, etag)? {
                    return Err(mismatch(format!(
                        "it lacks blob `{etag}` of `{}`, which the cache does not have either",
                        exp.locked.repo
                    ))
                    .into());
                }
            }
        }
        for (i, u) in lock.urls.iter().enumerate() {
            let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            if !seen_urls.contains(&i) && store.find_artifact(&key)?.is_none() {
                return Err(
                    mismatch(format!("it lacks the URL artifact `{}`, which the cache does not have either", u.name)).into()
                );
            }
        }
        Ok((lock, report, trees))
    }

    /// Streams one blob entry of the bundle, hashed, into its staging file (under its lock)
    /// unless `dry_run`; `check` compares the digests with the lock. `None` on a dry run.
    #[expect(clippy::too_many_arguments, reason = "the entry, its destination and its check")]
    fn stage_entry(
        &self,
        entry: &mut dyn Read,
        buf: &mut [u8],
        what: StagedKind,
        size: u64,
        options: &ImportOptions,
        bundle: &Path,
        check: &dyn Fn(&Digests) -> Result<(), String>,
    ) -> Result<Option<Staged>, CacheError> {
        let store = &self.inner.store;
        let mut kinds = match &what {
            StagedKind::Blob(_, etag) => etag.required(),
            StagedKind::Url(_) => cache_core::DigestKinds { sha256: true, git_sha1: false, blake3: true },
        };
        kinds.blake3 = !options.dry_run;
        let mut hasher = MultiHasher::new(kinds, size);
        let target = if options.dry_run {
            None
        } else {
            let (lock, staging) = match &what {
                StagedKind::Blob(repo, etag) => {
                    let lock = store.lock_blob(repo, etag, &mut |_| {})?;
                    let staging = store.stage(&lock, Some(size))?;
                    (lock, staging)
                }
                StagedKind::Url(key) => {
                    let lock = store.lock_artifact(key, &mut |_| {})?;
                    let staging = store.stage_artifact(&lock, Some(size))?;
                    (lock, staging)
                }
            };
            truncate(&staging)?;
            Some((lock, staging))
        };
        let outcome = copy_hashing(entry, buf, &mut hasher, target.as_ref().map(|(_, s)| s), bundle);
        let digests = hasher.finalize();
        let verdict = outcome.and_then(|()| {
            check(&digests).map_err(|reason| LockfileError::BundleMismatch { path: bundle.to_owned(), reason }.into())
        });
        match (verdict, target) {
            (Ok(()), Some((lock, staging))) => Ok(Some(Staged { staging, lock, what, size, digests })),
            (Ok(()), None) => Ok(None),
            (Err(e), target) => {
                if let Some((_, s)) = target {
                    let _ = s.discard();
                }
                Err(e)
            }
        }
    }

    /// Publishes the staged blobs, then links every locked file, writes the listings and
    /// the refs.
    fn publish(&self, lock: &Lock, staged: Vec<Staged>, trees: &[(usize, Tree)]) -> Result<(), CacheError> {
        let store = &self.inner.store;
        let mut first_path: BTreeMap<(Repo, Etag), (RepoPath, cache_core::CommitHash)> = BTreeMap::new();
        for r in &lock.models {
            for f in &r.files {
                first_path.entry((r.repo.clone(), f.etag)).or_insert((f.path.clone(), r.commit));
            }
        }
        let mut committed = BTreeSet::new();
        let mut items = Vec::with_capacity(staged.len());
        let mut locks = Vec::with_capacity(staged.len());
        for s in staged {
            let (repo, etag) = match s.what {
                StagedKind::Blob(repo, etag) => (repo, etag),
                StagedKind::Url(key) => {
                    store.commit_artifact(s.staging, &key, Some(s.size), Some(s.digests))?;
                    continue;
                }
            };
            let Some((path, commit)) = first_path.get(&(repo.clone(), etag)).cloned() else { continue };
            committed.insert((repo.clone(), path.clone()));
            let req = CommitRequest::new(repo, commit, path, etag, s.size).with_digests(s.digests);
            items.push((s.staging, req));
            locks.push(s.lock);
        }
        for r in store.commit_batch(items)? {
            r?;
        }
        drop(locks);
        for r in &lock.models {
            for f in &r.files {
                if committed.contains(&(r.repo.clone(), f.path.clone())) {
                    continue;
                }
                let lock = store.lock_blob(&r.repo, &f.etag, &mut |_| {})?;
                store.link_existing(&lock, &CommitRequest::new(r.repo.clone(), r.commit, f.path.clone(), f.etag, f.size))?;
            }
        }
        for (i, tree) in trees {
            let r = &lock.models[*i];
            store.write_tree(&r.repo, &r.commit, tree)?;
        }
        for r in &lock.models {
            if r.revision.commit().is_none() && !r.files.is_empty() {
                store.write_ref(&r.repo, &r.revision, &r.commit)?;
            }
        }
        Ok(())
    }
}
