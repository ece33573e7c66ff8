//! Parallel ranges: throttled server, byte-identical result, fallback without ranges.

use cache_fetch::NoProgress;
use cache_testkit::Route;

use crate::{BIG, fetcher, hub, info, request, sink};

#[tokio::test]
async fn parallel_ranges_on_a_throttled_server_produce_the_same_file() {
    let hub = hub().await;
    hub.throttle(Some(4 << 20));
    let f = info(&hub, "org/model", "model.safetensors");
    let (file, path) = sink();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(t.parallel);
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    let s = hub.stats();
    let chunks = BIG.div_ceil(256 * 1024);
    assert_eq!(s.count(Route::CdnGet), chunks, "one request per range");
    assert_eq!(s.bytes_for("/cdn/"), BIG, "no byte sent twice");
    assert_eq!(s.count(Route::ResolveGet), 1, "the redirect is resolved once");
    let ranged = s.log.iter().filter(|r| r.route == Route::CdnGet && r.status == 206).count();
    assert_eq!(ranged as u64, chunks);
}

#[tokio::test]
async fn without_range_support_one_stream_is_used() {
    let hub = hub().await;
    hub.ignore_ranges(true);
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
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    std::fs::write(&path, &want[..700_001]).unwrap();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(t.parallel);
    assert_eq!(t.resumed_from, 700_001);
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(hub.stats().bytes_for("/cdn/"), BIG - 700_001);
}
