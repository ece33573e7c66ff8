//! What a caller can observe: a hit reports `FromCache` (a download reports `Finished`),
//! and the counters behind `stats()` agree with what happened (histogram counts with
//! hits and downloads, evictions by reason).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modelcache::{ConfigKey, EvictionPolicy, ModelRef, ProgressEvent, RepoType};

use crate::Env;
use crate::hub;

#[tokio::test]
async fn a_hit_reports_from_cache_and_the_counters_agree_with_the_workload() {
    let hub = hub::start().await;
    let env = Env::new();
    let events = Arc::new(Mutex::new(Vec::<(String, String, Option<PathBuf>)>::new()));
    let sink = Arc::clone(&events);
    let cache = env
        .builder()
        .set(ConfigKey::Endpoint, hub.url())
        .progress(Arc::new(move |e: &ProgressEvent<'_>| {
            let seen = match e {
                ProgressEvent::Finished { label, .. } => ("finished", (*label).to_owned(), None),
                ProgressEvent::FromCache { label, path } => ("from_cache", (*label).to_owned(), Some(path.to_path_buf())),
                _ => return,
            };
            sink.lock().unwrap().push((seen.0.to_owned(), seen.1, seen.2));
        }))
        .build()
        .unwrap();
    let take = || std::mem::take(&mut *events.lock().unwrap());

    let path = cache.get_file("org/model", "main", "config.json").await.unwrap();
    assert_eq!(take(), [("finished".to_owned(), "config.json".to_owned(), None)], "a download is not a hit");
    for _ in 0..2 {
        assert_eq!(cache.get_file("org/model", "main", "config.json").await.unwrap(), path);
        assert_eq!(take(), [("from_cache".to_owned(), "config.json".to_owned(), Some(path.clone()))]);
    }
    let model = ModelRef::parse("org/model", RepoType::Model).unwrap();
    let snapshot = cache.get_snapshot(&model, &[], &[]).await.unwrap();
    assert!(!snapshot.from_cache);
    let finished: Vec<String> = take().into_iter().map(|(kind, label, _)| format!("{kind}:{label}")).collect();
    assert!(finished.iter().all(|f| f.starts_with("finished:")) && finished.len() == 2, "{finished:?}");
    cache.get_snapshot(&model, &[], &[]).await.unwrap();
    assert_eq!(take(), [("from_cache".to_owned(), "org/model".to_owned(), Some(snapshot.path.clone()))]);

    let c = cache.stats().unwrap().counters;
    assert_eq!(c.downloads, 3);
    assert_eq!(c.histograms.download_seconds.count(), c.downloads, "one duration per download");
    assert_eq!(c.histograms.download_bytes_per_second.count(), c.downloads, "one throughput per download");
    assert!(c.hits >= 3, "{c:?}");
    assert_eq!(c.histograms.hit_seconds.count(), c.hits, "one latency per hit, flushed or not");
    assert_eq!((c.evictions.total(), c.lock_waits), (0, 0));

    let everything = EvictionPolicy { max_size: Some(0), in_use_grace: Duration::ZERO, ..EvictionPolicy::default() };
    let pruned = cache.prune(&everything).await.unwrap();
    assert_eq!(pruned.evicted.len(), 3, "{pruned:?}");
    let again = env.builder().set(ConfigKey::Endpoint, hub.url()).build().unwrap();
    let c = again.stats().unwrap().counters;
    assert_eq!((c.evictions.over_size, c.evictions.expired), (3, 0), "counted in the index, seen by another manager");
    assert_eq!(c.histograms.hit_seconds.count(), c.hits);
}
