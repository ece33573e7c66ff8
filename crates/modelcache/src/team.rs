//! The team tiers in the facade (feature `remote`): the blob source the resolver asks
//! before the Hub, pushes after downloads, the bounded wait at a command's end, pushes
//! remembered for later, and per-tier figures summed over processes.
//!
//! # Pushing a commit
//! Everything of `repo@commit` that is cached goes to each writable tier: blobs first
//! (create-if-absent, so repeating a push costs one request per blob), then the listing
//! — only when every file it lists is in the tier, so a reader never sees a listing
//! whose blobs are missing — and the refs pointing at the commit last. When the Hub
//! listed the commit in this process and an `rw` tier already holds a listing of it that
//! is unreadable, badly signed or different, the Hub's replaces it (counted as
//! `listings_replaced`, logged once); an `ro` tier is never written.
//!
//! # Never slower, never lost
//! A push runs as a task beside the command: `get` returns its paths as soon as the
//! local commit is done. [`TeamTier::finish`] waits for running pushes at most
//! `remote_wait`; what did not finish (or failed) is written to the home
//! (`remote/pending.json`) and pushed by the next command that finishes, or by
//! `modelcache push`. URL artifacts too: they are remembered by their SHA-256 and pushed
//! later from the artifact store while it still holds them.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cache_core::{CommitHash, Digests, Etag, Repo, Revision, Timestamp};
use cache_fetch::{Progress, Sink};
use cache_hf::{BlobSource, SourceBlob, SourceFuture};
use cache_remote::{BlobKey, PendingPush, Remote, Tier, TierOptions, TierSpec, TierState, TierStats};
use cache_store::{Store, Tree};

use crate::config::Config;
use crate::error::CacheError;

/// The variable holding the key that signs listings and refs (never shown).
pub(crate) const SIGNING_KEY_ENV: &str = "MODELCACHE_REMOTE_SIGNING_KEY";

/// The `repo` of a push of a URL artifact (its `commit` is the artifact's SHA-256).
const URL_PUSH: &str = "url";

/// What a push of one commit to one tier did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushReport {
    /// The tier.
    pub tier: String,
    /// `org/name`, `datasets/org/name`…
    pub repo: String,
    /// The commit.
    pub commit: String,
    /// Blobs written now.
    pub blobs_written: u64,
    /// Blobs the tier already held.
    pub blobs_present: u64,
    /// Bytes written now.
    pub bytes_written: u64,
    /// Whether the listing was pushed (every listed file is in the tier).
    pub tree: bool,
    /// Whether the tier's listing was wrong and the Hub's replaced it.
    #[serde(default)]
    pub tree_replaced: bool,
    /// Refs pointed at the commit.
    pub refs: Vec<String>,
}

struct Running {
    pending: PendingPush,
    task: tokio::task::JoinHandle<Result<PushReport, CacheError>>,
}

/// The team tiers of one manager.
pub(crate) struct TeamTier {
    remote: Remote,
    state: TierState,
    store: Arc<Store>,
    wait: Duration,
    running: Mutex<Vec<Running>>,
    /// Listings the Hub gave in this process (`models--org--name`, commit): only these
    /// may replace a tier's listing.
    hub_listed: Mutex<std::collections::HashSet<(String, String)>>,
    /// Where a pulled blob's end is reported (the transfer's own `Finished` is held back:
    /// the resolver would log it as a Hub download).
    progress: Arc<dyn crate::Progress>,
}

/// Passes a tier transfer's events on, all but `Finished`.
struct HoldFinished<'a>(&'a dyn Progress);

impl Progress for HoldFinished<'_> {
    fn event(&self, event: &cache_fetch::Event<'_>) {
        if !matches!(event, cache_fetch::Event::Finished { .. }) {
            self.0.event(event);
        }
    }
}

impl std::fmt::Debug for TeamTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamTier").field("tiers", &self.remote.tiers()).finish_non_exhaustive()
    }
}

pub(crate) fn remote_error(e: &cache_remote::Error) -> CacheError {
    let invalid = matches!(e, cache_remote::Error::InvalidSpec { .. } | cache_remote::Error::Open { .. });
    CacheError::Remote { message: e.to_string(), hint: e.hint(), invalid }
}

