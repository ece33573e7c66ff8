//! Scale curves: how the cost of a command grows with its work — snapshot time against
//! file count, `ls`/`stats`/`prune --dry-run` against cache entries, `verify` against
//! bytes, and N processes asking for one cold file at once against N.
//!
//! Each curve is a table (median wall time per point, and the growth exponent `k` of
//! `time ∝ work^k` between its two largest points) and a panel of `benches/scale.svg`,
//! drawn on log–log axes by the `scalechart` helper (plotters, SVG only). Points of one
//! curve alternate like contenders, so load drift spreads over all of them. A curve
//! whose last segment grows faster than linearly (`k > 1.15`) is flagged in the table.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::contenders::{self, ours};
use super::measure::{self, summary};
use super::runner::{Cleanup, Contender, alternate};
use super::scenarios::Ctx;

/// Growth exponents above this are flagged as super-linear.
const SUPER_LINEAR: f64 = 1.15;

/// What the scale curves measure, per mode.
pub(crate) struct ScalePlan {
    pub(crate) files: Vec<usize>,
    pub(crate) entries: Vec<usize>,
    pub(crate) verify_mib: Vec<u64>,
    pub(crate) procs: Vec<usize>,
    pub(crate) procs_file: u64,
    pub(crate) runs: usize,
}

impl ScalePlan {
    pub(crate) fn new(quick: bool) -> ScalePlan {
        if quick {
            ScalePlan {
                files: vec![10, 100, 1_000],
                entries: vec![1_000, 10_000, 100_000],
                verify_mib: vec![16, 64, 256],
                procs: vec![1, 2, 4, 8, 16, 32],
                procs_file: 64 << 20,
                runs: 2,
            }
        } else {
            ScalePlan {
                files: vec![10, 100, 1_000, 10_000],
                entries: vec![1_000, 10_000, 100_000, 1_000_000],
                verify_mib: vec![16, 64, 256, 1_024],
                procs: vec![1, 2, 4, 8, 16, 32],
                procs_file: 256 << 20,
                runs: 3,
            }
        }
    }

    /// The `serve` flags of the repos the curves use.
    pub(crate) fn hub_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut repo = |name: String, files: Vec<String>| {
            a.push("--repo".to_owned());
            a.push(name);
            for f in files {
                a.push("--file".to_owned());
                a.push(f);
            }
        };
        for &n in &self.files {
            repo(format!("bench/scale-files-{n}"), (0..n).map(|i| format!("files/f{i:05}.json=4KiB")).collect());
        }
        for &m in &self.verify_mib {
            repo(format!("bench/scale-verify-{m}"), vec![format!("model.safetensors={}:lfs", m << 20)]);
        }
        repo("bench/scale-procs".to_owned(), vec![format!("model.safetensors={}:lfs", self.procs_file)]);
        a
    }
}

/// One line of a curve: a command measured at every point.
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) command: String,
    /// `(work, wall seconds of every run)`.
    pub(crate) points: Vec<(u64, Vec<f64>)>,
    pub(crate) error: Option<String>,
}

/// One curve: a panel of the chart and a table.
pub(crate) struct Curve {
    pub(crate) title: String,
    pub(crate) x_label: &'static str,
    pub(crate) series: Vec<Series>,
}

/// `time ∝ work^k` between the two largest points of a series with runs.
fn growth(points: &[(u64, Vec<f64>)]) -> Option<f64> {
    let med: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|(x, s)| {
            #[expect(clippy::cast_precision_loss, reason = "work counts are far below 2^52")]
            let x = *x as f64;
            summary(s).map(|(m, _, _)| (x, m))
        })
        .collect();
    let [.., (x0, y0), (x1, y1)] = med[..] else { return None };
    (x1 > x0 && y0 > 0.0 && y1 > 0.0).then(|| (y1 / y0).ln() / (x1 / x0).ln())
}

fn fmt_secs(s: f64) -> String {
    if s < 0.1 { format!("{:.1} ms", s * 1000.0) } else { format!("{s:.2} s") }
}

