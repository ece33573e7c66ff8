//! Configuration: built-in defaults < `config.toml` < `MODELCACHE_*` environment <
//! explicit builder calls, remembering where every value came from.
//!
//! The Hub's own variables feed the defaults, as `huggingface_hub` reads them:
//! `HF_HUB_CACHE`/`HF_HOME` for the cache directory, `HF_ENDPOINT` for the endpoint and
//! `HF_HUB_OFFLINE` for offline mode (offline if either it or `MODELCACHE_OFFLINE` says so).
//! `HF_*` booleans are read as huggingface_hub reads them (`1`, `ON`, `YES`, `TRUE` in any
//! case are true, anything else false); `MODELCACHE_*` ones are strict (`true`/`false`,
//! 1/0, yes/no, on/off, else an error).
//! Bad values are errors that name the file or variable, the key and the form it accepts.
//!
//! # A typo never locks anyone out
//! An unknown key of the file is not an error: it is ignored and listed in
//! [`EffectiveConfig::unknown_keys`] (file, line, nearest valid key) for the front end to
//! show as a warning; the rest of the file applies. [`EffectiveConfig::searched`] says
//! where the file was looked for, found or not.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cache_core::{ByteSize, EvictionPolicy, format_duration, parse_duration};

use crate::dirs;
use crate::strategy::StrategyKind;

/// The default Hub endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How often the opportunistic cleanup runs at most, by default (as cargo's automatic gc).
pub const DEFAULT_CLEANUP_INTERVAL: Duration = Duration::from_hours(24);

/// Every configuration key, in the order `modelcache config` prints them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Key {
    /// The hub cache directory.
    CacheDir,
    /// The modelcache home (index, generic artifacts).
    Home,
    /// Size limit that triggers eviction.
    MaxSize,
    /// Entries unused for longer are evicted.
    MaxAge,
    /// Fraction of `max_size` to evict down to.
    LowWatermark,
    /// Entries used more recently are never evicted.
    InUseGrace,
    /// Prune after downloads: by size when `max_size` is set, and by every limit once
    /// per `cleanup_interval`.
    AutoPrune,
    /// Download what is missing (otherwise cache-only).
    AutoDownload,
    /// Longest one file's transfer may take overall.
    DownloadTimeout,
    /// Longest silence of a connection before it is retried.
    ReadTimeout,
    /// Retries of a failed request.
    Retries,
    /// Concurrent transfers.
    Parallelism,
    /// The Hub endpoint.
    Endpoint,
    /// Never touch the network.
    Offline,
    /// How long a resolved branch or tag is trusted before asking the Hub again.
    RevalidateAfter,
    /// The acquisition strategy (`network`, `cache-only`, `hybrid`; `auto` chooses).
    Strategy,
    /// Opportunistic cleanup by the size and age limits at most this often.
    CleanupInterval,
    /// Give up waiting for a lock whose holder makes no progress for this long.
    LockStallTimeout,
    /// `lock_mode`
    LockMode,
    /// `lock_lease`
    LockLease,
    /// Free space kept on the cache's filesystem beyond a download.
    FreeSpaceMargin,
    /// Team tiers (object storage or a shared directory) pulled through before the Hub.
    Remote,
    /// How long a command waits at its end for pushes to team tiers still running.
    RemoteWait,
}

impl Key {
    /// All keys.
    pub const ALL: [Key; 23] = [
        Key::CacheDir,
        Key::Home,
        Key::MaxSize,
        Key::MaxAge,
        Key::LowWatermark,
        Key::InUseGrace,
        Key::AutoPrune,
        Key::AutoDownload,
        Key::DownloadTimeout,
        Key::ReadTimeout,
        Key::Retries,
        Key::Parallelism,
        Key::Endpoint,
        Key::Offline,
        Key::RevalidateAfter,
        Key::Strategy,
        Key::CleanupInterval,
        Key::LockStallTimeout,
        Key::LockMode,
        Key::LockLease,
        Key::FreeSpaceMargin,
        Key::Remote,
        Key::RemoteWait,
    ];

