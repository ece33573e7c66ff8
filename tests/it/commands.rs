//! Every row of the command table and the global options, as a user runs them.

use std::path::Path;

use cache_testkit::{RepoSpec, Route, TestHub};

use crate::{Env, WEIGHTS, files_under, hub};

#[test]
fn get_files_prints_one_absolute_snapshot_path_per_file_in_order() {
    let hub = hub();
    let env = Env::new(&hub);
    let run = env.run(&["get", "org/model", "model.safetensors", "config.json"]).ok();
    let lines = run.lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with("/model.safetensors") && lines[1].ends_with("/config.json"), "{lines:?}");
    let commit = hub.file("org/model", "main", "config.json").unwrap().commit;
    let snapshot = env.hub_dir().join(format!("models--org--model/snapshots/{commit}"));
    for l in &lines {
        assert!(Path::new(l).is_absolute() && Path::new(l).starts_with(&snapshot), "{l}");
    }
    assert_eq!(std::fs::read(lines[1]).unwrap(), br#"{"hidden_size": 64}"#);
    assert_eq!(std::fs::metadata(lines[0]).unwrap().len(), WEIGHTS);
    assert!(run.stderr.is_empty(), "nothing on stderr when it is not a terminal: {}", run.stderr);

    let json = env.run(&["--json", "get", "org/model@v1", "config.json"]).ok().json();
    assert_eq!(json[0]["request"], "org/model@v1/config.json");
    assert_eq!(json[0]["path"], lines[1]);
    assert_eq!(json[0]["commit"], commit.to_string());
    assert_eq!((json[0]["from_cache"].as_bool(), json[0]["files_downloaded"].as_u64()), (Some(true), Some(0)));
}

#[test]
fn get_a_snapshot_with_include_and_exclude_prints_its_directory() {
    let hub = hub();
    let env = Env::new(&hub);
    let run = env.run(&["get", "org/model", "--include", "*.json", "--exclude", "tokenizer*"]).ok();
    let dir = Path::new(run.stdout.trim());
    assert_eq!(files_under(dir), ["config.json"]);
    let all = env.run(&["--json", "get", "org/model"]).ok().json();
    assert_eq!(all[0]["files_downloaded"], 2);
    assert_eq!(all[0]["bytes_downloaded"], WEIGHTS + 3000);
    assert_eq!(files_under(dir), ["config.json", "model.safetensors", "tokenizer.json"]);
}

#[test]
fn get_a_url_verifies_its_digest_and_honours_name() {
    let hub = hub();
    let env = Env::new(&hub);
    let info = hub.file("org/model", "main", "model.safetensors").unwrap();
    let url = info.cdn_url.clone().unwrap();
    let sha = info.etag.to_string();
    let plain = env.run(&["get", &url, "--sha256", &sha]).ok();
    let path = Path::new(plain.stdout.trim());
    assert!(path.starts_with(env.home_dir()), "artifacts live in the home: {}", path.display());
    assert_eq!(path.file_name().unwrap(), sha.as_str(), "named after the URL's last segment");
    let named = env.run(&["get", &url, "--sha256", &sha, "--name", "weights.bin"]).ok();
    let named = Path::new(named.stdout.trim());
    assert_eq!(named.file_name().unwrap(), "weights.bin");
    assert_eq!(std::fs::read(named).unwrap(), info.content.to_vec());
    assert_eq!(hub.stats().count(Route::CdnGet), 2, "a new name is a new entry: fetched (the blob is shared)");
    let again = env.run(&["--offline", "--json", "get", &url, "--sha256", &sha, "--name", "weights.bin"]).ok().json();
    assert_eq!((again[0]["path"].as_str(), again[0]["from_cache"].as_bool()), (named.to_str(), Some(true)));
    let wrong = env.run(&["get", &url, "--sha256", &"0".repeat(64), "--name", "w2.bin"]).expect(5);
    assert!(
        wrong.stderr.contains(&format!("serves content with sha256 `{sha}`, not the given `{}`", "0".repeat(64))),
        "{}",
        wrong.stderr
    );
}

