//! Maintenance: `verify [--repair]`, `rm`, `prune` and `clean`.

use std::fmt::Write as _;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use modelcache::{
    ByteSize, CacheError, ConfigKey, CorruptedFile, ErrorKind, IntegrityReport, PruneOptions, PruneReport, RemoveReport, Target,
    parse_duration,
};

use crate::app::{App, resolve_target, shorten};
use crate::cli::{CleanArgs, PruneArgs, RmArgs, VerifyArgs};
use crate::cmd::get::parse_path;
use crate::format;
use crate::report::Failure;

/// A corrupted file's digests, labelled by algorithm (and, for a `blake3` check, the
/// digest that names the blob).
fn digests(c: &CorruptedFile) -> String {
    let named_by = if c.blob.len() == 40 { "git-sha1" } else { "sha256" };
    match c.algorithm.as_str() {
        "" => format!("expected {}, found {}", c.expected, c.actual),
        "blake3" => format!("blake3: expected {}, found {}; the blob is {named_by} {}", c.expected, c.actual, c.blob),
        a => format!("{a}: expected {}, found {}", c.expected, c.actual),
    }
}

/// The `verify` report as text.
pub(crate) fn verify_text(r: &IntegrityReport) -> String {
    let mut out = String::new();
    for c in &r.corrupted {
        let _ = writeln!(out, "corrupted  {}  ({})", c.entry, digests(c));
    }
    for m in &r.missing {
        let _ = writeln!(out, "missing    {m}");
    }
    for b in &r.bad_refs {
        let _ = writeln!(out, "bad ref    {b}  (not a commit hash: treated as absent)");
    }
    for s in &r.skipped {
        let _ = writeln!(out, "skipped    {s}  (its folder links outside the cache: not checked)");
    }
    if r.repaired && !r.is_clean() {
        let _ = writeln!(
            out,
            "repaired: removed {}",
            format::count((r.corrupted.len() + r.missing.len() + r.bad_refs.len()) as u64, "damaged entry", "damaged entries")
        );
        for f in &r.refetched {
            let _ = writeln!(out, "downloaded again  {f}");
        }
    }
    let problems = r.corrupted.len() + r.missing.len() + r.bad_refs.len();
    let _ = writeln!(
        out,
        "{}{} valid, {} corrupted, {} missing in {}",
        if r.after_repair.is_some() { "found: " } else { "" },
        format::count(r.valid_files, "file", "files"),
        r.corrupted.len(),
        r.missing.len(),
        format::count(
            (r.valid_models.len() + r.corrupted_models.len() + r.missing_models.len()) as u64,
            "repository",
            "repositories"
        ),
    );
    if let Some(a) = &r.after_repair {
        let _ = writeln!(
            out,
            "after the repair: {} valid, {} corrupted, {} missing",
            format::count(a.valid_files, "file", "files"),
            a.corrupted.len(),
            a.missing.len()
        );
        for n in &a.not_cached {
            let _ = writeln!(out, "not cached now  {n}  (removed, not downloaded again: the next `modelcache get` fetches it)");
        }
    }
    let clean_now = problems == 0 || r.after_repair.as_ref().is_some_and(modelcache::RepairedState::is_clean);
    if clean_now && r.skipped.is_empty() {
        out.push_str("the cache is intact\n");
    } else if clean_now {
        out.push_str("the repositories checked are intact\n");
    }
    out
}

