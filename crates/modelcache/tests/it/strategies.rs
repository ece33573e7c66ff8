//! Strategies: introspection, selection from configuration, cache-only errors, hybrid
//! fallback.

use std::sync::Arc;

use modelcache::{
    AcquisitionStrategy, CacheError, CacheOnlyAcquisition, ConfigKey, ErrorKind, HybridAcquisition, NetworkAcquisition,
    available_strategies,
};

use crate::hub;
use crate::{Env, commit, model};

#[test]
fn strategies_describe_themselves() {
    let net = NetworkAcquisition;
    assert!(net.is_available());
    assert!(net.requirements().iter().any(|r| r.contains("downloads")));
    assert!(CacheOnlyAcquisition.description().contains("never touches the network"));
    let hybrid = HybridAcquisition::new(vec![Arc::new(CacheOnlyAcquisition), Arc::new(NetworkAcquisition)]);
    assert!(hybrid.is_available());
    assert_eq!(hybrid.description(), "tries cache-only, then network in order until one succeeds");
    assert!(!HybridAcquisition::new(vec![]).is_available());
    // What a repair may fetch again depends on this, not on names.
    assert!(net.downloads() && hybrid.downloads() && !CacheOnlyAcquisition.downloads());
    assert!(!HybridAcquisition::new(vec![Arc::new(CacheOnlyAcquisition)]).downloads());
}

#[test]
fn the_hybrid_assembles_itself_and_unites_its_requirements() {
    let hybrid = HybridAcquisition::default();
    let names: Vec<&str> = hybrid.strategies().iter().map(|s| s.name()).collect();
    assert_eq!(names, ["network", "cache-only"]);
    let offline = HybridAcquisition::assemble(false);
    assert_eq!(offline.strategies().iter().map(|s| s.name()).collect::<Vec<_>>(), ["cache-only"]);
    assert!(!offline.downloads());
    let mut union: Vec<String> = NetworkAcquisition.requirements();
    union.extend(CacheOnlyAcquisition.requirements());
    union.sort();
    let reqs = hybrid.requirements();
    assert_eq!(reqs, union, "sorted union");
    // The same strategy twice adds nothing.
    let twice = HybridAcquisition::new(vec![Arc::new(CacheOnlyAcquisition), Arc::new(CacheOnlyAcquisition)]);
    assert_eq!(twice.requirements(), CacheOnlyAcquisition.requirements());
    let info = hybrid.acquisition_info();
    assert_eq!((info.name.as_str(), info.available), ("hybrid", true));
    assert_eq!(info.description, "tries network, then cache-only in order until one succeeds");
    assert_eq!(info.requirements, reqs);
    let listed: Vec<String> = available_strategies().into_iter().map(|i| i.name).collect();
    assert_eq!(listed, ["network", "cache-only", "hybrid"]);
}

#[tokio::test]
async fn the_configuration_selects_the_strategy() {
    let hub = hub::start().await;
    let env = Env::new();
    assert_eq!(env.manager(hub.url()).strategy().name(), "network");
    let off = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::AutoDownload, "false").build().unwrap();
    assert_eq!(off.strategy().name(), "cache-only");
    let env = env.var("MODELCACHE_OFFLINE", "true");
    let offline = env.manager(hub.url());
    assert_eq!(offline.strategy().name(), "cache-only");
    let err = offline.get_file("org/model", "main", "config.json").await.unwrap_err();
    assert!(matches!(err, CacheError::DownloadFailed { offline: true, .. }), "{err}");
    assert_eq!(hub.stats().total_requests(), 0);
    // An explicit setting wins over the environment.
    let online = env.builder().set(ConfigKey::Endpoint, hub.url()).offline(false).build().unwrap();
    assert_eq!(online.strategy().name(), "network");
    online.get_file("org/model", "main", "config.json").await.unwrap();
    // `strategy = hybrid` from the environment: network first, unless offline.
    let hybrid = Env::new().var("MODELCACHE_STRATEGY", "hybrid");
    let m = hybrid.manager(hub.url());
    let info = m.acquisition_info();
    assert_eq!(
        (info.name.as_str(), info.description.as_str()),
        ("hybrid", "tries network, then cache-only in order until one succeeds")
    );
    let m = hybrid.builder().set(ConfigKey::Endpoint, hub.url()).offline(true).build().unwrap();
    assert_eq!(m.acquisition_info().description, "tries cache-only in order until one succeeds");
    let explicit = env.builder().set(ConfigKey::Strategy, "network").build().unwrap();
    assert_eq!(explicit.strategy().name(), "network", "an explicit strategy wins over offline");
    let err = env.builder().set(ConfigKey::Strategy, "sometimes").build().unwrap_err();
    assert!(err.to_string().contains("strategy") && err.hint().contains("hybrid"), "{err}: {}", err.hint());
}

