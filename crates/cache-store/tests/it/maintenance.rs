//! Removal, the cross-repo shared blob store, eviction, pins, verify, reconcile, stale
//! files and generic artifacts.

use std::time::Duration;

use cache_core::{EntryKey, EvictionPolicy, Sha256, Timestamp};
use cache_store::{ArtifactKey, Scope, Store};

use crate::support::*;

#[test]
fn removal_takes_links_dirs_orphans_and_refs_but_keeps_shared_blobs() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("org/m");
    let main = |p: &str, b: &[u8], c| {
        let req = cache_store::CommitRequest::new(r.clone(), commit(c), path(p), etag_of(b, true), b.len() as u64)
            .with_ref(rev("main"));
        put_req(s, req, b)
    };
    main("a/b/c.bin", b"one", 1);
    main("shared.bin", b"same", 1);
    put(s, &r, commit(2), "shared.bin", b"same");
    s.write_ref(&r, &rev("v2"), &commit(2)).unwrap();
    let folder = t.hub().join("models--org--m");

    s.remove(&Scope::File(r.clone(), rev("main"), path("a/b/c.bin"))).unwrap();
    assert!(!folder.join(format!("snapshots/{}/a", commit(1))).exists(), "empty folders go");
    assert!(!folder.join(format!("blobs/{}", etag_of(b"one", true))).exists(), "orphaned blob goes");

    s.remove(&Scope::Revision(r.clone(), rev("main"))).unwrap();
    assert!(!folder.join("refs/main").exists(), "refs to a removed snapshot go");
    assert!(folder.join("refs/v2").exists());
    assert!(folder.join(format!("blobs/{}", etag_of(b"same", true))).exists(), "still linked by commit 2");
    assert!(s.is_cached(&r, &rev("v2"), &path("shared.bin")).unwrap());
    assert_eq!(s.stats().unwrap().total_bytes, 4);

    let removed = s.remove(&Scope::Repo(r.clone())).unwrap();
    assert_eq!((removed.entries, removed.bytes_freed), (1, 4));
    assert!(!folder.exists());
    assert_eq!(s.stats().unwrap(), cache_core::CacheSummary { counters: s.stats().unwrap().counters, ..Default::default() });
}

/// `huggingface_hub`'s cross-repo store: `<hub>/blobs/<2hex>/<hash>` with repo blobs
/// symlinking to it (layout from `utils/_shared_blobs.py`).
#[test]
fn the_cross_repo_shared_store_is_read_counted_once_and_never_broken() {
    let mut t = TestCache::new();
    let hub = t.hub();
    let payload = b"xet payload shared by two repos";
    let hash = "ab".repeat(32);
    let etag = etag_of(payload, true);
    std::fs::create_dir_all(hub.join("blobs/ab")).unwrap();
    std::fs::write(hub.join("blobs/.huggingface-shared-blobs"), "1\n").unwrap();
    std::fs::write(hub.join(format!("blobs/ab/{hash}")), payload).unwrap();
    let mut manifest = String::new();
    for (name, c) in [("models--x--one", 1), ("models--x--two", 2)] {
        let repo_dir = hub.join(name);
        std::fs::create_dir_all(repo_dir.join("blobs")).unwrap();
        std::fs::create_dir_all(repo_dir.join(format!("snapshots/{}", commit(c)))).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/ab/{hash}"), repo_dir.join(format!("blobs/{etag}"))).unwrap();
        std::os::unix::fs::symlink(format!("../../blobs/{etag}"), repo_dir.join(format!("snapshots/{}/w.bin", commit(c))))
            .unwrap();
        manifest += &[name, "/blobs/", &etag.to_string(), "\n"].concat();
    }
    std::fs::write(hub.join(format!("blobs/ab/{hash}.refs")), manifest).unwrap();
    std::fs::remove_file(
        t.root().join("home").join("hubs").read_dir().unwrap().next().unwrap().unwrap().path().join("index.sqlite3"),
    )
    .unwrap();
    t.reopen();
    let s = &t.store;
    let st = s.stats().unwrap();
    assert_eq!((st.repos, st.files, st.total_bytes), (2, 2, payload.len() as u64));
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    s.remove(&Scope::Repo(repo("x/one"))).unwrap();
    assert!(hub.join(format!("blobs/ab/{hash}")).exists(), "another repo still links it");
    let two = s.find(&repo("x/two"), &rev(commit(2).as_str()), &path("w.bin")).unwrap().unwrap();
    assert_eq!(std::fs::read(two).unwrap(), payload);
    crate::python::scan_clean(&hub);
}