pub(crate) fn verify(app: &App, args: &VerifyArgs) -> Result<()> {
    if let Some(lock) = &args.lock {
        return crate::cmd::lockfile::verify_lock(app, lock);
    }
    let cache = app.manager()?;
    let target = args.repo.as_deref().map(|r| resolve_target(&cache, r, args.repo_type, args.revision.as_deref())).transpose()?;
    let rt = App::runtime()?;
    let report = match &target {
        Some(Target::Artifact(a)) => rt.block_on(cache.verify_artifact(a, args.repair))?,
        Some(Target::Repo(r)) => rt.block_on(cache.verify(Some(r), args.repair))?,
        None => rt.block_on(cache.verify(None, args.repair))?,
    };
    app.clear_progress();
    app.out.emit(&report, || verify_text(&report))?;
    if report.is_clean() {
        return Ok(());
    }
    let left = match &report.after_repair {
        // Bad refs alone: removed by the repair, nothing to check again.
        None if report.repaired => return Ok(()),
        None => None,
        Some(a) if a.is_clean() => return Ok(()),
        Some(a) => Some(a),
    };
    let (corrupted, missing, bad_refs): (Vec<&str>, Vec<&str>, Vec<&str>) = match left {
        Some(a) => (a.corrupted.iter().map(String::as_str).collect(), a.missing.iter().map(String::as_str).collect(), vec![]),
        None => (
            report.corrupted.iter().map(|c| c.entry.as_str()).collect(),
            report.missing.iter().map(String::as_str).collect(),
            report.bad_refs.iter().map(String::as_str).collect(),
        ),
    };
    let mut names: Vec<String> = corrupted.iter().map(|c| format!("`{c}`")).collect();
    names.extend(missing.iter().map(|m| format!("`{m}` (missing)")));
    names.extend(bad_refs.iter().map(|b| format!("`{b}` (bad ref)")));
    let (message, hint) = if left.is_some() {
        ("the repair left damage", "run `modelcache rm` on the damaged repository, then `modelcache get` it again")
    } else {
        ("the cache is damaged", "run `modelcache verify --repair` to remove the damaged files and download them again")
    };
    Err(Failure::new(ErrorKind::Integrity, format!("{message}: {}", names.join(", ")), hint).into())
}

pub(crate) fn rm(app: &App, args: &RmArgs) -> Result<()> {
    let files = args.files.iter().map(|f| parse_path(f)).collect::<Result<Vec<_>>>()?;
    let cache = app.manager()?;
    let (report, target) = match resolve_target(&cache, &args.repo, args.repo_type, args.revision.as_deref())? {
        Target::Artifact(a) => {
            if !files.is_empty() {
                return Err(Failure::usage(
                    format!("`{}` is a URL artifact: it takes no FILE arguments", a.describe()),
                    "give only its name or URL to remove it",
                )
                .into());
            }
            (App::runtime()?.block_on(cache.remove_artifact(&a, args.dry_run))?, a.describe())
        }
        Target::Repo(target) => (App::runtime()?.block_on(cache.remove(&target, &files, args.dry_run))?, target.to_string()),
    };
    for s in &report.skipped_in_use {
        app.out.warn(&format!("`{s}` is in use by another process and was kept"));
    }
    app.out.emit(&report, || removal_text(&report, &format!("from `{target}`")))
}

fn removal_text(r: &RemoveReport, what: &str) -> String {
    let files = format::count(r.entries, "file", "files");
    if r.dry_run {
        format!("would remove {files} {what}, freeing {}\n", format::size(r.bytes_freed))
    } else {
        format!("removed {files} {what}, freed {}\n", format::size(r.bytes_freed))
    }
}

/// What a prune aimed for: its limits, or that none is set.
fn prune_aims(r: &PruneReport) -> String {
    if r.no_limit() {
        return "no limit is set (`--max-size`, `--max-age`, or `max_size`/`max_age` in the config): nothing is evicted, \
                only stale downloads and locks are cleared\n"
            .to_owned();
    }
    let mut aims = Vec::new();
    if let (Some(max), Some(target)) = (r.max_size, r.target_size) {
        aims.push(format!(
            "size limit {} (over it, evict down to {}, the low watermark)",
            format::size(max),
            format::size(target)
        ));
    }
    if let Some(age) = r.max_age_secs {
        aims.push(format!("age limit {} since last use", modelcache::format_duration(Duration::from_secs(age))));
    }
    format!("target: {}\n", aims.join("; "))
}

