//! Request routing and the file routes: `resolve/` (direct for regular files, 302 to the
//! CDN for LFS files), the CDN itself, range handling and the Hub's error responses.

use std::sync::Arc;

use cache_core::RepoType;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::body::{Body, Pacer, empty, file_body, full};
use crate::faults::BodyPlan;
use crate::repo::{Access, HubCommit, HubFile, HubRepo};
use crate::server::{Listener, Shared};
use crate::stats::{RequestRecord, Route};

/// What a handler needs to know about the request.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) pacer: Arc<Pacer>,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) range: Option<String>,
    pub(crate) if_none_match: Option<String>,
    pub(crate) token: Option<String>,
}

impl Ctx {
    fn head(&self) -> bool {
        self.method == Method::HEAD
    }
}

/// Decodes `%XX` escapes; `None` if malformed or not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An error response the way the Hub sends it: JSON body, `X-Error-Code`, `X-Error-Message`.
pub(crate) fn hub_error(status: StatusCode, code: Option<&str>, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header("X-Error-Message", message);
    if let Some(code) = code {
        r = r.header("X-Error-Code", code);
    }
    r.body(full(body)).expect("static error response")
}

pub(crate) async fn handle(shared: Arc<Shared>, pacer: Arc<Pacer>, listener: Listener, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    if path.starts_with("/_testkit/") {
        return crate::control::handle(&shared, req).await;
    }
    let get = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = req.headers().contains_key(header::AUTHORIZATION);
    let ctx = Ctx {
        shared: Arc::clone(&shared),
        pacer,
        method: req.method().clone(),
        query: req.uri().query().unwrap_or_default().to_owned(),
        range: get(header::RANGE),
        if_none_match: get(header::IF_NONE_MATCH),
        token: get(header::AUTHORIZATION).and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned)),
        path,
    };
    let latency = shared.faults().latency(&ctx.path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let failure = shared.faults().take_failure(&ctx.path);
    let (route, response) = route(&ctx, listener, failure);
    let record = RequestRecord {
        method: ctx.method.to_string(),
        path: if ctx.query.is_empty() { ctx.path.clone() } else { format!("{}?{}", ctx.path, ctx.query) },
        route,
        range: ctx.range.clone(),
        authorization,
        status: response.status().as_u16(),
        listener: if listener == Listener::Hub { "hub" } else { "cdn" }.to_owned(),
    };
    shared.stats().record(record);
    response
}

fn route(ctx: &Ctx, listener: Listener, failure: Option<crate::faults::FailFault>) -> (Route, Response<Body>) {
    let segments: Vec<&str> = ctx.path.trim_start_matches('/').split('/').collect();
    let method_ok = ctx.method == Method::GET || ctx.method == Method::HEAD;
    let route = classify(&segments, listener, ctx.head());
    if let Some(f) = failure {
        return (route, injected_failure(f));
    }
    if !method_ok {
        return (route, hub_error(StatusCode::METHOD_NOT_ALLOWED, None, "method not allowed"));
    }
    let response = match route {
        Route::CdnGet | Route::CdnHead => cdn(ctx, segments[1]),
        Route::ResolveGet | Route::ResolveHead => resolve(ctx, &segments),
        Route::ApiRepo | Route::ApiTree => crate::api::handle(ctx, &segments),
        Route::Other => hub_error(StatusCode::NOT_FOUND, None, "Sorry, we can't find the page you are looking for."),
    };
    (route, response)
}

fn classify(segments: &[&str], listener: Listener, head: bool) -> Route {
    let pick = |h, g| if head { h } else { g };
    match (listener, segments) {
        (Listener::Cdn, ["cdn", _sha]) => pick(Route::CdnHead, Route::CdnGet),
        (Listener::Hub, ["api", kind, ..]) if kind.parse::<RepoType>().is_ok() => {
            if segments.len() > 3 && segments[3..].contains(&"tree") { Route::ApiTree } else { Route::ApiRepo }
        }
        (Listener::Hub, _) if repo_segments(segments).is_some() => pick(Route::ResolveHead, Route::ResolveGet),
        _ => Route::Other,
    }
}

/// Splits `[type/]id/resolve/rev/path…` into its parts (still percent-encoded).
fn repo_segments<'a>(segments: &'a [&'a str]) -> Option<(RepoType, String, &'a str, &'a [&'a str])> {
    let (repo_type, rest) = match segments.first() {
        Some(&"datasets") => (RepoType::Dataset, &segments[1..]),
        Some(&"spaces") => (RepoType::Space, &segments[1..]),
        _ => (RepoType::Model, segments),
    };
    let at = rest.iter().take(3).position(|s| *s == "resolve").filter(|&i| i == 1 || i == 2)?;
    let rev = rest.get(at + 1)?;
    let path = rest.get(at + 2..).filter(|p| !p.is_empty())?;
    Some((repo_type, rest[..at].join("/"), rev, path))
}