#[test]
fn eviction_is_lru_and_respects_pins_leases_and_held_locks() {
    let t = TestCache::new();
    let s = &t.store;
    let (a, b, c, d) = (repo("e/a"), repo("e/b"), repo("e/c"), repo("e/d"));
    for (i, r) in [&a, &b, &c, &d].into_iter().enumerate() {
        put(s, r, commit(1), "f", &[u8::try_from(i).unwrap(); 100]);
        std::thread::sleep(Duration::from_millis(5));
    }
    s.find(&a, &rev(commit(1).as_str()), &path("f")).unwrap();
    s.pin(&Scope::Repo(b.clone())).unwrap();
    let c_etag = etag_of(&[2u8; 100], true);
    let held = s.lock_blob(&c, &c_etag, &mut |_| {}).unwrap();
    let now = Timestamp::now().saturating_add(Duration::from_secs(3600));
    let policy = EvictionPolicy { max_size: Some(150), low_watermark: 1.0, in_use_grace: Duration::ZERO, ..Default::default() };
    let report = s.evict(&policy, now).unwrap();
    let key = |r: &cache_core::Repo| EntryKey::Hub { repo: r.clone(), commit: commit(1), path: path("f") };
    // LRU order is c, d, a (a was just used); b is pinned; c's blob is locked.
    assert_eq!(report.skipped_in_use, [key(&c)]);
    let mut evicted = report.evicted.clone();
    evicted.sort();
    assert_eq!(evicted, [key(&a), key(&d)]);
    assert_eq!(report.bytes_freed, 200);
    assert!(s.is_cached(&b, &rev(commit(1).as_str()), &path("f")).unwrap());
    drop(held);
    assert!(s.unpin(&Scope::Repo(b.clone())).unwrap(), "a pin was removed");
    assert!(!s.unpin(&Scope::Repo(b.clone())).unwrap(), "nothing left to remove");
    let report = s.evict(&policy, now).unwrap();
    assert_eq!(report.evicted.len(), 1);
    assert_eq!(s.stats().unwrap().total_bytes, 100);
}

#[test]
fn verify_finds_and_repairs_corruption_and_missing_blobs() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("v/r");
    let f1 = put(s, &r, commit(1), "ok.bin", b"fine");
    let f2 = put(s, &r, commit(1), "bad.bin", b"soon corrupted");
    let f3 = put(s, &r, commit(1), "gone.bin", b"soon missing");
    let blob = |f: &camino::Utf8Path| f.parent().unwrap().join(std::fs::read_link(f).unwrap().to_str().unwrap());
    std::fs::write(blob(&f2), b"soon CORRUPTED").unwrap();
    std::fs::remove_file(blob(&f3)).unwrap();
    let report = s.verify(&Scope::Repo(r.clone()), false).unwrap();
    assert_eq!(report.valid, 1);
    assert_eq!(report.corrupted.len(), 1);
    assert_eq!(report.missing.len(), 1, "the dangling link: {report:?}");
    let report = s.verify(&Scope::All, true).unwrap();
    assert!(report.repaired);
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    assert!(f1.exists() && !f2.exists() && std::fs::symlink_metadata(&f3).is_err());
    assert_eq!(s.stats().unwrap().files, 1);
}

#[test]
fn reconcile_notices_what_other_tools_did_and_a_lost_index() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(root(&tmp));
    let store = Store::open(cfg.clone()).unwrap();
    let r = repo("rc/r");
    put(&store, &r, commit(1), "a", b"aaa");
    put(&store, &r, commit(1), "b", b"bbbb");
    // Another tool adds a file and deletes one.
    let folder = root(&tmp).join("hub/models--rc--r");
    let etag = etag_of(b"external", false);
    std::fs::write(folder.join(format!("blobs/{etag}")), b"external").unwrap();
    std::os::unix::fs::symlink(format!("../../blobs/{etag}"), folder.join(format!("snapshots/{}/ext", commit(1)))).unwrap();
    std::fs::remove_file(folder.join(format!("snapshots/{}/a", commit(1)))).unwrap();
    let report = store.reconcile().unwrap();
    assert_eq!((report.added, report.removed, report.updated), (1, 1, 0));
    assert!(store.verify(&Scope::All, false).unwrap().is_clean());
    // The index file is lost: reopening rebuilds it from the disk.
    let index = store.index_path();
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{index}{suffix}"));
    }
    let reopened = Store::open(cfg).unwrap();
    let st = reopened.stats().unwrap();
    assert_eq!((st.files, st.total_bytes), (2, 12));
    assert_eq!(reopened.reconcile().unwrap(), cache_store::ReconcileReport::default());
}

