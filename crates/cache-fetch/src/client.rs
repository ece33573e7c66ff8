//! The `Fetcher` (one pooled HTTP client) and its small requests: `HEAD` and bounded `GET`
//! with a bearer token, a redirect policy, retries, and our own response type, so the Hub
//! resolver never touches reqwest.
//!
//! # Redirects and credentials
//! Redirects are followed by hand (reqwest's own policy is off): the `Authorization` header
//! is sent only to the origin (scheme, host, port) of the URL the caller gave, never to a
//! CDN or any other host a redirect points to.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::{AUTHORIZATION, HeaderMap, LOCATION, RANGE, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};

use crate::config::FetchConfig;
use crate::error::{Error, redact};
use crate::progress::{Event, NoProgress, Progress};
use crate::retry::{backoff, parse_retry_after, retryable_status};

/// A bearer token. Its `Debug` output is redacted and it is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<str>);

impl Token {
    /// Wraps a token such as `hf_…`.
    pub fn new(token: impl AsRef<str>) -> Self {
        Token(Arc::from(token.as_ref().trim()))
    }

    fn header(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Which redirects a small request follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Redirects {
    /// None: a `3xx` is returned as is (to read `Location`, `X-Linked-Etag`, …).
    None,
    /// Only relative `Location`s (same host: the Hub's renamed-repo redirects), as
    /// `huggingface_hub` and `hf-hub` do for metadata requests.
    #[default]
    Relative,
    /// Any redirect to the same origin.
    SameOrigin,
    /// Every redirect (credentials still never leave the original origin).
    All,
}

/// Options of [`Fetcher::head`] and [`Fetcher::get_small`].
#[derive(Clone, Debug)]
pub struct RequestOptions {
    /// Sent as `Authorization: Bearer …` to the original origin only.
    pub token: Option<Token>,
    /// Which redirects to follow (at most 10).
    pub redirects: Redirects,
    /// Largest body accepted by `get_small`.
    pub max_body: usize,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Retry connection errors, timeouts and 408/429/5xx answers.
    pub retry: bool,
    /// Who hears of each retry (as [`Event::Retrying`]), so that a person waiting sees
    /// why; none by default (retries are logged either way).
    pub report: Option<RetryReport>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            token: None,
            redirects: Redirects::Relative,
            max_body: 16 << 20,
            headers: Vec::new(),
            retry: true,
            report: None,
        }
    }
}

/// Where the retries of a small request are reported: [`Event::Retrying`] with `label`.
#[derive(Clone)]
pub struct RetryReport {
    /// The label of the events (what the request is for, e.g. the file it resolves).
    pub label: String,
    /// The receiver.
    pub progress: Arc<dyn Progress>,
}

impl std::fmt::Debug for RetryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryReport").field("label", &self.label).finish_non_exhaustive()
    }
}

/// Response headers, looked up case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub(crate) fn from_map(map: &HeaderMap) -> Self {
        Headers(map.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// All headers, names in lowercase.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The answer to a small request.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: Headers,
    /// The URL that answered (after the redirects followed).
    pub url: String,
    /// The body (empty for `HEAD`).
    pub body: Bytes,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the status is a redirect with a `Location`.
    pub fn is_redirect(&self) -> bool {
        (300..400).contains(&self.status) && self.header("location").is_some()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Err(Error::Http)` for 4xx/5xx statuses, with the Hub's error code and message.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if self.status >= 400 { Err(http_error(self.status, &self.headers, &self.url)) } else { Ok(self) }
    }
}

pub(crate) fn http_error(status: u16, headers: &Headers, url: &str) -> Error {
    Error::Http {
        status,
        code: headers.get("x-error-code").map(str::to_owned),
        message: headers.get("x-error-message").map(str::to_owned),
        url: redact(url),
    }
}

/// Downloads files and makes small requests. Build it once and clone it freely: clones
/// share one connection pool.
#[derive(Clone, Debug)]
pub struct Fetcher {
    /// For `http://` URLs: built without TLS roots, so no certificate is read.
    pub(crate) http: reqwest::Client,
    /// For `https://` URLs: built with the system's roots on first use (reading them
    /// costs several milliseconds, which a loopback or plain-HTTP mirror never needs).
    https: Arc<OnceLock<reqwest::Client>>,
    pub(crate) config: Arc<FetchConfig>,
}

/// One request as the retry loop sends it.
pub(crate) struct Req<'a> {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// The origin the token belongs to.
    pub(crate) token_origin: &'a Url,
    pub(crate) token: Option<&'a Token>,
    /// `start..end` (end exclusive, `None`: to the end).
    pub(crate) range: Option<(u64, Option<u64>)>,
    pub(crate) redirects: Redirects,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) timeout: Option<Duration>,
    pub(crate) retry: bool,
}

