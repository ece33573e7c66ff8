//! What every command shares: the global options turned into a [`CacheManager`] (opened
//! only by commands that need the cache), the async runtime (only for commands that
//! download or do long work), and output: text or JSON on stdout, notes on stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use modelcache::{CacheError, CacheManager, CacheManagerBuilder, ConfigKey, ConfigLoader, EffectiveConfig, ModelRef, Target};
use serde::Serialize;

use crate::cli::{Global, RepoKind};
use crate::progress::{Bars, Notes};
use crate::report::Failure;

/// The global options and the output channels.
pub(crate) struct App {
    pub(crate) global: Global,
    pub(crate) out: Output,
    /// Bars on a terminal, notes otherwise; none with `-q` or `--json`.
    progress: Option<Arc<dyn modelcache::Progress>>,
}

/// Where results go: stdout, as text or JSON; notes on stderr unless quiet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    /// Whether stderr gets ANSI colour (a terminal, and `NO_COLOR` unset).
    pub(crate) color: bool,
}

impl Output {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output { json, quiet, color }
    }

    /// Writes text to stdout (a closed pipe surfaces as a `BrokenPipe` error).
    pub(crate) fn text(text: &str) -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes()).context("failed to write to stdout")?;
        stdout.flush().context("failed to write to stdout")
    }

    /// Writes `value` as JSON and a newline to stdout: indented for a person at a
    /// terminal, one line for a program reading a pipe (a 100 000-file listing spends
    /// a fifth of its time indenting otherwise).
    pub(crate) fn json(value: &impl Serialize) -> Result<()> {
        let mut s =
            if std::io::stdout().is_terminal() { serde_json::to_string_pretty(value) } else { serde_json::to_string(value) }
                .context("failed to serialize the result")?;
        s.push('\n');
        Self::text(&s)
    }

    /// JSON with `--json`, otherwise the text `text` builds.
    pub(crate) fn emit(self, value: &impl Serialize, text: impl FnOnce() -> String) -> Result<()> {
        if self.json { Self::json(value) } else { Self::text(&text()) }
    }

    /// A message for the user on stderr (not with `-q` or `--json`).
    pub(crate) fn note(self, line: &str) {
        if !self.quiet && !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// A warning on stderr (not with `--json`, where it is part of the result).
    pub(crate) fn warn(self, line: &str) {
        if !self.json {
            let prefix = if self.color { "\x1b[1;33mwarning:\x1b[0m" } else { "warning:" };
            let _ = writeln!(std::io::stderr().lock(), "{prefix} {line}");
        }
    }
}

impl App {
    pub(crate) fn new(global: Global) -> Self {
        let out = Output::new(global.json, global.quiet);
        let progress: Option<Arc<dyn modelcache::Progress>> = match (global.quiet || global.json, std::io::stderr().is_terminal())
        {
            (true, _) => None,
            (false, true) => Some(Arc::new(Bars::new())),
            (false, false) => Some(Arc::new(Notes::default())),
        };
        App { global, out, progress }
    }

    fn absolute(p: &PathBuf) -> PathBuf {
        std::path::absolute(p).unwrap_or_else(|_| p.clone())
    }

    /// The explicit settings the global options make (only those given).
    fn settings(&self) -> Vec<(ConfigKey, String)> {
        let g = &self.global;
        let mut s = Vec::new();
        if let Some(d) = &g.cache_dir {
            s.push((ConfigKey::CacheDir, Self::absolute(d).to_string_lossy().into_owned()));
        }
        if let Some(h) = &g.home {
            s.push((ConfigKey::Home, Self::absolute(h).to_string_lossy().into_owned()));
        }
        if let Some(e) = &g.endpoint {
            s.push((ConfigKey::Endpoint, e.clone()));
        }
        if g.offline {
            s.push((ConfigKey::Offline, "true".to_owned()));
        }
        if let Some(k) = g.strategy {
            s.push((ConfigKey::Strategy, k.kind().name().to_owned()));
        }
        s
    }

