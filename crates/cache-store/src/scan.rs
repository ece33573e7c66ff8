//! Reading the hub cache's layout from disk: repo folders, snapshot files and what they
//! link to, refs, blobs and `.incomplete` leftovers. The filesystem is the truth; the
//! maintenance operations, listings, verify and reconcile all start here.

use std::collections::HashSet;
use std::io;

use cache_core::{Repo, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::fsx;
use crate::layout::{self, RepoLayout, SHARED_BLOBS};

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
}

fn mtime(m: &cap_std::fs::Metadata) -> Timestamp {
    m.modified().map(|t| Timestamp::from_system_time(t.into_std())).unwrap_or_default()
}

/// The repo folders at the hub root (`models--…`, `datasets--…`, `spaces--…`).
pub(crate) fn repos(hub: &Dir) -> io::Result<Vec<Repo>> {
    Ok(fsx::list_dir(hub, Utf8Path::new(""))?
        .into_iter()
        .filter(|(_, t)| t.is_dir())
        .filter_map(|(name, _)| Repo::from_folder_name(&name).ok())
        .collect())
}

/// Scans one repo folder (an absent folder scans as empty).
pub(crate) fn repo(hub: &Dir, repo: &Repo) -> io::Result<RepoScan> {
    let layout = RepoLayout::new(repo);
    let mut scan =
        RepoScan { files: Vec::new(), commits: Vec::new(), refs: Vec::new(), blobs: Vec::new(), incomplete: Vec::new() };
    let blob_entries = fsx::list_dir(hub, &layout.blobs())?;
    // Only a blob that is itself a link can lead into the shared store: the listing's file
    // types say which, so the others need no `readlink` (a third of a scan's syscalls).
    let linked_blobs: HashSet<&str> = blob_entries.iter().filter(|(_, t)| t.is_symlink()).map(|(n, _)| n.as_str()).collect();
    let walker = Walker { hub, layout: &layout, linked_blobs: &linked_blobs };
    for (commit, t) in fsx::list_dir(hub, &layout.snapshots())? {
        if t.is_dir() {
            walker.walk(&commit, &layout.snapshots().join(&commit), "", &mut scan.files)?;
            scan.commits.push(commit);
        }
    }
    scan.refs = refs(hub, &layout)?;
    for (name, _) in &blob_entries {
        let name = name.clone();
        if layout::is_etag_name(&name) {
            scan.blobs.push(name);
        } else if let Some(etag) = layout::incomplete_etag(&name) {
            let rel = layout.blobs().join(&name);
            if let Ok(m) = hub.symlink_metadata(&rel) {
                scan.incomplete.push(Incomplete { etag: etag.to_owned(), rel, size: m.len(), modified: mtime(&m) });
            }
        }
    }
    Ok(scan)
}

struct Walker<'a> {
    hub: &'a Dir,
    layout: &'a RepoLayout,
    /// Names in `blobs/` that are symlinks (possibly into the shared store).
    linked_blobs: &'a HashSet<&'a str>,
}

impl Walker<'_> {
    fn walk(&self, commit: &str, dir: &Utf8Path, prefix: &str, out: &mut Vec<SnapFile>) -> io::Result<()> {
        let (hub, layout) = (self.hub, self.layout);
        for (name, t) in fsx::list_dir(hub, dir)? {
            let rel = dir.join(&name);
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if t.is_dir() {
                self.walk(commit, &rel, &path, out)?;
                continue;
            }
            let (blob_rel, size, modified) = if t.is_symlink() {
                let target = fsx::read_link(hub, &rel)?.unwrap_or_default();
                match fsx::resolve_link(dir, &target) {
                    Some(b) => match hub.metadata(&b) {
                        Ok(m) => (Some(b), Some(m.len()), mtime(&m)),
                        Err(_) => (Some(b), None, Timestamp::EPOCH),
                    },
                    None => (None, None, Timestamp::EPOCH),
                }
            } else {
                let m = hub.symlink_metadata(&rel)?;
                (Some(rel.clone()), Some(m.len()), mtime(&m))
            };
            let etag = blob_rel
                .as_ref()
                .filter(|b| b.parent() == Some(layout.blobs().as_path()))
                .and_then(|b| b.file_name())
                .filter(|n| layout::is_etag_name(n))
                .map(str::to_owned);
            let blob_id = match (&blob_rel, &etag) {
                (Some(b), Some(e)) if self.linked_blobs.contains(e.as_str()) => {
                    shared_target(hub, b).unwrap_or_else(|| b.clone()).into_string()
                }
                (Some(b), _) => b.to_string(),
                (None, _) => rel.to_string(),
            };
            out.push(SnapFile { commit: commit.to_owned(), path, rel, blob_rel, blob_id, etag, size, modified });
        }
        Ok(())
    }
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