#[test]
fn repo_type_selects_datasets_and_spaces_for_get_rm_pin_and_verify() {
    let hub = hub();
    let env = Env::new(&hub);
    let d = env.run(&["get", "--repo-type", "dataset", "org/data", "train.csv"]).ok();
    assert!(d.stdout.contains("/datasets--org--data/snapshots/"), "{}", d.stdout);
    let s = env.run(&["get", "spaces/org/app", "app.py"]).ok();
    assert!(s.stdout.contains("/spaces--org--app/snapshots/"), "{}", s.stdout);
    env.run(&["get", "org/data", "train.csv"]).expect(3);
    env.run(&["pin", "--repo-type", "dataset", "org/data"]).ok();
    env.run(&["verify", "--repo-type", "dataset", "org/data"]).ok();
    let ls = env.run(&["--json", "ls"]).ok().json();
    let types: Vec<(&str, &str, bool)> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["repo_type"].as_str().unwrap(), r["repo_id"].as_str().unwrap(), r["pinned"].as_bool().unwrap()))
        .collect();
    assert_eq!(types, [("dataset", "org/data", true), ("space", "org/app", false)]);
    env.run(&["rm", "--repo-type", "space", "org/app"]).ok();
    env.run(&["rm", "org/app"]).expect(2);
    assert!(!env.hub_dir().join("spaces--org--app").exists());
}

#[test]
fn warm_prefetches_a_list_concurrently_and_summarises() {
    let hub = hub();
    let env = Env::new(&hub);
    let list = env.tmp.path().join("warm.txt");
    std::fs::write(&list, "# CI models\norg/model config.json tokenizer.json\norg/other\n\ndatasets/org/data@main train.csv\n")
        .unwrap();
    let run = env.run(&["warm", list.to_str().unwrap()]).ok();
    assert!(run.stdout.contains("warmed 3 of 3 entries"), "{}", run.stdout);
    let again = env.run(&["--json", "warm", list.to_str().unwrap()]).ok().json();
    assert_eq!(
        (again["succeeded"].as_u64(), again["failed"].as_u64(), again["files_downloaded"].as_u64()),
        (Some(3), Some(0), Some(0))
    );
    assert_eq!(again["entries"][0]["line"], 2);
    assert_eq!(again["entries"][0]["paths"].as_array().unwrap().len(), 2);

    std::fs::write(&list, "org/model config.json\norg/missing\n").unwrap();
    let failed = env.run(&["--json", "warm", list.to_str().unwrap()]).expect(3);
    let v = failed.json();
    assert_eq!((v["succeeded"].as_u64(), v["failed"].as_u64()), (Some(1), Some(1)));
    assert_eq!(v["entries"][1]["error"]["exit_code"], 3);
    assert_eq!(failed.json_error()["error"]["exit_code"], 3);
    let stdin = env.run_with_stdin(&["warm", "-"], "org/other vocab.txt\n").ok();
    assert!(stdin.stdout.contains("warmed 1 of 1 entry"), "{}", stdin.stdout);
}

