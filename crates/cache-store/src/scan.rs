//! Reading the hub cache's layout from disk: repo folders, snapshot files and what they
//! link to, refs, blobs and `.incomplete` leftovers. The filesystem is the truth; the
//! maintenance operations, listings, verify and reconcile all start here.

use std::collections::{BTreeSet, HashMap};
use std::io;

use cache_core::{Repo, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::{Dir, FileType};

use crate::error::{Error, Result};
use crate::fsx;
use crate::layout::{self, RepoLayout, SHARED_BLOBS};
use crate::stamp::Stamp;
use crate::store::Store;

/// One file in a snapshot.
#[derive(Clone, Debug)]
pub(crate) struct SnapFile {
    pub(crate) commit: String,
    /// Path inside the repo.
    pub(crate) path: String,
    /// Hub-relative path of the snapshot entry.
    pub(crate) rel: Utf8PathBuf,
    /// Hub-relative path of the repo blob it links to (first hop), or `rel` itself for a
    /// regular file; `None` when the link leaves the cache.
    pub(crate) blob_rel: Option<Utf8PathBuf>,
    /// The physical blob: a shared-store payload, the repo blob, or the file itself.
    pub(crate) blob_id: String,
    /// The etag, when the blob is named by one.
    pub(crate) etag: Option<String>,
    /// Size of the content; `None` when the link dangles.
    pub(crate) size: Option<u64>,
    /// The blob's modification time.
    pub(crate) modified: Timestamp,
}

/// An `.incomplete` file.
#[derive(Clone, Debug)]
pub(crate) struct Incomplete {
    pub(crate) rel: Utf8PathBuf,
    pub(crate) etag: String,
    pub(crate) size: u64,
    pub(crate) modified: Timestamp,
}

impl Incomplete {
    fn of(etag: &str, rel: Utf8PathBuf, meta: &cap_std::fs::Metadata) -> Incomplete {
        Incomplete { etag: etag.to_owned(), rel, size: meta.len(), modified: mtime(meta) }
    }

    /// As a listing shows it, under the hub cache at `hub_path`.
    pub(crate) fn listing(&self, hub_path: &Utf8Path) -> crate::IncompleteFile {
        crate::IncompleteFile {
            path: hub_path.join(&self.rel),
            etag: self.etag.clone(),
            size: self.size,
            modified: self.modified,
        }
    }
}

/// Everything on disk about one repo.
#[derive(Clone, Debug)]
pub(crate) struct RepoScan {
    pub(crate) files: Vec<SnapFile>,
    /// Snapshot folders, empty ones included.
    pub(crate) commits: Vec<String>,
    /// `(ref name, commit)`.
    pub(crate) refs: Vec<(String, String)>,
    /// Names in `blobs/` that are committed blobs (etag-named).
    pub(crate) blobs: Vec<String>,
    pub(crate) incomplete: Vec<Incomplete>,
    /// Its directories as the scan found them (see `stamp`).
    pub(crate) stamp: Stamp,
}

fn mtime(m: &cap_std::fs::Metadata) -> Timestamp {
    m.modified().map(|t| Timestamp::from_system_time(t.into_std())).unwrap_or_default()
}

/// The repo folders at the hub root (`models--…`, `datasets--…`, `spaces--…`), symlinks
/// to folders included: one leading outside the cache fails its [`repo`] scan with an
/// escape error (see [`Store::scan_repo`]), which whole-cache operations skip.
pub(crate) fn repos(hub: &Dir) -> io::Result<Vec<Repo>> {
    Ok(fsx::list_dir(hub, Utf8Path::new(""))?
        .into_iter()
        .filter(|(_, t)| t.is_dir() || t.is_symlink())
        .filter_map(|(name, _)| Repo::from_folder_name(&name).ok())
        .collect())
}

impl Store {
    /// Scans a repo folder: [`Error::OutsideCache`] when it, or a folder in it, is a
    /// symlink leading outside the cache.
    pub(crate) fn scan_repo(&self, r: &Repo) -> Result<RepoScan> {
        let folder = self.hub_path.join(r.folder_name());
        repo(&self.hub, r).map_err(|e| {
            if fsx::is_escape(&e) { Error::OutsideCache { path: folder.clone() } } else { Error::io("scan", folder.clone())(e) }
        })
    }

    /// Whether a repo folder and the folders in it can be opened without leaving the
    /// cache (a missing one is fine): a few `openat`s, no scan.
    pub(crate) fn is_contained(&self, layout: &RepoLayout) -> bool {
        let Ok(root) = fsx::open_dir(&self.hub, &layout.root()) else { return false };
        let Some(root) = root else { return true };
        ["blobs", "snapshots", "refs"].iter().all(|d| fsx::open_dir(&root, Utf8Path::new(d)).is_ok())
    }

    /// [`Store::scan_repo`] for an operation over the whole cache: a repo leading outside
    /// the cache is `None`, with a warning, so it does not fail the rest.
    pub(crate) fn scan_repo_or_skip(&self, r: &Repo) -> Result<Option<RepoScan>> {
        match self.scan_repo(r) {
            Err(Error::OutsideCache { path }) => {
                tracing::warn!(repo = %r, folder = %path, "skipping a repo whose folder leads outside the cache through a symlink");
                Ok(None)
            }
            other => other.map(Some),
        }
    }
}

/// Scans one repo folder (an absent folder scans as empty), stamping its directories.
///
/// # Performance
/// Each directory is opened once, relative to its parent's handle, and everything in it
/// is reached by name through that handle: one `readlinkat` per snapshot link and one
/// `statx` per blob (blobs linked from several revisions once), types from the listing's
/// `d_type`. Paths from the hub root (three syscalls each through cap-std's sandbox) are
/// left to the rare cases: links that lead elsewhere and blobs that are links themselves.
pub(crate) fn repo(hub: &Dir, repo: &Repo) -> io::Result<RepoScan> {
    let layout = RepoLayout::new(repo);
    let mut stamp = Stamp::start();
    let mut scan = RepoScan {
        files: Vec::new(),
        commits: Vec::new(),
        refs: Vec::new(),
        blobs: Vec::new(),
        incomplete: Vec::new(),
        stamp: Stamp::default(),
    };
    let Some(root) = fsx::open_dir(hub, &layout.root())? else {
        scan.stamp = stamp;
        return Ok(scan);
    };
    stamp.dir(layout.folder.clone(), &root.dir_metadata()?);
    let blobs_dir = fsx::open_dir(&root, Utf8Path::new("blobs"))?;
    let blob_entries = match &blobs_dir {
        Some(d) => {
            stamp.dir(layout.blobs().into_string(), &d.dir_metadata()?);
            fsx::list_dir(d, Utf8Path::new(""))?
        }
        None => Vec::new(),
    };
    let mut walker = Walker {
        hub,
        blobs: layout.blobs(),
        blobs_dir: blobs_dir.as_ref(),
        blob_types: blob_entries.iter().map(|(n, t)| (n.as_str(), *t)).collect(),
        blob_meta: HashMap::new(),
        shared: HashMap::new(),
        shared_dirs: BTreeSet::new(),
        stamp: &mut stamp,
    };
    if let Some(snapshots) = fsx::open_dir(&root, Utf8Path::new("snapshots"))? {
        walker.stamp.dir(layout.snapshots().into_string(), &snapshots.dir_metadata()?);
        for (commit, t) in fsx::list_dir(&snapshots, Utf8Path::new(""))? {
            if t.is_dir()
                && let Some(dir) = fsx::open_dir(&snapshots, Utf8Path::new(&commit))?
            {
                walker.walk(&dir, &layout.snapshots().join(&commit), &commit, "", &mut scan.files)?;
                scan.commits.push(commit);
            }
        }
    }
    // The shared store's folders this repo's blobs lead into: a payload removed there
    // must show up as a changed stamp too.
    for dir in std::mem::take(&mut walker.shared_dirs) {
        if let Ok(m) = hub.metadata(&dir) {
            walker.stamp.dir(dir.into_string(), &m);
        }
    }
    scan.refs = refs(hub, &layout)?;
    for (name, _) in &blob_entries {
        if layout::is_etag_name(name) {
            scan.blobs.push(name.clone());
        } else if let Some(etag) = layout::incomplete_etag(name)
            && let Some(d) = &blobs_dir
            && let Ok(m) = d.symlink_metadata(name)
        {
            scan.incomplete.push(Incomplete::of(etag, layout.blobs().join(name), &m));
            stamp.incomplete.push(name.clone());
        }
    }
    scan.stamp = stamp;
    Ok(scan)
}

/// A blob's size, modification time and, when it is one inode with other names (a hard
/// link made by a cross-repo hit or `dedup`), its device and inode; `None` when it cannot
/// be read (a dangling link).
type BlobMeta = Option<(u64, Timestamp, Option<(u64, u64)>)>;

/// What [`BlobMeta`] keeps of a file's metadata.
fn blob_meta_of(m: &cap_std::fs::Metadata) -> (u64, Timestamp, Option<(u64, u64)>) {
    use cap_std::fs::MetadataExt;
    let shared = (m.is_file() && m.nlink() > 1).then(|| (m.dev(), m.ino()));
    (m.len(), mtime(m), shared)
}

/// The identity of a blob file that is one inode with other names: the same for every
/// name of the inode, so each physical blob is counted once (in totals, eviction
/// accounting), whichever repos name it. It ends with `/<etag>` like a blob path.
pub(crate) fn inode_id(dev: u64, ino: u64, etag: &str) -> String {
    format!("inode:{dev}:{ino}/{etag}")
}

struct Walker<'a> {
    hub: &'a Dir,
    /// The repo's `blobs/`, hub-relative.
    blobs: Utf8PathBuf,
    /// The repo's `blobs/`, when there is one.
    blobs_dir: Option<&'a Dir>,
    /// Names in `blobs/` with their types.
    blob_types: HashMap<&'a str, FileType>,
    /// The blobs already looked at, by name.
    blob_meta: HashMap<String, BlobMeta>,
    /// Where the blobs that are links lead in the shared store, by name.
    shared: HashMap<String, Option<Utf8PathBuf>>,
    /// Folders of the shared store that linked blobs lead into.
    shared_dirs: BTreeSet<Utf8PathBuf>,
    stamp: &'a mut Stamp,
}

