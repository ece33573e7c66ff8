//! One tier: its object store, mode (demoted to `ro` on a denied write), format probe
//! (once per process), timeouts, circuit breaker and counters. Every call to the store
//! goes through [`Tier::call`], which applies all of these in one place.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::breaker::Breaker;
use crate::counters::{Counters, TierStats};
use crate::error::Error;
use crate::layout::{BlobKey, MARKER};
use crate::sign::Signer;
use crate::spec::{Location, Mode, TierSpec};

/// How tiers are reached. The defaults suit a bucket in the same region or on the LAN.
#[derive(Clone, Debug)]
pub struct TierOptions {
    /// Connecting to the store.
    pub connect_timeout: Duration,
    /// One request (a metadata call, or one ranged GET of [`TierOptions::chunk`] bytes);
    /// a transfer whose next chunk does not arrive within it is stalled and abandoned.
    pub request_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub idle_timeout: Duration,
    /// How long a tier that failed repeatedly is skipped.
    pub cool_down: Duration,
    /// Bytes per ranged GET.
    pub chunk: u64,
    /// Ranged GETs in flight for one blob.
    pub parallelism: usize,
    /// Files above this size are pushed in parts (multipart upload).
    pub multipart_above: u64,
    /// The clouds' environment: `AWS_*`, `GOOGLE_*` and `AZURE_*` (credentials, region,
    /// endpoint, plain HTTP allowed or not; see [`TierOptions::with_env`]).
    pub env: Vec<(String, String)>,
    /// The key that signs listings and refs (HMAC-SHA256); with one, unsigned or badly
    /// signed listings and refs are misses.
    pub signing_key: Option<Vec<u8>>,
}

impl Default for TierOptions {
    fn default() -> Self {
        TierOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            cool_down: Duration::from_secs(60),
            chunk: 8 << 20,
            parallelism: 4,
            multipart_above: 64 << 20,
            env: Vec::new(),
            signing_key: None,
        }
    }
}

impl TierOptions {
    /// The variables `env` gives that configure S3 (`AWS_*`), Google Cloud Storage
    /// (`GOOGLE_*`) and Azure (`AZURE_*`) tiers, as the clouds' own tools read them; the
    /// crate docs list them.
    #[must_use]
    pub fn with_env(mut self, env: &dyn Fn(&str) -> Option<String>) -> Self {
        self.env = crate::backend::ENV_KEYS.iter().filter_map(|k| env(k).map(|v| ((*k).to_owned(), v))).collect();
        self
    }
}

/// What the format probe found.
#[derive(Clone, Debug)]
enum Format {
    Known,
    Unknown(String),
}

/// The marker's content.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    layout: String,
    version: u32,
}

const LAYOUT_NAME: &str = "modelcache-tier";

/// How a call ended, for the caller to decide (a missing object is no failure).
#[derive(Debug)]
pub(crate) enum Failure {
    NotFound,
    Exists,
    Unsupported,
    Denied(Error),
    Failed(Error),
}

impl Failure {
    pub(crate) fn into_error(self, tier: &Tier, key: &str) -> Option<Error> {
        match self {
            Failure::Denied(e) | Failure::Failed(e) => Some(e),
            Failure::NotFound | Failure::Exists | Failure::Unsupported => {
                tracing::debug!(tier = %tier.url(), key, "no object or unsupported call");
                None
            }
        }
    }
}

/// One tier. Share it (`Arc`) between tasks.
pub struct Tier {
    pub(crate) spec: TierSpec,
    pub(crate) store: Arc<dyn ObjectStore>,
    prefix: String,
    mode: AtomicU8,
    demotion_warned: AtomicBool,
    breaker: Breaker,
    pub(crate) counters: Counters,
    probe: tokio::sync::OnceCell<Format>,
    pub(crate) options: Arc<TierOptions>,
    /// Whether the store honours create-if-absent puts (learnt on the first push).
    pub(crate) conditional_put: AtomicBool,
    /// Keys found corrupt in this process: a verified push overwrites them (repair).
    pub(crate) repair: Mutex<std::collections::HashSet<String>>,
    /// Listings replaced in this process (each at most once).
    pub(crate) replaced: Mutex<std::collections::HashSet<String>>,
    pub(crate) signer: Option<Signer>,
}

