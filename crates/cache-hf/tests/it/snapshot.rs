//! Snapshots: filters, listing once per commit, one GET per missing file and no HEAD,
//! concurrency, offline completeness.

use cache_core::Revision;
use cache_hf::{Error, FileFilter};
use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{Env, model, observer, rev};

fn filter(allow: &[&str], ignore: &[&str]) -> FileFilter {
    let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    FileFilter::new(&v(allow), &v(ignore)).unwrap()
}

fn many(n: usize) -> RepoSpec {
    let mut spec = RepoSpec::model("org/many").lfs_file("weights/model.bin", Content::generated(50_000, 1));
    for i in 0..n {
        spec = spec
            .file(&format!("{}/f{i}.json", if i % 2 == 0 { "a" } else { "b/c" }), Content::generated(4096 + i as u64, i as u64));
    }
    spec
}

fn listed(dir: &camino::Utf8Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in d.read_dir_utf8().unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                stack.push(e.path().to_owned());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_filtered_snapshot_fetches_exactly_the_selection_without_heads() {
    let hub = TestHub::start_with(cache_testkit::HubConfig { tree_page_size: 7, ..Default::default() }, [many(20)]).await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |c| c.parallelism = 4);
    let repo = model("org/many");
    let snap = cache.snapshot(&repo, &rev("main"), &filter(&["*.json"], &["b/*"]), &observer()).await.unwrap();
    assert_eq!((snap.files, snap.downloaded), (10, 10));
    let files = listed(&snap.dir);
    assert_eq!(files.len(), 10);
    assert!(files.iter().all(|f| f.starts_with("a/") && f.ends_with(".json")), "{files:?}");
    let s = hub.stats();
    assert_eq!(s.count(Route::ResolveHead), 0, "no per-file HEAD");
    assert_eq!(s.count(Route::ResolveGet), 10, "one GET per file");
    assert_eq!(s.count(Route::ApiRepo), 1);
    assert!(s.count(Route::ApiTree) >= 3, "the listing was paginated");
    assert!(env.hub_dir().join(format!("models--org--many/trees/{}.json", snap.commit)).is_file());

    // The rest of the snapshot: the listing is reused, only what is missing is fetched.
    hub.reset_stats();
    let all = cache.snapshot(&repo, &Revision::from(snap.commit), &FileFilter::all(), &observer()).await.unwrap();
    assert_eq!((all.files, all.downloaded), (21, 11));
    let s = hub.stats();
    assert_eq!((s.count(Route::ApiTree), s.count(Route::ApiRepo), s.count(Route::ResolveGet)), (0, 0, 11));
    assert_eq!(s.count(Route::CdnGet), 1);

    hub.reset_stats();
    let again = cache.snapshot(&repo, &Revision::from(snap.commit), &FileFilter::all(), &observer()).await.unwrap();
    assert_eq!(again.downloaded, 0);
    assert_eq!(hub.stats().total_requests(), 0, "a cached commit snapshot never touches the network");
}

#[tokio::test]
async fn many_small_files_download_concurrently_and_completely() {
    let hub = TestHub::start([many(120)]).await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |c| c.parallelism = 8);
    let snap = cache.snapshot(&model("org/many"), &rev("main"), &FileFilter::all(), &observer()).await.unwrap();
    assert_eq!((snap.files, snap.downloaded), (121, 121));
    assert_eq!(listed(&snap.dir).len(), 121);
    let content = std::fs::read(snap.dir.join("b/c/f7.json")).unwrap();
    assert_eq!(content, hub.file("org/many", "main", "b/c/f7.json").unwrap().content.to_vec());
    let stats = env.store.stats().unwrap();
    assert_eq!(stats.files, 121);
    assert_eq!(stats.counters.downloads, 121, "every file counted once, batched or not");
    assert_eq!(env.store.reconcile().unwrap(), cache_store::ReconcileReport::default(), "the index agrees with the disk");
}

