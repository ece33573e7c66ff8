//! Cache-only operation over files another tool put in the cache: the whole API works
//! without the network (and without the `downloads` feature).

use std::sync::Arc;
use std::time::Duration;

use modelcache::{CacheError, CacheOnlyAcquisition, ModelRef, PruneOptions, RepoType};

use crate::{Env, commit, files_under, model};

fn seeded() -> Env {
    let env = Env::new();
    env.seed(&model("org/a"), commit(1), &[("config.json", b"{\"a\": 1}"), ("sub/w.bin", &[7u8; 1000])]);
    env.seed(&model("org/b"), commit(2), &[("config.json", b"{\"b\": 2}")]);
    env
}

#[tokio::test]
async fn cached_files_and_snapshots_are_served_without_downloads() {
    let env = seeded();
    let cache = env.builder().strategy(Arc::new(CacheOnlyAcquisition)).build().unwrap();
    let dir = cache.get_model("org/a").await.unwrap();
    assert_eq!(files_under(&dir), ["config.json", "sub/w.bin"]);
    let file = cache.get_file("org/a", &commit(1).to_string(), "sub/w.bin").await.unwrap();
    assert_eq!(std::fs::read(file).unwrap(), vec![7u8; 1000]);
    assert!(cache.is_cached("org/a") && cache.is_cached("org/b") && !cache.is_cached("org/c"));
    assert!(!cache.is_cached("not a valid id"));
    let err = cache.get_file("org/a", "main", "missing.txt").await.unwrap_err();
    assert!(matches!(err, CacheError::DownloadFailed { offline: true, .. }), "{err}");
    // A miss at a commit is one miss, however many layers look.
    let err = cache.get_file("org/a", &commit(1).to_string(), "missing.txt").await.unwrap_err();
    assert!(matches!(err, CacheError::DownloadFailed { offline: true, .. }), "{err}");
    let stats = cache.stats().unwrap();
    assert_eq!((stats.total_models, stats.total_size_bytes), (2, 8 + 1000 + 8));
    assert_eq!((stats.counters.hits, stats.counters.misses), (1, 2), "the file lookups (an unlisted snapshot is not one)");
}

#[tokio::test]
async fn maintenance_works_cache_only() {
    let env = seeded();
    let cache = env.builder().strategy(Arc::new(CacheOnlyAcquisition)).build().unwrap();
    let listed = cache.list().unwrap();
    assert_eq!(listed.len(), 2);
    let a = &listed[0];
    assert_eq!((a.model_id.as_str(), a.files, a.size_bytes), ("org/a", 2, 1008));
    assert_eq!(a.revisions[0].refs, ["main"]);
    assert_eq!(a.revisions[0].commit, commit(1).to_string());

    let a_ref = ModelRef::parse("org/a", RepoType::Model).unwrap();
    cache.pin(&a_ref).unwrap();
    assert!(cache.list().unwrap()[0].pinned);
    let policy = PruneOptions { max_size: Some(1), dry_run: true, ..PruneOptions::default() };
    let dry = cache.prune_with(&policy).await.unwrap();
    assert!(dry.evicted.is_empty(), "pinned and recently used entries are protected: {dry:?}");
    let mut grace0 = cache.config().config.eviction_policy();
    grace0.in_use_grace = Duration::ZERO;
    grace0.max_size = Some(1);
    let pruned = cache.prune(&grace0).await.unwrap();
    assert_eq!(pruned.evicted.len(), 1, "only the unpinned repo goes: {pruned:?}");
    assert!(pruned.evicted[0].entry.starts_with("org/b@"));
    assert_eq!((pruned.evicted[0].reason.as_str(), pruned.evicted[0].bytes), ("over_size", 8));
    assert_eq!(pruned.size_before - pruned.size_after, 8);
    assert_eq!(pruned.bytes_freed, 8);
    assert!(cache.is_cached("org/a") && !cache.is_cached("org/b"));
    assert!(cache.unpin(&a_ref).unwrap(), "a pin was removed");
    assert!(!cache.list().unwrap()[0].pinned);
    assert!(!cache.unpin(&a_ref).unwrap(), "unpinning what is not pinned says so");

    let file = ModelRef::parse(&format!("org/a@{}", commit(1)), RepoType::Model).unwrap();
    let dry = cache.remove(&file, &["sub/w.bin".parse().unwrap()], true).await.unwrap();
    assert_eq!((dry.entries, dry.bytes_freed), (1, 1000));
    let done = cache.remove(&file, &["sub/w.bin".parse().unwrap()], false).await.unwrap();
    assert_eq!((done.entries, done.bytes_freed), (1, 1000));
    let dry = cache.clear(true).await.unwrap();
    assert_eq!((dry.entries, dry.bytes_freed), (1, 8));
    cache.clear(false).await.unwrap();
    assert_eq!(cache.stats().unwrap().total_models, 0);
}