/// The `prune` report as text.
pub(crate) fn prune_text(r: &PruneReport) -> String {
    let mut out = prune_aims(r);
    let verb = if r.dry_run { "would evict" } else { "evicted" };
    for e in &r.evicted {
        let _ = writeln!(out, "{verb}  {}  {}  ({})", e.entry, format::size(e.bytes), e.reason.replace('_', " "));
    }
    for s in &r.skipped_in_use {
        let _ = writeln!(out, "kept (in use)  {s}");
    }
    if !r.no_limit() && r.kept_recently_used > 0 {
        let _ = writeln!(
            out,
            "kept {} ({}) used within the in-use grace of {}",
            format::count(r.kept_recently_used, "file", "files"),
            format::size(r.kept_recently_used_bytes),
            modelcache::format_duration(Duration::from_secs(r.in_use_grace_secs)),
        );
    }
    if !r.no_limit() && r.kept_pinned > 0 {
        let _ = writeln!(out, "kept {} (pinned)", format::count(r.kept_pinned, "file", "files"));
    }
    let (freed, stale) = if r.dry_run { ("would free", "would remove") } else { ("freed", "removed") };
    let _ = writeln!(
        out,
        "{freed} {} ({} → {}); {stale} {} and {} ({})",
        format::size(r.bytes_freed),
        format::size(r.size_before),
        format::size(r.size_after),
        format::count(r.stale_incomplete_removed, "stale incomplete download", "stale incomplete downloads"),
        format::count(r.stale_locks_removed, "stale lock file", "stale lock files"),
        format::size(r.stale_bytes_freed),
    );
    if r.dry_run && r.evicts_nearly_everything() {
        let _ = writeln!(out, "this would evict nearly everything: {}", drastic(r));
    }
    out
}

/// How much of the cache an eviction takes, for a warning or a question.
fn drastic(r: &PruneReport) -> String {
    format!("{} of {} files, {} of {}", r.evicted.len(), r.files_before, format::size(r.bytes_freed), format::size(r.size_before))
}

pub(crate) fn prune(app: &App, args: &PruneArgs) -> Result<()> {
    let max_size = args
        .max_size
        .as_deref()
        .map(|s| {
            ByteSize::parse(s).map(ByteSize::bytes).map_err(|e| {
                anyhow::Error::new(CacheError::from(e)).context(Failure::usage(
                    format!("invalid `--max-size` `{}`", shorten(s)),
                    "give a size such as `20GiB` or `500MB`",
                ))
            })
        })
        .transpose()?;
    let max_age = args
        .max_age
        .as_deref()
        .map(|s| {
            parse_duration(s).map_err(|e| {
                anyhow::Error::new(CacheError::from(e)).context(Failure::usage(
                    format!("invalid `--max-age` `{}`", shorten(s)),
                    "give a duration such as `30d` or `12h`",
                ))
            })
        })
        .transpose()?;
    // An explicit prune must not trigger a second, automatic one.
    let cache = app.manager_with(&[(ConfigKey::AutoPrune, "false".to_owned())])?;
    let rt = App::runtime()?;
    let options = PruneOptions { max_size, max_age, dry_run: args.dry_run };
    // A `--max-size` that would take nearly everything is said before it happens: asked
    // on a terminal, warned about otherwise.
    if max_size.is_some() && !args.dry_run && !args.yes {
        let plan = rt.block_on(cache.prune_with(&PruneOptions { dry_run: true, ..options.clone() }))?;
        if plan.evicts_nearly_everything() {
            let what = format!("`--max-size` would evict nearly everything: {}", drastic(&plan));
            if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
                if !confirm(&format!("{what}. Continue?"))? {
                    app.out.note("cancelled: nothing was evicted (`--dry-run` lists the files)");
                    return Ok(());
                }
            } else {
                app.out.warn(&format!("{what} (`--dry-run` lists the files first)"));
            }
        }
    }
    let report = rt.block_on(cache.prune_with(&options))?;
    app.out.emit(&report, || prune_text(&report))
}

fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