impl TeamTier {
    /// The tiers `config` names (`None` without any). A tier that cannot be set up is a
    /// warning, not a failure: the Hub still serves.
    pub(crate) fn open(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
        store: &Arc<Store>,
        progress: Arc<dyn crate::Progress>,
    ) -> Result<Option<TeamTier>, CacheError> {
        if config.remote.is_empty() {
            return Ok(None);
        }
        let specs = config
            .remote
            .iter()
            .map(|t| TierSpec::new(&t.url, t.mode.parse().map_err(|e| remote_error(&e))?).map_err(|e| remote_error(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut options = TierOptions::default().with_env(env);
        options.parallelism = config.parallelism.clamp(1, 8);
        options.request_timeout = config.read_timeout.min(Duration::from_secs(60));
        options.signing_key = env(SIGNING_KEY_ENV).filter(|k| !k.is_empty()).map(String::into_bytes);
        let (remote, errors) = Remote::open(&specs, options);
        for e in errors {
            tracing::warn!("{e}; hint: {}", e.hint());
        }
        Ok(Some(TeamTier {
            remote,
            state: TierState::new(store.home_dir().as_std_path()),
            store: Arc::clone(store),
            wait: config.remote_wait,
            running: Mutex::default(),
            hub_listed: Mutex::default(),
            progress,
        }))
    }

    /// The tiers.
    pub(crate) fn remote(&self) -> &Remote {
        &self.remote
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// After a download from the Hub: pushes `repo@commit` to every writable tier in the
    /// background (nothing without a tokio runtime: then it is remembered for later).
    pub(crate) fn after_download(self: &Arc<Self>, repo: &Repo, commit: &str) {
        for tier in self.remote.writers() {
            let pending = PendingPush { tier: tier.url().to_owned(), repo: repo.folder_name(), commit: commit.to_owned() };
            let Ok(handle) = tokio::runtime::Handle::try_current() else {
                let _ = self.state.remember(&[pending]);
                continue;
            };
            let (me, tier, repo, commit) = (Arc::clone(self), Arc::clone(tier), repo.clone(), commit.to_owned());
            let task = handle.spawn(async move { me.push_commit(&tier, &repo, &commit).await });
            self.running().push(Running { pending, task });
        }
    }

    /// After a URL artifact with a known SHA-256 was downloaded: pushes its file to every
    /// writable tier in the background (remembered for later without a tokio runtime).
    pub(crate) fn after_url_download(self: &Arc<Self>, sha256: cache_core::Sha256, file: &std::path::Path) {
        for tier in self.remote.writers() {
            let pending = PendingPush { tier: tier.url().to_owned(), repo: URL_PUSH.to_owned(), commit: sha256.to_hex() };
            let Ok(handle) = tokio::runtime::Handle::try_current() else {
                let _ = self.state.remember(&[pending]);
                continue;
            };
            let (tier, file) = (Arc::clone(tier), file.to_owned());
            let task = handle.spawn(async move { push_url(&tier, sha256, &file).await });
            self.running().push(Running { pending, task });
        }
    }

    /// The artifact store's files by SHA-256 (one listing), for remembered pushes of URL
    /// artifacts; `None` when the store cannot be listed now.
    async fn url_files(&self) -> Option<std::collections::HashMap<cache_core::Sha256, std::path::PathBuf>> {
        let store = Arc::clone(&self.store);
        let found = crate::network::blocking(move || {
            Ok(store.artifacts()?.into_iter().map(|a| (a.sha256, a.path.into_std_path_buf())).collect())
        })
        .await;
        found.map_err(|e| tracing::warn!("could not list the cached artifacts to push them, kept for later: {e}")).ok()
    }

    /// Pushes what is cached of `repo@commit` to `tier` (see the module docs).
    pub(crate) async fn push_commit(&self, tier: &Arc<Tier>, repo: &Repo, commit: &str) -> Result<PushReport, CacheError> {
        let commit: CommitHash = commit.parse().map_err(CacheError::from)?;
        let mut report = PushReport {
            tier: tier.url().to_owned(),
            repo: repo.to_string(),
            commit: commit.to_string(),
            ..PushReport::default()
        };
        let (store, r) = (Arc::clone(&self.store), repo.clone());
        let (tree, blobs) = crate::network::blocking(move || Ok(local_blobs(&store, &r, &commit))).await?;
        let mut complete = tree.is_some();
        for blob in blobs {
            let key = BlobKey::Hub(blob.etag);
            match blob.path {
                Some(path) => match tier.push_blob(&key, &path, blob.size).await.map_err(|e| remote_error(&e))? {
                    cache_remote::Pushed::Written => {
                        report.blobs_written += 1;
                        report.bytes_written += blob.size;
                    }
                    cache_remote::Pushed::Present => report.blobs_present += 1,
                },
                // Listed but not cached here: the listing goes only if the tier has it.
                None => complete &= tier.has(&key).await.map_err(|e| remote_error(&e))?,
            }
        }
        if let (Some(tree), true) = (tree, complete) {
            let json = tree.to_json();
            let pushed = tier.push_tree(repo, &commit, json.as_bytes()).await.map_err(|e| remote_error(&e))?;
            if pushed == cache_remote::Pushed::Present && self.listed_by_hub(repo, &commit) {
                let is_right = |body: &[u8]| std::str::from_utf8(body).ok().and_then(Tree::from_json).is_some_and(|t| t == tree);
                // The push itself is done: a failed check only leaves the listing as it was.
                report.tree_replaced = tier
                    .replace_tree_if_wrong(repo, &commit, json.as_bytes(), is_right)
                    .await
                    .inspect_err(
                        |e| tracing::info!(tier = %tier.url(), %repo, %commit, "could not check the tier's listing: {e}"),
                    )
                    .unwrap_or(false);
            }
            report.tree = true;
            for name in refs_to(&self.store, repo, &commit) {
                if let Ok(rev) = name.parse::<Revision>() {
                    tier.push_ref(repo, &rev, &commit).await.map_err(|e| remote_error(&e))?;
                    report.refs.push(name);
                }
            }
        }
        tracing::info!(tier = %tier.url(), %repo, %commit, written = report.blobs_written, present = report.blobs_present, tree = report.tree, "pushed to the team tier");
        Ok(report)
    }

    /// Whether the Hub listed `repo@commit` in this process.
    fn listed_by_hub(&self, repo: &Repo, commit: &CommitHash) -> bool {
        self.hub_listed.lock().unwrap_or_else(PoisonError::into_inner).contains(&(repo.folder_name(), commit.to_string()))
    }

    /// Waits for running pushes at most `remote_wait`, remembers what did not finish,
    /// retries what earlier commands left (within the same wait), and adds this process's
    /// figures to the home's. Returns what the pushes did and how many were left over.
    pub(crate) async fn finish(self: &Arc<Self>) -> (Vec<PushReport>, usize) {
        let deadline = Instant::now() + self.wait;
        // What earlier commands left, once per process and only when there is time.
        if let Ok(earlier) = self.state.take_pending() {
            let mut artifacts = None;
            for p in earlier {
                let Some(tier) = self.remote.writers().find(|t| t.url() == p.tier).cloned() else {
                    // A tier no longer configured (or writable here): kept for later.
                    let _ = self.state.remember(&[p]);
                    continue;
                };
                if p.repo == URL_PUSH {
                    let Ok(sha256) = cache_core::Sha256::from_hex(&p.commit) else { continue };
                    if artifacts.is_none() {
                        artifacts = Some(self.url_files().await);
                    }
                    let Some(Some(files)) = &artifacts else {
                        let _ = self.state.remember(&[p]);
                        continue;
                    };
                    // One no longer cached has nothing left to push.
                    let Some(file) = files.get(&sha256).cloned() else {
                        tracing::info!(tier = %p.tier, %sha256, "a remembered push of a URL artifact is no longer cached: dropped");
                        continue;
                    };
                    let task = tokio::spawn(async move { push_url(&tier, sha256, &file).await });
                    self.running().push(Running { pending: p, task });
                } else if let Ok(repo) = Repo::from_folder_name(&p.repo) {
                    let me = Arc::clone(self);
                    let commit = p.commit.clone();
                    let task = tokio::spawn(async move { me.push_commit(&tier, &repo, &commit).await });
                    self.running().push(Running { pending: p, task });
                }
            }
        }
        let running = std::mem::take(&mut *self.running());
        let mut reports = Vec::new();
        let mut left = Vec::new();
        for r in running {
            let Running { pending, mut task } = r;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, &mut task).await {
                Ok(Ok(Ok(report))) => reports.push(report),
                Ok(Ok(Err(e))) => {
                    tracing::warn!(tier = %pending.tier, repo = %pending.repo, "push failed, kept for later: {e}");
                    left.push(pending);
                }
                Ok(Err(_)) | Err(_) => {
                    task.abort();
                    left.push(pending);
                }
            }
        }
        if !left.is_empty() {
            tracing::warn!(
                pushes = left.len(),
                "pushes to the team tier did not finish: remembered, `modelcache push` retries them"
            );
        }
        let leftover = left.len();
        if let Err(e) = self.state.remember(&left) {
            tracing::warn!("could not remember unfinished pushes: {e}");
        }
        self.save_stats();
        (reports, leftover)
    }

    /// Adds this process's figures to the home's.
    pub(crate) fn save_stats(&self) {
        if let Err(e) = self.state.add_stats(&self.remote.take_stats()) {
            tracing::warn!("could not record the team tier's figures: {e}");
        }
    }

    /// Every process's figures per configured tier (this one's included).
    pub(crate) fn stats(&self) -> Vec<TierStats> {
        let saved = self.state.stats();
        self.remote
            .stats()
            .into_iter()
            .map(|mut now| {
                if let Some(s) = saved.get(&now.url) {
                    now.add(s);
                }
                now
            })
            .collect()
    }

    /// Pushes remembered and not yet done.
    pub(crate) fn pending(&self) -> Vec<PendingPush> {
        self.state.pending()
    }
}

impl Drop for TeamTier {
    fn drop(&mut self) {
        // A command that never called `finish`: nothing is lost, only postponed.
        let running = std::mem::take(&mut *self.running());
        let left: Vec<PendingPush> = running
            .into_iter()
            .filter_map(|r| {
                let done = r.task.is_finished();
                r.task.abort();
                (!done).then_some(r.pending)
            })
            .collect();
        let _ = self.state.remember(&left);
        self.save_stats();
    }
}

/// Pushes a URL artifact's file to `tier` under its SHA-256.
async fn push_url(tier: &Arc<Tier>, sha256: cache_core::Sha256, file: &std::path::Path) -> Result<PushReport, CacheError> {
    let size = tokio::fs::metadata(file).await.map_or(0, |m| m.len());
    let pushed = tier.push_blob(&BlobKey::Url(sha256), file, size).await.map_err(|e| remote_error(&e))?;
    let written = u64::from(pushed == cache_remote::Pushed::Written);
    Ok(PushReport {
        tier: tier.url().to_owned(),
        repo: String::new(),
        commit: sha256.to_hex(),
        blobs_written: written,
        blobs_present: 1 - written,
        bytes_written: size * written,
        ..PushReport::default()
    })
}

/// A blob of a commit: its etag, size and local file (if cached).
struct LocalBlob {
    etag: Etag,
    size: u64,
    path: Option<std::path::PathBuf>,
}

/// The commit's listing (when recorded) and its blobs: every listed file, or without a
/// listing the files of its snapshot folder.
fn local_blobs(store: &Store, repo: &Repo, commit: &CommitHash) -> (Option<Tree>, Vec<LocalBlob>) {
    let repo_dir = store.hub_dir().as_std_path().join(repo.folder_name());
    let blob_file = |etag: &Etag| {
        let p = repo_dir.join("blobs").join(etag.to_string());
        p.is_file().then_some(p)
    };
    let tree = store.read_tree(repo, commit).ok().flatten();
    let mut out = Vec::new();
    if let Some(tree) = &tree {
        for entry in tree.files.values() {
            if let Some((etag, size)) = cache_hf::tree_entry_etag(entry) {
                out.push(LocalBlob { etag, size, path: blob_file(&etag) });
            }
        }
    } else {
        let dir = repo_dir.join("snapshots").join(commit.as_str());
        let mut stack = vec![dir];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                } else if let Ok(target) = std::fs::read_link(&p)
                    && let Some(name) = target.file_name().and_then(|n| n.to_str())
                    && let Ok(etag) = Etag::new(name)
                    && let Some(file) = blob_file(&etag)
                    && let Ok(meta) = std::fs::metadata(&file)
                {
                    out.push(LocalBlob { etag, size: meta.len(), path: Some(file) });
                }
            }
        }
    }
    out.sort_by_key(|b| b.etag);
    out.dedup_by_key(|b| b.etag);
    (tree, out)
}

