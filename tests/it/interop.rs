//! Interop with the real Python `huggingface_hub` (2.x, from the venv `cargo xtask ci`
//! creates; these tests fail, never skip, without it): one cache, both directions, and
//! one transfer when both download the same blob at once.

use std::process::{Command, Stdio};

use cache_testkit::{Content, RepoSpec, Route, TestHub, python};

use crate::{Env, Run, hub};

/// `python -c script` with the same environment the binary gets.
fn python(env: &Env, script: &str, extra: &[(&str, &str)]) -> Command {
    let mut c = env.with_env(python::require_interpreter());
    c.args(["-c", script])
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("PYTHONWARNINGS", "always");
    for (k, v) in extra {
        c.env(k, v);
    }
    c
}

pub(crate) fn run_python(env: &Env, script: &str, extra: &[(&str, &str)]) -> Run {
    Run::from(&python(env, script, extra).output().unwrap()).ok()
}

const READ_BACK: &str = r#"
import json, warnings
from huggingface_hub import hf_hub_download, snapshot_download, scan_cache_dir
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    config = hf_hub_download("org/model", "config.json")
    weights = hf_hub_download("org/model", "model.safetensors", revision="v1")
    snapshot = snapshot_download("org/model")
    data = hf_hub_download("org/data", "train.csv", repo_type="dataset")
    info = scan_cache_dir()
print(json.dumps({
    "config": config, "weights": weights, "snapshot": snapshot, "data": data,
    "repos": sorted([r.repo_type + ":" + r.repo_id for r in info.repos]),
    "files": sum(len(rev.files) for r in info.repos for rev in r.revisions),
    "scan_warnings": [str(w) for w in info.warnings],
    "python_warnings": [str(w.message) for w in caught],
}))
"#;

#[test]
fn files_fetched_by_modelcache_are_found_offline_by_huggingface_hub() {
    let hub = hub();
    let env = Env::new(&hub);
    let got = env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    env.run(&["get", "org/model@v1", "model.safetensors"]).ok();
    env.run(&["get", "org/model"]).ok();
    env.run(&["get", "datasets/org/data", "train.csv"]).ok();
    let before = hub.stats().total_requests();
    let run = run_python(&env, READ_BACK, &[("HF_HUB_OFFLINE", "1")]);
    let v: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    let lines = got.lines();
    assert_eq!(v["config"], lines[0]);
    assert_eq!(v["weights"], lines[1], "a tag resolves through refs/ as well");
    assert!(lines[0].starts_with(v["snapshot"].as_str().unwrap()));
    assert_eq!(v["repos"], serde_json::json!(["dataset:org/data", "model:org/model"]));
    assert_eq!(v["files"], 4);
    assert_eq!(v["scan_warnings"], serde_json::json!([]), "scan_cache_dir reports no warnings");
    assert_eq!(v["python_warnings"], serde_json::json!([]), "{}", run.stderr);
    assert_eq!(hub.stats().total_requests(), before, "Python asked the hub nothing");
}

const DOWNLOAD: &str = r#"
from huggingface_hub import hf_hub_download, snapshot_download
print(snapshot_download("org/model"))
print(hf_hub_download("org/other", "vocab.txt"))
"#;

#[test]
fn files_fetched_by_huggingface_hub_are_offline_hits_for_modelcache_and_verify() {
    let hub = hub();
    let env = Env::new(&hub);
    let py = run_python(&env, DOWNLOAD, &[]);
    let (snapshot, vocab) = (py.lines()[0].to_owned(), py.lines()[1].to_owned());
    let requests = hub.stats().total_requests();
    let file = env.run(&["--offline", "get", "org/model", "model.safetensors", "config.json"]).ok();
    assert_eq!(file.lines(), [format!("{snapshot}/model.safetensors"), format!("{snapshot}/config.json")]);
    assert_eq!(env.run(&["--offline", "get", "org/model"]).ok().stdout.trim(), snapshot);
    assert_eq!(env.run(&["--offline", "get", "org/other", "vocab.txt"]).ok().stdout.trim(), vocab);
    assert_eq!(hub.stats().total_requests(), requests, "offline hits ask nothing");
    let report = env.run(&["--json", "verify"]).ok().json();
    assert_eq!(report["valid_files"], 4);
    assert_eq!(report["valid_models"], serde_json::json!(["org/model", "org/other"]));
    let ls = env.run(&["ls"]).ok();
    assert!(ls.stdout.contains("org/model") && ls.stdout.contains("org/other"), "{}", ls.stdout);
}