pub(crate) fn clean(app: &App, args: &CleanArgs) -> Result<()> {
    // Refused before the cache is opened (a first open builds the index from the disk).
    if !args.yes && !args.dry_run && (!std::io::stdin().is_terminal() || !std::io::stderr().is_terminal()) {
        return Err(Failure::usage(
            "refusing to remove everything without confirmation (stdin is not a terminal)",
            "pass `--yes` to clean without asking, or `--dry-run` to see what would go",
        )
        .into());
    }
    let cache = app.manager()?;
    let rt = App::runtime()?;
    if args.dry_run {
        let report = rt.block_on(cache.clear(true))?;
        return app.out.emit(&report, || removal_text(&report, &format!("from `{}`", cache.cache_dir().display())));
    }
    if !args.yes {
        let s = cache.stats()?;
        let question = format!(
            "remove all {} ({}) from `{}`?",
            format::count(s.total_files, "file", "files"),
            format::size(s.total_size_bytes),
            cache.cache_dir().display()
        );
        if !confirm(&question)? {
            app.out.note("cancelled: nothing was removed");
            return Ok(());
        }
    }
    let report = rt.block_on(cache.clear(false))?;
    for s in &report.skipped_in_use {
        app.out.warn(&format!("`{s}` is in use by another process and was kept"));
    }
    app.out.emit(&report, || removal_text(&report, &format!("from `{}`", cache.cache_dir().display())))
}

#[cfg(test)]
mod tests {
    use modelcache::PrunedEntry;

    use super::*;

    #[test]
    fn reports_read_as_sentences() {
        let mut r = IntegrityReport { valid_files: 3, valid_models: vec!["a/b".into()], ..IntegrityReport::default() };
        assert_eq!(verify_text(&r), "3 files valid, 0 corrupted, 0 missing in 1 repository\nthe cache is intact\n");
        r.corrupted.push(CorruptedFile {
            model_id: "c/d".into(),
            entry: "c/d@abc/w.bin".into(),
            expected: "1".repeat(64),
            actual: "2".repeat(64),
            algorithm: "sha256".into(),
            blob: "1".repeat(64),
        });
        r.corrupted_models.push("c/d".into());
        insta::assert_snapshot!(verify_text(&r), @r"
        corrupted  c/d@abc/w.bin  (sha256: expected 1111111111111111111111111111111111111111111111111111111111111111, found 2222222222222222222222222222222222222222222222222222222222222222)
        3 files valid, 1 corrupted, 0 missing in 2 repositories
        ");
        let p = PruneReport {
            evicted: vec![PrunedEntry { entry: "a/b@abc/w.bin".into(), reason: "over_size".into(), bytes: 2048 }],
            bytes_freed: 2048,
            size_before: 4096,
            size_after: 2048,
            max_size: Some(3000),
            target_size: Some(2400),
            max_age_secs: Some(86_400),
            in_use_grace_secs: 300,
            kept_recently_used: 2,
            kept_recently_used_bytes: 100,
            files_before: 3,
            ..PruneReport::default()
        };
        insta::assert_snapshot!(prune_text(&p), @r"
        target: size limit 2.9 KiB (over it, evict down to 2.3 KiB, the low watermark); age limit 1d since last use
        evicted  a/b@abc/w.bin  2 KiB  (over size)
        kept 2 files (100 B) used within the in-use grace of 5m
        freed 2 KiB (4 KiB → 2 KiB); removed 0 stale incomplete downloads and 0 stale lock files (0 B)
        ");
        let none = PruneReport { stale_incomplete_removed: 1, stale_bytes_freed: 5, ..PruneReport::default() };
        assert!(prune_text(&none).starts_with("no limit is set"), "{}", prune_text(&none));
        let all = PruneReport { dry_run: true, size_after: 0, bytes_freed: 4096, ..p.clone() };
        assert!(all.evicts_nearly_everything());
        assert!(prune_text(&all).ends_with("this would evict nearly everything: 1 of 3 files, 4 KiB of 4 KiB\n"));
        let rm = RemoveReport { dry_run: true, entries: 1, bytes_freed: 10, skipped_in_use: vec![] };
        assert_eq!(removal_text(&rm, "from `a/b`"), "would remove 1 file from `a/b`, freeing 10 B\n");
    }
}
