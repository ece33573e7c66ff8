//! Damage and limits: a corrupted blob caught by `verify` and repaired; `prune` bringing
//! the cache under a size limit while keeping pinned repositories.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{Env, WEIGHTS, hub};

fn corrupt(path: &Path) {
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(100)).unwrap();
    f.write_all(b"CORRUPTED").unwrap();
}

#[test]
fn verify_names_a_corrupted_blob_exits_5_and_repair_fixes_it() {
    let hub = hub();
    let env = Env::new(&hub);
    let path = env.run(&["get", "org/model", "model.safetensors"]).ok().stdout.trim().to_owned();
    env.run(&["get", "org/other"]).ok();
    let etag = hub.file("org/model", "main", "model.safetensors").unwrap().etag;
    corrupt(&env.hub_dir().join(format!("models--org--model/blobs/{etag}")));

    let bad = env.run(&["verify"]).expect(5);
    assert!(bad.stdout.contains("corrupted") && bad.stdout.contains("org/model@") && bad.stdout.contains("/model.safetensors"));
    assert!(bad.stderr.starts_with("error: the cache is damaged: `org/model@"), "{}", bad.stderr);
    assert!(bad.stderr.contains("hint: run `modelcache verify --repair`"), "{}", bad.stderr);
    let scoped = env.run(&["verify", "org/other"]).ok();
    assert!(scoped.stdout.contains("the cache is intact"), "{}", scoped.stdout);
    let json = env.run(&["--json", "verify", "org/model"]).expect(5);
    let report = json.json();
    assert_eq!(report["corrupted"][0]["model_id"], "org/model");
    assert!(report["corrupted"][0]["entry"].as_str().unwrap().ends_with("/model.safetensors"), "{report}");
    assert_ne!(report["corrupted"][0]["expected"], report["corrupted"][0]["actual"]);
    assert_eq!(json.json_error()["error"]["kind"], "integrity");

    let before = hub.stats().count(Route::CdnGet);
    let repaired = env.run(&["--json", "verify", "--repair"]).ok().json();
    assert_eq!(repaired["repaired"], true);
    assert_eq!(repaired["refetched"].as_array().unwrap().len(), 1);
    assert_eq!(hub.stats().count(Route::CdnGet), before + 1, "downloaded again");
    assert_eq!(std::fs::read(&path).unwrap(), Content::generated(WEIGHTS, 1).to_vec());
    env.run(&["verify"]).ok();

    // Offline, repair removes the damage; the next online `get` fetches it.
    corrupt(&env.hub_dir().join(format!("models--org--model/blobs/{etag}")));
    let offline = env.run(&["--offline", "--json", "verify", "--repair"]).ok().json();
    assert_eq!((offline["repaired"].as_bool(), offline["refetched"].as_array().map(Vec::len)), (Some(true), Some(0)));
    env.run(&["--offline", "get", "org/model", "model.safetensors"]).expect(4);
    env.run(&["get", "org/model", "model.safetensors"]).ok();
    env.run(&["verify"]).ok();
}

/// A file whose blob is gone is reported missing (its model in `missing_models`) and
/// `verify` exits 5; `--repair` fetches it again.
#[test]
fn verify_reports_a_missing_file_and_exits_5() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model", "config.json"]).ok();
    let vocab = env.run(&["get", "org/other", "vocab.txt"]).ok().stdout.trim().to_owned();
    std::fs::remove_file(std::fs::canonicalize(&vocab).unwrap()).unwrap();

    let bad = env.run(&["verify"]).expect(5);
    assert!(bad.stdout.lines().any(|l| l.starts_with("missing    org/other@") && l.ends_with("/vocab.txt")), "{}", bad.stdout);
    assert!(bad.stdout.contains("1 file valid, 0 corrupted, 1 missing in 2 repositories"), "{}", bad.stdout);
    assert!(bad.stderr.contains("/vocab.txt` (missing)"), "{}", bad.stderr);
    let json = env.run(&["--json", "verify"]).expect(5);
    let report = json.json();
    assert_eq!(report["missing_models"], serde_json::json!(["org/other"]), "{report}");
    assert_eq!(report["valid_models"], serde_json::json!(["org/model"]), "{report}");
    assert_eq!(report["corrupted_models"], serde_json::json!([]), "{report}");
    assert_eq!(json.json_error()["error"]["exit_code"], 5);

    let repaired = env.run(&["--json", "verify", "--repair"]).ok().json();
    assert_eq!(repaired["refetched"].as_array().unwrap().len(), 1, "{repaired}");
    assert_eq!(std::fs::read_to_string(&vocab).unwrap(), "a\nb\nc\n");
    env.run(&["verify"]).ok();
}