#[tokio::test]
async fn cache_only_never_connects_and_says_where_files_go() {
    let hub = hub::start().await;
    let env = Env::new();
    env.seed(&model("org/seeded"), commit(1), &[("config.json", b"{}")]);
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).strategy(Arc::new(CacheOnlyAcquisition)).build().unwrap();
    assert!(cache.get_file("org/seeded", "main", "config.json").await.unwrap().is_file());
    let err = cache.get_model("org/model").await.unwrap_err();
    let hint = err.hint();
    assert!(hint.contains("models--org--model/snapshots"), "{hint}");
    assert!(hint.starts_with("choose a strategy that downloads, such as `network`, to fetch it"), "{hint}");
    assert!(err.to_string().contains("the `cache-only` strategy was chosen, which never downloads"), "{err}");
    assert_eq!(err.kind().exit_code(), 4);
    assert_eq!(hub.stats().total_requests(), 0);
}

#[tokio::test]
async fn hybrid_falls_back_in_order() {
    let hub = hub::start().await;
    let env = Env::new();
    env.seed(&model("org/seeded"), commit(1), &[("config.json", b"{}")]);
    let hybrid = HybridAcquisition::new(vec![Arc::new(CacheOnlyAcquisition), Arc::new(NetworkAcquisition)]);
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).strategy(Arc::new(hybrid)).build().unwrap();
    cache.get_file("org/seeded", "main", "config.json").await.unwrap();
    assert_eq!(hub.stats().total_requests(), 0, "the cache answered first");
    cache.get_file("org/model", "main", "config.json").await.unwrap();
    assert!(hub.stats().total_requests() > 0, "then the network");

    let down = HybridAcquisition::new(vec![Arc::new(NetworkAcquisition), Arc::new(CacheOnlyAcquisition)]);
    let cache = env.builder().set(ConfigKey::Endpoint, hub::dead()).strategy(Arc::new(down)).build().unwrap();
    let err = cache.get_file("org/nothing", "main", "config.json").await.unwrap_err();
    assert!(
        matches!(err, CacheError::DownloadFailed { offline: false, .. }),
        "the network's error is the informative one: {err}"
    );
}

#[tokio::test]
async fn hybrid_serves_from_the_cache_after_the_network_fails() {
    let hub = hub::start().await;
    let env = Env::new();
    // Cached here, unknown to the Hub (removed there, or another Hub's copy).
    env.seed(&model("org/seeded"), commit(1), &[("config.json", b"{\"cached\": true}")]);
    let network_only = env.builder().set(ConfigKey::Endpoint, hub.url()).strategy(Arc::new(NetworkAcquisition)).build().unwrap();
    let err = network_only.get_file("org/seeded", "main", "config.json").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Remote, "the network alone fails: {err}");
    hub.reset_stats();

    let cache =
        env.builder().set(ConfigKey::Endpoint, hub.url()).strategy(Arc::new(HybridAcquisition::default())).build().unwrap();
    let path = cache.get_file("org/seeded", "main", "config.json").await.unwrap();
    assert!(hub.stats().total_requests() > 0, "the network was asked first");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"cached\": true}", "then the cache answered");
}

#[tokio::test]
async fn lock_stall_timeout_from_the_configuration_reaches_the_store() {
    let hub = hub::start().await;
    let env = Env::new();
    let info = hub.file("org/model", "main", "config.json").unwrap();
    // Another holder of the blob's lock that makes no progress.
    let holder = cache_store::Store::open(cache_store::StoreConfig::new(
        camino::Utf8PathBuf::from_path_buf(env.hub_dir()).unwrap(),
        camino::Utf8PathBuf::from_path_buf(env.home_dir()).unwrap(),
    ))
    .unwrap();
    let _lock = holder.lock_blob(&model("org/model"), &info.etag, &mut |_| {}).unwrap();
    let env = env.var("MODELCACHE_LOCK_STALL_TIMEOUT", "1s");
    let cache = env.manager(hub.url());
    assert_eq!(
        cache.config().source(ConfigKey::LockStallTimeout),
        &modelcache::ConfigSource::Env("MODELCACHE_LOCK_STALL_TIMEOUT".into())
    );
    let err = cache.get_file("org/model", "main", "config.json").await.unwrap_err();
    assert!(err.hint().contains("lock_stall_timeout"), "{err}: {}", err.hint());
}
