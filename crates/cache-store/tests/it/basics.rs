//! The download protocol, lookups and the small Hub metadata files.

use std::time::Duration;

use cache_core::{DigestKinds, MultiHasher, Sha256};
use cache_store::{CommitRequest, Error, Scope, Tree, TreeEntry};

use crate::support::*;

#[test]
fn commit_publishes_exactly_the_hub_layout_and_lookups_find_it() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("org/model");
    let body = b"weights weights";
    let req = CommitRequest::new(r.clone(), commit(1), path("onnx/sub/model.onnx"), etag_of(body, true), body.len() as u64)
        .with_ref(rev("refs/pr/1"));
    let lock = s.lock_blob(&r, &req.etag, &mut |_| {}).unwrap();
    assert!(!s.has_blob(&r, &req.etag).unwrap());
    let staging = s.stage(&lock, Some(body.len() as u64)).unwrap();
    assert_eq!(staging.resume_from(), 0);
    staging.write_at(body, 0).unwrap();
    // Nothing is visible before the commit.
    assert!(!s.is_cached(&r, &rev(commit(1).as_str()), &path("onnx/sub/model.onnx")).unwrap());
    assert!(!t.hub().join(format!("models--org--model/snapshots/{}", commit(1))).exists());
    assert!(t.hub().join("models--org--model/snapshots").is_dir(), "the repo folder has its snapshots/ from the start");
    let snap = s.commit(staging, &req).unwrap();
    drop(lock);

    let hub = t.hub();
    assert_eq!(snap, hub.join(format!("models--org--model/snapshots/{}/onnx/sub/model.onnx", commit(1))));
    assert_eq!(std::fs::read_link(&snap).unwrap().to_str().unwrap(), format!("../../../../blobs/{}", req.etag));
    assert_eq!(std::fs::read(&snap).unwrap(), body);
    assert_eq!(std::fs::read_to_string(hub.join("models--org--model/refs/refs/pr/1")).unwrap(), commit(1).as_str());
    assert!(
        std::fs::read_to_string(hub.join("CACHEDIR.TAG")).unwrap().starts_with("Signature: 8a477f597d28d172789f06886806bc55\n")
    );
    let mut top: Vec<String> = std::fs::read_dir(&hub).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    top.sort();
    assert_eq!(top, [".locks", "CACHEDIR.TAG", "models--org--model"], "nothing of modelcache's own in the hub");
    let repo_dir: Vec<String> = std::fs::read_dir(hub.join("models--org--model"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(repo_dir.iter().all(|n| ["blobs", "snapshots", "refs"].contains(&n.as_str())), "{repo_dir:?}");

    assert_eq!(s.find(&r, &rev("refs/pr/1"), &path("onnx/sub/model.onnx")).unwrap(), Some(snap.clone()));
    assert_eq!(s.find(&r, &rev(commit(1).as_str()), &path("onnx/sub/model.onnx")).unwrap(), Some(snap));
    assert_eq!(s.find(&r, &rev("main"), &path("onnx/sub/model.onnx")).unwrap(), None);
    assert_eq!(s.find(&r, &rev("refs/pr/1"), &path("other")).unwrap(), None);
    assert_eq!(s.resolve(&r, &rev("refs/pr/1")).unwrap(), Some(commit(1)));
    assert!(s.ref_modified(&r, &rev("refs/pr/1")).unwrap().is_some());
    assert!(s.ref_modified(&r, &rev("main")).unwrap().is_none());
    let stats = s.stats().unwrap();
    assert_eq!((stats.repos, stats.files, stats.total_bytes), (1, 1, body.len() as u64));
    assert_eq!((stats.counters.hits, stats.counters.misses, stats.counters.downloads), (2, 2, 1));
    assert_eq!(stats.counters.bytes_downloaded, body.len() as u64);
}

#[test]
fn mismatched_content_is_rejected_and_leaves_nothing() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("a/b");
    let etag = etag_of(b"expected", true);
    let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let staging = s.stage(&lock, Some(8)).unwrap();
    staging.write_at(b"tampered", 0).unwrap();
    let incomplete = staging.path().to_owned();
    let err = s.commit(staging, &CommitRequest::new(r.clone(), commit(1), path("f"), etag, 8)).unwrap_err();
    let Error::ChecksumMismatch { expected, actual, .. } = &err else { panic!("{err}") };
    assert_eq!((expected.as_str(), actual.as_str()), (etag.to_string().as_str(), Sha256::of(b"tampered").to_string().as_str()));
    assert!(err.hint().unwrap().contains("verify --repair"));
    assert!(!incomplete.exists());
    assert!(!s.has_blob(&r, &etag).unwrap());

    // Wrong size.
    let staging = s.stage(&lock, None).unwrap();
    staging.write_at(b"expected!", 0).unwrap();
    let err = s.commit(staging, &CommitRequest::new(r.clone(), commit(1), path("f"), etag, 8)).unwrap_err();
    assert!(matches!(&err, Error::ChecksumMismatch { expected, .. } if expected == "8 bytes"), "{err}");
    assert!(!incomplete.exists());

    // Digests computed by the caller are checked, not trusted blindly for a wrong etag.
    let staging = s.stage(&lock, None).unwrap();
    staging.write_at(b"expected", 0).unwrap();
    let mut h = MultiHasher::new(DigestKinds::ALL, 8);
    h.update(b"somethin");
    let req = CommitRequest::new(r.clone(), commit(1), path("f"), etag, 8).with_digests(h.finalize());
    assert!(matches!(s.commit(staging, &req), Err(Error::ChecksumMismatch { .. })));
    assert!(!s.is_cached(&r, &rev(commit(1).as_str()), &path("f")).unwrap());

    // A lock for one etag cannot commit another.
    let staging = s.stage(&lock, None).unwrap();
    let other = CommitRequest::new(r, commit(1), path("f"), etag_of(b"x", true), 1);
    assert!(matches!(s.commit(staging, &other), Err(Error::InvalidRequest { .. })));
}

