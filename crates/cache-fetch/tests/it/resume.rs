//! Resuming an interrupted parallel transfer whose file has holes: with a progress record
//! only the gaps are fetched; without one the file is cut to its contiguous prefix; a
//! wrong record is caught by the etag check.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_core::Sha256;
use cache_fetch::{Error, FetchConfig, Fetcher, NoProgress, Sink};
use cache_testkit::{FileInfo, HubHandle, Route};

use crate::{BIG, hub, info, request, sink};

/// A file plus an in-memory progress record: what the store keeps in its home.
struct Recorded {
    file: std::fs::File,
    record: Mutex<Option<Vec<Range<u64>>>>,
    saves: AtomicU64,
}

impl Recorded {
    fn new(file: std::fs::File, record: Option<Vec<Range<u64>>>) -> Arc<Self> {
        Arc::new(Recorded { file, record: Mutex::new(record), saves: AtomicU64::new(0) })
    }

    fn record(&self) -> Option<Vec<Range<u64>>> {
        self.record.lock().unwrap().clone()
    }
}

impl Sink for Recorded {
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        Sink::write_at(&self.file, offset, data)
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Sink::read_at(&self.file, offset, buf)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        Sink::set_len(&self.file, len)
    }
    fn completed_ranges(&self) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(Some(self.record().unwrap_or_default()))
    }
    fn records_progress(&self) -> bool {
        true
    }
    fn record_completed(&self, ranges: &[Range<u64>]) -> io::Result<()> {
        self.saves.fetch_add(1, Ordering::Relaxed);
        *self.record.lock().unwrap() = (!ranges.is_empty()).then(|| ranges.to_vec());
        Ok(())
    }
}

/// Parallel ranges of 128 KiB, 4 at a time (split at once), no retries, checkpoints every
/// 256 KiB.
fn config() -> FetchConfig {
    let mut c = FetchConfig::default();
    c.read_timeout = Duration::from_secs(2);
    c.retries = 0;
    c.parallelism = 4;
    c.chunk_size = 128 * 1024;
    c.parallel_threshold = 256 * 1024;
    c.probe_window = Duration::ZERO;
    c.checkpoint_interval = 256 * 1024;
    c
}

/// Runs a parallel download whose first range stalls after 64 KiB until it times out
/// (no retries) while the other ranges go on: the transfer fails with written ranges
/// beyond a short contiguous prefix, as a kill in the middle of a parallel transfer leaves.
async fn interrupted(hub: &HubHandle, f: &FileInfo, sink: Arc<dyn Sink>) -> Error {
    hub.throttle(Some(1 << 20));
    hub.stall_after(64 * 1024, 1, Duration::from_secs(3));
    hub.update_faults(|f| f.path_contains = Some("/cdn/".into()));
    let mut c = config();
    c.read_timeout = Duration::from_millis(500);
    let e = Fetcher::new(c).unwrap().download(&request(f), sink, &NoProgress).await.unwrap_err();
    hub.clear_faults();
    e
}

#[tokio::test]
async fn an_interrupted_parallel_transfer_fetches_only_its_gaps() {
    let hub = hub().await;
    let server = hub.handle();
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    let sink = Recorded::new(Arc::into_inner(file).unwrap(), None);
    let e = interrupted(&server, &f, sink.clone()).await;
    assert!(e.is_transient(), "{e}");
    let record = sink.record().expect("the failure recorded what was written");
    assert!(sink.saves.load(Ordering::Relaxed) >= 2, "checkpoints ran during the transfer, then one at the failure");
    assert!(record.len() > 1, "out-of-order ranges leave holes: {record:?}");
    let on_disk = std::fs::read(&path).unwrap();
    for r in &record {
        let (a, b) = (usize::try_from(r.start).unwrap(), usize::try_from(r.end).unwrap());
        assert_eq!(on_disk[a..b], want[a..b], "recorded range {r:?} holds the right bytes");
    }
    let recorded: u64 = record.iter().map(|r| r.end - r.start).sum();
    // The server may still be writing into the cut connections (and counting it): wait
    // until its count stops moving, so none of that is counted for the second run.
    let mut first_run = server.stats().bytes_for("/cdn/");
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.stats().bytes_for("/cdn/");
        if now == first_run {
            break;
        }
        first_run = now;
    }

    server.reset_stats();
    let t = Fetcher::new(config()).unwrap().download(&request(&f), sink.clone(), &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.digests.sha256, Some(Sha256::of(&want)));
    assert_eq!((t.resumed_from, t.bytes_discarded), (recorded, 0));
    let second_run = server.stats().bytes_for("/cdn/");
    assert_eq!(second_run, BIG - recorded, "only the gaps were fetched");
    // What the first run received but had not written when it was cut: at most the
    // receive buffers of the ranges in flight.
    let extra = first_run + second_run - BIG;
    assert!(extra <= 4 * 256 * 1024, "{extra} extra bytes for {BIG}");
}

