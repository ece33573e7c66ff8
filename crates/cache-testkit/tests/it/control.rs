//! Faults and counters, from Rust and over the HTTP control API.

use std::time::{Duration, Instant};

use cache_testkit::{Content, Faults, RepoSpec, Route, Stats, TestHub};

use crate::{get, send};

fn big() -> Vec<RepoSpec> {
    vec![RepoSpec::model("org/m").lfs_file("w.bin", Content::generated(1 << 20, 4)).file("c.txt", "c")]
}

#[test]
fn faults_are_switched_over_http_and_counted_down() {
    let hub = TestHub::start_blocking(big());
    let url = hub.file("org/m", "main", "c.txt").unwrap().url;
    let r = send(
        "POST",
        &format!("{}/_testkit/faults", hub.url()),
        &[],
        br#"{"fail": {"status": 429, "count": 2, "retry_after": 3}}"#,
    );
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        let r = get(&url);
        assert_eq!((r.status, r.header("retry-after")), (429, Some("3")));
    }
    assert_eq!(get(&url).status, 200);
    let bad = send("POST", &format!("{}/_testkit/faults", hub.url()), &[], br#"{"nonsense": 1}"#);
    assert_eq!(bad.status, 400);
    hub.fail_next(503, 5, None);
    assert_eq!(get(&format!("{}/_testkit/faults", hub.url())).json()["fail"]["count"], 5);
    assert_eq!(send("DELETE", &format!("{}/_testkit/faults", hub.url()), &[], b"").status, 204);
    assert_eq!(hub.faults(), Faults::default());
    assert_eq!(get(&url).status, 200);
}

#[test]
fn stats_are_served_as_json_and_reset() {
    let hub = TestHub::start_blocking(big());
    let f = hub.file("org/m", "main", "w.bin").unwrap();
    let cdn = f.cdn_url.unwrap();
    send("GET", &cdn, &[("Range", "bytes=0-99")], b"");
    send("GET", &cdn, &[("Authorization", "Bearer x")], b"");
    let s: Stats = serde_json::from_slice(&get(&format!("{}/_testkit/stats", hub.url())).body).unwrap();
    assert_eq!(s.count(Route::CdnGet), 2);
    assert_eq!(s.body_bytes, 100 + (1 << 20));
    assert_eq!(s.cdn_requests_with_authorization, 1);
    assert_eq!(s.log[0].range.as_deref(), Some("bytes=0-99"));
    assert_eq!(s, hub.stats(), "control requests are not counted");
    assert_eq!(send("POST", &format!("{}/_testkit/stats/reset", hub.url()), &[], b"").status, 204);
    assert_eq!(hub.stats(), Stats::default());
}

#[test]
fn drops_corruption_and_stalls_shape_bodies() {
    let hub = TestHub::start_blocking(big());
    let f = hub.file("org/m", "main", "w.bin").unwrap();
    let cdn = f.cdn_url.unwrap();
    let all = f.content.to_vec();
    hub.drop_after(1000, 1);
    let r = get(&cdn);
    assert_eq!((r.status, r.body.as_slice()), (200, &all[..1000]), "the peer gets exactly 1000 bytes");
    assert_eq!(get(&cdn).body.len(), all.len(), "the fault fired once");
    hub.corrupt_next(1);
    let r = get(&cdn);
    assert_eq!(r.body.len(), all.len());
    assert_ne!(r.body, all);
    hub.stall_after(10, 1, Duration::from_millis(300));
    let started = Instant::now();
    let r = get(&cdn);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.body, &all[..10]);
    hub.set_latency(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(send("HEAD", &cdn, &[], b"").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn the_throttle_caps_each_connection() {
    let hub = TestHub::start_blocking(big());
    let cdn = hub.file("org/m", "main", "w.bin").unwrap().cdn_url.unwrap();
    hub.throttle(Some(4 << 20));
    let started = Instant::now();
    assert_eq!(get(&cdn).body.len(), 1 << 20);
    let secs = started.elapsed().as_secs_f64();
    assert!(secs >= 0.2, "1 MiB at 4 MiB/s took {secs:.3}s");
}

#[tokio::test]
async fn the_async_start_serves_from_the_current_runtime() {
    let hub = TestHub::start(big()).await;
    let url = hub.file("org/m", "main", "c.txt").unwrap().url;
    let body = tokio::task::spawn_blocking(move || get(&url).body).await.unwrap();
    assert_eq!(body, b"c");
    assert_eq!(hub.stats().count(Route::ResolveGet), 1);
}
