//! The server: two loopback listeners (the hub and its CDN, on different ports so that a
//! redirect between them crosses origins as on the real Hub), started on the caller's
//! runtime or on a runtime of its own, and the handle that controls it while it runs.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use cache_core::{Repo, RepoType};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::body::Pacer;
use crate::faults::{CorruptFault, DropFault, FailFault, Faults, StallFault};
use crate::repo::{FileInfo, HubFile, HubRepo, RepoSpec};
use crate::stats::Stats;

/// Settings of a hub that are fixed when it starts.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Entries per page of the tree API before a `Link: <…>; rel="next"` header (the Hub
    /// pages long listings; small values exercise pagination).
    pub tree_page_size: usize,
    /// Port for the hub (0: any free port).
    pub port: u16,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig { tree_page_size: 1000, port: 0 }
    }
}

/// State shared by the listeners, the connections and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) repos: RwLock<HashMap<(RepoType, String), Arc<HubRepo>>>,
    pub(crate) cdn: RwLock<HashMap<String, Arc<HubFile>>>,
    /// Old repo id → new one, answered with a relative `307` as the Hub does after a rename.
    pub(crate) renames: RwLock<HashMap<(RepoType, String), String>>,
    pub(crate) faults: Mutex<Faults>,
    stats: Mutex<Stats>,
    pub(crate) hub_url: String,
    pub(crate) cdn_url: String,
    pub(crate) config: HubConfig,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn repo(&self, repo_type: RepoType, id: &str) -> Option<Arc<HubRepo>> {
        self.repos.read().unwrap_or_else(PoisonError::into_inner).get(&(repo_type, id.to_owned())).cloned()
    }

    fn insert(&self, spec: RepoSpec) {
        let built = spec.build();
        let mut cdn = self.cdn.write().unwrap_or_else(PoisonError::into_inner);
        for commit in &built.commits {
            for file in commit.files.values() {
                if let Some(sha) = file.sha256 {
                    cdn.insert(sha.to_hex(), Arc::clone(file));
                }
            }
        }
        let key = (built.repo.repo_type, built.repo.id.to_string());
        self.repos.write().unwrap_or_else(PoisonError::into_inner).insert(key, Arc::new(built));
    }
}

/// Which listener a connection arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    Hub,
    Cdn,
}

/// A cheap, cloneable handle to a running hub: its URLs, repos, faults and counters.
#[derive(Clone, Debug)]
pub struct HubHandle {
    shared: Arc<Shared>,
}

impl HubHandle {
    /// The hub's base URL, e.g. `http://127.0.0.1:41234` (use it as `HF_ENDPOINT`).
    pub fn url(&self) -> &str {
        &self.shared.hub_url
    }

    /// The CDN's base URL (another port: a different origin).
    pub fn cdn_url(&self) -> &str {
        &self.shared.cdn_url
    }

    /// Adds a repository, or replaces one with the same type and id (e.g. to push a new
    /// commit while the hub runs).
    pub fn put_repo(&self, spec: RepoSpec) {
        self.shared.insert(spec);
    }

    /// Makes requests for `old` (an id of the same type as `new`) redirect to `new` with a
    /// relative `307`, as the Hub does for renamed or moved repositories.
    pub fn rename(&self, old: &str, new: &Repo) {
        let key = (new.repo_type, old.to_owned());
        self.shared.renames.write().unwrap_or_else(PoisonError::into_inner).insert(key, new.id.to_string());
    }

    /// Removes a repository.
    pub fn remove_repo(&self, repo: &Repo) {
        let key = (repo.repo_type, repo.id.to_string());
        self.shared.repos.write().unwrap_or_else(PoisonError::into_inner).remove(&key);
    }

    /// What is served for `path` at `revision` of `repo` (`org/name`, or
    /// `datasets/org/name`, `spaces/org/name`), or `None`.
    pub fn file(&self, repo: &str, revision: &str, path: &str) -> Option<FileInfo> {
        let (repo_type, id) = match repo.split_once('/') {
            Some(("datasets", id)) => (RepoType::Dataset, id),
            Some(("spaces", id)) => (RepoType::Space, id),
            _ => (RepoType::Model, repo),
        };
        let r = self.shared.repo(repo_type, id)?;
        let commit = r.commit(revision)?;
        let f = commit.files.get(path)?;
        Some(FileInfo {
            commit: commit.hash,
            etag: f.etag(),
            size: f.size(),
            lfs: f.lfs,
            content: f.content.clone(),
            url: format!("{}/{}{id}/resolve/{revision}/{path}", self.url(), repo_type.url_prefix()),
            cdn_url: f.sha256.map(|s| format!("{}/cdn/{s}", self.cdn_url())),
        })
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults() = faults;
    }