#[tokio::test]
async fn a_transfer_killed_after_its_split_resumes_from_its_last_checkpoint() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    let sink = Recorded::new(Arc::into_inner(file).unwrap(), None);
    // 1 MiB/s per connection: measured for 100 ms, then split into 4 streams.
    hub.throttle(Some(1 << 20));
    let mut c = config();
    c.probe_window = Duration::from_millis(100);
    c.parallel_below_rate = 6 << 20;
    // The download is dropped mid-transfer, as a killed process stops: nothing settles
    // its record, only the checkpoints taken while it ran remain.
    let (fetcher, req) = (Fetcher::new(c.clone()).unwrap(), request(&f));
    let download = fetcher.download(&req, sink.clone(), &NoProgress);
    assert!(tokio::time::timeout(Duration::from_millis(700), download).await.is_err(), "killed before the end");
    // The dropped download leaves no thread behind waiting for bytes.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !transfer_threads().is_empty() {
        assert!(std::time::Instant::now() < deadline, "threads left running: {:?}", transfer_threads());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ranged = hub.stats().log.iter().filter(|r| r.route == Route::CdnGet).count();
    assert!(ranged > 2, "split before the kill: {ranged} requests");
    let record = sink.record().expect("checkpoints were taken before the kill");
    let on_disk = std::fs::read(&path).unwrap();
    for r in &record {
        let (a, b) = (usize::try_from(r.start).unwrap(), usize::try_from(r.end).unwrap());
        assert_eq!(on_disk[a..b], want[a..b], "recorded range {r:?} holds the right bytes");
    }
    let recorded: u64 = record.iter().map(|r| r.end - r.start).sum();
    assert!(recorded < BIG, "{record:?}");

    hub.throttle(None);
    hub.reset_stats();
    let t = Fetcher::new(c).unwrap().download(&request(&f), sink.clone(), &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.digests.sha256, Some(Sha256::of(&want)));
    assert_eq!((t.resumed_from, t.bytes_discarded), (recorded, 0));
    let sent = hub.stats().bytes_for("/cdn/");
    assert!((BIG - recorded..BIG - recorded + 128 * 1024).contains(&sent), "{sent} sent for {} missing", BIG - recorded);
}

#[tokio::test]
async fn without_a_record_an_interrupted_file_is_cut_to_its_prefix() {
    let hub = hub().await;
    let server = hub.handle();
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    let _ = interrupted(&server, &f, file.clone()).await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 0 && len < BIG, "{len}");
    assert_eq!(std::fs::read(&path).unwrap(), want[..usize::try_from(len).unwrap()], "no hole below the length");
    let t = Fetcher::new(config()).unwrap().download(&request(&f), file, &NoProgress).await.unwrap();
    assert_eq!((t.resumed_from, t.bytes_discarded), (len, 0), "resumed, not restarted");
    assert_eq!(std::fs::read(&path).unwrap(), want);
}

#[tokio::test]
async fn a_record_over_wrong_bytes_is_caught_by_the_etag_and_restarts() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    // The record claims two ranges; the second holds zeros (a hole it should not claim).
    let mut bytes = want.clone();
    bytes[2_000_000..2_500_000].fill(0);
    std::fs::write(&path, &bytes[..2_500_000]).unwrap();
    let sink = Recorded::new(Arc::into_inner(file).unwrap(), Some(vec![0..1_000_000, 2_000_000..2_500_000]));
    let t = Fetcher::new(config()).unwrap().download(&request(&f), sink.clone(), &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.digests.sha256, Some(Sha256::of(&want)));
    assert_eq!(t.bytes_discarded, BIG, "the resumed file failed its etag check and started over");
    assert_eq!(t.resumed_from, 0);
}

#[tokio::test]
async fn recorded_ranges_beyond_the_file_are_ignored() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    std::fs::write(&path, &want[..1_000_000]).unwrap();
    // Claims bytes past the end of the file (truncated behind the record's back).
    let sink = Recorded::new(Arc::into_inner(file).unwrap(), Some(vec![0..500_000, 900_000..1_500_000]));
    let t = Fetcher::new(config()).unwrap().download(&request(&f), sink, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!((t.resumed_from, t.bytes_discarded), (600_000, 0));
    assert_eq!(hub.stats().bytes_for("/cdn/"), BIG - 600_000);
}

/// This process's hashing and checkpoint threads (each test runs in a process of its own).
fn transfer_threads() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| name.starts_with("modelcache-hash") || name.starts_with("modelcache-chec"))
        .collect()
}