impl std::fmt::Debug for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tier({}:{})", self.spec.url(), self.mode())
    }
}

fn mode_code(m: Mode) -> u8 {
    match m {
        Mode::ReadWrite => 0,
        Mode::ReadOnly => 1,
        Mode::WriteOnly => 2,
    }
}

impl Tier {
    /// Sets up the tier (no network call: the probe runs on first use).
    pub fn open(spec: TierSpec, options: Arc<TierOptions>) -> Result<Tier, Error> {
        let open_err = |reason: String| Error::Open { url: spec.url().to_owned(), reason };
        if let (Location::Dir { path }, true) = (spec.location(), spec.mode.writes()) {
            std::fs::create_dir_all(path).map_err(|e| open_err(format!("cannot create `{path}`: {e}")))?;
        }
        let (store, prefix) = crate::backend::open(spec.location(), &options).map_err(open_err)?;
        let signer = options.signing_key.as_deref().map(Signer::new);
        Ok(Tier {
            mode: AtomicU8::new(mode_code(spec.mode)),
            spec,
            store,
            prefix,
            demotion_warned: AtomicBool::new(false),
            breaker: Breaker::new(options.cool_down),
            counters: Counters::default(),
            probe: tokio::sync::OnceCell::new(),
            conditional_put: AtomicBool::new(true),
            repair: Mutex::default(),
            replaced: Mutex::default(),
            signer,
            options,
        })
    }

    /// The tier's URL.
    pub fn url(&self) -> &str {
        self.spec.url()
    }

    /// The mode now (a tier whose write was denied is `ro` for the rest of the process).
    pub fn mode(&self) -> Mode {
        match self.mode.load(Ordering::Relaxed) {
            0 => Mode::ReadWrite,
            1 => Mode::ReadOnly,
            _ => Mode::WriteOnly,
        }
    }

    /// This process's figures so far.
    pub fn stats(&self) -> TierStats {
        self.counters.peek(self.url())
    }

    /// This process's figures since the last call (for persisting deltas).
    pub fn take_stats(&self) -> TierStats {
        self.counters.take(self.url())
    }

    pub(crate) fn path(&self, key: &str) -> Path {
        Path::from(format!("{}{key}", self.prefix))
    }

