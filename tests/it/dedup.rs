//! Storing each byte once: a second repo that shares files with a cached one transfers
//! none of them (its blobs become hard links to the cached ones), sizes count the shared
//! inode once, and removing either repo, by any tool, leaves the other whole.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use cache_testkit::{Content, RepoSpec, TestHub, python};

use crate::{Env, Run};

/// Bytes of the LFS weights the two repos share.
const SHARED: u64 = 64 * 1024 * 1024;
/// Bytes of the tokenizer (a regular, git-sha1 file) they share.
const TOKENIZER: u64 = 5000;

/// `org/base` and `org/finetune`: the same weights and tokenizer, their own configs.
fn family(shared: u64) -> Vec<RepoSpec> {
    let repo = |id: &str, config: &str| {
        RepoSpec::model(id)
            .file("config.json", config.to_owned())
            .file("tokenizer.json", Content::generated(TOKENIZER, 3))
            .lfs_file("model.safetensors", Content::generated(shared, 11))
    };
    vec![repo("org/base", r#"{"base": true}"#), repo("org/finetune", r#"{"base": false, "lr": 0.0001}"#)]
}

/// `python -c script` on the env's cache, offline.
fn python(env: &Env, script: &str) -> Run {
    let mut c = env.with_env(python::require_interpreter());
    c.args(["-c", script]).env("HF_HUB_OFFLINE", "1").env("HF_HUB_DISABLE_TELEMETRY", "1");
    Run::from(&c.output().unwrap()).ok()
}

/// The real `hf` command of the venv, on the env's cache.
pub(crate) fn hf(env: &Env, args: &[&str]) -> Run {
    let hf = python::require_interpreter().with_file_name("hf");
    let mut c = env.with_env(&hf);
    c.args(args).env("HF_HUB_DISABLE_TELEMETRY", "1");
    Run::from(&c.output().unwrap())
}

/// Gives a (read-only) blob its write permission back, as a user editing it would.
pub(crate) fn writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
}

fn stats(env: &Env) -> serde_json::Value {
    env.run(&["--json", "stats"]).ok().json()
}

fn snapshot_file(snapshot: &str, path: &str) -> PathBuf {
    Path::new(snapshot.trim()).join(path)
}

/// Both repos cached, `org/base` first; returns their snapshot folders.
fn both(env: &Env) -> (String, String) {
    let base = env.run(&["get", "org/base"]).ok().stdout;
    let finetune = env.run(&["get", "org/finetune"]).ok().stdout;
    (base.trim().to_owned(), finetune.trim().to_owned())
}

#[test]
fn a_second_repo_sharing_files_transfers_none_of_them_and_shares_their_inodes() {
    let hub = TestHub::start_blocking(family(SHARED));
    let env = Env::new(&hub);
    let base = env.run(&["get", "org/base"]).ok().stdout.trim().to_owned();
    let before = stats(&env);
    hub.reset_stats();
    let finetune = env.run(&["get", "org/finetune"]).ok().stdout.trim().to_owned();

    let served = hub.stats();
    assert_eq!(served.bytes_for("/cdn/"), 0, "the shared weights were not transferred: {:?}", served.bytes_by_path);
    assert_eq!(served.bytes_for("tokenizer.json"), 0, "the shared tokenizer was not transferred: {:?}", served.bytes_by_path);
    assert!(served.bytes_for("config.json") == 29, "its own config was: {:?}", served.bytes_by_path);

    for (path, size) in [("model.safetensors", SHARED), ("tokenizer.json", TOKENIZER)] {
        let a = std::fs::metadata(snapshot_file(&base, path)).unwrap();
        let b = std::fs::metadata(snapshot_file(&finetune, path)).unwrap();
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "{path}: one inode");
        assert_eq!((b.nlink(), b.len()), (2, size), "{path}: two names, whole");
        assert_eq!(b.mode() & 0o222, 0, "{path}: published blobs are read-only");
        let blob = std::fs::symlink_metadata(std::fs::canonicalize(snapshot_file(&finetune, path)).unwrap()).unwrap();
        assert!(blob.file_type().is_file(), "{path}: the blob is a regular file, not a link");
    }

    let after = stats(&env);
    let config = r#"{"base": false, "lr": 0.0001}"#.len() as u64;
    let grew = after["total_size_bytes"].as_u64().unwrap() - before["total_size_bytes"].as_u64().unwrap();
    assert_eq!(grew, config, "the cache grew by the new config only: {after}");
    assert_eq!(
        after["logical_size_bytes"].as_u64().unwrap() - after["total_size_bytes"].as_u64().unwrap(),
        SHARED + TOKENIZER,
        "the logical size counts the shared files per repo: {after}"
    );
    let text = env.run(&["stats"]).ok().stdout;
    assert!(text.contains("logical size"), "{text}");
    assert!(text.contains("shared between repositories"), "{text}");
    let ls = env.run(&["ls"]).ok().stdout;
    let total = ls.lines().find(|l| l.starts_with("total:")).unwrap();
    let physical = after["total_size_bytes"].as_u64().unwrap();
    assert!(total.contains(&format!("{} MiB on disk", physical / (1024 * 1024))), "ls counts the shared inode once: {total}");

    env.run(&["verify"]).ok();
    let read = python(
        &env,
        r#"
import hashlib, json, warnings
from huggingface_hub import hf_hub_download, scan_cache_dir
out = {}
for repo in ["org/base", "org/finetune"]:
    for f in ["model.safetensors", "tokenizer.json"]:
        out[repo + "/" + f] = hashlib.sha256(open(hf_hub_download(repo, f), "rb").read()).hexdigest()
info = scan_cache_dir()
out["warnings"] = [str(w) for w in info.warnings]
print(json.dumps(out))
"#,
    );
    let v: serde_json::Value = serde_json::from_str(read.stdout.trim()).unwrap();
    assert_eq!(v["org/base/model.safetensors"], v["org/finetune/model.safetensors"]);
    assert_eq!(v["org/base/tokenizer.json"], v["org/finetune/tokenizer.json"]);
    assert_eq!(v["warnings"], serde_json::json!([]));

    // Read-only, yet changed anyway (root ignores the mode): verify still finds it.
    let tokenizer = std::fs::canonicalize(snapshot_file(&finetune, "tokenizer.json")).unwrap();
    let mut bytes = std::fs::read(&tokenizer).unwrap();
    bytes[0] ^= 1;
    writable(&tokenizer);
    std::fs::write(&tokenizer, &bytes).unwrap();
    let report = env.run(&["verify", "org/finetune"]).expect(5);
    assert!(report.stdout.contains("tokenizer.json"), "{}", report.stdout);
}

