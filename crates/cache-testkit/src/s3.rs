//! A real S3 API server for tests: `moto` (`python -m moto.server`) from the project's
//! Python venv, on a free loopback port, killed (by its PID) when dropped; and
//! [`S3Proxy`], a loopback proxy in front of it that counts the requests it forwards
//! (method and key) and injects faults (down: `503` to everything; denied writes: `403`;
//! stall: object bodies stop after some bytes and never finish), so tests observe the GETs that really reach
//! the store.
//!
//! Tests that need the server fail with the reason and the fixing command when the venv
//! or moto is missing (`cargo xtask py-env` installs it); they never skip.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::python;

/// The bucket every fixture creates.
pub const BUCKET: &str = "team-models";

/// A moto S3 server. Dropping it kills the process.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
}

/// The venv interpreter with `moto` importable, or why there is none.
pub fn moto_interpreter() -> Result<std::path::PathBuf, String> {
    let python = python::interpreter()?;
    let ok = Command::new(&python).args(["-c", "import moto.server"]).output().is_ok_and(|o| o.status.success());
    if ok {
        Ok(python)
    } else {
        Err(format!("`{}` cannot import moto: run `cargo xtask py-env` (it installs `moto[server]`)", python.display()))
    }
}

impl MotoServer {
    /// Starts moto and creates [`BUCKET`].
    ///
    /// # Panics
    /// When Python or moto is missing (with the command that installs them), or when the
    /// server does not answer within 60 s.
    pub fn start() -> MotoServer {
        let python = moto_interpreter().unwrap_or_else(|e| panic!("this test needs the moto S3 server: {e}"));
        // moto binds the port itself (`-p 0`) and says which one on stderr: a port chosen
        // here and released could be taken by another test's server first, and then both
        // tests would share one bucket.
        let mut child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start `python -m moto.server`");
        let stderr = child.stderr.take().expect("moto's stderr");
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        // Reads the address line, then drains the request log so moto never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
                if let Some(port) = line.split("Running on http://127.0.0.1:").nth(1).and_then(|p| p.trim().parse().ok())
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("moto did not say which port it listens on within 60 s")
        });
        let server = MotoServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while request(port, "GET", "/", &[]).is_err() {
            assert!(Instant::now() < deadline, "moto did not answer on 127.0.0.1:{port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, _) = request(port, "PUT", &format!("/{BUCKET}"), &[]).expect("create the bucket");
        assert!(status < 300, "creating the bucket answered {status}");
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `AWS_*` variables that reach this server (at `endpoint`, e.g. a proxy's).
    pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// The `AWS_*` variables that reach this server directly.
    pub fn env(&self) -> Vec<(String, String)> {
        Self::env_for(&self.endpoint())
    }

    /// Writes an object (moto takes unsigned requests).
    ///
    /// # Panics
    /// When the server refuses it.
    pub fn put(&self, key: &str, body: &[u8]) {
        let (status, _) = request(self.port, "PUT", &format!("/{BUCKET}/{key}"), body).expect("put an object");
        assert!(status < 300, "PUT {key} answered {status}");
    }

    /// An object's bytes, if it exists.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let (status, body) = request(self.port, "GET", &format!("/{BUCKET}/{key}"), &[]).ok()?;
        (status == 200).then_some(body)
    }

    /// Every object: key → (size, `ETag`), as the bucket lists them.
    ///
    /// # Panics
    /// When the listing fails.
    pub fn list(&self) -> BTreeMap<String, (u64, String)> {
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/{BUCKET}?list-type=2");
            if let Some(t) = &token {
                path.push_str("&continuation-token=");
                path.push_str(&t.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D"));
            }
            let (status, body) = request(self.port, "GET", &path, &[]).expect("list the bucket");
            assert_eq!(status, 200, "listing answered {status}");
            let xml = String::from_utf8_lossy(&body).into_owned();
            for item in xml.split("<Contents>").skip(1) {
                let field = |name: &str| {
                    item.split(&format!("<{name}>"))
                        .nth(1)
                        .and_then(|r| r.split(&format!("</{name}>")).next())
                        .unwrap_or_default()
                };
                let etag = field("ETag").replace("&quot;", "\"").replace("&#34;", "\"");
                out.insert(field("Key").to_owned(), (field("Size").parse().unwrap_or(0), etag));
            }
            token = xml
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|r| r.split("</NextContinuationToken>").next())
                .map(str::to_owned);
            if token.is_none() {
                return out;
            }
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; the status and body.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    // moto checks that requests are authenticated (private objects), not the signature.
    let auth = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\n";
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let header = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = header.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut rest = raw[split + 4..].to_vec();
    if header.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        rest = dechunk(&rest);
    }
    Ok((status, rest))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// What the proxy forwarded: `(method, path)` → count.
#[derive(Debug, Default)]
struct ProxyState {
    counts: Mutex<BTreeMap<(String, String), u64>>,
    down: AtomicBool,
    deny_writes: AtomicBool,
    /// Object bodies stop after this many bytes (`u64::MAX`: never).
    stall_after: AtomicU64,
}

/// A counting, fault-injecting proxy in front of an S3 server. Dropping it stops it.
#[derive(Debug)]
pub struct S3Proxy {
    state: Arc<ProxyState>,
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type ProxyBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

impl S3Proxy {
    /// Starts a proxy to `127.0.0.1:<upstream>` on a runtime of its own.
    ///
    /// # Panics
    /// When the runtime cannot be built or no loopback port can be bound.
    pub fn start(upstream: u16) -> S3Proxy {
        let state = Arc::new(ProxyState { stall_after: AtomicU64::new(u64::MAX), ..ProxyState::default() });
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let port = listener.local_addr().expect("the proxy's address").port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("testkit-s3-proxy".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    let accept = async {
                        loop {
                            let Ok((stream, _)) = listener.accept().await else { continue };
                            let state = Arc::clone(&shared);
                            tokio::spawn(async move {
                                let svc = service_fn(move |req| forward(Arc::clone(&state), upstream, req));
                                let _ =
                                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                            });
                        }
                    };
                    tokio::select! {
                        () = accept => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_background();
            })
            .expect("start the proxy thread");
        S3Proxy { state, port, stop: Some(stop), thread: Some(thread) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests forwarded with `method` whose path ends with `suffix` (a key).
    pub fn count(&self, method: &str, suffix: &str) -> u64 {
        let counts = self.state.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.iter().filter(|((m, p), _)| m == method && p.ends_with(suffix)).map(|(_, n)| n).sum()
    }

    /// Requests forwarded with `method`, whatever the path.
    pub fn count_method(&self, method: &str) -> u64 {
        self.count(method, "")
    }

    /// Every request so far: `(method, path)` → count.
    pub fn counts(&self) -> BTreeMap<(String, String), u64> {
        self.state.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Answers `503` to everything while `down`.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Answers `403 AccessDenied` to every write (`PUT`, `POST`) while `deny`, as a bucket
    /// does to read-only credentials.
    pub fn deny_writes(&self, deny: bool) {
        self.state.deny_writes.store(deny, Ordering::SeqCst);
    }

    /// Object bodies stop after `bytes` and never finish (`None`: normal).
    pub fn stall_after(&self, bytes: Option<u64>) {
        self.state.stall_after.store(bytes.unwrap_or(u64::MAX), Ordering::SeqCst);
    }
}

impl Drop for S3Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn full(status: u16, body: Bytes) -> hyper::Response<ProxyBody> {
    let mut r = hyper::Response::new(http_body_util::Full::new(body).map_err(|never| match never {}).boxed());
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r
}

async fn forward(
    state: Arc<ProxyState>,
    upstream: u16,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<ProxyBody>, std::convert::Infallible> {
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    *state.counts.lock().unwrap_or_else(PoisonError::into_inner).entry((method.clone(), path)).or_default() += 1;
    if state.down.load(Ordering::SeqCst) {
        return Ok(full(503, Bytes::from_static(b"<Error><Code>ServiceUnavailable</Code></Error>")));
    }
    if state.deny_writes.load(Ordering::SeqCst) && (method == "PUT" || method == "POST") {
        let body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>";
        return Ok(full(403, Bytes::from_static(body.as_bytes())));
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = body.collect().await.map(http_body_util::Collected::to_bytes) else {
        return Ok(full(502, Bytes::new()));
    };
    let Ok(stream) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return Ok(full(502, Bytes::new()));
    };
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
        return Ok(full(502, Bytes::new()));
    };
    tokio::spawn(conn);
    let mut out = hyper::Request::from_parts(parts, http_body_util::Full::new(body));
    out.headers_mut()
        .insert(hyper::header::HOST, hyper::header::HeaderValue::from_str(&format!("127.0.0.1:{upstream}")).expect("a host"));
    let Ok(resp) = sender.send_request(out).await else {
        return Ok(full(502, Bytes::new()));
    };
    let (parts, body) = resp.into_parts();
    let stall = state.stall_after.load(Ordering::SeqCst);
    let body: ProxyBody = if method == "GET" && stall != u64::MAX && parts.status.is_success() {
        let bytes = body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default();
        let head = bytes.slice(..usize::try_from(stall).unwrap_or(usize::MAX).min(bytes.len()));
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(hyper::body::Frame::data(head))])
            .chain(futures_util::stream::pending::<Result<hyper::body::Frame<Bytes>, std::io::Error>>());
        BodyExt::boxed(http_body_util::StreamBody::new(stream))
    } else {
        body.map_err(std::io::Error::other).boxed()
    };
    Ok(hyper::Response::from_parts(parts, body))
}
