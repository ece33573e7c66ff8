//! `doctor` as a user meets it: a healthy cache checks out; a stale partial download, a
//! repository folder moved to another disk, an unreadable index set aside and a home
//! others can read are each named with a next step; nothing is changed.

use modelcache::{CheckStatus, ConfigKey};

use crate::{Env, commit, files_under, model};

fn check<'a>(r: &'a modelcache::DoctorReport, name: &str) -> &'a modelcache::Check {
    r.checks.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no `{name}` check in {r:?}"))
}

#[test]
fn a_healthy_cache_checks_out_and_each_problem_is_named_with_a_next_step() {
    let env = Env::new();
    env.seed(&model("org/kept"), commit(1), &[("config.json", b"{}")]);
    let cache = env.builder().offline(true).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    let healthy = cache.doctor_with_env(&|_| None).unwrap();
    assert_eq!(healthy.status(), CheckStatus::Ok, "{healthy:#?}");
    let names: Vec<&str> = healthy.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "hub cache",
            "home",
            "locks",
            "lock mode",
            "links",
            "index integrity",
            "lock files",
            "index",
            "partial downloads",
            "repositories",
            "environment",
            "permissions",
            "strategy",
            "configuration"
        ]
    );
    assert!(check(&healthy, "lock mode").detail.starts_with("hub cache: flock: "), "{healthy:#?}");
    assert!(check(&healthy, "index integrity").detail.contains("agrees with the disk"), "{healthy:#?}");
    assert!(check(&healthy, "locks").detail.contains("flock excludes"), "{healthy:#?}");
    assert!(check(&healthy, "hub cache").detail.contains(" free of "), "{healthy:#?}");
    assert!(check(&healthy, "strategy").detail.starts_with("cache-only, available"), "{healthy:#?}");
    assert!(check(&healthy, "configuration").detail.contains("offline"), "{healthy:#?}");
    assert!(!env.hub_dir().join(".locks/.probe.lock").exists(), "the lock probe leaves nothing behind");
    let before = files_under(&env.hub_dir());

    // A partial download nobody touches, a repository moved to another disk and linked
    // back, and a home readable by others.
    let blobs = env.hub_dir().join("models--org--kept/blobs");
    std::fs::write(blobs.join(format!("{}.incomplete", "a".repeat(40))), b"partial").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(elsewhere.path().join("moved/blobs")).unwrap();
    std::fs::create_dir_all(elsewhere.path().join("moved/snapshots")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path().join("moved"), env.hub_dir().join("models--org--moved")).unwrap();
    std::fs::set_permissions(env.home_dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let sick = cache.doctor_with_env(&|_| None).unwrap();
    assert_eq!(sick.status(), CheckStatus::Warn, "{sick:#?}");
    let partial = check(&sick, "partial downloads");
    assert_eq!(partial.status, CheckStatus::Warn);
    assert!(partial.detail.starts_with("1 untouched") && partial.hint.as_deref().unwrap().contains("modelcache doctor --fix"));
    let moved = check(&sick, "repositories");
    assert_eq!(moved.status, CheckStatus::Warn);
    assert!(moved.detail.contains("`org/moved`"), "{moved:?}");
    let home = check(&sick, "home");
    assert_eq!(home.status, CheckStatus::Warn);
    assert!(home.detail.ends_with("mode 755") && home.hint.as_deref().unwrap().contains("chmod 700"), "{home:?}");
    assert_eq!(check(&sick, "locks").status, CheckStatus::Ok);

    let after = files_under(&env.hub_dir());
    assert_eq!(after.len(), before.len() + 2, "doctor changed nothing; the test planted two entries: {after:?}");
}

