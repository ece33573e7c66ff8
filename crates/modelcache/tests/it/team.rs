//! The team tier through the facade, against the testkit hub and a real S3 server (moto
//! behind a counting proxy) or a directory: seed on one machine, pull on another.

use std::time::{Duration, Instant};

use cache_testkit::s3::{BUCKET, MotoServer, S3Proxy};
use cache_testkit::{FailFault, Faults, Route, TestHub};
use modelcache::{CacheManager, ModelRef, RepoType};

use crate::{Env, hub};

/// moto, its proxy and the tier URL.
struct S3 {
    proxy: S3Proxy,
    moto: MotoServer,
}

impl S3 {
    fn start() -> S3 {
        let moto = MotoServer::start();
        let proxy = S3Proxy::start(moto.port());
        S3 { proxy, moto }
    }

    /// A machine (its own cache and home) using the tier in `mode`.
    fn machine(&self, mode: &str) -> Env {
        let mut env = Env::new();
        for (k, v) in MotoServer::env_for(&self.proxy.endpoint()) {
            env = env.var(&k, &v);
        }
        env.var("MODELCACHE_REMOTE", &format!("s3://{BUCKET}/hub:{mode}"))
    }
}

fn model() -> ModelRef {
    ModelRef::parse("org/model", RepoType::Model).unwrap()
}

/// Seeds the tier from machine A (a Hub download, pushed at the end of the command).
async fn seed(hub: &TestHub, a: &Env) -> CacheManager {
    let m = a.manager(hub.url());
    let got = m.get_snapshot(&model(), &[], &[]).await.unwrap();
    assert_eq!(got.files_downloaded, 3);
    let summary = m.finish_pushes().await;
    assert_eq!(summary.remembered, 0, "{summary:?}");
    let pushed = &summary.pushed[0];
    assert_eq!((pushed.blobs_written, pushed.tree, pushed.refs.clone()), (3, true, vec!["main".to_owned()]), "{pushed:?}");
    m
}

/// The Hub's file routes fail from now on (metadata still answers).
fn fail_file_routes(hub: &TestHub) {
    hub.set_faults(Faults {
        fail: Some(FailFault { status: 500, count: 10_000, retry_after: None }),
        path_contains: Some("/resolve/".to_owned()),
        ..Faults::default()
    });
    hub.reset_stats();
}

