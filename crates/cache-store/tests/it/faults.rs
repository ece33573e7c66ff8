//! Damage done from outside: a corrupt index, truncated blobs, garbage refs. The cache
//! keeps answering from the disk and says what is wrong.

use cache_store::{ArtifactKey, Scope, Store};
use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

/// The `*.corrupt-*` files set aside next to `index`.
fn set_aside(index: &Utf8Path) -> Vec<Utf8PathBuf> {
    let prefix = format!("{}.corrupt-", index.file_name().unwrap());
    let mut out: Vec<Utf8PathBuf> = std::fs::read_dir(index.parent().unwrap())
        .unwrap()
        .map(|e| Utf8PathBuf::from_path_buf(e.unwrap().path()).unwrap())
        .filter(|p| p.file_name().is_some_and(|n| n.starts_with(&prefix)))
        .collect();
    out.sort();
    out
}

fn scribble(file: &Utf8Path, from: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(file).unwrap().len().max(from + 8192);
    let garbage: Vec<u8> = (0..len - from).map(|_| fastrand::u8(..)).collect();
    let mut f = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    f.seek(SeekFrom::Start(from)).unwrap();
    f.write_all(&garbage).unwrap();
}

#[test]
fn a_corrupt_index_is_set_aside_and_rebuilt_from_the_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(root(&tmp));
    let store = Store::open(cfg.clone()).unwrap();
    let (a, b) = (repo("org/a"), repo("org/b"));
    put(&store, &a, commit(1), "config.json", b"{\"a\": 1}");
    put(&store, &a, commit(1), "w/model.bin", b"weights!");
    put(&store, &b, commit(2), "x.txt", b"xyz");
    let key = ArtifactKey::new("https://example.com/data.bin");
    store.put_artifact(&key, &mut &b"artifact bytes"[..]).unwrap();
    let listed = |s: &Store| -> Vec<(String, usize, u64)> {
        s.list().unwrap().iter().map(|r| (r.repo.to_string(), r.revisions.len(), r.size_bytes)).collect()
    };
    let before = store.stats().unwrap();
    let list_before = listed(&store);
    let index = store.index_path();
    let artifacts = store.home_dir().join("artifacts/index.sqlite3");
    drop(store);

    // Random bytes over the whole file, then over everything but its header.
    for damage_from in [0, 100] {
        for f in [&index, &artifacts] {
            let _ = std::fs::remove_file(format!("{f}-wal"));
            let _ = std::fs::remove_file(format!("{f}-shm"));
            scribble(f, damage_from);
        }
        let asides = set_aside(&index).len();
        // The index is opened when first needed (here by `stats`), not by `open`.
        let mut s = Store::open(cfg.clone()).unwrap();
        if let Err(e) = s.stats() {
            // The header survived: the first query finds the damage, fails saying what to
            // do, and sets the file aside, so the next run starts afresh.
            assert!(damage_from > 0, "a file that is no database at all is replaced at once: {e}");
            assert!(e.hint().unwrap().contains("run the command again"), "{e}: {:?}", e.hint());
            drop(s);
            s = Store::open(cfg.clone()).unwrap();
        }
        assert_eq!(set_aside(&index).len(), asides + 1, "the broken file is kept aside");
        assert!(s.find(&a, &rev(commit(1).as_str()), &path("w/model.bin")).unwrap().is_some());
        assert!(s.find_artifact(&key).unwrap().is_some());
        assert_eq!(listed(&s), list_before);
        let after = s.stats().unwrap();
        assert_eq!((after.repos, after.files, after.total_bytes), (before.repos, before.files, before.total_bytes));
        // The artifacts index is opened when first needed (here by `stats`).
        assert!(!set_aside(&artifacts).is_empty(), "the broken artifacts index is kept aside too");
    }
}