#[test]
fn an_index_set_aside_is_reported() {
    let env = Env::new();
    env.seed(&model("org/kept"), commit(1), &[("config.json", b"{}")]);
    let index = {
        let cache = env.builder().offline(true).build().unwrap();
        let dir = cache.doctor_with_env(&|_| None).unwrap();
        assert_eq!(check(&dir, "index").status, CheckStatus::Ok);
        files_under(&env.home_dir()).into_iter().find(|f| f.starts_with("hubs/") && f.ends_with("index.sqlite3")).unwrap()
    };
    // Random bytes where the index was (its write-ahead log gone too, or SQLite would read
    // the pages from there).
    std::fs::write(env.home_dir().join(&index), vec![0x5a; 8192]).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(env.home_dir().join(format!("{index}{suffix}")));
    }
    let cache = env.builder().offline(true).build().unwrap();
    let r = cache.doctor_with_env(&|_| None).unwrap();
    let c = check(&r, "index");
    assert_eq!(c.status, CheckStatus::Warn, "{r:#?}");
    assert!(c.detail.contains("set aside") && c.detail.contains("index.sqlite3.corrupt-"), "{c:?}");
}

#[test]
fn fix_rebuilds_the_index_and_clears_stale_state_and_holders_are_named() {
    let env = Env::new();
    env.seed(&model("org/kept"), commit(1), &[("config.json", b"{}"), ("vocab.txt", b"v")]);
    let cache = env.builder().offline(true).set(ConfigKey::InUseGrace, "0s").build().unwrap();
    assert_eq!(cache.doctor_with_env(&|_| None).unwrap().status(), CheckStatus::Ok);

    // A file removed behind the index's back, a stale partial download, a home others can
    // read, and a lock another process holds.
    let snapshot = env.hub_dir().join(format!("models--org--kept/snapshots/{}", commit(1)));
    let target = std::fs::read_link(snapshot.join("vocab.txt")).unwrap();
    std::fs::remove_file(snapshot.join("vocab.txt")).unwrap();
    let blobs = env.hub_dir().join("models--org--kept/blobs");
    std::fs::write(blobs.join(format!("{}.incomplete", "c".repeat(40))), b"stale").unwrap();
    std::fs::set_permissions(env.home_dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let holder = cache_store::Store::open(cache_store::StoreConfig::new(
        camino::Utf8PathBuf::from_path_buf(env.hub_dir()).unwrap(),
        camino::Utf8PathBuf::from_path_buf(env.home_dir()).unwrap(),
    ))
    .unwrap();
    let etag = cache_core::Etag::new(&"d".repeat(40)).unwrap();
    let lock = holder.lock_blob(&model("org/kept"), &etag, &mut |_| {}).unwrap();

    let sick = cache.doctor_with_env(&|_| None).unwrap();
    let index = check(&sick, "index integrity");
    assert_eq!(index.status, CheckStatus::Warn, "{sick:#?}");
    assert!(index.detail.contains("1 recorded but gone") && index.hint.as_deref().unwrap().contains("doctor --fix"), "{index:?}");
    let locks = check(&sick, "lock files");
    let me = format!("`{etag}.lock` by pid {} (", std::process::id());
    assert!(locks.detail.contains(&me), "the holder is named: {locks:?}");
    assert_eq!(check(&sick, "partial downloads").status, CheckStatus::Warn);
    assert_eq!(check(&sick, "home").status, CheckStatus::Warn);

    // (Listing the cache, as doctor does, recorded the removal.) The file back behind the
    // index's back: `--fix` rebuilds before it checks again.
    std::os::unix::fs::symlink(&target, snapshot.join("vocab.txt")).unwrap();
    let fixed = cache.doctor_fix(&|_| None).unwrap();
    assert_eq!(fixed.status(), CheckStatus::Ok, "{fixed:#?}");
    let said = fixed.fixed.join("\n");
    assert!(said.contains("rebuilt the index from the disk: 1 added, 0 removed"), "{said}");
    assert!(said.contains("removed 1 stale partial download(s)"), "{said}");
    assert!(said.contains("made the home") && said.contains("private (0700)"), "{said}");
    assert!(!blobs.join(format!("{}.incomplete", "c".repeat(40))).exists());
    assert!(env.hub_dir().join(format!(".locks/models--org--kept/{etag}.lock")).exists(), "a held lock file is kept");
    drop(lock);
}
