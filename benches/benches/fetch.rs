//! Transfers over loopback from the testkit hub (targets in issue 4 / BENCHMARKS):
//! - `fetch/lfs_1gib`: one 1 GiB LFS file (target: ≤ 1.1× `curl -o` of the same URL);
//! - `fetch/lfs_1gib_capped_50MBps`: the same with a 50 MB/s per-connection cap (target:
//!   ≥ 6× a single stream, which needs 1 GiB / 50 MB/s ≈ 21.5 s);
//! - `fetch/small_500`: 500 files of 4–64 KiB, 8 at a time.
//!
//! `cargo bench -p modelcache-benches --bench fetch`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_fetch::{DownloadRequest, FetchConfig, Fetcher, NoProgress};
use cache_testkit::{Content, FileInfo, RepoSpec, TestHub};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const GIB: u64 = 1 << 30;
const SMALL_FILES: usize = 500;

fn hub() -> TestHub {
    let mut small = RepoSpec::model("bench/small");
    for i in 0..SMALL_FILES {
        let size = 4096 + (i as u64 * 7919) % (60 * 1024);
        small = small.file(&format!("f/{i:03}.bin"), Content::generated(size, i as u64));
    }
    TestHub::start_blocking([RepoSpec::model("bench/big").lfs_file("model.safetensors", Content::generated(GIB, 42)), small])
}

fn download(rt: &tokio::runtime::Runtime, fetcher: &Fetcher, dir: &std::path::Path, f: &FileInfo) -> Duration {
    let path = dir.join("blob.incomplete");
    let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).expect("temp file");
    let req = DownloadRequest::new(&f.url).expected_size(f.size).expected_etag(f.etag);
    let started = Instant::now();
    rt.block_on(fetcher.download(&req, Arc::new(file), &NoProgress)).expect("download");
    let elapsed = started.elapsed();
    std::fs::remove_file(&path).expect("remove");
    elapsed
}

fn bench(c: &mut Criterion) {
    let hub = hub();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let fetcher = Fetcher::new(FetchConfig::default()).expect("fetcher");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let big = hub.file("bench/big", "main", "model.safetensors").expect("served");

    let mut g = c.benchmark_group("fetch");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(35));
    g.throughput(Throughput::Bytes(GIB));
    g.bench_function("lfs_1gib", |b| b.iter_custom(|n| (0..n).map(|_| download(&rt, &fetcher, dir.path(), &big)).sum()));
    hub.throttle(Some(50_000_000));
    g.bench_function("lfs_1gib_capped_50MBps", |b| {
        b.iter_custom(|n| (0..n).map(|_| download(&rt, &fetcher, dir.path(), &big)).sum());
    });
    hub.throttle(None);

    let small: Vec<FileInfo> =
        (0..SMALL_FILES).map(|i| hub.file("bench/small", "main", &format!("f/{i:03}.bin")).expect("served")).collect();
    g.throughput(Throughput::Elements(SMALL_FILES as u64));
    g.bench_function("small_500", |b| {
        b.iter_custom(|n| {
            let mut total = Duration::ZERO;
            for _ in 0..n {
                let started = Instant::now();
                rt.block_on(small_files(&fetcher, dir.path(), &small));
                total += started.elapsed();
            }
            total
        });
    });
    g.finish();
}

async fn small_files(fetcher: &Fetcher, dir: &std::path::Path, files: &[FileInfo]) {
    use futures_util::stream::{self, StreamExt};
    stream::iter(files.iter().enumerate())
        .for_each_concurrent(8, |(i, f)| async move {
            let path = dir.join(format!("small-{i}"));
            let file =
                std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path).expect("temp file");
            let req = DownloadRequest::new(&f.url).expected_size(f.size).expected_etag(f.etag);
            fetcher.download(&req, Arc::new(file), &NoProgress).await.expect("download");
        })
        .await;
}

criterion_group!(benches, bench);
criterion_main!(benches);
