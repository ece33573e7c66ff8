//! huggingface_hub 2.x's shared blob store (`<hub>/blobs/<2hex>/<xet_hash>`), laid out by
//! the real package: a listing that names a payload's Xet hash is linked with the store's
//! protocol and no transfer, and removal follows its sweep rules.

use std::path::{Path, PathBuf};

use cache_testkit::{Content, RepoSpec, TestHub, python};

use crate::dedup::hf;
use crate::{Env, Run};

const SIZE: u64 = 3 * 1024 * 1024;
/// The Xet hash the fixture files the weights under.
const XET: &str = "7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

fn repos() -> Vec<RepoSpec> {
    vec![
        RepoSpec::model("org/base").file("config.json", "{}").lfs_file("model.safetensors", Content::generated(SIZE, 5)),
        RepoSpec::model("org/finetune").file("config.json", r#"{"tuned": true}"#).xet_file(
            "model.safetensors",
            Content::generated(SIZE, 5),
            XET,
        ),
    ]
}

fn python(env: &Env, script: &str, extra: &[(&str, &str)]) -> Run {
    let mut c = env.with_env(python::require_interpreter());
    c.args(["-c", script]).env("HF_HUB_DISABLE_TELEMETRY", "1").env("HF_HUB_DISABLE_PROGRESS_BARS", "1");
    for (k, v) in extra {
        c.env(k, v);
    }
    let run = Run::from(&c.output().unwrap());
    assert_eq!(run.code, 0, "python failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

/// `org/base` downloaded by Python, its weights then published into the shared store by
/// the package's own `publish_blob_to_shared_store`.
fn fixture(env: &Env) -> PathBuf {
    let script = format!(
        r#"
import os
from huggingface_hub import hf_hub_download
from huggingface_hub.constants import HF_HUB_CACHE
from huggingface_hub.utils._shared_blobs import publish_blob_to_shared_store
path = hf_hub_download("org/base", "model.safetensors")
blob = os.path.realpath(path)
assert publish_blob_to_shared_store(blob_path=blob, xet_hash="{XET}", cache_dir=HF_HUB_CACHE, expected_size={SIZE})
"#
    );
    python(env, &script, &[]);
    let payload = env.hub_dir().join("blobs").join(&XET[..2]).join(XET);
    assert!(std::fs::symlink_metadata(&payload).unwrap().is_file(), "the package published the payload");
    payload
}

fn manifest(payload: &Path) -> Vec<String> {
    std::fs::read_to_string(payload.with_file_name(format!("{XET}.refs"))).unwrap().lines().map(str::to_owned).collect()
}

fn weights_blob(env: &Env, repo: &str) -> PathBuf {
    let sha = Content::generated(SIZE, 5).sha256().to_string();
    env.hub_dir().join(format!("models--{}/blobs/{sha}", repo.replace('/', "--")))
}

#[test]
fn a_listed_xet_hash_links_the_payload_with_no_transfer_and_the_last_user_removes_it() {
    let hub = TestHub::start_blocking(repos());
    let env = Env::new(&hub);
    let payload = fixture(&env);
    hub.reset_stats();
    env.run(&["get", "org/finetune"]).ok();
    assert_eq!(hub.stats().bytes_for("/cdn/"), 0, "no transfer: {:?}", hub.stats().bytes_by_path);
    let link = std::fs::read_link(weights_blob(&env, "org/finetune")).unwrap();
    assert_eq!(link, Path::new("../../blobs").join(&XET[..2]).join(XET));
    let sha = Content::generated(SIZE, 5).sha256().to_string();
    assert_eq!(manifest(&payload), [format!("models--org--base/blobs/{sha}"), format!("models--org--finetune/blobs/{sha}")]);
    env.run(&["verify", "org/finetune"]).ok();
    let stats = env.run(&["--json", "stats"]).ok().json();
    assert_eq!(
        stats["total_size_bytes"].as_u64(),
        Some(SIZE + 15),
        "the payload counts once (Python fetched only the weights of org/base): {stats}"
    );

    let read = python(
        &env,
        r#"
from huggingface_hub import hf_hub_download, scan_cache_dir
print(len(open(hf_hub_download("org/finetune", "model.safetensors"), "rb").read()))
print([str(w) for w in scan_cache_dir().warnings])
"#,
        &[("HF_HUB_OFFLINE", "1")],
    );
    assert_eq!(read.stdout, format!("{SIZE}\n[]\n"));

    for args in [&["cache", "rm", "model/org/base", "--yes"][..], &["cache", "prune", "--yes"][..]] {
        let run = hf(&env, args);
        assert_eq!(run.code, 0, "hf {args:?}: {}\n{}", run.stdout, run.stderr);
    }
    assert!(payload.exists(), "Python keeps the payload our repo uses");
    assert_eq!(manifest(&payload), [format!("models--org--finetune/blobs/{sha}")]);
    env.run(&["verify", "org/finetune"]).ok();

    let removed = env.run(&["--json", "rm", "org/finetune"]).ok().json();
    assert_eq!(removed["bytes_freed"].as_u64(), Some(SIZE + 15), "{removed}");
    assert!(
        !payload.exists() && !payload.with_file_name(format!("{XET}.refs")).exists(),
        "the last user took payload and manifest"
    );
}

#[test]
fn a_payload_whose_manifest_cannot_be_read_is_kept() {
    let hub = TestHub::start_blocking(repos());
    let env = Env::new(&hub);
    let payload = fixture(&env);
    env.run(&["get", "org/finetune"]).ok();
    // verify follows the link to the payload: a changed byte there is found.
    let mut bytes = std::fs::read(&payload).unwrap();
    bytes[7] ^= 1;
    crate::dedup::writable(&payload);
    std::fs::write(&payload, &bytes).unwrap();
    let report = env.run(&["verify", "org/finetune"]).expect(5);
    assert!(report.stdout.contains("model.safetensors"), "{}", report.stdout);
    std::fs::write(payload.with_file_name(format!("{XET}.refs")), b"\xff\xfe not utf-8\n").unwrap();
    env.run(&["rm", "org/finetune"]).ok();
    let run = hf(&env, &["cache", "rm", "model/org/base", "--yes"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(payload.exists(), "a leak beats a loss");
}

#[test]
fn the_shared_store_is_not_used_when_huggingface_hub_would_not_use_it() {
    for var in ["HF_HUB_DISABLE_SHARED_BLOBS", "HF_HUB_DISABLE_XET"] {
        let hub = TestHub::start_blocking(repos());
        let mut env = Env::new(&hub);
        let payload = fixture(&env);
        env.var(var, "1");
        hub.reset_stats();
        env.run(&["get", "org/finetune"]).ok();
        assert_eq!(hub.stats().bytes_for("/cdn/"), SIZE, "{var}: downloaded");
        assert!(std::fs::symlink_metadata(weights_blob(&env, "org/finetune")).unwrap().is_file(), "{var}: a regular blob");
        assert_eq!(manifest(&payload).len(), 1, "{var}: the manifest is untouched");
    }
}

#[test]
fn hf_hub_disable_symlinks_makes_snapshot_files_copies_as_huggingface_hub_does() {
    let hub = TestHub::start_blocking(repos());
    let mut env = Env::new(&hub);
    env.var("HF_HUB_DISABLE_SYMLINKS", "1");
    let got = env.run(&["get", "org/base", "config.json"]).ok();
    let file = std::fs::symlink_metadata(got.stdout.trim()).unwrap();
    assert!(file.file_type().is_file(), "a real file in snapshots/");
    assert_eq!(std::fs::read_to_string(got.stdout.trim()).unwrap(), "{}");
}
