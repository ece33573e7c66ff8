//! `get_file`: the download protocol, hits without requests, datasets, tokens, artifacts,
//! corruption on the hit path.

use std::io::Write;

use cache_core::{Repo, RepoType, Revision, Sha256};
use cache_hf::Error;
use cache_store::ArtifactKey;
use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{Env, LFS_SIZE, hub, model, observer, path, rev};

#[tokio::test]
async fn a_miss_downloads_verifies_and_records_then_a_commit_hit_sends_nothing() {
    let hub = hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let repo = model("org/model");
    let info = hub.file("org/model", "main", "model.safetensors").unwrap();

    let got = cache.get_file(&repo, &rev("main"), &path("model.safetensors"), &observer()).await.unwrap();
    assert!(!got.from_cache);
    assert_eq!(got.commit, info.commit);
    assert_eq!(got.bytes_downloaded, LFS_SIZE);
    assert_eq!(std::fs::read(&got.path).unwrap(), info.content.to_vec());
    assert!(std::fs::symlink_metadata(&got.path).unwrap().file_type().is_symlink());
    assert_eq!(env.store.resolve(&repo, &rev("main")).unwrap(), Some(info.commit), "the ref is recorded");
    assert!(env.hub_dir().join(format!("models--org--model/blobs/{}", info.etag)).is_file());
    let s = hub.stats();
    assert_eq!((s.count(Route::ResolveHead), s.count(Route::CdnGet)), (1, 1));

    hub.reset_stats();
    let again = cache.get_file(&repo, &Revision::from(info.commit), &path("model.safetensors"), &observer()).await.unwrap();
    assert!(again.from_cache);
    assert_eq!(again.path, got.path);
    assert_eq!(hub.stats().total_requests(), 0, "a cached commit never touches the network");
    assert_eq!(env.store.stats().unwrap().counters.downloads, 1);
}

#[tokio::test]
async fn a_blob_shared_by_two_paths_is_downloaded_once() {
    let same = Content::generated(5000, 3);
    let hub = TestHub::start([RepoSpec::model("org/dup").file("a.bin", same.clone()).file("b/a.bin", same)]).await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let repo = model("org/dup");
    cache.get_file(&repo, &rev("main"), &path("a.bin"), &observer()).await.unwrap();
    let b = cache.get_file(&repo, &rev("main"), &path("b/a.bin"), &observer()).await.unwrap();
    assert_eq!(b.bytes_downloaded, 0, "linked to the existing blob");
    assert_eq!(hub.stats().count(Route::ResolveGet), 1);
}