#[test]
fn staging_resumes_after_an_interruption_in_an_earlier_run() {
    let mut t = TestCache::new();
    let r = repo("a/b");
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let etag = etag_of(&body, true);
    {
        let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        let staging = t.store.stage(&lock, Some(body.len() as u64)).unwrap();
        staging.write_at(&body[..40_000], 0).unwrap();
        // Dropped without commit: the process "crashed".
    }
    t.reopen();
    let s = &t.store;
    let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let staging = s.stage(&lock, Some(body.len() as u64)).unwrap();
    assert_eq!(staging.resume_from(), 40_000);
    staging.write_at(&body[40_000..], 40_000).unwrap();
    let req = CommitRequest::new(r.clone(), commit(2), path("w.bin"), etag, body.len() as u64);
    s.commit(staging, &req).unwrap();
    assert_eq!(s.stats().unwrap().counters.bytes_downloaded, 60_000);
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
}

#[test]
fn shared_content_is_one_blob_linked_twice() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("a/b");
    put(s, &r, commit(1), "x.json", b"same");
    put(s, &r, commit(2), "y/x.json", b"same");
    let blobs: Vec<_> = std::fs::read_dir(t.hub().join("models--a--b/blobs")).unwrap().collect();
    assert_eq!(blobs.len(), 1);
    let st = s.stats().unwrap();
    assert_eq!((st.files, st.total_bytes, st.per_repo[0].revisions.len()), (2, 4, 2));
    assert_eq!(st.counters.downloads, 1, "the second file was linked, not downloaded");
}