    /// Changes the faults in force.
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.shared.faults());
    }

    /// The faults in force (counted ones shrink as they fire).
    pub fn faults(&self) -> Faults {
        self.shared.faults().clone()
    }

    /// Switches every fault off.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// Caps each connection at `bytes_per_second` (`None`: unlimited).
    pub fn throttle(&self, bytes_per_second: Option<u64>) {
        self.update_faults(|f| f.throttle_bps = bytes_per_second);
    }

    /// Delays every response by `latency`.
    pub fn set_latency(&self, latency: Duration) {
        self.update_faults(|f| f.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
    }

    /// Cuts the connection after `after_bytes` body bytes, for the next `count` bodies.
    pub fn drop_after(&self, after_bytes: u64, count: u32) {
        self.update_faults(|f| f.drop = Some(DropFault { after_bytes, count }));
    }

    /// Answers `status` to the next `count` requests (with `Retry-After` when given).
    pub fn fail_next(&self, status: u16, count: u32, retry_after: Option<u64>) {
        self.update_faults(|f| f.fail = Some(FailFault { status, count, retry_after }));
    }

    /// Sends bytes that do not match the etag in the next `count` bodies.
    pub fn corrupt_next(&self, count: u32) {
        self.update_faults(|f| f.corrupt = Some(CorruptFault { count }));
    }

    /// Pauses for `pause` after `after_bytes` body bytes (then closes), for `count` bodies.
    pub fn stall_after(&self, after_bytes: u64, count: u32, pause: Duration) {
        let duration_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX);
        self.update_faults(|f| f.stall = Some(StallFault { after_bytes, count, duration_ms }));
    }

    /// Makes the server ignore `Range` headers (`true`) or honour them again.
    pub fn ignore_ranges(&self, ignore: bool) {
        self.update_faults(|f| f.ignore_ranges = ignore);
    }

    /// The counters since the start or the last reset.
    pub fn stats(&self) -> Stats {
        self.shared.stats().clone()
    }

    /// Zeroes the counters and the request log.
    pub fn reset_stats(&self) {
        *self.shared.stats() = Stats::default();
    }
}

enum Runner {
    Task(tokio::task::AbortHandle),
    Thread { stop: Option<tokio::sync::oneshot::Sender<()>>, thread: Option<std::thread::JoinHandle<()>> },
}

/// A running hub on 127.0.0.1. Stops when dropped. Dereferences to its [`HubHandle`].
pub struct TestHub {
    handle: HubHandle,
    runner: Runner,
}

impl std::fmt::Debug for TestHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHub").field("url", &self.handle.url()).finish_non_exhaustive()
    }
}

impl std::ops::Deref for TestHub {
    type Target = HubHandle;
    fn deref(&self) -> &HubHandle {
        &self.handle
    }
}

async fn bind(config: &HubConfig, repos: Vec<RepoSpec>) -> io::Result<(Arc<Shared>, TcpListener, TcpListener)> {
    let hub = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port))).await?;
    let cdn = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let shared = Arc::new(Shared {
        repos: RwLock::default(),
        cdn: RwLock::default(),
        renames: RwLock::default(),
        faults: Mutex::default(),
        stats: Mutex::default(),
        hub_url: format!("http://{}", hub.local_addr()?),
        cdn_url: format!("http://{}", cdn.local_addr()?),
        config: config.clone(),
    });
    for spec in repos {
        shared.insert(spec);
    }
    Ok((shared, hub, cdn))
}

async fn serve(shared: Arc<Shared>, hub: TcpListener, cdn: TcpListener) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = hub.accept() => a.map(|(s, _)| (s, Listener::Hub)),
            a = cdn.accept() => a.map(|(s, _)| (s, Listener::Cdn)),
        };
        while conns.try_join_next().is_some() {}
        let Ok((stream, listener)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let pacer = Arc::new(Pacer::new());
        conns.spawn(async move {
            let svc = service_fn(move |req| {
                let (shared, pacer) = (Arc::clone(&shared), Arc::clone(&pacer));
                async move { Ok::<_, std::convert::Infallible>(crate::routes::handle(shared, pacer, listener, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

impl TestHub {
    /// Starts a hub serving `repos` on the current tokio runtime.
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start(repos: impl IntoIterator<Item = RepoSpec>) -> TestHub {
        Self::start_with(HubConfig::default(), repos).await
    }

    /// Like [`start`](TestHub::start), with settings.
    ///
    /// # Panics
    /// If the port cannot be bound.
    pub async fn start_with(config: HubConfig, repos: impl IntoIterator<Item = RepoSpec>) -> TestHub {
        let (shared, hub, cdn) = bind(&config, repos.into_iter().collect()).await.expect("bind the testkit hub on 127.0.0.1");
        let task = tokio::spawn(serve(Arc::clone(&shared), hub, cdn));
        TestHub { handle: HubHandle { shared }, runner: Runner::Task(task.abort_handle()) }
    }

    /// Starts a hub on a runtime of its own (a background thread): for synchronous tests,
    /// benchmarks and the command line.
    ///
    /// # Panics
    /// If the runtime cannot be built or no loopback port can be bound.
    pub fn start_blocking(repos: impl IntoIterator<Item = RepoSpec>) -> TestHub {
        Self::start_blocking_with(HubConfig::default(), repos)
    }

    /// Like [`start_blocking`](TestHub::start_blocking), with settings.
    ///
    /// # Panics
    /// If the runtime cannot be built or the port cannot be bound.
    pub fn start_blocking_with(config: HubConfig, repos: impl IntoIterator<Item = RepoSpec>) -> TestHub {
        let repos: Vec<RepoSpec> = repos.into_iter().collect();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("testkit-hub".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("build the testkit runtime");
                rt.block_on(async move {
                    let bound = bind(&config, repos).await;
                    let (shared, hub, cdn) = match bound {
                        Ok(b) => b,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(Arc::clone(&shared)));
                    tokio::select! {
                        () = serve(shared, hub, cdn) => {}
                        _ = stop_rx => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("spawn the testkit thread");
        let shared = ready_rx.recv().expect("the testkit thread reports readiness").expect("bind the testkit hub on 127.0.0.1");
        TestHub { handle: HubHandle { shared }, runner: Runner::Thread { stop: Some(stop_tx), thread: Some(thread) } }
    }

    /// A cloneable handle that outlives borrows of the hub.
    pub fn handle(&self) -> HubHandle {
        self.handle.clone()
    }
}

impl Drop for TestHub {
    fn drop(&mut self) {
        match &mut self.runner {
            Runner::Task(abort) => abort.abort(),
            Runner::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}