#[tokio::test]
async fn a_file_with_a_wrong_digest_fails_the_snapshot_but_not_the_files_already_transferred() {
    let hub = TestHub::start([many(40)]).await;
    let env = Env::new();
    let cache = env.cache(hub.url(), |c| c.parallelism = 4);
    let repo = model("org/many");
    // Corrupt on both downloads (one mismatch is downloaded again in the same call).
    hub.update_faults(|f| {
        f.corrupt = Some(cache_testkit::CorruptFault { count: 2 });
        f.path_contains = Some("b/c/f7.json".to_owned());
    });
    let err = cache.snapshot(&repo, &rev("main"), &FileFilter::all(), &observer()).await.unwrap_err();
    assert!(err.to_string().contains("f7.json"), "{err}");
    let commit = env.store.resolve(&repo, &rev("main")).unwrap().unwrap();
    let snapshot = env.hub_dir().join(format!("models--org--many/snapshots/{commit}"));
    let published = listed(&snapshot);
    assert!(!published.contains(&"b/c/f7.json".to_owned()), "nothing wrong is ever published");
    assert!(published.len() >= 8, "what was transferred before the failure is published: {published:?}");
    // Transfers aborted mid-way left staging files that the retry resumes.
    let held: u64 = std::fs::read_dir(env.hub_dir().join("models--org--many/blobs"))
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .map(|e| e.metadata().unwrap().len())
        .sum();

    hub.clear_faults();
    hub.reset_stats();
    let snap = cache.snapshot(&repo, &rev("main"), &FileFilter::all(), &observer()).await.unwrap();
    assert_eq!(listed(&snap.dir).len(), 41);
    assert_eq!(
        std::fs::read(snapshot.join("b/c/f7.json")).unwrap(),
        hub.file("org/many", "main", "b/c/f7.json").unwrap().content.to_vec()
    );
    let size = |f: &str| std::fs::metadata(snapshot.join(f)).unwrap().len();
    let missing: u64 = listed(&snapshot).iter().filter(|f| !published.contains(f)).map(|f| size(f)).sum();
    assert_eq!(hub.stats().body_bytes, missing - held, "the retry fetched only what was missing");
    assert_eq!(env.store.reconcile().unwrap(), cache_store::ReconcileReport::default());
}

#[tokio::test]
async fn offline_snapshots_know_whether_they_are_complete() {
    let hub = TestHub::start([many(6)]).await;
    let env = Env::new();
    let repo = model("org/many");
    env.cache(hub.url(), |_| {}).snapshot(&repo, &rev("main"), &filter(&["a/*"], &[]), &observer()).await.unwrap();
    hub.reset_stats();
    let offline = env.cache(hub.url(), |c| c.offline = true);

    let part = offline.snapshot(&repo, &rev("main"), &filter(&["a/*"], &[]), &observer()).await.unwrap();
    assert_eq!(part.files, 3);
    let err = offline.snapshot(&repo, &rev("main"), &FileFilter::all(), &observer()).await.unwrap_err();
    let Error::IncompleteSnapshot { missing, .. } = &err else { panic!("{err}") };
    assert_eq!(missing.len(), 4, "{missing:?}");
    assert!(missing.contains(&"weights/model.bin".to_owned()) && missing.contains(&"b/c/f1.json".to_owned()));
    assert!(err.to_string().contains("incomplete"));

    // Without a recorded listing, as huggingface_hub: the snapshot folder if it exists.
    std::fs::remove_file(env.hub_dir().join(format!("models--org--many/trees/{}.json", part.commit))).unwrap();
    let unlisted = offline.snapshot(&repo, &rev("main"), &FileFilter::all(), &observer()).await.unwrap();
    assert_eq!((&unlisted.dir, unlisted.files), (&part.dir, 0), "an unlisted snapshot counts no files");
    let err = offline.snapshot(&model("org/none"), &rev("main"), &FileFilter::all(), &observer()).await.unwrap_err();
    assert!(matches!(err, Error::NotCached { .. }), "{err}");
    assert_eq!(hub.stats().total_requests(), 0);
}
