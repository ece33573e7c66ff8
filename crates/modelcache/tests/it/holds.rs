//! A returned path stays valid while it is used: gets racing `remove`, `clear` and
//! `prune` (checked on every iteration), [`Hold`](modelcache::Hold), the in-use checks,
//! and auto-prune never evicting what the call returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use modelcache::{
    AcquireContext, AcquireRequest, Acquired, AcquisitionStrategy, CacheError, CacheManager, CacheOnlyAcquisition, ConfigKey,
    EvictionPolicy, ModelRef, RepoType,
};

use cache_testkit::inspect::{dangling_links, downloading};

use crate::hub::{self, WEIGHTS};
use crate::{Env, files_under};

const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// Iterations per kind of removal.
const ROUNDS: usize = 8;

#[derive(Clone, Copy, Debug)]
enum Removal {
    Rm,
    Clean,
    Prune,
}

fn model_ref(id: &str) -> ModelRef {
    ModelRef::parse(id, RepoType::Model).unwrap()
}

fn prune_everything() -> EvictionPolicy {
    EvictionPolicy { max_size: Some(0), in_use_grace: Duration::ZERO, ..EvictionPolicy::default() }
}

/// Runs one removal; returns what it reported as skipped because in use, and what of
/// `org/model` it evicted (prune).
async fn remove(cache: &CacheManager, how: Removal) -> (Vec<String>, Vec<String>) {
    match how {
        Removal::Rm => (cache.remove(&model_ref("org/model"), &[], false).await.unwrap().skipped_in_use, Vec::new()),
        Removal::Clean => (cache.clear(false).await.unwrap().skipped_in_use, Vec::new()),
        Removal::Prune => {
            let r = cache.prune(&prune_everything()).await.unwrap();
            let evicted = r.evicted.into_iter().map(|e| e.entry).filter(|e| e.starts_with("org/model@")).collect();
            (r.skipped_in_use, evicted)
        }
    }
}

/// A get of a three-file snapshot, throttled so that the removal lands mid-download,
/// races `remove`, `clear` and `prune --max-size 0`. On every iteration: the get succeeds
/// and no dangling link is left; when the removal ran while the get was running, every
/// file of the returned snapshot is there and the removal reported the repo in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gets_racing_removal_return_complete_snapshots() {
    let hub = hub::start().await;
    hub.throttle(Some(600_000));
    let env = Env::new();
    let getter = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let remover = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let mut overlapped = 0;
    for how in [Removal::Rm, Removal::Clean, Removal::Prune] {
        for round in 0..ROUNDS {
            let g = getter.clone();
            let get = tokio::spawn(async move { g.get_model("org/model").await });
            let deadline = Instant::now() + Duration::from_secs(10);
            while !downloading(&env.hub_dir(), "models--org--model") && !get.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let (skipped, evicted) = remove(&remover, how).await;
            let during = !get.is_finished();
            let dir = get.await.unwrap().unwrap_or_else(|e| panic!("{how:?} round {round}: the get failed: {e}"));
            assert_eq!(dangling_links(&env.hub_dir()), Vec::<std::path::PathBuf>::new(), "{how:?} round {round}");
            // A removal that ended after the get may have removed it, as it may.
            if during {
                overlapped += 1;
                assert_eq!(files_under(&dir), MODEL_FILES, "{how:?} round {round}: the returned snapshot is incomplete");
                assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap().len() as u64, WEIGHTS);
                assert!(evicted.is_empty(), "{how:?} round {round}: evicted {evicted:?} while the get ran");
                match how {
                    Removal::Rm | Removal::Clean => {
                        assert_eq!(skipped, ["org/model"], "{how:?} round {round}: not reported as in use");
                    }
                    Removal::Prune => assert!(skipped.iter().all(|s| s.starts_with("org/model@")), "{skipped:?}"),
                }
            }
            // Not in use any more: the next round downloads again.
            let gone = remover.remove(&model_ref("org/model"), &[], false).await.unwrap();
            assert!(gone.skipped_in_use.is_empty(), "{gone:?}");
        }
    }
    assert!(overlapped >= ROUNDS, "the removals should mostly land mid-download: {overlapped} did");
}

