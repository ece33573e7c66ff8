//! Running contenders against each other, alternating (A B C A B C …) so that drifting
//! machine load spreads over all of them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::contenders::describe;
use super::measure::{self, Sample};
use super::report::Row;

type Prepare<'a> = Box<dyn Fn(&Path) -> Result<Command, String> + 'a>;
type After<'a> = Box<dyn Fn(&Path) -> Result<f64, String> + 'a>;

/// One way of doing a scenario's job.
pub(crate) struct Contender<'a> {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    /// Prepares a run in a fresh directory and returns the command to time.
    pub(crate) prepare: Prepare<'a>,
    /// After a successful run: the scenario's extra number, if it has one.
    pub(crate) after: Option<After<'a>>,
    /// Timed without `/usr/bin/time` (its peak RSS from one extra wrapped run).
    pub(crate) precise: bool,
}

impl<'a> Contender<'a> {
    pub(crate) fn new(
        name: impl Into<String>,
        kind: &'static str,
        prepare: impl Fn(&Path) -> Result<Command, String> + 'a,
    ) -> Self {
        Contender { name: name.into(), kind, prepare: Box::new(prepare), after: None, precise: false }
    }

    /// For a command of a few milliseconds that can run again with the same result (a
    /// warm hit): each run is timed alone, without `/usr/bin/time` around it, and the
    /// peak RSS comes from one more run under it in the first round.
    pub(crate) fn precise(mut self) -> Self {
        self.precise = true;
        self
    }

    pub(crate) fn after(mut self, f: impl Fn(&Path) -> Result<f64, String> + 'a) -> Self {
        self.after = Some(Box::new(f));
        self
    }
}

/// When the run directories of a scenario are removed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cleanup {
    /// After each run: the scenario writes gigabytes.
    EachRun,
    /// When the scenario ends. Creating many files right after another run deleted many
    /// costs more on some filesystems (ext4 without a journal skips every inode deleted in
    /// the last minute, reading its inode table block each time): a run would pay for the
    /// previous contender's cleanup.
    AtEnd,
}

/// Runs every contender `runs` times, alternating; each run gets a fresh directory under
/// `scratch`, removed as `cleanup` says. A contender that fails stops being run.
pub(crate) fn alternate(contenders: &[Contender<'_>], runs: usize, scratch: &Path, cleanup: Cleanup) -> Vec<Row> {
    let mut rows: Vec<Row> = contenders
        .iter()
        .map(|c| Row {
            contender: c.name.clone(),
            kind: c.kind,
            command: String::new(),
            secs: Vec::new(),
            rss_kib: Vec::new(),
            extra: Vec::new(),
            error: None,
        })
        .collect();
    for round in 0..runs {
        for (c, row) in contenders.iter().zip(rows.iter_mut()) {
            if row.error.is_some() {
                continue;
            }
            let dir: PathBuf = scratch.join(format!("{}-{round}", sanitize(&c.name)));
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                row.error = Some(format!("creating {}: {e}", dir.display()));
                continue;
            }
            let result = (c.prepare)(&dir).and_then(|mut cmd| {
                if row.command.is_empty() {
                    row.command = describe(&cmd);
                }
                let mut s: Sample = if c.precise {
                    let rss = if round == 0 { measure::run(&mut (c.prepare)(&dir)?, &dir)?.rss_kib } else { None };
                    Sample { rss_kib: rss, ..measure::run_timed(&mut cmd, &dir)? }
                } else {
                    measure::run(&mut cmd, &dir)?
                };
                if let Some(after) = &c.after {
                    s.extra = Some(after(&dir)?);
                }
                Ok(s)
            });
            match result {
                Ok(s) => {
                    println!(
                        "  {:<28} run {} {:>9.3} s{}",
                        c.name,
                        round + 1,
                        s.secs,
                        s.extra.map(|e| format!("  ({e:.3})")).unwrap_or_default()
                    );
                    row.secs.push(s.secs);
                    row.rss_kib.extend(s.rss_kib);
                    row.extra.extend(s.extra);
                }
                Err(e) => {
                    println!("  {:<28} run {} FAILED: {e}", c.name, round + 1);
                    row.error = Some(e);
                }
            }
            if cleanup == Cleanup::EachRun {
                let _ = std::fs::remove_dir_all(&dir);
            }
            // The next contender should not pay for this run's writes: what it left dirty in
            // the page cache (a contender that makes its files durable, with `syncfs`, would
            // write the previous contender's files too) or what its clean-up freed (a
            // gigabyte's blocks, which this disk's `discard` mount also sends down).
            let _ = std::process::Command::new("sync").status();
        }
    }
    if cleanup == Cleanup::AtEnd {
        let _ = std::fs::remove_dir_all(scratch);
    }
    rows
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}