    /// The key as written in `config.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Key::CacheDir => "cache_dir",
            Key::Home => "home",
            Key::MaxSize => "max_size",
            Key::MaxAge => "max_age",
            Key::LowWatermark => "low_watermark",
            Key::InUseGrace => "in_use_grace",
            Key::AutoPrune => "auto_prune",
            Key::AutoDownload => "auto_download",
            Key::DownloadTimeout => "download_timeout",
            Key::ReadTimeout => "read_timeout",
            Key::Retries => "retries",
            Key::Parallelism => "parallelism",
            Key::Endpoint => "endpoint",
            Key::Offline => "offline",
            Key::RevalidateAfter => "revalidate_after",
            Key::Strategy => "strategy",
            Key::CleanupInterval => "cleanup_interval",
            Key::LockStallTimeout => "lock_stall_timeout",
            Key::LockMode => "lock_mode",
            Key::LockLease => "lock_lease",
            Key::FreeSpaceMargin => "free_space_margin",
            Key::Remote => "remote",
            Key::RemoteWait => "remote_wait",
        }
    }

    /// The `MODELCACHE_*` variable that sets it.
    pub fn env_var(self) -> String {
        format!("MODELCACHE_{}", self.name().to_ascii_uppercase())
    }

    /// The accepted form, for error messages.
    pub fn expected(self) -> &'static str {
        match self {
            Key::CacheDir | Key::Home => "a directory path",
            Key::MaxSize => "a size such as `10GiB` or `500MB`, or `none`",
            Key::MaxAge => "a duration such as `7d` or `12h`, or `none`",
            Key::DownloadTimeout => "a duration such as `30m` or `2h`, or `none`",
            Key::InUseGrace
            | Key::ReadTimeout
            | Key::RevalidateAfter
            | Key::LockStallTimeout
            | Key::LockLease
            | Key::RemoteWait => "a duration such as `30s`, `5m` or `1h`",
            Key::CleanupInterval => "a duration such as `1h` or `1d`, or `never`",
            Key::Strategy => "`network`, `cache-only`, `hybrid` or `auto`",
            Key::LockMode => "`auto`, `flock`, `fcntl`, `both` or `none`",
            Key::LowWatermark => "a number greater than 0 and at most 1, such as `0.8`",
            Key::AutoPrune | Key::AutoDownload | Key::Offline => "`true` or `false` (or 1/0, yes/no, on/off)",
            Key::Retries => "a whole number from 0 to 100",
            Key::Parallelism => "a whole number from 1 to 256",
            Key::Endpoint => "an `http://` or `https://` URL",
            Key::FreeSpaceMargin => "a size such as `64MiB` or `0`, or `auto` (1 % of the filesystem, at most 64 MiB)",
            Key::Remote => "`URL[:MODE]` tiers, comma-separated (`s3://bucket/prefix:ro`, `file:///dir:rw`), or `none`",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Built in.
    Default,
    /// Derived from a Hugging Face variable (`HF_HOME`, `XDG_CACHE_HOME`…).
    Derived(String),
    /// A configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// Set in code (a builder call or a command-line option).
    Explicit,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Derived(from) => write!(f, "default from {from}"),
            Source::File(p) => write!(f, "file {}", p.display()),
            Source::Env(v) => write!(f, "env {v}"),
            Source::Explicit => f.write_str("explicit"),
        }
    }
}

/// A configuration value that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file is not valid TOML.
    #[error("could not parse config file `{path}`: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The file could not be read.
    #[error("could not read config file `{path}`: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// A key the file may not contain. [`ConfigLoader::load`] no longer fails with it:
    /// unknown keys are ignored and listed in [`EffectiveConfig::unknown_keys`].
    #[error("unknown key `{key}` in `{path}`; allowed keys: {allowed}")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The keys it may contain.
        allowed: String,
    },
    /// A value of the wrong form.
    #[error("invalid value `{value}` for `{key}` in {origin}: expected {expected}")]
    InvalidValue {
        /// `` file `…` `` or `` env `…` ``.
        origin: String,
        /// The key.
        key: Key,
        /// The value as given.
        value: String,
        /// The accepted form.
        expected: &'static str,
    },
    /// No home directory to derive default directories from.
    #[error("cannot find the home directory to place the cache in")]
    NoHome,
}

impl ConfigError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            ConfigError::Syntax { path, .. } | ConfigError::UnknownKey { path, .. } | ConfigError::Read { path, .. } => {
                format!("fix or remove `{}`; `modelcache config` shows the effective settings", path.display())
            }
            ConfigError::InvalidValue { key, .. } => format!("set `{key}` to {}", key.expected()),
            ConfigError::NoHome => "set `HF_HUB_CACHE` and `MODELCACHE_HOME` to directories".to_owned(),
        }
    }
}

