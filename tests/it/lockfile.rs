//! Manifest, lock, `sync`, `verify --lock` and bundles, end to end: the binary in a
//! project directory against the testkit Hub (and, for bundles, with no Hub at all).

use std::path::{Path, PathBuf};

use cache_testkit::{Content, RepoSpec, Route};
use modelcache::Lock;

use crate::{Env, Run, files_under, hub, repos};

const MANIFEST: &str = r#"
[[model]]
repo = "org/model"
include = ["*.json", "*.safetensors"]

[[model]]
repo = "org/other"
files = ["vocab.txt"]

[[model]]
repo = "datasets/org/data"
"#;

/// A project directory with `modelcache.toml` (inside the test's temporary directory).
fn project(env: &Env, manifest: &str) -> PathBuf {
    let dir = env.tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("modelcache.toml"), manifest).unwrap();
    dir
}

/// `modelcache args...` run in `dir`.
fn run_in(env: &Env, dir: &Path, args: &[&str]) -> Run {
    Run::from(&env.command(args).current_dir(dir).output().unwrap())
}

fn load_lock(dir: &Path) -> Lock {
    Lock::load(&dir.join("modelcache.lock")).unwrap()
}

/// Removes every file of the hub cache (a fresh machine).
fn wipe(env: &Env) {
    std::fs::remove_dir_all(env.hub_dir()).unwrap();
    std::fs::remove_dir_all(env.home_dir()).unwrap();
}

#[test]
fn lock_downloads_no_body_and_holds_exactly_the_hubs_digests() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    let first = run_in(&env, &dir, &["lock"]).ok();
    assert!(first.stdout.contains("wrote"), "{}", first.stdout);
    let stats = hub.stats();
    assert_eq!(stats.count(Route::ResolveGet) + stats.count(Route::CdnGet), 0, "no file body was requested");
    let lock = load_lock(&dir);
    let listed: Vec<(String, String, u64, String)> = lock
        .models
        .iter()
        .flat_map(|m| m.files.iter().map(move |f| (m.repo.id.to_string(), f.path.to_string(), f.size, f.etag.to_string())))
        .collect();
    let expected: Vec<(String, String, u64, String)> = [
        ("org/model", "config.json"),
        ("org/model", "model.safetensors"),
        ("org/model", "tokenizer.json"),
        ("org/other", "vocab.txt"),
    ]
    .iter()
    .map(|(r, p)| {
        let f = hub.file(r, "main", p).unwrap();
        ((*r).to_owned(), (*p).to_owned(), f.size, f.etag.to_string())
    })
    .collect();
    let data = hub.file("datasets/org/data", "main", "train.csv").unwrap();
    assert_eq!(lock.models.len(), 3);
    assert_eq!(lock.models[2].repo.repo_type, modelcache::RepoType::Dataset);
    assert_eq!(lock.models[2].files[0].etag, data.etag);
    assert_eq!(listed[..4], expected[..], "the lock holds the testkit's digests and sizes");
    assert_eq!(lock.models[0].commit, hub.file("org/model", "main", "config.json").unwrap().commit);
    let text = std::fs::read(dir.join("modelcache.lock")).unwrap();
    let again = run_in(&env, &dir, &["lock", "--json"]).ok().json();
    assert_eq!(again["written"], false);
    assert_eq!(std::fs::read(dir.join("modelcache.lock")).unwrap(), text, "the same manifest and Hub give the same bytes");
    std::fs::remove_file(dir.join("modelcache.lock")).unwrap();
    run_in(&env, &dir, &["lock"]).ok();
    assert_eq!(std::fs::read(dir.join("modelcache.lock")).unwrap(), text, "resolved again from scratch: the same bytes");
}

#[test]
fn sync_locked_downloads_once_then_nothing_and_frozen_offline_asks_nothing() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    run_in(&env, &dir, &["lock"]).ok();
    hub.reset_stats();
    let first = run_in(&env, &dir, &["sync", "--locked", "--json"]).ok().json();
    assert_eq!((first["files"].as_u64(), first["downloaded"].as_u64()), (Some(5), Some(5)));
    let stats = hub.stats();
    assert_eq!(
        stats.count(Route::ResolveGet) + stats.count(Route::CdnGet),
        6,
        "each file once (the LFS one through its redirect)"
    );
    assert_eq!(
        stats.count(Route::ApiRepo) + stats.count(Route::ApiTree) + stats.count(Route::ResolveHead),
        0,
        "no revision, listing or HEAD request"
    );
    hub.reset_stats();
    let second = run_in(&env, &dir, &["sync", "--locked", "--json"]).ok().json();
    assert_eq!((second["present"].as_u64(), second["downloaded"].as_u64()), (Some(5), Some(0)));
    let third = run_in(&env, &dir, &["--offline", "sync", "--frozen"]).ok();
    assert!(third.stdout.contains("5 present, 0 downloaded"), "{}", third.stdout);
    assert_eq!(hub.stats().total_requests(), 0, "a complete lock needs no request");
    let main = std::fs::read_to_string(env.hub_dir().join("models--org--model/refs/main")).unwrap();
    assert_eq!(main, load_lock(&dir).models[0].commit.to_string(), "the requested branch points at the locked commit");
    run_in(&env, &dir, &["verify", "--lock"]).ok();
}