impl Curve {
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "#### {}\n", self.title);
        let names: Vec<&str> = self.series.iter().map(|s| s.name.as_str()).collect();
        let _ = writeln!(out, "| {} | {} |", self.x_label, names.join(" | "));
        let _ = writeln!(out, "|---|{}", "---|".repeat(names.len()));
        let mut xs: Vec<u64> = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
        xs.sort_unstable();
        xs.dedup();
        for x in xs {
            let cells: Vec<String> = self
                .series
                .iter()
                .map(|s| {
                    s.points
                        .iter()
                        .find(|p| p.0 == x)
                        .and_then(|p| summary(&p.1))
                        .map_or_else(|| "–".to_owned(), |(m, _, _)| fmt_secs(m))
                })
                .collect();
            let _ = writeln!(out, "| {x} | {} |", cells.join(" | "));
        }
        let growth: Vec<String> = self
            .series
            .iter()
            .map(|s| match (&s.error, growth(&s.points)) {
                (Some(e), _) => format!("failed: {}", e.replace('|', "/")),
                (None, Some(k)) if k > SUPER_LINEAR => format!("k = {k:.2} **super-linear**"),
                (None, Some(k)) => format!("k = {k:.2}"),
                (None, None) => "–".to_owned(),
            })
            .collect();
        let _ = writeln!(out, "| growth (last segment) | {} |", growth.join(" | "));
        let _ = writeln!(out, "\n<details><summary>commands</summary>\n");
        for s in &self.series {
            let _ = writeln!(out, "- {}: `{}`", s.name, s.command);
        }
        let _ = writeln!(out, "\n</details>\n");
        out
    }

    /// The chart helper's input: `panel TAB x-label TAB series TAB x TAB median-seconds`.
    fn tsv(&self) -> String {
        let mut out = String::new();
        for s in &self.series {
            for (x, secs) in &s.points {
                if let Some((m, _, _)) = summary(secs) {
                    let _ = writeln!(out, "{}\t{}\t{}\t{x}\t{m}", self.title, self.x_label, s.name);
                }
            }
        }
        out
    }
}