/// The refs (branches, tags) of `repo` that point at `commit`.
fn refs_to(store: &Store, repo: &Repo, commit: &CommitHash) -> Vec<String> {
    let root = store.hub_dir().as_std_path().join(repo.folder_name()).join("refs");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if std::fs::read_to_string(&p).is_ok_and(|c| c.trim() == commit.as_str())
                && let Ok(rel) = p.strip_prefix(&root)
                && let Some(name) = rel.to_str()
            {
                out.push(name.to_owned());
            }
        }
    }
    out.sort();
    out
}

impl BlobSource for TeamTier {
    fn pull<'a>(
        &'a self,
        blob: SourceBlob<'a>,
        sink: Arc<dyn Sink>,
        progress: &'a dyn Progress,
    ) -> SourceFuture<'a, Option<Digests>> {
        Box::pin(async move {
            let label = blob.path.to_string();
            let (digests, tier) =
                self.remote.pull(&BlobKey::Hub(blob.etag), blob.size, &sink, &label, &HoldFinished(progress)).await?;
            tracing::info!(repo = %blob.repo, file = %label, bytes = blob.size, tier = %tier, source = "remote", "download");
            self.progress.event(&crate::ProgressEvent::Finished { label: &label, bytes: blob.size });
            Some(digests)
        })
    }

    fn pull_url<'a>(
        &'a self,
        sha256: cache_core::Sha256,
        label: &'a str,
        sink: Arc<dyn Sink>,
        progress: &'a dyn Progress,
    ) -> SourceFuture<'a, Option<Digests>> {
        Box::pin(async move {
            let (digests, tier) = self.remote.pull_unsized(&BlobKey::Url(sha256), &sink, label, &HoldFinished(progress)).await?;
            tracing::info!(file = %label, bytes = digests.size, tier = %tier, source = "remote", "download");
            self.progress.event(&crate::ProgressEvent::Finished { label, bytes: digests.size });
            Some(digests)
        })
    }

    fn tree<'a>(&'a self, repo: &'a Repo, commit: &'a CommitHash) -> SourceFuture<'a, Option<Tree>> {
        Box::pin(async move {
            let (bytes, tier) = self.remote.tree(repo, commit).await?;
            let tree = std::str::from_utf8(&bytes).ok().and_then(Tree::from_json);
            if tree.is_none() {
                tracing::warn!(%tier, %repo, %commit, "the team tier's listing is unreadable: ignored");
            }
            tree
        })
    }

    fn hub_listed(&self, repo: &Repo, commit: &CommitHash) {
        self.hub_listed.lock().unwrap_or_else(PoisonError::into_inner).insert((repo.folder_name(), commit.to_string()));
    }

    fn resolve<'a>(&'a self, repo: &'a Repo, revision: &'a Revision) -> SourceFuture<'a, Option<(CommitHash, Timestamp)>> {
        Box::pin(async move { self.remote.resolve_ref(repo, revision).await.map(|(c, t, _)| (c, t)) })
    }
}

