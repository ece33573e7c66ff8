//! Every fault of the testkit: drops, error bursts, 404, wrong bodies, stalls.

use std::time::{Duration, Instant};

use cache_fetch::{Error, Fetcher, NoProgress};
use cache_testkit::Route;

use crate::{BIG, Recorder, fetcher, hub, info, request, sink, splitting_fetcher};

#[tokio::test]
async fn drops_at_several_offsets_resume_without_resending() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "tokenizer.json");
    let want = f.content.to_vec();
    for (after, count) in [(1_u64, 1_u32), (70_000, 3), (299_999, 1)] {
        hub.reset_stats();
        hub.drop_after(after, count);
        let (file, path) = sink();
        let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), want, "drop after {after}");
        assert_eq!(t.retries, count);
        let sent = hub.stats().body_bytes;
        assert!(sent * 100 <= f.size * 101, "drop after {after}: {sent} bytes sent for {}", f.size);
        assert!(hub.stats().count(Route::ResolveGet) > u64::from(count));
    }
}

#[tokio::test]
async fn drops_during_a_parallel_lfs_transfer_resume_each_range() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    hub.drop_after(100_000, 5);
    let (file, path) = sink();
    let t = splitting_fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert!(t.parallel);
    assert_eq!(t.retries, 5);
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    let sent = hub.stats().bytes_for("/cdn/");
    assert!(sent * 100 <= BIG * 101, "{sent} bytes sent for {BIG}");
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "config.json");
    hub.fail_next(429, 1, Some(1));
    let (file, path) = sink();
    let progress = Recorder::default();
    let started = Instant::now();
    let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    assert_eq!((t.retries, t.requests), (1, 2));
    assert!(progress.lines().contains(&"retrying HTTP 429".to_owned()));
}

#[tokio::test]
async fn bursts_of_server_errors_are_retried() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    for status in [500, 502, 503, 504] {
        hub.reset_stats();
        hub.fail_next(status, 3, None);
        let (file, path) = sink();
        let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec(), "{status}");
        assert!(t.retries >= 3, "{status}: {t:?}");
    }
    // More failures than retries: the error names the status.
    hub.fail_next(503, 10, None);
    let (file, _path) = sink();
    let e = fetcher().download(&request(&f), file, &NoProgress).await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 503, .. }), "{e}");
    assert!(e.hint().unwrap().contains("retry later"));
}

#[tokio::test]
async fn not_found_fails_at_once_with_the_hub_error_code() {
    let hub = hub().await;
    let mut f = info(&hub, "org/model", "config.json");
    f.url = f.url.replace("config.json", "missing.json");
    let (file, _path) = sink();
    let e = fetcher().download(&request(&f), file, &NoProgress).await.unwrap_err();
    match &e {
        Error::Http { status: 404, code: Some(code), .. } => assert_eq!(code, "EntryNotFound"),
        other => panic!("{other:?}"),
    }
    assert_eq!(hub.stats().total_requests(), 1, "a 404 is never retried");
    for (url, code) in [
        (format!("{}/org/nope/resolve/main/a", hub.url()), "RepoNotFound"),
        (format!("{}/org/model/resolve/v9/config.json", hub.url()), "RevisionNotFound"),
    ] {
        hub.reset_stats();
        let (file, _path) = sink();
        let e = fetcher().download(&cache_fetch::DownloadRequest::new(url), file, &NoProgress).await.unwrap_err();
        assert!(e.to_string().contains(code), "{e}");
        assert!(!e.is_transient());
        assert_eq!(hub.stats().total_requests(), 1);
    }
}

#[tokio::test]
async fn a_body_corrupted_once_is_downloaded_again_in_the_same_call() {
    let hub = hub().await;
    for path in ["config.json", "model.safetensors"] {
        let f = info(&hub, "org/model", path);
        hub.corrupt_next(1);
        let (file, sink_path) = sink();
        let progress = Recorder::default();
        let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
        assert_eq!(std::fs::read(&sink_path).unwrap(), f.content.to_vec(), "{path}");
        assert_eq!(t.digests.size, f.size);
        assert!(t.bytes_discarded > 0, "{path}: the corrupt copy was thrown away");
        assert!(progress.lines().iter().any(|l| l.starts_with("restarted ")), "{path}: {:?}", progress.lines());
    }
}

