//! `lock`, `sync`, `verify --lock` and `bundle create|import`: reproducible model sets
//! from `modelcache.toml` and `modelcache.lock`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use modelcache::{
    ConfigKey, ErrorKind, ImportOptions, LOCK_FILE, Lock, LockfileError, MANIFEST_FILE, Manifest, ModelRef, RepoType,
    SyncOptions, Upgrade, stale_entries,
};
use serde::Serialize;

use crate::app::App;
use crate::cli::{BundleCreateArgs, BundleImportArgs, LockArgs, LockFiles, SyncArgs};
use crate::format;
use crate::report::Failure;

/// The manifest's and the lock's paths: given, or `./modelcache.toml` and the lock next
/// to the manifest.
fn paths(files: &LockFiles) -> (PathBuf, PathBuf) {
    let manifest = files.manifest.clone().unwrap_or_else(|| PathBuf::from(MANIFEST_FILE));
    let lock = files.lock.clone().unwrap_or_else(|| manifest.with_file_name(LOCK_FILE));
    (manifest, lock)
}

fn no_file(what: &str, path: &Path, hint: &str) -> anyhow::Error {
    Failure::usage(format!("no {what} at `{}`", path.display()), hint).into()
}

fn load_manifest(path: &Path) -> Result<Manifest> {
    if !path.exists() {
        return Err(no_file(
            "manifest",
            path,
            "write a `modelcache.toml` with `[[model]]` entries (README: Reproducible model sets), or pass `--manifest PATH`",
        ));
    }
    Ok(Manifest::load(path).map_err(modelcache::CacheError::from)?)
}

fn load_lock(path: &Path) -> Result<Lock> {
    if !path.exists() {
        return Err(no_file("lock", path, "run `modelcache lock` to create it, or pass `--lock PATH`"));
    }
    Ok(Lock::load(path).map_err(modelcache::CacheError::from)?)
}

#[derive(Debug, Serialize)]
struct LockOutput<'a> {
    lock: &'a Path,
    written: bool,
    repos: usize,
    files: usize,
    bytes: u64,
    changes: &'a [modelcache::LockChange],
}

fn short(commit: Option<&String>) -> &str {
    commit.map_or("-", |c| &c[..c.len().min(12)])
}

pub(crate) fn lock(app: &App, args: &LockArgs) -> Result<()> {
    let (manifest_path, lock_path) = paths(&args.files);
    let manifest = load_manifest(&manifest_path)?;
    let existing = if lock_path.exists() { Some(load_lock(&lock_path)?) } else { None };
    let upgrade = match args.upgrade.as_deref() {
        None => Upgrade::None,
        Some("") => Upgrade::All,
        Some(r) => {
            let model = ModelRef::parse(r, RepoType::Model)?;
            Upgrade::Repos(vec![model.repo])
        }
    };
    let cache = app.manager()?;
    let rt = App::runtime()?;
    let resolution = rt.block_on(cache.resolve_lock(&manifest, existing.as_ref(), &upgrade))?;
    let text = resolution.lock.to_toml();
    let unchanged = std::fs::read_to_string(&lock_path).is_ok_and(|old| old == text);
    if !unchanged {
        resolution.lock.save(&lock_path).map_err(modelcache::CacheError::from)?;
    }
    let (files, bytes) = resolution.lock.totals();
    let out = LockOutput {
        lock: &lock_path,
        written: !unchanged,
        repos: resolution.lock.models.len() + resolution.lock.urls.len(),
        files,
        bytes,
        changes: &resolution.changes,
    };
    app.out.emit(&out, || {
        let mut s = String::new();
        for c in &resolution.changes {
            let commits = match (&c.old_commit, &c.new_commit) {
                (Some(o), Some(n)) if o != n => format!("{} -> {}", short(Some(o)), short(Some(n))),
                (o, n) => short(n.as_ref().or(o.as_ref())).to_owned(),
            };
            let _ = writeln!(s, "{:<9} {}  {commits}  {}", c.action, c.entry, format::count(c.files as u64, "file", "files"));
        }
        let what = format!(
            "{} ({}, {}, {})",
            lock_path.display(),
            format::count(out.repos as u64, "entry", "entries"),
            format::count(files as u64, "file", "files"),
            format::size(bytes)
        );
        let _ = writeln!(s, "{} {what}", if unchanged { "up to date:" } else { "wrote" });
        s
    })
}

