//! [`Store::list`]: every repo folder on disk with its revisions, files and in-flight
//! downloads. A folder whose stamp holds (`stamp`: none of its directories changed since
//! its last scan) is answered from the index; any other is scanned, and its rows and stamp
//! go into the index so that the next listing need not scan it.
//!
//! # Performance
//! A listing costs one `getdents` of the hub root and, per repo folder, a stat of each
//! stamped directory (a handful), its refs, its `.incomplete` files and one index query:
//! no syscall per file. What is left per file (reading its row, checking its path,
//! building its entry) is shared between two threads on a large cache. A folder that
//! changed is scanned again, so the first listing after a change pays for that folder
//! alone. Our own downloads change folders too; so be it.
//!
//! # Same answer either way
//! Both paths build a listing with one function from the same parts: the snapshot
//! folders, each one's files with content as `(path, blob, size)` in the scan's walk
//! order, the refs and the `.incomplete` files. A folder's index rows are exactly its
//! scan's files with content (`reconcile::rows`), reconciled after the scan.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cache_core::{BlobId, CommitHash, Repo, RepoPath, Timestamp};
use camino::Utf8PathBuf;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::layout::RepoLayout;
use crate::reconcile;
use crate::scan::{self, Incomplete, RepoScan};
use crate::stamp::{RACY_WINDOW, Recorded};
use crate::store::Store;

/// One repo as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoListing {
    /// The repo.
    pub repo: Repo,
    /// Its cached revisions.
    pub revisions: Vec<RevisionListing>,
    /// Bytes on disk, each blob counted once.
    pub size_bytes: u64,
    /// Interrupted or in-flight downloads.
    pub incomplete: Vec<IncompleteFile>,
}

/// One cached revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevisionListing {
    /// The commit.
    pub commit: CommitHash,
    /// Refs (branches, tags) pointing at it.
    pub refs: Vec<String>,
    /// Its files.
    pub files: Vec<FileListing>,
    /// Bytes of its distinct blobs.
    pub size_bytes: u64,
}

/// One file of a revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileListing {
    /// Path in the repo.
    pub path: RepoPath,
    /// Size in bytes.
    pub size: u64,
    /// The blob holding it.
    pub blob: BlobId,
}

/// An `.incomplete` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteFile {
    /// Absolute path.
    pub path: Utf8PathBuf,
    /// The blob it will become.
    pub etag: String,
    /// Bytes so far.
    pub size: u64,
    /// Last written.
    pub modified: Timestamp,
}

/// From how many index rows a listing reads them on two threads.
const PARALLEL_ROWS: u64 = 20_000;

/// A repo folder on disk, with its recorded stamp.
struct Folder {
    repo: Repo,
    name: String,
    recorded: Option<Recorded>,
}

/// How a listing was answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Repo folders listed from the index.
    pub(crate) from_index: usize,
    /// Repo folders scanned.
    pub(crate) scanned: usize,
}

/// A file with content, as the scan or the index has it; `path` is `None` for a name
/// that is not a valid repo path (not listed, but its blob counts).
struct Part {
    path: Option<RepoPath>,
    blob: String,
    size: u64,
}

impl Part {
    fn name(&self) -> &str {
        self.path.as_ref().map_or("", RepoPath::as_str)
    }
}

/// The files of each revision folder, in walk order.
type Parts = HashMap<String, Vec<Part>>;

/// Bytes of the distinct blobs among `blobs`.
fn distinct_bytes<'a>(blobs: impl Iterator<Item = (&'a str, u64)>) -> u64 {
    // Sorted, equal names end up side by side. Names in a repo share their `…/blobs/`
    // prefix and end in a digest, so sorting on the last eight bytes first mostly
    // compares integers.
    let tail = |b: &str| b.bytes().rev().take(8).fold(0_u64, |k, c| k << 8 | u64::from(c));
    let mut v: Vec<(u64, &str, u64)> = blobs.map(|(b, size)| (tail(b), b, size)).collect();
    v.sort_unstable();
    v.dedup_by(|a, b| a.1 == b.1);
    v.iter().map(|b| b.2).sum()
}

