//! Downloads one URL into a file with the default configuration and prints what happened:
//! `cargo run --release -p cache-fetch --example fetch_url -- URL OUT [EXPECTED_SIZE [ETAG]]`
//! (`FETCH_PARALLELISM=N` overrides the number of parallel ranges, `FETCH_CHUNK_MIB=N` their
//! size, `FETCH_PROBE_MS=N` the measuring window — 0 splits from the start — and
//! `FETCH_SPLIT_BELOW_MIB=N` the speed, in MiB/s, under which a stream is split).
//! Used to measure wall time and peak memory (`/usr/bin/time -v`).
#![expect(clippy::print_stdout, reason = "an example reports on stdout")]

use std::sync::Arc;
use std::time::Instant;

use cache_fetch::{DownloadRequest, FetchConfig, Fetcher, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, out, rest @ ..] = args.as_slice() else {
        return Err("usage: fetch_url URL OUT [EXPECTED_SIZE [ETAG]]".into());
    };
    let mut request = DownloadRequest::new(url);
    if let Some(size) = rest.first() {
        request = request.expected_size(size.parse()?);
    }
    if let Some(etag) = rest.get(1) {
        request = request.expected_etag(cache_core::Etag::new(etag)?);
    }
    let mut config = FetchConfig::default();
    if let Ok(n) = std::env::var("FETCH_PARALLELISM") {
        config.parallelism = n.parse()?;
    }
    if let Ok(n) = std::env::var("FETCH_CHUNK_MIB") {
        config.chunk_size = n.parse::<u64>()? << 20;
    }
    if let Ok(n) = std::env::var("FETCH_PROBE_MS") {
        config.probe_window = std::time::Duration::from_millis(n.parse()?);
    }
    if let Ok(n) = std::env::var("FETCH_SPLIT_BELOW_MIB") {
        config.parallel_below_rate = n.parse::<u64>()? << 20;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let file = std::fs::OpenOptions::new().create(true).truncate(false).read(true).write(true).open(out)?;
    let started = Instant::now();
    let fetcher = Fetcher::new(config)?;
    let t = rt.block_on(fetcher.download(&request, Arc::new(file), &NoProgress))?;
    let secs = started.elapsed().as_secs_f64();
    #[expect(clippy::cast_precision_loss, reason = "a rate for humans")]
    let rate = t.digests.size as f64 / secs / 1e6;
    println!(
        "{} bytes in {secs:.3}s ({rate:.0} MB/s), parallel: {}, sha256 {:?}",
        t.digests.size,
        t.parallel,
        t.digests.sha256.map(|d| d.to_hex())
    );
    Ok(())
}
