//! A path `get` prints stays valid while it is used: `get` processes racing `rm`,
//! `clean --yes` and `prune --max-size 0` processes, checked on every iteration, and the
//! in-use grace counted from the moment a path is printed.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use cache_testkit::inspect::{dangling_links, downloading};

use crate::{Env, Run, WEIGHTS, files_under, hub};

const MODEL_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
/// Iterations per kind of removal.
const ROUNDS: usize = 8;

fn spawn_get(env: &Env) -> Child {
    env.command(&["get", "org/model"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

/// On every iteration: the `get` exits 0, no dangling link is left, and when the removal
/// ran while the `get` was running, every path the `get` printed exists with every file of
/// the snapshot and the removal reported the repo in use (`skipped_in_use`).
#[test]
fn get_racing_rm_clean_and_prune_prints_only_complete_snapshots() {
    let hub = hub();
    hub.throttle(Some(800_000));
    let mut env = Env::new(&hub);
    // No grace: only the lease protects the files while the get runs.
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    let mut overlapped = 0;
    for removal in [&["--json", "rm", "org/model"][..], &["--json", "clean", "--yes"], &["--json", "prune", "--max-size", "0"]] {
        for round in 0..ROUNDS {
            let what = format!("`{}` round {round}", removal[1..].join(" "));
            let mut get = spawn_get(&env);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !downloading(&env.hub_dir(), "models--org--model")
                && get.try_wait().unwrap().is_none()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            let removed = env.run(removal).ok().json();
            let during = get.try_wait().unwrap().is_none();
            let got = Run::from(&get.wait_with_output().unwrap());
            assert_eq!(got.code, 0, "{what}: the get failed\n{}", got.stderr);
            let printed = got.lines();
            assert_eq!(printed.len(), 1, "{what}: {printed:?}");
            assert_eq!(dangling_links(&env.hub_dir()), Vec::<std::path::PathBuf>::new(), "{what}");
            // A removal that ended after the get may have removed it, as it may.
            if during {
                overlapped += 1;
                let dir = Path::new(printed[0]);
                assert_eq!(files_under(dir), MODEL_FILES, "{what}: the printed snapshot is incomplete");
                assert_eq!(std::fs::read(dir.join("model.safetensors")).unwrap().len() as u64, WEIGHTS, "{what}");
                let skipped: Vec<&str> =
                    removed["skipped_in_use"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
                if removal[1] == "prune" {
                    assert!(skipped.iter().all(|s| s.starts_with("org/model@")), "{what}: {removed}");
                    let evicted = removed["evicted"].as_array().unwrap();
                    assert!(evicted.iter().all(|e| !e["entry"].as_str().unwrap().starts_with("org/model@")), "{what}: {removed}");
                } else {
                    assert_eq!(skipped, ["org/model"], "{what}: not reported as in use: {removed}");
                    assert_eq!(removed["entries"], 0, "{what}: {removed}");
                }
            }
            // Not in use any more: the next round downloads again.
            let gone = env.run(&["--json", "rm", "org/model"]).ok().json();
            assert_eq!(gone["skipped_in_use"], serde_json::json!([]), "{gone}");
        }
    }
    assert!(overlapped >= ROUNDS, "the removals should mostly land mid-download: {overlapped} did");
}

/// `rm` of a repo another process is fetching keeps it and says so.
#[test]
fn rm_of_a_repo_being_fetched_warns_and_keeps_it() {
    let hub = hub();
    hub.throttle(Some(300_000));
    let env = Env::new(&hub);
    let mut get = spawn_get(&env);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !downloading(&env.hub_dir(), "models--org--model") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let rm = env.run(&["rm", "org/model"]).ok();
    let still_running = get.try_wait().unwrap().is_none();
    let got = Run::from(&get.wait_with_output().unwrap()).ok();
    assert!(still_running, "the weights take ~1 s at this rate");
    assert!(rm.stderr.contains("`org/model` is in use by another process and was kept"), "{}", rm.stderr);
    assert!(rm.stdout.starts_with("removed 0 files from `org/model`"), "{}", rm.stdout);
    assert_eq!(files_under(Path::new(got.stdout.trim())), MODEL_FILES);
}

/// The use of what `get` prints is recorded when it prints it: a download that took
/// longer than `in_use_grace` is still protected right after it, by another process.
#[test]
fn a_slow_download_is_protected_for_the_grace_period_after_it_is_printed() {
    let hub = hub();
    // ~2.6 s for the weights: longer than the grace.
    hub.throttle(Some(100_000));
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "2s");
    let dir = env.run(&["get", "org/model"]).ok().stdout.trim().to_owned();
    let pruned = env.run(&["--json", "prune", "--max-size", "0"]).ok().json();
    assert_eq!(pruned["evicted"], serde_json::json!([]), "{pruned}");
    assert_eq!(files_under(Path::new(&dir)), MODEL_FILES);
}

/// A `get` of several files prints them together: the first one fetched is as protected
/// when printed as the last one (its use is recorded again when all are done).
#[test]
fn files_fetched_early_are_protected_when_all_are_printed() {
    let hub = hub();
    hub.throttle(Some(100_000));
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "2s");
    let got = env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    let pruned = env.run(&["--json", "prune", "--max-size", "0"]).ok().json();
    assert_eq!(pruned["evicted"], serde_json::json!([]), "{pruned}");
    for path in got.lines() {
        assert!(Path::new(path).is_file(), "{path} was printed and must still be there");
    }
}