#[test]
fn refs_no_exist_markers_and_trees() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("a/b");
    s.write_ref(&r, &rev("main"), &commit(7)).unwrap();
    let before = s.ref_modified(&r, &rev("main")).unwrap();
    s.write_ref(&r, &rev("main"), &commit(7)).unwrap();
    assert_eq!(s.ref_modified(&r, &rev("main")).unwrap(), before, "an unchanged ref is not rewritten");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options().write(true).open(t.hub().join("models--a--b/refs/main")).unwrap().set_modified(old).unwrap();
    let aged = s.ref_modified(&r, &rev("main")).unwrap().unwrap();
    assert!(aged < before.unwrap());
    s.touch_ref(&r, &rev("main")).unwrap();
    assert!(s.ref_modified(&r, &rev("main")).unwrap().unwrap() >= before.unwrap(), "touching makes the ref fresh");
    assert_eq!(s.resolve(&r, &rev("main")).unwrap(), Some(commit(7)), "touching keeps the target");
    s.touch_ref(&r, &rev("unknown")).unwrap();
    assert!(s.ref_modified(&r, &rev("unknown")).unwrap().is_none(), "touching a missing ref creates nothing");
    assert!(s.free_space().unwrap() > 0);
    s.write_ref(&r, &rev("main"), &commit(8)).unwrap();
    assert_eq!(s.resolve(&r, &rev("main")).unwrap(), Some(commit(8)));
    assert!(!s.is_no_exist(&r, &rev("main"), &path("missing/x.txt")).unwrap());
    s.mark_no_exist(&r, &commit(8), &path("missing/x.txt")).unwrap();
    assert!(s.is_no_exist(&r, &rev("main"), &path("missing/x.txt")).unwrap());
    assert!(t.hub().join(format!("models--a--b/.no_exist/{}/missing/x.txt", commit(8))).is_file());

    let mut tree = Tree::default();
    tree.files.insert(
        path("config.json"),
        TreeEntry { size: 3, blob_id: "a".repeat(40), lfs_sha256: None, lfs_size: None, xet_hash: None },
    );
    assert_eq!(s.read_tree(&r, &commit(8)).unwrap(), None);
    s.write_tree(&r, &commit(8), &tree).unwrap();
    assert_eq!(s.read_tree(&r, &commit(8)).unwrap(), Some(tree));
    let names: Vec<_> =
        std::fs::read_dir(t.hub().join("models--a--b")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".mc-tmp")), "{names:?}");
}

#[test]
fn hits_are_flushed_on_drop_and_survive_reopening() {
    let mut t = TestCache::new();
    let r = repo("a/b");
    put(&t.store, &r, commit(1), "f", b"data");
    let before = t.store.entries().unwrap()[0].last_used;
    std::thread::sleep(Duration::from_millis(20));
    for _ in 0..5 {
        assert!(t.store.find(&r, &rev(commit(1).as_str()), &path("f")).unwrap().is_some());
    }
    t.reopen();
    let st = t.store.stats().unwrap();
    assert_eq!(st.counters.hits, 5);
    assert!(t.store.entries().unwrap()[0].last_used > before);
}

#[test]
fn copy_fallback_stores_real_files_like_huggingface_hub() {
    let t = TestCache::with(|c| c.force_copy(true));
    let s = &t.store;
    let r = repo("a/b");
    let snap = put(s, &r, commit(1), "dir/f.bin", b"copied bytes");
    let meta = std::fs::symlink_metadata(&snap).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(std::fs::read(&snap).unwrap(), b"copied bytes");
    assert!(s.find(&r, &rev(commit(1).as_str()), &path("dir/f.bin")).unwrap().is_some());
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    assert_eq!(s.stats().unwrap().total_bytes, 12);
    assert_eq!(s.reconcile().unwrap().added, 0);
}

#[test]
fn a_waiter_follows_the_holders_progress() {
    let t = TestCache::with(|c| c.lock_stall_timeout(Duration::from_millis(400)));
    let r = repo("a/b");
    let body = vec![7u8; 64 * 1024];
    let etag = etag_of(&body, true);
    let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let staging = t.store.stage(&lock, Some(body.len() as u64)).unwrap();
    let waiter = std::thread::spawn({
        let (cfg, r) = (t.store.config().clone(), r.clone());
        move || {
            let other = cache_store::Store::open(cfg).unwrap();
            let mut seen = Vec::new();
            let got = other.lock_blob(&r, &etag, &mut |w| seen.push(w.incomplete_bytes)).map(drop);
            (got, seen)
        }
    });
    // Slower than the stall timeout in total, but always making progress.
    for (i, chunk) in body.chunks(8 * 1024).enumerate() {
        std::thread::sleep(Duration::from_millis(150));
        staging.write_at(chunk, (i * 8 * 1024) as u64).unwrap();
    }
    t.store.commit(staging, &CommitRequest::new(r, commit(1), path("f"), etag, body.len() as u64)).unwrap();
    drop(lock);
    let (got, seen) = waiter.join().unwrap();
    got.unwrap();
    assert!(seen.iter().any(|b| b.is_some_and(|n| n > 0)), "{seen:?}");
}
