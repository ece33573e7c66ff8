//! `HubCache`: Hub files and snapshots through the cache, with `huggingface_hub`'s
//! freshness rules.
//!
//! # Freshness
//! - A revision given as a commit never touches the network when the file (or, for a
//!   snapshot, its listing and files) is cached.
//! - A branch or tag is re-resolved (one `HEAD` for a file, one revision request for a
//!   snapshot) so that new commits are seen, unless `revalidate_after` has not elapsed
//!   since it was last resolved ([`Store::ref_modified`]; a revalidation that finds the
//!   same commit refreshes it with [`Store::touch_ref`]).
//! - When the Hub is unreachable (connection, timeout, 5xx after retries), the cached ref
//!   is used with a warning, as `huggingface_hub` does; without one, a blob source (a team
//!   tier, [`HubCache::with_source`]) is asked for the ref and the listing.
//! - Offline, only the cache answers (see [`crate::offline`]).
//!
//! # Snapshots
//! One listing request per commit (recorded as `trees/<commit>.json`, so later and
//! offline requests know what is complete), then `GET resolve/<commit>/<path>` for each
//! missing file with the listing's etag and size — no per-file `HEAD` — at most
//! `parallelism` at a time.

use std::future::Future as _;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use cache_core::{CommitHash, Repo, RepoPath, Revision, Timestamp};
use cache_store::{ArtifactKey, Store};
use camino::Utf8PathBuf;

use crate::client::{HubClient, HubConfig, to_tree, tree_entry_etag};
use crate::download::{
    BlobJob, Fetched, Observer, ObserverProgress, Staged, Transferred, commit_staged, fetch_artifact, fetch_blob, transfer_blob,
};
use crate::error::{Error, Result};
use crate::offline::{self, FileLookup};
use crate::patterns::FileFilter;
use crate::source::BlobSource;
use crate::urls;

/// Snapshot files up to this size are committed in batches.
const BATCH_MAX_FILE: u64 = 16 << 20;
/// The longest a transferred file waits for its batch to fill.
const BATCH_LINGER: Duration = Duration::from_millis(250);
/// Files per batch at most: each waiting file holds four descriptors (lock, staging file,
/// its directory, the home) until its batch commits.
const BATCH_FILES: usize = 64;

/// Files per batch under this process's descriptor limit: half of what is left after a
/// reserve and the transfers in flight (each ~8 descriptors), so that a low limit (256 on
/// some systems) shrinks the batches instead of failing with "too many open files".
fn batch_files(parallelism: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    let in_flight = 64 + 8 * u64::try_from(parallelism).unwrap_or(u64::MAX / 16);
    let budget = limit.saturating_sub(in_flight) / 4 / 2;
    usize::try_from(budget).unwrap_or(BATCH_FILES).clamp(1, BATCH_FILES)
}

/// The batch being committed, and what the commits gave. One batch commits at a time while
/// the transfers go on; files transferred meanwhile wait for the next batch, which takes
/// them all, so a slow durability pass (a disk's `syncfs`) makes fewer, larger batches
/// rather than holding up the transfers.
struct Commits {
    store: Arc<Store>,
    running: Option<tokio::task::JoinHandle<Result<Vec<Fetched>>>>,
    /// Files in the batch being committed.
    running_files: usize,
    fetched: Vec<Fetched>,
    failure: Option<Error>,
}

impl Commits {
    /// Starts committing `batch` (no batch may be running).
    fn start(&mut self, batch: Vec<Staged>) {
        debug_assert!(self.running.is_none());
        if batch.is_empty() {
            return;
        }
        self.running_files = batch.len();
        self.running = Some(commit_staged(&self.store, batch));
    }

    /// Waits for the batch being committed, if any.
    async fn settle(&mut self) {
        let Some(running) = self.running.take() else { return };
        let result = running.await;
        self.take(result);
    }

