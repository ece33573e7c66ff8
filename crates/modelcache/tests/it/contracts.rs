//! The behavioural contracts of issue 5, each one a test against the testkit hub.

use std::io::Write;
use std::time::Duration;

use cache_testkit::Route;
use modelcache::{CacheError, ConfigKey, ErrorKind};

use crate::hub::{self, WEIGHTS};
use crate::{Env, files_under};

#[tokio::test]
async fn an_uncached_model_is_downloaded_verified_and_recorded() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    assert!(!cache.is_cached("org/model"));
    let dir = cache.get_model("org/model").await.unwrap();
    assert_eq!(files_under(&dir), ["config.json", "model.safetensors", "tokenizer.json"]);
    let weights = hub.file("org/model", "main", "model.safetensors").unwrap();
    assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap(), weights.content.to_vec());
    assert!(dir.starts_with(cache.cache_dir().join("models--org--model/snapshots")));
    assert!(cache.is_cached("org/model"));
    let stats = cache.stats().unwrap();
    assert_eq!(stats.counters.downloads, 3);
    assert_eq!(stats.models[0].model_id, "org/model");
    assert!(stats.models[0].downloaded_at.is_some());
    let verified = cache.validate_integrity().await.unwrap();
    assert_eq!((verified.valid_files, verified.valid_models.as_slice()), (3, &["org/model".to_owned()][..]));
}

#[tokio::test]
async fn a_cached_model_is_returned_without_any_request_and_its_last_use_is_updated() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    let dir = cache.get_model("org/model").await.unwrap();
    let commit = hub.file("org/model", "main", "config.json").unwrap().commit;
    let stats = cache.stats().unwrap();
    let (before, hits_before) = (stats.models[0].last_accessed.unwrap(), stats.counters.hits);
    std::thread::sleep(Duration::from_millis(20));
    hub.reset_stats();

    let again = cache.get_model(&format!("org/model@{commit}")).await.unwrap();
    let file = cache.get_file("org/model", commit.as_str(), "config.json").await.unwrap();
    assert_eq!(again, dir);
    assert_eq!(file, dir.join("config.json"));
    assert_eq!(hub.stats().total_requests(), 0, "no request for a cached commit");
    let after = cache.stats().unwrap();
    assert!(after.models[0].last_accessed.unwrap() > before, "last use updated");
    assert_eq!(
        after.counters.hits - hits_before,
        4,
        "three snapshot files and one file, each counted once: {:?}",
        after.counters
    );

    // A branch inside the revalidation window is a hit without requests too.
    let windowed = env.builder().set(ConfigKey::Endpoint, hub.url()).set(ConfigKey::RevalidateAfter, "1h").build().unwrap();
    assert_eq!(windowed.get_model("org/model").await.unwrap(), dir);
    assert_eq!(hub.stats().total_requests(), 0);
}

fn assert_offline_failure(err: &CacheError, offline: bool) {
    let CacheError::DownloadFailed { offline: o, .. } = err else { panic!("expected DownloadFailed, got {err:?}") };
    assert_eq!(*o, offline, "{err}");
    if offline {
        // Downloads were turned off on purpose: the hint says how to turn them on, and
        // never blames the network.
        assert!(err.hint().contains("to fetch it") && !err.hint().contains("check the network"), "hint: {}", err.hint());
    } else {
        assert!(err.hint().contains("network"), "hint: {}", err.hint());
    }
}

#[tokio::test]
async fn offline_and_uncached_fails_with_download_failed_and_leaves_nothing() {
    let env = Env::new();
    let down = env.manager(&hub::dead());
    let err = down.get_model("org/model").await.unwrap_err();
    assert_offline_failure(&err, false);
    assert_eq!(err.kind(), ErrorKind::Remote);
    let err = down.get_file("org/model", "main", "config.json").await.unwrap_err();
    assert_offline_failure(&err, false);

    let hub = hub::start().await;
    let offline = Env { vars: env.vars.clone(), tmp: tempfile::tempdir().unwrap() }.var("HF_HUB_OFFLINE", "1");
    let cache = offline.manager(hub.url());
    assert_eq!(cache.strategy().name(), "cache-only");
    let err = cache.get_model("org/model").await.unwrap_err();
    assert_offline_failure(&err, true);
    assert_eq!(err.kind().exit_code(), 4);
    assert_eq!(hub.stats().total_requests(), 0);
    for e in [&env, &offline] {
        let left: Vec<String> = files_under(&e.hub_dir()).into_iter().filter(|f| f != "CACHEDIR.TAG").collect();
        assert!(left.is_empty(), "partial files left: {left:?}");
    }
}

