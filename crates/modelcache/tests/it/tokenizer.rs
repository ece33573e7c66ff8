//! The tokenizer helper: preference order, hit, miss, and after a clear.

use crate::{Env, commit, model};

#[tokio::test]
async fn finds_the_preferred_cached_tokenizer_and_forgets_it_after_clear() {
    let env = Env::new();
    env.seed(&model("org/both"), commit(1), &[("vocab.txt", b"a\n"), ("tokenizer.json", b"{}")]);
    env.seed(&model("org/sp"), commit(2), &[("tokenizer.model", b"sp"), ("vocab.txt", b"b\n")]);
    let cache = env.builder().build().unwrap();
    let found = cache.find_cached_tokenizer("org/both").unwrap().unwrap();
    assert!(found.ends_with("tokenizer.json"), "{}", found.display());
    assert!(cache.find_cached_tokenizer("org/sp").unwrap().unwrap().ends_with("tokenizer.model"));
    assert_eq!(cache.find_cached_tokenizer("org/missing").unwrap(), None);
    assert!(cache.find_cached_tokenizer("../bad").is_err());
    cache.clear_cache().await.unwrap();
    assert_eq!(cache.find_cached_tokenizer("org/both").unwrap(), None);
}

#[cfg(feature = "downloads")]
#[tokio::test]
async fn get_tokenizer_downloads_the_first_file_the_repo_has() {
    let hub = crate::hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    let other = cache.get_tokenizer("org/other").await.unwrap();
    assert!(other.ends_with("vocab.txt"), "{}", other.display());
    assert!(cache.get_tokenizer("org/third").await.unwrap().ends_with("tokenizer.model"));
    assert!(cache.find_cached_tokenizer("org/third").unwrap().unwrap().ends_with("tokenizer.model"));
    hub.reset_stats();
    let err = cache.get_tokenizer("org/nope").await.unwrap_err();
    assert!(matches!(err, modelcache::CacheError::ModelNotFound { missing: modelcache::Missing::Repo, .. }), "{err:?}");
    assert_eq!(hub.stats().total_requests(), 1, "a missing repo ends the search at the first request");
}
