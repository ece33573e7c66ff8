//! The scenarios of the lockfile issue: a bundle import against `sha256sum` + `cp` of the
//! same bytes, and `sync` of a lock whose files are all cached.

use std::path::Path;
use std::process::Command;

use super::contenders::{PY_SNAPSHOT_OFFLINE, ours};
use super::measure;
use super::report::Table;
use super::runner::{Cleanup, Contender, alternate};
use super::scenarios::Ctx;

/// `ours` run inside `dir` (where `modelcache.toml` and `modelcache.lock` are).
fn ours_in(ctx: &Ctx<'_>, cache: &Path, project: &Path) -> Command {
    let mut c = ours(ctx.bins, cache, &ctx.hub.url);
    c.current_dir(project);
    c
}

/// A project folder with a manifest of `repo`, its lock and its files cached under `dir`.
fn synced(ctx: &Ctx<'_>, dir: &Path, repo: &str) -> Result<(), String> {
    std::fs::write(dir.join("modelcache.toml"), format!("[[model]]\nrepo = \"{repo}\"\n"))
        .map_err(|e| format!("writing the manifest: {e}"))?;
    measure::run(ours_in(ctx, dir, dir).args(["sync"]), dir)?;
    Ok(())
}

/// `bundle import` of the big LFS file's bundle into an empty cache, against reading and
/// hashing the same tar with `sha256sum` and copying it with `cp` (the floor: one hash,
/// one copy of the same bytes on the same disk).
pub(crate) fn import(ctx: &Ctx<'_>) -> Result<Table, String> {
    let source = ctx.fresh_dir("import-source")?;
    synced(ctx, &source, "bench/big")?;
    let bundle = source.join("big.tar");
    measure::run(ours_in(ctx, &source, &source).args(["bundle", "create"]).arg(&bundle), &source)?;
    let _ = std::fs::remove_dir_all(source.join("hub"));
    let size = std::fs::metadata(&bundle).map_err(|e| format!("{}: {e}", bundle.display()))?.len();
    let contenders = vec![
        Contender::new("sha256sum + cp", "floor", |d: &Path| {
            let mut c = Command::new("sh");
            c.args(["-c", "sha256sum \"$1\" > /dev/null && cp \"$1\" \"$2\"", "sh"]).arg(&bundle).arg(d.join("copy.tar"));
            Ok(c)
        }),
        Contender::new("modelcache bundle import", "ours", |d: &Path| {
            let mut c = ours(ctx.bins, d, &ctx.hub.url);
            c.args(["bundle", "import"]).arg(&bundle);
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.runs.min(3), &ctx.scratch("import"), Cleanup::EachRun);
    let _ = std::fs::remove_dir_all(&source);
    Ok(Table {
        name: "import",
        title: format!("`bundle import` of a {} MiB bundle into an empty cache", size >> 20),
        target: "≤ 1.2× `sha256sum` + `cp` of the same bytes on the same disk",
        baseline: "sha256sum + cp",
        extra_label: None,
        rows,
        note: None,
    })
}

/// `sync --frozen` of a 500-file lock whose files are all cached, offline, against
/// huggingface_hub's offline `snapshot_download` of the same snapshot.
pub(crate) fn sync_complete(ctx: &Ctx<'_>) -> Result<Table, String> {
    let shared = ctx.fresh_dir("sync-cache")?;
    synced(ctx, &shared, "bench/small")?;
    let contenders = vec![
        Contender::new("modelcache --offline sync --frozen", "ours", |_d: &Path| {
            let mut c = ours_in(ctx, &shared, &shared);
            c.args(["--offline", "sync", "--frozen"]);
            Ok(c)
        }),
        Contender::new("modelcache verify --lock", "ours", |_d: &Path| {
            let mut c = ours_in(ctx, &shared, &shared);
            c.args(["verify", "--lock"]);
            Ok(c)
        }),
        Contender::new("huggingface_hub snapshot_download (offline)", "peer", |_d: &Path| {
            let mut c = super::contenders::python(ctx.bins, &shared, &ctx.hub.url, PY_SNAPSHOT_OFFLINE, &["bench/small"])
                .ok_or_else(|| "no Python with huggingface_hub (cargo xtask py-env)".to_owned())?;
            c.env("HF_HUB_OFFLINE", "1");
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.warm_runs.min(10), &ctx.scratch("sync-complete"), Cleanup::EachRun);
    let _ = std::fs::remove_dir_all(&shared);
    Ok(Table {
        name: "sync-complete",
        title: "`sync` of a complete 500-file lock (all cached), whole process".to_owned(),
        target: "well under a second",
        baseline: "modelcache --offline sync --frozen",
        extra_label: None,
        rows,
        note: Some("`verify --lock` re-hashes every blob; `sync` checks links and sizes only.".to_owned()),
    })
}