/// The settings modelcache runs with. Its `Debug` output hides a password in the endpoint.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// The hub cache directory (huggingface_hub's `cache_dir`).
    pub cache_dir: PathBuf,
    /// The modelcache home: index and generic artifacts.
    pub home: PathBuf,
    /// Evict least recently used files above this size.
    pub max_size: Option<ByteSize>,
    /// Evict files unused for longer than this.
    pub max_age: Option<Duration>,
    /// Evict down to this fraction of `max_size`.
    pub low_watermark: f64,
    /// Never evict files used more recently than this.
    pub in_use_grace: Duration,
    /// Prune after downloads when `max_size` or `max_age` is set.
    pub auto_prune: bool,
    /// Download what is not cached (otherwise cache-only).
    pub auto_download: bool,
    /// Give up on one file's transfer after this long overall (every request, retry and
    /// resume of it in one call); what was received is kept, so the next call resumes.
    /// `None` (the default): no overall limit.
    pub download_timeout: Option<Duration>,
    /// Give up on a connection that sends nothing for this long (then retry and resume).
    pub read_timeout: Duration,
    /// Retries of a failed request.
    pub retries: u32,
    /// Concurrent transfers: files of a snapshot in flight, and range requests of one
    /// large file.
    pub parallelism: usize,
    /// The Hub endpoint, without a trailing `/`. It may hold a password
    /// (`https://user:pass@mirror`): show it with [`Config::display_value`], which hides it.
    pub endpoint: String,
    /// Never touch the network.
    pub offline: bool,
    /// Trust a resolved branch or tag for this long before asking the Hub again (0: always
    /// ask, as huggingface_hub does).
    pub revalidate_after: Duration,
    /// The acquisition strategy; `None` (`auto`): see
    /// [`select_strategy`](crate::select_strategy).
    pub strategy: Option<StrategyKind>,
    /// With only `max_age` set, prune expired files after a download at most this often
    /// (`None`: never; never while offline or without `auto_prune`), as cargo's automatic
    /// gc does. A `max_size` is enforced after every download.
    pub cleanup_interval: Option<Duration>,
    /// Give up waiting for a lock after its holder made no progress for this long.
    pub lock_stall_timeout: Duration,
    /// Which locks a download takes (`auto`: decided from the filesystem).
    pub lock_mode: cache_store::LockMode,
    /// How long a lock holder may show no progress and no heartbeat before a waiter that
    /// can prove it gone takes over.
    pub lock_lease: Duration,
    /// Free space to keep on the cache's filesystem beyond a download; `None`: 1 % of
    /// the filesystem, at most 64 MiB.
    pub free_space_margin: Option<ByteSize>,
    /// Team tiers, in the order they are tried: `(url, mode)` with mode `rw`, `ro` or
    /// `wo`. Their URLs hold no credentials (S3 ones come from `AWS_*` variables).
    pub remote: Vec<RemoteTier>,
    /// How long a command waits at its end for pushes still running; what does not finish
    /// is remembered and pushed by a later command.
    pub remote_wait: Duration,
}

/// One configured team tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteTier {
    /// `s3://bucket/prefix` or `file:///path`.
    pub url: String,
    /// `rw`, `ro` or `wo`.
    pub mode: String,
}

impl fmt::Display for RemoteTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.url, self.mode)
    }
}

/// Parses `URL[:MODE]` (mode `rw` when absent).
fn parse_tier(s: &str) -> Option<RemoteTier> {
    let s = s.trim();
    let (url, mode) = match s.rsplit_once(':') {
        Some((url, mode)) if url.contains("://") && !mode.contains('/') => (url, mode),
        _ => (s, "rw"),
    };
    let known = ["s3://", "file://", "gs://", "az://"].iter().any(|p| url.starts_with(p));
    // No credentials or query in a tier URL: they would be shown (S3 keys come from `AWS_*`).
    let authority = url.split_once("://").map_or("", |(_, rest)| rest.split('/').next().unwrap_or_default());
    if authority.contains('@') || url.contains(['?', '#']) {
        return None;
    }
    (known && ["rw", "ro", "wo"].contains(&mode) && url.len() > 6 && !url.contains(char::is_whitespace))
        .then(|| RemoteTier { url: url.trim_end_matches('/').to_owned(), mode: mode.to_owned() })
}