/// A get of a file at a commit that is cached and sound answers from one lookup, without
/// the lease. Gets racing `remove`, `clear` and `prune --max-size 0` (removals at varied
/// gaps), checked on every iteration: the returned path, read right after the return,
/// holds the file's exact bytes, or is gone only because a removal ran during the call;
/// once quiet, no dangling link is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_hits_racing_removal_return_paths_that_were_there_during_the_call() {
    /// Gets per kind of removal: at least this many, and until 25 removals have run.
    const GETS: usize = 150;
    const REMOVALS: u64 = 25;
    let hub = hub::start().await;
    let env = Env::new();
    let getter = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let remover = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let file = |revision: &str| AcquireRequest::File {
        repo: model_ref("org/model").repo,
        revision: revision.parse().unwrap(),
        path: "model.safetensors".parse().unwrap(),
    };
    let first = getter.fetch(&file("main")).await.unwrap();
    let expected = std::fs::read(&first.path).unwrap();
    let request = file(first.commit.as_deref().unwrap());
    for how in [Removal::Rm, Removal::Clean, Removal::Prune] {
        let started = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let removals = tokio::spawn({
            let (remover, started, ended, stop) = (remover.clone(), started.clone(), ended.clone(), stop.clone());
            async move {
                let mut n = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    started.fetch_add(1, Ordering::SeqCst);
                    match how {
                        // Between a removal and the download that follows, there is nothing to remove.
                        Removal::Rm => match remover.remove(&model_ref("org/model"), &[], false).await {
                            Ok(_) | Err(CacheError::NotInCache { .. }) => {}
                            Err(e) => panic!("rm: {e}"),
                        },
                        Removal::Clean | Removal::Prune => drop(remove(&remover, how).await),
                    }
                    ended.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                    tokio::time::sleep(Duration::from_micros(n * 7_919 % 3_000)).await;
                }
            }
        });
        let (mut hits, mut downloads, mut gone) = (0, 0, 0);
        for i in 0.. {
            if i >= GETS && ended.load(Ordering::SeqCst) >= REMOVALS {
                break;
            }
            assert!(i < 50 * GETS, "{how:?}: only {} removals ran", ended.load(Ordering::SeqCst));
            tokio::time::sleep(Duration::from_micros(i as u64 * 37 % 500)).await;
            let ended_before = ended.load(Ordering::SeqCst);
            let got = getter.fetch(&request).await.unwrap_or_else(|e| panic!("{how:?} get {i}: {e}"));
            if got.from_cache {
                hits += 1;
            } else {
                downloads += 1;
            }
            match std::fs::read(&got.path) {
                Ok(bytes) => assert!(bytes == expected, "{how:?} get {i}: wrong bytes at {}", got.path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    gone += 1;
                    assert!(
                        started.load(Ordering::SeqCst) > ended_before,
                        "{how:?} get {i}: returned a path that no removal during the call could have taken"
                    );
                }
                Err(e) => panic!("{how:?} get {i}: {e}"),
            }
        }
        stop.store(true, Ordering::SeqCst);
        removals.await.unwrap();
        assert_eq!(dangling_links(&env.hub_dir()), Vec::<std::path::PathBuf>::new(), "{how:?}");
        // The race happened: hits answered beside removals that made later gets download.
        assert!(hits > 0 && downloads > 0, "{how:?}: {hits} hits, {downloads} downloads, {gone} gone");
    }
}

#[tokio::test]
async fn a_hold_keeps_a_repo_from_removal_and_eviction_until_dropped() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let model = model_ref("org/model");
    let dir = cache.get_model("org/model").await.unwrap();
    cache.get_model("org/other").await.unwrap();
    assert!(!cache.is_in_use(&model).unwrap(), "no lease, no lock, and a zero grace");
    assert!(!cache.is_file_in_use(dir.join("config.json")).unwrap());

    let hold = cache.hold(&model).unwrap();
    assert_eq!(hold.target(), "org/model");
    assert!(cache.is_in_use(&model).unwrap());
    assert!(cache.is_file_in_use(dir.join("config.json")).unwrap());
    assert!(cache.is_file_in_use(&dir).unwrap());
    assert!(!cache.is_in_use(&model_ref("org/other")).unwrap());
    let other = env.builder().build().unwrap();
    assert!(other.is_in_use(&model).unwrap(), "seen by another manager (another open of the lease)");

    let rm = other.remove(&model, &[], false).await.unwrap();
    assert_eq!((rm.skipped_in_use.as_slice(), rm.entries), (&["org/model".to_owned()][..], 0));
    let pruned = other.prune(&prune_everything()).await.unwrap();
    assert!(pruned.evicted.iter().all(|e| !e.entry.starts_with("org/model@")), "{pruned:?}");
    assert_eq!(pruned.skipped_in_use.len(), 3, "{pruned:?}");
    let cleared = other.clear(false).await.unwrap();
    assert_eq!(cleared.skipped_in_use, ["org/model"]);
    assert_eq!(files_under(&dir), MODEL_FILES, "held files stay");

    drop(hold);
    assert!(!cache.is_in_use(&model).unwrap());
    let rm = other.remove(&model, &[], false).await.unwrap();
    assert_eq!((rm.skipped_in_use.len(), rm.entries), (0, 3));
    assert!(!dir.exists());

    let err = cache.is_file_in_use(env.tmp.path().join("elsewhere")).unwrap_err();
    assert_eq!(err.kind().exit_code(), 2, "{err}");
}

