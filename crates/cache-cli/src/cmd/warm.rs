//! `warm LISTFILE`: prefetch many repositories and files concurrently (CI cache warming),
//! then summarise. Every line is checked before anything is fetched.
//!
//! ```text
//! # comments and blank lines are skipped
//! openai/whisper-tiny                       the whole snapshot at main
//! openai/whisper-tiny@v1 config.json        files of a revision
//! datasets/org/data train.csv test.csv
//! https://example.com/model.onnx sha256=<64 hex> name=model.onnx   any URL, as `get URL`
//! ```
//! A URL line takes `sha256=HEX` and `name=NAME`, each at most once, in any order: the
//! same as `get URL --sha256 HEX --name NAME`.

use std::fmt::Write as _;
use std::io::Read;
use std::time::Instant;

use anyhow::{Context, Result};
use modelcache::{AcquireRequest, CacheError, ErrorKind, Sha256};
use serde::Serialize;

use crate::app::{App, parse_ref, shorten};
use crate::cli::{RepoKind, WarmArgs};
use crate::cmd::get::{expand_request, fetch_all, is_url, repo_requests};
use crate::format;
use crate::report::Failure;

/// One line of the list.
#[derive(Debug)]
pub(crate) struct Line {
    pub(crate) number: usize,
    pub(crate) spec: String,
    pub(crate) requests: Vec<AcquireRequest>,
}

/// Parses the list; an invalid line fails the whole command naming its number.
pub(crate) fn parse(text: &str, repo_type: Option<RepoKind>) -> Result<Vec<Line>> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split_once(" #").map_or(raw, |(c, _)| c).trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let number = i + 1;
        let at_line = |e: anyhow::Error| e.context(format!("line {number} of the list: `{}`", shorten(content)));
        let mut words = content.split_whitespace();
        let target = words.next().unwrap_or_default();
        let requests = if is_url(target) {
            vec![url_request(target, words).map_err(at_line)?]
        } else {
            let model = parse_ref(target, repo_type).map_err(at_line)?;
            let files: Vec<&str> = words.collect();
            repo_requests(model, &files, &[], &[]).map_err(at_line)?
        };
        lines.push(Line { number, spec: content.to_owned(), requests });
    }
    Ok(lines)
}

/// `URL [sha256=HEX] [name=NAME]`: the request `get URL --sha256 HEX --name NAME` makes.
fn url_request<'a>(url: &str, options: impl Iterator<Item = &'a str>) -> Result<AcquireRequest> {
    let (mut sha256, mut name) = (None, None);
    for option in options {
        let bad = |why: &str| {
            Failure::usage(
                format!("`{}` {why}", shorten(option)),
                "a URL line is `URL [sha256=HEX] [name=NAME]`, each option at most once",
            )
        };
        match option.split_once('=') {
            Some(("sha256", hex)) if sha256.is_none() => {
                let digest = Sha256::from_hex(hex)
                    .map_err(|e| anyhow::Error::new(CacheError::from(e)).context(bad("is not 64 hex digits")))?;
                sha256 = Some(digest);
            }
            Some(("name", n)) if name.is_none() => name = Some(n.to_owned()),
            Some(("sha256" | "name", _)) => return Err(bad("is given twice").into()),
            _ => return Err(bad("is not an option of a URL line").into()),
        }
    }
    Ok(AcquireRequest::url(url, sha256, name)?)
}

/// A failure of one entry in `warm --json`.
#[derive(Debug, Serialize)]
struct EntryError {
    kind: ErrorKind,
    exit_code: i32,
    message: String,
    hint: String,
}

/// One line's outcome in `warm --json`.
#[derive(Debug, Serialize)]
struct Entry {
    line: usize,
    spec: String,
    ok: bool,
    paths: Vec<std::path::PathBuf>,
    files_downloaded: usize,
    bytes_downloaded: u64,
    error: Option<EntryError>,
}

/// `warm --json`.
#[derive(Debug, Serialize)]
struct Summary {
    entries: Vec<Entry>,
    succeeded: usize,
    failed: usize,
    files_downloaded: usize,
    bytes_downloaded: u64,
    elapsed_ms: u128,
}

fn read_list(path: &std::path::Path) -> Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("failed to read the list from stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).map_err(|e| {
        anyhow::Error::new(e).context(Failure::usage(
            format!("cannot read the list file `{}`", path.display()),
            "give a readable text file of lines `REPO[@REV] [FILE...]` or `URL [sha256=HEX] [name=NAME]`, or `-` for stdin",
        ))
    })
}

