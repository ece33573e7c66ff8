//! A full disk: the free-space pre-check before staging, and ENOSPC while writing, both
//! reported as `DiskFull` and leaving nothing behind. Uses a 1 MiB tmpfs (needs root, as
//! in CI here); where mounting is impossible only the pre-check runs, with a note.

use std::process::Command;

use cache_store::{Error, Store};
use camino::{Utf8Path, Utf8PathBuf};

use crate::support::*;

struct Tmpfs(Utf8PathBuf);

impl Tmpfs {
    fn mount(dir: &Utf8Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.as_str()])
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.as_str()).status();
    }
}

#[test]
fn a_full_disk_is_reported_before_and_during_a_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root(&tmp);
    let Some(fs) = Tmpfs::mount(&root.join("small"), "1m") else {
        eprintln!("note: cannot mount a tmpfs here; checking only the free-space pre-check");
        let t = TestCache::new();
        let lock = t.store.lock_blob(&repo("a/b"), &etag_of(b"x", true), &mut |_| {}).unwrap();
        assert!(matches!(t.store.stage(&lock, Some(u64::MAX / 4)), Err(Error::DiskFull { .. })));
        return;
    };
    let hub = fs.0.join("hub");
    let store = Store::open(cache_store::StoreConfig::new(&hub, root.join("home")).free_space_margin(0)).unwrap();
    let r = repo("big/model");
    let big = vec![1u8; 2 << 20];
    let etag = etag_of(&big, true);
    let lock = store.lock_blob(&r, &etag, &mut |_| {}).unwrap();

    // Known size: refused before anything is created.
    let err = store.stage(&lock, Some(big.len() as u64)).unwrap_err();
    let Error::DiskFull { needed, available, .. } = &err else { panic!("{err}") };
    assert_eq!(*needed, big.len() as u64);
    assert!(*available < 1 << 20);
    assert!(err.hint().unwrap().contains("free space"));
    let incomplete = hub.join(format!("models--big--model/blobs/{etag}.incomplete"));
    assert!(!incomplete.exists());

    // The margin counts too.
    let strict = Store::open(cache_store::StoreConfig::new(&hub, root.join("home")).free_space_margin(900 << 10)).unwrap();
    assert!(matches!(strict.stage(&lock, Some(200 << 10)), Err(Error::DiskFull { .. })));
    drop(strict);

    // Unknown size: ENOSPC while writing becomes DiskFull and the staging file goes.
    let staging = store.stage(&lock, None).unwrap();
    let err = staging.write_at(&big, 0).unwrap_err();
    assert!(matches!(err, Error::DiskFull { .. }), "{err}");
    assert!(!incomplete.exists(), "nothing left behind");
    drop(staging);
    drop(lock);

    // The cache still works once the data fits.
    put(&store, &r, commit(1), "small.bin", b"fits");
    assert!(store.is_cached(&r, &rev(commit(1).as_str()), &path("small.bin")).unwrap());
    drop(store);
}
