//! `ls` (repositories or revisions, URL artifacts, and incomplete downloads) and `stats`
//! (totals and counters). A URL artifact is a row of type `url` named by its file name,
//! with its URL (redacted) in a section below the table.

use std::collections::HashSet;
use std::fmt::Write as _;

use anyhow::Result;
use modelcache::{CacheStats, RepoInfo, Timestamp};

use crate::app::{App, Output};
use crate::cli::{LsArgs, SortKey, StatsArgs, StatsFormat};
use crate::cmd::ls_filter::Filter;
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

/// `total: 2 repositories (3 revisions), 1 url artifact, 4 MiB`, and how many rows
/// `--filter`/`--limit` left out. A blob shared by URL artifacts counts once.
pub(crate) fn total_line(repos: &[RepoInfo], hidden: usize) -> String {
    let hub: Vec<&RepoInfo> = repos.iter().filter(|r| r.artifact.is_none()).collect();
    let revisions: usize = hub.iter().map(|r| r.revisions.len()).sum();
    let mut blobs = std::collections::HashSet::new();
    let size: u64 =
        repos.iter().filter(|r| r.artifact.as_ref().is_none_or(|a| blobs.insert(a.sha256.clone()))).map(|r| r.size_bytes).sum();
    let size = size.saturating_sub(shared_twice(&hub));
    let mut line = format!(
        "total: {} ({})",
        format::count(hub.len() as u64, "repository", "repositories"),
        format::count(revisions as u64, "revision", "revisions"),
    );
    if repos.len() > hub.len() {
        let _ = write!(line, ", {}", format::count((repos.len() - hub.len()) as u64, "url artifact", "url artifacts"));
    }
    let _ = write!(line, ", {} on disk", format::size(size));
    if hidden > 0 {
        let _ = write!(line, "; {hidden} more not shown");
    }
    line.push('\n');
    line
}

/// Bytes that the repositories' sizes count more than once: blobs several repositories
/// share (one inode after a cross-repo hit or `dedup`, or one shared-store payload).
fn shared_twice(hub: &[&RepoInfo]) -> u64 {
    let mut seen: std::collections::HashMap<&str, (u64, u64)> = std::collections::HashMap::new();
    for r in hub {
        let mut own = HashSet::new();
        for f in r.revisions.iter().flat_map(|rev| &rev.files).filter(|f| f.is_shared_blob()) {
            if own.insert(f.blob.as_str()) {
                seen.entry(&f.blob).or_insert((f.size_bytes, 0)).1 += 1;
            }
        }
    }
    seen.values().map(|(size, repos)| size * repos.saturating_sub(1)).sum()
}

/// `ls --ids`: one id a line, as `rm`, `pin`, `verify` and `get` take them back.
pub(crate) fn ids(repos: &[RepoInfo], revisions: bool, ambiguous_names: &HashSet<String>) -> String {
    let mut out = String::new();
    for r in repos {
        if let Some(a) = &r.artifact {
            let _ = writeln!(out, "{}", if ambiguous_names.contains(&a.name) { &a.id } else { &a.name });
        } else if revisions {
            for rev in &r.revisions {
                let _ = writeln!(out, "{}/{}@{}", r.repo_type, r.repo_id, rev.commit);
            }
        } else {
            let _ = writeln!(out, "{}/{}", r.repo_type, r.repo_id);
        }
    }
    out
}

/// The `ls` table with its total line (`hidden`: rows `--filter`/`--limit` left out), then
/// the URL artifacts and the incomplete downloads.
pub(crate) fn table(repos: &[RepoInfo], revisions: bool, now: Timestamp, hidden: usize) -> String {
    if repos.is_empty() {
        return if hidden == 0 { "the cache is empty\n".to_owned() } else { format!("nothing matches ({hidden} not shown)\n") };
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
    out.push_str(&total_line(repos, hidden));
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
    let filters = args.filter.iter().map(|f| Filter::parse(f)).collect::<Result<Vec<_>>>()?;
    let cache = app.manager()?;
    let all = cache.list()?;
    let now = Timestamp::now();
    let mut seen = HashSet::new();
    let ambiguous: HashSet<String> =
        all.iter().filter_map(|r| r.artifact.as_ref()).filter(|a| !seen.insert(a.name.clone())).map(|a| a.name.clone()).collect();
    let count = all.len();
    let mut repos: Vec<RepoInfo> = all.into_iter().filter(|r| filters.iter().all(|f| f.keeps(r, now))).collect();
    sort(&mut repos, args.sort);
    if let Some(n) = args.limit {
        repos.truncate(n);
    }
    if args.ids && !app.out.json {
        return Output::text(&ids(&repos, args.revisions, &ambiguous));
    }
    app.out.emit(&repos, || table(&repos, args.revisions, now, count - repos.len()))
}

/// What the files would take without sharing, and what sharing saves.
fn logical_size(s: &CacheStats) -> String {
    let saved = s.logical_size_bytes.saturating_sub(s.total_size_bytes);
    if saved == 0 {
        format::size(s.logical_size_bytes)
    } else {
        format!("{} ({} shared between repositories)", format::size(s.logical_size_bytes), format::size(saved))
    }
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
        ("logical size", logical_size(s)),
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
    let cache = app.manager()?;
    let s = cache.stats()?;
    let tiers = cache.remote_stats();
    // `--json` means JSON unless another format is asked for by name; the team tiers'
    // figures are a `remote` list beside the cache's.
    let json = || -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(&s)?;
        if let Some(map) = v.as_object_mut() {
            map.insert("remote".to_owned(), serde_json::to_value(&tiers)?);
        }
        Ok(v)
    };
    let format = if args.format == StatsFormat::Text && app.out.json { StatsFormat::Json } else { args.format };
    let text = match (format, &args.output) {
        (StatsFormat::Openmetrics, _) => crate::metrics::render(s, tiers)?,
        (StatsFormat::Json, None) => return Output::json(&json()?),
        (StatsFormat::Json, Some(_)) => format!("{}\n", serde_json::to_string_pretty(&json()?)?),
        (StatsFormat::Text, _) => stats_text(&s) + &crate::cmd::remote::stats_rows(&tiers),
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
                files: vec![FileInfo { path: "config.json".to_owned(), size_bytes: size, blob: String::new() }],
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
        insta::assert_snapshot!(table(&repos, false, now, 0), @r"
        TYPE   ID         REVISIONS  FILES   SIZE  LAST USED   PINNED
        model  org/big            1      1  4 MiB  2 h ago     yes
        model  org/small          1      1   10 B  16 min ago
        total: 2 repositories (2 revisions), 4 MiB on disk

        incomplete downloads (resumed by the next `get`, removed by `prune` when stale):
        ID       BLOB               SO FAR  LAST WRITTEN
        org/big  aaaaaaaaaaaaaaaa  1.5 KiB  just now
        ");
        insta::assert_snapshot!(table(&repos[..1], true, now, 1), @r"
        TYPE   ID       COMMIT        REFS  FILES   SIZE  LAST USED  PINNED
        model  org/big  0123456789ab  main      1  4 MiB  2 h ago    yes
        total: 1 repository (1 revision), 4 MiB on disk; 1 more not shown

        incomplete downloads (resumed by the next `get`, removed by `prune` when stale):
        ID       BLOB               SO FAR  LAST WRITTEN
        org/big  aaaaaaaaaaaaaaaa  1.5 KiB  just now
        ");
        assert_eq!(table(&[], false, now, 0), "the cache is empty\n");
        assert_eq!(table(&[], false, now, 2), "nothing matches (2 not shown)\n");
    }
}