/// How one repo of the pair is removed.
#[derive(Clone, Copy, Debug)]
enum Removal {
    Modelcache,
    HfCacheRm,
    RmRf,
}

fn remove(env: &Env, repo: &str, how: Removal) {
    match how {
        Removal::Modelcache => {
            let removed = env.run(&["--json", "rm", repo]).ok().json();
            let own_config = if repo == "org/base" { 14 } else { 29 };
            assert_eq!(removed["bytes_freed"].as_u64(), Some(own_config), "only its own config is freed: {removed}");
        }
        Removal::HfCacheRm => {
            let run = hf(env, &["cache", "rm", &format!("model/{repo}"), "--yes"]);
            assert_eq!(run.code, 0, "hf cache rm failed:\n{}\n{}", run.stdout, run.stderr);
        }
        Removal::RmRf => std::fs::remove_dir_all(env.hub_dir().join(format!("models--{}", repo.replace('/', "--")))).unwrap(),
    }
}

#[test]
fn removing_either_repo_by_any_tool_leaves_the_other_verified() {
    let hub = TestHub::start_blocking(family(1024 * 1024));
    for how in [Removal::Modelcache, Removal::HfCacheRm, Removal::RmRf] {
        for (gone, kept) in [("org/base", "org/finetune"), ("org/finetune", "org/base")] {
            let env = Env::new(&hub);
            let snapshots = both(&env);
            let kept_snapshot = if kept == "org/base" { &snapshots.0 } else { &snapshots.1 };
            remove(&env, gone, how);
            let report = env.run(&["--json", "verify", kept]).ok().json();
            assert_eq!(report["valid_files"], 3, "{how:?} of {gone}: {report}");
            let weights = std::fs::metadata(snapshot_file(kept_snapshot, "model.safetensors")).unwrap();
            assert_eq!((weights.len(), weights.nlink()), (1024 * 1024, 1), "{how:?} of {gone}: the other name is whole");
            let stats = stats(&env);
            let listed = env.run(&["--json", "ls"]).ok().json();
            let sizes: u64 = listed.as_array().unwrap().iter().map(|r| r["size_bytes"].as_u64().unwrap()).sum();
            assert_eq!(stats["total_size_bytes"].as_u64(), Some(sizes), "{how:?} of {gone}: {stats}");
        }
    }
}

#[test]
fn removing_one_repo_while_the_other_is_fetched_never_harms_the_fetched_one() {
    let hub = TestHub::start_blocking(family(256 * 1024));
    let weights = Content::generated(256 * 1024, 11).to_vec();
    for round in 0..6 {
        let env = Env::new(&hub);
        env.run(&["get", "org/base"]).ok();
        let mut rm = env.command(&["rm", "org/base"]);
        let mut get = env.command(&["get", "org/finetune", "model.safetensors", "tokenizer.json"]);
        let (rm, get) = spawn_both(&mut rm, &mut get);
        assert_eq!(rm.code, 0, "round {round}: rm failed: {}", rm.stderr);
        let got = get.ok();
        assert_eq!(std::fs::read(got.lines()[0]).unwrap(), weights, "round {round}: the weights are whole");
        let report = env.run(&["--json", "verify", "org/finetune"]).ok().json();
        assert_eq!(report["valid_files"], 2, "round {round}: {report}");
        assert!(env.run(&["--offline", "get", "org/base", "config.json"]).code != 0, "round {round}: org/base is gone");
    }
}

