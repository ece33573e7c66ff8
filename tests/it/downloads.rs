//! Transfers as the server sees them: a hit costs no body bytes, eight processes cause one
//! transfer, an interrupted transfer resumes.

use std::process::Stdio;

use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{Env, WEIGHTS, hub};

#[test]
fn a_cold_get_downloads_and_the_next_is_a_hit_with_zero_body_bytes() {
    let hub = hub();
    let env = Env::new(&hub);
    let cold = env.run(&["--json", "get", "org/model", "model.safetensors"]).ok().json();
    assert_eq!((cold[0]["from_cache"].as_bool(), cold[0]["bytes_downloaded"].as_u64()), (Some(false), Some(WEIGHTS)));
    let sent = hub.stats().body_bytes;
    assert!(sent >= WEIGHTS, "{sent}");
    let warm = env.run(&["--json", "get", "org/model", "model.safetensors"]).ok().json();
    assert_eq!((warm[0]["from_cache"].as_bool(), warm[0]["bytes_downloaded"].as_u64()), (Some(true), Some(0)));
    assert_eq!(warm[0]["path"], cold[0]["path"]);
    let s = hub.stats();
    assert_eq!(s.body_bytes, sent, "the hit sent no body bytes");
    assert_eq!(s.count(Route::CdnGet), 1);
    let offline = env.run(&["--offline", "get", "org/model", "model.safetensors"]).ok();
    assert_eq!(offline.stdout.trim(), warm[0]["path"].as_str().unwrap());
    assert_eq!(hub.stats().total_requests(), s.total_requests(), "offline asks nothing");
}

#[test]
fn eight_concurrent_processes_for_one_file_make_exactly_one_transfer() {
    const SIZE: u64 = 2 << 20;
    let hub = TestHub::start_blocking([RepoSpec::model("org/big").lfs_file("w.bin", Content::generated(SIZE, 3))]);
    hub.throttle(Some(4 << 20)); // ~0.5 s per transfer: the processes overlap
    let env = Env::new(&hub);
    eight_gets_print_one_path(&env, "flock");
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1, "exactly one transfer: {:?}", s.requests);
    assert_eq!(s.bytes_for("/cdn/"), SIZE);
}

/// Eight `get org/big w.bin` processes started at once: each succeeds and all print the
/// same path, which is returned.
fn eight_gets_print_one_path(env: &Env, label: &str) -> String {
    let children: Vec<_> = (0..8)
        .map(|_| env.command(&["get", "org/big", "w.bin"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap())
        .collect();
    let mut paths = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{label}: {}", String::from_utf8_lossy(&out.stderr));
        paths.push(String::from_utf8(out.stdout).unwrap());
    }
    paths.dedup();
    assert_eq!(paths.len(), 1, "{label}: all print the same path");
    paths.remove(0)
}

/// Each lock mode with eight processes on one file: `fcntl` and `both` exclude as `flock`
/// does (one transfer); `none` takes no lock, so transfers may repeat, but every process
/// succeeds and the one published file is right.
#[test]
fn eight_processes_in_each_lock_mode_publish_one_correct_file() {
    const SIZE: u64 = 2 << 20;
    let content = Content::generated(SIZE, 4).to_vec();
    for mode in ["fcntl", "both", "none"] {
        let hub = TestHub::start_blocking([RepoSpec::model("org/big").lfs_file("w.bin", Content::generated(SIZE, 4))]);
        hub.throttle(Some(4 << 20));
        let mut env = Env::new(&hub);
        env.var("MODELCACHE_LOCK_MODE", mode);
        let path = eight_gets_print_one_path(&env, mode);
        assert_eq!(std::fs::read(path.trim()).unwrap(), content, "{mode}");
        let transfers = hub.stats().count(Route::CdnGet);
        if mode == "none" {
            assert!(transfers >= 1, "{mode}");
        } else {
            assert_eq!(transfers, 1, "{mode}: exactly one transfer");
        }
        env.run(&["verify"]).ok();
    }
}

#[test]
fn an_interrupted_transfer_completes_on_the_next_get_resending_at_most_one_percent() {
    const SIZE: u64 = 4 << 20;
    let hub = TestHub::start_blocking([RepoSpec::model("org/big").lfs_file("w.bin", Content::generated(SIZE, 9))]);
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_RETRIES", "0"); // the first attempt is the only one
    hub.drop_after(SIZE / 2, 1);
    let failed = env.run(&["get", "org/big", "w.bin"]).expect(3);
    assert!(failed.stderr.starts_with("error: failed to download"), "{}", failed.stderr);
    assert!(failed.stderr.contains("hint:"), "{}", failed.stderr);
    let ls = env.run(&["--json", "ls"]).ok().json();
    let kept = ls[0]["incomplete"][0]["size_bytes"].as_u64().unwrap();
    assert!(kept > 0 && kept <= SIZE / 2, "the partial download is kept: {kept}");
    let done = env.run(&["--json", "get", "org/big", "w.bin"]).ok().json();
    let path = done[0]["path"].as_str().unwrap();
    assert_eq!(std::fs::read(path).unwrap(), Content::generated(SIZE, 9).to_vec());
    let sent = hub.stats().bytes_for("/cdn/");
    assert!(sent <= SIZE + SIZE / 100, "re-sent {} bytes more than the file", sent.saturating_sub(SIZE));
    env.run(&["verify"]).ok();
}

#[test]
fn a_large_snapshot_fits_a_low_open_file_limit() {
    const FILES: u64 = 300;
    let mut spec = RepoSpec::model("org/many");
    for i in 0..FILES {
        spec = spec.file(&format!("d{}/f{i}.json", i % 7), Content::generated(4096 + i, i));
    }
    let hub = TestHub::start_blocking([spec]);
    let env = Env::new(&hub);
    // Some systems start processes with 256 descriptors or fewer; waiting files are batched
    // within what the limit leaves.
    let mut limited = env.with_env("sh");
    limited.args(["-c", "ulimit -n 128 && exec \"$0\" \"$@\""]).arg(crate::bin()).args(["--json", "get", "org/many"]);
    let out = limited.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got[0]["files_downloaded"].as_u64(), Some(FILES));
    assert_eq!(hub.stats().count(Route::ResolveGet), FILES, "one GET per file");
    let verified = env.run(&["--json", "verify"]).ok().json();
    assert_eq!(verified["valid_models"], serde_json::json!(["org/many"]), "{verified}");
}