/// The tiers of a value: `none`, a comma-separated `URL[:MODE]` list, an array of such
/// strings, or `[[remote]]` tables (`url`, `mode`).
fn parse_tiers(raw: &RawValue) -> Option<Vec<RemoteTier>> {
    let list = |s: &str| -> Option<Vec<RemoteTier>> {
        if s.trim().eq_ignore_ascii_case("none") || s.trim().is_empty() {
            return Some(Vec::new());
        }
        s.split(',').filter(|p| !p.trim().is_empty()).map(parse_tier).collect()
    };
    match raw {
        RawValue::Text(s) | RawValue::Toml(toml::Value::String(s)) => list(s),
        RawValue::Toml(toml::Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) => out.extend(list(s)?),
                    toml::Value::Table(t) => {
                        let url = t.get("url")?.as_str()?;
                        let mode = t.get("mode").map_or(Some("rw"), toml::Value::as_str)?;
                        if t.keys().any(|k| k != "url" && k != "mode") {
                            return None;
                        }
                        out.push(parse_tier(&format!("{url}:{mode}"))?);
                    }
                    _ => return None,
                }
            }
            Some(out)
        }
        RawValue::Toml(_) => None,
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cache_dir", &self.cache_dir)
            .field("home", &self.home)
            .field("max_size", &self.max_size)
            .field("max_age", &self.max_age)
            .field("low_watermark", &self.low_watermark)
            .field("in_use_grace", &self.in_use_grace)
            .field("auto_prune", &self.auto_prune)
            .field("auto_download", &self.auto_download)
            .field("download_timeout", &self.download_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("retries", &self.retries)
            .field("parallelism", &self.parallelism)
            .field("endpoint", &cache_core::redact_url(&self.endpoint))
            .field("offline", &self.offline)
            .field("revalidate_after", &self.revalidate_after)
            .field("strategy", &self.strategy)
            .field("cleanup_interval", &self.cleanup_interval)
            .field("lock_stall_timeout", &self.lock_stall_timeout)
            .field("lock_mode", &self.lock_mode)
            .field("lock_lease", &self.lock_lease)
            .field("free_space_margin", &self.free_space_margin)
            .field("remote", &self.remote)
            .field("remote_wait", &self.remote_wait)
            .finish()
    }
}

impl Config {
    /// The eviction policy these settings describe.
    pub fn eviction_policy(&self) -> EvictionPolicy {
        EvictionPolicy {
            max_size: self.max_size.map(ByteSize::bytes),
            low_watermark: self.low_watermark,
            max_age: self.max_age,
            in_use_grace: self.in_use_grace,
        }
    }

    /// Every value formatted as `modelcache config` prints it.
    pub fn display_value(&self, key: Key) -> String {
        let opt_dur = |d: Option<Duration>| d.map_or_else(|| "none".to_owned(), format_duration);
        match key {
            Key::CacheDir => self.cache_dir.display().to_string(),
            Key::Home => self.home.display().to_string(),
            Key::MaxSize => self.max_size.map_or_else(|| "none".to_owned(), |s| s.to_string()),
            Key::MaxAge => opt_dur(self.max_age),
            Key::LowWatermark => self.low_watermark.to_string(),
            Key::InUseGrace => format_duration(self.in_use_grace),
            Key::AutoPrune => self.auto_prune.to_string(),
            Key::AutoDownload => self.auto_download.to_string(),
            Key::DownloadTimeout => opt_dur(self.download_timeout),
            Key::ReadTimeout => format_duration(self.read_timeout),
            Key::Retries => self.retries.to_string(),
            Key::Parallelism => self.parallelism.to_string(),
            // A password in the endpoint (`https://user:pass@mirror`) is never shown.
            Key::Endpoint => cache_core::redact_url(&self.endpoint),
            Key::Offline => self.offline.to_string(),
            Key::RevalidateAfter => format_duration(self.revalidate_after),
            Key::Strategy => self.strategy.map_or("auto", StrategyKind::name).to_owned(),
            Key::CleanupInterval => self.cleanup_interval.map_or_else(|| "never".to_owned(), format_duration),
            Key::LockStallTimeout => format_duration(self.lock_stall_timeout),
            Key::LockMode => self.lock_mode.name().to_owned(),
            Key::LockLease => format_duration(self.lock_lease),
            Key::FreeSpaceMargin => self.free_space_margin.map_or_else(|| "auto".to_owned(), |s| s.to_string()),
            Key::Remote if self.remote.is_empty() => "none".to_owned(),
            Key::Remote => self.remote.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            Key::RemoteWait => format_duration(self.remote_wait),
        }
    }
}

