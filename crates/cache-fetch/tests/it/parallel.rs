//! One stream or parallel ranges, chosen from the measured speed of the first stream: a
//! fast server gets one stream, a per-connection-capped one is split mid-transfer; either
//! way the file is byte-identical and no range is fetched twice.

use cache_core::Sha256;
use cache_fetch::NoProgress;
use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{BIG, fetcher, hub, info, request, sink};

/// The ranges the CDN was asked for, in order.
fn cdn_ranges(hub: &TestHub) -> Vec<Option<String>> {
    hub.stats().log.iter().filter(|r| r.route == Route::CdnGet).map(|r| r.range.clone()).collect()
}

#[tokio::test]
async fn a_capped_server_is_split_into_parallel_ranges_mid_transfer() {
    let hub = hub().await;
    hub.throttle(Some(1 << 20));
    let f = info(&hub, "org/model", "model.safetensors");
    let (file, path) = sink();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(t.parallel, "1 MiB/s per connection is below the 6 MiB/s bar");
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    assert_eq!(t.digests.sha256, Some(f.content.sha256()));
    let ranges = cdn_ranges(&hub);
    assert_eq!(ranges[0].as_deref(), Some("bytes=0-"), "one open-ended stream first");
    // The first stream was measured for 50 ms (~50 KiB at 1 MiB/s), kept one more range,
    // and the rest went in 256 KiB ranges.
    assert!(ranges.len() >= 8, "{ranges:?}");
    let mut bounded: Vec<(u64, u64)> = ranges[1..]
        .iter()
        .map(|r| {
            let (a, b) = r.as_deref().and_then(|r| r.strip_prefix("bytes=")?.split_once('-')).unwrap();
            (a.parse().unwrap(), b.parse::<u64>().unwrap() + 1)
        })
        .collect();
    bounded.sort_unstable();
    assert!(bounded[0].0 > 0 && bounded[0].0 <= 1 << 20, "the first stream kept its part: {ranges:?}");
    for pair in bounded.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "the ranges follow each other: {ranges:?}");
    }
    assert!(bounded.iter().all(|(a, b)| b - a <= 256 * 1024), "{ranges:?}");
    assert_eq!(bounded.last().unwrap().1, BIG, "the ranges reach the end");
    let s = hub.stats();
    assert!(s.log.iter().filter(|r| r.route == Route::CdnGet).all(|r| r.status == 206));
    assert_eq!(s.count(Route::ResolveGet), 1, "the redirect is resolved once");
    // Only what was in flight on the first connection when it was cut is sent twice.
    let sent = s.bytes_for("/cdn/");
    assert!((BIG..BIG + 256 * 1024).contains(&sent), "{sent} bytes sent for {BIG}");
}

#[tokio::test]
async fn a_fast_server_is_fetched_as_one_stream() {
    let size = 16 << 20;
    let hub = TestHub::start([RepoSpec::model("org/fast").lfs_file("w.bin", Content::generated(size, 4))]).await;
    // Unthrottled: the stream outlasts the 50 ms window and is well above the 6 MiB/s bar.
    let f = info(&hub, "org/fast", "w.bin");
    let (file, path) = sink();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(!t.parallel, "a stream faster than the bar stays alone");
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    assert_eq!(cdn_ranges(&hub), vec![Some("bytes=0-".to_owned())], "one request");
    assert_eq!(hub.stats().bytes_for("/cdn/"), size);
}

#[tokio::test]
async fn without_range_support_one_stream_is_used() {
    let hub = hub().await;
    hub.ignore_ranges(true);
    hub.throttle(Some(1 << 20));
    let f = info(&hub, "org/model", "model.safetensors");
    let (file, path) = sink();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(!t.parallel);
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    assert_eq!(hub.stats().count(Route::CdnGet), 1);
}

#[tokio::test]
async fn a_partial_large_file_resumes_in_parallel() {
    let hub = hub().await;
    hub.throttle(Some(1 << 20));
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    std::fs::write(&path, &want[..700_001]).unwrap();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(t.parallel);
    assert_eq!(t.resumed_from, 700_001);
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.digests.sha256, Some(Sha256::of(&want)));
    assert_eq!(cdn_ranges(&hub)[0].as_deref(), Some("bytes=700001-"));
    let sent = hub.stats().bytes_for("/cdn/");
    assert!((BIG - 700_001..BIG - 700_001 + 256 * 1024).contains(&sent), "{sent}");
}
