//! The hot path: resolving revisions and finding committed files, plus the small Hub
//! metadata files (`refs/`, `.no_exist/`, `trees/`).
//!
//! # Performance
//! A lookup reads at most one ref file and stats one path, both through the cap-std
//! root (`openat2` with `RESOLVE_BENEATH` on Linux). It takes no file lock and writes
//! nothing: a hit is recorded in memory (see `usage`), and it opens no database when the
//! blob is unchanged since its link was made (see "Unchanged since linked").
//!
//! Otherwise the first check of a file in a process (not a `memo` hit) also compares the
//! blob's size, from the `stat` it already made, with the size the file was committed
//! with: one primary-key query on the index (opened then, when this process had not yet
//! needed it; in WAL mode a read transaction is a shared lock on the mapped `-shm` file, two `fcntl`s, plus a
//! `pread` per page not cached yet). A truncated blob whose modification time is older
//! than its link (a restore with `cp -p` or `rsync -a`) is then suspect like a blob
//! modified after its link. A memo hit costs what it did, one `stat`: the memo holds only
//! files whose size matched, and a changed size is a changed identity. A size the index
//! cannot give (an unknown file, an unreadable index, a connection another thread is
//! using: the lookup does not wait) leaves the hit unjudged by size: a hit never depends
//! on the index.
//!
//! # Unchanged since linked
//! Most hits need no index at all, so a warm `get` opens no database (opening one parses
//! its schema: about a fifth of such a process's own work). A commit publishes the blob
//! (rename, `chmod`) and then makes its snapshot link; every later change to the blob's
//! inode — a write, a truncation, a `chmod`, a new modification time as `cp -p` or
//! `rsync -a` set it, another hard link — moves its change time (`ctime`) to the time of
//! that change, and nothing can move it back. So a blob whose change time is not after
//! its link's creation time is the blob the link was made for, with the size it was
//! committed with: the hit is remembered without the size query. A restore, which makes
//! new inodes (and sets the links' times back), and any change after linking fail this
//! test and take the size check above.
//!
//! Timestamps come from a clock that advances every few milliseconds, so a change in the
//! same tick as the link's time cannot be told apart by time: the blob's change time
//! must be strictly before the link's, and a hit on a link made in the tick of its blob's
//! publishing (the usual case right after a download) takes the size check. Re-stamping
//! such a link after a successful check was tried and dropped: a truncation racing the
//! stamp could end up with a change time before the stamp (the stamp's clock can be finer
//! than the truncation's), which `store::tests::lookups_racing_a_truncation_never_take_the_cut_blob_as_sound`
//! caught.
//!
//! Same answer either way: the size query compares with the size recorded when the link
//! was made ([`Store::link_existing`] records the blob's size as it finds it), which is the
//! size of an inode unchanged since then.
//!
//! `trees/<commit>.json` also has sizes, but only for snapshots, and reading it means
//! opening and parsing a file per commit; the index has every committed file.

use std::io;

use cache_core::{CommitHash, Etag, Repo, RepoPath, Revision, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};
use crate::fsx;
use crate::layout::RepoLayout;
use crate::memo::Identity;
use crate::store::Store;
use crate::tree::Tree;

/// What a lookup counts in the usage statistics.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Counting {
    /// Hits and misses.
    All,
    /// Hits only.
    Hits,
    /// Hits that need no further check only.
    SoundHits,
}

/// A committed file found by [`Store::lookup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The absolute snapshot path.
    pub path: Utf8PathBuf,
    /// The blob's size.
    pub size: u64,
    /// The blob was modified after its snapshot link was made: possibly corrupted.
    pub modified_after_link: bool,
    /// The size the file was committed with, when this lookup read it (the first check
    /// of the file in this process): a different [`Hit::size`] means a truncated or
    /// replaced blob.
    pub recorded_size: Option<u64>,
}

impl Hit {
    /// Whether the hit deserves a full check before use (e.g. [`Store::verify`] of the
    /// file): its blob was modified after its link, or its size is not the recorded one.
    pub fn is_suspect(&self) -> bool {
        self.modified_after_link || self.recorded_size.is_some_and(|s| s != self.size)
    }
}

