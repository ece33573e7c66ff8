//! Small metadata requests and credentials across redirects.

use cache_fetch::{DownloadRequest, NoProgress, Redirects, RequestOptions, Token};
use cache_testkit::Route;

use crate::{BIG, fetcher, hub, info, sink, splitting_fetcher};

#[tokio::test]
async fn head_shows_the_lfs_redirect_without_following_it() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "model.safetensors");
    let r = fetcher().head(&f.url, &RequestOptions::default()).await.unwrap();
    assert_eq!(r.status, 302);
    assert!(r.is_redirect());
    assert_eq!(r.header("X-LINKED-ETAG"), Some(format!("\"{}\"", f.etag).as_str()));
    assert_eq!(r.header("x-linked-size"), Some(BIG.to_string().as_str()));
    assert_eq!(r.header("x-repo-commit"), Some(f.commit.as_str()));
    assert!(r.header("location").unwrap().starts_with(hub.cdn_url()));
    assert_eq!(r.url, f.url);
    assert!(r.body.is_empty());
    assert_eq!(hub.stats().count(Route::CdnHead), 0);
}

#[tokio::test]
async fn relative_redirects_are_followed_for_metadata() {
    let hub = hub().await;
    let f = info(&hub, "org/model", "config.json");
    let r = fetcher().head(&f.url, &RequestOptions::default()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some(format!("\"{}\"", f.etag).as_str()));
    let all = RequestOptions { redirects: Redirects::All, ..RequestOptions::default() };
    let lfs = info(&hub, "org/model", "model.safetensors");
    let r = fetcher().head(&lfs.url, &all).await.unwrap();
    assert_eq!((r.status, r.url.starts_with(hub.cdn_url())), (200, true));
}

#[tokio::test]
async fn get_small_reads_json_and_bounds_the_body() {
    let hub = hub().await;
    let url = format!("{}/api/models/org/model/revision/main", hub.url());
    let r = fetcher().get_small(&url, &RequestOptions::default()).await.unwrap().error_for_status().unwrap();
    assert!(r.text().contains("\"siblings\""), "{}", r.text());
    let tiny = RequestOptions { max_body: 10, ..RequestOptions::default() };
    let e = fetcher().get_small(&url, &tiny).await.unwrap_err();
    assert!(e.to_string().contains("larger than 10 bytes"), "{e}");
    let missing = format!("{}/api/models/org/nope", hub.url());
    let r = fetcher().get_small(&missing, &RequestOptions::default()).await.unwrap();
    assert_eq!((r.status, r.header("x-error-code")), (401, Some("RepoNotFound")));
    let e = r.error_for_status().unwrap_err();
    assert!(e.hint().unwrap().contains("HF_TOKEN"), "{e}");
}

#[tokio::test]
async fn small_requests_retry_server_errors() {
    let hub = hub().await;
    hub.fail_next(503, 2, None);
    let r = fetcher().get_small(&format!("{}/api/models/org/model", hub.url()), &RequestOptions::default()).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(hub.stats().count(Route::ApiRepo), 3);
    hub.fail_next(500, 2, None);
    let once = RequestOptions { retry: false, ..RequestOptions::default() };
    let r = fetcher().get_small(&format!("{}/api/models/org/model", hub.url()), &once).await.unwrap();
    assert_eq!(r.status, 500);
}

#[tokio::test]
async fn the_token_never_leaves_the_hub_origin() {
    let hub = hub().await;
    let f = info(&hub, "org/private", "w.bin");
    // Without the token the private repo does not exist.
    let (file, _path) = sink();
    let e = fetcher().download(&DownloadRequest::new(&f.url), file, &NoProgress).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    hub.reset_stats();
    let token = Some(Token::new("hf_secret"));
    let req = DownloadRequest::new(&f.url).token(token.clone()).expected_size(f.size).expected_etag(f.etag);
    let (file, path) = sink();
    let t = splitting_fetcher().download(&req, file, &NoProgress).await.unwrap();
    assert!(t.parallel);
    assert_eq!(std::fs::read(&path).unwrap(), f.content.to_vec());
    let s = hub.stats();
    assert!(s.count(Route::CdnGet) > 1);
    assert_eq!(s.cdn_requests_with_authorization, 0, "Authorization crossed to the CDN: {:?}", s.log);
    assert!(s.log.iter().filter(|r| r.route == Route::ResolveGet).all(|r| r.authorization));
    // Same for metadata requests following every redirect.
    hub.reset_stats();
    let opts = RequestOptions { token, redirects: Redirects::All, ..RequestOptions::default() };
    assert_eq!(fetcher().head(&f.url, &opts).await.unwrap().status, 200);
    assert_eq!(hub.stats().cdn_requests_with_authorization, 0);
    assert_eq!(format!("{:?}", Token::new("hf_secret")), "Token(***)");
}

#[tokio::test]
async fn renamed_repos_are_followed_by_relative_redirects() {
    let hub = hub().await;
    hub.rename("org/old-name", &cache_core::Repo::model("org/model".parse().unwrap()));
    let f = info(&hub, "org/model", "model.safetensors");
    let old = f.url.replace("org/model", "org/old-name");
    let r = fetcher().head(&old, &RequestOptions::default()).await.unwrap();
    assert_eq!((r.status, r.url.as_str()), (302, f.url.as_str()), "followed the relative 307, stopped at the CDN 302");
    assert_eq!(r.header("x-linked-size"), Some(BIG.to_string().as_str()));
    let none = RequestOptions { redirects: Redirects::None, ..RequestOptions::default() };
    let r = fetcher().head(&old, &none).await.unwrap();
    assert_eq!((r.status, r.header("location")), (307, Some("/org/model/resolve/main/model.safetensors")));
    let api = format!("{}/api/models/org/old-name/revision/main", hub.url());
    let r = fetcher().get_small(&api, &RequestOptions::default()).await.unwrap();
    assert!(r.text().contains("\"id\":\"org/model\""), "{}", r.text());
}
