//! BENCHMARKS.md: the machine, the versions, the commands and one table per scenario.

use std::fmt::Write as _;

use super::measure::summary;

/// One contender's results in one scenario.
pub(crate) struct Row {
    pub(crate) contender: String,
    pub(crate) kind: &'static str,
    pub(crate) command: String,
    pub(crate) secs: Vec<f64>,
    pub(crate) rss_kib: Vec<u64>,
    pub(crate) extra: Vec<f64>,
    pub(crate) error: Option<String>,
}

/// One scenario's results.
pub(crate) struct Table {
    pub(crate) name: &'static str,
    pub(crate) title: String,
    pub(crate) target: &'static str,
    /// Name of the row ratios are computed against.
    pub(crate) baseline: &'static str,
    /// What the `extra` column means, if used.
    pub(crate) extra_label: Option<&'static str>,
    pub(crate) rows: Vec<Row>,
    pub(crate) note: Option<String>,
}

fn fmt_secs(s: f64) -> String {
    if s < 0.1 { format!("{:.1} ms", s * 1000.0) } else { format!("{s:.2} s") }
}

impl Table {
    fn median_of(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.contender == name).and_then(|r| summary(&r.secs)).map(|(m, _, _)| m)
    }

    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "### {}: {}\n", self.name, self.title);
        let _ = writeln!(out, "Target: {}\n", self.target);
        let extra = self.extra_label.map(|l| format!(" {l} |")).unwrap_or_default();
        let _ = writeln!(out, "| contender | kind | median | min–max | × {} | peak RSS |{extra} runs |", self.baseline);
        let _ = writeln!(out, "|---|---|---|---|---|---|{}---|", if self.extra_label.is_some() { "---|" } else { "" });
        let base = self.median_of(self.baseline);
        for r in &self.rows {
            let extra = if self.extra_label.is_some() {
                let e = summary(&r.extra).map_or_else(|| "–".to_owned(), |(m, _, _)| format!("{m:.3}"));
                format!(" {e} |")
            } else {
                String::new()
            };
            match (&r.error, summary(&r.secs)) {
                (None, Some((med, min, max))) => {
                    let ratio = base.map_or_else(|| "–".to_owned(), |b| format!("{:.2}", med / b));
                    let rss = r
                        .rss_kib
                        .iter()
                        .max()
                        .map_or_else(|| "–".to_owned(), |k| format!("{}.{} MiB", k / 1024, (k % 1024) * 10 / 1024));
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {}–{} | {ratio} | {rss} |{extra} {} |",
                        r.contender,
                        r.kind,
                        fmt_secs(med),
                        fmt_secs(min),
                        fmt_secs(max),
                        r.secs.len()
                    );
                }
                (err, _) => {
                    let why = err.clone().unwrap_or_else(|| "no run".to_owned()).replace('|', "/");
                    let _ = writeln!(out, "| {} | {} | failed: {why} | | | |{extra} 0 |", r.contender, r.kind);
                }
            }
        }
        if let Some(note) = &self.note {
            let _ = writeln!(out, "\n{note}");
        }
        let _ = writeln!(
            out,
            "\n<details><summary>commands</summary>\n\n(`$HUB`: the testkit's URL; `$SCRATCH`: the runs' scratch folder, \
             `target/bench-scratch` or, for the tmpfs runs, a folder under `/dev/shm`.)\n"
        );
        for r in &self.rows {
            let _ = writeln!(out, "- {}: `{}`", r.contender, r.command);
        }
        let _ = writeln!(out, "\n</details>\n");
        out
    }
}