#[tokio::test]
async fn a_background_prune_runs_and_stops_cleanly() {
    let env = seeded();
    let cache =
        env.builder().set(modelcache::ConfigKey::MaxAge, "1s").set(modelcache::ConfigKey::InUseGrace, "0s").build().unwrap();
    let handle = cache.start_background_prune(Duration::from_millis(50)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cache.stats().unwrap().total_models > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(cache.stats().unwrap().total_models, 0, "entries older than max_age were pruned in the background");
    assert!(handle.runs() >= 1);
    handle.stop();
    // Dropping a handle stops it too, without waiting for the interval.
    let started = std::time::Instant::now();
    drop(cache.start_background_prune(Duration::from_secs(3600)).unwrap());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_strategies_this_build_has_are_listed_and_selectable() {
    use modelcache::{ConfigKey, available_strategies};
    let listed: Vec<String> = available_strategies().into_iter().map(|i| i.name).collect();
    let expected: &[&str] =
        if cfg!(feature = "downloads") { &["network", "cache-only", "hybrid"] } else { &["cache-only", "hybrid"] };
    assert_eq!(listed, expected);
    let env = seeded();
    let hybrid = env.builder().set(ConfigKey::Strategy, "hybrid").offline(true).build().unwrap();
    let info = hybrid.acquisition_info();
    assert_eq!((info.name.as_str(), info.available), ("hybrid", true));
    assert_eq!(info.description, "tries cache-only in order until one succeeds", "offline: the cache alone");
    assert_eq!(hybrid.config().source(ConfigKey::Strategy), &modelcache::ConfigSource::Explicit);
}

#[cfg(not(feature = "downloads"))]
#[tokio::test]
async fn without_downloads_the_network_strategy_is_unavailable() {
    use modelcache::{AcquisitionStrategy, NetworkAcquisition};
    let env = seeded();
    let cache = env.builder().build().unwrap();
    assert_eq!(cache.strategy().name(), "cache-only", "selected because downloads are not built");
    assert!(!NetworkAcquisition.is_available());
    let net = env.builder().strategy(Arc::new(NetworkAcquisition)).build().unwrap();
    let err = net.get_model("org/a").await.unwrap_err();
    assert!(matches!(err, CacheError::StrategyUnavailable { .. }), "{err}");
    assert!(err.hint().contains("downloads"));
    let info = net.acquisition_info();
    assert!(!info.available && info.requirements.iter().any(|r| r.contains("downloads")), "{info:?}");
    // The hybrid assembles itself from what this build has: the cache alone.
    let hybrid = env.builder().set(modelcache::ConfigKey::Strategy, "hybrid").build().unwrap();
    assert_eq!(hybrid.acquisition_info().description, "tries cache-only in order until one succeeds");
    assert!(hybrid.get_model("org/a").await.unwrap().is_dir());
}

/// A verification reports its progress as one overall count: the distinct blobs it will
/// hash (a blob two files share once) and their bytes, then each blob as it is checked.
#[tokio::test]
async fn verify_reports_progress_blob_by_blob_under_one_plan() {
    #[derive(Debug, Default)]
    struct Recorded(std::sync::Mutex<Vec<String>>);
    impl modelcache::Progress for Recorded {
        fn event(&self, event: &modelcache::ProgressEvent<'_>) {
            let line = match *event {
                modelcache::ProgressEvent::Planned { label, files, cached, bytes } => {
                    format!("planned {label} {files} {cached} {bytes:?}")
                }
                modelcache::ProgressEvent::Advanced { label, bytes } => format!("advanced {label} {bytes}"),
                modelcache::ProgressEvent::Finished { label, bytes } => format!("finished {label} {bytes}"),
                _ => return,
            };
            self.0.lock().unwrap().push(line);
        }
    }
    let env = Env::new();
    env.seed(&model("org/a"), commit(1), &[("x.json", b"12345"), ("same.json", b"12345"), ("y.bin", b"abc")]);
    env.seed(&model("org/b"), commit(2), &[("z.txt", b"0123456789")]);
    let recorded = Arc::new(Recorded::default());
    let cache = env.builder().offline(true).progress(Arc::clone(&recorded) as Arc<dyn modelcache::Progress>).build().unwrap();
    let report = cache.verify(None, false).await.unwrap();
    assert_eq!(report.valid_files, 4, "{report:?}");
    let events = recorded.0.lock().unwrap().clone();
    assert_eq!(events[0], "planned verify 3 0 Some(18)", "3 distinct blobs, 5 + 3 + 10 bytes: {events:?}");
    let advanced: u64 = events.iter().filter_map(|e| e.strip_prefix("advanced verify ")).map(|b| b.parse::<u64>().unwrap()).sum();
    assert_eq!(advanced, 18, "{events:?}");
    assert_eq!(events.iter().filter(|e| e.starts_with("finished verify ")).count(), 3, "{events:?}");

    recorded.0.lock().unwrap().clear();
    let one = ModelRef::parse("org/a", RepoType::Model).unwrap();
    cache.verify(Some(&one), false).await.unwrap();
    assert_eq!(recorded.0.lock().unwrap()[0], "planned verify 2 0 Some(8)");
}
