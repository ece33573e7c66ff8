//! One blob into the cache, in the order of ARCHITECTURE.md's download protocol: take the blob's
//! lock (waiting, reported, for another thread or process that holds it) → already there?
//! link it → else stage `<etag>.incomplete` (resuming the ranges it holds) → transfer with
//! the digest computed while streaming and the completed ranges checkpointed into the
//! store's range record → commit (fsync, digest check, rename, link, ref, index, record
//! removed) → release. Store calls block, so they run on tokio's blocking pool.

use std::sync::Arc;

use cache_core::{CommitHash, DigestKinds, Etag, Repo, RepoPath, Revision};
use cache_fetch::{DownloadRequest, Event, Progress};
use cache_store::{ArtifactKey, CommitRequest, LockWait, Staging, Store};
use camino::Utf8PathBuf;

use crate::client::HubClient;
use crate::error::{Error, Result};
use crate::sink::StagingSink;

/// Receives what happens during downloads: transfer events and lock waits. Called from
/// download tasks and blocking threads: keep it cheap.
pub trait Observer: Send + Sync {
    /// A transfer event (started, advanced, retrying, finished…).
    fn transfer(&self, event: &Event<'_>) {
        let _ = event;
    }

    /// Another thread or process holds the lock of the blob `label` is waiting for.
    fn lock_wait(&self, label: &str, wait: &LockWait<'_>) {
        let _ = (label, wait);
    }

    /// Before any transfer of a request: `files` files of `label` (a file, a snapshot such
    /// as `org/name@<commit>`, or an artifact's file name) are missing and will be
    /// downloaded, `bytes` in all when the sizes are known (a URL's size is not), while
    /// `cached` more were found in the cache. Sent once per request that downloads.
    fn planned(&self, label: &str, files: usize, cached: usize, bytes: Option<u64>) {
        let _ = (label, files, cached, bytes);
    }
}

/// Ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

struct AsProgress<'a>(&'a dyn Observer);

/// An [`Observer`] as a fetcher's [`Progress`], owned (for a client's small requests and
/// a blob source's transfers).
pub(crate) struct ObserverProgress(pub(crate) Arc<dyn Observer>);

impl Progress for ObserverProgress {
    fn event(&self, event: &Event<'_>) {
        AsProgress(&*self.0).event(event);
    }
}

impl Progress for AsProgress<'_> {
    fn event(&self, event: &Event<'_>) {
        if let Event::Retrying { label, attempt, reason, .. } = event {
            tracing::info!(%label, attempt, %reason, "retrying transfer");
        }
        self.0.transfer(event);
    }
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::Task { reason: e.to_string() })?
}

/// Logs a lock wait (who holds it, how far it got) when it starts and every 30 s, and
/// passes every report on to the observer.
fn lock_observer<'a>(observer: &'a dyn Observer, label: &'a str) -> impl FnMut(&LockWait<'_>) + 'a {
    let mut logged: Option<std::time::Duration> = None;
    move |wait: &LockWait<'_>| {
        if logged.is_none_or(|at| wait.waited.saturating_sub(at) >= std::time::Duration::from_secs(30)) {
            logged = Some(wait.waited);
            tracing::info!(
                lock = %wait.lock_file,
                holder = wait.holder.unwrap_or("unknown"),
                so_far_bytes = wait.incomplete_bytes,
                waited_s = wait.waited.as_secs(),
                "waiting for lock on `{label}`"
            );
        }
        observer.lock_wait(label, wait);
    }
}

/// One Hub blob to bring into the cache.
#[derive(Clone, Debug)]
pub(crate) struct BlobJob {
    pub(crate) repo: Repo,
    pub(crate) commit: CommitHash,
    pub(crate) path: RepoPath,
    pub(crate) etag: Etag,
    pub(crate) size: u64,
    pub(crate) url: String,
    pub(crate) ref_name: Option<Revision>,
    /// The Xet hash the listing names the file by, if any (the shared store's key).
    pub(crate) xet_hash: Option<String>,
}

/// What a download did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fetched {
    pub(crate) path: Utf8PathBuf,
    /// Body bytes received (0 when another process had committed the blob meanwhile).
    pub(crate) bytes: u64,
}

enum Locked {
    Done(Utf8PathBuf),
    Stage(cache_store::BlobLock, Staging),
}

/// A transferred blob waiting, under its lock, to be committed.
pub(crate) struct Staged {
    lock: cache_store::BlobLock,
    staging: Staging,
    request: CommitRequest,
    /// Body bytes received.
    bytes: u64,
}

/// What [`transfer_blob`] leaves.
pub(crate) enum Transferred {
    /// Nothing to commit: the blob was cached (by another thread or process) and is linked.
    Done(Fetched),
    /// Transferred and checked while streaming; to be committed.
    Staged(Box<Staged>),
}