/// Starts both commands at once and waits for both.
fn spawn_both(a: &mut Command, b: &mut Command) -> (Run, Run) {
    use std::process::Stdio;
    let a = a.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let b = b.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    (Run::from(&a.wait_with_output().unwrap()), Run::from(&b.wait_with_output().unwrap()))
}

/// `python -c script` on the env's cache, online (against the testkit hub).
fn python_online(env: &Env, script: &str) -> Run {
    let mut c = env.with_env(python::require_interpreter());
    c.args(["-c", script]).env("HF_HUB_DISABLE_TELEMETRY", "1").env("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    Run::from(&c.output().unwrap()).ok()
}

fn inode(path: &Path) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap();
    (m.ino(), m.nlink())
}

#[test]
fn dedup_links_the_copies_python_wrote_and_reports_the_bytes_it_saved() {
    const SIZE: u64 = 1024 * 1024;
    let hub = TestHub::start_blocking(family(SIZE));
    let env = Env::new(&hub);
    let py =
        python_online(&env, "from huggingface_hub import snapshot_download as s\nprint(s('org/base'))\nprint(s('org/finetune'))");
    let snapshots: Vec<&str> = py.stdout.lines().collect();
    let (base, finetune) = (Path::new(snapshots[0]), Path::new(snapshots[1]));
    assert_ne!(inode(&base.join("model.safetensors")).0, inode(&finetune.join("model.safetensors")).0, "Python wrote two copies");
    let before = stats(&env);

    let dry = env.run(&["--json", "dedup", "--dry-run"]).ok().json();
    assert_eq!((dry["digests"].as_u64(), dry["linked"].as_u64()), (Some(2), Some(2)), "{dry}");
    assert_eq!(dry["bytes_saved"].as_u64(), Some(SIZE + TOKENIZER), "{dry}");
    assert_eq!(inode(&finetune.join("model.safetensors")).1, 1, "a dry run changes nothing");

    let done = env.run(&["--json", "dedup"]).ok().json();
    assert_eq!(done["bytes_saved"].as_u64(), Some(SIZE + TOKENIZER), "{done}");
    assert_eq!(done["skipped"], serde_json::json!([]), "{done}");
    for f in ["model.safetensors", "tokenizer.json"] {
        let (a, b) = (inode(&base.join(f)), inode(&finetune.join(f)));
        assert_eq!((a.0, a.1), (b.0, 2), "{f}: one inode, two names");
    }
    let after = stats(&env);
    let shrunk = before["total_size_bytes"].as_u64().unwrap() - after["total_size_bytes"].as_u64().unwrap();
    assert_eq!(shrunk, SIZE + TOKENIZER, "stats count the shared blobs once: {after}");
    env.run(&["verify"]).ok();
    let text = env.run(&["dedup"]).ok().stdout;
    assert_eq!(text, "no blob is held twice: nothing to deduplicate\n");

    let read = python(
        &env,
        r#"
import json
from huggingface_hub import hf_hub_download, scan_cache_dir
info = scan_cache_dir()
sizes = [len(open(hf_hub_download(r, "model.safetensors"), "rb").read()) for r in ["org/base", "org/finetune"]]
print(json.dumps({"warnings": [str(w) for w in info.warnings], "sizes": sizes}))
"#,
    );
    let v: serde_json::Value = serde_json::from_str(read.stdout.trim()).unwrap();
    assert_eq!(v, serde_json::json!({"warnings": [], "sizes": [SIZE, SIZE]}));
}

#[test]
fn dedup_leaves_a_copy_whose_bytes_do_not_match_its_digest() {
    let hub = TestHub::start_blocking(family(64 * 1024));
    let env = Env::new(&hub);
    python_online(&env, "from huggingface_hub import snapshot_download as s\ns('org/base')\ns('org/finetune')");
    let blobs = env.hub_dir().join("models--org--finetune/blobs");
    let weights = Content::generated(64 * 1024, 11).sha256().to_string();
    let damaged = blobs.join(&weights);
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[100] ^= 1;
    writable(&damaged);
    std::fs::write(&damaged, &bytes).unwrap();
    let done = env.run(&["--json", "dedup"]).ok().json();
    assert_eq!(done["linked"].as_u64(), Some(1), "only the tokenizer: {done}");
    let skipped = done["skipped"].to_string();
    assert!(skipped.contains(&weights) && skipped.contains("do not match"), "{done}");
    assert_eq!(std::fs::read(&damaged).unwrap(), bytes, "the damaged copy is left for verify to report");
}
