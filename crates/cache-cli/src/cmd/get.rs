//! `get`: files of a repository, a filtered snapshot, or a URL — cached, then printed as
//! absolute paths in the order asked.

use std::future::Future as _;
use std::sync::Arc;

use anyhow::Result;
use modelcache::{
    AcquireRequest, Acquired, CacheError, CacheManager, Hold, MaterializeReport, ModelRef, Repo, RepoPath, Revision, Sha256,
};
use serde::Serialize;

use crate::app::{App, expand, parse_location, shorten, with_revision};
use crate::cli::GetArgs;
use crate::report::Failure;

/// One result of `get --json`.
#[derive(Debug, Serialize)]
pub(crate) struct GetResult {
    /// What was asked: `org/name@main/config.json`, `org/name@main`, the URL.
    pub(crate) request: String,
    #[serde(flatten)]
    pub(crate) acquired: Acquired,
    /// With `--to`: what was placed into the directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) materialized: Option<MaterializeReport>,
}

pub(crate) fn is_url(target: &str) -> bool {
    target.starts_with("http://") || target.starts_with("https://")
}

/// Parses an in-repo path given on the command line.
pub(crate) fn parse_path(value: &str) -> Result<RepoPath> {
    value.parse::<RepoPath>().map_err(|e| {
        anyhow::Error::new(CacheError::from(e)).context(Failure::usage(
            format!("invalid file path `{}`", shorten(value)),
            "give paths relative to the repository root, such as `config.json` or `onnx/model.onnx`",
        ))
    })
}

/// The requests `get` makes for its arguments.
pub(crate) fn requests(args: &GetArgs) -> Result<Vec<AcquireRequest>> {
    let for_urls = |flag: &str| {
        Failure::usage(format!("`{flag}` applies to URLs only"), "drop it, or give an `https://` URL instead of a repository")
    };
    if is_url(&args.target) {
        if !args.files.is_empty() {
            return Err(
                Failure::usage("a URL takes no FILE arguments", "give one URL per `get` (or use `--name` to rename it)").into()
            );
        }
        if !args.include.is_empty() || !args.exclude.is_empty() {
            return Err(Failure::usage("`--include`/`--exclude` apply to repositories only", "drop them for a URL").into());
        }
        if args.to.is_some() {
            return Err(Failure::usage("`--to` applies to repositories only", "drop it for a URL").into());
        }
        let sha256 = args
            .sha256
            .as_deref()
            .map(|s| {
                Sha256::from_hex(s.trim()).map_err(|e| {
                    anyhow::Error::new(CacheError::from(e))
                        .context(Failure::usage(format!("invalid `--sha256` value `{}`", shorten(s)), "give 64 hex digits"))
                })
            })
            .transpose()?;
        return Ok(vec![AcquireRequest::Url { url: args.target.clone(), sha256, name: args.name.clone() }]);
    }
    if args.sha256.is_some() {
        return Err(for_urls("--sha256").into());
    }
    if args.name.is_some() {
        return Err(for_urls("--name").into());
    }
    let (model, path) = parse_location(&args.target, args.repo_type)?;
    let model = with_revision(model, args.revision.as_deref())?;
    let mut files: Vec<String> = path.map(|p| p.as_str().to_owned()).into_iter().collect();
    files.extend(args.files.iter().cloned());
    if !files.is_empty() && (!args.include.is_empty() || !args.exclude.is_empty()) {
        return Err(Failure::usage(
            "`--include`/`--exclude` filter a whole snapshot and cannot be combined with FILE arguments",
            "either name the files, or give only the repository with the globs",
        )
        .into());
    }
    repo_requests(model, &files, &args.include, &args.exclude)
}

/// A repository's files, or (none named) its snapshot filtered by `include`/`exclude`.
pub(crate) fn repo_requests(
    model: ModelRef,
    files: &[impl AsRef<str>],
    include: &[String],
    exclude: &[String],
) -> Result<Vec<AcquireRequest>> {
    let revision = model.revision_or_main();
    if files.is_empty() {
        return Ok(vec![AcquireRequest::Snapshot {
            repo: model.repo,
            revision,
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }]);
    }
    files
        .iter()
        .map(|f| Ok(AcquireRequest::File { repo: model.repo.clone(), revision: revision.clone(), path: parse_path(f.as_ref())? }))
        .collect()
}

