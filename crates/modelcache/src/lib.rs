//! Keep machine-learning artifacts on local disk: downloaded once, verified, shared
//! between processes, bounded in size, usable offline.
//!
//! This is the facade most users depend on: `CacheManager`, the acquisition strategies
//! (network, cache-only, hybrid), configuration loading and background cleanup.
//!
//! # Layering
//! Depends on every lower crate. With `--no-default-features` (no `downloads`) it is
//! cache-only and its dependency tree holds neither tokio's network stack nor reqwest
//! (`cargo xtask test-matrix` checks this).

mod config;
mod dirs;

pub use config::{
    Config, ConfigError, ConfigLoader, DEFAULT_ENDPOINT, EffectiveConfig, Key as ConfigKey, RawValue, Source as ConfigSource,
};
