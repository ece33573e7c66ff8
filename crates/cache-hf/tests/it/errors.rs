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

#[tokio::test]
async fn a_listing_whose_next_link_repeats_itself_is_refused_not_followed_forever() {
    let hub = TestHub::start([RepoSpec::model("org/loop").file("a.txt", "a")]).await;
    hub.update_faults(|f| f.loop_listing = true);
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let err = cache.client().list_files(&model("org/loop"), &rev("main")).await.unwrap_err();
    assert!(matches!(&err, Error::InvalidResponse { reason, .. } if reason.contains("repeats")), "{err}");
    assert!(err.hint().unwrap().contains("HF_ENDPOINT"));
    assert_eq!(
        hub.stats().count(cache_testkit::Route::ApiTree),
        1,
        "the repeated page is noticed at once, not read again and again"
    );
    let filter = cache_hf::FileFilter::new(&[], &[]).unwrap();
    let err = cache.snapshot(&model("org/loop"), &rev("main"), &filter, &observer()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidResponse { .. }), "{err}");
    assert!(!env.hub_dir().join("models--org--loop/trees").exists(), "no listing is recorded");
}

#[tokio::test]
async fn a_listing_with_a_file_and_a_folder_of_one_name_is_an_invalid_response() {
    let hub = TestHub::start([RepoSpec::model("org/clash").file("a", "file a").file("a/b", "file a/b")]).await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    let filter = cache_hf::FileFilter::new(&[], &[]).unwrap();
    let err = cache.snapshot(&model("org/clash"), &rev("main"), &filter, &observer()).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidResponse { reason, .. } if reason.contains("`a` both as a file and as a folder")),
        "{err}"
    );
    assert!(!env.hub_dir().join("models--org--clash/trees").exists(), "no listing is recorded");
    // The resolved commit's (empty) snapshot folder may exist, as huggingface_hub leaves it.
    let commits = std::fs::read_dir(env.hub_dir().join("models--org--clash/snapshots")).into_iter().flatten().flatten();
    let linked: usize = commits.map(|c| std::fs::read_dir(c.path()).map_or(0, Iterator::count)).sum();
    assert_eq!(linked, 0, "nothing is linked");
}

#[tokio::test]
async fn an_absurd_size_is_an_invalid_response_and_a_plausible_one_too_big_a_full_disk() {
    let hub =
        TestHub::start([RepoSpec::model("org/huge").file("a.txt", "a").lfs_file("w.bin", Content::generated(100, 1))]).await;
    hub.update_faults(|f| f.announce_size = Some(1 << 62));
    let env = Env::new();
    let cache = env.cache(hub.url(), |_| {});
    for file in ["a.txt", "w.bin"] {
        let err = cache.get_file(&model("org/huge"), &rev("main"), &path(file), &observer()).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidResponse { reason, .. } if reason.contains(&format!("{} bytes", 1u64 << 62))),
            "{file}: {err}"
        );
        assert!(!matches!(&err, Error::Store(cache_store::Error::DiskFull { .. })), "{err}");
    }
    // A plausible size that this filesystem cannot hold is a full disk: move the cache.
    let capacity = env.store.capacity().unwrap();
    assert!(capacity > 0 && capacity < 1 << 50, "the test filesystem is smaller than 1 PiB: {capacity}");
    hub.update_faults(|f| f.announce_size = Some(capacity + 1));
    let err = cache.get_file(&model("org/huge"), &rev("main"), &path("w.bin"), &observer()).await.unwrap_err();
    assert!(matches!(&err, Error::Store(cache_store::Error::DiskFull { .. })), "{err}");
    let stats = hub.stats();
    assert_eq!(
        stats.count(cache_testkit::Route::ResolveGet) + stats.count(cache_testkit::Route::CdnGet),
        0,
        "nothing was downloaded"
    );
    hub.clear_faults();
    let ok = cache.get_file(&model("org/huge"), &rev("main"), &path("w.bin"), &observer()).await.unwrap();
    assert_eq!(std::fs::read(&ok.path).unwrap().len(), 100, "an honest size still downloads");
}

/// A plan as the observer hears it: label, files to download, cached files, bytes.
type Plan = (String, usize, usize, Option<u64>);

/// What an observer heard: retried labels with their reasons, and plans.
#[derive(Default)]
struct Heard {
    retries: std::sync::Mutex<Vec<(String, String)>>,
    plans: std::sync::Mutex<Vec<Plan>>,
}

impl cache_hf::Observer for Heard {
    fn transfer(&self, event: &cache_fetch::Event<'_>) {
        if let cache_fetch::Event::Retrying { label, reason, .. } = event {
            self.retries.lock().unwrap().push(((*label).to_owned(), (*reason).to_owned()));
        }
    }

    fn planned(&self, label: &str, files: usize, cached: usize, bytes: Option<u64>) {
        self.plans.lock().unwrap().push((label.to_owned(), files, cached, bytes));
    }
}

#[tokio::test]
async fn retries_of_metadata_requests_and_plans_reach_the_observer() {
    let hub = crate::hub().await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |c| c.fetch.retries = 2);
    let heard = std::sync::Arc::new(Heard::default());
    let observer: std::sync::Arc<dyn cache_hf::Observer> = heard.clone();
    // The file's `HEAD` is rate limited once, then answered.
    hub.fail_next(429, 1, Some(0));
    cache.get_file(&model("org/model"), &rev("main"), &path("config.json"), &observer).await.unwrap();
    assert_eq!(heard.retries.lock().unwrap().as_slice(), [("config.json".to_owned(), "HTTP 429".to_owned())]);
    // A snapshot's listing is retried under the snapshot's name; its plan counts the
    // cached file.
    hub.fail_next(503, 1, Some(0));
    cache.snapshot(&model("org/model"), &rev("main"), &cache_hf::FileFilter::all(), &observer).await.unwrap();
    assert_eq!(heard.retries.lock().unwrap()[1], ("org/model@main".to_owned(), "HTTP 503".to_owned()));
    let plans = heard.plans.lock().unwrap();
    assert_eq!(plans[0], ("config.json".to_owned(), 1, 0, Some(18)));
    assert_eq!(plans[1], ("org/model@main".to_owned(), 2, 1, Some(3000 + crate::LFS_SIZE)));
}