#[tokio::test]
async fn a_corrupted_cached_file_is_a_checksum_mismatch_and_is_removed() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    let dir = cache.get_model("org/model").await.unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let weights = dir.join("model.safetensors");
    let mut f = std::fs::OpenOptions::new().write(true).open(&weights).unwrap();
    f.write_all(b"not the weights").unwrap();
    drop(f);

    let err = cache.get_model("org/model").await.unwrap_err();
    let CacheError::ChecksumMismatch { model_id, expected, actual } = &err else { panic!("{err:?}") };
    assert!(model_id.contains("model.safetensors"), "{model_id}");
    assert_ne!(expected, actual);
    assert_eq!(err.kind().exit_code(), 5);
    assert!(err.hint().contains("run the same command again"), "{}", err.hint());
    assert!(!weights.exists(), "the corrupted file was removed");
    assert!(!cache.is_cached("org/model"));

    let again = cache.get_model("org/model").await.unwrap();
    assert_eq!(std::fs::metadata(again.join("model.safetensors")).unwrap().len(), WEIGHTS, "re-running fetches it again");
}

/// Offline or cache-only, a damaged cached file is corruption (exit 5, repair hint), not
/// "not cached" (exit 4): for a snapshot and for a single file.
#[tokio::test]
async fn a_corrupted_cached_file_is_a_checksum_error_with_downloads_off() {
    let hub = hub::start().await;
    let env = Env::new();
    let online = env.manager(hub.url());
    let offline = env.builder().offline(true).build().unwrap();
    let cache_only = env.builder().strategy(std::sync::Arc::new(modelcache::CacheOnlyAcquisition)).build().unwrap();
    let model = modelcache::ModelRef::parse("org/model", modelcache::RepoType::Model).unwrap();
    for (name, cache) in [("offline", &offline), ("cache-only", &cache_only)] {
        for whole_snapshot in [true, false] {
            let dir = online.get_model("org/model").await.unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let weights = dir.join("model.safetensors");
            let mut f = std::fs::OpenOptions::new().write(true).open(&weights).unwrap();
            f.write_all(b"not the weights").unwrap();
            drop(f);
            let err = if whole_snapshot {
                cache.get_snapshot(&model, &[], &[]).await.unwrap_err()
            } else {
                cache.get_file("org/model", "main", "model.safetensors").await.unwrap_err()
            };
            let what = format!("{name}, snapshot: {whole_snapshot}: {err:?}");
            assert!(
                matches!(&err, CacheError::CorruptedOffline { model_id, .. } if model_id.contains("model.safetensors")),
                "{what}"
            );
            assert_eq!((err.kind(), err.kind().exit_code()), (ErrorKind::Integrity, 5), "{what}");
            assert!(err.hint().contains("modelcache verify --repair"), "{}", err.hint());
            assert!(!weights.exists(), "the corrupted file was removed ({what})");
        }
    }
}

