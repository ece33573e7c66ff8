//! Another place blobs, listings and refs can come from before the Hub: a team tier. The
//! resolver knows it only as this trait; the facade implements it (`cache-remote`), so
//! cache-hf never depends on an object store.
//!
//! # Where it is asked
//! - A blob: on a miss, under the blob's lock, after staging and before the Hub
//!   ([`pull_from_source`], one call site in the download protocol). What it writes goes
//!   through the same staging file, and the store's commit checks the digests again: a
//!   source can cost time, never a wrong byte.
//! - A listing or a branch: only when the Hub is unreachable (and the cache has nothing),
//!   so an air-gapped machine whose only source is the team tier still resolves
//!   `REPO@COMMIT` and `REPO@BRANCH` (the latter with a warning naming the ref's age).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use cache_core::{CommitHash, Digests, Etag, Repo, RepoPath, Revision, Sha256, Timestamp};
use cache_fetch::{Progress, Sink};
use cache_store::Tree;

use crate::download::{BlobJob, Observer};

/// A boxed future, as the trait's methods return them.
pub type SourceFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A blob a source is asked for.
#[derive(Clone, Copy, Debug)]
pub struct SourceBlob<'a> {
    /// Its repository.
    pub repo: &'a Repo,
    /// The file it is (for messages and progress).
    pub path: &'a RepoPath,
    /// Its digest: what the bytes must hash to.
    pub etag: Etag,
    /// Its size.
    pub size: u64,
}

/// Blobs, listings and refs from somewhere other than the Hub. Every method answers
/// `None` for "not here" and for "could not ask" alike: the Hub is the fallback.
pub trait BlobSource: Send + Sync + std::fmt::Debug {
    /// Fills `sink` with the blob, verified against its etag; the digests when it did.
    /// On `None` the sink holds nothing the Hub transfer could mistake for progress.
    fn pull<'a>(
        &'a self,
        blob: SourceBlob<'a>,
        sink: Arc<dyn Sink>,
        progress: &'a dyn Progress,
    ) -> SourceFuture<'a, Option<Digests>>;

    /// Fills `sink` with a URL artifact whose SHA-256 is known, verified; the digests
    /// when it did. Default: never.
    fn pull_url<'a>(
        &'a self,
        sha256: Sha256,
        label: &'a str,
        sink: Arc<dyn Sink>,
        progress: &'a dyn Progress,
    ) -> SourceFuture<'a, Option<Digests>> {
        let _ = (sha256, label, sink, progress);
        Box::pin(async { None })
    }

    /// The listing of `commit`.
    fn tree<'a>(&'a self, repo: &'a Repo, commit: &'a CommitHash) -> SourceFuture<'a, Option<Tree>>;

    /// The Hub has just listed `commit` (and the listing is recorded in the cache), so a
    /// source holding a different listing of it can correct its copy. Default: nothing.
    fn hub_listed(&self, repo: &Repo, commit: &CommitHash) {
        let _ = (repo, commit);
    }

    /// The commit a branch or tag pointed at, and when that was recorded.
    fn resolve<'a>(&'a self, repo: &'a Repo, revision: &'a Revision) -> SourceFuture<'a, Option<(CommitHash, Timestamp)>>;
}

/// Asks the source for a staged blob; the digests when it filled the sink.
pub(crate) async fn pull_from_source(
    source: &Arc<dyn BlobSource>,
    job: &BlobJob,
    sink: Arc<dyn Sink>,
    observer: &Arc<dyn Observer>,
) -> Option<Digests> {
    let blob = SourceBlob { repo: &job.repo, path: &job.path, etag: job.etag, size: job.size };
    let progress = crate::download::ObserverProgress(Arc::clone(observer));
    let digests = source.pull(blob, sink, &progress).await?;
    // The store checks again at commit; this only refuses early what cannot be committed.
    (digests.size == job.size && job.etag.verify(&digests).is_ok()).then_some(digests)
}
