//! Interoperability with the REAL `huggingface_hub` 2.x (from the venv `cargo xtask
//! py-env` creates): a cache it writes is read correctly, the layout modelcache writes
//! is byte-identical to its, its `scan_cache_dir` never warns about our cache, and
//! `trees/<commit>.json` files match byte for byte.

use std::io::Write;
use std::process::{Command, Stdio};

use cache_core::RepoType;
use cache_store::{CommitRequest, Scope, Store, Tree, TreeEntry};
use camino::Utf8Path;
use serde_json::{Value, json};

use crate::support::*;

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn python(script: &str, args: &[&str], stdin: &str) -> String {
    let py = cache_testkit::python::require_interpreter();
    let mut child = Command::new(py)
        .arg(fixture(script))
        .args(args)
        .env_remove("HF_HUB_CACHE")
        .env("HF_HOME", std::env::temp_dir().join("cache-store-tests-hf-home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `scan_cache_dir` of the hub: asserts no warnings and returns the report.
pub(crate) fn scan_clean(hub: &Utf8Path) -> Value {
    let v: Value = serde_json::from_str(&python("hf_scan.py", &[hub.as_str()], "")).unwrap();
    assert_eq!(v["warnings"], json!([]), "huggingface_hub warns about {hub}: {v}");
    v
}

struct Item {
    repo: cache_core::Repo,
    revision: &'static str,
    commit: u32,
    path: &'static str,
    content: Vec<u8>,
    lfs: bool,
}

fn items() -> Vec<Item> {
    let dataset = cache_core::Repo::new(RepoType::Dataset, "org/data".parse().unwrap());
    let big: Vec<u8> = (0..300_000u32).map(|i| u8::try_from(i * 7 % 256).unwrap()).collect();
    vec![
        Item {
            repo: repo("org/model"),
            revision: "main",
            commit: 1,
            path: "config.json",
            content: b"{\"a\": 1}\n".to_vec(),
            lfs: false,
        },
        Item {
            repo: repo("org/model"),
            revision: "main",
            commit: 1,
            path: "onnx/deep/model.onnx",
            content: big.clone(),
            lfs: true,
        },
        Item { repo: repo("org/model"), revision: "refs/pr/1", commit: 2, path: "onnx/deep/model.onnx", content: big, lfs: true },
        Item { repo: repo("org/model"), revision: "v1.0", commit: 2, path: "README.md", content: b"# hi\n".to_vec(), lfs: false },
        Item { repo: dataset, revision: "main", commit: 3, path: "data/train.csv", content: b"a,b\n1,2\n".to_vec(), lfs: false },
    ]
}

fn spec(items: &[Item]) -> String {
    let v: Vec<Value> = items
        .iter()
        .map(|i| {
            let hex: String = i.content.iter().fold(String::new(), |mut s, b| {
                use std::fmt::Write;
                let _ = write!(s, "{b:02x}");
                s
            });
            json!({
                "repo_id": i.repo.id.as_str(),
                "repo_type": i.repo.repo_type.as_str(),
                "revision": i.revision,
                "commit": commit(i.commit).as_str(),
                "path": i.path,
                "content_hex": hex,
                "etag": etag_of(&i.content, i.lfs).to_string(),
            })
        })
        .collect();
    serde_json::to_string(&v).unwrap()
}

#[test]
fn reads_a_cache_written_by_huggingface_hub_and_writes_the_identical_layout() {
    let theirs = tempfile::tempdir().unwrap();
    let hub_theirs = root(&theirs).join("hub");
    let all = items();
    python("hf_download.py", &[hub_theirs.as_str()], &spec(&all));

    // 1. modelcache reads it: the new index is built from the disk.
    let store = Store::open(config(root(&theirs))).unwrap();
    for i in &all {
        let found = store.find(&i.repo, &rev(i.revision), &path(i.path)).unwrap().unwrap_or_else(|| panic!("{}", i.path));
        assert_eq!(std::fs::read(&found).unwrap(), i.content, "{}", i.path);
    }
    let st = store.stats().unwrap();
    assert_eq!((st.repos, st.files), (2, 5));
    assert_eq!(st.total_bytes, 9 + 300_000 + 5 + 8, "the shared LFS blob counts once");
    let report = store.verify(&Scope::All, false).unwrap();
    assert!(report.is_clean() && report.valid == 5, "{report:?}");
    drop(store);

    // 2. modelcache writes the same bytes, names and links.
    let ours = TestCache::new();
    for i in &all {
        let req = CommitRequest::new(
            i.repo.clone(),
            commit(i.commit),
            path(i.path),
            etag_of(&i.content, i.lfs),
            i.content.len() as u64,
        )
        .with_ref(rev(i.revision));
        put_req(&ours.store, req, &i.content);
    }
    let a = tree_listing(&hub_theirs);
    let b = tree_listing(&ours.hub());
    assert_eq!(a, b, "layout differs from huggingface_hub's");
    for (rel, link) in &a {
        if link.is_none() {
            assert_eq!(std::fs::read(hub_theirs.join(rel)).unwrap(), std::fs::read(ours.hub().join(rel)).unwrap(), "{rel}");
        }
    }
    scan_clean(&ours.hub());
}

#[test]
fn scan_cache_dir_has_no_warnings_after_every_kind_of_operation() {
    let t = TestCache::new();
    let s = &t.store;
    let (a, b) = (repo("org/a"), repo("org/b"));
    for (n, p) in ["x.bin", "d/y.bin", "d/e/z.bin"].iter().enumerate() {
        let req =
            CommitRequest::new(a.clone(), commit(1), path(p), etag_of(p.as_bytes(), true), p.len() as u64).with_ref(rev("main"));
        put_req(s, req, p.as_bytes());
        put(s, &a, commit(2), p, format!("v2 {n}").as_bytes());
    }
    s.write_ref(&a, &rev("refs/pr/7"), &commit(2)).unwrap();
    put(s, &b, commit(3), "w", b"bbb");
    s.mark_no_exist(&a, &commit(1), &path("nope.txt")).unwrap();
    s.write_tree(&a, &commit(1), &Tree::default()).unwrap();
    // An interrupted download.
    let etag = etag_of(b"never finished", true);
    let lock = s.lock_blob(&b, &etag, &mut |_| {}).unwrap();
    s.stage(&lock, Some(14)).unwrap().write_at(b"never", 0).unwrap();
    drop(lock);
    scan_clean(&t.hub());

    s.remove(&Scope::File(a.clone(), rev("main"), path("d/e/z.bin"))).unwrap();
    s.remove(&Scope::Revision(a.clone(), rev("refs/pr/7"))).unwrap();
    let v = scan_clean(&t.hub());
    assert_eq!(v["repos"][0]["refs"], json!(["main"]));
    assert_eq!(v["repos"][0]["files"], json!(2));

    // Corrupt a blob and repair.
    let victim = s.find(&a, &rev("main"), &path("x.bin")).unwrap().unwrap();
    let blob = victim.parent().unwrap().join(std::fs::read_link(&victim).unwrap().to_str().unwrap());
    std::fs::write(&blob, b"garbage").unwrap();
    assert_eq!(s.verify(&Scope::All, true).unwrap().corrupted.len(), 1);
    scan_clean(&t.hub());

    s.evict(
        &cache_core::EvictionPolicy { max_size: Some(0), in_use_grace: std::time::Duration::ZERO, ..Default::default() },
        cache_core::Timestamp::now(),
    )
    .unwrap();
    s.clean_stale(std::time::Duration::ZERO).unwrap();
    let v = scan_clean(&t.hub());
    assert_eq!(v["repos"], json!([]));
    put(s, &b, commit(3), "w", b"bbb");
    s.clear().unwrap();
    let v = scan_clean(&t.hub());
    assert_eq!(v["repos"], json!([]));
    assert_eq!(s.stats().unwrap().total_bytes, 0);
}

#[test]
fn a_repo_is_valid_for_huggingface_hub_at_every_step_of_a_download_that_never_finishes() {
    let t = TestCache::new();
    let s = &t.store;
    // What a download leaves when it is killed or fails (exit 3, 5, 6) at each step, each
    // in a repo of its own: nothing of them was ever committed.
    let (resolved, staged, absent, listed) = (repo("org/resolved"), repo("org/staged"), repo("org/absent"), repo("org/listed"));
    // The Hub named the commit: the ref is written first (as `hf_hub_download` does).
    s.write_ref(&resolved, &rev("main"), &commit(1)).unwrap();
    // The transfer started (a staging file, no ref).
    let etag = etag_of(b"never finished", true);
    let lock = s.lock_blob(&staged, &etag, &mut |_| {}).unwrap();
    s.stage(&lock, Some(14)).unwrap().write_at(b"never", 0).unwrap();
    drop(lock);
    // And after the ref, in the same repo.
    let lock = s.lock_blob(&resolved, &etag, &mut |_| {}).unwrap();
    s.stage(&lock, Some(14)).unwrap().write_at(b"never", 0).unwrap();
    drop(lock);
    // The Hub said the file does not exist (`.no_exist/` and the ref).
    s.mark_no_exist(&absent, &commit(2), &path("missing.txt")).unwrap();
    s.write_ref(&absent, &rev("main"), &commit(2)).unwrap();
    // A snapshot's listing was saved before its files.
    s.write_tree(&listed, &commit(3), &Tree::default()).unwrap();

    let v = scan_clean(&t.hub());
    let ids: Vec<&str> = v["repos"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["model:org/absent", "model:org/listed", "model:org/resolved", "model:org/staged"], "no repo hidden: {v}");
    assert_eq!(v["repos"][2]["refs"], json!(["main"]));
}

#[test]
fn tree_files_are_byte_identical_to_huggingface_hubs() {
    let t = TestCache::new();
    let r = repo("org/t");
    let mut tree = Tree::default();
    tree.files.insert(
        path("config.json"),
        TreeEntry { size: 519, blob_id: "a".repeat(40), lfs_sha256: None, lfs_size: None, xet_hash: None },
    );
    tree.files.insert(
        path("sub/modèle \"q\".safetensors"),
        TreeEntry {
            size: 1234,
            blob_id: "b".repeat(40),
            lfs_sha256: Some("c".repeat(64)),
            lfs_size: Some(1234),
            xet_hash: Some("d".repeat(64)),
        },
    );
    t.store.write_tree(&r, &commit(1), &tree).unwrap();
    let ours = std::fs::read(t.hub().join(format!("models--org--t/trees/{}.json", commit(1)))).unwrap();

    let theirs = tempfile::tempdir().unwrap();
    let folder = root(&theirs);
    let entries: serde_json::Map<String, Value> = tree
        .files
        .iter()
        .map(|(p, e)| {
            let mut v = json!({"size": e.size, "blob_id": e.blob_id});
            if let Some(s) = &e.lfs_sha256 {
                v["lfs_sha256"] = json!(s);
                v["lfs_size"] = json!(e.lfs_size);
            }
            if let Some(x) = &e.xet_hash {
                v["xet_hash"] = json!(x);
            }
            (p.to_string(), v)
        })
        .collect();
    python("hf_tree.py", &[folder.as_str(), commit(1).as_str()], &Value::Object(entries).to_string());
    let theirs_bytes = std::fs::read(folder.join(format!("trees/{}.json", commit(1)))).unwrap();
    assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs_bytes).unwrap());
}

#[test]
fn a_waiter_names_a_python_process_holding_the_blob_lock() {
    use std::io::{BufRead, BufReader};
    let t = TestCache::with(|c| c.lock_stall_timeout(std::time::Duration::from_millis(300)));
    let r = repo("org/py");
    let etag = etag_of(b"held by python", true);
    let lock_file = t.hub().join(format!(".locks/models--org--py/{etag}.lock"));
    std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();
    // huggingface_hub takes its blob locks with `filelock` (flock on Linux).
    let script =
        "import sys, filelock\nl = filelock.FileLock(sys.argv[1])\nl.acquire()\nprint('locked', flush=True)\nsys.stdin.read()\n";
    let mut child = Command::new(cache_testkit::python::require_interpreter())
        .args(["-c", script, lock_file.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let mut holders = Vec::new();
    let err = t.store.lock_blob(&r, &etag, &mut |w| holders.push(w.holder.map(str::to_owned))).unwrap_err();
    assert!(matches!(err, cache_store::Error::LockTimeout { .. }), "{err}");
    let holder = holders[0].clone().unwrap_or_default();
    assert!(holder.starts_with(&format!("pid {} (python", child.id())), "the waiter names the Python holder: {holder}");

    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    assert!(t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap().is_exclusive(), "free once Python let go");
}

/// With `lock_mode = both` (what `auto` picks on shared filesystems) Python's `filelock`
/// and modelcache still exclude each other, both ways: the interop is unchanged.
#[test]
fn python_filelock_and_the_both_mode_exclude_each_other() {
    use std::io::{BufRead, BufReader};
    let t =
        TestCache::with(|c| c.lock_mode(cache_store::LockMode::Both).lock_stall_timeout(std::time::Duration::from_millis(300)));
    let r = repo("org/both");
    let etag = etag_of(b"both ways", true);
    let lock_file = t.hub().join(format!(".locks/models--org--both/{etag}.lock"));
    std::fs::create_dir_all(lock_file.parent().unwrap()).unwrap();

    // Python holds it: we wait, name it, and give up.
    let script =
        "import sys, filelock\nl = filelock.FileLock(sys.argv[1])\nl.acquire()\nprint('locked', flush=True)\nsys.stdin.read()\n";
    let mut child = Command::new(cache_testkit::python::require_interpreter())
        .args(["-c", script, lock_file.as_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let err = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, cache_store::Error::LockTimeout { holder: Some(h), .. } if h.starts_with(&format!("pid {} (python", child.id()))),
        "{err}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());

    // We hold it: Python's filelock cannot take it.
    let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    assert!(lock.is_exclusive());
    let probe = "import sys, filelock\ntry:\n    filelock.FileLock(sys.argv[1]).acquire(timeout=0.3)\n    print('acquired')\n\
                 except filelock.Timeout:\n    print('busy')\n";
    let out =
        Command::new(cache_testkit::python::require_interpreter()).args(["-c", probe, lock_file.as_str()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "busy", "{}", String::from_utf8_lossy(&out.stderr));
    drop(lock);
    let out =
        Command::new(cache_testkit::python::require_interpreter()).args(["-c", probe, lock_file.as_str()]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "acquired");
}
