//! `Store`: opening the two roots, the index, leases and the flush of usage records.

use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use cache_core::{CommitHash, Etag, FailureCause, Repo, RepoPath, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::config::StoreConfig;
use crate::error::{Error, Result};
use crate::filesystem::{self, FsKind};
use crate::index::Index;
use crate::journal::{self, Journal};
use crate::layout::{self, CACHEDIR_TAG, RepoLayout};
use crate::lock::{self, Lease, TryHeld};
use crate::lockmode::LockMode;
use crate::memo::Memo;
use crate::usage::Usage;
use crate::{fsx, reconcile};

/// How blob locks are taken under each root.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootLocks {
    pub(crate) hub: RootLock,
    pub(crate) home: RootLock,
}

/// How blob locks are taken under one root.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RootLock {
    /// The lock mode, `auto` resolved from the filesystem.
    pub(crate) mode: LockMode,
    /// Whether several machines may share the filesystem.
    shared: bool,
}

impl RootLock {
    /// Whether a holder keeps a record of itself. Only where a lock can outlive its holder
    /// or the kernel cannot name the holder: a filesystem several machines may share, or a
    /// mode with OFD locks. On a local filesystem with `flock` the kernel drops a dead
    /// process's lock and names a live holder (`/proc/locks`), so a record would add
    /// nothing but an inode created and deleted per file — on ext4, a cost every later
    /// file creation pays for a minute.
    pub(crate) fn keeps_holder_records(self) -> bool {
        self.shared || self.mode != LockMode::Flock
    }
}

/// The on-disk cache: one hub cache directory plus the modelcache home.
///
/// `Send + Sync`: share it with an `Arc`. Call [`Store::flush`] (or drop the store)
/// before the process exits so usage records reach the index.
pub struct Store {
    pub(crate) config: StoreConfig,
    pub(crate) hub_path: Utf8PathBuf,
    pub(crate) home_path: Utf8PathBuf,
    pub(crate) hub: Dir,
    pub(crate) home: Dir,
    /// Home-relative folder of this hub cache's state (`hubs/<key>`).
    pub(crate) state: Utf8PathBuf,
    /// This hub cache's index, opened on first use ([`Store::index`]): a hit of a file
    /// unchanged since it was linked never opens it (see `lookup`).
    index: OnceLock<Index>,
    /// Serialises the first open of `index` (and the rebuild of a new one).
    index_opening: Mutex<()>,
    /// The usage journal beside the index: hits append to it without opening the index.
    journal: Journal,
    /// The URL artifacts' index, opened on first use ([`Store::artifact_index`]): a hit of
    /// a Hub file never opens it.
    artifacts: OnceLock<Index>,
    /// Serialises the first open (and the rebuild of a new artifact index).
    artifacts_opening: Mutex<()>,
    pub(crate) usage: Usage,
    pub(crate) memo: Memo,
    /// `CACHEDIR.TAG` was seen (or written) by this store: commits need not look again.
    tagged: AtomicBool,
    /// How blob locks are taken on the hub cache and on the home, decided at the first lock.
    locks: OnceLock<RootLocks>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("hub", &self.hub_path).field("home", &self.home_path).finish_non_exhaustive()
    }
}

fn ensure_root(path: &Utf8Path) -> Result<(Utf8PathBuf, Dir, bool)> {
    let created = !path.exists();
    if created {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path).map_err(Error::io("create", path))?;
    }
    let canonical = path.canonicalize().map_err(Error::io("resolve", path))?;
    let canonical = Utf8PathBuf::from_path_buf(canonical).map_err(|path| Error::NonUtf8Path { path })?;
    let dir = Dir::open_ambient_dir(&canonical, cap_std::ambient_authority()).map_err(Error::io("open", &canonical))?;
    Ok((canonical, dir, created))
}

