//! Freshness: commits never revalidate, branches revalidate with one request unless within
//! the window, an unreachable Hub falls back on the cached ref, offline answers from the
//! cache only.

use std::time::{Duration, SystemTime};

use cache_core::Revision;
use cache_hf::Error;
use cache_testkit::{Route, TestHub};

use crate::{Env, dead_endpoint, hub, model, observer, path, rev, spec};

#[tokio::test]
async fn a_branch_revalidates_with_one_head_and_sees_new_commits() {
    let hub = hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let repo = model("org/model");
    let first = cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    hub.reset_stats();
    let again = cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    assert!(again.from_cache);
    let s = hub.stats();
    assert_eq!((s.count(Route::ResolveHead), s.total_requests()), (1, 1), "exactly one HEAD, no body");

    hub.put_repo(spec().file("config.json", r#"{"hidden_size": 16}"#).commit());
    let newer = cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    assert_ne!(newer.commit, first.commit);
    assert!(!newer.from_cache);
    assert_eq!(std::fs::read_to_string(&newer.path).unwrap(), r#"{"hidden_size": 16}"#);
    assert_eq!(env.store.resolve(&repo, &rev("main")).unwrap(), Some(newer.commit));
    assert_eq!(std::fs::read_to_string(&first.path).unwrap(), r#"{"hidden_size": 8}"#, "the old snapshot stays");
}

#[tokio::test]
async fn within_the_window_a_branch_is_trusted_and_after_it_revalidated() {
    let hub = hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |c| c.revalidate_after = Duration::from_secs(3600));
    let repo = model("org/model");
    cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    hub.reset_stats();
    assert!(cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap().from_cache);
    assert_eq!(hub.stats().total_requests(), 0, "inside the window");

    // Age the ref beyond the window: the next lookup asks once and refreshes the ref.
    let ref_file = env.hub_dir().join("models--org--model/refs/main");
    let old = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&ref_file).unwrap().set_modified(old).unwrap();
    assert!(cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap().from_cache);
    assert_eq!(hub.stats().count(Route::ResolveHead), 1);
    assert!(std::fs::metadata(&ref_file).unwrap().modified().unwrap() > old, "revalidation refreshed the ref");
    cache.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    assert_eq!(hub.stats().count(Route::ResolveHead), 1, "trusted again");
}

#[tokio::test]
async fn an_unreachable_hub_falls_back_on_the_cached_ref() {
    let hub = hub().await;
    let env = Env::new();
    let repo = model("org/model");
    let online = env.cache(hub.url(), |_| {});
    let cached = online.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    online.snapshot(&repo, &rev("main"), &cache_hf::FileFilter::all(), &observer()).await.unwrap();

    let down = env.cache(&dead_endpoint(), |_| {});
    let got = down.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    assert_eq!((got.path, got.from_cache), (cached.path, true));
    let snap = down.snapshot(&repo, &rev("main"), &cache_hf::FileFilter::all(), &observer()).await.unwrap();
    assert_eq!(snap.files, 3);

    let err = down.get_file(&model("org/other"), &rev("main"), &path("config.json"), &observer()).await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.hint().unwrap().contains("network"), "{:?}", err.hint());
    drop(hub);
}

#[tokio::test]
async fn offline_answers_from_the_cache_and_never_connects() {
    let hub = hub().await;
    let env = Env::new();
    let repo = model("org/model");
    env.cache(hub.url(), |_| {}).get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap();
    hub.reset_stats();
    let offline = env.cache(hub.url(), |c| c.offline = true);
    let before = offline.store().stats().unwrap().counters;
    assert!(offline.get_file(&repo, &rev("main"), &path("config.json"), &observer()).await.unwrap().from_cache);
    let err = offline.get_file(&repo, &rev("main"), &path("tokenizer.json"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::NotCached { .. }), "{err}");
    assert!(err.hint().unwrap().contains("HF_HUB_OFFLINE"));
    let commit = offline.store().resolve(&repo, &rev("main")).unwrap().unwrap();
    let err = offline.get_file(&repo, &Revision::from(commit), &path("tokenizer.json"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::NotCached { .. }), "{err}");
    offline.store().flush().unwrap();
    let after = offline.store().stats().unwrap().counters;
    assert_eq!((after.hits - before.hits, after.misses - before.misses), (1, 2), "one miss per request, at a branch or a commit");
    assert_eq!(hub.stats().total_requests(), 0);
    assert!(
        !env.hub_dir()
            .join("models--org--model/blobs")
            .read_dir()
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".incomplete") })
    );
}

#[tokio::test]
async fn a_missing_file_is_remembered_and_answered_offline() {
    let hub = hub().await;
    let env = Env::new();
    let repo = model("org/model");
    let online = env.cache(hub.url(), |_| {});
    let err = online.get_file(&repo, &rev("main"), &path("nope.bin"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::EntryNotFound { cached: false, .. }), "{err}");
    let commit = hub.file("org/model", "main", "config.json").unwrap().commit;
    assert!(env.hub_dir().join(format!("models--org--model/.no_exist/{commit}/nope.bin")).is_file());

    hub.reset_stats();
    let offline = env.cache(hub.url(), |c| c.offline = true);
    let err = offline.get_file(&repo, &rev("main"), &path("nope.bin"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::EntryNotFound { cached: true, .. }), "{err}");
    assert!(err.to_string().contains("not in `org/model`"), "{err}");
    let err = online.get_file(&repo, &commit.into(), &path("nope.bin"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::EntryNotFound { cached: true, .. }), "a commit is answered from the marker: {err}");
    assert_eq!(hub.stats().total_requests(), 0);
    drop::<TestHub>(hub);
}
