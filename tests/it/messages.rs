//! No silent no-ops or misleading words: every request that does nothing says so, and
//! every message names what was chosen and where a value came from.

use crate::{Env, hub};

#[test]
fn an_include_that_matches_nothing_is_an_error_or_a_warning_beside_one_that_matched() {
    let hub = hub();
    let env = Env::new(&hub);
    let none = env.run(&["get", "org/model", "--include", "*.JSON"]).expect(2);
    assert!(none.stdout.is_empty(), "no path is printed: {}", none.stdout);
    assert!(
        none.stderr.contains("error: `--include` `*.JSON` matched no file of `org/model@main`: nothing was fetched"),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("hint: "), "{}", none.stderr);
    let some = env.run(&["get", "org/model", "--include", "*.json", "--include", "*.onnx"]).ok();
    assert_eq!(some.lines().len(), 1, "the snapshot directory: {}", some.stdout);
    assert_eq!(
        some.stderr.trim(),
        "warning: `--include` `*.onnx` matched no file of `org/model@main`",
        "one warning, naming the glob"
    );
    let json = env.run(&["--json", "get", "org/model", "--include", "*.json", "--include", "*.onnx"]).ok().json();
    assert_eq!(json[0]["unmatched_include"], serde_json::json!(["*.onnx"]));
    let offline = env.run(&["--offline", "get", "org/model", "--include", "nothing*"]).expect(2);
    assert!(offline.stderr.contains("`nothing*` matched no file"), "offline too, from the cached listing: {}", offline.stderr);
}

#[test]
fn unpin_of_what_is_not_pinned_says_so() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    let never = env.run(&["unpin", "org/other"]).ok();
    assert_eq!(never.stdout, "`org/other` was not pinned: nothing changed\n");
    env.run(&["pin", "org/other"]).ok();
    assert_eq!(env.run(&["unpin", "org/other"]).ok().stdout, "unpinned `org/other`\n");
    let again = env.run(&["--json", "unpin", "org/other"]).ok().json();
    assert_eq!((again["pinned"].as_bool(), again["was_pinned"].as_bool()), (Some(false), Some(false)));
}

#[test]
fn prune_says_when_no_limit_is_set_and_what_it_aimed_for_and_what_the_grace_kept() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    let none = env.run(&["prune"]).ok();
    assert!(none.stdout.starts_with("no limit is set ("), "{}", none.stdout);
    assert!(!none.stdout.contains("evicted  "), "{}", none.stdout);
    assert_eq!(env.run(&["--json", "prune"]).ok().json()["max_size"], serde_json::Value::Null);

    // Both files were used just now: the in-use grace (5m by default) keeps them.
    let kept = env.run(&["prune", "--max-size", "1KiB", "--max-age", "30d"]).ok();
    let lines = kept.lines();
    assert_eq!(
        lines[0],
        "target: size limit 1 KiB (over it, evict down to 819 B, the low watermark); age limit 4w2d since last use"
    );
    assert_eq!(lines[1], "kept 2 files (256 KiB) used within the in-use grace of 5m", "{}", kept.stdout);
    assert!(lines[2].starts_with("freed 0 B "), "{}", kept.stdout);
    let json = env.run(&["--json", "prune", "--max-size", "1KiB"]).ok().json();
    assert_eq!((json["max_size"].as_u64(), json["target_size"].as_u64()), (Some(1024), Some(819)));
    assert_eq!((json["in_use_grace_secs"].as_u64(), json["kept_recently_used"].as_u64()), (Some(300), Some(2)));
}