/// A configuration and the source of each of its values.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveConfig {
    /// The values.
    pub config: Config,
    sources: BTreeMap<Key, Source>,
    /// The config file that was read, if one existed.
    pub file: Option<PathBuf>,
    /// Where the config file was looked for (`config_file`, `$MODELCACHE_CONFIG`, else
    /// `$XDG_CONFIG_HOME/modelcache/config.toml`), whether or not it exists.
    pub searched: Option<PathBuf>,
    /// Keys of the file that are not settings: ignored, each one a warning to show.
    pub unknown_keys: Vec<UnknownKey>,
}

impl EffectiveConfig {
    /// Where `key`'s value came from.
    pub fn source(&self, key: Key) -> &Source {
        self.sources.get(&key).unwrap_or(&Source::Default)
    }

    /// `(key, value, source)` for every key, in display order.
    pub fn explain(&self) -> Vec<(Key, String, Source)> {
        Key::ALL.into_iter().map(|k| (k, self.config.display_value(k), self.source(k).clone())).collect()
    }
}

/// A value not yet validated: from TOML, or text from the environment or a command line.
#[derive(Clone, Debug)]
pub enum RawValue {
    /// From a TOML file.
    Toml(toml::Value),
    /// Text.
    Text(String),
}

impl RawValue {
    fn shown(&self) -> String {
        match self {
            RawValue::Toml(toml::Value::String(s)) | RawValue::Text(s) => s.clone(),
            RawValue::Toml(v) => v.to_string(),
        }
    }
}

type EnvFn = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Loads an [`EffectiveConfig`] from the layers. The environment is injectable so tests
/// never depend on the real one.
pub struct ConfigLoader {
    env: EnvFn,
    file: Option<PathBuf>,
    explicit: Vec<(Key, RawValue)>,
}

impl fmt::Debug for ConfigLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigLoader").field("file", &self.file).field("explicit", &self.explicit).finish_non_exhaustive()
    }
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::from_process_env()
    }
}

impl ConfigLoader {
    /// Reads the process environment.
    pub fn from_process_env() -> Self {
        Self::with_env(|k| std::env::var(k).ok())
    }

    /// Reads variables through `env` instead of the process environment.
    pub fn with_env(env: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        ConfigLoader { env: Box::new(env), file: None, explicit: Vec::new() }
    }

    /// Reads this file instead of `$MODELCACHE_CONFIG` or
    /// `$XDG_CONFIG_HOME/modelcache/config.toml`.
    #[must_use]
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// Sets a value explicitly (highest precedence); validated by [`ConfigLoader::load`].
    #[must_use]
    pub fn set(mut self, key: Key, value: impl Into<String>) -> Self {
        self.explicit.push((key, RawValue::Text(value.into())));
        self
    }

    /// Loads and validates every layer.
    pub fn load(&self) -> Result<EffectiveConfig, ConfigError> {
        let env = |k: &str| (self.env)(k).filter(|v| !v.is_empty());
        let mut b = Builder::defaults(&env)?;

        let file = self.file.clone().or_else(|| env("MODELCACHE_CONFIG").map(PathBuf::from)).or_else(|| dirs::config_file(&env));
        let mut used_file = None;
        let searched = file.clone();
        if let Some(path) = file {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    b.apply_file(&path, &text)?;
                    used_file = Some(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ConfigError::Read { path, message: e.to_string() }),
            }
        }
        for key in Key::ALL {
            let var = key.env_var();
            if let Some(v) = env(&var) {
                b.apply(key, &RawValue::Text(v), Source::Env(var.clone()), &format!("env `{var}`"))?;
            }
        }
        for (key, value) in &self.explicit {
            b.apply(*key, value, Source::Explicit, "an explicit setting")?;
        }
        for w in &b.unknown_keys {
            tracing::warn!("{w}");
        }
        Ok(EffectiveConfig { config: b.config, sources: b.sources, file: used_file, searched, unknown_keys: b.unknown_keys })
    }
}