#[tokio::test]
async fn stats_remove_and_clear_are_exact() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    cache.get_model("org/model").await.unwrap();
    cache.get_model("org/other").await.unwrap();
    let sizes = |repo: &str| -> u64 {
        ["config.json", "tokenizer.json", "model.safetensors", "vocab.txt"]
            .iter()
            .filter_map(|p| hub.file(repo, "main", p))
            .map(|f| f.size)
            .sum()
    };
    let stats = cache.stats().unwrap();
    assert_eq!(stats.total_models, 2);
    assert_eq!(stats.total_size_bytes, sizes("org/model") + sizes("org/other"));
    assert_eq!(stats.total_files, 5);
    assert_eq!(stats.cache_dir, cache.cache_dir());
    assert!(stats.free_disk_bytes.unwrap() > 0);
    let json = serde_json::to_value(&stats).unwrap();
    assert!(json["models"][0]["model_id"].is_string() && json["counters"]["hit_ratio"].is_number(), "{json}");
    // Each model exactly: size, files, revisions, pin.
    let commit = |repo: &str| hub.file(repo, "main", "config.json").unwrap().commit.to_string();
    let mut models = stats.models.clone();
    models.sort_by(|a, b| a.model_id.cmp(&b.model_id));
    let seen: Vec<(&str, u64, u64, &[String], bool)> =
        models.iter().map(|m| (m.model_id.as_str(), m.size_bytes, m.files, m.revisions.as_slice(), m.pinned)).collect();
    assert_eq!(
        seen,
        [
            ("org/model", sizes("org/model"), 3, &[commit("org/model")][..], false),
            ("org/other", sizes("org/other"), 2, &[commit("org/other")][..], false),
        ]
    );
    assert!(models.iter().all(|m| m.downloaded_at.is_some() && m.last_accessed >= m.downloaded_at), "{models:?}");
    cache.pin(&modelcache::ModelRef::parse("org/model", modelcache::RepoType::Model).unwrap()).unwrap();
    let pinned: Vec<(String, bool)> = cache.stats().unwrap().models.into_iter().map(|m| (m.model_id, m.pinned)).collect();
    assert!(pinned.contains(&("org/model".to_owned(), true)) && pinned.contains(&("org/other".to_owned(), false)), "{pinned:?}");

    let dry =
        cache.remove(&modelcache::ModelRef::parse("org/other", modelcache::RepoType::Model).unwrap(), &[], true).await.unwrap();
    assert_eq!((dry.entries, dry.bytes_freed, dry.dry_run), (2, sizes("org/other"), true));
    assert!(cache.is_cached("org/other"), "a dry run removes nothing");
    let removed = cache.remove_model("org/other").await.unwrap();
    assert_eq!(removed.bytes_freed, dry.bytes_freed);
    assert!(!cache.is_cached("org/other"));
    let stats = cache.stats().unwrap();
    assert_eq!((stats.total_models, stats.total_size_bytes), (1, sizes("org/model")));
    let m = &stats.models[0];
    assert_eq!(
        (m.model_id.as_str(), m.size_bytes, m.files, m.revisions.as_slice(), m.pinned),
        ("org/model", sizes("org/model"), 3, &[commit("org/model")][..], true),
        "the other model is untouched by the removal"
    );
    let err = cache.remove_model("org/other").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    cache.clear_cache().await.unwrap();
    let stats = cache.stats().unwrap();
    assert_eq!((stats.total_models, stats.total_size_bytes, stats.total_files), (0, 0, 0));
    assert!(cache.cache_dir().is_dir());
    let left: Vec<String> = files_under(cache.cache_dir()).into_iter().filter(|f| f != "CACHEDIR.TAG").collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn validate_integrity_finds_a_corrupted_and_a_missing_model_of_three() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.manager(hub.url());
    for m in ["org/model", "org/other", "org/third"] {
        cache.get_model(m).await.unwrap();
    }
    let vocab = cache.get_file("org/other", "main", "vocab.txt").await.unwrap();
    std::fs::write(&vocab, "tampered").unwrap();
    let report = cache.validate_integrity().await.unwrap();
    assert_eq!(report.corrupted_models, ["org/other"]);
    assert_eq!(report.valid_models, ["org/model", "org/third"]);
    assert!(report.missing_models.is_empty());
    assert_eq!(report.corrupted.len(), 1);
    assert!(report.corrupted[0].entry.ends_with("/vocab.txt"));
    assert!(!report.is_clean() && !report.repaired);

    let repaired = cache.verify(None, true).await.unwrap();
    assert!(repaired.repaired);
    assert_eq!(repaired.refetched.len(), 1, "repair fetched the file again");
    assert_eq!(std::fs::read_to_string(&vocab).unwrap(), "a\nb\n");
    assert!(cache.validate_integrity().await.unwrap().is_clean());

    // A file whose blob is gone: a missing model, neither valid nor corrupted.
    let x = cache.get_file("org/third", "main", "x.bin").await.unwrap();
    std::fs::remove_file(std::fs::canonicalize(&x).unwrap()).unwrap();
    let report = cache.validate_integrity().await.unwrap();
    assert_eq!(report.missing_models, ["org/third"]);
    assert_eq!(report.valid_models, ["org/model", "org/other"]);
    assert!(report.corrupted_models.is_empty() && report.corrupted.is_empty());
    assert_eq!(report.missing.len(), 1);
    assert!(report.missing[0].starts_with("org/third@") && report.missing[0].ends_with("/x.bin"), "{:?}", report.missing);
    assert!(!report.is_clean());
    let repaired = cache.verify(None, true).await.unwrap();
    assert_eq!(repaired.refetched.len(), 1, "repair fetched the missing file again");
    assert_eq!(std::fs::read(&x).unwrap().len(), 700);
    assert!(cache.validate_integrity().await.unwrap().is_clean());
}

#[tokio::test]
async fn two_managers_fetching_one_model_at_once_download_it_once() {
    let hub = hub::start().await;
    hub.throttle(Some(400_000));
    let env = Env::new();
    let (a, b, c) = (env.manager(hub.url()), env.manager(hub.url()), env.manager(hub.url()));
    let (ra, rb, rc) = tokio::join!(a.get_model("org/model"), b.get_model("org/model"), c.get_model("org/model"));
    let (ra, rb, rc) = (ra.unwrap(), rb.unwrap(), rc.unwrap());
    assert!(ra == rb && rb == rc);
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1, "one transfer of the weights");
    assert_eq!(s.requests_by_path.iter().filter(|(p, _)| p.ends_with("/tokenizer.json")).map(|(_, n)| n).sum::<u64>(), 1);
    assert_eq!(files_under(&ra), ["config.json", "model.safetensors", "tokenizer.json"]);
    assert!(a.validate_integrity().await.unwrap().is_clean());
    assert_eq!(a.stats().unwrap().counters.downloads, 3);
}

#[tokio::test]
async fn a_blank_token_is_no_token() {
    let hub = hub::start().await;
    let env = Env::new();
    let cache = env.builder().set(ConfigKey::Endpoint, hub.url()).token(Some("  ")).build().unwrap();
    cache.get_file("org/model", "main", "config.json").await.unwrap();
    let log = hub.stats().log;
    assert!(!log.is_empty());
    assert!(log.iter().all(|r| !r.authorization), "no `Authorization: Bearer ` header was sent");
}