#[test]
fn a_max_size_that_evicts_nearly_everything_is_said_before_it_happens() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    env.run(&["pin", "org/other"]).ok();
    let dry = env.run(&["prune", "--max-size", "1KiB", "--dry-run"]).ok();
    let evicted: Vec<&str> = dry.lines().into_iter().filter(|l| l.starts_with("would evict  ")).collect();
    assert_eq!(evicted.len(), 2, "a dry run lists every file: {}", dry.stdout);
    assert!(evicted.iter().any(|l| l.contains("/model.safetensors")) && evicted.iter().any(|l| l.contains("/config.json")));
    assert!(dry.stdout.contains("\nkept 1 file (pinned)\n"), "{}", dry.stdout);
    assert!(dry.stdout.ends_with("this would evict nearly everything: 2 of 3 files, 256 KiB of 256 KiB\n"), "{}", dry.stdout);
    // Not on a terminal: a warning first, then the eviction (scripts keep working).
    let run = env.run(&["prune", "--max-size", "1KiB"]).ok();
    assert!(
        run.stderr.starts_with("warning: `--max-size` would evict nearly everything: 2 of 3 files, 256 KiB of 256 KiB"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("evicted  ")).count(), 2, "{}", run.stdout);
    // A limit that takes little says nothing.
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    let mild = env.run(&["prune", "--max-size", "300KiB"]).ok();
    assert!(mild.stderr.is_empty(), "{}", mild.stderr);
}

/// Runs `modelcache args` in a pseudo-terminal of 80 columns (util-linux `script`), with
/// `input` typed at it; returns what the terminal showed.
fn on_terminal(env: &Env, args: &[&str], input: &str) -> String {
    use std::io::Write;
    use std::process::Stdio;
    let quoted: Vec<String> = std::iter::once(crate::bin().to_str().unwrap())
        .chain(args.iter().copied())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut child = env
        .with_env("script")
        .args(["-qec", &format!("stty cols 80 rows 24; exec {}", quoted.join(" ")), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("util-linux `script` is needed for terminal tests (apt-get install util-linux): {e}"));
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn on_a_terminal_a_max_size_that_evicts_nearly_everything_asks_first() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    let no = on_terminal(&env, &["prune", "--max-size", "1KiB"], "n\n");
    assert!(no.contains("`--max-size` would evict nearly everything: 2 of 2 files, 256 KiB of 256 KiB. Continue? [y/N]"), "{no}");
    assert!(no.contains("cancelled: nothing was evicted"), "{no}");
    assert_eq!(env.run(&["--json", "stats"]).ok().json()["total_files"], 2, "nothing went");
    let yes = on_terminal(&env, &["prune", "--max-size", "1KiB"], "y\n");
    assert_eq!(yes.lines().filter(|l| l.starts_with("evicted  ")).count(), 2, "{yes}");
    assert_eq!(env.run(&["--json", "stats"]).ok().json()["total_files"], 0);
}

/// Overwrites bytes inside a blob, keeping its size.
fn corrupt(path: &std::path::Path, at: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(b"XX").unwrap();
}

#[test]
fn verify_labels_digests_by_algorithm_and_repair_reports_the_state_it_left() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    // Downloads prove their content by the etag digest; the first verify checks it again
    // and records a blake3 for the later ones.
    assert!(env.run(&["verify"]).ok().stdout.contains("2 files valid"));
    let lfs = hub.file("org/model", "main", "model.safetensors").unwrap().etag.to_string();
    let small = hub.file("org/model", "main", "config.json").unwrap().etag.to_string();
    corrupt(&env.hub_dir().join(format!("models--org--model/blobs/{lfs}")), 100);
    corrupt(&env.hub_dir().join(format!("models--org--model/blobs/{small}")), 2);
    let bad = env.run(&["verify"]).expect(5);
    let line =
        |suffix: &str| bad.lines().into_iter().find(|l| l.starts_with("corrupted ") && l.contains(suffix)).unwrap_or_default();
    // Verify checks the recorded blake3; the line also names the digest the blob is
    // named by, as huggingface_hub shows it.
    assert!(line("/model.safetensors").contains("(blake3: expected "), "{}", bad.stdout);
    assert!(line("/model.safetensors").ends_with(&format!("; the blob is sha256 {lfs})")), "{}", bad.stdout);
    assert!(line("/config.json").ends_with(&format!("; the blob is git-sha1 {small})")), "{}", bad.stdout);
    let json = env.run(&["--json", "verify"]).expect(5).json();
    for c in json["corrupted"].as_array().unwrap() {
        assert_eq!(c["algorithm"], "blake3", "{json}");
        assert!(c["blob"] == lfs.as_str() || c["blob"] == small.as_str(), "{json}");
    }

    // Offline, the repair removes the damage and says what is no longer cached.
    let offline = env.run(&["--offline", "verify", "--repair"]).ok();
    assert!(offline.stdout.contains("found: 0 files valid, 2 corrupted, 0 missing in 1 repository\n"), "{}", offline.stdout);
    assert!(offline.stdout.contains("after the repair: 0 files valid, 0 corrupted, 0 missing\n"), "{}", offline.stdout);
    assert_eq!(offline.stdout.matches("not cached now  org/model@").count(), 2, "{}", offline.stdout);
    assert!(offline.stdout.ends_with("the cache is intact\n"), "{}", offline.stdout);

    // Online, the files come back and the state after says so.
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    corrupt(&env.hub_dir().join(format!("models--org--model/blobs/{lfs}")), 100);
    let online = env.run(&["verify", "--repair"]).ok();
    assert!(online.stdout.contains("downloaded again  org/model@"), "{}", online.stdout);
    assert!(online.stdout.contains("after the repair: 2 files valid, 0 corrupted, 0 missing\n"), "{}", online.stdout);
    assert!(!online.stdout.contains("not cached now"), "{}", online.stdout);
    let json = env.run(&["--json", "verify", "--repair"]).ok().json();
    assert_eq!(json["after_repair"], serde_json::Value::Null, "nothing to repair: no state after");
}