fn injected_failure(f: crate::faults::FailFault) -> Response<Body> {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = hub_error(status, None, "testkit fault: injected error");
    if let Some(secs) = f.retry_after {
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// Finds a repo the caller may read, or the Hub's answer when it may not.
pub(crate) fn authorized_repo(ctx: &Ctx, repo_type: RepoType, id: &str) -> Result<Arc<HubRepo>, Box<Response<Body>>> {
    // The Hub cannot tell "private" from "missing": anonymous callers get 401, others 404.
    let missing = || {
        let status = if ctx.token.is_some() { StatusCode::NOT_FOUND } else { StatusCode::UNAUTHORIZED };
        Box::new(hub_error(status, Some("RepoNotFound"), "Repository not found"))
    };
    let renamed =
        ctx.shared.renames.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&(repo_type, id.to_owned())).cloned();
    if let Some(new_id) = renamed {
        let location = ctx.path.replacen(&format!("/{id}/"), &format!("/{new_id}/"), 1);
        let location = if ctx.query.is_empty() { location } else { format!("{location}?{}", ctx.query) };
        let r = Response::builder().status(StatusCode::TEMPORARY_REDIRECT).header(header::LOCATION, location).body(empty());
        return Err(Box::new(r.expect("valid response")));
    }
    let repo = ctx.shared.repo(repo_type, id).ok_or_else(missing)?;
    match &repo.access {
        Access::Public => Ok(repo),
        Access::Private { token } if ctx.token.as_deref() == Some(token.as_str()) => Ok(repo),
        Access::Private { .. } => Err(missing()),
        Access::Gated { token } if ctx.token.as_deref() == Some(token.as_str()) => Ok(repo),
        Access::Gated { .. } => {
            let status = if ctx.token.is_some() { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
            Err(Box::new(hub_error(status, Some("GatedRepo"), "Access to this model is restricted. You must have access to it.")))
        }
    }
}

pub(crate) fn commit_of<'a>(repo: &'a HubRepo, rev: &str) -> Result<&'a HubCommit, Box<Response<Body>>> {
    repo.commit(rev)
        .ok_or_else(|| Box::new(hub_error(StatusCode::NOT_FOUND, Some("RevisionNotFound"), &format!("Invalid rev id: {rev}"))))
}

fn resolve(ctx: &Ctx, segments: &[&str]) -> Response<Body> {
    let Some((repo_type, id, rev, path)) = repo_segments(segments) else {
        return hub_error(StatusCode::NOT_FOUND, None, "not found");
    };
    let decoded: Option<Vec<String>> = path.iter().map(|s| percent_decode(s)).collect();
    let (Some(rev), Some(path)) = (percent_decode(rev), decoded.map(|p| p.join("/"))) else {
        return hub_error(StatusCode::BAD_REQUEST, None, "malformed percent-encoding");
    };
    let repo = match authorized_repo(ctx, repo_type, &id) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let commit = match commit_of(&repo, &rev) {
        Ok(c) => c,
        Err(resp) => return *resp,
    };
    let commit_header = commit.hash.as_str();
    let Some(file) = commit.files.get(&path) else {
        let mut r = hub_error(StatusCode::NOT_FOUND, Some("EntryNotFound"), &format!("{path} does not exist on \"{rev}\""));
        r.headers_mut().insert("X-Repo-Commit", HeaderValue::from_str(commit_header).expect("hex"));
        return r;
    };
    let etag = format!("\"{}\"", file.etag());
    let not_modified = ctx.if_none_match.as_deref().is_some_and(|v| v.trim_start_matches("W/") == etag);
    let base = Response::builder().header("X-Repo-Commit", commit_header).header(header::ETAG, &etag);
    if not_modified {
        return base.status(StatusCode::NOT_MODIFIED).body(empty()).expect("valid response");
    }
    let announced = {
        let faults = ctx.shared.faults();
        faults.announce_size.filter(|_| faults.applies_to(&ctx.path))
    };
    if let (Some(size), true) = (announced, ctx.head()) {
        // A lying server: only the headers change (a `HEAD` has no body to contradict them).
        let r = if file.sha256.is_some() {
            base.status(StatusCode::FOUND)
                .header(
                    header::LOCATION,
                    format!("{}/cdn/{}", ctx.shared.cdn_url, file.sha256.map(|s| s.to_hex()).unwrap_or_default()),
                )
                .header("X-Linked-Etag", &etag)
                .header("X-Linked-Size", size)
        } else {
            base.status(StatusCode::OK)
        };
        return r.header(header::CONTENT_LENGTH, size).body(empty()).expect("valid response");
    }
    if let Some(sha) = file.sha256 {
        let location = format!("{}/cdn/{sha}", ctx.shared.cdn_url);
        let body = format!("Found. Redirecting to {location}");
        return base
            .status(StatusCode::FOUND)
            .header(header::LOCATION, &location)
            .header("X-Linked-Etag", &etag)
            .header("X-Linked-Size", file.size())
            .header(header::CONTENT_LENGTH, body.len())
            .body(if ctx.head() { empty() } else { full(body) })
            .expect("valid response");
    }
    serve_file(ctx, file, base)
}

