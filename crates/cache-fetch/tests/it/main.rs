//! Integration tests of cache-fetch against the testkit hub on 127.0.0.1.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod download;
mod faults;
mod parallel;
mod requests;
mod resume;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_fetch::{DownloadRequest, Event, FetchConfig, Fetcher, Progress};
use cache_testkit::{Content, FileInfo, RepoSpec, TestHub};

/// A fetcher with short timeouts and backoffs, and tiny parallel thresholds.
pub(crate) fn fetcher() -> Fetcher {
    Fetcher::new(config()).unwrap()
}

/// A fetcher like [`fetcher`] that splits every large transfer at once, whatever its
/// speed: for tests of the parallel ranges themselves.
pub(crate) fn splitting_fetcher() -> Fetcher {
    let mut c = config();
    c.probe_window = Duration::ZERO;
    Fetcher::new(c).unwrap()
}

/// Short timeouts and backoffs; files over 1 MiB may be split into 256 KiB ranges, 4 at a
/// time, when their first stream is slower than 6 MiB/s over 50 ms (an unthrottled
/// testkit sends several times that, even in a debug build on a loaded machine).
pub(crate) fn config() -> FetchConfig {
    let mut c = FetchConfig::default();
    c.connect_timeout = Duration::from_secs(2);
    c.read_timeout = Duration::from_millis(500);
    c.request_timeout = Duration::from_secs(5);
    c.retries = 4;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_cap = Duration::from_millis(50);
    c.max_retry_after = Duration::from_secs(2);
    c.parallelism = 4;
    c.chunk_size = 256 * 1024;
    c.parallel_threshold = 1 << 20;
    c.probe_window = Duration::from_millis(50);
    c.parallel_below_rate = 6 << 20;
    c
}

/// Sizes used throughout: large enough for several write buffers and ranges.
pub(crate) const BIG: u64 = 3 * 1024 * 1024 + 123;

pub(crate) fn repo() -> RepoSpec {
    RepoSpec::model("org/model")
        .file("config.json", r#"{"hidden_size": 8}"#)
        .file("tokenizer.json", Content::generated(300_000, 5))
        .lfs_file("model.safetensors", Content::generated(BIG, 9))
}

pub(crate) async fn hub() -> TestHub {
    TestHub::start([repo(), RepoSpec::model("org/private").lfs_file("w.bin", Content::generated(BIG, 2)).private("hf_secret")])
        .await
}

pub(crate) fn info(hub: &TestHub, repo: &str, path: &str) -> FileInfo {
    hub.file(repo, "main", path).unwrap()
}

/// A request for a served file, checked against its etag.
pub(crate) fn request(f: &FileInfo) -> DownloadRequest {
    DownloadRequest::new(&f.url).expected_size(f.size).expected_etag(f.etag)
}

pub(crate) fn sink() -> (Arc<std::fs::File>, tempfile::TempPath) {
    let path = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    (Arc::new(file), path)
}

/// Collects progress events as text.
#[derive(Default)]
pub(crate) struct Recorder(Mutex<Vec<String>>);

impl Progress for Recorder {
    fn event(&self, e: &Event<'_>) {
        let line = match e {
            Event::Started { resumed_from, .. } => format!("started {resumed_from}"),
            Event::Advanced { bytes, .. } => format!("advanced {bytes}"),
            Event::Retrying { reason, .. } => format!("retrying {reason}"),
            Event::Restarted { discarded, .. } => format!("restarted {discarded}"),
            Event::Finished { bytes, .. } => format!("finished {bytes}"),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Recorder {
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn advanced(&self) -> u64 {
        self.lines().iter().filter_map(|l| l.strip_prefix("advanced ")).map(|n| n.parse::<u64>().unwrap()).sum()
    }
}
