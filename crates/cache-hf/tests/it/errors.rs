//! The Hub's errors, mapped precisely, and hostile listings.

use cache_hf::Error;
use cache_testkit::{Content, RepoSpec, TestHub};

use crate::{Env, model, observer, path, rev};

#[tokio::test]
async fn repo_revision_gated_and_private_errors_are_precise() {
    let hub = TestHub::start([
        RepoSpec::model("org/open").file("a.txt", "a"),
        RepoSpec::model("org/gated").file("a.txt", "a").gated("hf_gate"),
        RepoSpec::model("org/private").lfs_file("w.bin", Content::generated(100, 1)).private("hf_priv"),
    ])
    .await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let get = |repo: &'static str, r: &'static str| {
        let cache = cache.clone();
        async move { cache.get_file(&model(repo), &rev(r), &path("a.txt"), &observer()).await }
    };
    assert!(matches!(get("org/missing", "main").await.unwrap_err(), Error::RepoNotFound { .. }));
    let err = get("org/open", "v9").await.unwrap_err();
    assert!(matches!(err, Error::RevisionNotFound { .. }), "{err}");
    assert!(err.hint().unwrap().contains("revision"));
    let err = get("org/gated", "main").await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { gated: true, .. }), "{err}");
    assert!(err.hint().unwrap().contains("HF_TOKEN"));
    let wrong = env.cache(hub.url(), |c| c.token = Some(cache_hf::Token::new("hf_wrong")));
    let err = wrong.get_file(&model("org/gated"), &rev("main"), &path("a.txt"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { gated: true, .. }), "{err}");
    let right = env.cache(hub.url(), |c| c.token = Some(cache_hf::Token::new("hf_gate")));
    right.get_file(&model("org/gated"), &rev("main"), &path("a.txt"), &observer()).await.unwrap();
    let err = wrong.get_file(&model("org/private"), &rev("main"), &path("w.bin"), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::RepoNotFound { .. }), "{err}");
}

#[tokio::test]
async fn metadata_and_listings_read_the_hubs_headers_and_pages() {
    let mut spec = RepoSpec::model("org/many");
    for i in 0..12 {
        spec = spec.file(&format!("d{}/f{i}.txt", i % 3), format!("file {i}"));
    }
    let hub = TestHub::start_with(
        cache_testkit::HubConfig { tree_page_size: 5, ..Default::default() },
        [spec, RepoSpec::model("org/lfs").lfs_file("w.bin", Content::generated(1234, 7))],
    )
    .await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let client = cache.client();
    let files = client.list_files(&model("org/many"), &rev("main")).await.unwrap();
    assert_eq!(files.len(), 12, "every page was read");
    assert!(files.iter().all(|f| !f.lfs));
    let commit = client.resolve_revision(&model("org/many"), &rev("main")).await.unwrap();
    assert_eq!(commit, hub.file("org/many", "main", "d0/f0.txt").unwrap().commit);

    let meta = client.file_metadata(&model("org/lfs"), &rev("main"), &path("w.bin")).await.unwrap();
    let info = hub.file("org/lfs", "main", "w.bin").unwrap();
    assert_eq!((meta.commit, meta.etag, meta.size), (info.commit, info.etag, 1234));
    assert_eq!(Some(meta.url), info.cdn_url, "the CDN location is used, not followed");
    let listed = client.list_files(&model("org/lfs"), &rev("main")).await.unwrap();
    assert_eq!((listed[0].etag, listed[0].size, listed[0].lfs), (info.etag, 1234, true));
}