#[test]
fn stale_incomplete_files_and_locks_are_cleaned_unless_in_use() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("st/r");
    let (e1, e2) = (etag_of(b"first", true), etag_of(b"second", true));
    let l1 = s.lock_blob(&r, &e1, &mut |_| {}).unwrap();
    s.stage(&l1, None).unwrap().write_at(b"fir", 0).unwrap();
    drop(l1);
    let l2 = s.lock_blob(&r, &e2, &mut |_| {}).unwrap();
    s.stage(&l2, None).unwrap().write_at(b"sec", 0).unwrap();
    assert_eq!(s.list().unwrap()[0].incomplete.len(), 2);
    let fresh = s.clean_stale(Duration::from_secs(3600)).unwrap();
    assert_eq!(fresh.incomplete_removed, 0, "young files stay");
    let report = s.clean_stale(Duration::ZERO).unwrap();
    assert_eq!(report.incomplete_removed, 1, "the one being written stays");
    assert!(report.locks_removed >= 1);
    assert_eq!(s.list().unwrap()[0].incomplete[0].etag, e2.to_string());
    drop(l2);
}

#[test]
fn artifacts_are_verified_found_counted_pinned_evicted_and_removed() {
    let t = TestCache::new();
    let s = &t.store;
    let body = b"fixture bytes";
    let key = ArtifactKey::new("https://example.test/files/tokenizer.json").with_sha256(Sha256::of(body));
    assert_eq!(s.find_artifact(&key).unwrap(), None);
    let p = s.put_artifact(&key, &mut &body[..]).unwrap();
    assert_eq!(p.file_name(), Some("tokenizer.json"));
    assert_eq!(std::fs::read(&p).unwrap(), body);
    assert_eq!(s.find_artifact(&key).unwrap(), Some(p.clone()));
    // Same content under another key: one blob.
    let other = ArtifactKey::new("https://mirror.test/tok.json");
    s.put_artifact(&other, &mut &body[..]).unwrap();
    let st = s.stats().unwrap();
    assert_eq!((st.files, st.total_bytes), (2, body.len() as u64));
    // A wrong digest is refused.
    let wrong = ArtifactKey::new("https://example.test/x").with_sha256(Sha256::of(b"other"));
    assert!(matches!(s.put_artifact(&wrong, &mut &body[..]), Err(cache_store::Error::ChecksumMismatch { .. })));
    assert!(s.verify(&Scope::Artifacts, false).unwrap().is_clean());
    s.pin(&Scope::Artifact(key.clone())).unwrap();
    let policy = EvictionPolicy { max_size: Some(0), in_use_grace: Duration::ZERO, ..Default::default() };
    let later = Timestamp::now().saturating_add(Duration::from_secs(60));
    let report = s.evict(&policy, later).unwrap();
    assert!(report.evicted.is_empty(), "both share the pinned artifact's blob: {report:?}");
    s.unpin(&Scope::Artifact(key.clone())).unwrap();
    let lease = s.lease_artifact(&key).unwrap();
    let report = s.evict(&policy, later).unwrap();
    assert_eq!(report.evicted, [EntryKey::Artifact { key: other.to_key_string() }]);
    assert_eq!(report.skipped_in_use, [EntryKey::Artifact { key: key.to_key_string() }]);
    assert_eq!(report.bytes_freed, 0, "the blob is still used by the leased artifact");
    assert_eq!(s.remove(&Scope::Artifact(key.clone())).unwrap().skipped_in_use.len(), 1);
    drop(lease);
    let removed = s.remove(&Scope::Artifact(key.clone())).unwrap();
    assert_eq!((removed.entries, removed.bytes_freed), (1, body.len() as u64));
    assert_eq!(s.find_artifact(&key).unwrap(), None);
    assert_eq!(s.stats().unwrap().total_bytes, 0);
}

