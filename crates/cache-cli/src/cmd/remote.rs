//! `push`, `remote ls`, `remote verify`, and the end of a downloading command: the bounded
//! wait for pushes to the team tiers.

use std::fmt::Write as _;

use anyhow::Result;
use modelcache::CacheManager;

use crate::app::{App, parse_ref};
use crate::cli::{PushArgs, RemoteCommand, RemoteLsArgs, RemoteVerifyArgs};
use crate::format;
use crate::report::Failure;

/// Waits (at most `remote_wait`) for the pushes a downloading command started; says what
/// is left for later.
pub(crate) fn finish(app: &App, runtime: &tokio::runtime::Runtime, cache: &CacheManager) {
    let summary = runtime.block_on(cache.finish_pushes());
    if summary.remembered > 0 {
        app.out.warn(&format!(
            "{} push(es) to the team tier did not finish within `remote_wait`: remembered, `modelcache push` or the next download retries them",
            summary.remembered
        ));
    }
}

pub(crate) fn push(app: &App, args: &PushArgs) -> Result<()> {
    let cache = app.manager()?;
    let targets = if args.all {
        cache.pushable()?
    } else {
        args.targets.iter().map(|t| crate::app::expand(&cache, parse_ref(t, args.repo_type)?)).collect::<Result<Vec<_>>>()?
    };
    if targets.is_empty() {
        return Err(Failure::usage("the cache holds nothing to push", "fetch something first with `modelcache get`").into());
    }
    let runtime = App::runtime()?;
    let mut reports = Vec::new();
    for t in &targets {
        reports.extend(runtime.block_on(cache.push(t))?);
    }
    finish(app, &runtime, &cache);
    app.out.emit(&reports, || {
        reports.iter().fold(String::new(), |mut s, r| {
            let _ = writeln!(
                s,
                "{}@{} → {}: {} blob(s) written ({}), {} already there, listing {}{}",
                r.repo,
                &r.commit[..r.commit.len().min(12)],
                r.tier,
                r.blobs_written,
                format::size(r.bytes_written),
                r.blobs_present,
                match (r.tree, r.tree_replaced) {
                    (true, true) => "replaced (the tier's was wrong)",
                    (true, false) => "pushed",
                    (false, _) => "not pushed (files missing locally and in the tier)",
                },
                if r.refs.is_empty() { String::new() } else { format!(", refs {}", r.refs.join(", ")) },
            );
            s
        })
    })
}

pub(crate) fn run(app: &App, command: &RemoteCommand) -> Result<()> {
    match command {
        RemoteCommand::Ls(a) => ls(app, a),
        RemoteCommand::Verify(a) => verify(app, a),
    }
}

fn ls(app: &App, args: &RemoteLsArgs) -> Result<()> {
    let cache = app.manager()?;
    let listings = App::runtime()?.block_on(cache.remote_ls(args.url.as_deref()))?;
    app.out.emit(&listings, || {
        listings.iter().fold(String::new(), |mut s, l| {
            let commits: usize = l.repos.values().map(Vec::len).sum();
            let _ = writeln!(
                s,
                "{}: {} repositories, {} commits, {} refs, {} blobs, {}",
                l.url,
                l.repos.len(),
                commits,
                l.refs,
                l.blobs,
                format::size(l.bytes)
            );
            for (repo, commits) in &l.repos {
                let short: Vec<&str> = commits.iter().map(|c| &c[..c.len().min(12)]).collect();
                let _ = writeln!(s, "  {repo:<40} {}", short.join(" "));
            }
            s
        })
    })
}

fn verify(app: &App, args: &RemoteVerifyArgs) -> Result<()> {
    let cache = app.manager()?;
    let sample = if args.all { None } else { Some(args.sample.unwrap_or(100)) };
    let reports = App::runtime()?.block_on(cache.remote_verify(args.url.as_deref(), sample))?;
    app.out.emit(&reports, || {
        reports.iter().fold(String::new(), |mut s, r| {
            let _ = writeln!(
                s,
                "{}: {} of {} blobs re-hashed ({}), {} corrupt",
                r.url,
                r.checked,
                r.total,
                format::size(r.bytes),
                r.corrupt.len()
            );
            for k in &r.corrupt {
                let _ = writeln!(s, "  corrupt: {k}");
            }
            s
        })
    })?;
    let bad: usize = reports.iter().map(|r| r.corrupt.len()).sum();
    if bad > 0 {
        return Err(Failure::new(
            modelcache::ErrorKind::Integrity,
            format!("{bad} blob(s) of the team tier do not match their key"),
            "push verified copies with `modelcache push` from a cache that holds them (an `rw` tier repairs on its next miss), and check who writes to the bucket",
        )
        .into());
    }
    Ok(())
}

/// The per-tier rows of `stats` (text).
pub(crate) fn stats_rows(tiers: &[modelcache::TierStats]) -> String {
    tiers.iter().fold(String::new(), |mut out, t| {
        let _ = writeln!(out, "{:<20} {}", "team tier", t.url);
        let _ = write!(out, "{:<20} {} hits, {} misses, {} errors, {} corrupt", "", t.hits, t.misses, t.errors, t.corrupt);
        let _ = match t.listings_replaced {
            0 => writeln!(out),
            n => writeln!(out, ", {n} wrong listing(s) replaced"),
        };
        let _ = writeln!(
            out,
            "{:<20} {} pulled, {} pushed ({} blobs)",
            "",
            format::size(t.bytes_pulled),
            format::size(t.bytes_pushed),
            t.blobs_pushed
        );
        out
    })
}
