//! `FetchConfig`: timeouts, retry policy, parallelism and the user agent of a `Fetcher`.

use std::time::Duration;

/// How a [`Fetcher`](crate::Fetcher) connects, retries and splits transfers.
///
/// ```
/// use std::time::Duration;
/// let mut config = cache_fetch::FetchConfig::default();
/// config.retries = 3;
/// config.read_timeout = Duration::from_secs(10);
/// assert_eq!(config.parallel_threshold, 64 << 20);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FetchConfig {
    /// Time allowed to open a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest silence allowed while waiting for response headers or body bytes; a stalled
    /// transfer is abandoned after it and resumed.
    pub read_timeout: Duration,
    /// Longest one [`Fetcher::download`](crate::Fetcher::download) call may take overall
    /// (every request, retry, backoff and restart of one file), after which it fails with
    /// [`Error::DownloadTimeout`](crate::Error::DownloadTimeout), keeping what it wrote for
    /// a resume. `None` (the default): no limit, only `read_timeout` applies.
    pub download_timeout: Option<Duration>,
    /// Whole-request limit for small requests ([`Fetcher::head`](crate::Fetcher::head),
    /// [`Fetcher::get_small`](crate::Fetcher::get_small)).
    pub request_timeout: Duration,
    /// Retries after the first attempt of a request (a request that made progress before
    /// failing does not use up one).
    pub retries: u32,
    /// First backoff delay; doubles at each retry ("full jitter": a random delay up to it).
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured; longer ones are shortened to it.
    pub max_retry_after: Duration,
    /// Concurrent range requests for one large file, once it was split.
    pub parallelism: usize,
    /// Size of each range request of a split transfer.
    pub chunk_size: u64,
    /// Files with more than this many bytes left to fetch may be split into parallel
    /// ranges; whether they are depends on the measured speed of their first stream.
    pub parallel_threshold: u64,
    /// How long the first stream of a large file is measured before deciding whether to
    /// split it. `Duration::ZERO`: no measure, large files are split from the start.
    pub probe_window: Duration,
    /// A first stream slower than this (bytes per second over `probe_window`) is split
    /// into `parallelism` ranges: the link or the server limits one connection, and more
    /// connections get more. A faster one stays alone, since splitting then only adds
    /// copies and CPU (one stream already keeps the hasher busy). The default, 128 MiB/s
    /// (about 1 Gbit/s), is well above per-connection caps seen in practice (a 50 MB/s
    /// cap is split) and well below what one loopback or LAN stream delivers even on a
    /// loaded 2-core machine (~350–600 MB/s measured). `0`: never split.
    pub parallel_below_rate: u64,
    /// For sinks that keep a progress record: bytes written between two checkpoints of
    /// the completed ranges. A killed transfer re-fetches about this much (plus what
    /// arrived during one checkpoint); what a checkpoint costs is the sink's (the store's:
    /// one small atomic file write). `u64::MAX` disables checkpoints while a transfer runs.
    pub checkpoint_interval: u64,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            download_timeout: None,
            request_timeout: Duration::from_secs(30),
            retries: 5,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            parallelism: 8,
            chunk_size: 16 << 20,
            parallel_threshold: 64 << 20,
            probe_window: Duration::from_millis(200),
            parallel_below_rate: 128 << 20,
            checkpoint_interval: 4 << 20,
            user_agent: concat!("modelcache/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}