#[derive(Debug, Serialize)]
struct SyncOutput<'a> {
    lock: &'a Path,
    relocked: bool,
    #[serde(flatten)]
    report: &'a modelcache::SyncReport,
}

pub(crate) fn sync(app: &App, args: &SyncArgs) -> Result<()> {
    let (manifest_path, lock_path) = paths(&args.files);
    let mut relocked = false;
    let settings: Vec<(ConfigKey, String)> = args.jobs.map(|j| (ConfigKey::Parallelism, j.to_string())).into_iter().collect();
    let cache = app.manager_with(&settings)?;
    let rt = App::runtime()?;
    let lock = if args.frozen {
        load_lock(&lock_path)?
    } else if !manifest_path.exists() && lock_path.exists() {
        return Err(Failure::usage(
            format!("no manifest at `{}` (there is a lock at `{}`)", manifest_path.display(), lock_path.display()),
            "pass `--frozen` to sync the lock as it is, or `--manifest PATH`",
        )
        .into());
    } else {
        let manifest = load_manifest(&manifest_path)?;
        let existing = if lock_path.exists() { Some(load_lock(&lock_path)?) } else { None };
        let stale = match &existing {
            Some(l) => stale_entries(&manifest, l),
            None => vec![format!("there is no lock at `{}`", lock_path.display())],
        };
        match existing {
            Some(l) if stale.is_empty() => l,
            _ if args.locked => {
                return Err(modelcache::CacheError::from(LockfileError::Stale {
                    manifest: manifest_path.clone(),
                    lock: lock_path.clone(),
                    changed: stale,
                })
                .into());
            }
            existing => {
                let r = rt.block_on(cache.resolve_lock(&manifest, existing.as_ref(), &Upgrade::None))?;
                r.lock.save(&lock_path).map_err(modelcache::CacheError::from)?;
                app.out.note(&format!("updated {} ({})", lock_path.display(), stale.join("; ")));
                relocked = true;
                r.lock
            }
        }
    };
    let options = SyncOptions { repair: args.repair, write_refs: !args.no_refs };
    let started = std::time::Instant::now();
    let report = rt.block_on(cache.sync(&lock, &options))?;
    app.finish_progress(report.files, report.present, report.bytes_downloaded, started.elapsed());
    let out = SyncOutput { lock: &lock_path, relocked, report: &report };
    app.out.emit(&out, || {
        let mut s = String::new();
        for r in &report.repaired {
            let _ = writeln!(s, "replaced  {r}");
        }
        for r in &report.refs_written {
            let _ = writeln!(s, "ref       {r}");
        }
        let _ = writeln!(
            s,
            "synced {} of {}: {} present, {} downloaded ({})",
            format::count(report.files as u64, "file", "files"),
            format::count(report.repos as u64, "repository", "repositories"),
            report.present,
            report.downloaded,
            format::size(report.bytes_downloaded)
        );
        s
    })
}

pub(crate) fn verify_lock(app: &App, path: &Path) -> Result<()> {
    let lock = load_lock(path)?;
    let cache = app.manager()?;
    let check = cache.verify_lock(&lock)?;
    app.out.emit(&check, || {
        let mut s = String::new();
        for d in &check.differs {
            let _ = writeln!(s, "differs   {d}");
        }
        for m in &check.missing {
            let _ = writeln!(s, "missing   {m}");
        }
        let _ = writeln!(
            s,
            "{} of {} verified against {}",
            check.present,
            format::count(check.files as u64, "file", "files"),
            path.display()
        );
        s
    })?;
    if check.is_complete() {
        return Ok(());
    }
    let hint = if check.differs.is_empty() {
        "run `modelcache sync` to fetch the missing files (or `modelcache bundle import` on a machine without network)"
    } else {
        "run `modelcache sync --repair` to replace the differing files"
    };
    Err(Failure::new(
        ErrorKind::Integrity,
        format!(
            "the cache does not match `{}`: {} differ, {} missing",
            path.display(),
            format::count(check.differs.len() as u64, "file", "files"),
            check.missing.len()
        ),
        hint,
    )
    .into())
}