pub(crate) fn run(app: &App, args: &WarmArgs) -> Result<()> {
    let lines = parse(&read_list(&args.list)?, args.repo_type)?;
    let cache = app.manager()?;
    let start = Instant::now();
    let (owners, requests): (Vec<usize>, Vec<AcquireRequest>) =
        lines.iter().enumerate().flat_map(|(i, l)| l.requests.iter().map(move |r| (i, r.clone()))).unzip();
    let requests = requests.into_iter().map(|r| expand_request(&cache, r)).collect::<Result<Vec<_>>>()?;
    let runtime = App::runtime()?;
    let results = runtime.block_on(fetch_all(&cache, requests, usize::from(args.jobs)));
    crate::cmd::remote::finish(app, &runtime, &cache);
    let (files, hits, bytes) = crate::cmd::get::tally(&results);
    app.finish_progress(files, hits, bytes, start.elapsed());
    let mut entries: Vec<Entry> = lines
        .iter()
        .map(|l| Entry {
            line: l.number,
            spec: l.spec.clone(),
            ok: true,
            paths: Vec::new(),
            files_downloaded: 0,
            bytes_downloaded: 0,
            error: None,
        })
        .collect();
    let mut first_error: Option<(usize, CacheError)> = None;
    for (owner, (_, got)) in owners.into_iter().zip(results) {
        let e = &mut entries[owner];
        match got {
            Ok(a) => {
                e.paths.push(a.path);
                e.files_downloaded += a.files_downloaded;
                e.bytes_downloaded += a.bytes_downloaded;
            }
            Err(err) => {
                e.ok = false;
                if e.error.is_none() {
                    e.error = Some(EntryError {
                        kind: err.kind(),
                        exit_code: err.kind().exit_code(),
                        message: err.to_string(),
                        hint: err.hint(),
                    });
                }
                if first_error.is_none() {
                    first_error = Some((e.line, err));
                }
            }
        }
    }
    let summary = Summary {
        succeeded: entries.iter().filter(|e| e.ok).count(),
        failed: entries.iter().filter(|e| !e.ok).count(),
        files_downloaded: entries.iter().map(|e| e.files_downloaded).sum(),
        bytes_downloaded: entries.iter().map(|e| e.bytes_downloaded).sum(),
        elapsed_ms: start.elapsed().as_millis(),
        entries,
    };
    app.out.emit(&summary, || text(&summary))?;
    match first_error {
        None => Ok(()),
        Some((line, err)) => {
            let (kind, hint) = (err.kind(), err.hint());
            let message = format!(
                "{} of {} could not be warmed",
                summary.failed,
                format::count(summary.entries.len() as u64, "entry", "entries")
            );
            Err(anyhow::Error::new(err).context(format!("first failure on line {line}")).context(Failure {
                kind,
                message,
                hint: Some(hint),
            }))
        }
    }
}

fn text(s: &Summary) -> String {
    // The time the JSON reports, to the millisecond.
    let elapsed = std::time::Duration::from_millis(u64::try_from(s.elapsed_ms).unwrap_or(u64::MAX));
    let mut out = String::new();
    for e in &s.entries {
        let status = match (&e.error, e.files_downloaded) {
            (Some(_), _) => "failed".to_owned(),
            (None, 0) => "cached".to_owned(),
            (None, n) => {
                format!("downloaded {} ({})", format::count(n as u64, "file", "files"), format::size(e.bytes_downloaded))
            }
        };
        let line = format!("line {}", e.line);
        let _ = writeln!(out, "{line:<12} {}: {status}", e.spec);
        if let Some(err) = &e.error {
            let _ = writeln!(out, "             {}", err.message);
        }
    }
    let _ = writeln!(
        out,
        "warmed {} of {} in {}: {} downloaded ({}), {} already cached",
        s.succeeded,
        format::count(s.entries.len() as u64, "entry", "entries"),
        format::duration(elapsed),
        format::count(s.files_downloaded as u64, "file", "files"),
        format::size(s.bytes_downloaded),
        format::count(s.entries.iter().filter(|e| e.ok && e.files_downloaded == 0).count() as u64, "entry", "entries"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_into_snapshots_and_files() {
        let lines = parse("# warm these\n\norg/a\norg/b@v1 config.json x/y.bin  # weights\n  datasets/org/d  \n", None).unwrap();
        let specs: Vec<(usize, Vec<String>)> =
            lines.iter().map(|l| (l.number, l.requests.iter().map(AcquireRequest::describe).collect())).collect();
        assert_eq!(
            specs,
            [
                (3, vec!["org/a@main".to_owned()]),
                (4, vec!["org/b@v1/config.json".to_owned(), "org/b@v1/x/y.bin".to_owned()]),
                (5, vec!["datasets/org/d@main".to_owned()]),
            ]
        );
    }

    #[test]
    fn url_lines_take_a_digest_and_a_name() {
        let sha = "a".repeat(64);
        let text = format!("https://h.test/a/w.bin?x=1 name=w.bin sha256={sha}\nhttp://h.test/b.txt\n");
        let lines = parse(&text, None).unwrap();
        let want = AcquireRequest::Url {
            url: "https://h.test/a/w.bin?x=1".into(),
            sha256: Some(Sha256::from_hex(&sha).unwrap()),
            name: Some("w.bin".into()),
        };
        assert_eq!(lines[0].requests, [want]);
        assert_eq!(lines[1].requests, [AcquireRequest::Url { url: "http://h.test/b.txt".into(), sha256: None, name: None }]);
        for bad in [
            "https://h.test/x sha256=12",
            "https://h.test/x name=../y",
            "https://h.test/x name=a name=b",
            "https://h.test/x file.bin",
        ] {
            let err = parse(&format!("org/a\n{bad}\n"), None).unwrap_err();
            assert_eq!(crate::report::kind(&err).exit_code(), 2, "{bad}: {err:#}");
            assert!(err.to_string().starts_with("line 2 of the list"), "{err}");
        }
    }

    #[test]
    fn a_bad_line_is_named() {
        for bad in ["org/a\norg/b ../../etc/passwd\n", "org/a\n../x\n", "org/a\norg/b a\u{0}b\n"] {
            let err = parse(bad, None).unwrap_err();
            assert_eq!(crate::report::kind(&err).exit_code(), 2);
            assert!(err.to_string().starts_with("line 2 of the list"), "{err}");
        }
    }
}
