//! Faults never fail a caller: a tier that is down, stalls or refuses writes is counted,
//! skipped (circuit breaker) or demoted, within bounded time.

use std::time::{Duration, Instant};

use cache_fetch::NoProgress;
use cache_remote::{Mode, Pulled};

use crate::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_transfer_gives_up_within_its_timeout_and_is_counted_as_an_error() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    let data = sample(2 << 20, 6);
    let key = lfs_key(&data);
    let tier = s3.tier(Mode::ReadWrite);
    tier.push_blob(&key, &file_with(scratch.path(), "f", &data), data.len() as u64).await.unwrap();
    s3.proxy.stall_after(Some(1000));
    let (_, s) = sink(scratch.path(), "stalled");
    let started = Instant::now();
    let outcome = tier.pull(&key, data.len() as u64, &s, "f", &NoProgress).await;
    assert!(matches!(outcome, Pulled::Failed(_)), "{outcome:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "bounded: {:?}", started.elapsed());
    let stats = tier.stats();
    assert!(stats.errors >= 1 && stats.misses == 0 && stats.hits == 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tier_that_keeps_failing_is_skipped_instead_of_costing_a_call_per_blob() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    let tier = s3.tier(Mode::ReadOnly);
    s3.proxy.set_down(true);
    for i in 0..10 {
        let data = sample(10, i);
        let (_, s) = sink(scratch.path(), "x");
        assert!(matches!(tier.pull(&lfs_key(&data), 10, &s, "x", &NoProgress).await, Pulled::Failed(_)));
    }
    let stats = tier.stats();
    assert!(stats.skipped >= 7, "{stats:?}");
    assert!(s3.proxy.count_method("GET") + s3.proxy.count_method("HEAD") <= 6, "{:?}", s3.proxy.counts());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_write_demotes_the_tier_to_read_only_and_reads_go_on() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    let data = sample(4000, 7);
    let key = lfs_key(&data);
    let file = file_with(scratch.path(), "f", &data);
    s3.tier(Mode::ReadWrite).push_blob(&key, &file, 4000).await.unwrap();
    s3.proxy.deny_writes(true);
    let tier = s3.tier(Mode::ReadWrite);
    let other = sample(100, 8);
    let e = tier.push_blob(&lfs_key(&other), &file_with(scratch.path(), "o", &other), 100).await.unwrap_err();
    assert!(e.to_string().contains("refused"), "{e}");
    assert_eq!(tier.mode(), Mode::ReadOnly);
    let puts = s3.proxy.count_method("PUT");
    assert!(tier.push_blob(&lfs_key(&other), &file, 4000).await.is_err());
    assert_eq!(s3.proxy.count_method("PUT"), puts, "no second write is tried");
    let (_, s) = sink(scratch.path(), "r");
    assert!(matches!(tier.pull(&key, 4000, &s, "f", &NoProgress).await, Pulled::Hit(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_tier_is_an_error_quickly() {
    let scratch = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let spec = cache_remote::TierSpec::new("s3://nobody/x", Mode::ReadOnly).unwrap();
    let env = cache_testkit::s3::MotoServer::env_for(&format!("http://127.0.0.1:{port}"));
    let tier = cache_remote::Tier::open(spec, std::sync::Arc::new(options(env))).unwrap();
    let (_, s) = sink(scratch.path(), "x");
    let started = Instant::now();
    assert!(matches!(tier.pull(&lfs_key(b"x"), 1, &s, "x", &NoProgress).await, Pulled::Failed(_)));
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(tier.stats().errors, 1);
}