#[test]
fn artifacts_are_listed_from_the_disk_and_stats_count_what_is_listed() {
    let t = TestCache::new();
    let s = &t.store;
    let body = b"shared fixture";
    let url = "https://user:pw@example.test/files/w.bin?sig=secret";
    let plain = ArtifactKey::new(url);
    let named = ArtifactKey::new(url).with_name("weights.bin");
    let other = ArtifactKey::new("https://example.test/other.txt");
    s.put_artifact(&plain, &mut &body[..]).unwrap();
    s.put_artifact(&named, &mut &body[..]).unwrap();
    s.put_artifact(&other, &mut &b"x"[..]).unwrap();
    s.pin(&Scope::Artifact(named.clone())).unwrap();
    let listed = s.artifacts().unwrap();
    let names: Vec<String> = listed.iter().map(|a| a.key.file_name()).collect();
    assert_eq!(names, ["other.txt", "w.bin", "weights.bin"]);
    assert_eq!(listed[1].key, plain);
    assert_eq!(listed[2].sha256, Sha256::of(body));
    assert_eq!(listed[1].blob, listed[2].blob, "one blob for one content");
    assert_eq!(std::fs::read(&listed[2].path).unwrap(), body);
    assert_eq!(listed.iter().map(|a| a.pinned).collect::<Vec<_>>(), [false, false, true]);
    assert!(listed.iter().all(|a| a.last_used.is_some() && a.id == a.key.id()));
    let distinct = |l: &[cache_store::ArtifactListing]| {
        let mut blobs: Vec<_> = l.iter().map(|a| (a.blob.clone(), a.size)).collect();
        blobs.sort();
        blobs.dedup();
        blobs.iter().map(|b| b.1).sum::<u64>()
    };
    assert_eq!(s.stats().unwrap().total_bytes, distinct(&listed));
    assert_eq!(distinct(&listed), body.len() as u64 + 1);

    // An entry removed by another tool: the listing notices, and stats follow it.
    std::fs::remove_dir_all(t.root().join("home/artifacts/entries").join(other.id())).unwrap();
    let listed = s.artifacts().unwrap();
    assert_eq!(listed.len(), 2);
    let st = s.stats().unwrap();
    assert_eq!((st.files, st.total_bytes), (2, distinct(&listed)));
}

#[test]
fn listings_racing_puts_and_removals_leave_stats_that_agree_after_the_next_listing() {
    let t = TestCache::new();
    let s = &t.store;
    let keys: Vec<ArtifactKey> = (0..4).map(|i| ArtifactKey::new(format!("https://example.test/{i}.bin"))).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for round in 0..40 {
                let i = round % keys.len();
                let body = vec![b'a' + u8::try_from(i).unwrap(); 10 * (i + 1)];
                s.put_artifact(&keys[i], &mut &body[..]).unwrap();
                if round % 3 == 0 {
                    s.remove(&Scope::Artifact(keys[(round + 1) % keys.len()].clone())).unwrap();
                }
            }
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut listings = 0;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) && listings < 10_000 {
            for a in s.artifacts().unwrap() {
                assert!(a.size > 0 && a.id == a.key.id(), "a listed artifact is whole: {a:?}");
            }
            listings += 1;
        }
    });
    let listed = s.artifacts().unwrap();
    let st = s.stats().unwrap();
    assert_eq!(st.files, listed.len() as u64);
    assert_eq!(st.total_bytes, listed.iter().map(|a| a.size).sum::<u64>(), "each key has its own content: {listed:?}");
}

#[test]
fn the_first_verify_checks_the_etag_and_records_a_blake3_for_the_next() {
    let t = TestCache::new();
    let r = repo("lazy/b3");
    let bytes = b"weights of a model, even";
    let snap = put(&t.store, &r, commit(1), "m.bin", bytes);
    // Committed with its etag's digest only: the first verify hashes by the etag.
    assert!(t.store.verify(&Scope::All, false).unwrap().is_clean());
    let blob = snap.parent().unwrap().join(std::fs::read_link(&snap).unwrap().to_str().unwrap());
    std::fs::write(blob, b"weights of a MODEL, even").unwrap();
    let report = t.store.verify(&Scope::All, false).unwrap();
    assert_eq!(report.corrupted.len(), 1);
    assert_eq!(report.corrupted[0].expected, cache_core::Blake3::of(bytes).to_string(), "checked by the recorded blake3");
}
