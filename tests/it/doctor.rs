//! `modelcache doctor` as a user runs it: exit 0 on a healthy cache, 1 with findings, each
//! with a hint naming a real command or setting; `--fix` repairs what it can. Planted
//! problems: a corrupt index file, a stale partial download, a home others can read, a
//! cache on a read-only mount and on a full disk (small tmpfs mounts in a private mount
//! namespace), a held lock, conflicting settings.

use crate::{Env, Run, bin, hub};

/// `doctor` (with `args`) with the hub cache on a fresh 1 MiB tmpfs, prepared by `setup`
/// (shell, `$0` is the mount point) — in a private mount namespace, so nothing is left
/// mounted.
fn doctor_on_tmpfs(env: &Env, setup: &str, args: &[&str]) -> Run {
    std::fs::create_dir_all(env.hub_dir()).unwrap();
    let mut c = env.with_env("unshare");
    let script = format!("mount -t tmpfs -o size=1m tmpfs \"$0\" && {setup} && exec \"$@\"");
    c.args(["-rm", "sh", "-c", &script]).arg(env.hub_dir()).arg(bin()).arg("doctor").args(args);
    let run = Run::from(&c.output().expect("this test needs `unshare` (util-linux) to mount a small tmpfs"));
    assert!(!run.stderr.contains("mount:") && !run.stderr.contains("unshare:"), "could not mount a tmpfs: {}", run.stderr);
    run
}

#[test]
fn a_healthy_cache_exits_0_and_planted_problems_exit_1_until_fixed() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    env.run(&["get", "org/model", "config.json"]).ok();
    let healthy = env.run(&["doctor"]).ok();
    assert!(healthy.lines().iter().all(|l| l.starts_with("ok  ")), "{}", healthy.stdout);
    assert!(healthy.stdout.contains("lock mode") && healthy.stdout.contains("hub cache: flock"), "{}", healthy.stdout);
    assert!(
        healthy
            .lines()
            .iter()
            .any(|l| l.starts_with("ok ") && l.contains(" links ") && l.contains("symlinks and hard links work")),
        "{}",
        healthy.stdout
    );
    assert!(
        std::fs::read_dir(env.hub_dir().join(".locks"))
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains("probe")),
        "the link probe is removed"
    );

    // A corrupt index (set aside and rebuilt when opened), a stale partial download, a
    // home others can read.
    let index = walk(&env.home_dir()).into_iter().find(|p| p.ends_with("index.sqlite3")).unwrap();
    std::fs::write(&index, vec![0x5a; 8192]).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", index.display()));
    }
    let blobs = env.hub_dir().join("models--org--model/blobs");
    std::fs::write(blobs.join(format!("{}.incomplete", "e".repeat(40))), b"stale").unwrap();
    std::fs::set_permissions(env.home_dir(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let sick = env.run(&["doctor"]).expect(1);
    let out = &sick.stdout;
    assert!(out.contains("warn  index ") && out.contains("unreadable file(s) were set aside"), "{out}");
    assert!(out.contains("warn  partial downloads  1 untouched"), "{out}");
    assert!(out.contains("warn  home") && out.contains("mode 755") && out.contains("chmod 700"), "{out}");
    assert_eq!(out.matches("hint: ").count(), out.lines().filter(|l| l.starts_with("warn")).count(), "a hint per finding: {out}");
    assert!(out.contains("`modelcache doctor --fix`"), "{out}");
    assert!(sick.stderr.starts_with("error: the cache works, with findings: "), "{}", sick.stderr);

    let fixed = env.run(&["doctor", "--fix"]).ok();
    assert!(fixed.stdout.contains("fixed: deleted the set-aside index file"), "{}", fixed.stdout);
    assert!(fixed.stdout.contains("fixed: removed 1 stale partial download(s)"), "{}", fixed.stdout);
    assert!(fixed.stdout.contains("fixed: made the home"), "{}", fixed.stdout);
    env.run(&["doctor"]).ok();
    let json = env.run(&["--json", "doctor"]).ok().json();
    assert!(json["checks"].as_array().unwrap().iter().all(|c| c["status"] == "ok"), "{json}");
}

#[test]
fn conflicting_settings_are_findings() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("HF_HOME", "/somewhere/else").var("HF_HUB_OFFLINE", "1").var("MODELCACHE_REMOTE", "s3://team/cache");
    let run = env.run(&["doctor"]).expect(1);
    assert!(run.stdout.contains("`HF_HUB_CACHE`") && run.stdout.contains("hf-hub"), "{}", run.stdout);
    assert!(run.stdout.contains("hint: unset `HF_HUB_OFFLINE`"), "{}", run.stdout);
}

#[test]
fn a_cache_on_a_read_only_mount_fails_and_says_how_to_move_it() {
    let hub = hub();
    let env = Env::new(&hub);
    let run = doctor_on_tmpfs(&env, "mount -o remount,ro \"$0\"", &[]).expect(1);
    let out = &run.stdout;
    assert!(out.contains("FAIL  permissions") && out.contains("is on a read-only mount"), "{out}");
    assert!(out.contains("set `cache_dir` (`HF_HUB_CACHE`) to a writable directory"), "{out}");
    assert!(run.stderr.starts_with("error: the cache cannot work as set up: "), "{}", run.stderr);
}

#[test]
fn a_cache_on_a_full_disk_is_a_finding() {
    let hub = hub();
    let env = Env::new(&hub);
    // Fill it (the write fails once the 1 MiB are used: that is the point).
    let run = doctor_on_tmpfs(&env, "{ head -c 2000000 /dev/zero > \"$0/filler\" 2>/dev/null; true; }", &[]).expect(1);
    assert!(run.stdout.contains("warn  hub cache") && run.stdout.contains(": full (downloads need more than"), "{}", run.stdout);
    assert!(run.stdout.contains("`max_size`") && run.stdout.contains("modelcache prune"), "{}", run.stdout);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
