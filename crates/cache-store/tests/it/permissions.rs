//! The roots the store creates are private (0700), and a cache directory or home it may
//! not use is a clear error naming the path, with a hint.
//!
//! Root bypasses permission bits, so the permission test drops to `nobody` when run as
//! root: it runs itself again under `setpriv --reuid=65534` (util-linux). A path through
//! a regular file fails for root too (`ENOTDIR`), and is tested as is.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use cache_store::{Error, Store, StoreConfig};

use crate::support::*;

#[test]
fn created_roots_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root(&tmp);
    let store = Store::open(config(root.join("new"))).unwrap();
    for dir in [store.hub_dir(), store.home_dir()] {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{dir}");
    }
}

#[test]
fn a_path_through_a_regular_file_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = root(&tmp);
    std::fs::write(root.join("file"), b"not a folder").unwrap();
    for (hub, home) in [(root.join("file/hub"), root.join("home")), (root.join("hub"), root.join("file/home"))] {
        let err = Store::open(StoreConfig::new(&hub, &home)).unwrap_err();
        let Error::Io { path, .. } = &err else { panic!("{err}") };
        assert!(path.starts_with(root.join("file")), "{err}");
        assert!(err.to_string().contains(root.join("file").as_str()), "{err}");
        let hint = err.hint().unwrap();
        assert!(hint.contains("a file stands where a folder") && hint.contains("MODELCACHE_HOME"), "{hint}");
    }
}

#[test]
fn an_inaccessible_cache_dir_or_home_is_a_clear_error() {
    const TEST: &str = "permissions::an_inaccessible_cache_dir_or_home_is_a_clear_error";
    if real_uid() == 0 {
        assert!(child_role().is_none(), "still root after dropping privileges");
        let status = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture"])
            .env(CHILD_ENV, "nobody")
            .status()
            .expect("as root, this test needs `setpriv` (util-linux) to run as `nobody`");
        assert!(status.success(), "the test failed as `nobody`");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = root(&tmp);
    let locked = root.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    for (hub, home) in [(locked.join("hub"), root.join("home")), (root.join("hub"), locked.join("home"))] {
        let err = Store::open(StoreConfig::new(&hub, &home)).unwrap_err();
        let Error::Io { path, source, .. } = &err else { panic!("{err}") };
        assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied, "{err}");
        assert!(path.starts_with(&locked), "{err}");
        let hint = err.hint().unwrap();
        assert!(hint.contains("check the permissions") && hint.contains(path.as_str()), "{hint}");
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// The real user id, read from `/proc` (no libc dependency in tests).
fn real_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
