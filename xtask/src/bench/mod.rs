//! `cargo xtask bench [--quick] [--only NAME,...]`: builds release binaries, starts the
//! testkit hub on loopback, runs every scenario with its contenders alternating (A B C A B
//! C …), and writes `BENCHMARKS.md` (machine, versions, commands, tables).
//!
//! It exits non-zero only when a scenario could not run — never because a target was
//! missed: targets are goals written next to the numbers, not tests. `--quick` uses
//! smaller files and fewer runs and finishes in a few minutes once built.

mod contenders;
mod hub;
mod measure;
mod report;
mod runner;
mod scenarios;

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::{cmd, py};
use contenders::Bins;
use hub::Hub;
use report::Table;
use scenarios::{Ctx, Plan};

const SCENARIOS: [&str; 9] = ["cold", "cold-capped", "small", "small-tmpfs", "warm", "verify", "resume", "listing", "eight"];

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
        python,
    };
    let plan = Plan::new(quick);
    let hub = Hub::start(&bins.testkit, &plan.hub_args())?;
    println!("hub at {}", hub.url);
    let scratch = root.join("target/bench-scratch");
    let ctx = Ctx { bins: &bins, hub: &hub, plan: &plan, scratch: scratch.clone() };

    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|n| n == name));
    let mut tables: Vec<Table> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    for name in SCENARIOS.into_iter().filter(|n| wanted(n)) {
        println!("\n== {name}");
        let table = match name {
            "cold" => Ok(scenarios::cold(&ctx, false)),
            "cold-capped" => Ok(scenarios::cold(&ctx, true)),
            "small" => scenarios::small_files(&ctx, false),
            "small-tmpfs" => scenarios::small_files(&ctx, true),
            "warm" => scenarios::warm(&ctx),
            "verify" => scenarios::verify(&ctx),
            "resume" => Ok(scenarios::resume(&ctx)),
            "listing" => scenarios::listing(&ctx),
            _ => Ok(scenarios::eight_processes(&ctx)),
        };
        match table {
            Ok(t) => {
                failures.extend(t.rows.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{name}/{}: {e}", r.contender))));
                tables.push(t);
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    drop(hub);
    let _ = std::fs::remove_dir_all(scratch.join("cold"));

    let doc = document(&tables, quick, &bins, started.elapsed().as_secs());
    let out = root.join("BENCHMARKS.md");
    std::fs::write(&out, doc).map_err(|e| format!("writing {}: {e}", out.display()))?;
    println!("\nwrote {} in {:.0} s", out.display(), started.elapsed().as_secs_f64());
    if failures.is_empty() { Ok(()) } else { Err(format!("some scenarios could not run:\n  {}", failures.join("\n  "))) }
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

fn document(tables: &[Table], quick: bool, bins: &Bins, secs: u64) -> String {
    let mut d = String::new();
    let _ = writeln!(d, "# Benchmarks\n");
    let _ = writeln!(
        d,
        "Written by `cargo xtask bench{}` in {secs} s. Every contender runs as a whole process against the \
         testkit Hub imitation on 127.0.0.1 (the server shares the machine), alternating A B C … so load \
         drift spreads evenly. Medians and min–max over the runs; peak RSS from `/usr/bin/time`. Targets \
         are goals, not tests.\n",
        if quick { " --quick" } else { "" }
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
    let _ = writeln!(d, "- machine: {}", machine());
    let _ = writeln!(d, "- modelcache {} ({})", env!("CARGO_PKG_VERSION"), first_line(Command::new("rustc").arg("--version")));
    let _ = writeln!(d, "- curl: {}", first_line(Command::new("curl").arg("--version")));
    let _ = writeln!(d, "- huggingface_hub, Python: {py}");
    let _ = writeln!(d, "- hf-hub: {}", hf_hub_version(&cmd::root().join("Cargo.lock")));
    let _ = writeln!(d);
    for t in tables {
        d.push_str(&t.markdown());
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