/// Runs `requests`, `jobs` at a time; results in the order given.
pub(crate) async fn fetch_all(
    cache: &CacheManager,
    requests: Vec<AcquireRequest>,
    jobs: usize,
) -> Vec<(AcquireRequest, Result<Acquired, CacheError>)> {
    if requests.len() == 1 {
        let mut out = Vec::with_capacity(1);
        for r in requests {
            let got = cache.fetch(&r).await;
            out.push((r, got));
        }
        return out;
    }
    // Every repository stays held until all requests are done, and every result is
    // marked used at the end: a path fetched first is as protected when it is printed as
    // one fetched last (a repo that cannot be held is only not protected early).
    let mut repos: Vec<&Repo> = requests.iter().filter_map(AcquireRequest::repo).collect();
    repos.sort();
    repos.dedup();
    let holds: Vec<Hold> =
        repos.into_iter().filter_map(|repo| cache.hold(&ModelRef { repo: repo.clone(), revision: None }).ok()).collect();
    let limit = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, r) in requests.into_iter().enumerate() {
        let (cache, limit) = (cache.clone(), Arc::clone(&limit));
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let got = cache.fetch(&r).await;
            (i, r, got)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(item) => out.push(item),
            // A panicking task already went through the panic hook, which exits.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out.sort_by_key(|(i, ..)| *i);
    let marked = out
        .into_iter()
        .map(|(_, r, got)| {
            let got = got.and_then(|a| cache.mark_used(&r, &a).map(|()| a));
            (r, got)
        })
        .collect();
    drop(holds);
    marked
}

/// One request that cannot download (offline, or a strategy that never downloads) waits
/// on nothing: it is answered by polling it once, without starting the async runtime,
/// whose threads cost a warm offline `get` more than the lookup itself. `None` when that
/// does not apply, or when the request did wait (it is then run again on the runtime;
/// leaving it early drops only its lease and in-memory records).
fn answer_without_runtime(
    cache: &CacheManager,
    requests: &[AcquireRequest],
) -> Option<Vec<(AcquireRequest, Result<Acquired, CacheError>)>> {
    let [request] = requests else { return None };
    if !cache.config().config.offline && cache.strategy().downloads() {
        return None;
    }
    let mut fetch = std::pin::pin!(cache.fetch(request));
    match fetch.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(got) => Some(vec![(request.clone(), got)]),
        std::task::Poll::Pending => None,
    }
}

/// Files in all, cache hits among them, bytes downloaded; all zero when a request failed
/// (the error is the last word then, not a summary).
pub(crate) fn tally(results: &[(AcquireRequest, Result<Acquired, CacheError>)]) -> (usize, usize, u64) {
    results
        .iter()
        .try_fold((0, 0, 0), |(files, hits, bytes), (_, got)| {
            let a = got.as_ref().ok()?;
            Some((files + a.files, hits + a.files.saturating_sub(a.files_downloaded), bytes + a.bytes_downloaded))
        })
        .unwrap_or_default()
}

/// `request` with a short commit prefix expanded against the cached commits.
pub(crate) fn expand_request(cache: &CacheManager, request: AcquireRequest) -> Result<AcquireRequest> {
    let expanded = |repo: &Repo, revision: &Revision| -> Result<Revision> {
        let model = expand(cache, ModelRef { repo: repo.clone(), revision: Some(revision.clone()) })?;
        Ok(model.revision_or_main())
    };
    Ok(match request {
        AcquireRequest::File { repo, revision, path } => {
            AcquireRequest::File { revision: expanded(&repo, &revision)?, repo, path }
        }
        AcquireRequest::Snapshot { repo, revision, include, exclude } => {
            AcquireRequest::Snapshot { revision: expanded(&repo, &revision)?, repo, include, exclude }
        }
        other => other,
    })
}

/// An `--include` glob that matches no file of the revision is never silent: a warning
/// when another glob matched, a usage error (exit 2) when none did.
fn check_include(app: &App, request: &AcquireRequest, acquired: &Acquired) -> Result<()> {
    let AcquireRequest::Snapshot { include, .. } = request else { return Ok(()) };
    let unmatched = &acquired.unmatched_include;
    if unmatched.is_empty() {
        return Ok(());
    }
    let globs = unmatched.iter().map(|g| format!("`{}`", shorten(g))).collect::<Vec<_>>().join(", ");
    let what = request.describe();
    if unmatched.len() == include.len() {
        return Err(Failure::usage(
            format!("`--include` {globs} matched no file of `{what}`: nothing was fetched"),
            "globs are case-sensitive and `*` crosses folders: fix the glob, or drop `--include` to take the whole snapshot",
        )
        .into());
    }
    app.out.warn(&format!("`--include` {globs} matched no file of `{what}`"));
    Ok(())
}

pub(crate) fn run(app: &App, args: &GetArgs) -> Result<()> {
    let requests = requests(args)?;
    let cache = app.manager()?;
    let requests = requests.into_iter().map(|r| expand_request(&cache, r)).collect::<Result<Vec<_>>>()?;
    let asked = if args.to.is_some() { requests.clone() } else { Vec::new() };
    let jobs = cache.config().config.parallelism;
    let start = std::time::Instant::now();
    let results = if let Some(results) = answer_without_runtime(&cache, &requests) {
        results
    } else {
        let runtime = App::runtime()?;
        let results = runtime.block_on(fetch_all(&cache, requests, jobs));
        crate::cmd::remote::finish(app, &runtime, &cache);
        results
    };
    let (files, hits, bytes) = tally(&results);
    app.finish_progress(files, hits, bytes, start.elapsed());
    let mut done = Vec::with_capacity(results.len());
    for (request, got) in results {
        let acquired = got?;
        check_include(app, &request, &acquired)?;
        done.push(GetResult { request: request.describe(), acquired, materialized: None });
    }
    if let Some(dir) = &args.to {
        place_all(app, &cache, &asked, &mut done, dir, args.link_mode.into())?;
    }
    app.out.emit(&done, || {
        done.iter().fold(String::new(), |mut s, r| {
            let path = r.materialized.as_ref().map_or_else(|| r.acquired.path.clone(), |m| placed_path(m, &r.acquired));
            s.push_str(&path.to_string_lossy());
            s.push('\n');
            s
        })
    })
}