impl Store {
    /// Opens (creating when missing, mode 0700) the hub cache and the home, and this hub
    /// cache's index in the home. An existing cache written by `huggingface_hub` is read
    /// as it is; when the index is new, it is built from the disk ([`Store::reconcile`]).
    pub fn open(config: StoreConfig) -> Result<Store> {
        let (hub_path, hub, hub_created) = ensure_root(&config.hub_dir)?;
        let (home_path, home, _) = ensure_root(&config.home_dir)?;
        if hub_created {
            write_cachedir_tag(&hub);
        }
        let state = layout::hub_state_dir(&layout::hub_key(hub_path.as_str()));
        fsx::create_dirs(&home, &state.join("leases")).map_err(Error::io("create", home_path.join(&state)))?;
        let marker = state.join("hub-path");
        if home.read_to_string(&marker).ok().as_deref() != Some(hub_path.as_str()) {
            // Informative only (which hub cache this state belongs to), and rewritten
            // whenever it is missing or wrong: no fsync.
            fsx::replace(&home, &state, &marker, hub_path.as_str().as_bytes(), false)
                .map_err(Error::io("write", home_path.join(&marker)))?;
        }
        let index_path = home_path.join(&state).join("index.sqlite3");
        // An index that is not there yet is built from the disk now, as before; an
        // existing one is opened when first needed.
        let missing = !index_path.exists();
        let store = Store {
            config,
            hub_path,
            home_path,
            hub,
            home,
            state,
            index: OnceLock::new(),
            index_opening: Mutex::new(()),
            journal: Journal::beside(&index_path),
            artifacts: OnceLock::new(),
            artifacts_opening: Mutex::new(()),
            usage: Usage::default(),
            memo: Memo::default(),
            tagged: AtomicBool::new(false),
            locks: OnceLock::new(),
        };
        if missing {
            store.index()?;
        }
        Ok(store)
    }

