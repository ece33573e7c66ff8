//! What every command shares: the global options turned into a [`CacheManager`] (opened
//! only by commands that need the cache), the async runtime (only for commands that
//! download or do long work), and output: text or JSON on stdout, notes on stderr.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use modelcache::{
    CacheError, CacheManager, CacheManagerBuilder, ConfigKey, ConfigLoader, EffectiveConfig, ModelRef, RepoPath, RepoType,
    Revision, Target,
};
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
    /// The bars, when `progress` is them.
    bars: Option<Arc<Bars>>,
}

/// Where results go: stdout, as text or JSON; notes on stderr unless quiet.
#[derive(Clone, Copy, Debug)]
#[expect(clippy::struct_excessive_bools, reason = "independent output switches, each from its own option")]
pub(crate) struct Output {
    pub(crate) json: bool,
    pub(crate) quiet: bool,
    /// `--log-format json`: notes and warnings are log events, nothing else is written
    /// to stderr.
    pub(crate) log_json: bool,
    /// Whether stderr gets ANSI colour (a terminal, and `NO_COLOR` unset).
    pub(crate) color: bool,
}

impl Output {
    pub(crate) fn new(json: bool, quiet: bool) -> Self {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Output { json, quiet, log_json: false, color }
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
        if self.log_json {
            tracing::info!(note = line, "note");
        } else if !self.quiet && !self.json {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }

    /// A warning on stderr (not with `--json`, where it is part of the result).
    pub(crate) fn warn(self, line: &str) {
        if self.log_json {
            tracing::warn!(warning = line, "warning");
        } else if !self.json {
            let prefix = if self.color { "\x1b[1;33mwarning:\x1b[0m" } else { "warning:" };
            let _ = writeln!(std::io::stderr().lock(), "{prefix} {line}");
        }
    }
}

impl App {
    /// With `log_json`, stderr carries JSON log lines only: no bars or notes.
    pub(crate) fn new(global: Global, log_json: bool) -> Self {
        let out = Output { log_json, ..Output::new(global.json, global.quiet) };
        let silent = global.quiet || global.json || log_json;
        let bars = (!silent && std::io::stderr().is_terminal()).then(|| Arc::new(Bars::new()));
        let progress: Option<Arc<dyn modelcache::Progress>> = match (&bars, silent) {
            (Some(bars), _) => Some(Arc::clone(bars) as Arc<dyn modelcache::Progress>),
            (None, true) => None,
            (None, false) => Some(Arc::new(Notes::default())),
        };
        App { global, out, progress, bars }
    }

    /// Clears the bars (a command's report follows on stdout), with no summary line.
    pub(crate) fn clear_progress(&self) {
        if let Some(bars) = &self.bars {
            bars.finish();
        }
    }

