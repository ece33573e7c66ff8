//! A parallel download killed midway (SIGKILL, in a child process) resumes in the next
//! process with only what the killed one had not recorded.
//!
//! The test re-executes its own binary (`std::env::current_exe()`) with [`CHILD_ENV`]
//! set; the child runs the same test function, which then downloads instead of
//! supervising, until the parent kills it.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_hf::{FetchConfig, HubCache, HubConfig};
use cache_store::{Store, StoreConfig};
use cache_testkit::{Content, RepoSpec, TestHub};
use camino::Utf8PathBuf;

use crate::{fetch_config, model, observer, path, rev};

const CHILD_ENV: &str = "CACHE_HF_TEST_RESUME_CHILD";
const SIZE: u64 = 12 << 20;
const PARALLELISM: usize = 4;
const CHECKPOINT: u64 = 256 << 10;
/// cache-fetch gathers small received chunks into writes of this size (`WRITE_BUF`).
const WRITE_GATHER: u64 = 256 << 10;

fn config() -> FetchConfig {
    let mut c = fetch_config();
    c.parallelism = PARALLELISM;
    c.chunk_size = 1 << 20;
    c.parallel_threshold = 1 << 20;
    // Split from the start (no measuring window): the rounds below assume it.
    c.probe_window = Duration::ZERO;
    c.checkpoint_interval = CHECKPOINT;
    c
}

fn cache(endpoint: &str, root: &Utf8PathBuf) -> HubCache {
    let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
    let mut c = HubConfig::new(endpoint);
    c.fetch = config();
    HubCache::new(&c, Arc::new(store)).unwrap()
}

fn files_named(dir: &Utf8PathBuf, suffix: &str) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = Utf8PathBuf::from_path_buf(e.path()).unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if p.as_str().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_killed_midway_resumes_in_the_next_process() {
    let repo = model("org/big");
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        // The child: download until killed.
        let (endpoint, root) = spec.split_once('|').unwrap();
        let cache = cache(endpoint, &Utf8PathBuf::from(root));
        let _ = cache.get_file(&repo, &rev("main"), &path("model.bin"), &observer()).await;
        return;
    }
    let hub = TestHub::start([RepoSpec::model("org/big").lfs_file("model.bin", Content::generated(SIZE, 3))]).await;
    // About three seconds for the whole file over four connections.
    hub.throttle(Some(1 << 20));
    let tmp = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(tmp.path().canonicalize().unwrap()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["resume::a_download_killed_midway_resumes_in_the_next_process", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}|{root}", hub.url()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Four ranges of 1 MiB run in step, in rounds of 4 MiB. Each range writes (and the
    // checkpoints record) its first 256 KiB well before it ends, so from 5 to 8 MiB sent
    // the staging file has holes below its length: stop the child in the middle of that.
    while hub.stats().bytes_for("/cdn/") < 6_500_000 {
        assert!(child.try_wait().unwrap().is_none(), "the child ended before it was killed");
        assert!(started.elapsed() < Duration::from_secs(60), "the child made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server may still be writing into the dead child's sockets (and counting it):
    // wait until its count stops moving, so none of that is counted for the resume.
    let mut sent_to_child = hub.stats().bytes_for("/cdn/");
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = hub.stats().bytes_for("/cdn/");
        if now == sent_to_child {
            break;
        }
        sent_to_child = now;
    }
    assert!(sent_to_child < SIZE, "killed midway: {sent_to_child}");

    let info = hub.file("org/big", "main", "model.bin").unwrap();
    let (hub_dir, home) = (root.join("hub"), root.join("home"));
    assert_eq!(files_named(&hub_dir, ".incomplete").len(), 1, "the staging file survived the kill");
    assert!(files_named(&hub_dir, ".ranges").is_empty(), "nothing of ours in the hub cache");
    let records = files_named(&home, &format!("{}.ranges", info.etag));
    assert_eq!(records.len(), 1, "the killed process had recorded its progress");
    let text = std::fs::read_to_string(&records[0]).unwrap();
    let line = text.lines().find_map(|l| l.strip_prefix("ranges ")).unwrap();
    let recorded: u64 = line
        .split_whitespace()
        .map(|r| r.split_once('-').unwrap())
        .map(|(a, b)| b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap())
        .sum();
    assert!(line.split_whitespace().count() > 1, "ranges beyond a hole were recorded: {line}");

    hub.reset_stats();
    hub.throttle(None);
    let got = cache(hub.url(), &root).get_file(&repo, &rev("main"), &path("model.bin"), &observer()).await.unwrap();
    assert_eq!(std::fs::read(&got.path).unwrap(), info.content.to_vec());
    let sent_to_parent = hub.stats().bytes_for("/cdn/");
    assert_eq!(got.bytes_downloaded, sent_to_parent);
    assert_eq!(sent_to_parent, SIZE - recorded, "exactly the gaps of the record were fetched");
    assert!(!records[0].exists(), "the commit removed the record");
    // Lost to the kill: bytes written since the last checkpoint (one interval, plus what
    // arrived while it was saved), bytes received but not yet written (one gather buffer
    // per range) and bytes still in the sockets (a little per range at this rate, more
    // on a loaded machine). Resuming from the length, as before, re-sent ~90 % here.
    let extra = sent_to_child + sent_to_parent - SIZE;
    let bound = PARALLELISM as u64 * (CHECKPOINT + WRITE_GATHER);
    assert!(extra <= bound, "{extra} bytes sent twice (bound {bound}); the child got {sent_to_child}");
}
