//! Scenarios of storing each byte once: a cross-repo hit of a large file, `get --to DIR`
//! by reflink/copy and by hard link, and `dedup` of a 100 000-entry cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::contenders::ours;
use super::measure;
use super::report::Table;
use super::runner::{Cleanup, Contender, alternate};
use super::scenarios::Ctx;

/// The two repos sharing one large LFS file (same content, same seed in the testkit).
pub(crate) const BASE: &str = "bench/base";
pub(crate) const FORK: &str = "bench/fork";

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// A scratch cache holding `bench/base`, made once.
fn base_cache(ctx: &Ctx<'_>) -> Result<PathBuf, String> {
    let shared = ctx.scratch.join("sharing-cache");
    if !shared.join("ready").exists() {
        let _ = std::fs::remove_dir_all(&shared);
        std::fs::create_dir_all(&shared).map_err(|e| e.to_string())?;
        measure::run(ours(ctx.bins, &shared, &ctx.hub.url).args(["get", BASE, "model.safetensors"]), &shared)?;
        std::fs::write(shared.join("ready"), b"").map_err(|e| e.to_string())?;
    }
    Ok(shared)
}

/// `get` of the fork's copy of a file the base repo holds: no transfer, a hard link.
pub(crate) fn cross_repo(ctx: &Ctx<'_>) -> Result<Table, String> {
    let shared = base_cache(ctx)?;
    let blob = std::fs::read_dir(shared.join("hub/models--bench--base/blobs"))
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .next()
        .ok_or("no blob in the base repo")?;
    let forget_fork = |s: &Path| -> Result<(), String> {
        let _ = measure::run(ours(ctx.bins, s, &ctx.hub.url).args(["rm", FORK]), s);
        Ok(())
    };
    let s = shared.clone();
    let contenders = vec![
        Contender::new("ln (one hard link)", "floor", move |d: &Path| {
            let mut c = Command::new("ln");
            c.arg(&blob).arg(d.join("linked"));
            Ok(c)
        }),
        Contender::new("modelcache get (cross-repo hit)", "ours", move |_d: &Path| {
            forget_fork(&s)?;
            let mut c = ours(ctx.bins, &s, &ctx.hub.url);
            c.args(["get", FORK, "model.safetensors"]);
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.warm_runs.min(10), &ctx.scratch.join("cross-repo"), Cleanup::AtEnd);
    Ok(Table {
        name: "cross-repo",
        title: format!(
            "A {} file another repo of the cache holds, whole process (one metadata request, no transfer)",
            mib(ctx.plan.big)
        ),
        target: "well under 50 ms",
        baseline: "ln (one hard link)",
        extra_label: None,
        rows,
        note: None,
    })
}

/// `get --to DIR` of a cached large file, by hard link and with `auto` (reflink, else copy).
pub(crate) fn to_dir(ctx: &Ctx<'_>) -> Result<Table, String> {
    let shared = base_cache(ctx)?;
    let get = |mode: &'static str| {
        let shared = shared.clone();
        move |d: &Path| {
            let mut c = ours(ctx.bins, &shared, &ctx.hub.url);
            c.args(["--offline", "get", BASE, "model.safetensors", "--to"]).arg(d.join("out")).args(["--link-mode", mode]);
            Ok(c)
        }
    };
    let blob = shared.join("hub/models--bench--base/blobs");
    let contenders = vec![
        Contender::new("cp --reflink=auto", "floor", move |d: &Path| {
            let src = std::fs::read_dir(&blob).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).next().ok_or("no blob")?;
            let mut c = Command::new("cp");
            c.arg("--reflink=auto").arg(src).arg(d.join("copy"));
            Ok(c)
        }),
        Contender::new("modelcache get --to --link-mode hardlink", "ours", get("hardlink")),
        Contender::new("modelcache get --to (auto)", "ours", get("auto")),
    ];
    let rows = alternate(&contenders, ctx.plan.runs, &ctx.scratch.join("to-dir"), Cleanup::EachRun);
    Ok(Table {
        name: "to-dir",
        title: format!("`get --to DIR` of a cached {} file, whole process (offline)", mib(ctx.plan.big)),
        target: "< 50 ms with reflink or hardlink (`auto` is a copy on a filesystem without reflinks)",
        baseline: "cp --reflink=auto",
        extra_label: None,
        rows,
        note: None,
    })
}