/// The fast path's lookup answers a sound hit only: a suspect one (or a miss) is `None`
/// and counted as nothing, for the slower path that looks again to count and check it.
#[test]
fn a_sound_probe_answers_sound_hits_only_and_counts_nothing_else() {
    let mut t = TestCache::new();
    let r = repo("org/model");
    let snap = put(&t.store, &r, commit(1), "model.safetensors", &[7u8; 4096]);
    let at = rev(commit(1).as_str());
    let p = path("model.safetensors");
    let counts = |t: &mut TestCache| {
        t.reopen();
        let c = t.store.stats().unwrap().counters;
        (c.hits, c.misses)
    };
    let hit = t.store.probe_sound(&r, &at, &p).unwrap().expect("a sound hit");
    assert_eq!((hit.path.as_path(), hit.size), (snap.as_path(), 4096));
    assert_eq!(counts(&mut t), (1, 0));
    assert_eq!(t.store.probe_sound(&r, &at, &path("absent.bin")).unwrap(), None);
    assert_eq!(counts(&mut t), (1, 0), "a miss is the slow path's to count");

    let f = std::fs::OpenOptions::new().write(true).open(std::fs::canonicalize(&snap).unwrap()).unwrap();
    f.set_len(100).unwrap();
    drop(f);
    assert_eq!(t.store.probe_sound(&r, &at, &p).unwrap(), None, "a truncated blob is no sound hit");
    assert_eq!(counts(&mut t), (1, 0), "nor counted");
    assert!(t.store.lookup(&r, &at, &p).unwrap().unwrap().is_suspect(), "the slow path sees it, suspect");
}

#[test]
fn a_truncated_blob_is_suspect_and_verify_reports_it_even_when_older_than_its_link() {
    let mut t = TestCache::new();
    let r = repo("org/model");
    let body = vec![7u8; 4096];
    let snap = put(&t.store, &r, commit(1), "model.safetensors", &body);
    let at = rev(commit(1).as_str());
    let p = path("model.safetensors");
    assert!(!t.store.lookup(&r, &at, &p).unwrap().unwrap().is_suspect());
    let blob = std::fs::canonicalize(&snap).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&blob).unwrap();
    f.set_len(100).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000)).unwrap();
    drop(f);

    // This process remembered the intact file: a changed size is a changed identity.
    let hit = t.store.lookup(&r, &at, &p).unwrap().unwrap();
    assert!(!hit.modified_after_link, "the blob is older than its link");
    assert_eq!((hit.size, hit.recorded_size), (100, Some(4096)));
    assert!(hit.is_suspect());
    // A new process too.
    t.reopen();
    let hit = t.store.lookup(&r, &at, &p).unwrap().unwrap();
    assert_eq!((hit.size, hit.recorded_size), (100, Some(4096)));
    assert!(hit.is_suspect());
    assert!(t.store.lookup(&r, &at, &p).unwrap().unwrap().is_suspect(), "a suspect hit is not remembered");

    let report = t.store.verify(&Scope::All, false).unwrap();
    assert!(!report.is_clean());
    let c = &report.corrupted[0];
    assert_eq!((c.expected.as_str(), c.actual.as_str()), ("4096 bytes", "100 bytes"));
    let report = t.store.verify(&Scope::All, true).unwrap();
    assert_eq!(report.corrupted.len(), 1);
    assert!(t.store.lookup(&r, &at, &p).unwrap().is_none(), "repair removed it");
}

/// Puts something that is not a ref at a ref's path.
type Plant = dyn Fn(&Utf8Path);