#[test]
fn ls_lists_repos_or_revisions_sorted_with_incomplete_downloads() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    env.run(&["get", "org/model@v1", "config.json"]).ok();
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    let ls = env.run(&["ls"]).ok();
    let rows = ls.lines();
    assert!(rows[0].starts_with("TYPE") && rows[0].contains("SIZE") && rows[0].contains("LAST USED"), "{}", ls.stdout);
    assert!(rows[1].contains("org/model") && rows[2].contains("org/other"), "by name: {}", ls.stdout);
    let size_end = rows[0].find("SIZE").unwrap() + 4;
    assert!(rows[1][..size_end].ends_with("KiB") && rows[2][..size_end].ends_with(" B"), "sizes right-aligned: {}", ls.stdout);
    let by_size = env.run(&["--json", "ls", "--sort", "size"]).ok().json();
    assert_eq!(by_size[0]["model_id"], "org/model");
    assert_eq!(by_size[0]["size_bytes"], WEIGHTS + 3000 + 19);
    let by_use = env.run(&["--json", "ls", "--sort", "used"]).ok().json();
    assert_eq!(by_use[0]["model_id"], "org/other", "most recently used first");
    let revs = env.run(&["ls", "--revisions"]).ok();
    assert!(revs.lines()[0].contains("COMMIT") && revs.stdout.contains("main,v1"), "{}", revs.stdout);

    // An interrupted download shows up until it is resumed.
    let blob = hub.file("org/model", "main", "model.safetensors").unwrap().etag;
    let blobs = env.hub_dir().join("models--org--model/blobs");
    std::fs::remove_file(blobs.join(blob.to_string())).unwrap();
    std::fs::write(blobs.join(format!("{blob}.incomplete")), vec![0u8; 1000]).unwrap();
    let ls = env.run(&["ls"]).ok();
    assert!(ls.stdout.contains("incomplete downloads") && ls.stdout.contains("1000 B"), "{}", ls.stdout);
    let json = env.run(&["--json", "ls"]).ok().json();
    assert_eq!(json[0]["incomplete"][0]["etag"], blob.to_string());
}

#[test]
fn stats_reports_totals_counters_and_free_disk() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model", "config.json"]).ok();
    env.run(&["get", "org/model", "config.json"]).ok();
    let text = env.run(&["stats"]).ok();
    for label in ["repositories", "files", "size", "hits", "misses", "hit ratio", "downloads", "downloaded", "free disk"] {
        assert!(text.stdout.lines().any(|l| l.starts_with(label)), "no `{label}` in {}", text.stdout);
    }
    let s = env.run(&["--json", "stats"]).ok().json();
    assert_eq!((s["total_models"].as_u64(), s["total_files"].as_u64()), (Some(1), Some(1)));
    assert_eq!(s["counters"]["downloads"], 1);
    assert_eq!(s["counters"]["bytes_downloaded"], 19);
    assert!(s["counters"]["hits"].as_u64().unwrap() >= 1);
    assert!(s["free_disk_bytes"].as_u64().unwrap() > 0);
    assert_eq!(s["cache_dir"], std::fs::canonicalize(env.hub_dir()).unwrap().to_str().unwrap());
    assert_eq!(s["counters"]["failures"]["remote"], 0);
    assert_eq!(s["counters"]["download_success_rate"], 1.0);

    // A failed download is counted by cause, with the success rate.
    hub.fail_next(503, 1, None);
    env.run(&["get", "org/other", "vocab.txt"]).expect(3);
    let s = env.run(&["--json", "stats"]).ok().json();
    assert_eq!(s["counters"]["failures"], serde_json::json!({"remote": 1, "integrity": 0, "disk_full": 0, "other": 0}));
    assert_eq!(s["counters"]["download_success_rate"], 0.5);
    let text = env.run(&["stats"]).ok().stdout;
    assert!(text.contains("failed downloads     1 (remote 1, integrity 0, disk full 0, other 0)"), "{text}");
    assert!(text.contains("download success     50.0 %"), "{text}");
}

#[test]
fn rm_removes_a_repo_a_revision_or_files_and_reports_bytes_freed() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    let dry = env.run(&["--json", "rm", "org/model", "model.safetensors", "--dry-run"]).ok().json();
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["entries"].as_u64(), dry["bytes_freed"].as_u64()),
        (Some(true), Some(1), Some(WEIGHTS))
    );
    assert_eq!(files_under(&env.hub_dir().join("models--org--model/blobs")).len(), 3, "a dry run removes nothing");
    let one = env.run(&["rm", "org/model", "model.safetensors"]).ok();
    assert_eq!(one.stdout, "removed 1 file from `org/model`, freed 256 KiB\n");
    let all = env.run(&["--json", "rm", "org/model@main"]).ok().json();
    assert_eq!((all["entries"].as_u64(), all["bytes_freed"].as_u64()), (Some(2), Some(3019)));
    let missing = env.run(&["rm", "org/model"]).expect(2);
    assert!(missing.stderr.contains("not in the cache"), "{}", missing.stderr);
}