/// Redirects followed before the `3xx` itself is returned.
const MAX_REDIRECTS: usize = 10;

pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme() && a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
}

pub(crate) fn parse_url(url: &str) -> Result<Url, Error> {
    match Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(u),
        _ => Err(Error::InvalidUrl { url: redact(url) }),
    }
}

/// A transport failure, before it becomes an [`Error`].
pub(crate) fn transport_error(e: reqwest::Error, url: &Url, retries: u32, received: u64) -> Error {
    let url = redact(url.as_str());
    // reqwest's message names the URL whole (a signed query included): ours names it redacted.
    let e = e.without_url();
    if e.is_timeout() {
        Error::Timeout { url, retries, source: Box::new(e) }
    } else if e.is_connect() {
        Error::Connect { url, retries, source: Box::new(e) }
    } else {
        Error::Interrupted { url, received, retries, source: Box::new(e) }
    }
}

/// A transport failure in words, without the URL reqwest puts in its message (a signed
/// query would be in it): the kind and the innermost cause.
pub(crate) fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(next) = cause.and_then(std::error::Error::source) {
        cause = Some(next);
    }
    match cause {
        Some(c) => format!("{kind}: {c}"),
        None => kind.to_owned(),
    }
}

/// The settings both clients share.
fn builder(config: &FetchConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .user_agent(config.user_agent.clone())
        .pool_max_idle_per_host(config.parallelism.max(8) * 2)
        .tcp_nodelay(true)
}

impl Fetcher {
    /// Builds the client: rustls with the system's roots, HTTP/2 where the server offers
    /// it, pooled connections, no automatic redirects.
    pub fn new(config: FetchConfig) -> Result<Fetcher, Error> {
        // reqwest is built without a default crypto provider; ring builds faster than
        // aws-lc. Another part of the process may have installed one already: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = builder(&config).tls_certs_only([]).build().map_err(|e| Error::Client { source: Box::new(e) })?;
        Ok(Fetcher { http, https: Arc::default(), config: Arc::new(config) })
    }