/// One blob through the whole protocol: [`transfer_blob`], then its commit.
pub(crate) async fn fetch_blob(
    client: &HubClient,
    store: &Arc<Store>,
    job: BlobJob,
    observer: &Arc<dyn Observer>,
) -> Result<Fetched> {
    let staged = match transfer_blob(client, store, job, observer).await? {
        Transferred::Done(f) => return Ok(f),
        Transferred::Staged(s) => s,
    };
    let store = Arc::clone(store);
    blocking(move || {
        let Staged { lock, staging, request, bytes } = *staged;
        let path = store.commit(staging, &request)?;
        drop(lock);
        tracing::info!(repo = %request.repo, path = %request.path, bytes, "downloaded");
        Ok(Fetched { path, bytes })
    })
    .await
}

/// Commits staged blobs together ([`Store::commit_batch`]: one durability pass, one index
/// transaction), then releases their locks. Runs on the blocking pool; the first failure
/// is the result.
pub(crate) fn commit_staged(store: &Arc<Store>, batch: Vec<Staged>) -> tokio::task::JoinHandle<Result<Vec<Fetched>>> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut locks = Vec::with_capacity(batch.len());
        let mut bytes = Vec::with_capacity(batch.len());
        let items = batch
            .into_iter()
            .map(|s| {
                locks.push(s.lock);
                bytes.push(s.bytes);
                (s.staging, s.request)
            })
            .collect();
        let committed = store.commit_batch(items)?;
        drop(locks);
        committed.into_iter().zip(bytes).map(|(path, bytes)| Ok(Fetched { path: path?, bytes })).collect()
    })
}

/// Locks the blob, links it when it is already cached, else stages and transfers it,
/// leaving the commit to the caller.
pub(crate) async fn transfer_blob(
    client: &HubClient,
    store: &Arc<Store>,
    job: BlobJob,
    observer: &Arc<dyn Observer>,
) -> Result<Transferred> {
    let mut request = CommitRequest::new(job.repo.clone(), job.commit, job.path.clone(), job.etag, job.size);
    if let Some(name) = job.ref_name.clone() {
        request = request.with_ref(name);
    }
    let locked = {
        let (store, observer, request, label) = (Arc::clone(store), Arc::clone(observer), request.clone(), job.path.to_string());
        let url = job.url.clone();
        let xet_hash = job.xet_hash.clone();
        blocking(move || {
            check_size(&store, &url, &request)?;
            let lock = store.lock_blob(&request.repo, &request.etag, &mut lock_observer(&*observer, &label))?;
            if store.has_blob(&request.repo, &request.etag)? {
                return Ok(Locked::Done(store.link_existing(&lock, &request)?));
            }
            if let Some(xet) = &xet_hash
                && let Some(path) = store.link_from_shared_store(&lock, &request, xet)?
            {
                tracing::debug!(repo = %request.repo, path = %request.path, "blob found in the shared store: not downloaded");
                return Ok(Locked::Done(path));
            }
            if let Some(path) = cross_repo_hit(&store, &lock, &request)? {
                return Ok(Locked::Done(path));
            }
            let staging = store.stage(&lock, Some(request.size))?;
            Ok(Locked::Stage(lock, staging))
        })
        .await?
    };
    let (lock, staging) = match locked {
        Locked::Done(path) => {
            tracing::debug!(repo = %job.repo, path = %job.path, "blob was already cached: linked");
            return Ok(Transferred::Done(Fetched { path, bytes: 0 }));
        }
        Locked::Stage(lock, staging) => (lock, staging),
    };
    if let Some(source) = &client.source
        && let Some(digests) =
            crate::source::pull_from_source(source, &job, Arc::new(StagingSink::new(&staging)?), observer).await
    {
        let request = request.with_digests(digests);
        return Ok(Transferred::Staged(Box::new(Staged { lock, staging, request, bytes: job.size })));
    }
    let sink = StagingSink::new(&staging)?;
    let download = DownloadRequest::new(job.url.clone())
        .token(client.token_for(&job.url))
        .expected_size(job.size)
        .expected_etag(job.etag)
        .label(job.path.to_string());
    let held: u64 = staging.completed_ranges().iter().map(|r| r.end - r.start).sum();
    tracing::info!(repo = %job.repo, path = %job.path, size = job.size, held, "downloading");
    let transfer = match client.fetcher.download(&download, Arc::new(sink), &AsProgress(&**observer)).await {
        Ok(t) => t,
        Err(source) => {
            if matches!(source, cache_fetch::Error::ChecksumMismatch { .. } | cache_fetch::Error::SizeMismatch { .. }) {
                let _ = staging.discard();
            }
            return Err(Error::Fetch { what: format!("download `{}` of `{}`", job.path, job.repo), source });
        }
    };
    let request = request.with_digests(transfer.digests);
    Ok(Transferred::Staged(Box::new(Staged { lock, staging, request, bytes: transfer.bytes_received })))
}

