//! Facade operations the CLI relies on: filtered snapshots, URLs, progress events,
//! incomplete downloads in listings and in prune (auto-prune: `holds`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::Sha256;
use modelcache::{AcquireRequest, ConfigKey, ModelRef, ProgressEvent, PruneOptions, RepoType};

use crate::hub::{self, WEIGHTS};
use crate::{Env, files_under};

#[tokio::test]
async fn filtered_snapshots_urls_and_progress_events() {
    let hub = hub::start().await;
    let env = Env::new();
    let events = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&events);
    let cache = env
        .builder()
        .set(ConfigKey::Endpoint, hub.url())
        .progress(Arc::new(move |e: &ProgressEvent<'_>| {
            if let ProgressEvent::Finished { label, bytes } = e {
                sink.lock().unwrap().push(format!("{label}:{bytes}"));
            }
        }))
        .build()
        .unwrap();
    let r = ModelRef::parse("org/model", RepoType::Model).unwrap();
    let got = cache.get_snapshot(&r, &["*.json".to_owned()], &["tokenizer*".to_owned()]).await.unwrap();
    assert_eq!(files_under(&got.path), ["config.json"]);
    assert_eq!((got.files_downloaded, got.from_cache), (1, false));
    assert!(got.commit.is_some());
    let full = cache.get_snapshot(&r, &[], &[]).await.unwrap();
    assert_eq!(full.files_downloaded, 2);
    let mut seen = events.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["config.json:18".to_owned(), format!("model.safetensors:{WEIGHTS}"), "tokenizer.json:2000".to_owned()]);
    let err = cache.get_snapshot(&r, &["[".to_owned()], &[]).await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 2, "{err}");

    let info = hub.file("org/other", "main", "vocab.txt").unwrap();
    let sha = Sha256::of(&info.content.to_vec()).to_hex();
    let path = cache.get_url(&info.url, Some(&sha)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), info.content.to_vec());
    assert!(path.starts_with(cache.home_dir()));
    let err = cache.get_url(&info.url, Some(&"0".repeat(64))).await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 5, "{err}");
    let err = cache.get_url(&info.url, Some("xyz")).await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 2, "{err}");
    let again = cache.fetch(&AcquireRequest::Url { url: info.url.clone(), sha256: None, name: None }).await.unwrap();
    assert!(!again.from_cache, "a key without digest is another artifact");

    let named = cache.get_url_named(&info.url, Some(&sha), "vocabulary.txt").await.unwrap();
    assert_eq!(named.file_name().unwrap(), "vocabulary.txt");
    assert_eq!(std::fs::read(&named).unwrap(), info.content.to_vec());
    assert_ne!(named.parent(), path.parent(), "the name is part of the artifact's identity");
    assert_eq!(std::fs::canonicalize(&named).unwrap(), std::fs::canonicalize(&path).unwrap(), "one blob for both");
    let hit =
        cache.fetch(&AcquireRequest::Url { url: info.url.clone(), sha256: None, name: Some("vocabulary.txt".into()) }).await;
    assert!(!hit.unwrap().from_cache, "a different key (no digest) under the same name");
    let offline = env.builder().set(ConfigKey::Endpoint, hub.url()).offline(true).build().unwrap();
    assert_eq!(offline.get_url_named(&info.url, Some(&sha), "vocabulary.txt").await.unwrap(), named);
    for bad in ["../x", ".hidden", "a b", ""] {
        let err = cache.get_url_named(&info.url, None, bad).await.unwrap_err();
        assert_eq!(err.kind().exit_code(), 2, "{bad:?}: {err}");
    }
}

#[tokio::test]
async fn incomplete_downloads_are_listed_and_stale_ones_pruned() {
    let hub = hub::start().await;
    hub.drop_after(50_000, 1);
    let env = Env::new();
    let cache = env.manager(hub.url());
    let err = cache.get_file("org/model", "main", "model.safetensors").await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 3, "{err}");
    let listed = cache.list().unwrap();
    let incomplete = &listed[0].incomplete;
    assert_eq!(incomplete.len(), 1, "{listed:?}");
    assert!(incomplete[0].size_bytes > 0 && incomplete[0].size_bytes < WEIGHTS);
    let json = serde_json::to_value(&listed).unwrap();
    assert!(json[0]["incomplete"][0]["etag"].is_string(), "{json}");

    let dry = cache.prune_with(&PruneOptions { dry_run: true, ..PruneOptions::default() }).await.unwrap();
    assert_eq!(dry.stale_incomplete_removed, 0, "still within the grace period");
    let mut policy = cache.config().config.eviction_policy();
    policy.in_use_grace = Duration::ZERO;
    std::thread::sleep(Duration::from_millis(5));
    let pruned = cache.prune(&policy).await.unwrap();
    assert_eq!(pruned.stale_incomplete_removed, 1, "{pruned:?}");
    assert!(cache.list().unwrap().iter().all(|r| r.incomplete.is_empty()));

    // The next attempt downloads it whole.
    let path = cache.get_file("org/model", "main", "model.safetensors").await.unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), WEIGHTS);
}