impl Walker<'_> {
    /// Walks the folder `dir` (hub-relative `rel`) of a revision.
    fn walk(&mut self, dir: &Dir, rel: &Utf8Path, commit: &str, prefix: &str, out: &mut Vec<SnapFile>) -> io::Result<()> {
        self.stamp.dir(rel.as_str(), &dir.dir_metadata()?);
        for (name, t) in fsx::list_dir(dir, Utf8Path::new(""))? {
            let entry = rel.join(&name);
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if t.is_dir() {
                if let Some(sub) = fsx::open_dir(dir, Utf8Path::new(&name))? {
                    self.walk(&sub, &entry, commit, &path, out)?;
                }
                continue;
            }
            let (blob_rel, meta) = if t.is_symlink() {
                let target = fsx::read_link(dir, Utf8Path::new(&name))?.unwrap_or_default();
                match fsx::resolve_link(rel, &target) {
                    Some(b) => {
                        let meta = self.blob_meta(&b);
                        (Some(b), meta)
                    }
                    None => (None, None),
                }
            } else {
                let m = dir.symlink_metadata(&name)?;
                (Some(entry.clone()), Some(blob_meta_of(&m)))
            };
            let etag = blob_rel
                .as_ref()
                .filter(|b| b.parent() == Some(self.blobs.as_path()))
                .and_then(|b| b.file_name())
                .filter(|n| layout::is_etag_name(n))
                .map(str::to_owned);
            let linked = etag.as_deref().and_then(|e| self.blob_types.get(e)).is_some_and(FileType::is_symlink);
            let blob_id = match (&blob_rel, &etag) {
                (Some(b), Some(e)) if linked => {
                    let hub = self.hub;
                    match self.shared.entry(e.clone()).or_insert_with(|| shared_target(hub, b)) {
                        Some(target) => {
                            if let Some(parent) = target.parent() {
                                self.shared_dirs.insert(parent.to_owned());
                            }
                            target.to_string()
                        }
                        None => b.to_string(),
                    }
                }
                (Some(b), Some(e)) => match meta {
                    Some((_, _, Some((dev, ino)))) => inode_id(dev, ino, e),
                    _ => b.to_string(),
                },
                (Some(b), None) => b.to_string(),
                (None, _) => entry.to_string(),
            };
            let (size, modified) = meta.map_or((None, Timestamp::EPOCH), |(s, m, _)| (Some(s), m));
            out.push(SnapFile { commit: commit.to_owned(), path, rel: entry, blob_rel, blob_id, etag, size, modified });
        }
        Ok(())
    }

    /// What a link target `b` (hub-relative) leads to, following links; a blob of this
    /// repo's `blobs/` is looked at once (a regular file through the open `blobs/` handle).
    fn blob_meta(&mut self, b: &Utf8Path) -> BlobMeta {
        let name = b.strip_prefix(&self.blobs).ok().map(Utf8Path::as_str).filter(|n| !n.is_empty() && !n.contains('/'));
        let Some(name) = name else {
            return self.hub.metadata(b).ok().map(|m| blob_meta_of(&m));
        };
        if let Some(known) = self.blob_meta.get(name) {
            return *known;
        }
        let local = self.blobs_dir.filter(|_| self.blob_types.get(name).is_some_and(FileType::is_file));
        let meta = match local {
            Some(blobs_dir) => blobs_dir.symlink_metadata(name).ok(),
            None => self.hub.metadata(b).ok(),
        }
        .map(|m| blob_meta_of(&m));
        self.blob_meta.insert(name.to_owned(), meta);
        meta
    }
}