/// What [`CacheManager::finish_pushes`](crate::CacheManager::finish_pushes) did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PushSummary {
    /// Each push that finished.
    pub pushed: Vec<PushReport>,
    /// Pushes that did not finish in time or failed: remembered and retried later.
    pub remembered: usize,
}

impl crate::CacheManager {
    fn team(&self) -> Result<&Arc<TeamTier>, CacheError> {
        self.inner.team.as_ref().ok_or_else(|| CacheError::Remote {
            message: "no team tier is configured".to_owned(),
            hint: "name one with `--remote URL[:MODE]`, `MODELCACHE_REMOTE` or `[[remote]]` in config.toml (`modelcache config` shows the settings)".to_owned(),
            invalid: true,
        })
    }

    /// After a download: pushes the request's commit to the writable tiers, in the
    /// background.
    pub(crate) fn push_in_background(&self, request: &crate::AcquireRequest, acquired: &crate::Acquired) {
        let Some(team) = &self.inner.team else { return };
        if acquired.files_downloaded == 0 {
            return;
        }
        if let crate::AcquireRequest::Url { sha256: Some(sha), .. } = request {
            team.after_url_download(*sha, &acquired.path);
        } else if let (Some(repo), Some(commit)) = (request.repo(), &acquired.commit) {
            team.after_download(repo, commit);
        }
    }