fn same_files(a: &std::path::Path, b: &std::path::Path) {
    let (fa, fb) = (crate::files_under(a), crate::files_under(b));
    assert_eq!(fa, fb);
    for f in fa {
        assert_eq!(std::fs::read(a.join(&f)).unwrap(), std::fs::read(b.join(&f)).unwrap(), "{f}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_pulls_what_another_seeded_with_no_body_byte_from_the_hub_and_python_reads_it_offline() {
    let hub = hub::start().await;
    let s3 = S3::start();
    let a = s3.machine("rw");
    let seeded = seed(&hub, &a).await.get_model("org/model").await.unwrap();

    fail_file_routes(&hub);
    let b = s3.machine("ro");
    let m = b.manager(hub.url());
    let got = m.get_snapshot(&model(), &[], &[]).await.unwrap();
    let stats = hub.stats();
    assert_eq!(stats.count(Route::ResolveGet) + stats.count(Route::CdnGet), 0, "{:?}", stats.requests);
    assert_eq!(stats.body_bytes - stats.bytes_for("/api/"), 0, "no body byte of a file from the Hub");
    same_files(&seeded, &got.path);
    // Every digest checked: B's own verify agrees, and the tier counted three hits.
    assert!(m.verify(None, false).await.unwrap().corrupted.is_empty());
    m.finish_pushes().await;
    let tiers = m.remote_stats();
    assert_eq!((tiers[0].hits, tiers[0].misses, tiers[0].errors), (3, 0, 0), "{tiers:?}");

    let python = cache_testkit::python::require_interpreter();
    let script = "import sys\nfrom huggingface_hub import snapshot_download\nprint(snapshot_download('org/model'))\n";
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .env("HF_HUB_CACHE", b.hub_dir())
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    same_files(&got.path, &seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_hub_unreachable_a_commit_and_a_branch_are_served_from_the_tier() {
    let hub = hub::start().await;
    let s3 = S3::start();
    let seeder = s3.machine("rw");
    let m = seed(&hub, &seeder).await;
    let commit = m.list().unwrap()[0].revisions[0].commit.clone();

    let by_commit = s3.machine("ro");
    let cut = by_commit.manager(&hub::dead());
    let at_commit = ModelRef::parse(&format!("org/model@{commit}"), RepoType::Model).unwrap();
    let got = cut.get_snapshot(&at_commit, &[], &[]).await.unwrap();
    assert_eq!(got.commit.as_deref(), Some(commit.as_str()));
    same_files(&m.get_model("org/model").await.unwrap(), &got.path);

    let by_branch = s3.machine("ro");
    let cut = by_branch.manager(&hub::dead());
    let at_main = cut.get_snapshot(&model(), &[], &[]).await.unwrap();
    assert_eq!(at_main.commit.as_deref(), Some(commit.as_str()));
    let file = cut.get_file("org/model", "main", "config.json").await.unwrap();
    assert_eq!(std::fs::read_to_string(file).unwrap(), r#"{"hidden_size": 8}"#);
    let one_file = s3.machine("ro");
    let single = one_file.manager(&hub::dead()).get_file("org/model", "main", "model.safetensors").await.unwrap();
    assert_eq!(std::fs::metadata(single).unwrap().len(), hub::WEIGHTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_size_corrupt_object_is_served_from_the_hub_instead_and_repaired_in_rw() {
    let hub = hub::start().await;
    let s3 = S3::start();
    seed(&hub, &s3.machine("rw")).await;
    let weights =
        s3.moto.list().into_iter().find(|(k, (size, _))| k.contains("/blobs/sha256/") && *size == hub::WEIGHTS).unwrap().0;
    let good = s3.moto.get(&weights).unwrap();
    let mut bad = good.clone();
    bad[1000] ^= 0x55;
    s3.moto.put(&weights, &bad);

    hub.reset_stats();
    let b = s3.machine("rw");
    let m = b.manager(hub.url());
    let path = m.get_file("org/model", "main", "model.safetensors").await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), good, "the Hub's bytes, never the tier's");
    assert_eq!(hub.stats().count(Route::CdnGet), 1);
    m.finish_pushes().await;
    assert_eq!(s3.moto.get(&weights).unwrap(), good, "repaired");
    let t = &m.remote_stats()[0];
    assert_eq!((t.corrupt, t.misses), (1, 0), "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_tier_is_never_written_by_a_run_of_misses() {
    let hub = hub::start().await;
    let s3 = S3::start();
    s3.moto.put("hub/v1/TIER.json", br#"{"layout":"modelcache-tier","version":1}"#);
    let before = s3.moto.list();
    let b = s3.machine("ro");
    let m = b.manager(hub.url());
    m.get_snapshot(&model(), &[], &[]).await.unwrap();
    m.get_file("org/other", "main", "vocab.txt").await.unwrap();
    let summary = m.finish_pushes().await;
    assert!(summary.pushed.is_empty() && summary.remembered == 0, "{summary:?}");
    assert_eq!(s3.moto.list(), before, "listing and ETags identical");
    assert_eq!(s3.proxy.count_method("PUT") + s3.proxy.count_method("POST") + s3.proxy.count_method("DELETE"), 0);
    assert_eq!(m.remote_stats()[0].misses, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_that_is_down_or_stalls_never_fails_a_get_the_hub_can_serve() {
    let hub = hub::start().await;
    let s3 = S3::start();
    seed(&hub, &s3.machine("rw")).await;
    for fault in ["down", "stall"] {
        if fault == "down" {
            s3.proxy.set_down(true);
        } else {
            s3.proxy.set_down(false);
            s3.proxy.stall_after(Some(10));
        }
        let b = s3.machine("ro").var("MODELCACHE_READ_TIMEOUT", "2s");
        let m = b.manager(hub.url());
        let started = Instant::now();
        let got = m.get_snapshot(&model(), &[], &[]).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(60), "{fault}: {:?}", started.elapsed());
        assert_eq!(got.files, 3);
        m.finish_pushes().await;
        let t = &m.remote_stats()[0];
        assert!(t.errors >= 1 && t.hits == 0, "{fault}: {t:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_tier_works_the_same() {
    let hub = hub::start().await;
    let tier = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tier.path().join("team").display());
    let a = Env::new().var("MODELCACHE_REMOTE", &url);
    let seeded = seed(&hub, &a).await.get_model("org/model").await.unwrap();
    assert!(tier.path().join("team/v1/TIER.json").is_file());
    fail_file_routes(&hub);
    let b = Env::new().var("MODELCACHE_REMOTE", &format!("{url}:ro"));
    let got = b.manager(hub.url()).get_snapshot(&model(), &[], &[]).await.unwrap();
    let stats = hub.stats();
    assert_eq!(stats.count(Route::ResolveGet) + stats.count(Route::CdnGet), 0);
    same_files(&seeded, &got.path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_that_cannot_finish_are_remembered_and_pushed_later() {
    let hub = hub::start().await;
    let s3 = S3::start();
    let a = s3.machine("rw");
    s3.proxy.set_down(true);
    let m = a.manager(hub.url());
    m.get_snapshot(&model(), &[], &[]).await.unwrap();
    let summary = m.finish_pushes().await;
    assert_eq!(summary.remembered, 1, "{summary:?}");
    assert_eq!(m.pending_pushes().len(), 1);
    drop(m);
    s3.proxy.set_down(false);
    let m = a.manager(hub.url());
    let summary = m.finish_pushes().await;
    assert_eq!((summary.remembered, summary.pushed.len()), (0, 1), "{summary:?}");
    assert!(m.pending_pushes().is_empty());
    assert!(s3.moto.list().keys().any(|k| k.starts_with("hub/v1/trees/models/org--model/")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_artifact_with_a_digest_goes_through_the_tier_too() {
    let hub = hub::start().await;
    let tier = tempfile::tempdir().unwrap();
    let url_tier = format!("file://{}", tier.path().join("team").display());
    let file = hub.file("org/other", "main", "vocab.txt").unwrap();
    let sha = cache_core::Sha256::of(&file.content.to_vec()).to_hex();
    let a = Env::new().var("MODELCACHE_REMOTE", &url_tier);
    let m = a.manager(hub.url());
    m.get_url(&file.url, Some(&sha)).await.unwrap();
    let summary = m.finish_pushes().await;
    assert_eq!(summary.pushed.iter().map(|p| p.blobs_written).sum::<u64>(), 1, "{summary:?}");
    assert!(tier.path().join(format!("team/v1/urls/sha256/{}/{sha}", &sha[..2])).is_file());

    fail_file_routes(&hub);
    let b = Env::new().var("MODELCACHE_REMOTE", &format!("{url_tier}:ro"));
    let path = b.manager(hub.url()).get_url(&file.url, Some(&sha)).await.unwrap();
    assert_eq!(std::fs::read(path).unwrap(), file.content.to_vec());
    assert_eq!(hub.stats().count(Route::ResolveGet), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_from_the_tier_reports_each_file_finished_once() {
    use std::sync::{Arc, Mutex};
    let hub = hub::start().await;
    let tier = tempfile::tempdir().unwrap();
    let url = format!("file://{}", tier.path().join("team").display());
    seed(&hub, &Env::new().var("MODELCACHE_REMOTE", &url)).await;
    let finished = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&finished);
    let b = Env::new().var("MODELCACHE_REMOTE", &format!("{url}:ro"));
    let m = b
        .builder()
        .set(modelcache::ConfigKey::Endpoint, hub.url())
        .progress(Arc::new(move |e: &modelcache::ProgressEvent<'_>| {
            if let modelcache::ProgressEvent::Finished { label, .. } = e {
                sink.lock().unwrap().push((*label).to_owned());
            }
        }))
        .build()
        .unwrap();
    m.get_snapshot(&model(), &[], &[]).await.unwrap();
    let mut seen = finished.lock().unwrap().clone();
    seen.sort();
    assert_eq!(seen, ["config.json", "model.safetensors", "tokenizer.json"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_artifact_push_that_cannot_finish_is_remembered_and_pushed_later() {
    let hub = hub::start().await;
    let s3 = S3::start();
    let file = hub.file("org/other", "main", "vocab.txt").unwrap();
    let sha = cache_core::Sha256::of(&file.content.to_vec()).to_hex();
    let key = format!("hub/v1/urls/sha256/{}/{sha}", &sha[..2]);
    let a = s3.machine("rw");
    s3.proxy.set_down(true);
    let m = a.manager(hub.url());
    m.get_url(&file.url, Some(&sha)).await.unwrap();
    let summary = m.finish_pushes().await;
    assert_eq!(summary.remembered, 1, "{summary:?}");
    let pending = m.pending_pushes();
    assert_eq!((pending.len(), pending[0].commit.as_str()), (1, sha.as_str()), "{pending:?}");
    drop(m);
    assert!(s3.moto.get(&key).is_none());

    // The next command on this machine pushes it, from the artifact store.
    s3.proxy.set_down(false);
    let m = a.manager(hub.url());
    let summary = m.finish_pushes().await;
    assert_eq!((summary.remembered, summary.pushed.len()), (0, 1), "{summary:?}");
    assert_eq!(summary.pushed[0].blobs_written, 1, "{summary:?}");
    assert!(m.pending_pushes().is_empty());
    assert_eq!(s3.moto.get(&key).unwrap(), file.content.to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_listing_is_replaced_by_the_hubs_in_rw_and_left_alone_in_ro() {
    let hub = hub::start().await;
    let s3 = S3::start();
    let a = s3.machine("rw");
    let seeded = seed(&hub, &a).await;
    let commit = seeded.list().unwrap()[0].revisions[0].commit.clone();
    let key = format!("hub/v1/trees/models/org--model/{commit}.json");
    let good = s3.moto.get(&key).unwrap();
    let good_text = String::from_utf8(good.clone()).unwrap();
    assert!(good_text.contains("\"config.json\""), "{good_text}");
    let disagreeing = good_text.replace("\"config.json\"", "\"config2.json\"");
    for (what, bad) in [("unreadable", b"{ not a listing".to_vec()), ("disagreeing", disagreeing.into_bytes())] {
        s3.moto.put(&key, &bad);
        let before = s3.moto.list();

        // `ro`: read with the Hub reachable, never written.
        let c = s3.machine("ro");
        let m = c.manager(hub.url());
        m.get_snapshot(&model(), &[], &[]).await.unwrap();
        m.finish_pushes().await;
        assert_eq!(s3.moto.list(), before, "{what}: listing and ETags identical in `ro`");
        assert_eq!(m.remote_stats()[0].listings_replaced, 0);

        // `rw`: the Hub's listing replaces it, once.
        let b = s3.machine("rw");
        let m = b.manager(hub.url());
        let got = m.get_snapshot(&model(), &[], &[]).await.unwrap();
        assert_eq!(got.files_downloaded, 3);
        let summary = m.finish_pushes().await;
        assert_eq!(summary.remembered, 0, "{summary:?}");
        assert!(summary.pushed[0].tree_replaced, "{what}: {summary:?}");
        assert_eq!(s3.moto.get(&key).unwrap(), good, "{what}: the bucket holds the Hub's listing again");
        assert_ne!(s3.moto.list()[&key].1, before[&key].1, "{what}: a new object");
        assert_eq!(m.remote_stats()[0].listings_replaced, 1, "{what}");
    }

    // A right listing is left as it is.
    let before = s3.moto.list();
    let d = s3.machine("rw");
    let m = d.manager(hub.url());
    m.get_snapshot(&model(), &[], &[]).await.unwrap();
    let summary = m.finish_pushes().await;
    assert!(!summary.pushed[0].tree_replaced, "{summary:?}");
    assert_eq!(s3.moto.list()[&key], before[&key]);
}

/// A port that accepts connections (the kernel's backlog) and never answers.
fn black_hole() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_and_azure_tiers_that_cannot_be_reached_never_fail_a_get_the_hub_can_serve() {
    let hub = hub::start().await;
    // A server answering 503 to everything, counting what it is asked.
    let down = S3Proxy::start(hub::dead().rsplit(':').next().unwrap().parse().unwrap());
    down.set_down(true);
    let (_hole, hole) = black_hole();
    for (scheme, url) in [("gs", "gs://team-models/hub"), ("az", "az://models/hub")] {
        for (fault, endpoint) in [("refused", hub::dead()), ("503", down.endpoint()), ("silent", hole.clone())] {
            let env = Env::new().var("MODELCACHE_REMOTE", &format!("{url}:rw")).var("MODELCACHE_READ_TIMEOUT", "2s");
            let env = if scheme == "gs" {
                env.var("GOOGLE_BASE_URL", &endpoint).var("GOOGLE_ALLOW_HTTP", "true")
            } else {
                env.var("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
                    .var(
                        "AZURE_STORAGE_ACCOUNT_KEY",
                        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
                    )
                    .var("AZURE_STORAGE_ENDPOINT", &format!("{endpoint}/devstoreaccount1"))
                    .var("AZURE_ALLOW_HTTP", "true")
            };
            let before = down.count_method("GET");
            let m = env.manager(hub.url());
            let started = Instant::now();
            let got = m.get_snapshot(&model(), &[], &[]).await.unwrap();
            let summary = m.finish_pushes().await;
            assert!(started.elapsed() < Duration::from_secs(60), "{scheme} {fault}: {:?}", started.elapsed());
            assert_eq!((got.files, got.files_downloaded), (3, 3), "{scheme} {fault}");
            assert_eq!(summary.remembered, 1, "{scheme} {fault}: the push is kept for later: {summary:?}");
            let t = &m.remote_stats()[0];
            assert!(t.errors >= 1 && t.hits == 0 && t.misses == 0, "{scheme} {fault}: {t:?}");
            if fault == "503" {
                let asked = down.counts();
                assert!(down.count_method("GET") > before, "{scheme}: {asked:?}");
                let marker = if scheme == "gs" { "/team-models/hub/v1/TIER.json" } else { "/models/hub/v1/TIER.json" };
                let decoded = |p: &str| p.replace("%2F", "/").replace("%2D", "-").replace("%2E", ".");
                assert!(asked.keys().any(|(_, p)| decoded(p).ends_with(marker)), "{scheme}: {asked:?}");
            }
        }
    }
}