#[test]
fn a_waiter_off_a_terminal_says_who_holds_the_lock_then_gets_the_file() {
    let hub = hub();
    let env = Env::new(&hub);
    let etag = cache_core::GitSha1::of(br#"{"hidden_size": 64}"#).to_hex();
    let lock = env.hub_dir().join(".locks/models--org--model").join(format!("{etag}.lock"));
    crate::bin(); // built (if stale) before the holder's clock starts
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // Another program holds the blob's lock (as Python's filelock would) for 2.5 s.
    let mut holder = std::process::Command::new("flock").arg(&lock).args(["sleep", "2.5"]).spawn().unwrap();
    while std::fs::read_to_string("/proc/locks").unwrap().lines().all(|l| !l.contains(&format!(" {} ", holder.id()))) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let got = env.run(&["get", "org/model", "config.json"]).ok();
    holder.wait().unwrap();
    assert!(got.stdout.trim().ends_with("config.json"), "{}", got.stdout);
    let note =
        got.stderr.lines().find(|l| l.starts_with("note: config.json: waiting")).unwrap_or_else(|| panic!("{}", got.stderr));
    assert!(note.contains(&format!("pid {}", holder.id())), "names the holder: {note}");
    let quiet = env.run(&["-q", "get", "org/model", "config.json"]).ok();
    assert_eq!(quiet.stderr, "", "a hit with -q prints nothing on stderr");
}

/// A wait that gives up names the holder's pid in the error and its hint; `-v` logs each
/// wait with the holder.
#[test]
fn a_wait_that_gives_up_names_the_holders_pid() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_LOCK_STALL_TIMEOUT", "1s");
    let etag = cache_core::GitSha1::of(br#"{"hidden_size": 64}"#).to_hex();
    let lock = env.hub_dir().join(".locks/models--org--model").join(format!("{etag}.lock"));
    crate::bin();
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let mut holder = std::process::Command::new("flock").arg(&lock).args(["sleep", "30"]).spawn().unwrap();
    while std::fs::read_to_string("/proc/locks").unwrap().lines().all(|l| !l.contains(&format!(" {} ", holder.id()))) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let run = env.run(&["-v", "get", "org/model", "config.json"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let pid = format!("pid {}", holder.id());
    let error = run.stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(error.contains("gave up waiting for lock") && error.contains(&pid), "{}", run.stderr);
    assert!(
        run.stderr.contains("hint: another process holds") && run.stderr.contains(&format!("stop {pid} if it hangs")),
        "{}",
        run.stderr
    );
    let log = run.stderr.lines().find(|l| l.contains("waiting for lock")).unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(log.contains(&format!("holder={pid} (sleep)")) || log.contains(&pid), "{log}");
}

/// `download_timeout` gives up on a transfer that is too slow overall (bytes keep coming,
/// so the read timeout never fires); the next run resumes what it received.
#[test]
fn download_timeout_gives_up_on_a_slow_transfer_and_the_next_run_resumes() {
    let hub = hub();
    let mut env = Env::new(&hub);
    hub.throttle(Some(64 * 1024));
    env.var("MODELCACHE_DOWNLOAD_TIMEOUT", "1s");
    let slow = env.run(&["get", "org/model", "model.safetensors"]).expect(3);
    assert!(slow.stderr.contains("did not finish within 1s"), "{}", slow.stderr);
    assert!(slow.stderr.contains("hint: ") && slow.stderr.contains("download_timeout"), "{}", slow.stderr);
    let first = hub.stats().bytes_for("/cdn/");
    assert!(first > 0 && first < WEIGHTS, "{first}");

    hub.throttle(None);
    hub.reset_stats();
    env.var("MODELCACHE_DOWNLOAD_TIMEOUT", "none");
    let done = env.run(&["--json", "get", "org/model", "model.safetensors"]).ok().json();
    assert_eq!(done[0]["from_cache"], false);
    assert!(hub.stats().bytes_for("/cdn/") < WEIGHTS, "the second run resumed instead of starting over");
}
