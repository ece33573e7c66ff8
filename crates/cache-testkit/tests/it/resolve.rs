//! `resolve/` and the CDN: headers, redirects, ranges, errors, access control.

use cache_core::{Etag, GitSha1, Sha256};
use cache_testkit::{Content, RepoSpec, Route, TestHub};

use crate::{get, repos, send};

#[test]
fn regular_files_are_served_with_the_hub_headers() {
    let hub = TestHub::start_blocking(repos());
    let f = hub.file("org/model", "main", "config.json").unwrap();
    for method in ["GET", "HEAD"] {
        let r = send(method, &f.url, &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("etag"), Some(format!("\"{}\"", GitSha1::of(br#"{"a": 1}"#)).as_str()));
        assert_eq!(r.header("x-repo-commit"), Some(f.commit.as_str()));
        assert_eq!(r.header("content-length"), Some("8"));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("x-xet-hash").is_none());
        assert_eq!(r.body, if method == "GET" { br#"{"a": 1}"#.to_vec() } else { Vec::new() });
    }
    let s = hub.stats();
    assert_eq!((s.count(Route::ResolveGet), s.count(Route::ResolveHead)), (1, 1));
    assert_eq!(s.body_bytes, 8);
}

#[test]
fn lfs_files_redirect_to_the_cdn_on_another_origin() {
    let hub = TestHub::start_blocking(repos());
    let f = hub.file("org/model", "main", "model.safetensors").unwrap();
    let sha = Sha256::of(&f.content.to_vec());
    assert_eq!(f.etag, Etag::Sha256(sha));
    let r = send("HEAD", &f.url, &[], b"");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("x-linked-etag"), Some(format!("\"{sha}\"").as_str()));
    assert_eq!(r.header("x-linked-size"), Some("200000"));
    assert_eq!(r.header("x-repo-commit"), Some(f.commit.as_str()));
    let location = r.header("location").unwrap();
    assert_eq!(Some(location), f.cdn_url.as_deref());
    assert!(location.starts_with(hub.cdn_url()) && hub.cdn_url() != hub.url());
    let body = get(location);
    assert_eq!((body.status, body.body.len()), (200, 200_000));
    assert_eq!(body.body, f.content.to_vec());
    assert_eq!(body.header("etag"), Some(format!("\"{sha}\"").as_str()));
    // The CDN serves only CDN paths; the hub does not serve them.
    assert_eq!(get(&format!("{}/cdn/{sha}", hub.url())).status, 404);
    assert_eq!(get(&f.url.replace(hub.url(), hub.cdn_url())).status, 404);
}

#[test]
fn ranges_answer_206_or_416() {
    let hub = TestHub::start_blocking(repos());
    let f = hub.file("org/model", "main", "model.safetensors").unwrap();
    let url = f.cdn_url.unwrap();
    let all = f.content.to_vec();
    let r = send("GET", &url, &[("Range", "bytes=1000-1999")], b"");
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 1000-1999/200000")));
    assert_eq!(r.body, &all[1000..2000]);
    let r = send("GET", &url, &[("Range", "bytes=199990-")], b"");
    assert_eq!((r.status, r.body.as_slice()), (206, &all[199_990..]));
    let r = send("GET", &url, &[("Range", "bytes=200000-")], b"");
    assert_eq!((r.status, r.header("content-range")), (416, Some("bytes */200000")));
    let r = send("GET", &url, &[("Range", "bytes=0-1,5-6")], b"");
    assert_eq!((r.status, r.body.len()), (200, 200_000));
    hub.ignore_ranges(true);
    assert_eq!(send("GET", &url, &[("Range", "bytes=5-")], b"").status, 200);
}

#[test]
fn revisions_branches_tags_and_prs_resolve() {
    let hub = TestHub::start_blocking(repos());
    let main = hub.file("org/model", "main", "config.json").unwrap();
    let dev = hub.file("org/model", "dev", "config.json").unwrap();
    assert_ne!(main.commit, dev.commit);
    let base = format!("{}/org/model/resolve", hub.url());
    for (rev, body, commit) in [
        ("v1", r#"{"a": 1}"#, main.commit),
        ("dev", r#"{"a": 2}"#, dev.commit),
        ("refs%2Fpr%2F1", r#"{"a": 2}"#, dev.commit),
        (main.commit.as_str(), r#"{"a": 1}"#, main.commit),
    ] {
        let r = get(&format!("{base}/{rev}/config.json"));
        assert_eq!((r.status, r.body.as_slice()), (200, body.as_bytes()), "{rev}");
        assert_eq!(r.header("x-repo-commit"), Some(commit.as_str()));
    }
    assert_eq!(get(&format!("{base}/main/sub/dir/notes.txt")).body, b"notes");
    assert_eq!(get(&format!("{}/datasets/org/data/resolve/main/train.csv", hub.url())).body, b"a,b\n1,2\n");
    assert_eq!(get(&format!("{}/spaces/org/app/resolve/main/app.py", hub.url())).body, b"print(1)");
    assert_eq!(get(&format!("{}/solo/resolve/main/x.txt", hub.url())).body, b"x");
    let etag = format!("\"{}\"", main.etag);
    let r = send("HEAD", &main.url, &[("If-None-Match", &etag)], b"");
    assert_eq!((r.status, r.header("x-repo-commit")), (304, Some(main.commit.as_str())));
}

#[test]
fn errors_carry_the_hub_error_codes() {
    let hub = TestHub::start_blocking(repos());
    let u = hub.url();
    let cases = [
        (format!("{u}/org/model/resolve/main/nope.txt"), &[][..], 404, Some("EntryNotFound")),
        (format!("{u}/org/model/resolve/v9/config.json"), &[][..], 404, Some("RevisionNotFound")),
        (format!("{u}/org/none/resolve/main/a.txt"), &[][..], 401, Some("RepoNotFound")),
        (format!("{u}/org/none/resolve/main/a.txt"), &[("Authorization", "Bearer hf_x")][..], 404, Some("RepoNotFound")),
        (format!("{u}/org/secret/resolve/main/a.txt"), &[][..], 401, Some("RepoNotFound")),
        (format!("{u}/org/secret/resolve/main/a.txt"), &[("Authorization", "Bearer hf_x")][..], 404, Some("RepoNotFound")),
        (format!("{u}/org/secret/resolve/main/a.txt"), &[("Authorization", "Bearer hf_ok")][..], 200, None),
        (format!("{u}/org/gated/resolve/main/a.txt"), &[][..], 401, Some("GatedRepo")),
        (format!("{u}/org/gated/resolve/main/a.txt"), &[("Authorization", "Bearer hf_x")][..], 403, Some("GatedRepo")),
        (format!("{u}/org/gated/resolve/main/a.txt"), &[("Authorization", "Bearer hf_ok")][..], 200, None),
        (format!("{u}/nothing/here"), &[][..], 404, None),
    ];
    for (url, headers, status, code) in cases {
        let r = send("GET", &url, headers, b"");
        assert_eq!((r.status, r.header("x-error-code")), (status, code), "{url} {headers:?}");
        if status >= 400 {
            assert!(r.header("x-error-message").is_some());
        }
    }
    let r = get(&format!("{u}/org/model/resolve/main/nope.txt"));
    assert!(r.header("x-repo-commit").is_some(), "EntryNotFound names the commit for `.no_exist`");
}

#[test]
fn repos_can_be_replaced_while_running() {
    let hub = TestHub::start_blocking([RepoSpec::model("org/live").file("a.txt", "one")]);
    let before = hub.file("org/live", "main", "a.txt").unwrap();
    hub.put_repo(RepoSpec::model("org/live").file("a.txt", "one").commit().file("a.txt", Content::from("two")).commit());
    let after = hub.file("org/live", "main", "a.txt").unwrap();
    assert_ne!(before.commit, after.commit);
    assert_eq!(get(&after.url).body, b"two");
    hub.remove_repo(&"org/live".parse::<cache_core::RepoId>().map(cache_core::Repo::model).unwrap());
    assert_eq!(get(&after.url).status, 401);
}
