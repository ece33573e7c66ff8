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
    // The hint undoes what turned downloads off (here `--offline`).
    assert!(run.stderr.contains("hint: drop `--offline` to fetch it"), "{}", run.stderr);
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

#[test]
fn hub_booleans_read_like_huggingface_hub_and_ours_stay_strict() {
    let hub = hub();
    let mut env = Env::new(&hub);
    // huggingface_hub reads an unknown value as false: online.
    env.var("HF_HUB_OFFLINE", "maybe");
    let run = env.run(&["--json", "config"]).ok().json();
    let offline = run["settings"].as_array().unwrap().iter().find(|s| s["key"] == "offline").unwrap().clone();
    assert_eq!((offline["value"].as_str(), offline["source"].as_str()), (Some("false"), Some("env HF_HUB_OFFLINE")));
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    assert!(hub.stats().total_requests() > 0, "downloaded: not offline");
    // Its true values, in any case: offline.
    env.var("HF_HUB_OFFLINE", "Yes");
    env.run(&["get", "org/model", "config.json"]).expect(4);
    // modelcache's own variable: a typo is an error naming the variable.
    let mut strict = Env::new(&hub);
    strict.var("MODELCACHE_OFFLINE", "maybe");
    let run = strict.run(&["get", "org/model", "config.json"]).expect(2);
    assert!(run.stderr.contains("MODELCACHE_OFFLINE"), "{}", run.stderr);
    clean_error(&run);
}

#[test]
fn a_repo_type_that_contradicts_the_prefix_is_a_usage_error() {
    let hub = hub();
    let env = Env::new(&hub);
    for (flag, target) in [("dataset", "models/org/model"), ("model", "datasets/org/data"), ("space", "datasets/org/data@main")] {
        let run = env.run(&["get", "--repo-type", flag, target]).expect(2);
        assert!(run.stderr.contains("contradicts"), "{}", run.stderr);
        clean_error(&run);
        env.run(&["pin", "--repo-type", flag, target]).expect(2);
    }
    assert_eq!(hub.stats().total_requests(), 0, "nothing was fetched");
    // Agreeing, or only one of them: fine.
    env.run(&["get", "--repo-type", "dataset", "datasets/org/data", "train.csv"]).ok();
    env.run(&["get", "--repo-type", "model", "models/org/other", "vocab.txt"]).ok();
    env.run(&["get", "datasets/org/data", "train.csv"]).ok();
    let listed = env.run(&["--json", "ls"]).ok().json();
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["model_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["datasets/org/data", "org/other"]);
}

#[test]
fn the_strategy_is_selected_and_shown_by_config() {
    let hub = hub();
    let mut env = Env::new(&hub);
    let run = env.run(&["--json", "--strategy", "hybrid", "config"]).ok().json();
    assert_eq!(run["strategy"]["name"], "hybrid");
    assert_eq!(run["strategy"]["available"], true);
    let reqs = run["strategy"]["requirements"].as_array().unwrap();
    assert!(reqs.windows(2).all(|w| w[0].as_str() < w[1].as_str()), "sorted and distinct: {reqs:?}");
    let strategy = run["settings"].as_array().unwrap().iter().find(|s| s["key"] == "strategy").unwrap().clone();
    assert_eq!((strategy["value"].as_str(), strategy["source"].as_str()), (Some("hybrid"), Some("command line")));
    env.var("MODELCACHE_STRATEGY", "cache-only");
    let text = env.run(&["config"]).ok().stdout;
    assert!(text.contains("strategy:    cache-only (available): serves files already in the cache"), "{text}");
    let run = env.run(&["get", "org/model", "config.json"]).expect(4);
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert_eq!(hub.stats().total_requests(), 0, "cache-only never connects");
    env.run(&["--strategy", "sometimes", "config"]).expect(2);
}
