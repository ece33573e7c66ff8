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

/// The names of the files under a directory, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    crate::files_under(dir)
}

#[tokio::test]
async fn a_cached_tokenizer_family_is_served_and_its_vocab_checked_cache_only() {
    let env = Env::new();
    env.seed(
        &model("org/wp"),
        commit(3),
        &[("vocab.txt", b"[PAD]\n[UNK]\nthe\n"), ("special_tokens_map.json", b"{}"), ("config.json", b"{}")],
    );
    let cache = env.builder().strategy(std::sync::Arc::new(modelcache::CacheOnlyAcquisition)).build().unwrap();
    let t = cache.get_tokenizer_files("org/wp", Some(3)).await.unwrap();
    assert_eq!(t.main, [t.dir.join("vocab.txt")]);
    assert_eq!(t.extras, [t.dir.join("special_tokens_map.json")]);
    assert_eq!(t.vocab_size, Some(3));
    let err = cache.get_tokenizer_files("org/wp", Some(30_522)).await.unwrap_err();
    assert!(matches!(err, modelcache::CacheError::VocabMismatch { expected: 30_522, actual: 3, .. }), "{err:?}");
    assert_eq!(err.kind(), modelcache::ErrorKind::Integrity);
    assert!(err.to_string().contains("vocab.txt") && err.hint().contains("vocab_size"), "{err}: {}", err.hint());
    // Clearing one model's tokenizer leaves its other files and other models alone.
    env.seed(&model("org/both"), commit(1), &[("vocab.txt", b"a\n"), ("tokenizer.json", b"{}")]);
    let removed = cache.clear_tokenizer_cache(Some("org/wp")).await.unwrap();
    assert_eq!(removed.entries, 2);
    assert_eq!(names(&t.dir), ["config.json"]);
    assert!(cache.find_cached_tokenizer("org/both").unwrap().is_some());
    let again = cache.clear_tokenizer_cache(Some("org/wp")).await.unwrap_err();
    assert!(matches!(again, modelcache::CacheError::NotInCache { .. }), "{again}");
    cache.clear_tokenizer_cache(None).await.unwrap();
    assert_eq!(cache.find_cached_tokenizer("org/both").unwrap(), None, "`None` clears everything");
}

#[cfg(feature = "downloads")]
#[tokio::test]
async fn get_tokenizer_files_fetches_one_whole_family_and_the_extras() {
    use cache_testkit::{RepoSpec, TestHub};
    let hub = TestHub::start([
        RepoSpec::model("org/fast")
            .file("tokenizer.json", r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}}}"#)
            .file("tokenizer_config.json", "{}")
            .file("special_tokens_map.json", "{}")
            .file("vocab.json", r#"{"a": 0}"#)
            .file("merges.txt", "#version: 0.2\n")
            .file("model.bin", "weights"),
        RepoSpec::model("org/bpe")
            .file("vocab.json", r#"{"a": 0, "b": 1}"#)
            .file("merges.txt", "#version: 0.2\na b\n")
            .file("tokenizer_config.json", "{}")
            .file("vocab.txt", "stale\n")
            .file("config.json", "{}"),
        RepoSpec::model("org/none").file("config.json", "{}"),
    ])
    .await;
    let env = Env::new();
    let cache = env.manager(hub.url());

    let fast = cache.get_tokenizer_files("org/fast", Some(3)).await.unwrap();
    assert_eq!(fast.main, [fast.dir.join("tokenizer.json")]);
    assert_eq!(fast.extras, [fast.dir.join("tokenizer_config.json"), fast.dir.join("special_tokens_map.json")]);
    assert_eq!(names(&fast.dir), ["special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"], "no slow files");
    let err = cache.get_tokenizer_files("org/fast", Some(4)).await.unwrap_err();
    assert!(matches!(err, modelcache::CacheError::VocabMismatch { expected: 4, actual: 3, .. }), "{err:?}");

    let bpe = cache.get_tokenizer_files("org/bpe", Some(2)).await.unwrap();
    assert_eq!(bpe.main, [bpe.dir.join("vocab.json"), bpe.dir.join("merges.txt")], "the preferred family, whole");
    assert_eq!(bpe.extras, [bpe.dir.join("tokenizer_config.json")]);
    assert_eq!(names(&bpe.dir), ["merges.txt", "tokenizer_config.json", "vocab.json"], "not the WordPiece family too");

    let err = cache.get_tokenizer_files("org/none", None).await.unwrap_err();
    assert!(matches!(err, modelcache::CacheError::ModelNotFound { missing: modelcache::Missing::File, .. }), "{err:?}");

    cache.get_file("org/bpe", "main", "config.json").await.unwrap();
    cache.clear_tokenizer_cache(Some("org/bpe")).await.unwrap();
    assert_eq!(names(&bpe.dir), ["config.json"], "only the tokenizer went");
    assert!(fast.main[0].is_file(), "another model's tokenizer stays");
}