fn cdn(ctx: &Ctx, sha: &str) -> Response<Body> {
    let file = ctx.shared.cdn.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(sha).cloned();
    if let Some(f) = file {
        let base = Response::builder().header(header::ETAG, format!("\"{sha}\""));
        serve_file(ctx, &f, base)
    } else {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code></Error>";
        Response::builder().status(StatusCode::NOT_FOUND).body(full(body)).expect("valid response")
    }
}

/// The outcome of a `Range` header against a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAnswer {
    Full,
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses a single `bytes=` range; anything else is ignored (whole file), as RFC 9110 allows.
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> RangeAnswer {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeAnswer::Full };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.split_once('-') else { return RangeAnswer::Full };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeAnswer::Unsatisfiable,
            Ok(_) if size == 0 => RangeAnswer::Unsatisfiable,
            Ok(n) => RangeAnswer::Partial(size - n.min(size), size),
            Err(_) => RangeAnswer::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else { return RangeAnswer::Full };
    let end = if b.is_empty() {
        size
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.saturating_add(1).min(size),
            _ => return RangeAnswer::Full,
        }
    };
    if start >= size { RangeAnswer::Unsatisfiable } else { RangeAnswer::Partial(start, end) }
}

fn serve_file(ctx: &Ctx, file: &HubFile, base: hyper::http::response::Builder) -> Response<Body> {
    let size = file.size();
    let base = base.header(header::ACCEPT_RANGES, "bytes").header(header::CONTENT_TYPE, "application/octet-stream");
    // Body faults are taken (and counted down) only for bodies actually sent.
    let plan = if ctx.head() { BodyPlan::default() } else { ctx.shared.faults().take_body_plan(&ctx.path) };
    let range = if plan.ignore_ranges { None } else { ctx.range.as_deref() };
    let (status, start, end, base) = match parse_range(range, size) {
        RangeAnswer::Full => (StatusCode::OK, 0, size, base),
        RangeAnswer::Partial(s, e) => {
            (StatusCode::PARTIAL_CONTENT, s, e, base.header(header::CONTENT_RANGE, format!("bytes {s}-{}/{size}", e - 1)))
        }
        RangeAnswer::Unsatisfiable => {
            return base
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(empty())
                .expect("valid response");
        }
    };
    let base = base.status(status).header(header::CONTENT_LENGTH, end - start);
    if ctx.head() {
        return base.body(empty()).expect("valid response");
    }
    let body =
        file_body(file.content.clone(), (start, end), plan, Arc::clone(&ctx.pacer), Arc::clone(&ctx.shared), ctx.path.clone());
    base.body(body).expect("valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAnswer::{Full, Partial, Unsatisfiable};
        let cases = [
            (None, Full),
            (Some("bytes=0-"), Partial(0, 100)),
            (Some("bytes=10-19"), Partial(10, 20)),
            (Some("bytes=90-500"), Partial(90, 100)),
            (Some("bytes=-10"), Partial(90, 100)),
            (Some("bytes=-500"), Partial(0, 100)),
            (Some("bytes=100-"), Unsatisfiable),
            (Some("bytes=150-160"), Unsatisfiable),
            (Some("bytes=-0"), Unsatisfiable),
            (Some("bytes=20-10"), Full),
            (Some("bytes=0-1,5-6"), Full),
            (Some("items=0-1"), Full),
            (Some("bytes=x-"), Full),
        ];
        for (h, want) in cases {
            assert_eq!(parse_range(h, 100), want, "{h:?}");
        }
    }

    #[test]
    fn resolve_paths_split_into_repo_revision_and_file() {
        let segs = ["org", "name", "resolve", "refs%2Fpr%2F1", "a", "b.txt"];
        let (t, id, rev, path) = repo_segments(&segs).unwrap();
        assert_eq!((t, id.as_str(), rev, path), (RepoType::Model, "org/name", "refs%2Fpr%2F1", &["a", "b.txt"][..]));
        let segs = ["datasets", "squad", "resolve", "main", "x"];
        assert_eq!(repo_segments(&segs).unwrap().1, "squad");
        assert!(repo_segments(&["org", "name", "resolve", "main"]).is_none());
        assert_eq!(percent_decode("refs%2Fpr%2F1").unwrap(), "refs/pr/1");
        assert!(percent_decode("%zz").is_none());
    }
}