impl Store {
    /// The commit a revision names: a commit hash as is, a branch or tag (`main`,
    /// `refs/pr/1`) through `refs/<name>`. `None` when the ref is not cached, or is not a
    /// ref (not UTF-8, not a commit hash, a directory): such garbage counts as absent, so
    /// a download writes the ref again ([`Store::write_ref`] replaces it) and
    /// [`Store::verify`] reports it.
    pub fn resolve(&self, repo: &Repo, revision: &Revision) -> Result<Option<CommitHash>> {
        if let Some(c) = revision.commit() {
            return Ok(Some(c));
        }
        let rel = RepoLayout::new(repo).ref_file(revision);
        match self.hub.read_to_string(&rel) {
            Ok(s) => Ok(CommitHash::new(s.trim()).ok()),
            Err(e) if fsx::is_not_found(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(path = %self.hub_path.join(&rel), "ignoring a ref that is not UTF-8");
                Ok(None)
            }
            Err(e) if fsx::is_escape(&e) => {
                tracing::warn!(path = %self.hub_path.join(&rel), "ignoring a ref that leads outside the cache");
                Ok(None)
            }
            Err(e) => Err(Error::io("read", self.hub_path.join(rel))(e)),
        }
    }

    /// The absolute path of a committed file (`snapshots/<commit>/<path>`), or `None`.
    /// Records the hit (in memory) or the miss.
    pub fn find(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Option<Utf8PathBuf>> {
        Ok(self.lookup(repo, revision, path)?.map(|hit| hit.path))
    }

    /// Like [`Store::find`], with what a caller needs to decide whether to trust the hit
    /// without hashing it: the blob's size, and whether the blob was modified after its
    /// snapshot link was made (it should never be: such a hit deserves a full check, e.g.
    /// [`Store::verify`] of that file). Records the hit (in memory) or the miss.
    ///
    /// A file this process already found unmodified costs one `stat` (see `memo`).
    pub fn lookup(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Option<Hit>> {
        self.lookup_counting(repo, revision, path, Counting::All)
    }

    /// Like [`Store::lookup`], but a miss is not counted: for a caller that asks ahead of
    /// another path which looks again (and counts) when the file is not there.
    pub fn probe(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Option<Hit>> {
        self.lookup_counting(repo, revision, path, Counting::Hits)
    }

    /// A hit that needs no further check (not [`Hit::is_suspect`]), counted; `None` for
    /// anything else — a miss or a suspect hit — and nothing counted: for a fast path that
    /// answers a sound hit at once and otherwise leaves the request to a slower path that
    /// looks again (and counts).
    pub fn probe_sound(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<Option<Hit>> {
        self.lookup_counting(repo, revision, path, Counting::SoundHits)
    }

    fn lookup_counting(&self, repo: &Repo, revision: &Revision, path: &RepoPath, counting: Counting) -> Result<Option<Hit>> {
        let started = std::time::Instant::now();
        let Some(commit) = self.resolve(repo, revision)? else {
            if counting == Counting::All {
                self.usage.miss();
            }
            return Ok(None);
        };
        // A known file costs one allocation: its absolute path, of which the relative one
        // and the repo folder are slices.
        let (abs, root_len, folder_len) = RepoLayout::snapshot_file_under(&self.hub_path, repo, &commit, path);
        let hit = if let Some(size) = self.memo.check(&self.hub, Utf8Path::new(&abs.as_str()[root_len..])) {
            Some(Hit { path: abs, size, modified_after_link: false, recorded_size: None })
        } else {
            let rel = Utf8PathBuf::from(&abs.as_str()[root_len..]);
            self.check_link(&rel, abs, (&rel.as_str()[..folder_len], commit.as_str(), path.as_str()))?
        };
        match &hit {
            Some(h) if counting == Counting::SoundHits && h.is_suspect() => return Ok(None),
            Some(h) => {
                let now = Timestamp::now().as_unix_millis();
                let folder = &h.path.as_str()[root_len..root_len + folder_len];
                let n = self.usage.hit(folder, commit.as_str(), path.as_str(), now, started.elapsed());
                self.maybe_flush(n);
            }
            None if counting == Counting::All => self.usage.miss(),
            None => {}
        }
        Ok(hit)
    }

    /// The contained check of a snapshot entry (`key`: its index key): a regular file (a
    /// copy) or a link whose blob is a regular file inside the root; remembered when the
    /// blob is not newer than its link and has the recorded size (or is unchanged since
    /// the link was made, see "Unchanged since linked").
    fn check_link(&self, rel: &camino::Utf8Path, abs: Utf8PathBuf, key: (&str, &str, &str)) -> Result<Option<Hit>> {
        let Some(blob) = self.file_metadata(rel)? else { return Ok(None) };
        let link = self.hub.symlink_metadata(rel).map_err(Error::io("stat", abs.clone()))?;
        let modified_after_link =
            link.file_type().is_symlink() && matches!((blob.modified(), link.modified()), (Ok(b), Ok(l)) if b > l);
        let id = Identity::of_cap(&blob);
        if !modified_after_link && unchanged_since_linked(&blob, &link) {
            self.memo.remember(rel, id);
            return Ok(Some(Hit { path: abs, size: id.size(), modified_after_link, recorded_size: None }));
        }
        // A lookup never waits for the index: while another thread uses the connection,
        // the size goes unjudged this time (and the hit is not remembered).
        let recorded = self.index().map(|index| index.try_size_of(key.0, key.1, key.2));
        let (recorded_size, judged) = match recorded {
            Ok(Some(Ok(size))) => (size, true),
            Ok(Some(Err(e))) | Err(e) => {
                tracing::debug!(path = %abs, "cannot read the recorded size: {e}");
                (None, true)
            }
            Ok(None) => (None, false),
        };
        let hit = Hit { path: abs, size: id.size(), modified_after_link, recorded_size };
        if hit.is_suspect() {
            tracing::debug!(path = %hit.path, size = hit.size, ?recorded_size, modified_after_link, "suspect hit");
        } else if judged {
            self.memo.remember(rel, id);
        }
        Ok(Some(hit))
    }

    /// Whether the file is committed, without counting a use.
    pub fn is_cached(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<bool> {
        match self.resolve(repo, revision)? {
            Some(commit) => self.is_file(&RepoLayout::new(repo).snapshot_file(&commit, path)),
            None => Ok(false),
        }
    }

    pub(crate) fn is_file(&self, rel: &camino::Utf8Path) -> Result<bool> {
        Ok(self.file_metadata(rel)?.is_some())
    }

    /// The metadata of a regular file of the cache (following links inside the root), or
    /// `None`: missing, not a file, a link leaving the root, a loop. Only a real permission
    /// problem is an error.
    fn file_metadata(&self, rel: &camino::Utf8Path) -> Result<Option<cap_std::fs::Metadata>> {
        match self.hub.metadata(rel) {
            Ok(m) => Ok(m.is_file().then_some(m)),
            Err(e) if fsx::is_not_found(&e) || fsx::is_escape(&e) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Err(Error::io("stat", self.hub_path.join(rel))(e)),
            Err(_) => Ok(None),
        }
    }

    /// When `refs/<name>` was last written, `None` when it is not cached (a commit hash
    /// has no ref). The Hub resolver uses it to skip revalidation within a window.
    pub fn ref_modified(&self, repo: &Repo, name: &Revision) -> Result<Option<Timestamp>> {
        if name.commit().is_some() {
            return Ok(None);
        }
        let rel = RepoLayout::new(repo).ref_file(name);
        match self.hub.metadata(&rel) {
            Ok(m) if m.is_file() => {
                let t = m.modified().map_err(Error::io("stat", self.hub_path.join(&rel)))?.into_std();
                Ok(Some(Timestamp::from_system_time(t)))
            }
            Ok(_) => Ok(None),
            Err(e) if fsx::is_not_found(&e) => Ok(None),
            Err(e) => Err(Error::io("stat", self.hub_path.join(rel))(e)),
        }
    }

    /// Points `refs/<name>` at `commit`, atomically (nothing is written when it already
    /// does, or when `name` is itself a commit hash). A garbage file or an empty directory
    /// in its place is replaced.
    pub fn write_ref(&self, repo: &Repo, name: &Revision, commit: &CommitHash) -> Result<()> {
        if name.commit().is_some() {
            return Ok(());
        }
        if self.resolve(repo, name)? == Some(*commit) {
            return Ok(());
        }
        let layout = RepoLayout::new(repo);
        let rel = layout.ref_file(name);
        // A ref names a revision that exists: `huggingface_hub`'s `scan_cache_dir` hides a
        // repo whose ref points at no `snapshots/<commit>/` (as `hf_hub_download` does,
        // the folder is made before the download).
        self.ensure_repo_dir(&layout)?;
        let snapshot = layout.snapshot(commit);
        fsx::create_dirs(&self.hub, &snapshot).map_err(Error::io("create", self.hub_path.join(&snapshot)))?;
        let write = || fsx::write_atomic(&self.hub, &layout.root(), &rel, commit.as_str().as_bytes());
        write()
            .or_else(|e| {
                let dir = self.hub.symlink_metadata(&rel).is_ok_and(|m| m.is_dir());
                if dir && self.hub.remove_dir(&rel).is_ok() {
                    tracing::warn!(path = %self.hub_path.join(&rel), "replaced an empty directory standing in for a ref");
                    write()
                } else {
                    Err(e)
                }
            })
            .map_err(Error::io("write", self.hub_path.join(&rel)))
    }

    /// Marks `refs/<name>` as resolved just now (its modification time becomes the
    /// current time) without changing what it points at, so [`Store::ref_modified`]
    /// measures time since the last revalidation. Nothing happens when the ref is not
    /// cached or `name` is a commit hash.
    pub fn touch_ref(&self, repo: &Repo, name: &Revision) -> Result<()> {
        if name.commit().is_some() {
            return Ok(());
        }
        let rel = RepoLayout::new(repo).ref_file(name);
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true);
        match self.hub.open_with(&rel, &o) {
            Ok(f) => f.into_std().set_modified(std::time::SystemTime::now()).map_err(Error::io("touch", self.hub_path.join(rel))),
            Err(e) if fsx::is_not_found(&e) || e.kind() == io::ErrorKind::IsADirectory => Ok(()),
            Err(e) => Err(Error::io("open", self.hub_path.join(rel))(e)),
        }
    }

    /// Records that `path` does not exist at `commit` (`.no_exist/<commit>/<path>`).
    pub fn mark_no_exist(&self, repo: &Repo, commit: &CommitHash, path: &RepoPath) -> Result<()> {
        let layout = RepoLayout::new(repo);
        self.ensure_repo_dir(&layout)?;
        let rel = layout.no_exist(commit, path);
        let abs = self.hub_path.join(&rel);
        if let Some(parent) = rel.parent() {
            fsx::create_dirs(&self.hub, parent).map_err(Error::io("create", abs.parent().unwrap_or(&abs)))?;
        }
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create(true);
        self.hub.open_with(&rel, &o).map(drop).map_err(Error::io("create", abs))
    }

    /// Whether `path` was recorded as absent from the revision (resolved through `refs/`).
    pub fn is_no_exist(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<bool> {
        match self.resolve(repo, revision)? {
            Some(commit) => self.is_file(&RepoLayout::new(repo).no_exist(&commit, path)),
            None => Ok(false),
        }
    }

    /// Writes `trees/<commit>.json` atomically, in `huggingface_hub`'s format.
    pub fn write_tree(&self, repo: &Repo, commit: &CommitHash, tree: &Tree) -> Result<()> {
        let layout = RepoLayout::new(repo);
        self.ensure_repo_dir(&layout)?;
        let rel = layout.tree(commit);
        fsx::write_atomic(&self.hub, &layout.root(), &rel, tree.to_json().as_bytes())
            .map_err(Error::io("write", self.hub_path.join(rel)))
    }

    /// Reads `trees/<commit>.json`; `None` when absent or not in a format understood.
    pub fn read_tree(&self, repo: &Repo, commit: &CommitHash) -> Result<Option<Tree>> {
        let rel = RepoLayout::new(repo).tree(commit);
        match self.hub.read_to_string(&rel) {
            Ok(s) => Ok(Tree::from_json(&s)),
            Err(e) if fsx::is_not_found(&e) || e.kind() == io::ErrorKind::InvalidData => Ok(None),
            Err(e) => Err(Error::io("read", self.hub_path.join(rel))(e)),
        }
    }

    /// Makes the repo folder with its `snapshots/` (without which `huggingface_hub`'s
    /// `scan_cache_dir` rejects the repo) before anything else is written into it.
    pub(crate) fn ensure_repo_dir(&self, layout: &RepoLayout) -> Result<()> {
        let snapshots = layout.snapshots();
        fsx::create_dirs(&self.hub, &snapshots).map_err(|e| {
            if fsx::is_escape(&e) {
                Error::OutsideCache { path: self.hub_path.join(layout.root()) }
            } else {
                Error::io("create", self.hub_path.join(&snapshots))(e)
            }
        })
    }

    /// Whether `blobs/<etag>` of the repo holds a committed blob.
    pub fn has_blob(&self, repo: &Repo, etag: &Etag) -> Result<bool> {
        self.is_file(&RepoLayout::new(repo).blob(etag))
    }
}

/// Whether the blob behind a snapshot link is exactly as it was when the link was made:
/// the entry is a link, and the blob's inode last changed (`ctime`: any write, truncation,
/// `chmod`, time change or new name moves it, and no program can set it back) before the
/// link's time (a change in the same clock tick proves nothing either way). Such a blob has the size it was committed with, so the index
/// need not be asked (see "Unchanged since linked").
fn unchanged_since_linked(blob: &cap_std::fs::Metadata, link: &cap_std::fs::Metadata) -> bool {
    use cap_std::fs::MetadataExt;
    link.file_type().is_symlink() && (blob.ctime(), blob.ctime_nsec()) < (link.mtime(), link.mtime_nsec())
}
