//! Observability as a user consumes it: `stats --format openmetrics` read by a real
//! `OpenMetrics` parser (Python's `prometheus_client`) after a scripted workload, and
//! `--log-format json`, where every stderr line is one JSON event.

use std::collections::BTreeMap;

use crate::{Env, hub};

/// `text_string_to_metric_families` over the file, each sample as `name{labels}` → value.
const PARSE: &str = "
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in family.samples:
        labels = ','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))
        out[s.name + ('{' + labels + '}' if labels else '')] = s.value
print(json.dumps(out))
";

fn parse_openmetrics(env: &Env, file: &std::path::Path) -> BTreeMap<String, f64> {
    let out = env.with_env(cache_testkit::python::require_interpreter()).args(["-c", PARSE]).arg(file).output().unwrap();
    assert!(out.status.success(), "the OpenMetrics parser refused the output: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn openmetrics_output_parses_and_counts_exactly_a_scripted_workload() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    // N = 3 misses, each one download.
    let files = [("org/model", "config.json", 19_u32), ("org/model", "tokenizer.json", 3000), ("org/other", "vocab.txt", 6)];
    for (repo, file, _) in files {
        env.run(&["get", repo, file]).ok();
    }
    // M = 4 hits.
    for _ in 0..2 {
        env.run(&["get", "org/model", "config.json"]).ok();
        env.run(&["get", "org/other", "vocab.txt"]).ok();
    }
    // One failed download (the Hub answers 503): a remote failure, and a miss.
    hub.fail_next(503, 1, None);
    env.run(&["get", "org/model", "model.safetensors"]).expect(3);
    // K = 3 evictions: everything, by size.
    let pruned = env.run(&["--json", "prune", "--max-size", "0"]).ok().json();
    assert_eq!(pruned["evicted"].as_array().unwrap().len(), 3, "{pruned}");

    let file = env.tmp.path().join("textfile/modelcache.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "stale").unwrap();
    let run = env.run(&["stats", "--format", "openmetrics", "--output", file.to_str().unwrap()]).ok();
    assert!(run.stdout.is_empty(), "with --output nothing goes to stdout: {}", run.stdout);
    let leftovers: Vec<_> = std::fs::read_dir(file.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, [std::ffi::OsString::from("modelcache.prom")], "the atomic write leaves no temporary file");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    let without_free_disk = |t: &str| t.lines().filter(|l| !l.starts_with("modelcache_free_disk")).collect::<Vec<_>>().join("\n");
    let stdout = env.run(&["stats", "--format", "openmetrics"]).ok().stdout;
    assert_eq!(without_free_disk(&stdout), without_free_disk(&text), "stdout and the file agree");

    let table = env.run(&["stats"]).ok().stdout;
    assert!(table.contains("evictions            3 (expired 0, over size 3)\n"), "{table}");
    assert!(table.contains("lock waits           0 (0.0 s)\n"), "{table}");
    let m = parse_openmetrics(&env, &file);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no sample `{k}` in {m:#?}"));
    let bytes: u32 = files.iter().map(|f| f.2).sum();
    let expected = [
        ("modelcache_misses_total", 4.0),
        ("modelcache_downloads_total", 3.0),
        ("modelcache_hits_total", 4.0),
        ("modelcache_downloaded_bytes_total", f64::from(bytes)),
        ("modelcache_evictions_total{reason=over_size}", 3.0),
        ("modelcache_evictions_total{reason=expired}", 0.0),
        ("modelcache_download_failures_total{cause=remote}", 1.0),
        ("modelcache_download_failures_total{cause=integrity}", 0.0),
        ("modelcache_download_failures_total{cause=disk_full}", 0.0),
        ("modelcache_download_failures_total{cause=other}", 0.0),
        ("modelcache_lock_waits_total", 0.0),
        ("modelcache_lock_wait_seconds_total", 0.0),
        ("modelcache_cache_entries", 0.0),
        ("modelcache_cache_size_bytes", 0.0),
        ("modelcache_cache_repositories", 0.0),
        ("modelcache_download_duration_seconds_count", 3.0),
        ("modelcache_download_duration_seconds_bucket{le=+Inf}", 3.0),
        ("modelcache_download_throughput_bytes_per_second_count", 3.0),
        ("modelcache_hit_latency_seconds_count", 4.0),
        ("modelcache_hit_latency_seconds_bucket{le=+Inf}", 4.0),
    ];
    for (k, v) in expected {
        assert_eq!(get(k), v, "{k}");
    }
    assert!(get("modelcache_free_disk_bytes") > 0.0);
    // Buckets are cumulative (never decreasing with the bound) and end at the count.
    for name in ["download_duration_seconds", "download_throughput_bytes_per_second", "hit_latency_seconds"] {
        let prefix = format!("modelcache_{name}_bucket{{le=");
        let mut buckets: Vec<(f64, f64)> = m
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.trim_end_matches('}').parse::<f64>().ok()?, *v)))
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(buckets.len(), 11, "{name}: {buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{name}: {buckets:?}");
        assert_eq!(buckets[10], (f64::INFINITY, get(&format!("modelcache_{name}_count"))), "{name}");
        assert!(get(&format!("modelcache_{name}_sum")) > 0.0, "{name}");
    }
}

fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    assert!(!stderr.is_empty(), "JSON logs write events");
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {l}\n--- stderr\n{stderr}")))
        .collect()
}

#[test]
fn json_logs_make_every_stderr_line_an_event_with_download_fields() {
    let hub = hub();
    let env = Env::new(&hub);
    let run = env.run(&["--log-format", "json", "get", "org/model", "config.json", "tokenizer.json"]).ok();
    assert_eq!(run.lines().len(), 2, "results stay on stdout: {}", run.stdout);
    let events = json_lines(&run.stderr);
    let downloads: Vec<_> = events.iter().filter(|e| e["message"] == "download").collect();
    assert_eq!(downloads.len(), 2, "one event per download: {events:#?}");
    let config = downloads.iter().find(|e| e["file"] == "config.json").unwrap();
    assert_eq!((config["repo"].as_str(), config["bytes"].as_u64()), (Some("org/model"), Some(19)));
    assert_eq!((config["source"].as_str(), config["retries"].as_u64()), (Some("hub"), Some(0)));
    assert!(config["duration_ms"].is_u64() && config["level"] == "INFO" && config["timestamp"].is_string(), "{config}");

    // The variable does the same; a hit is a `download` event from the cache.
    let mut env = env;
    env.var("MODELCACHE_LOG_FORMAT", "json");
    let hit = env.run(&["get", "org/model", "config.json"]).ok();
    let events = json_lines(&hit.stderr);
    let served: Vec<_> = events.iter().filter(|e| e["message"] == "download").collect();
    assert_eq!(served.len(), 1, "{events:#?}");
    assert_eq!((served[0]["source"].as_str(), served[0]["bytes"].as_u64()), (Some("cache"), Some(0)));

    // An error is a JSON event too, with its exit code and hint.
    let failed = env.run(&["get", "org/model", "missing.bin"]);
    assert_ne!(failed.code, 0);
    let events = json_lines(&failed.stderr);
    let error = events.iter().find(|e| e["message"] == "error").unwrap_or_else(|| panic!("no error event: {events:#?}"));
    assert_eq!((error["level"].as_str(), error["exit_code"].as_i64()), (Some("ERROR"), Some(i64::from(failed.code))));
    assert!(error["error"].as_str().unwrap().contains("missing.bin") && error["hint"].is_string(), "{error}");

    // Evictions are events with their reason.
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    let pruned = env.run(&["prune", "--max-size", "0"]).ok();
    let events = json_lines(&pruned.stderr);
    let evictions: Vec<_> = events.iter().filter(|e| e["message"] == "eviction").collect();
    assert_eq!(evictions.len(), 2, "{events:#?}");
    assert!(evictions.iter().all(|e| e["reason"] == "over_size" && e["repo"] == "org/model"), "{evictions:#?}");

    // A usage error as well; a bad variable value is a usage error.
    let usage = env.run(&["get", "--no-such-option"]).expect(2);
    json_lines(&usage.stderr);
    env.var("MODELCACHE_LOG_FORMAT", "yaml");
    let bad = env.run(&["stats"]).expect(2);
    assert!(bad.stderr.contains("MODELCACHE_LOG_FORMAT"), "{}", bad.stderr);
}

#[test]
fn a_process_waiting_for_another_ones_download_counts_one_lock_wait() {
    const SIZE: u64 = 3 << 20;
    let hub = cache_testkit::TestHub::start_blocking([
        cache_testkit::RepoSpec::model("org/big").lfs_file("w.bin", cache_testkit::Content::generated(SIZE, 5))
    ]);
    hub.throttle(Some(2 << 20)); // ~1.5 s: the second process arrives while the first holds the lock
    let env = Env::new(&hub);
    let spawn = || {
        env.command(&["--log-format", "json", "get", "org/big", "w.bin"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let runs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()].map(|o| crate::Run::from(&o).ok());
    let events: Vec<serde_json::Value> = runs.iter().flat_map(|r| json_lines(&r.stderr)).collect();
    let named = |m: &str| events.iter().filter(|e| e["message"] == m).count();
    assert_eq!((named("download"), named("lock_wait")), (2, 1), "one transfer, one wait: {events:#?}");
    let sources: Vec<_> = events.iter().filter(|e| e["message"] == "download").map(|e| e["source"].clone()).collect();
    assert!(sources.contains(&"hub".into()) && sources.contains(&"cache".into()), "{sources:?}");

    let file = env.tmp.path().join("modelcache.prom");
    env.run(&["stats", "--format", "openmetrics", "--output", file.to_str().unwrap()]).ok();
    let m = parse_openmetrics(&env, &file);
    assert_eq!((m["modelcache_lock_waits_total"], m["modelcache_downloads_total"]), (1.0, 1.0));
    assert!(m["modelcache_lock_wait_seconds_total"] > 0.0);
}
