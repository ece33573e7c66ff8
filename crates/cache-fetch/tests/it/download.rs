//! Plain downloads: regular and LFS files, digests, progress, resume from a partial file.

use cache_core::{DigestKinds, GitSha1, Sha256};
use cache_fetch::{DownloadRequest, NoProgress};
use cache_testkit::Route;

use crate::{BIG, Recorder, fetcher, hub, info, request, sink};

#[tokio::test]
async fn a_regular_file_is_downloaded_and_hashed() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "config.json");
    let (file, path) = sink();
    let progress = Recorder::default();
    let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, f.content.to_vec());
    assert_eq!(t.digests.git_sha1, Some(GitSha1::of(&bytes)));
    assert_eq!(t.digests.blake3, None, "the etag's digest proves the content; blake3 comes at the first verify");
    assert_eq!(t.digests.sha256, None, "only the etag's digest unless asked");
    assert_eq!((t.resumed_from, t.retries, t.parallel), (0, 0, false));
    let lines = progress.lines();
    assert_eq!(lines.first().unwrap(), "started 0");
    assert_eq!(lines.last().unwrap(), &format!("finished {}", bytes.len()));
    assert_eq!(progress.advanced(), bytes.len() as u64);
    assert_eq!(hub.stats().count(Route::ResolveGet), 1);
}

#[tokio::test]
async fn an_lfs_file_follows_the_cdn_redirect() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let (file, path) = sink();
    let req = DownloadRequest::new(&f.url).digests(DigestKinds::ALL);
    let t = fetcher().download(&req, file, &NoProgress).await.unwrap();
    let want = f.content.to_vec();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.digests.sha256, Some(Sha256::of(&want)));
    assert_eq!(t.digests.git_sha1, Some(GitSha1::of(&want)));
    assert!(t.url.starts_with(hub.cdn_url()), "{}", t.url);
    assert_eq!(t.bytes_received, BIG);
    let s = hub.stats();
    assert_eq!((s.count(Route::ResolveGet), s.count(Route::CdnGet)), (1, 1));
    assert_eq!(s.bytes_for("/cdn/"), BIG);
}

#[tokio::test]
async fn a_partial_file_on_disk_is_resumed_and_rehashed() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "tokenizer.json");
    let want = f.content.to_vec();
    let (file, path) = sink();
    std::fs::write(&path, &want[..123_456]).unwrap();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(t.resumed_from, 123_456);
    assert_eq!(t.bytes_received, want.len() as u64 - 123_456);
    assert_eq!(t.digests.git_sha1, Some(GitSha1::of(&want)), "digests cover the resumed prefix");
    let log = hub.stats().log;
    assert_eq!(log.last().unwrap().range.as_deref(), Some("bytes=123456-"));
    assert_eq!(log.last().unwrap().status, 206);
}

#[tokio::test]
async fn a_complete_file_on_disk_needs_no_request() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "tokenizer.json");
    let (file, path) = sink();
    std::fs::write(&path, f.content.to_vec()).unwrap();
    let t = fetcher().download(&request(&f), file, &NoProgress).await.unwrap();
    assert_eq!((t.resumed_from, t.bytes_received, t.requests), (f.size, 0, 0));
    assert_eq!(hub.stats().total_requests(), 0);
}

#[tokio::test]
async fn a_stale_prefix_is_discarded_when_the_etag_does_not_match() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let want = f.content.to_vec();
    let (file, path) = sink();
    let mut stale = want[..500_000].to_vec();
    stale[1000] ^= 1;
    std::fs::write(&path, &stale).unwrap();
    let progress = Recorder::default();
    let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!((t.resumed_from, t.bytes_discarded), (0, BIG));
    assert!(progress.lines().iter().any(|l| l.starts_with("restarted")));
}

#[tokio::test]
async fn a_server_that_ignores_ranges_restarts_from_zero() {
    let hub = hub().await;
    hub.ignore_ranges(true);
    let f = info(&hub, "org/model", "tokenizer.json");
    let want = f.content.to_vec();
    let (file, path) = sink();
    std::fs::write(&path, &want[..100_000]).unwrap();
    let progress = Recorder::default();
    let t = fetcher().download(&request(&f), file, &progress).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!((t.resumed_from, t.bytes_discarded), (0, 100_000));
    assert_eq!(t.requests, 1, "the 200 answer itself is used from byte 0");
    assert!(progress.lines().contains(&"restarted 100000".to_owned()));
}
