//! Repo folders (or their `blobs/`) moved to another disk and symlinked back: such a repo
//! is skipped and reported, never a failure of the whole cache.

use cache_core::{EvictionPolicy, Timestamp};
use cache_store::{Error, Scope};

use crate::support::*;

#[test]
fn a_symlinked_repo_folder_or_blobs_dir_is_skipped_and_the_rest_of_the_cache_works() {
    let t = TestCache::new();
    let s = &t.store;
    let (a, moved, split, other) = (repo("org/a"), repo("org/moved"), repo("org/split"), repo("org/other"));
    for r in [&a, &moved, &split, &other] {
        put(s, r, commit(1), "w.bin", format!("weights of {r}").as_bytes());
        s.write_ref(r, &rev("main"), &commit(1)).unwrap();
    }
    let hub = t.hub();
    let disk = t.root().join("other-disk");
    std::fs::create_dir_all(&disk).unwrap();
    // The whole folder moved, and only the blobs of another.
    std::fs::rename(hub.join("models--org--moved"), disk.join("models--org--moved")).unwrap();
    std::os::unix::fs::symlink(disk.join("models--org--moved"), hub.join("models--org--moved")).unwrap();
    std::fs::rename(hub.join("models--org--split/blobs"), disk.join("split-blobs")).unwrap();
    std::os::unix::fs::symlink(disk.join("split-blobs"), hub.join("models--org--split/blobs")).unwrap();

    let listed: Vec<String> = s.list().unwrap().iter().map(|l| l.repo.to_string()).collect();
    assert_eq!(listed, ["org/a", "org/other"]);
    let report = s.verify(&Scope::All, false).unwrap();
    assert_eq!((report.valid, report.skipped.clone()), (2, vec!["org/moved".to_owned(), "org/split".to_owned()]), "{report:?}");
    s.stats().unwrap();
    // Told about one of them by name, the store says what is wrong and what to do.
    let err = s.remove(&Scope::Repo(moved.clone())).unwrap_err();
    assert!(matches!(err, Error::OutsideCache { .. }), "{err}");
    assert!(err.hint().unwrap().contains("move"), "{err}");
    assert!(matches!(s.verify(&Scope::Repo(split.clone()), false), Err(Error::OutsideCache { .. })));
    assert_eq!(s.find(&moved, &rev("main"), &path("w.bin")).unwrap(), None, "never followed out of the cache");
    // A download into it says why it cannot be done.
    let err = s.write_ref(&moved, &rev("main"), &commit(2)).unwrap_err();
    assert!(matches!(err, Error::OutsideCache { .. }), "{err}");
    let lock = s.lock_blob(&moved, &etag_of(b"new", true), &mut |_| {}).unwrap();
    assert!(matches!(s.stage(&lock, Some(3)), Err(Error::OutsideCache { .. })));
    drop(lock);
    // The index still has their entries: eviction skips them too.
    let report = s
        .evict(
            &EvictionPolicy { max_size: Some(0), in_use_grace: std::time::Duration::ZERO, ..Default::default() },
            Timestamp::now(),
        )
        .unwrap();
    assert_eq!(report.evicted.len(), 2, "{report:?}");
    s.reconcile().unwrap();
    put(s, &a, commit(1), "w.bin", b"again");
    s.clean_stale(std::time::Duration::ZERO).unwrap();
    s.remove(&Scope::Repo(other.clone())).unwrap();
    assert!(!hub.join("models--org--other").exists());
    s.clear().unwrap();
    assert!(!hub.join("models--org--a").exists());
    // What was moved is left as it is.
    assert!(disk.join("models--org--moved/blobs").is_dir());
    assert!(std::fs::read_dir(disk.join("split-blobs")).unwrap().count() > 0);
}