#[tokio::test]
async fn a_returned_path_is_in_use_for_the_grace_period() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::InUseGrace, "1h").build().unwrap();
    let path = cache.get_file("org/other", "main", "vocab.txt").await.unwrap();
    let url = hub.file("org/third", "main", "x.bin").unwrap().url;
    let artifact = cache.get_url(&url, None).await.unwrap();
    drop(cache);
    // Another process (a new manager) sees the use recorded at the return.
    let later = env.builder().set(ConfigKey::InUseGrace, "1h").build().unwrap();
    assert!(later.is_file_in_use(&path).unwrap());
    assert!(later.is_file_in_use(&artifact).unwrap(), "a URL artifact too");
    assert!(later.is_in_use(&model_ref("org/other")).unwrap());
    assert!(!later.is_in_use(&model_ref("org/model")).unwrap(), "never fetched");
    let mut policy = prune_everything();
    policy.in_use_grace = Duration::from_secs(3600);
    let pruned = later.prune(&policy).await.unwrap();
    assert!(pruned.evicted.is_empty(), "{pruned:?}");
    assert!(path.exists());
    let strict = env.builder().set(ConfigKey::InUseGrace, "0s").build().unwrap();
    assert!(!strict.is_file_in_use(&path).unwrap());
    assert!(!strict.is_file_in_use(&artifact).unwrap());
}

/// With a limit smaller than the model and no grace, the auto-prune after a download
/// keeps what the call returns and evicts the older repo.
#[tokio::test]
async fn auto_prune_keeps_what_the_call_returns_and_evicts_an_older_repo() {
    let hub = hub::start().await;
    let env = Env::new();
    let limited = env
        .builder()
        .set(ConfigKey::Endpoint, hub.url())
        .set(ConfigKey::MaxSize, "10KiB")
        .set(ConfigKey::InUseGrace, "0s")
        .build()
        .unwrap();
    let other = limited.get_model("org/other").await.unwrap();
    let third = limited.get_model("org/third").await.unwrap();
    assert_eq!(files_under(&third), ["tokenizer.model", "x.bin"], "the limit holds both small repos");
    let dir = limited.get_model("org/model").await.unwrap();
    assert_eq!(files_under(&dir), MODEL_FILES, "the returned model survives its own auto-prune");
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap().len() as u64, WEIGHTS);
    let stats = limited.stats().unwrap();
    let kept: Vec<&str> = stats.models.iter().map(|m| m.model_id.as_str()).collect();
    assert_eq!(kept, ["org/model"], "the older repos went, the returned one stayed");
    assert!(!other.exists() && !third.exists());
}

/// `max_age` alone turns auto-prune on: an expired repo goes after the next download.
#[tokio::test]
async fn auto_prune_applies_max_age_without_max_size() {
    let hub = hub::start().await;
    let env = Env::new();
    let aging = env
        .builder()
        .set(ConfigKey::Endpoint, hub.url())
        .set(ConfigKey::MaxAge, "1s")
        .set(ConfigKey::InUseGrace, "0s")
        // An age limit alone applies at most once per cleanup interval (default a day).
        .set(ConfigKey::CleanupInterval, "1s")
        .build()
        .unwrap();
    let old = aging.get_model("org/other").await.unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let fresh = aging.get_model("org/third").await.unwrap();
    assert!(!old.exists(), "the expired repo was auto-pruned");
    assert_eq!(files_under(&fresh), ["tokenizer.model", "x.bin"]);
    let kept: Vec<String> = aging.stats().unwrap().models.into_iter().map(|m| m.model_id).collect();
    assert_eq!(kept, ["org/third"]);
}

/// Serves from the cache, then deletes a file of the snapshot as a tool that knows no
/// leases would (huggingface_hub's cache deletion).
#[derive(Debug)]
struct AnotherToolDeletes;

#[async_trait::async_trait]
impl AcquisitionStrategy for AnotherToolDeletes {
    fn name(&self) -> &'static str {
        "another-tool-deletes"
    }

    fn description(&self) -> String {
        "serves from the cache, then loses a file".to_owned()
    }

    fn requirements(&self) -> Vec<String> {
        Vec::new()
    }

    fn is_available(&self) -> bool {
        true
    }

    async fn acquire(&self, ctx: &AcquireContext<'_>, request: &AcquireRequest) -> Result<Acquired, CacheError> {
        let got = CacheOnlyAcquisition.acquire(ctx, request).await?;
        std::fs::remove_file(got.path.join("tokenizer.json")).unwrap();
        Ok(got)
    }
}

/// Whatever a strategy does, a snapshot lacking a file of its listing is never returned.
#[tokio::test]
async fn a_snapshot_that_lost_a_file_is_an_error_not_a_result() {
    let hub = hub::start().await;
    let env = Env::new();
    let online = env.manager(hub.url());
    online.get_model("org/model").await.unwrap();
    let lossy = env.builder().strategy(std::sync::Arc::new(AnotherToolDeletes)).build().unwrap();
    let err = lossy.get_model("org/model").await.unwrap_err();
    assert!(matches!(&err, CacheError::IncompleteSnapshot { missing, .. } if missing == &["tokenizer.json"]), "{err:?}");
    assert!(err.to_string().contains("`tokenizer.json`"), "{err}");
    assert!(err.hint().contains("run the same command again"), "{}", err.hint());
    assert_ne!(err.kind().exit_code(), 0);
    let dir = online.get_model("org/model").await.unwrap();
    assert_eq!(files_under(&dir), MODEL_FILES, "the next get fetches it again");
}