    /// A key as listed, without the tier's prefix.
    pub(crate) fn strip<'a>(&self, location: &'a Path) -> &'a str {
        location.as_ref().strip_prefix(self.prefix.as_str()).unwrap_or(location.as_ref())
    }

    pub(crate) fn listing_root(&self) -> Path {
        Path::from(format!("{}{}", self.prefix, crate::layout::VERSION))
    }

    /// A denied write: `ro` from now on, said once.
    pub(crate) fn demote(&self, key: &str) -> Error {
        if self.mode() == Mode::ReadWrite {
            self.mode.store(mode_code(Mode::ReadOnly), Ordering::Relaxed);
        }
        if !self.demotion_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(tier = %self.url(), key, "the tier refused a write: using it read-only for the rest of this run");
        }
        Error::Denied { url: self.url().to_owned(), key: key.to_owned() }
    }

    /// Runs one store call under the breaker and the request timeout, classifying the
    /// outcome and counting errors (a missing object is not an error).
    pub(crate) async fn call<T>(
        &self,
        op: &'static str,
        key: &str,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, Failure> {
        if !self.breaker.allows(Instant::now()) {
            Counters::bump(&self.counters.skipped, 1);
            return Err(Failure::Failed(Error::Skipped { url: self.url().to_owned() }));
        }
        let after = self.options.request_timeout;
        let outcome = tokio::time::timeout(after, fut).await;
        let error = match outcome {
            Ok(Ok(v)) => {
                self.breaker.success();
                return Ok(v);
            }
            Ok(Err(object_store::Error::NotFound { .. })) => {
                self.breaker.success();
                return Err(Failure::NotFound);
            }
            Ok(Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. })) => {
                self.breaker.success();
                return Err(Failure::Exists);
            }
            Ok(Err(object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. })) => {
                self.breaker.success();
                return Err(Failure::Unsupported);
            }
            Ok(Err(e @ (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }))) => {
                Counters::bump(&self.counters.errors, 1);
                self.breaker.success();
                tracing::warn!(tier = %self.url(), op, key, error = %e, "remote tier denied the call");
                return Err(Failure::Denied(Error::Call {
                    url: self.url().to_owned(),
                    op,
                    key: key.to_owned(),
                    source: Box::new(e),
                }));
            }
            Ok(Err(e)) if is_denied(&e) => {
                Counters::bump(&self.counters.errors, 1);
                self.breaker.success();
                return Err(Failure::Denied(Error::Call {
                    url: self.url().to_owned(),
                    op,
                    key: key.to_owned(),
                    source: Box::new(e),
                }));
            }
            Ok(Err(e)) => Error::Call { url: self.url().to_owned(), op, key: key.to_owned(), source: Box::new(e) },
            Err(_) => Error::Timeout { url: self.url().to_owned(), op, key: key.to_owned(), after },
        };
        Counters::bump(&self.counters.errors, 1);
        if self.breaker.failure(Instant::now()) {
            tracing::warn!(tier = %self.url(), error = %error, "remote tier keeps failing: skipping it for {}s", self.options.cool_down.as_secs());
        } else {
            tracing::info!(tier = %self.url(), error = %error, "remote tier call failed");
        }
        Err(Failure::Failed(error))
    }

    /// Checks (once per process) that the tier holds this layout, writing the marker of a
    /// new tier this process may write to. `Ok(false)`: a format it does not know (the
    /// tier is then unused).
    pub(crate) async fn probe(&self) -> Result<(), Error> {
        let format = self
            .probe
            .get_or_try_init(|| async {
                let path = self.path(MARKER);
                match self.call("read", MARKER, async { self.store.get(&path).await?.bytes().await }).await {
                    Ok(bytes) => Ok(match serde_json::from_slice::<Marker>(&bytes) {
                        Ok(m) if m.layout == LAYOUT_NAME && m.version == 1 => Format::Known,
                        Ok(m) => Format::Unknown(format!("{} version {}", m.layout, m.version)),
                        Err(e) => Format::Unknown(format!("unreadable marker: {e}")),
                    }),
                    Err(Failure::NotFound) => {
                        if self.mode().writes() {
                            self.write_marker().await;
                        }
                        Ok(Format::Known)
                    }
                    Err(f) => Err(f.into_error(self, MARKER).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() })),
                }
            })
            .await?;
        match format {
            Format::Known => Ok(()),
            Format::Unknown(found) => Err(Error::UnknownFormat { url: self.url().to_owned(), found: found.clone() }),
        }
    }

    async fn write_marker(&self) {
        let marker = serde_json::to_vec_pretty(&Marker { layout: LAYOUT_NAME.to_owned(), version: 1 }).unwrap_or_default();
        let path = self.path(MARKER);
        let opts = PutOptions { mode: PutMode::Create, ..PutOptions::default() };
        match self.call("write", MARKER, self.store.put_opts(&path, PutPayload::from(marker.clone()), opts)).await {
            Err(Failure::Unsupported) => {
                let _ = self.call("write", MARKER, self.store.put(&path, PutPayload::from(marker))).await;
            }
            Err(Failure::Denied(_)) => {
                self.demote(MARKER);
            }
            Ok(_) | Err(Failure::Exists | Failure::NotFound | Failure::Failed(_)) => {}
        }
    }

    /// Whether the tier holds `key` (one HEAD).
    pub async fn has(&self, key: &BlobKey) -> Result<bool, Error> {
        let k = key.key();
        match self.call("look up", &k, self.store.head(&self.path(&k))).await {
            Ok(_) => Ok(true),
            Err(Failure::NotFound) => Ok(false),
            Err(f) => Err(f.into_error(self, &k).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() })),
        }
    }
}

/// S3-compatible servers and filesystems say "denied" in more than one way.
fn is_denied(e: &object_store::Error) -> bool {
    let text = e.to_string();
    text.contains("AccessDenied") || text.contains("Permission denied") || text.contains("403 Forbidden")
}