/// Offline, or cache-only (`auto_download = false`), a damaged cached file is corruption
/// (exit 5, with the repair hint), never "not cached" (exit 4).
#[test]
fn a_corrupted_file_is_an_integrity_error_offline_and_cache_only() {
    let hub = hub();
    let env = Env::new(&hub);
    let etag = hub.file("org/model", "main", "model.safetensors").unwrap().etag;
    let blob = env.hub_dir().join(format!("models--org--model/blobs/{etag}"));
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--offline", "get", "org/model"], &[]),
        (&["--offline", "get", "org/model", "model.safetensors"], &[]),
        (&["get", "org/model"], &["MODELCACHE_AUTO_DOWNLOAD", "false"]),
        (&["get", "org/model", "model.safetensors"], &["MODELCACHE_AUTO_DOWNLOAD", "false"]),
    ];
    for (args, var) in cases {
        env.run(&["get", "org/model"]).ok();
        std::thread::sleep(std::time::Duration::from_millis(20));
        corrupt(&blob);
        let mut cmd = env.command(args);
        if let [k, v] = var {
            cmd.env(k, v);
        }
        let run = crate::Run::from(&cmd.output().unwrap()).expect(5);
        assert!(run.stderr.contains("is corrupted"), "{args:?} {var:?}: {}", run.stderr);
        assert!(run.stderr.contains("hint: the corrupted copy was removed: run `modelcache verify --repair`"), "{}", run.stderr);
        assert!(!blob.exists(), "{args:?}: the damaged blob was removed");
    }
}

#[test]
fn prune_max_size_brings_the_cache_under_the_limit_and_keeps_pinned_repos() {
    let big = |id: &str, seed| RepoSpec::model(id).lfs_file("w.bin", Content::generated(100 * 1024, seed));
    let hub = TestHub::start_blocking([big("org/a", 1), big("org/b", 2), big("org/c", 3), big("org/keep", 4)]);
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    for r in ["org/keep", "org/a", "org/b", "org/c"] {
        env.run(&["get", r, "w.bin"]).ok();
    }
    env.run(&["pin", "org/keep"]).ok();
    let dry = env.run(&["--json", "prune", "--max-size", "250KiB", "--dry-run"]).ok().json();
    assert!(!dry["evicted"].as_array().unwrap().is_empty());
    assert_eq!(env.run(&["--json", "stats"]).ok().json()["total_size_bytes"], 400 * 1024, "a dry run removes nothing");

    let run = env.run(&["prune", "--max-size", "250KiB"]).ok();
    assert!(run.stdout.contains("evicted  org/a@") && run.stdout.contains("over size"), "{}", run.stdout);
    let after = env.run(&["--json", "stats"]).ok().json();
    assert!(after["total_size_bytes"].as_u64().unwrap() <= 250 * 1024, "{after}");
    let left: Vec<String> = env
        .run(&["--json", "ls"])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["model_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(left.contains(&"org/keep".to_owned()), "the pinned repo stays: {left:?}");
    assert!(!left.contains(&"org/a".to_owned()), "the least recently used goes first: {left:?}");

    env.run(&["prune", "--max-size", "lots"]).expect(2);
    env.run(&["prune", "--max-age", "soon"]).expect(2);
    let stale = env.hub_dir().join(format!("models--org--keep/blobs/{}.incomplete", "ab".repeat(32)));
    std::fs::write(&stale, b"partial").unwrap();
    let aged = env.run(&["--json", "prune", "--max-age", "0s"]).ok().json();
    assert_eq!(aged["stale_incomplete_removed"], 1, "stale downloads are cleared: {aged}");
    assert!(!stale.exists());
    assert!(aged["evicted"].as_array().unwrap().iter().all(|e| e["reason"] == "expired"));
    let left = env.run(&["--json", "ls"]).ok().json();
    assert_eq!(left.as_array().unwrap().len(), 1, "only the pinned repo is left: {left}");
}

#[test]
fn verify_reports_a_garbage_ref_and_repair_removes_it_then_a_get_writes_it_again() {
    let hub = hub();
    let env = Env::new(&hub);
    let path = env.run(&["get", "org/other", "vocab.txt"]).ok().stdout.trim().to_owned();
    let main = env.hub_dir().join("models--org--other/refs/main");
    std::fs::write(&main, b"\xff\xfe not a commit").unwrap();

    let bad = env.run(&["verify"]).expect(5);
    assert!(bad.stdout.contains("bad ref    models--org--other/refs/main"), "{}", bad.stdout);
    assert!(bad.stderr.contains("(bad ref)") && bad.stderr.contains("hint: run `modelcache verify --repair`"), "{}", bad.stderr);
    assert_eq!(env.run(&["--json", "verify"]).expect(5).json()["bad_refs"], serde_json::json!(["models--org--other/refs/main"]));
    // A commit-addressed file still answers offline: the ref is treated as absent, not as an error.
    let commit = hub.file("org/other", "main", "vocab.txt").unwrap().commit.to_string();
    let at_commit = env.run(&["--offline", "get", &format!("org/other@{commit}"), "vocab.txt"]).ok();
    assert_eq!(at_commit.stdout.trim(), path);

    let repaired = env.run(&["verify", "--repair"]).ok();
    assert!(repaired.stdout.contains("repaired: removed 1 damaged entry"), "{}", repaired.stdout);
    assert!(!main.exists(), "the repair removed the garbage ref");
    env.run(&["verify"]).ok();
    assert_eq!(env.run(&["get", "org/other", "vocab.txt"]).ok().stdout.trim(), path);
    assert_eq!(std::fs::read_to_string(&main).unwrap(), commit, "an online get wrote the ref again");
}