    /// Records what a finished commit gave.
    fn take(&mut self, result: std::result::Result<Result<Vec<Fetched>>, tokio::task::JoinError>) {
        self.running = None;
        self.running_files = 0;
        match result.map_err(|e| Error::Task { reason: e.to_string() }).and_then(|r| r) {
            Ok(f) => self.fetched.extend(f),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }
}

/// What [`HubCache::fetch_all`] waited for.
enum Event<T> {
    Committed(std::result::Result<Result<Vec<Fetched>>, tokio::task::JoinError>),
    Linger,
    Transferred(Option<std::result::Result<T, tokio::task::JoinError>>),
}

/// The result of [`HubCache::get_file`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOutcome {
    /// The file's snapshot path.
    pub path: Utf8PathBuf,
    /// The commit it belongs to.
    pub commit: CommitHash,
    /// Whether it was already cached.
    pub from_cache: bool,
    /// Body bytes downloaded for it.
    pub bytes_downloaded: u64,
}

/// The result of [`HubCache::snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOutcome {
    /// `snapshots/<commit>`.
    pub dir: Utf8PathBuf,
    /// The commit.
    pub commit: CommitHash,
    /// Files the filter took (cached before or now).
    pub files: usize,
    /// Files downloaded now.
    pub downloaded: usize,
    /// Body bytes downloaded.
    pub bytes_downloaded: u64,
}

/// The result of [`HubCache::get_artifact`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactOutcome {
    /// The artifact's path.
    pub path: Utf8PathBuf,
    /// Whether it was already cached.
    pub from_cache: bool,
    /// Body bytes downloaded.
    pub bytes_downloaded: u64,
}

/// Hub files through the cache. Cheap to clone; share it across tasks.
#[derive(Clone, Debug)]
pub struct HubCache {
    client: HubClient,
    store: Arc<Store>,
    offline: bool,
    revalidate_after: Duration,
    parallelism: usize,
}

impl HubCache {
    /// A cache of the Hub at `config.endpoint` over `store`.
    pub fn new(config: &HubConfig, store: Arc<Store>) -> Result<Self> {
        Ok(HubCache {
            client: HubClient::new(config)?,
            store,
            offline: config.offline,
            revalidate_after: config.revalidate_after,
            parallelism: config.parallelism.max(1),
        })
    }

    /// The metadata client.
    pub fn client(&self) -> &HubClient {
        &self.client
    }

    /// The store.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Whether it never touches the network.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// The commit to use without asking the Hub: a commit revision, or a ref resolved
    /// within the revalidation window.
    fn trusted_commit(&self, repo: &Repo, revision: &Revision) -> Result<Option<CommitHash>> {
        if let Some(c) = revision.commit() {
            return Ok(Some(c));
        }
        if self.revalidate_after.is_zero() {
            return Ok(None);
        }
        match self.store.ref_modified(repo, revision)? {
            Some(t) if t.elapsed_until(Timestamp::now()) < self.revalidate_after => Ok(self.store.resolve(repo, revision)?),
            _ => Ok(None),
        }
    }

    /// Points the ref at the commit the Hub just named, and marks it freshly resolved.
    fn remember_ref(&self, repo: &Repo, revision: &Revision, commit: &CommitHash) -> Result<()> {
        if revision.commit().is_none() {
            self.store.write_ref(repo, revision, commit)?;
            self.store.touch_ref(repo, revision)?;
        }
        Ok(())
    }