/// Draws every curve into `out` (an SVG) with the `scalechart` helper.
pub(crate) fn chart(curves: &[Curve], helper: &Path, out: &Path) -> Result<(), String> {
    use std::io::Write as _;
    let data: String = curves.iter().map(Curve::tsv).collect();
    let mut child = Command::new(helper)
        .arg(out)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", helper.display()))?;
    child
        .stdin
        .take()
        .ok_or("no stdin for the chart helper")?
        .write_all(data.as_bytes())
        .map_err(|e| format!("writing to the chart helper: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("the chart helper failed ({status})")) }
}

/// Every curve, and the chart of them at `chart`; what failed, as messages.
pub(crate) fn run_all(ctx: &Ctx<'_>, plan: &ScalePlan, helper: &Path, chart_path: &Path) -> (Vec<Curve>, Vec<String>) {
    let mut curves = vec![snapshot_files(ctx, plan)];
    let mut failures = Vec::new();
    match entries(ctx, plan) {
        Ok(c) => curves.push(c),
        Err(e) => failures.push(format!("scale/entries: {e}")),
    }
    match verify_bytes(ctx, plan) {
        Ok(c) => curves.push(c),
        Err(e) => failures.push(format!("scale/verify: {e}")),
    }
    curves.push(concurrent(ctx, plan));
    failures.extend(
        curves.iter().flat_map(|c| c.series.iter().filter_map(|s| s.error.as_ref().map(|e| format!("scale/{}: {e}", s.name)))),
    );
    if let Err(e) = chart(&curves, helper, chart_path) {
        failures.push(format!("scale/chart: {e}"));
    }
    (curves, failures)
}

/// Runs contenders named by their work (`x`) and turns their rows into one series.
fn series_of(name: &str, points: &[u64], contenders: &[Contender<'_>], runs: usize, scratch: &Path, cleanup: Cleanup) -> Series {
    let rows = alternate(contenders, runs, scratch, cleanup);
    let command = rows.iter().map(|r| r.command.as_str()).find(|c| !c.is_empty()).unwrap_or_default().to_owned();
    let error = rows.iter().find_map(|r| r.error.clone());
    let points = points.iter().zip(rows).filter(|(_, r)| r.error.is_none()).map(|(x, r)| (*x, r.secs)).collect();
    Series { name: name.to_owned(), command, points, error }
}

/// `modelcache get` of a whole snapshot of 10 … 10 000 files of 4 KiB.
pub(crate) fn snapshot_files(ctx: &Ctx<'_>, plan: &ScalePlan) -> Curve {
    let contenders: Vec<Contender<'_>> = plan
        .files
        .iter()
        .map(|&n| {
            Contender::new(format!("{n} files"), "ours", move |d: &Path| {
                let mut c = ours(ctx.bins, d, &ctx.hub.url);
                c.args(["get", &format!("bench/scale-files-{n}")]);
                Ok(c)
            })
        })
        .collect();
    let xs: Vec<u64> = plan.files.iter().map(|&n| n as u64).collect();
    let s = series_of("modelcache get (snapshot)", &xs, &contenders, plan.runs, &ctx.scratch.join("scale-files"), Cleanup::AtEnd);
    Curve { title: "Snapshot download time vs file count (4 KiB files)".to_owned(), x_label: "files", series: vec![s] }
}

/// A generated cache of `repos × files` entries (kept between runs: generating is not
/// what is measured), its index built.
pub(crate) fn generated_cache(ctx: &Ctx<'_>, repos: usize, files: usize) -> Result<PathBuf, String> {
    let dir = ctx.scratch.join(format!("gen-{repos}x{files}"));
    if !dir.join("ready").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        crate::cmd::run(Command::new(&ctx.bins.gencache).arg(dir.join("hub")).arg(repos.to_string()).arg(files.to_string()))?;
        // The first open builds the index from the layout, and the first listing records
        // its stamps: neither is what is measured.
        measure::run(ours(ctx.bins, &dir, &ctx.hub.url).args(["--offline", "ls"]), &dir)?;
        std::fs::write(dir.join("ready"), b"").map_err(|e| e.to_string())?;
    }
    Ok(dir)
}

/// `ls`, `stats` and `prune --dry-run` against 1 000 … 1 000 000 cache entries.
pub(crate) fn entries(ctx: &Ctx<'_>, plan: &ScalePlan) -> Result<Curve, String> {
    let mut caches = Vec::new();
    for &n in &plan.entries {
        let files = n.min(1_000);
        caches.push(generated_cache(ctx, n / files, files)?);
    }
    let xs: Vec<u64> = plan.entries.iter().map(|&n| n as u64).collect();
    let commands: [(&str, &[&str]); 3] =
        [("ls", &["ls"]), ("stats", &["stats"]), ("prune --dry-run", &["prune", "--max-size", "1KiB", "--dry-run"])];
    let mut series = Vec::new();
    for (name, args) in commands {
        let contenders: Vec<Contender<'_>> = plan
            .entries
            .iter()
            .zip(&caches)
            .map(|(n, dir)| {
                Contender::new(format!("{name} {n}"), "ours", move |_d: &Path| {
                    let mut c = ours(ctx.bins, dir, &ctx.hub.url);
                    c.arg("--offline").args(args);
                    Ok(c)
                })
            })
            .collect();
        series.push(series_of(
            &format!("modelcache {name}"),
            &xs,
            &contenders,
            plan.runs,
            &ctx.scratch.join("scale-entries"),
            Cleanup::AtEnd,
        ));
    }
    // The largest cache takes gigabytes of small blocks: only the 100 000-entry one
    // (shared with the listing scenario) stays.
    for (n, dir) in plan.entries.iter().zip(&caches) {
        if *n > 100_000 {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(Curve { title: "`ls`, `stats`, `prune --dry-run` vs cache entries".to_owned(), x_label: "entries", series })
}

/// `verify` of one cached file of 16 MiB … 1 GiB (page cache warm, BLAKE3 recorded).
pub(crate) fn verify_bytes(ctx: &Ctx<'_>, plan: &ScalePlan) -> Result<Curve, String> {
    let dir = ctx.scratch.join("scale-verify-cache");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for m in &plan.verify_mib {
        let repo = format!("bench/scale-verify-{m}");
        measure::run(ours(ctx.bins, &dir, &ctx.hub.url).args(["get", &repo, "model.safetensors"]), &dir)?;
        // Untimed: a first verify may record what the download left for later.
        measure::run(ours(ctx.bins, &dir, &ctx.hub.url).args(["verify", &repo]), &dir)?;
    }
    let contenders: Vec<Contender<'_>> = plan
        .verify_mib
        .iter()
        .map(|m| {
            let dir = dir.clone();
            Contender::new(format!("verify {m} MiB"), "ours", move |_d: &Path| {
                let mut c = ours(ctx.bins, &dir, &ctx.hub.url);
                c.args(["verify", &format!("bench/scale-verify-{m}")]);
                Ok(c)
            })
        })
        .collect();
    let xs: Vec<u64> = plan.verify_mib.clone();
    let s = series_of("modelcache verify", &xs, &contenders, plan.runs, &ctx.scratch.join("scale-verify"), Cleanup::AtEnd);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Curve { title: "`verify` time vs bytes (one file)".to_owned(), x_label: "MiB", series: vec![s] })
}

/// N processes (1 … 32) asking for the same cold file at once: one transfer, the others
/// wait and hit; the wall time should stay flat.
pub(crate) fn concurrent(ctx: &Ctx<'_>, plan: &ScalePlan) -> Curve {
    let file = "model.safetensors";
    let contenders: Vec<Contender<'_>> = plan
        .procs
        .iter()
        .map(|&n| {
            Contender::new(format!("{n} processes"), "ours", move |d: &Path| {
                let mut one = ours(ctx.bins, d, &ctx.hub.url);
                one.args(["get", "bench/scale-procs", file]);
                let mut c = Command::new("sh");
                c.arg("-c").arg(format!(
                    "pids=; for i in $(seq {n}); do {} > /dev/null & pids=\"$pids $!\"; done; rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc",
                    contenders::describe_raw(&one)
                ));
                for (k, v) in one.get_envs() {
                    match v {
                        Some(v) => c.env(k, v),
                        None => c.env_remove(k),
                    };
                }
                Ok(c)
            })
        })
        .collect();
    let xs: Vec<u64> = plan.procs.iter().map(|&n| n as u64).collect();
    let s = series_of("N × modelcache get", &xs, &contenders, plan.runs, &ctx.scratch.join("scale-procs"), Cleanup::EachRun);
    Curve {
        title: format!("N processes on one cold {} MiB file: wall time vs N", plan.procs_file >> 20),
        x_label: "processes",
        series: vec![s],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_the_exponent_of_the_last_segment() {
        let pts = |v: &[(u64, f64)]| v.iter().map(|(x, y)| (*x, vec![*y])).collect::<Vec<_>>();
        let k = growth(&pts(&[(10, 1.0), (100, 1.5), (1_000, 15.0)])).unwrap();
        assert!((k - 1.0).abs() < 1e-9, "{k}");
        let k = growth(&pts(&[(100, 1.0), (1_000, 100.0)])).unwrap();
        assert!((k - 2.0).abs() < 1e-9, "{k}");
        assert_eq!(growth(&pts(&[(100, 1.0)])), None);
    }

    #[test]
    fn a_super_linear_curve_is_flagged_in_its_table() {
        let curve = |last: f64| Curve {
            title: "t".to_owned(),
            x_label: "files",
            series: vec![Series {
                name: "s".to_owned(),
                command: "modelcache get".to_owned(),
                points: vec![(100, vec![0.01]), (1_000, vec![last])],
                error: None,
            }],
        };
        assert!(curve(1.0).markdown().contains("k = 2.00 **super-linear**"));
        let linear = curve(0.1).markdown();
        assert!(linear.contains("| 1000 | 0.10 s |") && linear.contains("k = 1.00 |"), "{linear}");
    }
}