#[tokio::test]
async fn datasets_and_spaces_use_their_own_urls_and_folders() {
    let hub = TestHub::start([
        RepoSpec::dataset("org/data").file("train.csv", "a,b\n1,2\n"),
        RepoSpec::space("org/app").file("app.py", "print(1)"),
    ])
    .await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let data = Repo::new(RepoType::Dataset, "org/data".parse().unwrap());
    let got = cache.get_file(&data, &rev("main"), &path("train.csv"), &observer()).await.unwrap();
    assert!(got.path.as_str().contains("/datasets--org--data/snapshots/"));
    let space = Repo::new(RepoType::Space, "org/app".parse().unwrap());
    let got = cache.get_file(&space, &rev("main"), &path("app.py"), &observer()).await.unwrap();
    assert_eq!(std::fs::read_to_string(got.path).unwrap(), "print(1)");
    let wrong = Repo::model("org/data".parse().unwrap());
    let err = cache.get_file(&wrong, &rev("main"), &path("train.csv"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err}");
}

#[tokio::test]
async fn the_token_goes_to_the_hub_and_never_to_the_cdn() {
    let hub =
        TestHub::start([RepoSpec::model("org/secret").lfs_file("w.bin", Content::generated(10_000, 4)).private("hf_ok")]).await;
    let env = Env::new();
    let repo = model("org/secret");
    let anonymous = env.cache(hub.url(), |_| {});
    let err = anonymous.get_file(&repo, &rev("main"), &path("w.bin"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err}");
    assert!(err.hint().unwrap().contains("HF_TOKEN"));
    let cache = env.cache(hub.url(), |c| c.token = Some(cache_hf::Token::new("hf_ok")));
    cache.get_file(&repo, &rev("main"), &path("w.bin"), &observer()).await.unwrap();
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1);
    assert_eq!(s.cdn_requests_with_authorization, 0);
}

#[tokio::test]
async fn a_corrupted_hit_is_removed_reported_and_fetched_again_next_time() {
    let hub = hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let repo = model("org/model");
    let got = cache.get_file(&repo, &rev("main"), &path("tokenizer.json"), &observer()).await.unwrap();
    let commit = Revision::from(got.commit);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::OpenOptions::new().append(true).open(&got.path).unwrap().write_all(b"garbage").unwrap();

    let err = cache.get_file(&repo, &commit, &path("tokenizer.json"), &observer()).await.unwrap_err();
    let Error::Corrupted { expected, actual, .. } = &err else { panic!("{err}") };
    assert_ne!(expected, actual);
    assert!(err.hint().unwrap().contains("again"));
    assert!(!got.path.exists(), "the corrupted file is gone");
    let again = cache.get_file(&repo, &commit, &path("tokenizer.json"), &observer()).await.unwrap();
    assert!(!again.from_cache);
    assert_eq!(std::fs::read(&again.path).unwrap(), hub.file("org/model", "main", "tokenizer.json").unwrap().content.to_vec());
    // An untouched hit is not re-hashed and stays a hit.
    assert!(cache.get_file(&repo, &commit, &path("tokenizer.json"), &observer()).await.unwrap().from_cache);
}

#[tokio::test]
async fn a_truncated_blob_older_than_its_link_is_reported_corrupted_not_served() {
    let hub = hub().await;
    let env = Env::new();
    let repo = model("org/model");
    let got = env.cache(hub.url(), |_| {}).get_file(&repo, &rev("main"), &path("tokenizer.json"), &observer()).await.unwrap();
    let full = std::fs::metadata(&got.path).unwrap().len();
    // What a restore with `cp -p` of a half-copied file leaves: shorter, and older than its link.
    let blob = std::fs::canonicalize(&got.path).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    f.set_len(3).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
    drop(f);

    // Another process: nothing remembered from the first check.
    let store = std::sync::Arc::new(cache_store::Store::open(env.store.config().clone()).unwrap());
    let cache = cache_hf::HubCache::new(&cache_hf::HubConfig::new(hub.url()), store).unwrap();
    let commit = Revision::from(got.commit);
    let err = cache.get_file(&repo, &commit, &path("tokenizer.json"), &observer()).await.unwrap_err();
    let Error::Corrupted { expected, actual, .. } = &err else { panic!("{err}") };
    assert_eq!((expected.as_str(), actual.as_str()), (format!("{full} bytes").as_str(), "3 bytes"));
    assert!(!got.path.exists(), "the truncated file is gone");
    let again = cache.get_file(&repo, &commit, &path("tokenizer.json"), &observer()).await.unwrap();
    assert_eq!(std::fs::metadata(&again.path).unwrap().len(), full);
}

#[tokio::test]
async fn artifacts_are_verified_cached_and_keyed_by_digest() {
    let hub = hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let info = hub.file("org/model", "main", "config.json").unwrap();
    let sha = Sha256::of(&info.content.to_vec());
    let key = ArtifactKey::new(info.url.clone()).with_sha256(sha);
    let got = cache.get_artifact(&key, &observer()).await.unwrap();
    assert!(!got.from_cache);
    assert_eq!(std::fs::read(&got.path).unwrap(), info.content.to_vec());
    hub.reset_stats();
    assert!(cache.get_artifact(&key, &observer()).await.unwrap().from_cache);
    assert_eq!(hub.stats().total_requests(), 0);

    let wrong = ArtifactKey::new(info.url.clone()).with_sha256(Sha256::of(b"something else"));
    let err = cache.get_artifact(&wrong, &observer()).await.unwrap_err();
    assert!(matches!(&err, Error::GivenDigestMismatch { actual, .. } if *actual == sha.to_hex()), "{err:?}");
    let hint = err.hint().unwrap();
    assert!(hint.contains("does not match what the URL serves") && !hint.contains("again"), "{hint}");
    assert_eq!(env.store.find_artifact(&wrong).unwrap(), None);

    // A body corrupted in transit, with the right digest given, is fetched again and kept.
    let fresh = ArtifactKey::new(info.url.clone()).with_sha256(sha).with_name("again.json");
    hub.corrupt_next(1);
    let got = cache.get_artifact(&fresh, &observer()).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), info.content.to_vec());
}
