//! Strategies: introspection, selection from configuration, cache-only errors, hybrid
//! fallback.

use std::sync::Arc;

use modelcache::{AcquisitionStrategy, CacheError, CacheOnlyAcquisition, ConfigKey, HybridAcquisition, NetworkAcquisition};

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
    assert!(hint.contains("HF_HUB_OFFLINE") && hint.contains("auto_download"), "{hint}");
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