/// Adds to every generated repo the same small blob as a separate file (a tokenizer every
/// fine-tune repeats), so `dedup` has one duplicate per repo to link.
fn add_duplicates(hub: &Path) -> Result<(), String> {
    let body = b"{\"shared\": \"tokenizer\"}\n";
    let etag = SHARED_ETAG;
    for entry in std::fs::read_dir(hub).map_err(|e| e.to_string())?.flatten() {
        let folder = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("models--") {
            continue;
        }
        let blob = folder.join("blobs").join(etag);
        let _ = std::fs::remove_file(&blob);
        std::fs::write(&blob, body).map_err(|e| e.to_string())?;
        for snap in std::fs::read_dir(folder.join("snapshots")).map_err(|e| e.to_string())?.flatten() {
            let link = snap.path().join("shared.json");
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("../../blobs/{etag}"), &link).map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(())
}

/// The git-sha1 of that blob (`printf 'blob 24\0{"shared": "tokenizer"}\n' | sha1sum`):
/// xtask has no hash crate.
const SHARED_ETAG: &str = "c943f42df6b3068396ecc8f693d7bc3ded5262fa";

/// `dedup` of a 100 000-entry cache in which every repo holds its own copy of one blob.
pub(crate) fn dedup(ctx: &Ctx<'_>) -> Result<Table, String> {
    let (repos, files) = ctx.plan.entries;
    let shared = ctx.scratch.join("dedup-cache");
    if !shared.join("ready").exists() {
        let _ = std::fs::remove_dir_all(&shared);
        crate::cmd::run(Command::new(&ctx.bins.gencache).arg(shared.join("hub")).arg(repos.to_string()).arg(files.to_string()))?;
        add_duplicates(&shared.join("hub"))?;
        measure::run(ours(ctx.bins, &shared, &ctx.hub.url).args(["--offline", "stats"]), &shared)?;
        std::fs::write(shared.join("ready"), b"").map_err(|e| e.to_string())?;
    }
    let hub = shared.join("hub");
    let (s1, s2) = (shared.clone(), shared.clone());
    let contenders = vec![
        Contender::new("modelcache dedup --dry-run", "ours", move |_d: &Path| {
            let mut c = ours(ctx.bins, &s1, &ctx.hub.url);
            c.args(["--offline", "dedup", "--dry-run"]);
            Ok(c)
        }),
        Contender::new("modelcache dedup (links one copy per repo)", "ours", move |_d: &Path| {
            // Each run gets the duplicates back (separate files again), as Python writes them.
            add_duplicates(&hub)?;
            let mut c = ours(ctx.bins, &s2, &ctx.hub.url);
            c.args(["--offline", "dedup"]);
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.runs, &ctx.scratch.join("dedup"), Cleanup::AtEnd);
    Ok(Table {
        name: "dedup",
        title: format!("`dedup` of {} entries ({repos} repos, one duplicated blob in each), whole process", repos * (files + 1)),
        target: "seconds, not minutes",
        baseline: "modelcache dedup --dry-run",
        extra_label: None,
        rows,
        note: Some("The full run reads what the duplicates' repos changed on disk again (their `blobs/` folders changed) before linking, as after Python wrote them.".to_owned()),
    })
}

/// The `serve` flags of the two repos sharing a file.
pub(crate) fn hub_args(big: u64) -> Vec<String> {
    // One seed for both: the same bytes, so the same sha256.
    let file = format!("model.safetensors={big}:lfs:seed=77");
    vec!["--repo".into(), BASE.into(), "--file".into(), file.clone(), "--repo".into(), FORK.into(), "--file".into(), file]
}
