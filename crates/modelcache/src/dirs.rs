//! Default directories, as huggingface_hub and the XDG base-directory spec place them.
//!
//! - hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
//!   `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
//! - modelcache home: `$MODELCACHE_HOME`, else `$XDG_CACHE_HOME/modelcache`, else
//!   `~/.cache/modelcache`;
//! - config file: `$XDG_CONFIG_HOME/modelcache/config.toml`, else
//!   `~/.config/modelcache/config.toml`.

use std::path::{Path, PathBuf};

use crate::config::{ConfigError, Source};

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

fn home(env: Env<'_>) -> Result<PathBuf, ConfigError> {
    match env("HOME") {
        Some(h) => Ok(PathBuf::from(h)),
        None => etcetera::home_dir().map_err(|_| ConfigError::NoHome),
    }
}

fn xdg(env: Env<'_>, var: &str, fallback: &str) -> Result<(PathBuf, String), ConfigError> {
    match env(var).filter(|v| Path::new(v).is_absolute()) {
        Some(dir) => Ok((PathBuf::from(dir), format!("`{var}`"))),
        None => Ok((home(env)?.join(fallback), format!("`$HOME/{fallback}`"))),
    }
}

/// The hub cache directory and where it came from.
pub(crate) fn hub_cache(env: Env<'_>) -> Result<(PathBuf, Source), ConfigError> {
    if let Some(dir) = env("HF_HUB_CACHE") {
        return Ok((expand_tilde(&dir), Source::Env("HF_HUB_CACHE".to_owned())));
    }
    if let Some(dir) = env("HF_HOME") {
        return Ok((expand_tilde(&dir).join("hub"), Source::Derived("`HF_HOME`".to_owned())));
    }
    let (cache, from) = xdg(env, "XDG_CACHE_HOME", ".cache")?;
    Ok((cache.join("huggingface/hub"), Source::Derived(from)))
}

/// The modelcache home and where it came from.
pub(crate) fn modelcache_home(env: Env<'_>) -> Result<(PathBuf, Source), ConfigError> {
    if let Some(dir) = env("MODELCACHE_HOME") {
        return Ok((expand_tilde(&dir), Source::Env("MODELCACHE_HOME".to_owned())));
    }
    let (cache, from) = xdg(env, "XDG_CACHE_HOME", ".cache")?;
    Ok((cache.join("modelcache"), Source::Derived(from)))
}

/// The config file's default location, if a home can be found.
pub(crate) fn config_file(env: Env<'_>) -> Option<PathBuf> {
    xdg(env, "XDG_CONFIG_HOME", ".config").ok().map(|(dir, _)| dir.join("modelcache/config.toml"))
}

/// `~/x` → `$HOME/x`; anything else unchanged.
pub(crate) fn expand_tilde(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => std::env::var_os("HOME").map_or_else(|| PathBuf::from(p), |h| PathBuf::from(h).join(rest)),
        None => PathBuf::from(p),
    }
}