/// The `.incomplete` file `name` in a repo's `blobs/`, as it is now; `None` when it is
/// gone or not one.
pub(crate) fn incomplete(hub: &Dir, layout: &RepoLayout, name: &str) -> Option<Incomplete> {
    let etag = layout::incomplete_etag(name)?;
    let rel = layout.blobs().join(name);
    let m = hub.symlink_metadata(&rel).ok()?;
    Some(Incomplete::of(etag, rel, &m))
}

/// Where a repo blob that is a symlink into the shared store points.
pub(crate) fn shared_target(hub: &Dir, blob_rel: &Utf8Path) -> Option<Utf8PathBuf> {
    let target = fsx::read_link(hub, blob_rel).ok()??;
    let resolved = fsx::resolve_link(blob_rel.parent()?, &target)?;
    resolved.starts_with(SHARED_BLOBS).then_some(resolved)
}

/// A repo's refs as `(ref name, commit)`, without walking its snapshots.
pub(crate) fn refs(hub: &Dir, layout: &RepoLayout) -> io::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    walk_refs(hub, &layout.refs(), "", &mut out)?;
    Ok(out)
}

fn walk_refs(hub: &Dir, dir: &Utf8Path, prefix: &str, out: &mut Vec<(String, String)>) -> io::Result<()> {
    for (name, t) in fsx::list_dir(hub, dir)? {
        let name_path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let rel = dir.join(&name);
        if t.is_dir() {
            walk_refs(hub, &rel, &name_path, out)?;
        } else if t.is_file() && !name.starts_with(fsx::TEMP_PREFIX) {
            let commit = hub.read_to_string(&rel).unwrap_or_default();
            out.push((name_path, commit.trim().to_owned()));
        }
    }
    Ok(())
}
