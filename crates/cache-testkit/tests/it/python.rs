//! Fidelity: the real `huggingface_hub` downloads from the testkit and lays out its cache.

use std::path::Path;
use std::process::Command;

use cache_testkit::{Route, TestHub, python};

use crate::repos;

const SCRIPT: &str = r#"
import json
from huggingface_hub import hf_hub_download, snapshot_download
out = {
    "config": hf_hub_download("org/model", "config.json"),
    "model": hf_hub_download("org/model", "model.safetensors"),
    "pr": hf_hub_download("org/model", "config.json", revision="refs/pr/1"),
    "secret": hf_hub_download("org/secret", "a.txt", token="hf_ok"),
    "data": hf_hub_download("org/data", "train.csv", repo_type="dataset"),
    "snapshot": snapshot_download("org/model"),
}
try:
    hf_hub_download("org/model", "missing.txt")
except Exception as e:
    out["missing"] = type(e).__name__
print(json.dumps(out))
"#;

#[test]
fn huggingface_hub_downloads_files_and_snapshots_from_the_testkit() {
    let interpreter = python::require_interpreter();
    let hub = TestHub::start_blocking(repos());
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new(interpreter)
        .args(["-c", SCRIPT])
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_CACHE", cache.path())
        .env("HF_HOME", cache.path().join("home"))
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    assert!(out.status.success(), "python failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let paths: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let read = |key: &str| std::fs::read(paths[key].as_str().unwrap()).unwrap();

    let config = hub.file("org/model", "main", "config.json").unwrap();
    let model = hub.file("org/model", "main", "model.safetensors").unwrap();
    assert_eq!(read("config"), config.content.to_vec());
    assert_eq!(read("model"), model.content.to_vec());
    assert_eq!(read("pr"), br#"{"a": 2}"#);
    assert_eq!(read("secret"), b"s");
    assert_eq!(read("data"), b"a,b\n1,2\n");
    assert_eq!(paths["missing"], "RemoteEntryNotFoundError");

    // The layout huggingface_hub wrote: blobs named by etag, relative symlinks, refs.
    let repo_dir = cache.path().join("models--org--model");
    let snap = repo_dir.join("snapshots").join(config.commit.as_str());
    assert_eq!(Path::new(paths["snapshot"].as_str().unwrap()), snap);
    for (path, etag) in [("config.json", config.etag), ("model.safetensors", model.etag)] {
        let link = std::fs::read_link(snap.join(path)).unwrap();
        assert_eq!(link, Path::new("../../blobs").join(etag.to_string()), "{path}");
        assert!(repo_dir.join("blobs").join(etag.to_string()).is_file());
    }
    assert_eq!(std::fs::read_link(snap.join("sub/dir/notes.txt")).unwrap().to_str().unwrap().matches("../").count(), 4);
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), config.commit.as_str());
    assert!(repo_dir.join("refs/refs/pr/1").is_file());
    assert!(repo_dir.join("trees").join(format!("{}.json", config.commit)).is_file());
    assert!(repo_dir.join(".no_exist").join(config.commit.as_str()).join("missing.txt").exists());
    assert!(cache.path().join("datasets--org--data/blobs").is_dir());

    // One CDN transfer for the LFS file, none repeated by the snapshot.
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1, "{:?}", s.log);
    assert_eq!(s.cdn_requests_with_authorization, 0);
}
