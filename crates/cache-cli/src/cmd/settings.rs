//! `pin`/`unpin`, `config` and `dir`. `config` and `dir` only read the configuration:
//! they neither create nor open the cache.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use modelcache::{AcquisitionInfo, ConfigSource, EffectiveConfig, Target, TokenSource, UnknownKey};
use serde::Serialize;

use crate::app::{App, resolve_target};
use crate::cli::PinArgs;
use crate::format::{Align, Table};

/// `pin --json` / `unpin --json`.
#[derive(Debug, Serialize)]
struct PinResult {
    target: String,
    pinned: bool,
    cached: bool,
    /// `unpin`: whether a pin was removed (`false`: it was not pinned, nothing changed).
    #[serde(skip_serializing_if = "Option::is_none")]
    was_pinned: Option<bool>,
}

pub(crate) fn pin(app: &App, args: &PinArgs, on: bool) -> Result<()> {
    let cache = app.manager()?;
    let mut was_pinned = None;
    let (target, cached) = match resolve_target(&cache, &args.repo, args.repo_type, args.revision.as_deref())? {
        Target::Artifact(a) => {
            if on {
                cache.pin_artifact(&a)?;
            } else {
                was_pinned = Some(cache.unpin_artifact(&a)?);
            }
            (a.describe(), true)
        }
        Target::Repo(target) => {
            if on {
                cache.pin(&target)?;
            } else {
                was_pinned = Some(cache.unpin(&target)?);
            }
            let cached = cache.list()?.iter().any(|r| r.artifact.is_none() && r.model_id == target.repo.to_string());
            if on && !cached {
                app.out.warn(&format!("`{target}` is not cached yet: the pin protects it once it is downloaded"));
            }
            (target.to_string(), cached)
        }
    };
    let result = PinResult { target, pinned: on, cached, was_pinned };
    app.out.emit(&result, || match result.was_pinned {
        Some(false) => format!("`{}` was not pinned: nothing changed\n", result.target),
        _ => format!("{} `{}`\n", if on { "pinned" } else { "unpinned" }, result.target),
    })
}

/// One setting in `config --json`.
#[derive(Debug, Serialize)]
struct Setting {
    key: &'static str,
    value: String,
    source: String,
    env_var: String,
}

/// `config --json`.
#[derive(Debug, Serialize)]
struct ConfigReport {
    config_file: Option<PathBuf>,
    /// Where the config file was looked for (it may not exist).
    config_file_searched: Option<PathBuf>,
    /// Keys of the file that are not settings (ignored).
    unknown_keys: Vec<UnknownKey>,
    settings: Vec<Setting>,
    /// The strategy the settings select.
    strategy: AcquisitionInfo,
    /// Where the Hub token comes from (never its value).
    token_source: TokenSource,
}

fn source(s: &ConfigSource) -> String {
    match s {
        ConfigSource::Explicit => "command line".to_owned(),
        other => other.to_string(),
    }
}

fn config_report(c: &EffectiveConfig, token_source: TokenSource) -> ConfigReport {
    ConfigReport {
        token_source,
        config_file: c.file.clone(),
        config_file_searched: c.searched.clone(),
        unknown_keys: c.unknown_keys.clone(),
        settings: c
            .explain()
            .into_iter()
            .map(|(k, value, s)| Setting { key: k.name(), value, source: source(&s), env_var: k.env_var() })
            .collect(),
        strategy: modelcache::select_strategy(&c.config).acquisition_info(),
    }
}

fn config_text(r: &ConfigReport) -> String {
    let mut t = Table::new(&[("KEY", Align::Left), ("VALUE", Align::Left), ("SOURCE", Align::Left)]);
    for s in &r.settings {
        t.row(vec![s.key.to_owned(), s.value.clone(), s.source.clone()]);
    }
    let mut file = match (&r.config_file, &r.config_file_searched) {
        (Some(f), _) => f.display().to_string(),
        (None, Some(looked)) => format!("none found (looked for `{}`)", looked.display()),
        (None, None) => "none (no `MODELCACHE_CONFIG`, and no home directory to look in)".to_owned(),
    };
    for w in &r.unknown_keys {
        let _ = write!(file, "\n  ignored:   {w}");
    }
    let st = &r.strategy;
    let availability = if st.available { "available" } else { "not available in this build" };
    let token = match &r.token_source {
        TokenSource::None => "none (set `HF_TOKEN`, or pass `--token`, for private or gated repositories)".to_owned(),
        source => format!("from {source} (value not shown)"),
    };
    let mut out = format!(
        "{}\nconfig file: {file}\ntoken:       {token}\nstrategy:    {} ({availability}): {}\n",
        t.render(),
        st.name,
        st.description
    );
    for req in &st.requirements {
        out.push_str("  requires:  ");
        out.push_str(req);
        out.push('\n');
    }
    out
}