#[test]
fn a_changed_glob_makes_sync_locked_exit_2_naming_modelcache_lock() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    run_in(&env, &dir, &["lock"]).ok();
    let before = std::fs::read(dir.join("modelcache.lock")).unwrap();
    std::fs::write(dir.join("modelcache.toml"), MANIFEST.replace("\"*.json\", ", "")).unwrap();
    hub.reset_stats();
    let run = run_in(&env, &dir, &["sync", "--locked"]).expect(2);
    assert!(run.stderr.contains("org/model") && run.stderr.contains("`modelcache lock`"), "{}", run.stderr);
    assert_eq!(hub.stats().total_requests(), 0);
    assert_eq!(std::fs::read(dir.join("modelcache.lock")).unwrap(), before, "the lock is left as it was");
    // Without --locked, sync locks again first.
    let run = run_in(&env, &dir, &["sync", "--json"]).ok().json();
    assert_eq!(run["relocked"], true);
    assert_eq!(load_lock(&dir).models[0].files.len(), 1, "only the safetensors now");
}

#[test]
fn a_repository_the_hub_lacks_is_exit_3_and_a_missing_manifest_exit_2() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, "[[model]]\nrepo = \"org/nope\"\n");
    let run = run_in(&env, &dir, &["lock"]).expect(3);
    assert!(run.stderr.contains("org/nope"), "{}", run.stderr);
    assert!(!dir.join("modelcache.lock").exists(), "no lock is written");
    std::fs::remove_file(dir.join("modelcache.toml")).unwrap();
    let run = run_in(&env, &dir, &["sync"]).expect(2);
    assert!(run.stderr.contains("no manifest") && run.stderr.contains("modelcache.toml"), "{}", run.stderr);
    let bad = project(&env, "[[model]]\nrepo = \"org/../x\"\n");
    let run = run_in(&env, &bad, &["lock", "--json"]).expect(2);
    assert_eq!(run.json_error()["error"]["kind"], "invalid_input");
}

