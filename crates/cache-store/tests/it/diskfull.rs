//! A full disk: the free-space pre-check before staging, and ENOSPC while writing, both
//! reported as `DiskFull` and leaving nothing behind; the default margin is proportional
//! to the filesystem. Uses a 1 MiB tmpfs: mounted directly as root, else by re-running
//! the test in a private mount namespace (`unshare -rm`, as the CLI's end-to-end test
//! does); a machine allowing neither fails the test saying so.

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
        assert!(child_role().is_none(), "cannot mount a tmpfs even in a private mount namespace");
        eprintln!("note: cannot mount a tmpfs here; running this test again under `unshare -rm`");
        let status = Command::new("unshare")
            .arg("-rm")
            .arg(std::env::current_exe().unwrap())
            .args(["diskfull::a_full_disk_is_reported_before_and_during_a_transfer", "--exact", "--nocapture"])
            .env(CHILD_ENV, "unshared")
            .status()
            .expect("this test needs root or `unshare` (util-linux) to mount a small tmpfs");
        assert!(status.success(), "the test failed in a private mount namespace (`unshare -rm`)");
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

    // The default margin is 1 % of this small volume, not 64 MiB: a 33-byte file fits.
    let config = cache_store::StoreConfig::new(&hub, root.join("home"));
    assert_eq!(config.margin_for(1 << 20), 10_485);
    assert_eq!(cache_store::StoreConfig::auto_margin(1 << 40), 64 << 20);
    let store = Store::open(config).unwrap();
    let small = [b'x'; 33];
    put(&store, &r, commit(2), "tiny.json", &small);
    assert!(store.is_cached(&r, &rev(commit(2).as_str()), &path("tiny.json")).unwrap());
    // And it shows in the refusal of what does not fit with it.
    let lock = store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let free = store.free_space().unwrap();
    let err = store.stage(&lock, Some(free)).unwrap_err();
    let Error::DiskFull { needed, .. } = &err else { panic!("{err}") };
    assert_eq!(*needed, free + 10_485);
    assert!(err.to_string().contains("margin") && err.hint().unwrap().contains("free_space_margin"), "{err}");
}