struct Builder {
    config: Config,
    sources: BTreeMap<Key, Source>,
    unknown_keys: Vec<UnknownKey>,
}

impl Builder {
    fn defaults(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let (cache_dir, cache_src) = dirs::hub_cache(env)?;
        let (home, home_src) = dirs::modelcache_home(env)?;
        let mut sources = BTreeMap::new();
        sources.insert(Key::CacheDir, cache_src);
        sources.insert(Key::Home, home_src);
        let mut endpoint = DEFAULT_ENDPOINT.to_owned();
        if let Some(e) = env("HF_ENDPOINT") {
            endpoint = parse_endpoint(&e).ok_or_else(|| ConfigError::InvalidValue {
                origin: "env `HF_ENDPOINT`".to_owned(),
                key: Key::Endpoint,
                value: cache_core::redact_url(&e),
                expected: Key::Endpoint.expected(),
            })?;
            sources.insert(Key::Endpoint, Source::Env("HF_ENDPOINT".to_owned()));
        }
        let mut offline = false;
        if let Some(v) = env("HF_HUB_OFFLINE") {
            offline = hf_truthy(&v);
            sources.insert(Key::Offline, Source::Env("HF_HUB_OFFLINE".to_owned()));
        }
        let config = Config {
            cache_dir,
            home,
            max_size: None,
            max_age: None,
            low_watermark: cache_core::DEFAULT_LOW_WATERMARK,
            in_use_grace: cache_core::DEFAULT_IN_USE_GRACE,
            auto_prune: true,
            auto_download: true,
            download_timeout: None,
            read_timeout: Duration::from_secs(30),
            retries: 5,
            parallelism: 8,
            endpoint,
            offline,
            revalidate_after: Duration::ZERO,
            strategy: None,
            cleanup_interval: Some(DEFAULT_CLEANUP_INTERVAL),
            lock_stall_timeout: cache_store::StoreConfig::new("/", "/").lock_stall_timeout,
            lock_mode: cache_store::LockMode::Auto,
            lock_lease: cache_store::StoreConfig::new("/", "/").lock_lease,
            free_space_margin: None,
            remote: Vec::new(),
            remote_wait: Duration::from_secs(60),
        };
        Ok(Builder { config, sources, unknown_keys: Vec::new() })
    }

    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax { path: path.to_path_buf(), message: e.message().to_owned() })?;
        for (name, value) in table {
            // An unknown key is a warning, never a failure: a typo must not lock anyone out.
            let Some(key) = Key::from_name(&name) else {
                self.unknown_keys.push(UnknownKey::new(path, text, &name));
                continue;
            };
            self.apply(key, &RawValue::Toml(value), Source::File(path.to_path_buf()), &format!("file `{}`", path.display()))?;
        }
        Ok(())
    }

    fn apply(&mut self, key: Key, raw: &RawValue, source: Source, origin: &str) -> Result<(), ConfigError> {
        let shown = || match (key, raw) {
            (Key::Endpoint, _) => cache_core::redact_url(&raw.shown()),
            // Tables are not echoed (a misplaced credential must not be printed).
            (Key::Remote, RawValue::Toml(toml::Value::Array(_))) => "[[remote]] …".to_owned(),
            (Key::Remote, _) => raw.shown().split(',').map(|p| cache_core::redact_url(p.trim())).collect::<Vec<_>>().join(", "),
            _ => raw.shown(),
        };
        let bad = || ConfigError::InvalidValue { origin: origin.to_owned(), key, value: shown(), expected: key.expected() };
        if key == Key::Remote {
            self.config.remote = parse_tiers(raw).ok_or_else(bad)?;
            self.sources.insert(key, source);
            return Ok(());
        }
        let text = || match raw {
            RawValue::Text(s) | RawValue::Toml(toml::Value::String(s)) => Some(s.trim().to_owned()),
            RawValue::Toml(toml::Value::Integer(i)) => Some(i.to_string()),
            RawValue::Toml(toml::Value::Float(f)) => Some(f.to_string()),
            RawValue::Toml(toml::Value::Boolean(b)) => Some(b.to_string()),
            RawValue::Toml(_) => None,
        };
        let s = text().ok_or_else(bad)?;
        let c = &mut self.config;
        let none = s.eq_ignore_ascii_case("none");
        match key {
            Key::CacheDir | Key::Home => {
                if s.is_empty() {
                    return Err(bad());
                }
                let p = dirs::expand_tilde(&s);
                if key == Key::CacheDir { c.cache_dir = p } else { c.home = p }
            }
            Key::MaxSize => c.max_size = if none { None } else { Some(ByteSize::parse(&s).map_err(|_| bad())?) },
            Key::MaxAge => c.max_age = if none { None } else { Some(parse_duration(&s).map_err(|_| bad())?) },
            Key::InUseGrace => c.in_use_grace = parse_duration(&s).map_err(|_| bad())?,
            Key::DownloadTimeout => {
                c.download_timeout =
                    if none { None } else { Some(parse_duration(&s).map_err(|_| bad())?.max(Duration::from_secs(1))) };
            }
            Key::ReadTimeout => c.read_timeout = parse_duration(&s).map_err(|_| bad())?.max(Duration::from_secs(1)),
            Key::RevalidateAfter => c.revalidate_after = parse_duration(&s).map_err(|_| bad())?,
            Key::LockStallTimeout => c.lock_stall_timeout = parse_duration(&s).map_err(|_| bad())?.max(Duration::from_secs(1)),
            Key::LockMode => c.lock_mode = s.parse().map_err(|_| bad())?,
            Key::LockLease => c.lock_lease = parse_duration(&s).map_err(|_| bad())?.max(Duration::from_secs(1)),
            Key::CleanupInterval => {
                c.cleanup_interval =
                    if s.eq_ignore_ascii_case("never") { None } else { Some(parse_duration(&s).map_err(|_| bad())?) };
            }
            Key::Strategy => {
                c.strategy = if s.eq_ignore_ascii_case("auto") {
                    None
                } else {
                    Some(StrategyKind::from_name(&s.to_ascii_lowercase()).ok_or_else(bad)?)
                };
            }
            Key::LowWatermark => {
                let w: f64 = s.parse().map_err(|_| bad())?;
                if !(w > 0.0 && w <= 1.0) {
                    return Err(bad());
                }
                c.low_watermark = w;
            }
            Key::AutoPrune => c.auto_prune = parse_bool(&s).ok_or_else(bad)?,
            Key::AutoDownload => c.auto_download = parse_bool(&s).ok_or_else(bad)?,
            Key::Offline => {
                // Offline wins across the Hub's variable, the file and ours; only an
                // explicit setting (a flag, a builder call) can turn it off again.
                let v = parse_bool(&s).ok_or_else(bad)?;
                if !v && c.offline && source != Source::Explicit {
                    return Ok(());
                }
                c.offline = v;
            }
            Key::Retries => c.retries = s.parse().ok().filter(|n| *n <= 100).ok_or_else(bad)?,
            Key::Parallelism => c.parallelism = s.parse().ok().filter(|n| (1..=256).contains(n)).ok_or_else(bad)?,
            Key::Endpoint => c.endpoint = parse_endpoint(&s).ok_or_else(bad)?,
            Key::FreeSpaceMargin => {
                c.free_space_margin =
                    if s.eq_ignore_ascii_case("auto") { None } else { Some(ByteSize::parse(&s).map_err(|_| bad())?) };
            }
            Key::RemoteWait => c.remote_wait = parse_duration(&s).map_err(|_| bad())?,
            Key::Remote => {}
        }
        self.sources.insert(key, source);
        Ok(())
    }
}

/// A Hugging Face boolean variable, read as huggingface_hub reads it: `1`, `ON`, `YES`,
/// `TRUE` (any case) are true, anything else is false. modelcache's own variables stay
/// strict ([`parse_bool`]): a typo there is an error, not a silent `false`.
pub(crate) fn hf_truthy(s: &str) -> bool {
    ["1", "ON", "YES", "TRUE"].iter().any(|t| s.eq_ignore_ascii_case(t))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn parse_endpoint(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('/');
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"))?;
    let valid = !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then(|| s.to_owned())
}

#[cfg(test)]
mod tests;
mod unknown;

pub use unknown::UnknownKey;