#[test]
fn a_garbage_ref_counts_as_absent_is_rewritten_and_verify_reports_it() {
    let t = TestCache::new();
    let r = repo("org/model");
    put(&t.store, &r, commit(1), "config.json", b"{}");
    let refs = t.hub().join("models--org--model/refs");
    std::fs::create_dir_all(&refs).unwrap();
    let p = path("config.json");
    let kinds: [(&str, &Plant); 3] = [
        ("not UTF-8", &|f| std::fs::write(f, [0xff, 0xfe, 0x00, 0x80]).unwrap()),
        ("not a commit hash", &|f| std::fs::write(f, "garbage\n").unwrap()),
        ("an empty directory", &|f| std::fs::create_dir(f).unwrap()),
    ];
    for (what, plant) in kinds {
        let main = refs.join("main");
        plant(&main);
        assert_eq!(t.store.resolve(&r, &rev("main")).unwrap(), None, "{what}");
        assert_eq!(t.store.find(&r, &rev("main"), &p).unwrap(), None, "{what}");
        assert_eq!(t.store.list().unwrap().len(), 1, "{what}");
        let report = t.store.verify(&Scope::All, false).unwrap();
        assert_eq!(report.bad_refs, ["models--org--model/refs/main"], "{what}");
        assert!(!report.is_clean(), "{what}");
        // An online get points it again.
        t.store.write_ref(&r, &rev("main"), &commit(1)).unwrap();
        assert_eq!(t.store.resolve(&r, &rev("main")).unwrap(), Some(commit(1)), "{what}");
        assert!(t.store.find(&r, &rev("main"), &p).unwrap().is_some(), "{what}");
        assert!(t.store.verify(&Scope::All, false).unwrap().is_clean(), "{what}");
        std::fs::remove_file(&main).unwrap();
    }

    // A repair removes one.
    std::fs::write(refs.join("v1"), "nope").unwrap();
    let report = t.store.verify(&Scope::Repo(r.clone()), true).unwrap();
    assert_eq!(report.bad_refs, ["models--org--model/refs/v1"]);
    assert!(!refs.join("v1").exists());
    assert!(t.store.verify(&Scope::All, false).unwrap().is_clean());
}

#[test]
fn something_other_than_a_file_in_place_of_a_staging_file_is_a_cache_problem_with_a_hint() {
    let t = TestCache::new();
    let r = repo("org/model");
    let body = b"some bytes";
    let etag = etag_of(body, true);
    let incomplete = t.hub().join(format!("models--org--model/blobs/{etag}.incomplete"));
    std::fs::create_dir_all(&incomplete).unwrap();
    std::fs::write(incomplete.join("inside"), b"x").unwrap();
    let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let err = t.store.stage(&lock, Some(body.len() as u64)).unwrap_err();
    assert!(matches!(err, cache_store::Error::NotAFile { .. }), "{err}");
    assert!(err.to_string().contains(incomplete.as_str()), "{err}");
    assert!(err.hint().unwrap().contains(&format!("remove `{incomplete}`")), "{:?}", err.hint());

    // A fifo is refused the same way (and never opened: that would block).
    std::fs::remove_dir_all(&incomplete).unwrap();
    let made = std::process::Command::new("mkfifo").arg(incomplete.as_str()).status().unwrap();
    assert!(made.success());
    let err = t.store.stage(&lock, Some(body.len() as u64)).unwrap_err();
    assert!(matches!(err, cache_store::Error::NotAFile { .. }), "{err}");

    // An empty directory holds nothing: it is removed and the download goes on.
    std::fs::remove_file(&incomplete).unwrap();
    std::fs::create_dir(&incomplete).unwrap();
    let staging = t.store.stage(&lock, Some(body.len() as u64)).unwrap();
    staging.write_at(body, 0).unwrap();
    let req = cache_store::CommitRequest::new(r.clone(), commit(1), path("f.bin"), etag, body.len() as u64);
    let snap = t.store.commit(staging, &req).unwrap();
    assert_eq!(std::fs::read(snap).unwrap(), body);
}

#[test]
fn stores_opening_a_corrupt_index_together_set_it_aside_once_and_all_work() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(root(&tmp));
    let store = Store::open(cfg.clone()).unwrap();
    let r = repo("org/a");
    put(&store, &r, commit(1), "w.bin", b"weights");
    let index = store.index_path();
    drop(store);
    for round in 0..8 {
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{index}{suffix}"));
        }
        scribble(&index, 0);
        let asides = set_aside(&index).len();
        std::thread::scope(|s| {
            let openers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let store = Store::open(cfg.clone()).unwrap();
                        assert_eq!(store.list().unwrap().len(), 1);
                        assert_eq!(store.stats().unwrap().files, 1);
                    })
                })
                .collect();
            for o in openers {
                o.join().unwrap();
            }
        });
        assert_eq!(set_aside(&index).len(), asides + 1, "round {round}: only the corrupt file is set aside");
    }
}