    /// The team tiers' URLs and modes (now: a tier whose write was denied is `ro`).
    pub fn remote_tiers(&self) -> Vec<(String, String)> {
        self.inner
            .team
            .as_ref()
            .map_or_else(Vec::new, |t| t.remote().tiers().iter().map(|t| (t.url().to_owned(), t.mode().to_string())).collect())
    }

    /// Waits for pushes still running at most `remote_wait`, then remembers what did not
    /// finish (a later command retries it) and records this process's per-tier figures.
    /// Call it before a program exits; without tiers it does nothing.
    pub async fn finish_pushes(&self) -> PushSummary {
        let Some(team) = &self.inner.team else { return PushSummary::default() };
        let (pushed, remembered) = team.finish().await;
        PushSummary { pushed, remembered }
    }

    /// Pushes what is cached of `model` (at its revision, `main` by default) to every
    /// writable tier, the listing after its blobs and the refs last.
    pub async fn push(&self, model: &crate::ModelRef) -> Result<Vec<PushReport>, CacheError> {
        let team = self.team()?;
        let revision = model.revision_or_main();
        let commit = self
            .inner
            .store
            .resolve(&model.repo, &revision)?
            .ok_or_else(|| CacheError::NotInCache { what: format!("{}@{revision}", model.repo) })?;
        let writers: Vec<Arc<Tier>> = team.remote().writers().cloned().collect();
        if writers.is_empty() {
            return Err(CacheError::Remote {
                message: "no team tier may be written to: every one is `ro`".to_owned(),
                hint: "give one the mode `rw` or `wo`, e.g. `--remote s3://bucket/prefix:wo`".to_owned(),
                invalid: true,
            });
        }
        let mut reports = Vec::new();
        for tier in writers {
            reports.push(team.push_commit(&tier, &model.repo, commit.as_str()).await?);
        }
        team.save_stats();
        Ok(reports)
    }