    /// The effective configuration without opening the cache (for `config` and `dir`).
    pub(crate) fn config(&self) -> Result<EffectiveConfig> {
        let mut loader = ConfigLoader::from_process_env();
        for (k, v) in self.settings() {
            loader = loader.set(k, v);
        }
        let config = loader.load().map_err(modelcache::CacheError::from)?;
        self.warn_unknown_keys(&config);
        Ok(config)
    }

    /// Unknown keys of the config file: ignored, each one a warning (file, line, nearest key).
    fn warn_unknown_keys(&self, config: &EffectiveConfig) {
        for w in &config.unknown_keys {
            self.out.warn(&w.to_string());
        }
    }

    fn builder(&self) -> CacheManagerBuilder {
        let mut b = CacheManager::builder();
        for (k, v) in self.settings() {
            b = b.set(k, v);
        }
        if let Some(t) = &self.global.token {
            b = b.token(Some(t));
        }
        if let Some(progress) = &self.progress {
            b = b.progress(Arc::clone(progress));
        }
        b
    }

    /// Opens the cache.
    pub(crate) fn manager(&self) -> Result<CacheManager> {
        let cache = self.builder().build()?;
        self.warn_unknown_keys(cache.config());
        Ok(cache)
    }

    /// Opens the cache with extra settings.
    pub(crate) fn manager_with(&self, settings: &[(ConfigKey, String)]) -> Result<CacheManager> {
        let mut b = self.builder();
        for (k, v) in settings {
            b = b.set(*k, v.clone());
        }
        let cache = b.build()?;
        self.warn_unknown_keys(cache.config());
        Ok(cache)
    }

    /// A runtime for the facade's async operations.
    pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("modelcache")
            .build()
            .context("failed to start the async runtime")
    }
}

/// Parses `REPO[@REV]` (with a `datasets/`/`spaces/`/`models/` prefix or `--repo-type`),
/// naming the argument in the error. A prefix that contradicts an explicit `--repo-type`
/// is a usage error, never a silent choice of one of them.
pub(crate) fn parse_ref(value: &str, repo_type: Option<RepoKind>) -> Result<ModelRef> {
    let parsed = ModelRef::parse(value, RepoKind::or_default(repo_type)).map_err(|e| {
        anyhow::Error::new(e).context(Failure::usage(
            format!("invalid repository `{}`", shorten(value)),
            "write it as `ORG/NAME`, `ORG/NAME@REVISION`, `datasets/ORG/NAME` or `spaces/ORG/NAME`",
        ))
    })?;
    let prefixed = matches!(value.split_once('/'), Some(("datasets" | "spaces" | "models", _)));
    if let Some(kind) = repo_type
        && prefixed
        && parsed.repo.repo_type != kind.repo_type()
    {
        return Err(Failure::usage(
            format!(
                "`--repo-type {}` contradicts the `{}` prefix of `{}`",
                kind.repo_type(),
                value.split('/').next().unwrap_or_default(),
                shorten(value)
            ),
            "drop `--repo-type`, or the prefix",
        )
        .into());
    }
    Ok(parsed)
}

/// What `rm`, `pin`, `unpin` and `verify` name: `REPO[@REV]` (anything with a `/` or an
/// `@`, parsed as [`parse_ref`] does), else a URL artifact by URL, name or id, or a
/// legacy repository id such as `gpt2` ([`CacheManager::resolve_target`]).
pub(crate) fn resolve_target(cache: &CacheManager, value: &str, repo_type: Option<RepoKind>) -> Result<Target> {
    if !crate::cmd::get::is_url(value) && value.contains(['/', '@']) {
        return Ok(Target::Repo(parse_ref(value, repo_type)?));
    }
    cache.resolve_target(value, RepoKind::or_default(repo_type)).map_err(|e| match e {
        CacheError::InvalidInput { .. } => anyhow::Error::new(e).context(Failure::usage(
            format!("`{}` is neither a cached URL artifact nor a repository", shorten(value)),
            "give an artifact's name or URL as `modelcache ls` shows it, or a repository as `ORG/NAME[@REV]`",
        )),
        other => other.into(),
    })
}

/// A value for a message: control characters escaped, at most 80 characters.
pub(crate) fn shorten(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 { format!("{}…", escaped.chars().take(80).collect::<String>()) } else { escaped }
}