#[test]
fn an_offline_miss_says_offline_was_chosen_and_where_never_check_the_network() {
    let env = Env::offline_only();
    let flag = env.run(&["--offline", "get", "org/model", "config.json"]).expect(4);
    assert!(
        flag.stderr
            .starts_with("error: `org/model@main/config.json` is not in the cache: offline mode was chosen (`--offline`)\n"),
        "{}",
        flag.stderr
    );
    assert!(flag.stderr.contains("hint: drop `--offline` to fetch it, or place the files"), "{}", flag.stderr);
    let mut env = env;
    env.var("HF_HUB_OFFLINE", "1");
    let var = env.run(&["get", "org/model"]).expect(4);
    assert!(var.stderr.contains("offline mode was chosen (`HF_HUB_OFFLINE` is set)"), "{}", var.stderr);
    assert!(var.stderr.contains("hint: unset `HF_HUB_OFFLINE` to fetch it"), "{}", var.stderr);
    env.var("HF_HUB_OFFLINE", "0");
    let strategy = env.run(&["--strategy", "cache-only", "get", "org/model", "a.json"]).expect(4);
    assert!(strategy.stderr.contains("the `cache-only` strategy was chosen (`--strategy cache-only`)"), "{}", strategy.stderr);
    for run in [&flag, &var, &strategy] {
        assert!(!run.stderr.contains("failed to download") && !run.stderr.contains("check the network"), "{}", run.stderr);
    }
}