/// Failed requests that needed a download are counted by cause, survive the process, and
/// give the success rate; misses while offline and invalid input are not failures.
#[tokio::test]
async fn download_failures_are_counted_by_cause() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    hub.fail_next(500, 1, None);
    let err = cache.get_file("org/other", "main", "config.json").await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 3, "{err}");
    let err = cache.get_file("org/nothing", "main", "config.json").await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 3, "{err}");
    hub.corrupt_next(2); // a corrupt body is downloaded again once before it is an error
    let err = cache.get_file("org/model", "main", "model.safetensors").await.unwrap_err();
    assert_eq!(err.kind().exit_code(), 5, "{err}");
    cache.get_file("org/other", "main", "config.json").await.unwrap();
    let err = cache.get_snapshot(&ModelRef::parse("org/model", RepoType::Model).unwrap(), &["[".to_owned()], &[]).await;
    assert_eq!(err.unwrap_err().kind().exit_code(), 2);
    let offline = env.builder().offline(true).build().unwrap();
    assert_eq!(offline.get_model("org/third").await.unwrap_err().kind().exit_code(), 4);
    drop((cache, offline));

    let c = env.builder().build().unwrap().stats().unwrap().counters;
    assert_eq!((c.failures.remote, c.failures.integrity, c.failures.disk_full, c.failures.other), (2, 1, 0, 0));
    assert_eq!(c.downloads, 1);
    assert_eq!(c.download_success_rate, Some(0.25));
    let json = serde_json::to_value(c).unwrap();
    assert_eq!(json["failures"]["remote"], 2, "{json}");
    assert_eq!(json["download_success_rate"], 0.25, "{json}");
}

/// The contents of the `last-cleanup` file under the home, if there is one.
fn cleanup_stamp(env: &Env) -> Option<(std::path::PathBuf, u64)> {
    let rel = files_under(&env.home_dir()).into_iter().find(|f| f.ends_with("last-cleanup"))?;
    let path = env.home_dir().join(rel);
    let secs = std::fs::read_to_string(&path).unwrap().trim().parse().unwrap();
    Some((path, secs))
}

#[tokio::test]
async fn the_periodic_cleanup_runs_after_downloads_at_most_once_per_interval() {
    let hub = hub::start().await;
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();

    // Without a limit there is nothing to apply: no run, no stamp.
    let plain = Env::new();
    plain.manager(hub.url()).get_file("org/model", "main", "config.json").await.unwrap();
    assert_eq!(cleanup_stamp(&plain), None);

    let env = Env::new();
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::MaxAge, "30d").build().unwrap();
    let before = now();
    cache.get_file("org/model", "main", "config.json").await.unwrap();
    let (stamp, ran_at) = cleanup_stamp(&env).expect("an age limit alone starts the cleanup after a download");
    assert!(ran_at >= before, "{ran_at} < {before}");
    assert!(!stamp.starts_with(env.hub_dir()), "the stamp lives in the home, not in huggingface_hub's layout");

    // Ran a minute ago: the next download leaves it alone.
    let recent = now() - 60;
    std::fs::write(&stamp, format!("{recent}\n")).unwrap();
    cache.get_file("org/model", "main", "tokenizer.json").await.unwrap();
    assert_eq!(cleanup_stamp(&env).unwrap().1, recent, "not due within the interval");
    // A whole interval ago (the default is a day): it runs again.
    std::fs::write(&stamp, format!("{}\n", now() - 86_400)).unwrap();
    cache.get_file("org/other", "main", "config.json").await.unwrap();
    assert!(cleanup_stamp(&env).unwrap().1 >= recent + 60, "due again after the interval");
    // A shorter interval.
    let c = env
        .builder()
        .set(ConfigKey::Endpoint, hub.url())
        .set(ConfigKey::MaxAge, "30d")
        .set(ConfigKey::CleanupInterval, "1h")
        .build()
        .unwrap();
    assert_eq!(c.config().config.cleanup_interval, Some(Duration::from_secs(3600)));
    std::fs::write(&stamp, format!("{}\n", now() - 3600)).unwrap();
    c.get_file("org/other", "main", "vocab.txt").await.unwrap();
    assert!(cleanup_stamp(&env).unwrap().1 >= recent + 60);
}