    /// One file: from the cache when fresh, else resolved (one `HEAD`) and downloaded
    /// when missing. Errors: [`Error::EntryNotFound`] (and the `.no_exist` marker is
    /// written), [`Error::RepoNotFound`], [`Error::RevisionNotFound`],
    /// [`Error::Unauthorized`], [`Error::NotCached`] offline, [`Error::Corrupted`].
    pub async fn get_file(
        &self,
        repo: &Repo,
        revision: &Revision,
        path: &RepoPath,
        observer: &Arc<dyn Observer>,
    ) -> Result<FileOutcome> {
        let cached = |path, commit| FileOutcome { path, commit, from_cache: true, bytes_downloaded: 0 };
        let not_in_repo =
            |cached| Error::EntryNotFound { repo: repo.clone(), revision: revision.to_string(), path: path.to_string(), cached };
        if let Some(commit) = self.trusted_commit(repo, revision)? {
            // Every way on from a miss here looks again and counts it.
            match offline::peek_file(&self.store, repo, &Revision::from(commit), path)? {
                FileLookup::Hit { path, commit } => return Ok(cached(path, commit)),
                FileLookup::NotInRepo(_) => return Err(not_in_repo(true)),
                FileLookup::Miss { .. } => {}
            }
        }
        if self.offline {
            return match offline::lookup_file(&self.store, repo, revision, path, None)? {
                FileLookup::Hit { path, commit } => Ok(cached(path, commit)),
                FileLookup::NotInRepo(_) => Err(not_in_repo(true)),
                FileLookup::Miss { .. } => Err(Error::NotCached { what: format!("{path} of {repo}@{revision}") }),
            };
        }
        let client = self.client.reporting(path.as_str(), Arc::new(ObserverProgress(Arc::clone(observer))));
        let meta = match client.file_metadata(repo, revision, path).await {
            Ok(m) => m,
            Err(Error::EntryNotFound { revision: at, .. }) => {
                if let Ok(commit) = CommitHash::new(&at) {
                    self.store.mark_no_exist(repo, &commit, path)?;
                    self.remember_ref(repo, revision, &commit)?;
                }
                return Err(not_in_repo(false));
            }
            Err(e) if e.is_unreachable() => {
                if let FileLookup::Hit { path, commit } = offline::lookup_file(&self.store, repo, revision, path, None)? {
                    tracing::warn!(%repo, %revision, error = %e, "the Hub is unreachable: using the cached revision");
                    return Ok(cached(path, commit));
                }
                if let Some(found) = self.file_from_source(repo, revision, path, observer).await? {
                    return Ok(found);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        self.remember_ref(repo, revision, &meta.commit)?;
        let at = Revision::from(meta.commit);
        if let FileLookup::Hit { path, commit } = offline::lookup_file(&self.store, repo, &at, path, Some(meta.size))? {
            return Ok(cached(path, commit));
        }
        // A listing recorded for the commit may name the file's Xet hash (shared store).
        let xet_hash = self.store.read_tree(repo, &meta.commit).ok().flatten().and_then(|t| t.files.get(path)?.xet_hash.clone());
        let job = BlobJob {
            repo: repo.clone(),
            commit: meta.commit,
            path: path.clone(),
            etag: meta.etag,
            size: meta.size,
            url: meta.url,
            ref_name: None,
            xet_hash,
        };
        observer.planned(path.as_str(), 1, 0, Some(meta.size));
        let fetched = fetch_blob(&self.client, &self.store, job, observer).await?;
        Ok(FileOutcome { path: fetched.path, commit: meta.commit, from_cache: false, bytes_downloaded: fetched.bytes })
    }

    /// The snapshot of a revision restricted to `filter`: every missing file downloaded
    /// (see the module docs), its directory returned. Offline: complete → its directory;
    /// incomplete → [`Error::IncompleteSnapshot`]; no listing → the snapshot directory if
    /// it exists, as `huggingface_hub` does.
    pub async fn snapshot(
        &self,
        repo: &Repo,
        revision: &Revision,
        filter: &FileFilter,
        observer: &Arc<dyn Observer>,
    ) -> Result<SnapshotOutcome> {
        if self.offline {
            return self.cached_snapshot(repo, revision, filter);
        }
        let client = self.client.reporting(&format!("{repo}@{revision}"), Arc::new(ObserverProgress(Arc::clone(observer))));
        let commit = match self.trusted_commit(repo, revision)? {
            Some(c) => c,
            None => match client.resolve_revision(repo, revision).await {
                Ok(c) => {
                    self.remember_ref(repo, revision, &c)?;
                    c
                }
                Err(e) if e.is_unreachable() => match self.fallback_snapshot(repo, revision, filter, e) {
                    Err(e) if e.is_unreachable() => self.ref_from_source(repo, revision).await?.ok_or(e)?,
                    other => return other,
                },
                Err(e) => return Err(e),
            },
        };
        let at = Revision::from(commit);
        let tree = if let Some(t) = self.store.read_tree(repo, &commit)? {
            t
        } else {
            match client.list_files(repo, &at).await {
                Ok(files) => {
                    let tree = to_tree(&files);
                    self.store.write_tree(repo, &commit, &tree)?;
                    if let Some(source) = &self.client.source {
                        source.hub_listed(repo, &commit);
                    }
                    tree
                }
                Err(e) if e.is_unreachable() => match self.fallback_snapshot(repo, &at, filter, e) {
                    Err(e) if e.is_unreachable() => self.tree_from_source(repo, &commit).await?.ok_or(e)?,
                    other => return other,
                },
                Err(e) => return Err(e),
            }
        };
        let mut jobs = Vec::new();
        let mut files = 0;
        for (path, entry) in tree.files.iter().filter(|(p, _)| filter.matches(p.as_str())) {
            files += 1;
            let (etag, size) = tree_entry_etag(entry).ok_or_else(|| Error::InvalidResponse {
                url: format!("trees/{commit}.json"),
                reason: format!("no usable etag for `{path}`"),
            })?;
            if offline::is_listed_file_cached(&self.store, repo, &commit, path, size)? {
                continue;
            }
            let url = urls::resolve(self.client.endpoint(), repo, &at, path);
            let xet_hash = entry.xet_hash.clone();
            jobs.push(BlobJob { repo: repo.clone(), commit, path: path.clone(), etag, size, url, ref_name: None, xet_hash });
        }
        let downloaded = jobs.len();
        if downloaded > 0 {
            tracing::info!(%repo, %commit, files, missing = downloaded, "downloading snapshot files");
            let bytes = jobs.iter().map(|j| j.size).sum();
            observer.planned(&format!("{repo}@{revision}"), downloaded, files - downloaded, Some(bytes));
        } else {
            tracing::debug!(%repo, %commit, files, "snapshot cached");
        }
        let fetched = self.fetch_all(jobs, observer).await?;
        let dir = offline::snapshot_dir(&self.store, repo, &commit);
        if !dir.is_dir() {
            // An empty selection still answers with the (empty) snapshot folder.
            std::fs::create_dir_all(&dir).map_err(|source| cache_store::Error::Io { op: "create", path: dir.clone(), source })?;
        }
        let bytes_downloaded = fetched.iter().map(|f| f.bytes).sum();
        Ok(SnapshotOutcome { dir, commit, files, downloaded, bytes_downloaded })
    }

    /// Downloads files of `commit` whose etags and sizes the caller already knows (a
    /// lockfile), as [`HubCache::snapshot`] downloads the missing files of a listing: no
    /// revision request, no listing, no per-file `HEAD`; each blob checked against its
    /// etag before it is published. The caller chooses the files (the missing ones).
    pub async fn fetch_listed(
        &self,
        repo: &Repo,
        commit: CommitHash,
        files: &[(RepoPath, cache_core::Etag, u64)],
        observer: &Arc<dyn Observer>,
    ) -> Result<SnapshotOutcome> {
        if self.offline {
            let first = files.first().map_or_else(String::new, |(p, ..)| p.to_string());
            return Err(Error::NotCached { what: format!("{first} of {repo}@{commit}") });
        }
        let at = Revision::from(commit);
        // A cached listing may name Xet hashes, which let the shared store serve a file.
        let tree = self.store.read_tree(repo, &commit).ok().flatten();
        let jobs: Vec<BlobJob> = files
            .iter()
            .map(|(path, etag, size)| BlobJob {
                repo: repo.clone(),
                commit,
                path: path.clone(),
                etag: *etag,
                size: *size,
                url: urls::resolve(self.client.endpoint(), repo, &at, path),
                ref_name: None,
                xet_hash: tree.as_ref().and_then(|t| t.files.get(path)?.xet_hash.clone()),
            })
            .collect();
        if !jobs.is_empty() {
            let bytes = jobs.iter().map(|j| j.size).sum();
            observer.planned(&format!("{repo}@{commit}"), jobs.len(), 0, Some(bytes));
        }
        let downloaded = jobs.len();
        let fetched = self.fetch_all(jobs, observer).await?;
        let dir = offline::snapshot_dir(&self.store, repo, &commit);
        let bytes_downloaded = fetched.iter().map(|f| f.bytes).sum();
        Ok(SnapshotOutcome { dir, commit, files: downloaded, downloaded, bytes_downloaded })
    }

    /// Downloads blobs `parallelism` at a time, each transfer a task of its own (so they
    /// spread over the runtime's threads). Small ones are committed in batches (one
    /// durability pass and one index transaction per batch) while the others transfer;
    /// large ones are committed as they finish. On the first failure the transfers in
    /// flight are aborted (what they wrote stays staged for the next attempt to resume),
    /// the files already transferred are still published, and the failure is returned.
    async fn fetch_all(&self, jobs: Vec<BlobJob>, observer: &Arc<dyn Observer>) -> Result<Vec<Fetched>> {
        let client = Arc::new(self.client.clone());
        let mut jobs = jobs.into_iter();
        let mut jobs_left = true;
        let mut running = tokio::task::JoinSet::new();
        let mut commits =
            Commits { store: Arc::clone(&self.store), running: None, running_files: 0, fetched: Vec::new(), failure: None };
        let mut pending: Vec<Staged> = Vec::new();
        let batch = batch_files(self.parallelism);
        // Batches of a few files would sync the whole filesystem for little: below that,
        // each file is made durable by itself.
        let batching = batch >= 8;
        // Staged files hold descriptors until committed: those of the batch being committed
        // and those waiting stay within twice a batch (the budget `batch_files` keeps).
        let most_staged = 2 * batch;
        let mut flush_by: Option<tokio::time::Instant> = None;
        loop {
            while jobs_left
                && commits.failure.is_none()
                && running.len() < self.parallelism.max(1)
                && commits.running_files + pending.len() + running.len() < most_staged.max(self.parallelism.max(1))
            {
                let Some(job) = jobs.next() else {
                    jobs_left = false;
                    break;
                };
                let (client, store, observer) = (Arc::clone(&client), Arc::clone(&self.store), Arc::clone(observer));
                running.spawn(async move {
                    if batching && job.size <= BATCH_MAX_FILE {
                        transfer_blob(&client, &store, job, &observer).await
                    } else {
                        fetch_blob(&client, &store, job, &observer).await.map(Transferred::Done)
                    }
                });
            }
            // A batch is due when it is full, when its first file waited `BATCH_LINGER` (a
            // staged file keeps its blob's lock, and another process may wait for it), or
            // when nothing else will come; it starts once the batch before is committed.
            let transfers_over = running.is_empty() && (!jobs_left || commits.failure.is_some());
            let due = !pending.is_empty()
                && (pending.len() >= batch || transfers_over || flush_by.is_some_and(|at| at <= tokio::time::Instant::now()));
            if due && commits.running.is_none() {
                flush_by = None;
                commits.start(std::mem::take(&mut pending));
            }
            if transfers_over && pending.is_empty() {
                break;
            }
            // Whatever comes first: the batch being committed, the linger of the waiting
            // files running out, or a transfer.
            let linger_until = flush_by.filter(|_| commits.running.is_none());
            let event = {
                let mut linger = std::pin::pin!(async move {
                    match linger_until {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                });
                let mut committed = std::pin::pin!(async {
                    match commits.running.as_mut() {
                        Some(handle) => handle.await,
                        None => std::future::pending().await,
                    }
                });
                std::future::poll_fn(|cx| {
                    if let Poll::Ready(result) = committed.as_mut().poll(cx) {
                        return Poll::Ready(Event::Committed(result));
                    }
                    if linger.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Linger);
                    }
                    if !running.is_empty()
                        && let Poll::Ready(next) = running.poll_join_next(cx)
                    {
                        return Poll::Ready(Event::Transferred(next));
                    }
                    Poll::Pending
                })
                .await
            };
            let next = match event {
                Event::Committed(result) => {
                    commits.take(result);
                    continue;
                }
                Event::Linger => continue,
                Event::Transferred(next) => next,
            };
            let Some(done) = next else { continue };
            match done.map_err(|e| Error::Task { reason: e.to_string() }).and_then(|r| r) {
                Ok(Transferred::Done(f)) => commits.fetched.push(f),
                Ok(Transferred::Staged(s)) => {
                    if pending.is_empty() {
                        flush_by = Some(tokio::time::Instant::now() + BATCH_LINGER);
                    }
                    pending.push(*s);
                }
                Err(_) if commits.failure.is_some() => {} // aborted after the first failure
                Err(e) => {
                    running.abort_all();
                    commits.failure = Some(e);
                }
            }
        }
        commits.settle().await;
        commits.failure.map_or(Ok(commits.fetched), Err)
    }

    fn cached_snapshot(&self, repo: &Repo, revision: &Revision, filter: &FileFilter) -> Result<SnapshotOutcome> {
        let (dir, commit, files) = offline::cached_snapshot_files(&self.store, repo, revision, filter)?;
        Ok(SnapshotOutcome { dir, commit, files, downloaded: 0, bytes_downloaded: 0 })
    }

    fn fallback_snapshot(&self, repo: &Repo, revision: &Revision, filter: &FileFilter, error: Error) -> Result<SnapshotOutcome> {
        match self.cached_snapshot(repo, revision, filter) {
            Ok(s) => {
                tracing::warn!(%repo, %revision, %error, "the Hub is unreachable: using the cached snapshot");
                Ok(s)
            }
            Err(Error::NotCached { .. }) => Err(error),
            Err(e) => Err(e),
        }
    }

    /// Asks `source` for blobs before the Hub, and for listings and refs when the Hub is
    /// unreachable (see [`BlobSource`]).
    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn BlobSource>) -> Self {
        self.client.source = Some(source);
        self
    }

    /// The commit of a branch or tag from the source (the Hub being unreachable),
    /// remembered as the local ref; warns with the ref's age.
    async fn ref_from_source(&self, repo: &Repo, revision: &Revision) -> Result<Option<CommitHash>> {
        if let Some(c) = revision.commit() {
            return Ok(Some(c));
        }
        let Some(source) = &self.client.source else { return Ok(None) };
        let Some((commit, at)) = source.resolve(repo, revision).await else { return Ok(None) };
        let age = cache_core::format_duration(at.elapsed_until(Timestamp::now()));
        tracing::warn!(%repo, %revision, %commit, age = %age, "the Hub is unreachable: using `{revision}` as the team tier recorded it {age} ago");
        self.store.write_ref(repo, revision, &commit)?;
        Ok(Some(commit))
    }

    /// A commit's listing from the source (the Hub being unreachable), recorded in the
    /// cache as `trees/<commit>.json`.
    async fn tree_from_source(&self, repo: &Repo, commit: &CommitHash) -> Result<Option<cache_store::Tree>> {
        let Some(source) = &self.client.source else { return Ok(None) };
        let Some(tree) = source.tree(repo, commit).await else { return Ok(None) };
        tracing::info!(%repo, %commit, files = tree.files.len(), "the Hub is unreachable: listing from the team tier");
        self.store.write_tree(repo, commit, &tree)?;
        Ok(Some(tree))
    }

    /// One file resolved through the source's ref and listing (the Hub being
    /// unreachable); `None` when the source cannot say.
    async fn file_from_source(
        &self,
        repo: &Repo,
        revision: &Revision,
        path: &RepoPath,
        observer: &Arc<dyn Observer>,
    ) -> Result<Option<FileOutcome>> {
        if self.client.source.is_none() {
            return Ok(None);
        }
        let Some(commit) = self.ref_from_source(repo, revision).await? else { return Ok(None) };
        let tree = match self.store.read_tree(repo, &commit)? {
            Some(t) => t,
            None => match self.tree_from_source(repo, &commit).await? {
                Some(t) => t,
                None => return Ok(None),
            },
        };
        let Some((etag, size)) = tree.files.get(path).and_then(tree_entry_etag) else { return Ok(None) };
        let at = Revision::from(commit);
        if let FileLookup::Hit { path, commit } = offline::lookup_file(&self.store, repo, &at, path, Some(size))? {
            return Ok(Some(FileOutcome { path, commit, from_cache: true, bytes_downloaded: 0 }));
        }
        let url = urls::resolve(self.client.endpoint(), repo, &at, path);
        let xet_hash = tree.files.get(path).and_then(|e| e.xet_hash.clone());
        let job = BlobJob { repo: repo.clone(), commit, path: path.clone(), etag, size, url, ref_name: None, xet_hash };
        observer.planned(path.as_str(), 1, 0, Some(size));
        let fetched = fetch_blob(&self.client, &self.store, job, observer).await?;
        Ok(Some(FileOutcome { path: fetched.path, commit, from_cache: false, bytes_downloaded: fetched.bytes }))
    }

    /// A generic artifact (any URL), verified against the key's SHA-256 when it has one.
    pub async fn get_artifact(&self, key: &ArtifactKey, observer: &Arc<dyn Observer>) -> Result<ArtifactOutcome> {
        if let Some(path) = self.store.find_artifact(key)? {
            return Ok(ArtifactOutcome { path, from_cache: true, bytes_downloaded: 0 });
        }
        if self.offline {
            return Err(Error::NotCached { what: cache_core::redact_url(key.url()) });
        }
        let fetched = fetch_artifact(&self.client, &self.store, key, observer).await?;
        Ok(ArtifactOutcome { path: fetched.path, from_cache: fetched.bytes == 0, bytes_downloaded: fetched.bytes })
    }
}