#[test]
fn clean_asks_refuses_without_yes_off_a_terminal_and_dry_runs() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    let refused = env.run(&["clean"]).expect(2);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let dry = env.run(&["--json", "clean", "--dry-run"]).ok().json();
    assert_eq!((dry["entries"].as_u64(), dry["dry_run"].as_bool()), (Some(3), Some(true)));
    let done = env.run(&["clean", "--yes"]).ok();
    assert!(done.stdout.starts_with("removed 3 files"), "{}", done.stdout);
    assert!(env.hub_dir().is_dir(), "the directory stays");
    assert_eq!(env.run(&["ls"]).ok().stdout, "the cache is empty\n");
}

#[test]
fn pin_and_unpin_toggle_protection() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/other"]).ok();
    let pinned = env.run(&["--json", "pin", "org/other"]).ok().json();
    assert_eq!((pinned["pinned"].as_bool(), pinned["cached"].as_bool()), (Some(true), Some(true)));
    assert!(env.run(&["ls"]).ok().lines()[1].ends_with("yes"));
    assert_eq!(env.run(&["unpin", "org/other"]).ok().stdout, "unpinned `org/other`\n");
    assert!(!env.run(&["ls"]).ok().lines()[1].ends_with("yes"));
    let ahead = env.run(&["pin", "org/model@main"]);
    assert_eq!(ahead.code, 2, "a revision that is not cached cannot be pinned: {}", ahead.stderr);
}

#[test]
fn config_shows_values_and_their_sources_and_dir_the_directories() {
    let env = Env::offline_only();
    let config_file = env.tmp.path().join("user/.config/modelcache/config.toml");
    std::fs::create_dir_all(config_file.parent().unwrap()).unwrap();
    std::fs::write(&config_file, "max_size = \"10GiB\"\n").unwrap();
    let run = env.run(&["config", "--endpoint", "http://127.0.0.1:9"]).ok();
    let row = |k: &str| run.stdout.lines().find(|l| l.starts_with(&format!("{k} "))).unwrap_or_default().to_owned();
    assert!(row("max_size").contains("10 GiB") && row("max_size").contains("config.toml"), "{}", run.stdout);
    assert!(row("endpoint").ends_with("command line"), "{}", row("endpoint"));
    assert!(row("cache_dir").ends_with("env HF_HUB_CACHE"), "{}", row("cache_dir"));
    assert!(row("retries").ends_with("env MODELCACHE_RETRIES"), "{}", row("retries"));
    let json = env.run(&["--json", "config"]).ok().json();
    assert_eq!(json["config_file"], config_file.to_str().unwrap());
    assert_eq!(json["settings"][0]["key"], "cache_dir");
    assert_eq!(json["settings"][0]["env_var"], "MODELCACHE_CACHE_DIR");

    let dir = env.run(&["dir"]).ok();
    assert_eq!(env.redact(&dir.stdout), "hub cache        [TMP]/hub\nmodelcache home  [TMP]/home\n");
    assert!(!env.hub_dir().exists(), "`dir` and `config` create nothing");
    let json = env.run(&["--json", "dir", "--cache-dir", "rel/hub"]).ok().json();
    assert!(json["cache_dir"].as_str().unwrap().ends_with("/rel/hub") && json["cache_dir"].as_str().unwrap().starts_with('/'));
}