#[test]
fn a_moved_main_does_not_move_a_frozen_sync() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    run_in(&env, &dir, &["lock"]).ok();
    let locked = load_lock(&dir).models[0].commit;
    let moved = repos().into_iter().next().unwrap().file("config.json", r#"{"hidden_size": 128}"#).commit();
    hub.put_repo(moved);
    assert_ne!(hub.file("org/model", "main", "config.json").unwrap().commit, locked, "the Hub's main moved");
    hub.reset_stats();
    run_in(&env, &dir, &["sync", "--frozen"]).ok();
    assert_eq!(hub.stats().count(Route::ApiRepo), 0, "no revision was resolved");
    let config = env.hub_dir().join(format!("models--org--model/snapshots/{locked}/config.json"));
    assert_eq!(std::fs::read_to_string(config).unwrap(), r#"{"hidden_size": 64}"#, "the locked commit's bytes");
    // `lock` keeps the commit; `--upgrade` moves it.
    run_in(&env, &dir, &["lock"]).ok();
    assert_eq!(load_lock(&dir).models[0].commit, locked);
    let up = run_in(&env, &dir, &["lock", "--upgrade", "org/model"]).ok();
    assert!(up.stdout.contains("updated"), "{}", up.stdout);
    assert_ne!(load_lock(&dir).models[0].commit, locked);
}

#[test]
fn a_cached_file_that_differs_is_reported_and_replaced_only_with_repair() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    run_in(&env, &dir, &["sync"]).ok();
    let etag = hub.file("org/model", "main", "model.safetensors").unwrap().etag;
    let blob = env.hub_dir().join(format!("models--org--model/blobs/{etag}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes.truncate(1000);
    std::fs::write(&blob, &bytes).unwrap();
    hub.reset_stats();
    let run = run_in(&env, &dir, &["sync", "--frozen"]).expect(5);
    assert!(run.stderr.contains("model.safetensors") && run.stderr.contains("--repair"), "{}", run.stderr);
    assert_eq!(hub.stats().total_requests(), 0, "reported, not silently downloaded again");
    run_in(&env, &dir, &["verify", "--lock"]).expect(5);
    let fixed = run_in(&env, &dir, &["sync", "--frozen", "--repair", "--json"]).ok().json();
    assert_eq!(fixed["repaired"].as_array().unwrap().len(), 1, "{fixed}");
    run_in(&env, &dir, &["verify", "--lock"]).ok();
}

/// Two LFS files of the same size, for the swapped-blobs bundle.
fn twins() -> RepoSpec {
    RepoSpec::model("org/twins")
        .file("config.json", "{}")
        .lfs_file("a.bin", Content::generated(8192, 11))
        .lfs_file("b.bin", Content::generated(8192, 12))
}

const TWINS: &str = "[[model]]\nrepo = \"org/twins\"\n";

fn bundle_of(env: &Env, dir: &Path) -> PathBuf {
    run_in(env, dir, &["sync"]).ok();
    let out = dir.join("models.tar");
    run_in(env, dir, &["bundle", "create", "models.tar"]).ok();
    out
}

#[test]
fn a_bundle_is_deterministic_and_an_import_needs_no_hub() {
    let hub = hub();
    let mut env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    let out = bundle_of(&env, &dir);
    let first = std::fs::read(&out).unwrap();
    let again = run_in(&env, &dir, &["bundle", "create", "models.tar", "--json"]).ok().json();
    assert_eq!(std::fs::read(&out).unwrap(), first, "two bundles of one lock are the same bytes");
    assert_eq!(again["sha256"].as_str().unwrap(), modelcache::Sha256::of(&first).to_string());
    assert_eq!(&first[..15], b"modelcache.lock", "the lock comes first");
    let paths = run_in(&env, &dir, &["get", "org/model@main", "--include", "*.json", "--include", "*.safetensors"]).ok().stdout;
    wipe(&env);
    drop(hub);
    env.endpoint = Some("http://127.0.0.1:9".to_owned());
    let dry = run_in(&env, &dir, &["bundle", "import", "models.tar", "--dry-run"]).ok();
    assert!(dry.stdout.contains("dry run"), "{}", dry.stdout);
    assert!(files_under(&env.hub_dir()).iter().all(|f| !f.contains("blobs/")), "a dry run writes no blob");
    let mut other = load_lock(&dir);
    other.models.pop();
    other.save(&dir.join("other.lock")).unwrap();
    let refused = run_in(&env, &dir, &["bundle", "import", "models.tar", "--lock", "other.lock"]).expect(5);
    assert!(refused.stderr.contains("another lock"), "{}", refused.stderr);
    let imported = run_in(&env, &dir, &["bundle", "import", "models.tar", "--lock", "modelcache.lock", "--json"]).ok().json();
    assert_eq!(imported["blobs_written"].as_u64(), Some(5));
    run_in(&env, &dir, &["--offline", "sync", "--frozen"]).ok();
    run_in(&env, &dir, &["verify", "--lock"]).ok();
    let again = run_in(&env, &dir, &["bundle", "import", "models.tar", "--json"]).ok().json();
    assert_eq!((again["blobs_written"].as_u64(), again["blobs_skipped"].as_u64()), (Some(0), Some(5)));
    let py = crate::interop::run_python(&env, PY_AFTER_IMPORT, &[("HF_HUB_OFFLINE", "1")]);
    let v: serde_json::Value =
        serde_json::from_str(py.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", py.stdout, py.stderr));
    assert_eq!(v["snapshot"].as_str().unwrap(), paths.trim(), "Python finds the same snapshot");
    assert_eq!(v["scan_warnings"], serde_json::json!([]));
    assert_eq!(v["files"], 5);
}

const PY_AFTER_IMPORT: &str = r#"
import json
from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir
snapshot = snapshot_download("org/model", allow_patterns=["*.json", "*.safetensors"], local_files_only=True)
hf_hub_download("org/other", "vocab.txt", local_files_only=True)
info = scan_cache_dir()
print(json.dumps({
    "snapshot": snapshot,
    "files": sum(len(rev.files) for r in info.repos for rev in r.revisions),
    "scan_warnings": [str(w) for w in info.warnings],
}))
"#;

/// The hub cache's files and links and `ls`, for "nothing changed". Lock files under
/// `.locks/` are left out: like huggingface_hub, modelcache never deletes a lock file
/// another process may be waiting on, after an import as after any download.
fn listing(env: &Env, dir: &Path) -> (Vec<String>, String) {
    let files = files_under(&env.hub_dir()).into_iter().filter(|f| !f.starts_with(".locks/")).collect();
    (files, run_in(env, dir, &["ls"]).ok().stdout)
}

fn tampered_import_is_refused(tamper: impl FnOnce(&mut Vec<u8>, &[Vec<u8>])) {
    let hub = cache_testkit::TestHub::start_blocking([twins()]);
    let env = Env::new(&hub);
    let dir = project(&env, TWINS);
    let out = bundle_of(&env, &dir);
    let blobs: Vec<Vec<u8>> =
        ["a.bin", "b.bin"].iter().map(|p| hub.file("org/twins", "main", p).unwrap().content.to_vec()).collect();
    let mut bytes = std::fs::read(&out).unwrap();
    tamper(&mut bytes, &blobs);
    std::fs::write(&out, &bytes).unwrap();
    wipe(&env);
    run_in(&env, &dir, &["ls"]).ok();
    let before = listing(&env, &dir);
    let run = run_in(&env, &dir, &["bundle", "import", "models.tar"]).expect(5);
    assert!(run.stderr.contains("does not match its lock"), "{}", run.stderr);
    assert_eq!(listing(&env, &dir), before, "nothing of the import is visible");
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn a_bundle_with_a_flipped_byte_is_refused_with_exit_5_and_nothing_visible() {
    tampered_import_is_refused(|tar, blobs| {
        let at = find(tar, &blobs[0]) + 4000;
        tar[at] ^= 0x20;
    });
}

#[test]
fn a_bundle_with_two_equal_size_blobs_swapped_is_refused() {
    tampered_import_is_refused(|tar, blobs| {
        let (first, second) = (find(tar, &blobs[0]), find(tar, &blobs[1]));
        let len = blobs[0].len();
        let one = tar[first..first + len].to_vec();
        tar.copy_within(second..second + len, first);
        tar[second..second + len].copy_from_slice(&one);
    });
}

/// A tar of the bundle's lock followed by one raw entry (name bytes written as given).
fn hostile_tar(lock: &[u8], name: &[u8], kind: tar::EntryType, link: Option<&[u8]>, body: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(lock.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, "modelcache.lock", lock).unwrap();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    if let Some(l) = link {
        h.as_old_mut().linkname[..l.len()].copy_from_slice(l);
    }
    h.set_entry_type(kind);
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, body).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn hostile_bundles_exit_2_and_touch_nothing_outside_the_cache() {
    let hub = cache_testkit::TestHub::start_blocking([twins()]);
    let env = Env::new(&hub);
    let dir = project(&env, TWINS);
    run_in(&env, &dir, &["lock"]).ok();
    let lock = std::fs::read(dir.join("modelcache.lock")).unwrap();
    let commit = load_lock(&dir).models[0].commit;
    let etag = hub.file("org/twins", "main", "a.bin").unwrap().etag;
    let outside = env.tmp.path().join("x");
    let link = format!("hub/models--org--twins/snapshots/{commit}/a.bin");
    let cases: Vec<(String, Vec<u8>)> = vec![
        ("dot-dot".into(), hostile_tar(&lock, b"../x", tar::EntryType::Regular, None, b"evil")),
        (
            "dot-dot inside".into(),
            hostile_tar(&lock, b"hub/models--org--twins/blobs/../../../x", tar::EntryType::Regular, None, b"evil"),
        ),
        ("absolute".into(), hostile_tar(&lock, outside.to_str().unwrap().as_bytes(), tar::EntryType::Regular, None, b"evil")),
        ("link to /etc".into(), hostile_tar(&lock, link.as_bytes(), tar::EntryType::Symlink, Some(b"/etc/passwd"), b"")),
        (
            "link out".into(),
            hostile_tar(&lock, link.as_bytes(), tar::EntryType::Symlink, Some(format!("../../../../{etag}").as_bytes()), b""),
        ),
        (
            "hard link".into(),
            hostile_tar(
                &lock,
                format!("hub/models--org--twins/blobs/{etag}").as_bytes(),
                tar::EntryType::Link,
                Some(b"/etc/passwd"),
                b"",
            ),
        ),
        ("device".into(), hostile_tar(&lock, b"hub/models--org--twins/blobs/x", tar::EntryType::Char, None, b"")),
    ];
    run_in(&env, &dir, &["ls"]).ok();
    let before = listing(&env, &dir);
    std::fs::write(dir.join("evil.tar"), b"").unwrap();
    let around = files_under(env.tmp.path()).len();
    for (what, bytes) in cases {
        std::fs::write(dir.join("evil.tar"), bytes).unwrap();
        let run = run_in(&env, &dir, &["bundle", "import", "evil.tar"]).expect(2);
        assert!(run.stderr.contains("unsafe entry"), "{what}: {}", run.stderr);
        assert!(!outside.exists(), "{what}: nothing written outside the cache");
        assert_eq!(listing(&env, &dir), before, "{what}: nothing written in the cache");
    }
    assert_eq!(files_under(env.tmp.path()).len(), around, "no new file anywhere under the test directory");
}

#[test]
fn tar_xf_alone_gives_a_cache_huggingface_hub_reads() {
    let hub = hub();
    let env = Env::new(&hub);
    let dir = project(&env, MANIFEST);
    let out = bundle_of(&env, &dir);
    let paths = run_in(&env, &dir, &["get", "org/model@main", "--include", "*.json", "--include", "*.safetensors"]).ok().stdout;
    wipe(&env);
    drop(hub);
    // HF_HUB_CACHE is `<tmp>/hub`, so `<tmp>` plays `$HF_HOME`.
    let tar = std::process::Command::new("tar").arg("-xf").arg(&out).arg("-C").arg(env.tmp.path()).status().unwrap();
    assert!(tar.success());
    let py = crate::interop::run_python(&env, PY_AFTER_IMPORT, &[("HF_HUB_OFFLINE", "1")]);
    let v: serde_json::Value =
        serde_json::from_str(py.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}\n{}", py.stdout, py.stderr));
    assert_eq!(v["snapshot"].as_str().unwrap(), paths.trim());
    assert_eq!(v["scan_warnings"], serde_json::json!([]));
    assert_eq!(v["files"], 5);
    run_in(&env, &dir, &["verify", "--lock"]).ok();
}

#[test]
fn url_entries_are_pinned_by_their_digest_synced_bundled_and_imported() {
    let hub = hub();
    let env = Env::new(&hub);
    let file = hub.file("org/other", "main", "vocab.txt").unwrap();
    let manifest = format!("[[url]]\nurl = \"{}\"\nsha256 = \"{}\"\nname = \"vocab.txt\"\n", file.url, file.content.sha256());
    let dir = project(&env, &manifest);
    run_in(&env, &dir, &["lock"]).ok();
    assert_eq!(hub.stats().count(Route::ResolveGet), 0, "lock downloads nothing");
    let synced = run_in(&env, &dir, &["sync", "--locked", "--json"]).ok().json();
    assert_eq!(synced["downloaded"].as_u64(), Some(1));
    hub.reset_stats();
    run_in(&env, &dir, &["--offline", "sync", "--frozen"]).ok();
    run_in(&env, &dir, &["verify", "--lock"]).ok();
    assert_eq!(hub.stats().total_requests(), 0);
    let made = run_in(&env, &dir, &["bundle", "create", "x.tar", "--json"]).ok().json();
    assert_eq!((made["urls"].as_u64(), made["files"].as_u64()), (Some(1), Some(1)));
    let saved = env.tmp.path().join("x.tar");
    std::fs::rename(dir.join("x.tar"), &saved).unwrap();
    run_in(&env, &dir, &["rm", "vocab.txt"]).ok();
    run_in(&env, &dir, &["--offline", "sync", "--frozen"]).expect(4);
    let imported = run_in(&env, &dir, &["bundle", "import", saved.to_str().unwrap(), "--json"]).ok().json();
    assert_eq!(imported["blobs_written"].as_u64(), Some(1));
    run_in(&env, &dir, &["--offline", "sync", "--frozen"]).ok();
    run_in(&env, &dir, &["verify", "--lock"]).ok();
    // A flipped byte in the artifact: refused, nothing stored.
    let mut bytes = std::fs::read(&saved).unwrap();
    let at = find(&bytes, &file.content.to_vec()) + 1;
    bytes[at] ^= 1;
    std::fs::write(&saved, bytes).unwrap();
    run_in(&env, &dir, &["rm", "vocab.txt"]).ok();
    run_in(&env, &dir, &["bundle", "import", saved.to_str().unwrap()]).expect(5);
    run_in(&env, &dir, &["--offline", "sync", "--frozen"]).expect(4);
    // A wrong pinned digest: the download is refused (exit 5), nothing is stored.
    let wrong = manifest.replace(&file.content.sha256().to_string(), &"0".repeat(64));
    std::fs::write(dir.join("modelcache.toml"), wrong).unwrap();
    run_in(&env, &dir, &["sync"]).expect(5);
    assert!(run_in(&env, &dir, &["ls", "--ids"]).ok().stdout.trim().is_empty(), "nothing stored");
}