    /// The client for `url`'s scheme.
    fn client_for(&self, url: &Url) -> Result<&reqwest::Client, reqwest::Error> {
        if url.scheme() == "http" {
            return Ok(&self.http);
        }
        if let Some(c) = self.https.get() {
            return Ok(c);
        }
        let built = builder(&self.config).build()?;
        Ok(self.https.get_or_init(|| built))
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Sends `HEAD url`. Any status is returned as a [`Response`] (call
    /// [`Response::error_for_status`]); transport failures and retryable statuses are
    /// retried first.
    pub async fn head(&self, url: &str, options: &RequestOptions) -> Result<Response, Error> {
        self.small(Method::HEAD, url, options).await
    }

    /// Sends `GET url` and reads a body of at most `options.max_body` bytes.
    pub async fn get_small(&self, url: &str, options: &RequestOptions) -> Result<Response, Error> {
        self.small(Method::GET, url, options).await
    }

    async fn small(&self, method: Method, url: &str, options: &RequestOptions) -> Result<Response, Error> {
        let start = parse_url(url)?;
        let req = Req {
            method: method.clone(),
            url: start.clone(),
            token_origin: &start,
            token: options.token.as_ref(),
            range: None,
            redirects: options.redirects,
            headers: &options.headers,
            timeout: Some(self.config.request_timeout),
            retry: options.retry,
        };
        let (label, progress): (&str, &dyn Progress) =
            options.report.as_ref().map_or(("", &NoProgress), |r| (r.label.as_str(), &*r.progress));
        let (mut resp, final_url, retries) = self.send(&req, label, progress).await?;
        let headers = Headers::from_map(resp.headers());
        let mut body = BytesMut::new();
        if method != Method::HEAD {
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > options.max_body {
                            let reason = format!("the body is larger than {} bytes", options.max_body);
                            return Err(Error::Protocol { url: redact(final_url.as_str()), reason });
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(transport_error(e, &final_url, retries, body.len() as u64)),
                }
            }
        }
        Ok(Response { status: resp.status().as_u16(), headers, url: final_url.to_string(), body: body.freeze() })
    }

    /// Sends one request, following redirects by policy, retrying transient failures.
    /// Returns the response, the URL that answered, and the retries made.
    pub(crate) async fn send(
        &self,
        req: &Req<'_>,
        label: &str,
        progress: &dyn Progress,
    ) -> Result<(reqwest::Response, Url, u32), Error> {
        let mut attempt = 0u32;
        loop {
            let outcome = self.send_following(req).await;
            let (reason, retry_after) = match &outcome {
                Ok((resp, _)) if req.retry && retryable_status(resp.status().as_u16()) => {
                    let after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    (format!("HTTP {}", resp.status().as_u16()), after)
                }
                Ok(_) => break outcome.map(|(r, u)| (r, u, attempt)),
                Err(e) if req.retry && (e.is_timeout() || e.is_connect() || e.is_request()) => (transport_reason(e), None),
                Err(_) => break outcome.map(|(r, u)| (r, u, attempt)),
            };
            if attempt >= self.config.retries {
                break outcome.map(|(r, u)| (r, u, attempt));
            }
            attempt += 1;
            let delay = backoff(&self.config, attempt, retry_after);
            tracing::warn!(url = %redact(req.url.as_str()), attempt, delay_ms = delay.as_millis(), %reason, "retrying request");
            progress.event(&Event::Retrying { label, attempt, delay, reason: &reason });
            tokio::time::sleep(delay).await;
        }
        .map_err(|e| transport_error(e, &req.url, attempt, 0))
    }

    async fn send_following(&self, req: &Req<'_>) -> Result<(reqwest::Response, Url), reqwest::Error> {
        let mut url = req.url.clone();
        let mut hop = 0;
        loop {
            let mut b = self.client_for(&url)?.request(req.method.clone(), url.clone());
            if let Some(t) = req.token.filter(|_| same_origin(req.token_origin, &url)) {
                let mut value = reqwest::header::HeaderValue::from_str(&t.header())
                    .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
                value.set_sensitive(true);
                b = b.header(AUTHORIZATION, value);
            }
            if let Some((start, end)) = req.range {
                let end = end.map(|e| (e - 1).to_string()).unwrap_or_default();
                b = b.header(RANGE, format!("bytes={start}-{end}"));
            }
            for (k, v) in req.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(t) = req.timeout {
                b = b.timeout(t);
            }
            let resp = b.send().await?;
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|l| l.to_str().ok())
                .filter(|_| resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED)
                .map(|l| (l.to_owned(), url.join(l)));
            let Some((location, Ok(target))) = next else { return Ok((resp, url)) };
            let relative = !location.contains("://") && !location.starts_with("//");
            let follow = match req.redirects {
                Redirects::None => false,
                Redirects::Relative => relative,
                Redirects::SameOrigin => same_origin(&url, &target),
                Redirects::All => true,
            };
            if !follow || hop == MAX_REDIRECTS {
                return Ok((resp, url));
            }
            tracing::debug!(from = %redact(url.as_str()), to = %redact(target.as_str()), "following redirect");
            hop += 1;
            url = target;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_client_is_built_once_and_only_for_https() {
        let f = Fetcher::new(FetchConfig::default()).unwrap();
        let http: Url = "http://127.0.0.1:9/x".parse().unwrap();
        assert!(std::ptr::eq(f.client_for(&http).unwrap(), &raw const f.http));
        assert!(f.https.get().is_none(), "a plain-HTTP request reads no certificates");
        let https: Url = "https://example.invalid/x".parse().unwrap();
        let first: *const reqwest::Client = f.client_for(&https).unwrap();
        assert!(!std::ptr::eq(first, &raw const f.http));
        assert!(std::ptr::eq(f.client_for(&https).unwrap(), first), "built once");
        assert!(std::ptr::eq(f.clone().client_for(&https).unwrap(), first), "shared by clones");
    }
}
