//! Hostile input through every public entry point: rejected by the `cache-core` parsers
//! before it reaches the store, or contained by cap-std when planted on disk.

use cache_core::{CommitHash, Etag, Repo, RepoId, RepoPath, Revision, Sha256};
use cache_store::{ArtifactKey, CommitRequest, Error, Scope, Store};

use crate::support::*;

const HOSTILE: &[&str] = &["../../etc/passwd", "/etc/passwd", "a/../../b", "..", "a/./b", "a\0b", "a\\..\\b", "a//b", "x/", "\n"];

#[test]
fn hostile_names_never_parse_into_store_arguments() {
    for bad in HOSTILE {
        assert!(RepoPath::new(bad).is_err(), "path {bad:?}");
        assert!(RepoId::new(bad).is_err(), "repo {bad:?}");
        assert!(Revision::new(bad).is_err() || !bad.contains(".."), "revision {bad:?}");
        assert!(CommitHash::new(bad).is_err());
        assert!(Etag::new(bad).is_err());
        assert!(Repo::from_folder_name(bad).is_err());
    }
    for bad in ["../x", "a/../b", "/main", "refs/../../x", "x/.hidden"] {
        assert!(Revision::new(bad).is_err(), "{bad:?}");
    }
}

/// Plants symlinks pointing outside the cache at every place the store writes to, runs
/// every writing entry point, and checks nothing outside changed.
#[test]
fn planted_symlinks_cannot_redirect_writes_outside_the_roots() {
    let t = TestCache::new();
    let outside = t.root().join("outside");
    std::fs::create_dir_all(outside.join("sub")).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let hub = t.hub();
    let r = repo("evil/repo");
    let folder = hub.join("models--evil--repo");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["refs", "snapshots", "blobs", ".no_exist", "trees"] {
        std::os::unix::fs::symlink(&outside, folder.join(name)).unwrap();
    }
    std::fs::create_dir_all(hub.join(".locks")).unwrap();
    std::os::unix::fs::symlink(&outside, hub.join(".locks/models--evil--repo")).unwrap();
    let s = &t.store;
    let body = b"payload";
    let etag = etag_of(body, true);

    assert!(s.write_ref(&r, &rev("main"), &commit(1)).is_err());
    assert!(s.mark_no_exist(&r, &commit(1), &path("victim")).is_err());
    assert!(s.write_tree(&r, &commit(1), &cache_store::Tree::default()).is_err());
    assert!(s.lock_blob(&r, &etag, &mut |_| {}).is_err());
    assert_eq!(s.find(&r, &rev("main"), &path("victim")).unwrap(), None);
    assert!(!s.is_cached(&r, &rev(commit(1).as_str()), &path("sub")).unwrap());
    let _ = s.remove(&Scope::Repo(r.clone()));
    let _ = s.verify(&Scope::All, true);
    let _ = s.reconcile();
    let _ = s.clean_stale(std::time::Duration::ZERO);

    // A repo whose folder itself is a symlink out of the root.
    let r2 = repo("evil/two");
    std::os::unix::fs::symlink(&outside, hub.join("models--evil--two")).unwrap();
    let lock = s.lock_blob(&r2, &etag, &mut |_| {}).unwrap();
    assert!(s.stage(&lock, None).is_err());
    let _ = s.evict(
        &cache_core::EvictionPolicy { max_size: Some(0), in_use_grace: std::time::Duration::ZERO, ..Default::default() },
        cache_core::Timestamp::now(),
    );
    let _ = s.clear();

    // Artifacts: hostile URLs only ever become hashes and sanitised names.
    let key = ArtifactKey::new("https://x.test/../../../outside/victim").with_sha256(Sha256::of(body));
    let stored = s.put_artifact(&key, &mut &body[..]).unwrap();
    assert!(stored.starts_with(t.root().join("home/artifacts/entries")), "{stored}");
    let _ = s.remove(&Scope::Artifacts);

    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    let mut names: Vec<String> =
        std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["sub", "victim"], "nothing was written outside");
    assert_eq!(std::fs::read_dir(outside.join("sub")).unwrap().count(), 0);
    drop(lock);
}

#[test]
fn requests_that_do_not_fit_their_lock_are_refused() {
    let t = TestCache::new();
    let s: &Store = &t.store;
    let r = repo("a/b");
    let etag = etag_of(b"x", true);
    let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    assert!(matches!(s.stage_artifact(&lock, None), Err(Error::InvalidRequest { .. })));
    let other = CommitRequest::new(repo("a/c"), commit(1), path("f"), etag, 1);
    assert!(matches!(s.link_existing(&lock, &other), Err(Error::InvalidRequest { .. })));
    let artifact_lock = s.lock_artifact(&ArtifactKey::new("u"), &mut |_| {}).unwrap();
    assert!(matches!(s.stage(&artifact_lock, None), Err(Error::InvalidRequest { .. })));
}

/// A snapshot entry planted to point at a file outside the cache is "not cached" for every
/// lookup — never served, never an error — and the hit memo never learns it.
#[test]
fn a_snapshot_link_leading_outside_is_not_a_cached_file() {
    let t = TestCache::new();
    let outside = t.root().join("outside-file");
    std::fs::write(&outside, b"not from the hub").unwrap();
    let r = repo("evil/link");
    let snap = t.hub().join("models--evil--link/snapshots").join(commit(1).as_str());
    std::fs::create_dir_all(&snap).unwrap();
    std::os::unix::fs::symlink(&outside, snap.join("config.json")).unwrap();
    let s = &t.store;
    let at = rev(commit(1).as_str());
    for _ in 0..2 {
        assert_eq!(s.find(&r, &at, &path("config.json")).unwrap(), None);
        assert_eq!(s.lookup(&r, &at, &path("config.json")).unwrap(), None);
        assert_eq!(s.probe(&r, &at, &path("config.json")).unwrap(), None);
        assert!(!s.is_cached(&r, &at, &path("config.json")).unwrap());
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"not from the hub");
}