const CHANGE: &str = r#"
import json
from huggingface_hub import hf_hub_download, scan_cache_dir
hf_hub_download("org/other", "notes.md")
info = scan_cache_dir()
model = next(r for r in info.repos if r.repo_id == "org/model")
info.delete_revisions(*[rev.commit_hash for rev in model.revisions]).execute()
info = scan_cache_dir()
print(json.dumps(sorted([r.repo_id, sum(len(rev.files) for rev in r.revisions), r.size_on_disk] for r in info.repos)))
"#;

/// `ls` answers unchanged repos from the index: what Python adds or deletes between two
/// listings must show all the same, in another process, and the answer must not change
/// once the index is trusted.
#[test]
fn ls_sees_what_huggingface_hub_changed_since_the_last_listing() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    env.run(&["ls"]).ok();
    let python: serde_json::Value = serde_json::from_str(run_python(&env, CHANGE, &[]).stdout.trim()).unwrap();
    let summary = |ls: &serde_json::Value| {
        let repos = ls.as_array().unwrap().iter().map(|r| serde_json::json!([r["repo_id"], r["files"], r["size_bytes"]]));
        serde_json::Value::Array(repos.collect())
    };
    let after = env.run(&["--json", "ls"]).ok().json();
    assert_eq!(summary(&after), python);
    // Past the racy window, a listing records what it scanned and the next one trusts it.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.run(&["ls"]).ok();
    let trusted = env.run(&["-vv", "--json", "ls"]).ok();
    assert!(trusted.stderr.contains("from_index=1 scanned=0"), "{}", trusted.stderr);
    assert_eq!(trusted.json(), after);
}

#[test]
fn python_and_modelcache_downloading_one_blob_at_once_make_one_transfer() {
    const SIZE: u64 = 3 << 20;
    let hub = TestHub::start_blocking([RepoSpec::model("org/big")
        .file("config.json", "{}")
        .lfs_file("w.bin", Content::generated(SIZE, 11))]);
    hub.throttle(Some(2 << 20)); // ~1.5 s: the two overlap
    let env = Env::new(&hub);
    let script = "from huggingface_hub import hf_hub_download\nprint(hf_hub_download('org/big', 'w.bin'))";
    let py = python(&env, script, &[]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let ours = env.command(&["get", "org/big", "w.bin"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (py, ours) = (py.wait_with_output().unwrap(), ours.wait_with_output().unwrap());
    assert!(py.status.success(), "python: {}", String::from_utf8_lossy(&py.stderr));
    assert!(ours.status.success(), "modelcache: {}", String::from_utf8_lossy(&ours.stderr));
    assert_eq!(String::from_utf8_lossy(&py.stdout).trim(), String::from_utf8_lossy(&ours.stdout).trim());
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1, "one transfer between the two processes: {:?}", s.requests);
    assert_eq!(s.bytes_for("/cdn/"), SIZE);
    env.run(&["verify"]).ok();
}

#[test]
fn ids_and_revisions_as_huggingface_hub_lists_them_name_the_same_repositories() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model", "config.json"]).ok();
    env.run(&["get", "datasets/org/data", "train.csv"]).ok();
    env.run(&["get", "spaces/org/app"]).ok();
    let script = "from huggingface_hub import scan_cache_dir\n\
                  for r in sorted(scan_cache_dir().repos, key=lambda r: r.cache_id):\n    \
                  print(r.cache_id, *[rev.commit_hash for rev in r.revisions])";
    let run = run_python(&env, script, &[("HF_HUB_OFFLINE", "1")]);
    let lines = run.lines();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    for line in lines {
        let (id, commit) = line.split_once(' ').unwrap();
        let verified = env.run(&["--json", "verify", id]).ok().json();
        assert_eq!(verified["valid_models"].as_array().unwrap().len(), 1, "{id}: {verified}");
        let pinned = env.run(&["--json", "pin", commit]).ok();
        assert!(pinned.stdout.contains(commit), "{id}@{commit}: {}", pinned.stdout);
    }
}