/// A miss whose blob another repo of this cache holds (the same digest): placed from
/// that copy with no transfer ([`Store::link_from_other_repo`]). `None`: download it.
fn cross_repo_hit(store: &Store, lock: &cache_store::BlobLock, request: &CommitRequest) -> Result<Option<Utf8PathBuf>> {
    let Some(hit) = store.link_from_other_repo(lock, request)? else { return Ok(None) };
    tracing::debug!(repo = %request.repo, path = %request.path, from = %hit.from, placement = %hit.placement, "blob found in another repo: not downloaded");
    Ok(Some(hit.path))
}

/// Sizes above this are not files anyone serves (1 PiB: far beyond any model or dataset
/// file), so an announcement of one that the cache's filesystem cannot hold either is the
/// server's error.
const PLAUSIBLE_SIZE: u64 = 1 << 50;

/// A size that no disk could be expected to hold is the server's error, not a full disk:
/// [`Error::InvalidResponse`] when the announced size exceeds both [`PLAUSIBLE_SIZE`] and
/// the capacity (used and free) of the hub cache's whole filesystem. A plausible file that
/// does not fit stays a full disk (free space or move the cache).
fn check_size(store: &Store, url: &str, request: &CommitRequest) -> Result<()> {
    if request.size <= PLAUSIBLE_SIZE {
        return Ok(());
    }
    let capacity = store.capacity()?;
    if request.size > capacity {
        return Err(Error::InvalidResponse {
            url: cache_core::redact_url(url),
            reason: format!(
                "the server announces {} bytes for `{}`, more than any file and than the cache's whole filesystem holds ({capacity} bytes)",
                request.size, request.path
            ),
        });
    }
    Ok(())
}

/// A generic artifact (any URL) into the modelcache home, verified against its SHA-256
/// when the key has one. The Hub token is sent only when the URL is on the endpoint.
pub(crate) async fn fetch_artifact(
    client: &HubClient,
    store: &Arc<Store>,
    key: &ArtifactKey,
    observer: &Arc<dyn Observer>,
) -> Result<Fetched> {
    let label = key.file_name();
    observer.planned(&label, 1, 0, None);
    let locked = {
        let (store, observer, key, label) = (Arc::clone(store), Arc::clone(observer), key.clone(), label.clone());
        blocking(move || {
            let lock = store.lock_artifact(&key, &mut lock_observer(&*observer, &label))?;
            if let Some(p) = store.find_artifact(&key)? {
                return Ok(Locked::Done(p));
            }
            let staging = store.stage_artifact(&lock, None)?;
            Ok(Locked::Stage(lock, staging))
        })
        .await?
    };
    let (lock, staging) = match locked {
        Locked::Done(path) => return Ok(Fetched { path, bytes: 0 }),
        Locked::Stage(lock, staging) => (lock, staging),
    };
    if let (Some(source), Some(sha)) = (&client.source, key.sha256()) {
        let progress = ObserverProgress(Arc::clone(observer));
        let pulled = source.pull_url(sha, &label, Arc::new(StagingSink::new(&staging)?), &progress).await;
        if let Some(digests) = pulled.filter(|d| Etag::Sha256(sha).verify(d).is_ok()) {
            let (store, key) = (Arc::clone(store), key.clone());
            let path = blocking(move || {
                let path = store.commit_artifact(staging, &key, Some(digests.size), Some(digests))?;
                drop(lock);
                Ok(path)
            })
            .await?;
            return Ok(Fetched { path, bytes: digests.size });
        }
    }
    let sink = StagingSink::new(&staging)?;
    let mut download = DownloadRequest::new(key.url())
        .token(client.token_for(key.url()))
        .digests(DigestKinds { sha256: true, git_sha1: false, blake3: true })
        .label(label);
    if let Some(sha) = key.sha256() {
        download = download.expected_etag(Etag::Sha256(sha));
    }
    tracing::info!(url = %cache_core::redact_url(key.url()), "downloading artifact");
    let transfer = match client.fetcher.download(&download, Arc::new(sink), &AsProgress(&**observer)).await {
        Ok(t) => t,
        Err(source) => {
            if matches!(source, cache_fetch::Error::ChecksumMismatch { .. } | cache_fetch::Error::SizeMismatch { .. }) {
                let _ = staging.discard();
            }
            return Err(match source {
                // The fetcher downloaded it twice: the URL serves other bytes than the
                // digest the caller gave says.
                cache_fetch::Error::ChecksumMismatch { url, expected, actual } if key.sha256().is_some() => {
                    Error::GivenDigestMismatch { url, expected, actual }
                }
                source => Error::Fetch { what: format!("download `{}`", cache_core::redact_url(key.url())), source },
            });
        }
    };
    let bytes = transfer.bytes_received;
    let (store, key) = (Arc::clone(store), key.clone());
    let path = blocking(move || {
        let size = transfer.digests.size;
        let path = store.commit_artifact(staging, &key, Some(size), Some(transfer.digests))?;
        drop(lock);
        Ok(path)
    })
    .await?;
    Ok(Fetched { path, bytes })
}