    /// Every commit of every cached repository, for `push --all`.
    pub fn pushable(&self) -> Result<Vec<crate::ModelRef>, CacheError> {
        let mut out = Vec::new();
        for info in self.list()? {
            let Some(kind) = info.repo_type.repo_type() else { continue };
            let Ok(id) = info.repo_id.parse::<cache_core::RepoId>() else { continue };
            for rev in &info.revisions {
                let Ok(revision) = rev.commit.parse::<Revision>() else { continue };
                out.push(crate::ModelRef { repo: Repo::new(kind, id.clone()), revision: Some(revision) });
            }
        }
        Ok(out)
    }

    /// Each tier's figures, summed over every process that used this home.
    pub fn remote_stats(&self) -> Vec<TierStats> {
        self.inner.team.as_ref().map_or_else(Vec::new, |t| t.stats())
    }

    /// Pushes remembered for later (they did not finish or failed).
    pub fn pending_pushes(&self) -> Vec<PendingPush> {
        self.inner.team.as_ref().map_or_else(Vec::new, |t| t.pending())
    }

    fn tiers_named(&self, url: Option<&str>) -> Result<Vec<Arc<Tier>>, CacheError> {
        let team = self.team()?;
        let tiers: Vec<Arc<Tier>> =
            team.remote().tiers().iter().filter(|t| url.is_none_or(|u| t.url() == u.trim_end_matches('/'))).cloned().collect();
        if tiers.is_empty() {
            return Err(CacheError::Remote {
                message: format!("`{}` is not a configured team tier", cache_core::redact_url(url.unwrap_or_default())),
                hint: "`modelcache config` lists the tiers (`remote`); pass one with `--remote`".to_owned(),
                invalid: true,
            });
        }
        Ok(tiers)
    }

    /// What each tier (or the one at `url`) holds: repositories, commits, blobs, bytes.
    pub async fn remote_ls(&self, url: Option<&str>) -> Result<Vec<cache_remote::TierListing>, CacheError> {
        let mut out = Vec::new();
        for tier in self.tiers_named(url)? {
            out.push(tier.list().await.map_err(|e| remote_error(&e))?);
        }
        Ok(out)
    }

    /// Re-hashes each tier's blobs (or the one at `url`): all, or `sample` of them.
    pub async fn remote_verify(
        &self,
        url: Option<&str>,
        sample: Option<u64>,
    ) -> Result<Vec<cache_remote::TierVerifyReport>, CacheError> {
        let mut out = Vec::new();
        for tier in self.tiers_named(url)? {
            out.push(tier.verify(sample).await.map_err(|e| remote_error(&e))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_report_round_trips_through_json() {
        let r = PushReport {
            tier: "s3://b/p".into(),
            repo: "a/b".into(),
            tree: true,
            refs: vec!["main".into()],
            ..PushReport::default()
        };
        let back: PushReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
