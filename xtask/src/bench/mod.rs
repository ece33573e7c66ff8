//! `cargo xtask bench [--quick] [--only NAME,...]`: builds release binaries, starts the
//! testkit hub on loopback, runs every scenario with its contenders alternating (A B C A B
//! C …), and writes `BENCHMARKS.md` (machine, versions, load, commands, tables) and, with
//! the `scale` scenario, the chart `benches/scale.svg` of how costs grow.
//!
//! It exits non-zero only when a scenario could not run — never because a target was
//! missed: targets are goals written next to the numbers, not tests. `--quick` uses
//! smaller files and fewer runs and finishes in a few minutes once built.

mod contenders;
mod hub;
mod lockfile;
mod measure;
mod report;
mod runner;
mod scale;
mod scenarios;
mod sharing;
mod tier;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::{cmd, py};
use contenders::Bins;
use hub::Hub;
use report::Table;
use scenarios::{Ctx, Link, Plan};

const SCENARIOS: [&str; 17] = [
    "cold",
    "cold-capped",
    "cold-link",
    "small",
    "small-tmpfs",
    "warm",
    "verify",
    "resume",
    "listing",
    "eight",
    "cross-repo",
    "to-dir",
    "dedup",
    "import",
    "sync-complete",
    "remote",
    "scale",
];

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let only: Option<Vec<String>> =
        args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).map(|s| s.split(',').map(str::to_owned).collect());
    if let Some(names) = &only
        && let Some(bad) = names.iter().find(|n| !SCENARIOS.contains(&n.as_str()))
    {
        return Err(format!("unknown scenario `{bad}`; known: {}", SCENARIOS.join(", ")));
    }
    let started = Instant::now();
    let root = cmd::root();
    cmd::run(cmd::cargo().args([
        "build",
        "--release",
        "-p",
        "cache-cli",
        "-p",
        "cache-testkit",
        "-p",
        "modelcache-benches",
        "--bins",
    ]))?;
    let release = root.join("target/release");
    let python = match py::ensure() {
        Ok(p) => Some(p),
        Err(e) => {
            println!("warning: Python contenders will fail: {e}");
            None
        }
    };
    let bins = Bins {
        modelcache: release.join("modelcache"),
        testkit: release.join("cache-testkit"),
        hfhub: release.join("hfhub"),
        b3: release.join("b3"),
        gencache: release.join("gencache"),
        s3server: release.join("s3server"),
        python,
    };
    let load_before = load_average();
    let plan = Plan::new(quick);
    let scale_plan = scale::ScalePlan::new(quick);
    let mut hub_args = plan.hub_args();
    hub_args.extend(sharing::hub_args(plan.big));
    if wanted_scenario(only.as_deref(), "scale") {
        hub_args.extend(scale_plan.hub_args());
    }
    let hub = Hub::start(&bins.testkit, &hub_args)?;
    println!("hub at {}", hub.url);
    let scratch = root.join("target/bench-scratch");
    let ctx = Ctx { bins: &bins, hub: &hub, plan: &plan, scratch: scratch.clone() };

    let wanted = |name: &str| wanted_scenario(only.as_deref(), name);
    let mut tables: Vec<Table> = Vec::new();
    let mut curves: Vec<scale::Curve> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for name in SCENARIOS.into_iter().filter(|n| wanted(n)) {
        if name == "scale" {
            println!("\n== scale");
            let chart = root.join("benches/scale.svg");
            let (c, f) = scale::run_all(&ctx, &scale_plan, &release.join("scalechart"), &chart);
            curves = c;
            failures.extend(f);
            continue;
        }
        println!("\n== {name}");
        // Nobody pays for earlier writes (the build's, the last scenario's clean-up): a
        // contender that makes its files durable would otherwise wait for them too.
        let _ = Command::new("sync").status();
        let made = tables_of(name, &ctx);
        match made {
            Ok(made) => {
                for t in made {
                    failures
                        .extend(t.rows.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{name}/{}: {e}", r.contender))));
                    tables.push(t);
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    drop(hub);
    let _ = std::fs::remove_dir_all(scratch.join("cold"));

    let load = format!("{load_before} at the start, {} at the end", load_average());
    let reproduce = std::iter::once("cargo xtask bench").chain(args.iter().map(String::as_str)).collect::<Vec<_>>().join(" ");
    let doc = document(
        &Report { tables: &tables, curves: &curves, reproduce: &reproduce, load: &load },
        &bins,
        started.elapsed().as_secs(),
    );
    let out = root.join("BENCHMARKS.md");
    std::fs::write(&out, doc).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("\nwrote {} in {:.0} s", out.display(), started.elapsed().as_secs_f64());
    if failures.is_empty() { Ok(()) } else { Err(format!("some scenarios could not run:\n  {}", failures.join("\n  "))) }
}

/// Runs one scenario (all but `scale`): its table, or two for `remote`.
fn tables_of(name: &str, ctx: &Ctx<'_>) -> Result<Vec<Table>, String> {
    match name {
        "cold" => Ok(vec![scenarios::cold(ctx, Link::Loopback)]),
        "cold-capped" => Ok(vec![scenarios::cold(ctx, Link::Capped)]),
        "cold-link" => Ok(vec![scenarios::cold(ctx, Link::Fast)]),
        "small" => scenarios::small_files(ctx, false).map(|t| vec![t]),
        "small-tmpfs" => scenarios::small_files(ctx, true).map(|t| vec![t]),
        "warm" => scenarios::warm(ctx).map(|t| vec![t]),
        "verify" => scenarios::verify(ctx).map(|t| vec![t]),
        "resume" => Ok(vec![scenarios::resume(ctx)]),
        "listing" => scenarios::listing(ctx).map(|t| vec![t]),
        "cross-repo" => sharing::cross_repo(ctx).map(|t| vec![t]),
        "to-dir" => sharing::to_dir(ctx).map(|t| vec![t]),
        "dedup" => sharing::dedup(ctx).map(|t| vec![t]),
        "import" => lockfile::import(ctx).map(|t| vec![t]),
        "sync-complete" => lockfile::sync_complete(ctx).map(|t| vec![t]),
        // Pull from the tier vs. the Hub, and a multipart push: two tables.
        "remote" => tier::tables(ctx),
        _ => Ok(vec![scenarios::eight_processes(ctx)]),
    }
}

fn wanted_scenario(only: Option<&[String]>, name: &str) -> bool {
    only.is_none_or(|o| o.iter().any(|n| n == name))
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "unknown".to_owned(), |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// What one run produced, for the document.
struct Report<'a> {
    tables: &'a [Table],
    curves: &'a [scale::Curve],
    reproduce: &'a str,
    load: &'a str,
}

fn first_line(cmd: &mut Command) -> String {
    cmd.output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or_default().trim().to_owned())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or_else(String::new, |kib| format!(", {} GiB RAM", kib >> 20));
    format!("{cpu}, {cores} cores{mem}; {}", first_line(Command::new("uname").args(["-sr"])))
}

fn document(r: &Report<'_>, bins: &Bins, secs: u64) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "# Benchmarks\n");
    let _ = writeln!(
        d,
        "Written by `{}` in {secs} s. Every contender runs as a whole process against the \
         testkit Hub imitation on 127.0.0.1 (the server shares the machine), alternating A B C … so load \
         drift spreads evenly. Medians and min–max over the runs; peak RSS from `/usr/bin/time`. Targets \
         are goals, not tests. In the commands, `$HUB` is the testkit's URL and `$SCRATCH` the runs' \
         scratch folder (`target/bench-scratch`, or a folder under `/dev/shm` for the tmpfs runs).\n",
        r.reproduce
    );
    let py = bins.python.as_ref().map_or_else(
        || "not available".to_owned(),
        |p| {
            first_line(
                Command::new(p)
                    .args(["-c", "import huggingface_hub,sys;print(huggingface_hub.__version__, sys.version.split()[0])"]),
            )
        },
    );
    let _ = writeln!(d, "- reproduce: `{}` (from the workspace root)", r.reproduce);
    let _ = writeln!(d, "- date: {}", first_line(Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])));
    let _ = writeln!(d, "- machine: {}", machine());
    let _ = writeln!(d, "- load average (1, 5, 15 min): {}", r.load);
    let _ = writeln!(d, "- modelcache {} ({})", env!("CARGO_PKG_VERSION"), first_line(Command::new("rustc").arg("--version")));
    let _ = writeln!(d, "- curl: {}", first_line(Command::new("curl").arg("--version")));
    let _ = writeln!(d, "- huggingface_hub, Python: {py}");
    let _ = writeln!(d, "- hf-hub: {}", hf_hub_version(&cmd::root().join("Cargo.lock")));
    let _ = writeln!(d);
    for t in r.tables {
        d.push_str(&t.markdown());
    }
    if !r.curves.is_empty() {
        let _ = writeln!(
            d,
            "## Scale curves\n\nHow cost grows with work (medians; log–log chart). `k` is the growth exponent of \
             `time ∝ work^k` between the two largest points: 1 is linear, 0 flat; above 1.15 is flagged.\n\n\
             ![scale curves](benches/scale.svg)\n"
        );
        for c in r.curves {
            d.push_str(&c.markdown());
        }
    }
    // The analysis (what limits a missed target, what was profiled and fixed) is written
    // by hand next to the harness and carried into every report.
    if let Ok(notes) = std::fs::read_to_string(cmd::root().join("benches/ANALYSIS.md")) {
        d.push_str(&notes);
    }
    d
}

fn hf_hub_version(lock: &Path) -> String {
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"hf-hub\"" {
            return lines.next().and_then(|v| v.strip_prefix("version = ")).unwrap_or("?").trim_matches('"').to_owned();
        }
    }
    "?".to_owned()
}