#[test]
fn a_rejected_token_says_so_and_where_it_came_from_and_config_names_the_source_only() {
    use cache_testkit::{RepoSpec, TestHub};
    let hub = TestHub::start_blocking([
        RepoSpec::model("org/gated").file("a.txt", "hi").gated("hf_good"),
        RepoSpec::model("org/private").file("a.txt", "hi").private("hf_good"),
    ]);
    let mut env = Env::new(&hub);
    let none = env.run(&["get", "org/gated", "a.txt"]).expect(3);
    assert!(
        none.stderr.starts_with("error: access to `org/gated@main/a.txt` was refused (gated repository): no token was sent"),
        "{}",
        none.stderr
    );
    let flag = env.run(&["get", "org/gated", "a.txt", "--token", "hf_wrong_flag"]).expect(3);
    assert!(flag.stderr.contains("the token from `--token` was rejected"), "{}", flag.stderr);
    let file = env.tmp.path().join("user/.cache/huggingface/token");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "hf_wrong_file\n").unwrap();
    let from_file = env.run(&["get", "org/gated", "a.txt"]).expect(3);
    assert!(
        from_file.stderr.contains(&format!("the token from the token file `{}` was rejected", file.display())),
        "{}",
        from_file.stderr
    );
    assert!(from_file.stderr.contains("hint: request access on the repository's page"), "{}", from_file.stderr);
    env.var("HF_TOKEN", "hf_wrong_env");
    let var = env.run(&["get", "org/gated", "a.txt"]).expect(3);
    assert!(var.stderr.contains("the token from `HF_TOKEN` was rejected"), "{}", var.stderr);
    // A private repository is "not found" to a wrong token, as on the Hub: the hint says
    // the token sent may be why.
    let private = env.run(&["get", "org/private", "a.txt"]).expect(3);
    assert!(
        private.stderr.contains("if it is private, the token from `HF_TOKEN` was sent and may be rejected"),
        "{}",
        private.stderr
    );
    for run in [&none, &flag, &from_file, &var, &private] {
        assert!(!run.stderr.contains("hf_wrong"), "never the value: {}", run.stderr);
    }

    let config = env.run(&["config"]).ok();
    assert!(config.stdout.contains("\ntoken:       from `HF_TOKEN` (value not shown)\n"), "{}", config.stdout);
    let json = env.run(&["--json", "config", "--token", "hf_wrong_flag"]).ok();
    assert_eq!(json.json()["token_source"], "given", "{}", json.stdout);
    assert!(!json.stdout.contains("hf_wrong"), "{}", json.stdout);
    env.var("HF_TOKEN", "");
    assert_eq!(env.run(&["--json", "config"]).ok().json()["token_source"]["file"], file.to_str().unwrap());
    env.run(&["get", "org/gated", "a.txt", "--token", "hf_good"]).ok();
}

#[test]
fn an_unknown_config_key_is_a_warning_with_file_line_and_nearest_key_and_config_says_where_it_looked() {
    let hub = hub();
    let env = Env::new(&hub);
    let file = env.tmp.path().join("user/.config/modelcache/config.toml");
    let nowhere = env.run(&["config"]).ok();
    assert!(nowhere.stdout.contains(&format!("config file: none found (looked for `{}`)", file.display())), "{}", nowhere.stdout);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "parallelism = 3\n\nmax_sise = \"1GiB\"\n").unwrap();
    let warning = format!("warning: unknown key `max_sise` in `{}` line 3 (ignored); did you mean `max_size`?\n", file.display());
    let get = env.run(&["get", "org/other", "vocab.txt"]).ok();
    assert_eq!(get.stderr, warning, "the command works, with one warning");
    assert!(get.stdout.ends_with("/vocab.txt\n"));
    for args in [&["ls"][..], &["dir"], &["stats"]] {
        assert_eq!(env.run(args).ok().stderr, warning, "{args:?}");
    }
    let config = env.run(&["config"]).ok();
    assert!(config.stdout.contains(&format!("config file: {}\n", file.display())), "{}", config.stdout);
    assert!(config.stdout.contains("  ignored:   unknown key `max_sise`"), "{}", config.stdout);
    assert!(config.stdout.contains("parallelism         3 "), "the rest of the file applies: {}", config.stdout);
    let json = env.run(&["--json", "config"]).ok().json();
    assert_eq!(json["unknown_keys"][0]["nearest"], "max_size");
    assert_eq!(json["unknown_keys"][0]["line"], 3);
    assert_eq!(json["config_file_searched"], file.to_str().unwrap());
}