#[test]
fn global_options_fall_back_to_the_hub_variables() {
    let hub = TestHub::start_blocking([RepoSpec::model("org/private").file("a.txt", "secret").private("hf_good")]);
    let mut env = Env::new(&hub);
    // HF_HOME gives `$HF_HOME/hub` when HF_HUB_CACHE is unset.
    let hf_home = env.tmp.path().join("hf-home");
    let run = Env::run_without(&env, "HF_HUB_CACHE", &["--json", "dir"], &[("HF_HOME", hf_home.to_str().unwrap())]);
    assert_eq!(run.ok().json()["cache_dir"], hf_home.join("hub").to_str().unwrap());
    // --cache-dir beats HF_HUB_CACHE.
    let other = env.tmp.path().join("other");
    let json = env.run(&["--json", "dir", "--cache-dir", other.to_str().unwrap()]).ok().json();
    assert_eq!(json["cache_dir"], other.to_str().unwrap());
    // The token: none → refused; HF_TOKEN → allowed; --token overrides it.
    env.run(&["get", "org/private", "a.txt"]).expect(3);
    env.var("HF_TOKEN", "hf_wrong");
    env.run(&["get", "org/private", "a.txt"]).expect(3);
    env.run(&["get", "org/private", "a.txt", "--token", "hf_good"]).ok();
    // Offline from the variables (either), and from the flag.
    env.run(&["get", "org/private", "a.txt", "--offline"]).ok();
    for var in ["HF_HUB_OFFLINE", "MODELCACHE_OFFLINE"] {
        let run = Env::run_without(&env, "", &["get", "org/other", "x.txt"], &[(var, "1")]);
        run.expect(4);
    }
    // --endpoint beats HF_ENDPOINT.
    let mut elsewhere = Env::offline_only();
    elsewhere.endpoint = Some("http://127.0.0.1:9".to_owned());
    elsewhere.run(&["get", "org/private", "a.txt", "--token", "hf_good"]).expect(3);
    elsewhere.run(&["get", "org/private", "a.txt", "--token", "hf_good", "--endpoint", hub.url()]).ok();
}

impl Env {
    /// Runs with `unset` removed and `extra` added, for this run only.
    fn run_without(&self, unset: &str, args: &[&str], extra: &[(&str, &str)]) -> crate::Run {
        let mut c = self.command(args);
        if !unset.is_empty() {
            c.env_remove(unset);
        }
        for (k, v) in extra {
            c.env(k, v);
        }
        crate::Run::from(&c.output().unwrap())
    }
}

#[test]
fn verbosity_logs_to_stderr_and_quiet_keeps_errors() {
    let hub = hub();
    let env = Env::new(&hub);
    let quiet = env.run(&["get", "org/other", "vocab.txt"]).ok();
    assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
    let info = env.run(&["-v", "get", "org/model", "config.json"]).ok();
    assert!(info.stderr.contains("INFO") && info.stderr.contains("downloaded"), "{}", info.stderr);
    assert!(!info.stderr.contains("DEBUG"), "{}", info.stderr);
    let debug = env.run(&["-vv", "get", "org/model", "config.json"]).ok();
    assert!(debug.stderr.contains("DEBUG"), "{}", debug.stderr);
    assert_eq!(debug.lines(), info.lines(), "logs never go to stdout");
    let failed = env.run(&["-q", "get", "org/nope", "x.json"]).expect(3);
    assert!(failed.stderr.starts_with("error: "), "-q keeps errors: {}", failed.stderr);
}

#[test]
fn doctor_checks_the_setup_and_names_a_stale_download_with_a_next_step() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    let healthy = env.run(&["doctor"]).ok();
    let lines = healthy.lines();
    assert_eq!(lines.len(), 14, "{}", healthy.stdout);
    assert!(lines.iter().all(|l| l.starts_with("ok  ")), "{}", healthy.stdout);
    assert!(healthy.stdout.contains("locks") && healthy.stdout.contains("flock excludes"), "{}", healthy.stdout);

    let blobs = env.hub_dir().join("models--org--other/blobs");
    std::fs::write(blobs.join(format!("{}.incomplete", "b".repeat(40))), b"part").unwrap();
    let warned = env.run(&["doctor"]).expect(1);
    assert!(warned.stdout.contains("warn  partial downloads  1 untouched"), "{}", warned.stdout);
    assert!(warned.stdout.contains("hint: the next `get` of those files resumes them"), "{}", warned.stdout);
    let json = env.run(&["--json", "doctor"]).expect(1).json();
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 14, "{json}");
    let partial = checks.iter().find(|c| c["name"] == "partial downloads").unwrap();
    assert_eq!(partial["status"], "warn", "{json}");
}