/// `--to DIR`: places what each request acquired under `dir`, then says how in one note.
fn place_all(
    app: &App,
    cache: &CacheManager,
    requests: &[AcquireRequest],
    done: &mut [GetResult],
    dir: &std::path::Path,
    mode: modelcache::LinkMode,
) -> Result<()> {
    let rt = App::runtime()?;
    let mut counts: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    let mut unchanged = 0;
    for (request, result) in requests.iter().zip(done.iter_mut()) {
        let report = rt.block_on(cache.materialize_acquired(request, &result.acquired, dir, mode))?;
        for f in &report.files {
            if f.unchanged {
                unchanged += 1;
            } else {
                *counts.entry(f.mode.clone()).or_default() += 1;
            }
        }
        result.materialized = Some(report);
    }
    let placed: Vec<String> = counts.iter().map(|(mode, n)| format!("{n} by {mode}")).collect();
    let placed = if placed.is_empty() { "nothing to place".to_owned() } else { format!("placed {}", placed.join(", ")) };
    let kept = if unchanged > 0 { format!("; {unchanged} already in place") } else { String::new() };
    app.out.note(&format!("{placed} in `{}`{kept}", dir.display()));
    Ok(())
}

/// What `get --to` prints for a request: the file under the directory, or the directory.
fn placed_path(m: &MaterializeReport, acquired: &Acquired) -> std::path::PathBuf {
    match m.files.as_slice() {
        [one] if acquired.path.ends_with(&one.path) => m.dir.join(&one.path),
        _ => m.dir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn get(args: &[&str]) -> Result<Vec<AcquireRequest>> {
        let cli = Cli::try_parse_from(["modelcache", "get"].iter().chain(args)).unwrap();
        let Command::Get(g) = cli.command else { unreachable!("parsed as get") };
        requests(&g)
    }

    fn exit_code(r: Result<Vec<AcquireRequest>>) -> i32 {
        crate::report::kind(&r.unwrap_err()).exit_code()
    }

    #[test]
    fn arguments_become_file_snapshot_or_url_requests() {
        let files = get(&["org/m@v1", "config.json", "onnx/model.onnx"]).unwrap();
        assert_eq!(
            files.iter().map(AcquireRequest::describe).collect::<Vec<_>>(),
            ["org/m@v1/config.json", "org/m@v1/onnx/model.onnx"]
        );
        let snap = get(&["datasets/org/d", "--include", "*.json"]).unwrap();
        assert!(matches!(&snap[..], [AcquireRequest::Snapshot { include, .. }] if include == &["*.json"]));
        assert_eq!(snap[0].describe(), "datasets/org/d@main");
        let url = get(&["https://x.test/a.bin", "--name", "b.bin", "--sha256", &"ab".repeat(32)]).unwrap();
        assert!(matches!(&url[..], [AcquireRequest::Url { name: Some(n), sha256: Some(_), .. }] if n == "b.bin"));
    }

    #[test]
    fn the_tally_counts_files_hits_and_bytes_unless_a_request_failed() {
        let got = |files, downloaded, bytes| Acquired {
            path: "/c/x".into(),
            commit: None,
            from_cache: downloaded == 0,
            files,
            files_downloaded: downloaded,
            bytes_downloaded: bytes,
            unmatched_include: Vec::new(),
        };
        let url = || AcquireRequest::Url { url: "https://h.test/a".into(), sha256: None, name: None };
        let mut results = vec![(url(), Ok(got(202, 190, 1000))), (url(), Ok(got(1, 0, 0)))];
        assert_eq!(tally(&results), (203, 13, 1000));
        results.push((url(), Err(CacheError::DiskFull { needed: 1, available: 0 })));
        assert_eq!(tally(&results), (0, 0, 0), "no summary after a failure");
    }

    #[test]
    fn bad_combinations_and_hostile_values_are_usage_errors() {
        for bad in [
            &["org/m", "../../etc/passwd"][..],
            &["org/m", "/etc/passwd"],
            &["../../x"],
            &["org/../m"],
            &["org/m", "a.json", "--include", "*.json"],
            &["org/m", "--sha256", "00"],
            &["https://x.test/a", "file.json"],
            &["https://x.test/a", "--sha256", "xyz"],
            &["https://x.test/a", "--include", "*"],
        ] {
            assert_eq!(exit_code(get(bad)), 2, "{bad:?}");
        }
        let long = "a".repeat(4096);
        assert_eq!(exit_code(get(&["org/m", &long])), 2);
        assert_eq!(exit_code(get(&[&format!("org/{long}")])), 2);
    }
}