    /// Clears the progress bars and, on a terminal, ends with one summary line of what
    /// was fetched (`files` in all, `hits` of them from the cache, `bytes` downloaded);
    /// a single file that was a hit needs none.
    pub(crate) fn finish_progress(&self, files: usize, hits: usize, bytes: u64, elapsed: std::time::Duration) {
        let Some(bars) = &self.bars else { return };
        bars.finish();
        if files > 1 || hits < files {
            self.out.note(&crate::progress::summary(files, hits, bytes, elapsed));
        }
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
        if g.no_remote {
            s.push((ConfigKey::Remote, "none".to_owned()));
        } else if !g.remote.is_empty() {
            s.push((ConfigKey::Remote, g.remote.join(",")));
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

/// Parses `REPO[@REV]` (with a type prefix — `datasets/`, `dataset/`, `hf://datasets/`… —
/// or `--repo-type`), naming the argument in the error. A prefix that contradicts an
/// explicit `--repo-type` is a usage error, never a silent choice of one of them.
pub(crate) fn parse_ref(value: &str, repo_type: Option<RepoKind>) -> Result<ModelRef> {
    match parse_location(value, repo_type)? {
        (model, None) => Ok(model),
        (_, Some(path)) => Err(Failure::usage(
            format!("`{}` names the file `{path}` where a repository is expected", shorten(value)),
            "give the repository alone, and the file as a separate argument where the command takes one",
        )
        .into()),
    }
}

/// [`parse_ref`] for a value that may also name a file (`hf://org/name@v1/config.json`).
pub(crate) fn parse_location(value: &str, repo_type: Option<RepoKind>) -> Result<(ModelRef, Option<RepoPath>)> {
    let parse = |t| ModelRef::parse_location(value, t);
    let parsed = parse(RepoKind::or_default(repo_type)).map_err(|e| {
        anyhow::Error::new(e).context(Failure::usage(
            format!("invalid repository `{}`", shorten(value)),
            "write it as `ORG/NAME`, `ORG/NAME@REVISION`, `datasets/ORG/NAME`, `dataset/ORG/NAME` (as `hf cache ls` prints it) or `hf://datasets/ORG/NAME`",
        ))
    })?;
    // The value names its type when parsing it as another default changes nothing.
    let other = if parsed.0.repo.repo_type == RepoType::Model { RepoType::Dataset } else { RepoType::Model };
    let prefixed = parse(other).is_ok_and(|(m, _)| m.repo.repo_type == parsed.0.repo.repo_type);
    if let Some(kind) = repo_type
        && prefixed
        && parsed.0.repo.repo_type != kind.repo_type()
    {
        return Err(Failure::usage(
            format!(
                "`--repo-type {}` contradicts the `{}` prefix of `{}`",
                kind.repo_type(),
                value.trim_start_matches("hf://").split('/').next().unwrap_or_default(),
                shorten(value)
            ),
            "drop `--repo-type`, or the prefix",
        )
        .into());
    }
    Ok(parsed)
}

/// `model` at `--revision REV`: the same as `@REV`, so giving both is a usage error unless
/// they agree.
pub(crate) fn with_revision(mut model: ModelRef, revision: Option<&str>) -> Result<ModelRef> {
    let Some(rev) = revision else { return Ok(model) };
    let parsed: Revision = rev.parse().map_err(|e| {
        anyhow::Error::new(CacheError::from(e))
            .context(Failure::usage(format!("invalid `--revision` `{}`", shorten(rev)), "give a branch, a tag or a commit"))
    })?;
    match &model.revision {
        Some(r) if *r != parsed => Err(Failure::usage(
            format!("`@{r}` and `--revision {}` name different revisions", shorten(rev)),
            "give the revision once, as `REPO@REV` or with `--revision`",
        )
        .into()),
        _ => {
            model.revision = Some(parsed);
            Ok(model)
        }
    }
}

/// `model` with a short commit prefix (as `ls --revisions` prints it) replaced by the
/// cached commit it names ([`CacheManager::expand_revision`]).
pub(crate) fn expand(cache: &CacheManager, model: ModelRef) -> Result<ModelRef> {
    Ok(cache.expand_revision(model)?)
}

/// What `rm`, `pin`, `unpin` and `verify` name: `REPO[@REV]` (anything with a `/` or an
/// `@`, parsed as [`parse_ref`] does, a short commit expanded), else a URL artifact by
/// URL, name or id, or a legacy repository id such as `gpt2`
/// ([`CacheManager::resolve_target`]), or a cached commit by a prefix unique in the cache
/// (as `hf cache rm <revision>` takes it).
pub(crate) fn resolve_target(
    cache: &CacheManager,
    value: &str,
    repo_type: Option<RepoKind>,
    revision: Option<&str>,
) -> Result<Target> {
    if !crate::cmd::get::is_url(value) && value.contains(['/', '@']) {
        return Ok(Target::Repo(expand(cache, with_revision(parse_ref(value, repo_type)?, revision)?)?));
    }
    let resolved = cache.resolve_target(value, RepoKind::or_default(repo_type));
    if !matches!(resolved, Ok(Target::Artifact(_))) && repo_type.is_none() && revision.is_none() {
        let commits = cache.find_commit(value)?;
        match commits.as_slice() {
            [] => {}
            [one] => return Ok(Target::Repo(one.clone())),
            many => {
                return Err(CacheError::Ambiguous {
                    what: value.to_owned(),
                    candidates: many.iter().map(ToString::to_string).collect(),
                }
                .into());
            }
        }
    }
    match resolved {
        Ok(Target::Repo(model)) => Ok(Target::Repo(expand(cache, with_revision(model, revision)?)?)),
        Ok(Target::Artifact(_)) if revision.is_some() => {
            Err(Failure::usage("`--revision` applies to repositories only", "drop it for a URL artifact").into())
        }
        Ok(t) => Ok(t),
        Err(e @ CacheError::InvalidInput { .. }) => Err(anyhow::Error::new(e).context(Failure::usage(
            format!("`{}` is neither a cached URL artifact nor a repository", shorten(value)),
            "give an artifact's name or URL as `modelcache ls` shows it, or a repository as `ORG/NAME[@REV]`",
        ))),
        Err(other) => Err(other.into()),
    }
}

/// A value for a message: control characters escaped, at most 80 characters.
pub(crate) fn shorten(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 { format!("{}…", escaped.chars().take(80).collect::<String>()) } else { escaped }
}
