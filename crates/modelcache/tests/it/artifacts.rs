//! URL artifacts beside Hub repositories: listed (URLs redacted), counted, named by name,
//! URL or id in remove, pin and verify, and downloaded again by a repair.

use std::io::Write;

use cache_core::Sha256;
use modelcache::{CacheError, ItemType, RepoType, Target};

use crate::Env;
use crate::hub;

/// `http://user:secret@127.0.0.1:<port>/…?sig=secret`: credentials a listing must not show.
fn secret_url(url: &str) -> String {
    format!("{}?sig=secret", url.replacen("http://", "http://user:secret@", 1))
}

#[tokio::test]
async fn artifacts_are_listed_counted_and_named_like_repositories() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    cache.get_model("org/other").await.unwrap();
    let vocab = hub.file("org/other", "main", "vocab.txt").unwrap();
    let url = secret_url(&vocab.url);
    let shown_url = modelcache::redact_url(&url);
    let a = cache.get_url_named(&url, None, "vocab-a.txt").await.unwrap();
    cache.get_url_named(&url, None, "vocab-b.txt").await.unwrap();

    let listed = cache.list().unwrap();
    let urls: Vec<_> = listed.iter().filter(|r| r.repo_type == ItemType::Url).collect();
    assert_eq!(urls.iter().map(|r| r.model_id.as_str()).collect::<Vec<_>>(), ["vocab-a.txt", "vocab-b.txt"]);
    let info = urls[0].artifact.as_ref().unwrap();
    assert_eq!((info.url.as_str(), info.path.as_path(), urls[0].files), (shown_url.as_str(), a.as_path(), 1));
    assert_eq!(info.sha256, Sha256::of(&vocab.content.to_vec()).to_hex());
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains("secret"), "credentials or query leaked: {json}");
    assert!(json.contains(r#""repo_type":"url""#), "{json}");

    let stats = cache.stats().unwrap();
    assert_eq!((stats.total_models, stats.total_artifacts, stats.models.len()), (1, 2, 3));
    assert!(!serde_json::to_string(&stats).unwrap().contains("secret"));
    let hub_bytes: u64 = listed.iter().filter(|r| r.artifact.is_none()).map(|r| r.size_bytes).sum();
    assert_eq!(stats.total_size_bytes, hub_bytes + vocab.size, "the two names share one blob, counted once");
    assert_eq!(stats.counters.downloads, 4, "two Hub files and two URL downloads: {:?}", stats.counters);

    // Named by name, by id, by the URL as shown; the URL alone names two of them.
    let Target::Artifact(by_name) = cache.resolve_target("vocab-a.txt", RepoType::Model).unwrap() else { panic!() };
    let Target::Artifact(by_id) = cache.resolve_target(&info.id, RepoType::Model).unwrap() else { panic!() };
    assert_eq!((by_name.as_ref(), by_id.as_ref()), (info, info));
    for ambiguous in [url.as_str(), shown_url.as_str()] {
        let err = cache.resolve_target(ambiguous, RepoType::Model).unwrap_err();
        let CacheError::Ambiguous { candidates, .. } = &err else { panic!("{err:?}") };
        assert_eq!(candidates.len(), 2, "{err}");
        assert_eq!(err.kind().exit_code(), 2);
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    assert!(matches!(cache.resolve_target("org/other", RepoType::Model).unwrap(), Target::Repo(_)));
    let err = cache.resolve_target("http://127.0.0.1:1/nothing", RepoType::Model).unwrap_err();
    assert!(matches!(err, CacheError::NotInCache { .. }), "{err:?}");

    // Pinned, it survives a prune to zero; removed, it is gone and its blob stays for the other.
    cache.pin_artifact(&by_name).unwrap();
    let mut policy = cache.config().config.eviction_policy();
    policy.max_size = Some(0);
    policy.in_use_grace = std::time::Duration::ZERO;
    let pruned = cache.prune(&policy).await.unwrap();
    assert!(a.exists(), "a pinned artifact is kept: {pruned:?}");
    assert!(pruned.evicted.iter().all(|e| !e.entry.contains("secret")), "{pruned:?}");
    let pinned: Vec<_> = cache.list().unwrap().into_iter().filter(|r| r.pinned).map(|r| r.model_id).collect();
    assert_eq!(pinned, ["vocab-a.txt"]);
    cache.unpin_artifact(&by_name).unwrap();
    let dry = cache.remove_artifact(&by_name, true).await.unwrap();
    assert_eq!((dry.entries, dry.bytes_freed), (1, 0), "the other name keeps the blob: {dry:?}");
    let removed = cache.remove_artifact(&by_name, false).await.unwrap();
    assert_eq!((removed.entries, removed.bytes_freed), (1, 0));
    assert!(!a.exists());
    let Target::Artifact(b) = cache.resolve_target(&url, RepoType::Model).unwrap() else { panic!() };
    assert_eq!(b.name, "vocab-b.txt", "the URL names one artifact now");
    let dry = cache.remove_artifact(&b, true).await.unwrap();
    assert_eq!((dry.entries, dry.bytes_freed), (1, vocab.size));
    let removed = cache.remove_artifact(&b, false).await.unwrap();
    assert_eq!((removed.entries, removed.bytes_freed), (1, vocab.size));
    assert!(cache.list().unwrap().iter().all(|r| r.repo_type != ItemType::Url));
}

#[tokio::test]
async fn a_repair_downloads_a_corrupted_artifact_again() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    let vocab = hub.file("org/other", "main", "vocab.txt").unwrap();
    let url = secret_url(&vocab.url);
    let sha = Sha256::of(&vocab.content.to_vec()).to_hex();
    let path = cache.get_url_named(&url, Some(&sha), "vocab.txt").await.unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all(b"XX").unwrap();
    drop(f);

    let Target::Artifact(a) = cache.resolve_target("vocab.txt", RepoType::Model).unwrap() else { panic!() };
    let found = cache.verify_artifact(&a, false).await.unwrap();
    assert_eq!((found.corrupted.len(), found.corrupted_models.as_slice()), (1, [modelcache::redact_url(&url)].as_slice()));
    let entry = &found.corrupted[0].entry;
    assert!(
        entry.starts_with(&modelcache::redact_url(&url)) && entry.ends_with("#name=vocab.txt") && !entry.contains("secret"),
        "{entry}"
    );

    let repaired = cache.verify(None, true).await.unwrap();
    assert_eq!(repaired.refetched.as_slice(), std::slice::from_ref(entry), "{repaired:?}");
    assert_eq!(std::fs::read(&path).unwrap(), vocab.content.to_vec(), "downloaded again, verified");
    assert!(cache.validate_integrity().await.unwrap().is_clean());
    assert_eq!(cache.stats().unwrap().total_size_bytes, vocab.size);

    // Offline, a repair removes it and says nothing was fetched.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"XX").unwrap();
    let offline = env.builder().set(modelcache::ConfigKey::Endpoint, hub.url()).offline(true).build().unwrap();
    let r = offline.verify(None, true).await.unwrap();
    assert_eq!((r.corrupted.len(), r.refetched.len()), (1, 0));
    assert!(!path.exists());
}

#[tokio::test]
async fn a_name_that_is_also_a_cached_repository_is_ambiguous() {
    let hub = hub::start().await;
    let env = Env::new();
    env.seed(&crate::model("gpt2"), crate::commit(1), &[("config.json", b"{}")]);
    let cache = env.manager(hub.url());
    let vocab = hub.file("org/other", "main", "vocab.txt").unwrap();
    cache.get_url_named(&vocab.url, None, "gpt2").await.unwrap();
    let err = cache.resolve_target("gpt2", RepoType::Model).unwrap_err();
    let CacheError::Ambiguous { candidates, .. } = &err else { panic!("{err:?}") };
    assert!(candidates[0].starts_with("gpt2 (") && candidates[1].contains("repository `gpt2`"), "{candidates:?}");
    assert!(err.hint().contains("models/ORG/NAME"), "{}", err.hint());
    let Target::Repo(r) = cache.resolve_target("models/gpt2", RepoType::Model).unwrap() else { panic!() };
    assert_eq!(r.repo.to_string(), "gpt2");
    let ls = cache.list().unwrap();
    assert_eq!(
        ls.iter().map(|r| (r.repo_type, r.model_id.as_str())).collect::<Vec<_>>(),
        [(ItemType::Model, "gpt2"), (ItemType::Url, "gpt2")]
    );
}
