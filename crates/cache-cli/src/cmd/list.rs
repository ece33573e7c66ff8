//! `ls` (repositories or revisions, URL artifacts, and incomplete downloads) and `stats`
//! (totals and counters). A URL artifact is a row of type `url` named by its file name,
//! with its URL (redacted) in a section below the table.

use std::fmt::Write as _;

use anyhow::Result;
use modelcache::{CacheStats, RepoInfo, Timestamp};

use crate::app::{App, Output};
use crate::cli::{LsArgs, SortKey, StatsArgs, StatsFormat};
use crate::format::{self, Align, Table};

pub(crate) fn sort(repos: &mut [RepoInfo], key: SortKey) {
    let name = |r: &RepoInfo| (r.repo_type.as_str(), r.repo_id.clone());
    match key {
        SortKey::Name => repos.sort_by_key(name),
        SortKey::Size => repos.sort_by(|a, b| b.size_bytes.cmp(&a.size_bytes).then_with(|| name(a).cmp(&name(b)))),
        SortKey::Used => repos.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| name(a).cmp(&name(b)))),
    }
}

fn yes(b: bool) -> String {
    if b { "yes".to_owned() } else { String::new() }
}

/// The `ls` table (and the incomplete downloads under it).
pub(crate) fn table(repos: &[RepoInfo], revisions: bool, now: Timestamp) -> String {
    if repos.is_empty() {
        return "the cache is empty\n".to_owned();
    }
    let mut out = if revisions {
        let mut t = Table::new(&[
            ("TYPE", Align::Left),
            ("ID", Align::Left),
            ("COMMIT", Align::Left),
            ("REFS", Align::Left),
            ("FILES", Align::Right),
            ("SIZE", Align::Right),
            ("LAST USED", Align::Left),
            ("PINNED", Align::Left),
        ]);
        for r in repos {
            if r.artifact.is_some() {
                t.row(vec![
                    r.repo_type.to_string(),
                    r.repo_id.clone(),
                    "-".to_owned(),
                    String::new(),
                    r.files.to_string(),
                    format::size(r.size_bytes),
                    format::ago(r.last_used, now),
                    yes(r.pinned),
                ]);
            }
            for rev in &r.revisions {
                t.row(vec![
                    r.repo_type.to_string(),
                    r.repo_id.clone(),
                    rev.commit.chars().take(12).collect(),
                    rev.refs.join(","),
                    rev.files.len().to_string(),
                    format::size(rev.size_bytes),
                    format::ago(r.last_used, now),
                    yes(r.pinned),
                ]);
            }
        }
        t.render()
    } else {
        let mut t = Table::new(&[
            ("TYPE", Align::Left),
            ("ID", Align::Left),
            ("REVISIONS", Align::Right),
            ("FILES", Align::Right),
            ("SIZE", Align::Right),
            ("LAST USED", Align::Left),
            ("PINNED", Align::Left),
        ]);
        for r in repos {
            t.row(vec![
                r.repo_type.to_string(),
                r.repo_id.clone(),
                if r.artifact.is_some() { "-".to_owned() } else { r.revisions.len().to_string() },
                r.files.to_string(),
                format::size(r.size_bytes),
                format::ago(r.last_used, now),
                yes(r.pinned),
            ]);
        }
        t.render()
    };
    let artifacts: Vec<_> = repos.iter().filter_map(|r| r.artifact.as_ref()).collect();
    if !artifacts.is_empty() {
        out.push_str("\nurl artifacts (`rm`, `pin`, `verify` take the name or the URL):\n");
        let mut t = Table::new(&[("NAME", Align::Left), ("URL", Align::Left)]);
        for a in artifacts {
            t.row(vec![a.name.clone(), a.url.clone()]);
        }
        out.push_str(&t.render());
    }
    let incomplete: Vec<_> = repos.iter().flat_map(|r| r.incomplete.iter().map(move |i| (r, i))).collect();
    if !incomplete.is_empty() {
        out.push_str("\nincomplete downloads (resumed by the next `get`, removed by `prune` when stale):\n");
        let mut t =
            Table::new(&[("ID", Align::Left), ("BLOB", Align::Left), ("SO FAR", Align::Right), ("LAST WRITTEN", Align::Left)]);
        for (r, i) in incomplete {
            t.row(vec![
                r.model_id.clone(),
                i.etag.chars().take(16).collect(),
                format::size(i.size_bytes),
                format::ago(Some(i.modified), now),
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

pub(crate) fn ls(app: &App, args: &LsArgs) -> Result<()> {
    let cache = app.manager()?;
    let mut repos = cache.list()?;
    sort(&mut repos, args.sort);
    app.out.emit(&repos, || table(&repos, args.revisions, Timestamp::now()))
}

/// The `stats` text.
pub(crate) fn stats_text(s: &CacheStats) -> String {
    let c = &s.counters;
    let percent = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{:.1} %", r * 100.0));
    let f = &c.failures;
    let failed =
        format!("{} (remote {}, integrity {}, disk full {}, other {})", f.total(), f.remote, f.integrity, f.disk_full, f.other);
    let rows = [
        ("hub cache", s.cache_dir.display().to_string()),
        ("modelcache home", s.home_dir.display().to_string()),
        ("repositories", s.total_models.to_string()),
        ("url artifacts", s.total_artifacts.to_string()),
        ("files", s.total_files.to_string()),
        ("size", format::size(s.total_size_bytes)),
        ("hits", c.hits.to_string()),
        ("misses", c.misses.to_string()),
        ("hit ratio", percent(c.hit_ratio)),
        ("downloads", c.downloads.to_string()),
        ("downloaded", format::size(c.bytes_downloaded)),
        ("failed downloads", failed),
        ("download success", percent(c.download_success_rate)),
        ("evictions", format!("{} (expired {}, over size {})", c.evictions.total(), c.evictions.expired, c.evictions.over_size)),
        ("lock waits", format!("{} ({:.1} s)", c.lock_waits, c.lock_wait_seconds)),
        ("pinned repositories", s.models.iter().filter(|m| m.pinned && m.artifact.is_none()).count().to_string()),
        ("pinned artifacts", s.models.iter().filter(|m| m.pinned && m.artifact.is_some()).count().to_string()),
        ("free disk", s.free_disk_bytes.map_or_else(|| "unknown".to_owned(), format::size)),
    ];
    rows.iter().fold(String::new(), |mut out, (k, v)| {
        let _ = writeln!(out, "{k:<20} {v}");
        out
    })
}

pub(crate) fn stats(app: &App, args: &StatsArgs) -> Result<()> {
    let s = app.manager()?.stats()?;
    // `--json` means JSON unless another format is asked for by name.
    let format = if args.format == StatsFormat::Text && app.out.json { StatsFormat::Json } else { args.format };
    let text = match (format, &args.output) {
        (StatsFormat::Openmetrics, _) => crate::metrics::render(s)?,
        (StatsFormat::Json, None) => return Output::json(&s),
        (StatsFormat::Json, Some(_)) => format!("{}\n", serde_json::to_string_pretty(&s)?),
        (StatsFormat::Text, _) => stats_text(&s),
    };
    match &args.output {
        Some(path) => crate::metrics::write_atomically(path, &text),
        None => Output::text(&text),
    }
}

#[cfg(test)]
mod tests {
    use modelcache::{FileInfo, IncompleteDownload, ItemType, RevisionInfo};

    use super::*;

    fn repo(id: &str, size: u64, used: i64, pinned: bool) -> RepoInfo {
        RepoInfo {
            model_id: id.to_owned(),
            repo_type: ItemType::Model,
            repo_id: id.to_owned(),
            revisions: vec![RevisionInfo {
                commit: "0123456789abcdef0123456789abcdef01234567".to_owned(),
                refs: vec!["main".to_owned()],
                files: vec![FileInfo { path: "config.json".to_owned(), size_bytes: size }],
                size_bytes: size,
            }],
            files: 1,
            size_bytes: size,
            last_used: Some(Timestamp::from_unix_millis(used)),
            pinned,
            incomplete: Vec::new(),
            artifact: None,
        }
    }

    #[test]
    fn ls_sorts_and_renders_tables() {
        let now = Timestamp::from_unix_millis(10_000_000);
        let mut repos = vec![repo("org/small", 10, 9_000_000, false), repo("org/big", 4 << 20, 1_000, true)];
        repos[1].incomplete.push(IncompleteDownload {
            path: "/c/blobs/x.incomplete".into(),
            etag: "a".repeat(64),
            size_bytes: 1536,
            modified: now,
        });
        sort(&mut repos, SortKey::Size);
        assert_eq!(repos[0].repo_id, "org/big");
        sort(&mut repos, SortKey::Used);
        assert_eq!(repos[0].repo_id, "org/small");
        sort(&mut repos, SortKey::Name);
        insta::assert_snapshot!(table(&repos, false, now), @r"
        TYPE   ID         REVISIONS  FILES   SIZE  LAST USED   PINNED
        model  org/big            1      1  4 MiB  2 h ago     yes
        model  org/small          1      1   10 B  16 min ago

        incomplete downloads (resumed by the next `get`, removed by `prune` when stale):
        ID       BLOB               SO FAR  LAST WRITTEN
        org/big  aaaaaaaaaaaaaaaa  1.5 KiB  just now
        ");
        insta::assert_snapshot!(table(&repos[..1], true, now), @r"
        TYPE   ID       COMMIT        REFS  FILES   SIZE  LAST USED  PINNED
        model  org/big  0123456789ab  main      1  4 MiB  2 h ago    yes

        incomplete downloads (resumed by the next `get`, removed by `prune` when stale):
        ID       BLOB               SO FAR  LAST WRITTEN
        org/big  aaaaaaaaaaaaaaaa  1.5 KiB  just now
        ");
        assert_eq!(table(&[], false, now), "the cache is empty\n");
    }
}
