//! Every exit code, errors as one line plus a hint (or one JSON object with `--json`),
//! never a debug dump; `--help`; a closed stdout is not an error.

use std::process::Stdio;

use cache_testkit::{Content, RepoSpec, TestHub};

use crate::{Env, Run, bin, hub};

/// No Rust debug output or backtrace, one `error:` line first, one `hint:` line.
#[track_caller]
fn clean_error(run: &Run) {
    let e = &run.stderr;
    assert!(e.starts_with("error: "), "{e}");
    assert_eq!(e.matches("\nhint: ").count(), 1, "{e}");
    for debug in ["panicked", "RUST_BACKTRACE", "{ ", "Error {", "Some("] {
        assert!(!e.contains(debug), "debug output `{debug}` in {e}");
    }
}

#[test]
fn code_0_success_and_help() {
    let env = Env::offline_only();
    env.run(&["dir"]).ok();
    let help = env.run(&["--help"]).ok();
    for cmd in ["get", "warm", "ls", "stats", "verify", "rm", "prune", "clean", "pin", "unpin", "config", "dir"] {
        assert!(help.stdout.contains(&format!("\n  {cmd} ")), "`{cmd}` missing from --help");
    }
    assert!(help.stdout.contains("Exit codes: 0 success"), "{}", help.stdout);
    assert!(env.run(&["--version"]).ok().stdout.starts_with("modelcache "));
}

#[test]
fn code_1_unexpected_failure() {
    let env = Env::offline_only();
    let file = env.tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let run = env.run(&["ls", "--cache-dir", file.to_str().unwrap()]).expect(1);
    clean_error(&run);
    assert!(run.stderr.contains("not accessible"), "{}", run.stderr);
}

#[test]
fn code_2_invalid_input_or_usage() {
    let env = Env::offline_only();
    for args in [
        &["frobnicate"][..],
        &["ls", "--no-such-option"],
        &["ls", "--sort", "colour"],
        &["get"],
        &["get", "not a repo"],
        &["get", "org/model", "--sha256", "00"],
        &["prune", "--max-size", "12 parsecs"],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: "), "{args:?}: {}", run.stderr);
    }
    clean_error(&env.run(&["get", "not a repo"]));
    let json = env.run(&["--json", "ls", "--bogus"]).expect(2).json_error();
    assert_eq!((json["error"]["kind"].as_str(), json["error"]["exit_code"].as_i64()), (Some("invalid_input"), Some(2)));
    env.run(&[]).expect(2);
}

#[test]
fn code_3_remote_failure() {
    let hub = hub();
    let env = Env::new(&hub);
    let missing = env.run(&["get", "org/nope", "config.json"]).expect(3);
    clean_error(&missing);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);
    env.run(&["get", "org/model", "nope.json"]).expect(3);
    let mut down = Env::new(&hub);
    down.endpoint = Some("http://127.0.0.1:9".to_owned());
    let run = down.run(&["--json", "get", "org/model", "config.json"]).expect(3);
    let e = run.json_error();
    assert_eq!(e["error"]["kind"], "remote");
    assert!(e["error"]["hint"].as_str().unwrap().contains("network"), "{e}");
    hub.fail_next(500, 1, None);
    env.run(&["get", "org/model", "config.json"]).expect(3);
}

#[test]
fn code_4_not_cached_while_offline() {
    let env = Env::offline_only();
    let run = env.run(&["--offline", "get", "org/model", "config.json"]).expect(4);
    clean_error(&run);
    assert!(run.stderr.contains("HF_HUB_OFFLINE"), "{}", run.stderr);
    let json = env.run(&["--offline", "--json", "get", "org/model"]).expect(4).json_error();
    assert_eq!(json["error"]["kind"], "not_cached_offline");
}

#[test]
fn code_5_integrity_failure() {
    let hub = hub();
    let env = Env::new(&hub);
    let url = hub.file("org/other", "main", "vocab.txt").unwrap().url;
    let run = env.run(&["get", &url, "--sha256", &"ab".repeat(32)]).expect(5);
    clean_error(&run);
    let hint = run.stderr.split("\nhint: ").nth(1).unwrap();
    assert!(hint.contains("does not match what the URL serves") && hint.contains("check the digest or the URL"), "{hint}");
    assert!(!hint.contains("again"), "running it again cannot help: {hint}");
    // A body corrupted once is downloaded again in the same run; one corrupted every time
    // is exit 5.
    hub.corrupt_next(1);
    env.run(&["get", "org/model", "config.json"]).ok();
    hub.corrupt_next(1000);
    let corrupted = env.run(&["get", "org/model", "model.safetensors"]).expect(5);
    assert!(corrupted.stderr.contains("checksum mismatch"), "{}", corrupted.stderr);
    hub.clear_faults();
    env.run(&["get", "org/model", "model.safetensors"]).ok();
}

#[test]
fn code_6_disk_full() {
    const SIZE: u64 = 2 << 20;
    let hub = TestHub::start_blocking([RepoSpec::model("org/big").lfs_file("w.bin", Content::generated(SIZE, 5))]);
    let env = Env::new(&hub);
    std::fs::create_dir_all(env.hub_dir()).unwrap();
    // The hub cache on a 1 MiB tmpfs, in a private mount namespace (no root needed where
    // user namespaces are allowed; nothing to unmount afterwards).
    let mut c = env.with_env("unshare");
    c.args(["-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs \"$0\" && exec \"$@\""]).arg(env.hub_dir()).arg(bin());
    c.args(["get", "org/big", "w.bin"]);
    let run = Run::from(&c.output().expect("this test needs `unshare` (util-linux) to mount a small tmpfs"));
    assert!(!run.stderr.contains("mount:") && !run.stderr.contains("unshare:"), "could not mount a tmpfs: {}", run.stderr);
    let run = run.expect(6);
    clean_error(&run);
    assert!(run.stderr.contains("disk space"), "{}", run.stderr);
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    let mut child = env.command(&["ls", "--revisions"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