    /// This hub cache's index, opened the first time it is needed (and, when it is new or
    /// was set aside as unreadable, built from the disk, [`Store::reconcile`]). Lookups of
    /// files unchanged since they were linked and the recording of their use never need
    /// it, so a warm `get` opens no database.
    pub(crate) fn index(&self) -> Result<&Index> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let _opening = self.index_opening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        let (index, fresh) = Index::open(&self.index_path())?;
        let index = self.index.get_or_init(|| index);
        if fresh {
            let report = reconcile::reconcile_hub(self)?;
            tracing::info!(added = report.added, "built a new index from the hub cache");
        }
        Ok(index)
    }

    /// Whether this store has opened its index (tests check that a hit did not).
    #[cfg(test)]
    pub(crate) fn index_is_open(&self) -> bool {
        self.index.get().is_some()
    }

    /// The locks a Hub blob lock takes (`lock_mode`, with `auto` decided from the hub
    /// cache's filesystem).
    pub fn lock_mode(&self) -> LockMode {
        self.root_locks().hub.mode
    }

    /// The locks an artifact's lock takes (decided from the home's filesystem).
    pub fn home_lock_mode(&self) -> LockMode {
        self.root_locks().home.mode
    }

    /// Both roots' locking, decided on the first lock: a hit takes no blob lock, so it
    /// reads neither `statfs` nor the mount table.
    pub(crate) fn root_locks(&self) -> RootLocks {
        *self.locks.get_or_init(|| {
            let mode = self.config.lock_mode;
            let of = |kind: FsKind| RootLock { mode: mode.resolve(kind), shared: kind.is_shared() };
            let locks = RootLocks { hub: of(filesystem::detect(&self.hub).kind), home: of(filesystem::detect(&self.home).kind) };
            tracing::debug!(hub = %locks.hub.mode, home = %locks.home.mode, "lock modes");
            locks
        })
    }

    /// The URL artifacts' index, opened (creating `artifacts/` in the home, and building a
    /// new index from the artifact entries on disk) the first time it is needed: Hub
    /// lookups and downloads never need it (and a warm `get` of a Hub file usually opens
    /// no database at all, see [`Store::index`]).
    pub(crate) fn artifact_index(&self) -> Result<&Index> {
        if let Some(index) = self.artifacts.get() {
            return Ok(index);
        }
        let _opening = self.artifacts_opening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = self.artifacts.get() {
            return Ok(index);
        }
        fsx::create_dirs(&self.home, Utf8Path::new("artifacts/leases"))
            .map_err(Error::io("create", self.home_path.join("artifacts")))?;
        let (index, fresh) = Index::open(&self.home_path.join("artifacts/index.sqlite3"))?;
        let index = self.artifacts.get_or_init(|| index);
        if fresh {
            reconcile::reconcile_artifacts(self)?;
        }
        Ok(index)
    }

    /// The hub cache directory (canonical).
    pub fn hub_dir(&self) -> &Utf8Path {
        &self.hub_path
    }

    /// The size in bytes of the hub cache's whole filesystem (used and free space): no
    /// file larger than this can ever be stored there, whatever is freed.
    pub fn capacity(&self) -> Result<u64> {
        fsx::capacity(&self.hub).map_err(Error::io("measure the filesystem of", self.hub_path.clone()))
    }

    /// The modelcache home (canonical).
    pub fn home_dir(&self) -> &Utf8Path {
        &self.home_path
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Free bytes available to this user on the hub cache's filesystem.
    pub fn free_space(&self) -> Result<u64> {
        fsx::free_space(&self.hub).map_err(Error::io("measure free space of", self.hub_path.clone()))
    }

    /// The index database of this hub cache.
    pub fn index_path(&self) -> Utf8PathBuf {
        self.home_path.join(&self.state).join("index.sqlite3")
    }

    /// Writes pending last-use records and hit/miss counters to the index.
    pub fn flush(&self) -> Result<()> {
        let batch = self.usage.take();
        if batch.touched.is_empty() && batch.hits == 0 && batch.misses == 0 {
            return Ok(());
        }
        // URL artifacts' uses (repo `''`) belong to the artifact index, Hub files' to the
        // hub cache's (through its usage journal).
        let (artifacts, hub): (Vec<_>, Vec<_>) = batch.touched.iter().cloned().partition(|t| t.0.is_empty());
        // Artifacts first: replaying their last uses after a failure changes nothing,
        // while the counts go with the hub's record, once.
        let result = (if artifacts.is_empty() { Ok(()) } else { self.artifact_index().and_then(|a| a.touch(&artifacts)) })
            .and_then(|()| self.record_hub_usage(&hub, batch.hits, batch.misses, &batch.hit_latency));
        if result.is_err() {
            self.usage.restore(batch);
        }
        result
    }

    /// Records a batch of the hub cache's uses and lookups: appended to the usage journal
    /// when it can be (see `journal`), without opening the index; else written to the
    /// index. A journal grown past its limit is merged.
    fn record_hub_usage(
        &self,
        uses: &[(String, String, String, i64)],
        hits: u64,
        misses: u64,
        hit_latency: &cache_core::Histogram,
    ) -> Result<()> {
        match self.journal.append(uses, hits, misses, hit_latency) {
            Ok(size) => {
                if size > journal::MERGE_AT
                    && let Err(e) = self.index().and_then(Index::merge_journal)
                {
                    tracing::debug!("could not merge the usage journal yet: {e}");
                }
                Ok(())
            }
            Err(why) => {
                tracing::debug!(%why, "recording usage in the index directly");
                self.index()?.record_usage_directly(uses, hits, misses, hit_latency)
            }
        }
    }

    pub(crate) fn maybe_flush(&self, pending: usize) {
        if pending >= self.config.flush_threshold
            && let Err(e) = self.flush()
        {
            tracing::warn!("could not record cache usage: {e}");
        }
    }

    /// Holds `repo` in use: until the lease is dropped, no process removes or evicts its
    /// files. Take it before looking files up and keep it while using them.
    pub fn lease(&self, repo: &Repo) -> Result<Lease> {
        let rel = self.lease_rel(&repo.folder_name());
        lock::lease(&self.home, &rel, &self.home_path.join(&rel))
    }

    /// Counts a request that needed a download and failed, by cause (written at once:
    /// failures are rare, and a process that failed may exit right after).
    pub fn record_failure(&self, cause: FailureCause) -> Result<()> {
        self.index()?.add_failure(cause)
    }

    /// Counts a wait for a busy blob lock (the slow path: written at once) and reports it
    /// as a `lock_wait` event.
    pub(crate) fn record_lock_wait(&self, lock: &lock::BlobLock) {
        let Some(waited) = lock.held.waited else { return };
        tracing::info!(lock = %lock.held.lock_file, waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX), "lock_wait");
        if let Err(e) = self.index().and_then(|i| i.add_lock_wait(waited)) {
            tracing::warn!("could not count a lock wait: {e}");
        }
    }

    /// Whether any process (this one included) holds a lease on `repo` right now.
    pub fn is_leased(&self, repo: &Repo) -> Result<bool> {
        Ok(self.try_exclusive_repo(&repo.folder_name())?.is_none())
    }

    /// Whether a blob lock of `repo` is held right now (a transfer or commit in flight,
    /// by any process, Python included): of the blob `etag`, or of any blob when `None`.
    pub fn is_blob_locked(&self, repo: &Repo, etag: Option<&Etag>) -> Result<bool> {
        let layout = RepoLayout::new(repo);
        let names = match etag {
            Some(e) => vec![layout.lock_file(e)],
            None => fsx::list_dir(&self.hub, &layout.lock_dir())
                .map_err(Error::io("list", self.hub_path.join(layout.lock_dir())))?
                .into_iter()
                .filter(|(n, t)| t.is_file() && n.ends_with(".lock"))
                .map(|(n, _)| layout.lock_dir().join(n))
                .collect(),
        };
        for rel in names {
            if lock::try_exclusive(&self.hub, &rel, &self.hub_path.join(&rel), false)?.is_none() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Records that files of `repo` at `commit` were used just now: their last-use time
    /// becomes the current time (in memory, flushed like hits), without counting a
    /// lookup. Callers record what they return, so eviction's in-use grace counts from
    /// the moment a path was handed out, not from when its download began.
    pub fn record_use<'a>(&self, repo: &Repo, commit: &CommitHash, paths: impl IntoIterator<Item = &'a RepoPath>) {
        let now = Timestamp::now().as_unix_millis();
        let folder = repo.folder_name();
        let mut pending = 0;
        for p in paths {
            pending = self.usage.touch(&folder, commit.as_str(), p.as_str(), now);
        }
        self.maybe_flush(pending);
    }

    pub(crate) fn lease_rel(&self, folder: &str) -> Utf8PathBuf {
        self.state.join("leases").join(format!("{folder}.lock"))
    }

    /// The exclusive side of a repo's lease, `None` when a reader holds it.
    pub(crate) fn try_exclusive_repo(&self, folder: &str) -> Result<Option<TryHeld>> {
        let rel = self.lease_rel(folder);
        lock::try_exclusive(&self.home, &rel, &self.home_path.join(&rel), true)
    }

    pub(crate) fn ensure_cachedir_tag(&self) {
        if self.tagged.load(Ordering::Relaxed) {
            return;
        }
        if !self.hub.exists("CACHEDIR.TAG") {
            write_cachedir_tag(&self.hub);
        }
        self.tagged.store(true, Ordering::Relaxed);
    }
}

