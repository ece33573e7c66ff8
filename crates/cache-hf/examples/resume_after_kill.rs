//! Measures resuming a large download after a SIGKILL, and what checkpoints cost.
//!
//! `cargo run --release -p cache-hf --example resume_after_kill -- [kill|overhead] [SIZE_MIB] [MBPS]`
//!
//! Starts the testkit hub on 127.0.0.1 with one LFS file of `SIZE_MIB` (default 1024),
//! optionally capped at `MBPS` MB/s per connection, and uses the default `FetchConfig`.
//! - `kill` (default): a child process (this binary again) downloads the file into a
//!   fresh cache and is killed (`SIGKILL`) once the hub has sent half of it; this process then
//!   downloads it into the same cache. Prints the bytes the hub sent to each and the
//!   extra bytes (sent twice) as a share of the file.
//! - `overhead`: downloads the file into fresh caches, alternating checkpoints on (the
//!   default interval) and off, three times each; prints wall times and medians.
//!
//! Measured on the development machine (2 shared cores, loopback), 1 GiB, default
//! config (8 ranges of 16 MiB, checkpoints every 4 MiB): capped at 50 MB/s per
//! connection, 0.06–0.26 % of the file is sent twice; uncapped, 8–15 %, nearly all of it
//! bytes the hub had pushed into the kernel's socket buffers (up to 32 MiB per
//! connection here) that the killed process never read. Checkpoints on vs off: 2.57 s vs
//! 2.88 s (medians of 3; noise exceeds any difference).
#![expect(clippy::print_stdout, reason = "an example reports on stdout")]
#![expect(clippy::unwrap_used, reason = "a measurement tool fails loudly")]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_hf::{FetchConfig, HubCache, HubConfig, NoObserver, Observer};
use cache_store::{Store, StoreConfig};
use cache_testkit::{Content, RepoSpec, TestHub};
use camino::{Utf8Path, Utf8PathBuf};

const CHILD_ENV: &str = "RESUME_AFTER_KILL_CHILD";

fn cache(endpoint: &str, root: &Utf8Path, checkpoints: bool) -> HubCache {
    let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
    let mut c = HubConfig::new(endpoint);
    let mut fetch = FetchConfig::default();
    if !checkpoints {
        fetch.checkpoint_interval = u64::MAX;
    }
    c.fetch = fetch;
    HubCache::new(&c, Arc::new(store)).unwrap()
}

async fn get(cache: &HubCache) -> cache_hf::Result<cache_hf::FileOutcome> {
    let observer: Arc<dyn Observer> = Arc::new(NoObserver);
    let repo = cache_core::Repo::model("org/big".parse().unwrap());
    cache.get_file(&repo, &"main".parse().unwrap(), &"model.bin".parse().unwrap(), &observer).await
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (endpoint, root) = spec.split_once('|').unwrap();
        let _ = rt.block_on(get(&cache(endpoint, Utf8Path::new(root), true)));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("kill", String::as_str);
    let size: u64 = args.get(1).map_or(1024, |s| s.parse().unwrap()) << 20;
    let mbps: Option<u64> = args.get(2).map(|s| s.parse().unwrap());
    let hub = rt.block_on(TestHub::start([RepoSpec::model("org/big").lfs_file("model.bin", Content::generated(size, 1))]));
    hub.throttle(mbps.map(|m| m * 1_000_000));
    println!("file: {} MiB, cap per connection: {mbps:?} MB/s", size >> 20);
    match mode {
        "kill" => kill(&rt, &hub, size),
        "overhead" => overhead(&rt, &hub),
        other => panic!("unknown mode `{other}`: kill or overhead"),
    }
}

fn kill(rt: &tokio::runtime::Runtime, hub: &TestHub, size: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let root = Utf8PathBuf::from_path_buf(tmp.path().to_path_buf()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, format!("{}|{root}", hub.url()))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    while hub.stats().bytes_for("/cdn/") < size / 2 {
        assert!(child.try_wait().unwrap().is_none(), "the child finished before the kill");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let to_child = hub.stats().bytes_for("/cdn/");
    let (held, recorded) = on_disk(&root);
    println!("at the kill: the hub had sent {to_child}, the staging file spans {held}, the record names {recorded}");
    hub.reset_stats();
    let started = Instant::now();
    let got = rt.block_on(get(&cache(hub.url(), &root, true))).unwrap();
    let to_parent = hub.stats().bytes_for("/cdn/");
    let extra = (to_child + to_parent).saturating_sub(size);
    #[expect(clippy::cast_precision_loss, reason = "a share for humans")]
    let share = extra as f64 * 100.0 / size as f64;
    println!(
        "sent before the kill: {to_child}, after: {to_parent} (resume took {:.2}s), extra: {extra} bytes = {share:.3} % of the file; {}",
        started.elapsed().as_secs_f64(),
        got.path
    );
}

/// The staging file's length and the bytes its range record names.
fn on_disk(root: &Utf8Path) -> (u64, u64) {
    let mut held = 0;
    let mut recorded = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = Utf8PathBuf::from_path_buf(e.path()).unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else if p.as_str().ends_with(".incomplete") {
                held = e.metadata().unwrap().len();
            } else if p.as_str().ends_with(".ranges") {
                let text = std::fs::read_to_string(&p).unwrap();
                let line = text.lines().find_map(|l| l.strip_prefix("ranges")).unwrap_or_default();
                for r in line.split_whitespace() {
                    let (a, b) = r.split_once('-').unwrap();
                    recorded += b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap();
                }
            }
        }
    }
    (held, recorded)
}

fn overhead(rt: &tokio::runtime::Runtime, hub: &TestHub) {
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..6 {
        let on = round % 2 == 0;
        let tmp = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(tmp.path().to_path_buf()).unwrap();
        let cache = cache(hub.url(), &root, on);
        let started = Instant::now();
        rt.block_on(get(&cache)).unwrap();
        let secs = started.elapsed().as_secs_f64();
        println!("checkpoints {}: {secs:.2}s", if on { "on " } else { "off" });
        times[usize::from(!on)].push(secs);
    }
    for (name, t) in ["on", "off"].iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        println!("median with checkpoints {name}: {:.2}s", t[t.len() / 2]);
    }
}