pub(crate) fn bundle_create(app: &App, args: &BundleCreateArgs) -> Result<()> {
    let lock_path = args.lock.clone().unwrap_or_else(|| PathBuf::from(LOCK_FILE));
    let lock = load_lock(&lock_path)?;
    let cache = app.manager()?;
    let report = cache.bundle_create(&lock, &args.out)?;
    app.out.emit(&report, || {
        format!(
            "wrote {}: {}{}, {}, {} ({} in all)\nsha256 {}\n",
            report.path.display(),
            format::count(report.repos as u64, "repository", "repositories"),
            if report.urls > 0 {
                format!(", {}", format::count(report.urls as u64, "URL artifact", "URL artifacts"))
            } else {
                String::new()
            },
            format::count(report.files as u64, "file", "files"),
            format::count(report.blobs as u64, "blob", "blobs"),
            format::size(report.size),
            report.sha256
        )
    })
}

pub(crate) fn bundle_import(app: &App, args: &BundleImportArgs) -> Result<()> {
    if !args.bundle.is_file() {
        return Err(no_file("bundle", &args.bundle, "give the path of a tar written by `modelcache bundle create`"));
    }
    let expect = args.lock.as_deref().map(load_lock).transpose()?;
    let cache = app.manager()?;
    let report = cache.bundle_import(&args.bundle, &ImportOptions { dry_run: args.dry_run, expect })?;
    app.out.emit(&report, || {
        format!(
            "{} {} of {}: {} {} ({}), {} already cached\n",
            if report.dry_run { "checked (dry run, nothing written)" } else { "imported" },
            format::count(report.files as u64, "file", "files"),
            format::count(report.repos as u64, "repository", "repositories"),
            format::count(report.blobs_written as u64, "blob", "blobs"),
            if report.dry_run { "would be written" } else { "written" },
            format::size(report.bytes_written),
            report.blobs_skipped
        )
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use modelcache::LockfileError;

    use crate::cli::Cli;

    #[test]
    fn lockfile_hints_name_commands_and_options_that_exist() {
        let p = std::path::PathBuf::from("x");
        let errors = [
            LockfileError::Invalid { what: "lock", path: p.clone(), reason: String::new() },
            LockfileError::Invalid { what: "manifest", path: p.clone(), reason: String::new() },
            LockfileError::Stale { manifest: p.clone(), lock: p.clone(), changed: vec![] },
            LockfileError::Differs { problems: vec![], repairable: true },
            LockfileError::Differs { problems: vec![], repairable: false },
            LockfileError::BundleMismatch { path: p.clone(), reason: String::new() },
            LockfileError::HostileBundle { path: p, entry: String::new(), reason: String::new() },
        ];
        let mut checked = 0;
        for e in errors {
            let hint = e.hint();
            for (i, quoted) in hint.split('`').enumerate() {
                let words: Vec<&str> = quoted.split_whitespace().collect();
                let args: Vec<&str> = match words.first() {
                    Some(&"modelcache") if i % 2 == 1 => words.clone(),
                    Some(flag) if i % 2 == 1 && flag.starts_with("--") => vec!["modelcache", "sync", flag],
                    _ => continue,
                };
                if let Err(err) = Cli::try_parse_from(&args) {
                    assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument, "`{quoted}` in {hint:?}: {err}");
                }
                checked += 1;
            }
        }
        assert!(checked >= 6, "{checked}");
    }
}