fn write_cachedir_tag(hub: &Dir) {
    use std::io::Write;
    let mut o = cap_std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    if let Ok(mut f) = hub.open_with("CACHEDIR.TAG", &o) {
        let _ = f.write_all(CACHEDIR_TAG.as_bytes());
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!("could not record cache usage on close: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cache_core::{EvictionPolicy, GitSha1, Revision};

    use super::*;
    use crate::commit::CommitRequest;

    fn open(root: &Utf8Path) -> Store {
        Store::open(StoreConfig::new(root.join("hub"), root.join("home"))).unwrap()
    }

    /// Commits `bytes` as `path` of `repo` at commit `c…c`, as a download does.
    fn commit_file(store: &Store, repo: &Repo, path: &RepoPath, bytes: &[u8]) -> CommitHash {
        let commit: CommitHash = "c".repeat(40).parse().unwrap();
        let etag = Etag::GitSha1(GitSha1::of(bytes));
        let req = CommitRequest::new(repo.clone(), commit, path.clone(), etag, bytes.len() as u64);
        let lock = store.lock_blob(repo, &etag, &mut |_| {}).unwrap();
        let staging = store.stage(&lock, Some(req.size)).unwrap();
        staging.write_at(bytes, 0).unwrap();
        store.commit(staging, &req).unwrap();
        commit
    }

    #[test]
    fn a_hit_on_a_blob_unchanged_since_linked_opens_no_index_yet_is_recorded_and_protected() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        let repo = Repo::model("org/model".parse().unwrap());
        let path: RepoPath = "config.json".parse().unwrap();
        let commit = commit_file(&open(root), &repo, &path, b"{\"hidden_size\": 768}");
        // A link made in the clock tick of its blob's publishing proves nothing: make it
        // later, as a commit that took a while would have.
        std::thread::sleep(Duration::from_millis(30));
        let link = root.join("hub/models--org--model/snapshots").join(commit.as_str()).join("config.json");
        let now = std::time::SystemTime::now();
        set_link_time(&link, now);
        // The commit's use falls out of the grace period below: only the hit can protect
        // the file.
        std::thread::sleep(Duration::from_millis(600));
        let hit_at = Timestamp::now();

        let store = open(root);
        assert!(!store.index_is_open(), "opening an existing cache opens no database");
        let lease = store.lease(&repo).unwrap();
        let hit = store.lookup(&repo, &Revision::from(commit), &path).unwrap().expect("a hit");
        assert!(!hit.is_suspect());
        assert!(!store.index_is_open(), "a blob unchanged since its link was stamped needs no index");
        assert_eq!(std::fs::read(&hit.path).unwrap(), b"{\"hidden_size\": 768}");
        drop(lease);
        drop(store);

        let store = open(root);
        let policy = EvictionPolicy { max_size: Some(0), in_use_grace: Duration::from_millis(300), ..EvictionPolicy::default() };
        let report = store.evict(&policy, Timestamp::now()).unwrap();
        assert!(report.evicted.is_empty(), "the hit's use protects the file: {:?}", report.evicted);
        let entries = store.entries().unwrap();
        assert!(entries[0].last_used >= hit_at, "{:?} vs {hit_at:?}", entries[0].last_used);
        assert_eq!(store.stats().unwrap().counters.hits, 1);
    }

    /// Sets a symlink's own modification time.
    fn set_link_time(link: &Utf8Path, t: std::time::SystemTime) {
        let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
        let dir = std::fs::File::open(link.parent().unwrap()).unwrap();
        let times = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
            last_modification: rustix::fs::Timespec {
                tv_sec: i64::try_from(d.as_secs()).unwrap(),
                tv_nsec: i64::from(d.subsec_nanos()),
            },
        };
        rustix::fs::utimensat(&dir, link.file_name().unwrap(), &times, rustix::fs::AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }

    /// Lookups (each in a store of its own, as separate processes: no memo, and each may
    /// re-stamp the link) race a truncation that puts the blob's old modification time
    /// back; once the truncation is done, every lookup must find the hit suspect.
    #[test]
    fn lookups_racing_a_truncation_never_take_the_cut_blob_as_sound() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for round in 0..12_u64 {
            let tmp = tempfile::tempdir().unwrap();
            let root = Utf8Path::from_path(tmp.path()).unwrap().to_owned();
            let repo = Repo::model("org/model".parse().unwrap());
            let path: RepoPath = "model.bin".parse().unwrap();
            let commit = commit_file(&open(&root), &repo, &path, &[7; 4096]);
            let at = Revision::from(commit);
            let cut = AtomicBool::new(false);
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    while !cut.load(Ordering::SeqCst) {
                        let store = open(&root);
                        let hit = store.lookup(&repo, &at, &path).unwrap().expect("a hit");
                        assert!(hit.size == 4096 || hit.is_suspect(), "round {round}: a cut blob passed: {hit:?}");
                    }
                });
                // Vary where the cut lands: within the commit's clock tick or well after it.
                std::thread::sleep(Duration::from_millis(round % 4 * 3));
                let blob =
                    std::fs::canonicalize(root.join("hub/models--org--model/snapshots").join(commit.as_str()).join("model.bin"))
                        .unwrap();
                let modified = std::fs::metadata(&blob).unwrap().modified().unwrap();
                let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
                f.set_len(100).unwrap();
                f.set_modified(modified).unwrap();
                drop(f);
                cut.store(true, Ordering::SeqCst);
            });
            for _ in 0..3 {
                let hit = open(&root).lookup(&repo, &at, &path).unwrap().expect("a hit");
                assert!(hit.is_suspect(), "round {round}: after the cut, a lookup took it as sound: {hit:?}");
            }
        }
    }

    #[test]
    fn a_blob_changed_after_its_link_is_judged_by_the_index_even_with_its_old_time() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(tmp.path()).unwrap();
        let repo = Repo::model("org/model".parse().unwrap());
        let path: RepoPath = "model.bin".parse().unwrap();
        let commit = commit_file(&open(root), &repo, &path, &[7; 4096]);
        let store = open(root);
        let hit = store.lookup(&repo, &Revision::from(commit), &path).unwrap().expect("a hit");
        let blob = std::fs::canonicalize(&hit.path).unwrap();
        let modified = std::fs::metadata(&blob).unwrap().modified().unwrap();
        drop(store);
        // Truncated, and its modification time set back (as `cp -p` of a cut-short backup
        // would leave it): only its change time tells.
        let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
        f.set_len(100).unwrap();
        f.set_modified(modified).unwrap();
        drop(f);

        let store = open(root);
        let hit = store.lookup(&repo, &Revision::from(commit), &path).unwrap().expect("a hit");
        assert!(!hit.modified_after_link);
        assert_eq!((hit.size, hit.recorded_size), (100, Some(4096)));
        assert!(hit.is_suspect());
        assert!(store.index_is_open(), "the size was asked of the index");
    }
}