pub(crate) fn config(app: &App) -> Result<()> {
    let token = match &app.global.token {
        Some(t) => TokenSource::given(Some(t)),
        None => TokenSource::discover(&|k| std::env::var(k).ok()),
    };
    let r = config_report(&app.config()?, token);
    app.out.emit(&r, || config_text(&r))
}

/// `dir --json`.
#[derive(Debug, Serialize)]
struct Dirs {
    cache_dir: PathBuf,
    home: PathBuf,
}

pub(crate) fn dir(app: &App) -> Result<()> {
    let c = app.config()?.config;
    let d = Dirs { cache_dir: c.cache_dir, home: c.home };
    app.out.emit(&d, || format!("hub cache        {}\nmodelcache home  {}\n", d.cache_dir.display(), d.home.display()))
}

#[cfg(test)]
mod tests {
    use modelcache::{ConfigKey, ConfigLoader};

    use super::*;

    #[test]
    fn config_shows_values_and_sources() {
        let loader = ConfigLoader::with_env(|k| match k {
            "HOME" => Some("/home/u".to_owned()),
            "HF_HUB_CACHE" => Some("/data/hub".to_owned()),
            "MODELCACHE_RETRIES" => Some("2".to_owned()),
            "MODELCACHE_STRATEGY" => Some("hybrid".to_owned()),
            "MODELCACHE_CLEANUP_INTERVAL" => Some("12h".to_owned()),
            "MODELCACHE_LOCK_STALL_TIMEOUT" => Some("90s".to_owned()),
            "MODELCACHE_LOCK_MODE" => Some("both".to_owned()),
            "MODELCACHE_REMOTE" => Some("s3://team/hub:ro".to_owned()),
            _ => None,
        })
        .config_file("/nonexistent/config.toml")
        .set(ConfigKey::MaxSize, "1GiB");
        let r = config_report(&loader.load().unwrap(), TokenSource::Env("HF_TOKEN".to_owned()));
        let text = config_text(&r);
        insta::assert_snapshot!(text, @r"
        KEY                 VALUE                      SOURCE
        cache_dir           /data/hub                  env HF_HUB_CACHE
        home                /home/u/.cache/modelcache  default from `$HOME/.cache`
        max_size            1 GiB                      command line
        max_age             none                       default
        low_watermark       0.8                        default
        in_use_grace        5m                         default
        auto_prune          true                       default
        auto_download       true                       default
        download_timeout    none                       default
        read_timeout        30s                        default
        retries             2                          env MODELCACHE_RETRIES
        parallelism         8                          default
        endpoint            https://huggingface.co     default
        offline             false                      default
        revalidate_after    0s                         default
        strategy            hybrid                     env MODELCACHE_STRATEGY
        cleanup_interval    12h                        env MODELCACHE_CLEANUP_INTERVAL
        lock_stall_timeout  1m30s                      env MODELCACHE_LOCK_STALL_TIMEOUT
        lock_mode           both                       env MODELCACHE_LOCK_MODE
        lock_lease          1m                         default
        free_space_margin   auto                       default
        remote              s3://team/hub:ro           env MODELCACHE_REMOTE
        remote_wait         1m                         default

        config file: none found (looked for `/nonexistent/config.toml`)
        token:       from `HF_TOKEN` (value not shown)
        strategy:    hybrid (available): tries network, then cache-only in order until one succeeds
          requires:  a token (`HF_TOKEN`) for private or gated repositories
          requires:  files already in the hub cache, in huggingface_hub's layout (by modelcache, huggingface_hub or hf-hub)
          requires:  network access to the Hub endpoint (`HF_ENDPOINT`), or to the URL
          requires:  the `downloads` feature
        ");
    }
}
