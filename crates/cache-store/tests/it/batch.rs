//! `Store::commit_batch`: many staged blobs published with one durability pass and one
//! index transaction, each checked as a single commit checks it.

use cache_store::{CommitRequest, Error, ReconcileReport, Staging, Store};

use crate::support::*;

/// Locks and stages `bytes` for `req`; the lock comes back to be held until the commit.
fn staged(store: &Store, req: &CommitRequest, bytes: &[u8]) -> (cache_store::BlobLock, Staging) {
    let lock = store.lock_blob(&req.repo, &req.etag, &mut |_| {}).unwrap();
    let staging = store.stage(&lock, Some(req.size)).unwrap();
    staging.write_at(bytes, 0).unwrap();
    (lock, staging)
}

#[test]
fn a_batch_publishes_every_good_file_and_refuses_only_the_bad_ones() {
    let t = TestCache::new();
    let r = repo("org/many");
    let files: Vec<(String, Vec<u8>)> =
        (0..24).map(|i| (format!("d{}/f{i:02}.json", i % 3), format!("{{\"n\": {i}}}").repeat(i + 1).into_bytes())).collect();
    let mut locks = Vec::new();
    let mut items = Vec::new();
    for (p, bytes) in &files {
        let req = CommitRequest::new(r.clone(), commit(1), path(p), etag_of(bytes, bytes.len() % 2 == 0), bytes.len() as u64)
            .with_ref(rev("main"));
        let (lock, staging) = staged(&t.store, &req, bytes);
        locks.push(lock);
        items.push((staging, req));
    }
    // One file whose bytes do not match its etag (a lying server), same size.
    let lie = b"what the server sent".to_vec();
    let bad =
        CommitRequest::new(r.clone(), commit(1), path("bad.bin"), etag_of(b"what the listing said", true), lie.len() as u64);
    let (lock, staging) = staged(&t.store, &bad, &lie);
    let bad_staging = staging.path().to_owned();
    locks.push(lock);
    items.insert(5, (staging, bad));

    let results = t.store.commit_batch(items).unwrap();
    drop(locks);
    assert_eq!(results.len(), files.len() + 1, "one result per item, in order");
    assert!(matches!(&results[5], Err(Error::ChecksumMismatch { .. })), "{:?}", results[5]);
    assert!(!bad_staging.exists(), "a staging file with the wrong digest is deleted");
    let good: Vec<_> = results.iter().enumerate().filter(|(i, _)| *i != 5).map(|(_, r)| r.as_ref().unwrap()).collect();
    for ((p, bytes), returned) in files.iter().zip(good) {
        let found = t.store.find(&r, &rev("main"), &path(p)).unwrap().unwrap_or_else(|| panic!("{p} is not cached"));
        assert_eq!(&found, returned);
        assert_eq!(&std::fs::read(&found).unwrap(), bytes, "{p}");
    }
    assert!(t.store.find(&r, &rev("main"), &path("bad.bin")).unwrap().is_none());

    let stats = t.store.stats().unwrap();
    assert_eq!((stats.repos, stats.files), (1, 24));
    assert_eq!(stats.counters.downloads, 24);
    assert_eq!(stats.counters.bytes_downloaded, files.iter().map(|(_, b)| b.len() as u64).sum::<u64>());
    assert_eq!(t.store.reconcile().unwrap(), ReconcileReport::default(), "the index agrees with the disk");
    crate::python::scan_clean(&t.hub());
}

#[test]
fn an_item_staged_for_another_blob_fails_alone_and_its_bytes_stay_for_a_resume() {
    let t = TestCache::new();
    let r = repo("org/mixed");
    let (a, b) = (b"first file".to_vec(), b"second file!".to_vec());
    let req_a = CommitRequest::new(r.clone(), commit(2), path("a"), etag_of(&a, false), a.len() as u64);
    let req_b = CommitRequest::new(r.clone(), commit(2), path("b"), etag_of(&b, false), b.len() as u64);
    let (lock_a, staging_a) = staged(&t.store, &req_a, &a);
    let (lock_b, staging_b) = staged(&t.store, &req_b, &b);
    let results = t.store.commit_batch(vec![(staging_b, req_a.clone()), (staging_a, req_a)]).unwrap();
    assert!(matches!(&results[0], Err(Error::InvalidRequest { .. })), "{:?}", results[0]);
    assert_eq!(std::fs::read(results[1].as_ref().unwrap()).unwrap(), a);
    drop(lock_a);

    // b was not published, but its complete staging file is resumed whole, not refetched.
    assert!(t.store.find(&r, &rev(&commit(2).to_string()), &path("b")).unwrap().is_none());
    let again = t.store.stage(&lock_b, Some(req_b.size)).unwrap();
    assert_eq!(again.completed_ranges(), std::slice::from_ref(&(0..req_b.size)));
    let published = t.store.commit_batch(vec![(again, req_b)]).unwrap();
    assert_eq!(std::fs::read(published[0].as_ref().unwrap()).unwrap(), b);
    assert_eq!(t.store.reconcile().unwrap(), ReconcileReport::default());
}