#[tokio::test]
async fn a_body_corrupted_every_time_is_a_checksum_mismatch_after_one_retry() {
    let hub = hub().await;
    for path in ["config.json", "model.safetensors"] {
        let f = info(&hub, "org/model", path);
        hub.corrupt_next(1000);
        hub.reset_stats();
        let (file, _path) = sink();
        let e = fetcher().download(&request(&f), file, &NoProgress).await.unwrap_err();
        match &e {
            Error::ChecksumMismatch { expected, actual, .. } => {
                assert_eq!(expected, &f.etag.to_string());
                assert_ne!(actual, expected);
            }
            other => panic!("{path}: {other:?}"),
        }
        assert!(e.hint().unwrap().contains("again"));
        let whole = hub.stats().bytes_for(f.cdn_url.as_deref().map_or(path, |u| u.rsplit('/').next().unwrap()));
        assert_eq!(whole, 2 * f.size, "{path}: downloaded twice, not more");
        hub.clear_faults();
    }
}

#[tokio::test]
async fn a_stalled_body_times_out_and_resumes() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "tokenizer.json");
    hub.stall_after(150_000, 1, Duration::from_secs(5));
    let (file, path) = sink();
    let progress = Recorder::default();
    let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    assert_eq!(t.retries, 1);
    assert!(progress.lines().contains(&"retrying read timed out".to_owned()), "{:?}", progress.lines());
    assert_eq!(hub.stats().log.last().unwrap().range.as_deref(), Some("bytes=150000-299999"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x", l.local_addr().unwrap())
    };
    let (file, _path) = sink();
    let e = fetcher().download(&cache_fetch::DownloadRequest::new(url), file, &NoProgress).await.unwrap_err();
    assert!(matches!(e, Error::Connect { retries: 4, .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("HF_ENDPOINT"));
}

/// Everything an error shows: its message, its `Debug` form, every cause and the hint.
fn shown(e: &Error) -> String {
    let mut out = format!("{e}\n{e:?}\n{}", e.hint().unwrap_or_default());
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out = format!("{out}\n{c}\n{c:?}");
        cause = c.source();
    }
    out
}

#[tokio::test]
async fn a_password_in_the_url_is_never_shown_in_errors() {
    let hub = hub().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let missing = hub.url().replace("http://", "http://user:secret@") + "/org/model/resolve/main/missing.json?sig=signed";
    for (url, what) in [(format!("http://user:secret@{closed}/x?sig=signed"), "connection refused"), (missing, "404")] {
        let (file, _path) = sink();
        let e = fetcher().download(&cache_fetch::DownloadRequest::new(&url), file, &NoProgress).await.unwrap_err();
        let text = shown(&e);
        assert!(!text.contains("secret") && !text.contains("signed"), "{what}: {text}");
        assert!(text.contains("http://***@127.0.0.1:"), "{what}: the URL is still named: {text}");
        let e = fetcher()
            .head(&url, &cache_fetch::RequestOptions::default())
            .await
            .and_then(cache_fetch::Response::error_for_status)
            .unwrap_err();
        assert!(!shown(&e).contains("secret"), "{what}: {}", shown(&e));
    }
}

/// `download_timeout` bounds the whole transfer of a file that keeps receiving bytes (so
/// the read timeout never fires); what it wrote is kept and a later call resumes it.
#[tokio::test]
async fn the_download_timeout_bounds_a_slow_but_steady_transfer() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "tokenizer.json");
    hub.throttle(Some(100_000));
    let mut config = fetcher().config().clone();
    config.download_timeout = Some(Duration::from_millis(600));
    config.read_timeout = Duration::from_secs(5);
    config.retries = 0;
    let (file, path) = sink();
    let e = Fetcher::new(config.clone()).unwrap().download(&request(&f), file.clone(), &NoProgress).await.unwrap_err();
    let Error::DownloadTimeout { received, limit, .. } = &e else { panic!("{e:?}") };
    assert_eq!(*limit, Duration::from_millis(600));
    assert!(*received > 0 && *received < f.size, "{e}");
    assert!(e.to_string().contains("did not finish within"), "{e}");
    assert!(e.hint().unwrap().contains("download_timeout"));
    let kept = std::fs::metadata(&path).unwrap().len();
    assert!(kept > 0, "what arrived is kept for a resume");

    hub.throttle(None);
    config.download_timeout = None;
    let t = Fetcher::new(config).unwrap().download(&request(&f), file, &NoProgress).await.unwrap();
    assert_eq!(t.resumed_from, kept);
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
}