/// The order a scan walks a revision in: by path component, so `a/x` comes before `a.txt`
/// (`/` sorts before every byte a name can hold).
fn walk_order(a: &str, b: &str) -> Ordering {
    fn key(s: &str) -> impl Iterator<Item = u8> + '_ {
        s.bytes().map(|c| if c == b'/' { 0 } else { c })
    }
    key(a).cmp(key(b))
}

impl Store {
    /// Every repo on disk with its revisions, files and in-flight downloads. Answers from
    /// the index for repo folders unchanged since their last scan, scans the others (and
    /// records them in the index, when it can be written).
    pub fn list(&self) -> Result<Vec<RepoListing>> {
        let (out, tally) = self.list_with(RACY_WINDOW, PARALLEL_ROWS)?;
        tracing::debug!(from_index = tally.from_index, scanned = tally.scanned, "listed the hub cache");
        Ok(out)
    }

    /// [`Store::list`], trusting stamps settled for `window`, reading the index on two
    /// threads from `parallel_rows` rows on.
    pub(crate) fn list_with(&self, window: Duration, parallel_rows: u64) -> Result<(Vec<RepoListing>, Tally)> {
        let repos = scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))?;
        let mut stamps = self.index()?.stamps()?;
        let folders: Vec<Folder> = repos
            .into_iter()
            .map(|repo| {
                let name = repo.folder_name();
                let recorded = stamps.remove(&name);
                Folder { repo, name, recorded }
            })
            .collect();
        let from_index = self.answers_from_index(&folders, window, parallel_rows)?;
        let mut tally = Tally::default();
        let mut out = Vec::with_capacity(folders.len());
        let mut on_disk = HashSet::with_capacity(folders.len());
        for (f, listed) in folders.into_iter().zip(from_index) {
            out.push(if let Some(listing) = listed {
                tally.from_index += 1;
                listing
            } else {
                tally.scanned += 1;
                match self.listed_from_scan(f.repo, &f.name)? {
                    Some(listing) => listing,
                    None => continue,
                }
            });
            on_disk.insert(f.name);
        }
        self.forget_gone(&on_disk);
        Ok((out, tally))
    }

    /// The listings the index can give, in the order of `folders` (`None`: scan it). From
    /// `parallel_rows` recorded rows on, split in two halves by rows, the second done on a
    /// thread with a connection of its own: checking stamps, reading rows and building
    /// listings is most of a large listing's work, and opening a connection costs about a
    /// millisecond.
    fn answers_from_index(&self, folders: &[Folder], window: Duration, parallel_rows: u64) -> Result<Vec<Option<RepoListing>>> {
        let run = |index: &Index, part: &[Folder]| -> Result<Vec<Option<RepoListing>>> {
            part.iter()
                .map(|f| match f.recorded.as_ref().filter(|r| r.stamp.holds(&self.hub, window)) {
                    Some(recorded) => self.listed_from_index(index, &f.repo, &f.name, recorded),
                    None => Ok(None),
                })
                .collect()
        };
        let rows = |f: &Folder| f.recorded.as_ref().map_or(0, |r| r.files);
        let total: u64 = folders.iter().map(rows).sum();
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if total < parallel_rows.max(1) || cores < 2 {
            return run(self.index()?, folders);
        }
        let mut seen = 0;
        let split = folders.iter().position(|f| {
            seen += rows(f);
            seen * 2 >= total
        });
        let (first, second) = folders.split_at(split.map_or(folders.len(), |i| i + 1));
        let index = self.index()?;
        std::thread::scope(|scope| {
            let second = scope.spawn(|| match index.reader() {
                Ok(reader) => run(&reader, second),
                // Through the store's connection, taking turns: slower, not wrong.
                Err(e) => {
                    tracing::debug!("reading the index on one connection: {e}");
                    run(index, second)
                }
            });
            let mut out = run(index, first)?;
            out.extend(second.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?);
            Ok(out)
        })
    }

    /// A folder's listing from its index rows; `None` when they are not the ones its stamp
    /// vouches for.
    fn listed_from_index(&self, index: &Index, repo: &Repo, folder: &str, recorded: &Recorded) -> Result<Option<RepoListing>> {
        let (commits, parts) = index.read("read entries", |conn| {
            let mut st = conn.prepare_cached("SELECT revision, path, blob, size FROM entries WHERE repo = ?1")?;
            let mut rows = st.query([folder])?;
            let mut commits: Vec<String> = Vec::new();
            let mut parts = Vec::with_capacity(usize::try_from(recorded.files).unwrap_or(0));
            while let Some(r) = rows.next()? {
                // Rows come grouped by revision (the primary key's order).
                let revision = r.get_ref(0)?.as_str()?;
                let at = commits.iter().rposition(|c| c == revision).unwrap_or_else(|| {
                    commits.push(revision.to_owned());
                    commits.len() - 1
                });
                let path = RepoPath::new(r.get_ref(1)?.as_str()?).ok();
                let blob = r.get_ref(2)?.as_str()?.to_owned();
                parts.push((at, Part { path, blob, size: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0) }));
            }
            Ok((commits, parts))
        })?;
        if parts.len() as u64 != recorded.files {
            return Ok(None);
        }
        let layout = RepoLayout::new(repo);
        let refs = scan::refs(&self.hub, &layout).map_err(Error::io("scan", self.hub_path.join(folder)))?;
        let incomplete: Vec<Incomplete> =
            recorded.stamp.incomplete.iter().filter_map(|name| scan::incomplete(&self.hub, &layout, name)).collect();
        let mut grouped: Vec<Vec<Part>> = commits.iter().map(|_| Vec::new()).collect();
        for (at, part) in parts {
            if let Some(g) = grouped.get_mut(at) {
                g.push(part);
            }
        }
        for g in &mut grouped {
            g.sort_by(|a, b| walk_order(a.name(), b.name()));
        }
        let by_commit: Parts = commits.into_iter().zip(grouped).collect();
        Ok(Some(self.build(repo.clone(), &recorded.stamp.commits(folder), by_commit, &refs, &incomplete)))
    }

    /// A folder's listing from a scan, which then goes into the index; `None` for a folder
    /// leading outside the cache (skipped).
    fn listed_from_scan(&self, repo: Repo, folder: &str) -> Result<Option<RepoListing>> {
        let Some(s) = self.scan_repo_or_skip(&repo)? else { return Ok(None) };
        let mut parts = Parts::new();
        for f in &s.files {
            if let Some(size) = f.size {
                let part = Part { path: RepoPath::new(&f.path).ok(), blob: f.blob_id.clone(), size };
                parts.entry(f.commit.clone()).or_default().push(part);
            }
        }
        let listing = self.build(repo, &s.commits, parts, &s.refs, &s.incomplete);
        self.remember(folder, s);
        Ok(Some(listing))
    }

    /// Reconciles a scanned folder's index rows and records its stamp, unless the folder
    /// changed during the scan (the next listing scans it again). Best effort: a listing
    /// does not fail because the index cannot be written (a read-only home).
    fn remember(&self, folder: &str, s: RepoScan) {
        if !s.stamp.unchanged(&self.hub) {
            return;
        }
        let truth = reconcile::rows(folder, s.files);
        let stamp = [(folder, &s.stamp, truth.len() as u64)];
        let saved =
            self.index().and_then(|index| index.reconcile(Some(folder), &truth).and_then(|_| index.save_stamps(&stamp, false)));
        if let Err(e) = saved {
            tracing::warn!("could not record the listing of `{folder}` in the index: {e}");
        }
    }

    /// Drops the index rows and stamps of folders that are gone (best effort).
    fn forget_gone(&self, on_disk: &HashSet<String>) {
        let known = match self.index().and_then(Index::known_folders) {
            Ok(known) => known,
            Err(e) => {
                tracing::warn!("could not read the index: {e}");
                return;
            }
        };
        for folder in known.iter().filter(|f| !on_disk.contains(*f)) {
            // Looked at again right before: a download may have created it meanwhile.
            if self.hub.exists(folder) {
                continue;
            }
            let forgot =
                self.index().and_then(|index| index.delete(folder, None, None).and_then(|_| index.forget_stamps(&[folder])));
            if let Err(e) = forgot {
                tracing::warn!("could not forget the removed `{folder}` in the index: {e}");
                return;
            }
        }
    }

    /// A repo's listing from its parts.
    fn build(
        &self,
        repo: Repo,
        commits: &[String],
        mut parts: Parts,
        refs: &[(String, String)],
        incomplete: &[Incomplete],
    ) -> RepoListing {
        let listed: Vec<(&String, CommitHash, Vec<Part>)> = commits
            .iter()
            .filter_map(|c| Some((c, CommitHash::new(c).ok()?, parts.remove(c.as_str()).unwrap_or_default())))
            .collect();
        let all = || listed.iter().flat_map(|(_, _, p)| p.iter().map(|p| (p.blob.as_str(), p.size)));
        let size_bytes = if listed.len() > 1 { Some(distinct_bytes(all())) } else { None };
        let revisions: Vec<RevisionListing> = listed
            .into_iter()
            .map(|(name, commit, parts)| RevisionListing {
                commit,
                refs: refs.iter().filter(|(_, c)| c == name).map(|(n, _)| n.clone()).collect(),
                size_bytes: distinct_bytes(parts.iter().map(|p| (p.blob.as_str(), p.size))),
                files: parts
                    .into_iter()
                    .filter_map(|p| Some(FileListing { path: p.path?, size: p.size, blob: BlobId::from_relative_path(p.blob) }))
                    .collect(),
            })
            .collect();
        let incomplete = incomplete.iter().map(|i| i.listing(&self.hub_path)).collect();
        let size_bytes = size_bytes.unwrap_or_else(|| revisions.iter().map(|r| r.size_bytes).sum());
        RepoListing { repo, revisions, size_bytes, incomplete }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::symlink;

    use cache_core::GitSha1;
    use camino::Utf8Path;

    use super::*;
    use crate::config::StoreConfig;
    use crate::fsx;

    /// The racy window of these tests: above the coarse clock's tick, short enough to wait.
    const WINDOW: Duration = Duration::from_millis(40);

    struct Fixture {
        _tmp: tempfile::TempDir,
        hub: Utf8PathBuf,
        store: Store,
    }

    fn open(prepare: impl FnOnce(&Utf8Path)) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
        let hub = root.join("hub");
        std::fs::create_dir_all(&hub).unwrap();
        prepare(&hub);
        let store = Store::open(StoreConfig::new(&hub, root.join("home"))).unwrap();
        Fixture { _tmp: tmp, hub, store }
    }

    fn commit(n: u32) -> String {
        format!("{n:040x}")
    }

    /// A file as `huggingface_hub` writes it: the blob, then a relative link to it.
    fn hf_file(hub: &Utf8Path, folder: &str, commit: &str, path: &str, body: &[u8]) {
        let etag = GitSha1::of(body).to_string();
        let repo = hub.join(folder);
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs").join(&etag), body).unwrap();
        let link = repo.join("snapshots").join(commit).join(path);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(fsx::blob_link_target(path.matches('/').count(), &etag), link).unwrap();
    }

    fn hf_ref(hub: &Utf8Path, folder: &str, name: &str, commit: &str) {
        let rel = hub.join(folder).join("refs").join(name);
        std::fs::create_dir_all(rel.parent().unwrap()).unwrap();
        std::fs::write(rel, commit).unwrap();
    }

    /// `list` as it was before stamps: every folder scanned, listed file by file.
    fn reference(store: &Store) -> Vec<RepoListing> {
        let mut out = Vec::new();
        for repo in scan::repos(&store.hub).unwrap() {
            let s = scan::repo(&store.hub, &repo).unwrap();
            let mut revisions = Vec::new();
            let mut repo_blobs = BTreeMap::new();
            for commit in &s.commits {
                let Ok(c) = CommitHash::new(commit) else { continue };
                let mut blobs = BTreeMap::new();
                let files: Vec<FileListing> = s
                    .files
                    .iter()
                    .filter(|f| &f.commit == commit)
                    .filter_map(|f| {
                        let size = f.size?;
                        blobs.insert(f.blob_id.clone(), size);
                        Some(FileListing {
                            path: RepoPath::new(&f.path).ok()?,
                            size,
                            blob: BlobId::from_relative_path(&f.blob_id),
                        })
                    })
                    .collect();
                repo_blobs.extend(blobs.clone());
                let refs = s.refs.iter().filter(|(_, c)| c == commit).map(|(n, _)| n.clone()).collect();
                revisions.push(RevisionListing { commit: c, refs, files, size_bytes: blobs.values().sum() });
            }
            let incomplete = s.incomplete.iter().map(|i| i.listing(&store.hub_path)).collect();
            out.push(RepoListing { repo, revisions, size_bytes: repo_blobs.values().sum(), incomplete });
        }
        out
    }

    /// Lists once the last change is older than the window, checking the answer against a
    /// full scan; `parallel` reads the index on two threads, however small it is.
    fn list_in(store: &Store, parallel: bool) -> (Vec<RepoListing>, Tally) {
        std::thread::sleep(WINDOW * 2);
        let (listed, tally) = store.list_with(WINDOW, if parallel { 0 } else { PARALLEL_ROWS }).unwrap();
        assert_eq!(listed, reference(store));
        (listed, tally)
    }

    fn list(store: &Store) -> (Vec<RepoListing>, Tally) {
        list_in(store, false)
    }

    /// Makes a change, then checks that the next listing scans `scanned` folders and the
    /// ones after answer them all from the index (on one thread and on two), all equal to
    /// a full scan.
    fn after(store: &Store, scanned: usize, change: impl FnOnce()) -> Vec<RepoListing> {
        change();
        let (listed, tally) = list_in(store, true);
        assert_eq!(tally.scanned, scanned, "{tally:?}");
        for parallel in [true, false] {
            let (again, tally) = list_in(store, parallel);
            assert_eq!(tally, Tally { from_index: again.len(), scanned: 0 }, "parallel: {parallel}");
        }
        listed
    }

    /// Lists until every folder is answered from the index (a stamp taken soon after a
    /// change is racy, so its folder is scanned once more).
    fn settle(store: &Store) -> Vec<RepoListing> {
        list(store);
        after(store, 0, || {})
    }

    fn files(listed: &[RepoListing], id: &str) -> Vec<(String, String, u64)> {
        let repo = listed.iter().find(|l| l.repo.folder_name() == id).unwrap();
        repo.revisions.iter().flat_map(|r| r.files.iter().map(|f| (r.commit.to_string(), f.path.to_string(), f.size))).collect()
    }

    #[test]
    fn the_index_backed_listing_equals_a_full_scan_through_changes_behind_the_stores_back() {
        let (a, b) = ("models--org--a", "datasets--org--b");
        let fixture = open(|hub| {
            hf_file(hub, a, &commit(1), "config.json", b"{}");
            // Walk order is by component: `sub/x.bin` before `sub.txt`.
            hf_file(hub, a, &commit(1), "sub/x.bin", b"x");
            hf_file(hub, a, &commit(1), "sub.txt", b"text");
            hf_file(hub, a, &commit(1), "same.bin", b"x");
            hf_ref(hub, a, "main", &commit(1));
            hf_file(hub, b, &commit(7), "data.csv", b"1,2\n");
            hf_ref(hub, b, "main", &commit(7));
        });
        let (s, hub) = (&fixture.store, fixture.hub.as_path());
        let listed = settle(s);
        assert_eq!(listed[1].size_bytes, 7, "a blob linked twice counts once");
        assert_eq!(
            files(&listed, a).iter().map(|f| f.1.as_str()).collect::<Vec<_>>(),
            ["config.json", "same.bin", "sub/x.bin", "sub.txt"]
        );

        // Another tool adds a file in a nested folder, and one in a new revision.
        let listed = after(s, 1, || hf_file(hub, a, &commit(1), "sub/deeper/new.bin", b"new"));
        assert!(files(&listed, a).contains(&(commit(1), "sub/deeper/new.bin".into(), 3)));
        after(s, 1, || hf_file(hub, a, &commit(2), "config.json", b"{\"v\": 2}"));
        // An empty revision folder.
        let listed = after(s, 1, || std::fs::create_dir_all(hub.join(a).join("snapshots").join(commit(3))).unwrap());
        assert_eq!(listed[1].revisions.len(), 3);
        // A file removed.
        let listed =
            after(s, 1, || std::fs::remove_file(hub.join(b).join("snapshots").join(commit(7)).join("data.csv")).unwrap());
        assert!(files(&listed, b).is_empty());
        // A blob replaced the way tools write files (a new file renamed over it).
        let etag = GitSha1::of(b"text").to_string();
        let listed = after(s, 1, || {
            std::fs::write(hub.join(a).join("blobs/tmp"), b"longer text").unwrap();
            std::fs::rename(hub.join(a).join("blobs/tmp"), hub.join(a).join("blobs").join(&etag)).unwrap();
        });
        assert!(files(&listed, a).contains(&(commit(1), "sub.txt".into(), 11)));

        // Refs are read every time: rewritten in place (as Python does), nothing to rescan.
        let listed = after(s, 0, || hf_ref(hub, a, "main", &commit(2)));
        assert_eq!(listed[1].revisions[1].refs, ["main"]);
        // `.incomplete` files: a new one is a change; one growing in place is read as it is.
        let partial = hub.join(a).join("blobs").join(format!("{}.incomplete", "e".repeat(64)));
        after(s, 1, || std::fs::write(&partial, b"12").unwrap());
        let listed = after(s, 0, || std::fs::write(&partial, b"12345").unwrap());
        assert_eq!(listed[1].incomplete[0].size, 5);

        // A new repo folder, then one deleted: gone from the listing and from the index.
        let c = "models--org--c";
        let listed = after(s, 1, || hf_file(hub, c, &commit(9), "w.bin", b"w"));
        assert_eq!(listed.len(), 3);
        let listed = after(s, 0, || std::fs::remove_dir_all(hub.join(c)).unwrap());
        assert_eq!(listed.len(), 2);
        assert!(s.stats().unwrap().per_repo.iter().all(|r| r.repo.folder_name() != c));
        assert!(!s.index().unwrap().stamps().unwrap().contains_key(c));

        // A blob truncated in place changes no directory: the listing shows the size the
        // last scan saw (`verify` reports the corruption) until a reconcile records it.
        std::fs::write(hub.join(a).join("blobs").join(GitSha1::of(b"{}").to_string()), b"").unwrap();
        std::thread::sleep(WINDOW * 2);
        let (listed, tally) = s.list_with(WINDOW, 0).unwrap();
        assert_eq!(tally.scanned, 0);
        assert!(files(&listed, a).contains(&(commit(1), "config.json".into(), 2)));
        s.reconcile().unwrap();
        let (listed, tally) = list(s);
        assert_eq!(tally.scanned, 0);
        assert!(files(&listed, a).contains(&(commit(1), "config.json".into(), 0)));
    }

    #[test]
    fn a_shared_store_payload_removed_is_noticed() {
        let payload = b"xet payload";
        let hash = "ab".repeat(32);
        let etag = GitSha1::of(payload).to_string();
        let fixture = open(|hub| {
            std::fs::create_dir_all(hub.join("blobs/ab")).unwrap();
            std::fs::write(hub.join("blobs/ab").join(&hash), payload).unwrap();
            let repo = hub.join("models--x--one");
            std::fs::create_dir_all(repo.join("blobs")).unwrap();
            std::fs::create_dir_all(repo.join("snapshots").join(commit(1))).unwrap();
            symlink(format!("../../blobs/ab/{hash}"), repo.join("blobs").join(&etag)).unwrap();
            symlink(fsx::blob_link_target(0, &etag), repo.join("snapshots").join(commit(1)).join("w.bin")).unwrap();
        });
        let listed = settle(&fixture.store);
        assert_eq!(listed[0].revisions[0].files[0].blob.as_str(), format!("blobs/ab/{hash}"));
        let listed = after(&fixture.store, 1, || std::fs::remove_file(fixture.hub.join("blobs/ab").join(&hash)).unwrap());
        assert!(listed[0].revisions[0].files.is_empty(), "a dangling link is not listed");
    }

    #[test]
    fn a_change_in_the_same_tick_as_a_scan_is_noticed_by_a_later_listing() {
        let a = "models--org--a";
        let fixture = open(|hub| hf_file(hub, a, &commit(1), "config.json", b"{}"));
        let (s, hub) = (&fixture.store, fixture.hub.as_path());
        settle(s);
        hf_file(hub, a, &commit(1), "late.bin", b"late");
        // A scan that read the folder just before `late.bin` arrived and stat'ed its
        // directories just after, within one timestamp tick: its stamp matches the disk,
        // while its rows (the old ones) lack the file.
        let rows = s.index().unwrap().stamps().unwrap()[a].files;
        let mut stamp = scan::repo(&s.hub, &Repo::from_folder_name(a).unwrap()).unwrap().stamp;
        let late = |listed: &[RepoListing]| files(listed, a).iter().any(|f| f.1 == "late.bin");

        // Were the stamp trusted, the listing would miss the file…
        stamp.taken_at += 10_000_000_000;
        s.index().unwrap().save_stamps(&[(a, &stamp, rows)], false).unwrap();
        let (listed, tally) = s.list_with(RACY_WINDOW, PARALLEL_ROWS).unwrap();
        assert_eq!((tally.from_index, late(&listed)), (1, false));
        // …but it was taken within the racy window of the change, so it is not.
        stamp.taken_at -= 10_000_000_000;
        s.index().unwrap().save_stamps(&[(a, &stamp, rows)], false).unwrap();
        let (listed, tally) = s.list_with(RACY_WINDOW, PARALLEL_ROWS).unwrap();
        assert_eq!((tally.scanned, late(&listed)), (1, true));
        assert_eq!(listed, reference(s));
    }

    #[test]
    fn rows_changed_behind_a_stamp_are_not_trusted() {
        let a = "models--org--a";
        let fixture = open(|hub| hf_file(hub, a, &commit(1), "config.json", b"{}"));
        settle(&fixture.store);
        fixture.store.index().unwrap().delete(a, None, None).unwrap();
        let (_, tally) = list(&fixture.store);
        assert_eq!(tally.scanned, 1);
    }

    #[test]
    fn a_listing_needs_no_writable_index() {
        let a = "models--org--a";
        let fixture = open(|hub| hf_file(hub, a, &commit(1), "config.json", b"{}"));
        fixture.store.index().unwrap().read("test", |c| c.pragma_update(None, "query_only", true)).unwrap();
        hf_file(&fixture.hub, a, &commit(1), "new.bin", b"new");
        for _ in 0..2 {
            let (listed, tally) = list(&fixture.store);
            assert_eq!((tally.scanned, listed[0].revisions[0].files.len()), (1, 2), "scanned, nothing recorded");
        }
    }
}
