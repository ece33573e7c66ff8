//! `cargo xtask test-matrix`: each library crate's tests under three feature sets, each
//! crate checked alone, and the layering rules of ARCHITECTURE.md enforced on the real
//! dependency graph (`cargo tree`).

use std::fs;
use std::time::Duration;

use crate::cmd::{self, Tally};

/// A crate whose normal dependencies (transitively) must not include these packages.
struct Rule {
    krate: &'static str,
    features: &'static [&'static str],
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        krate: "cache-core",
        features: &["--all-features"],
        forbidden: &["tokio", "reqwest", "object_store"],
        why: "cache-core is pure",
    },
    Rule {
        krate: "cache-store",
        features: &["--all-features"],
        forbidden: &["tokio", "reqwest", "object_store"],
        why: "cache-store is synchronous and offline",
    },
    Rule {
        krate: "modelcache",
        features: &["--no-default-features"],
        forbidden: &["tokio", "reqwest", "object_store"],
        why: "modelcache without `downloads` is cache-only",
    },
    Rule {
        krate: "modelcache",
        features: &["--no-default-features", "--features", "downloads"],
        forbidden: &["object_store", "cache-remote"],
        why: "the team tier is behind modelcache's `remote` feature",
    },
    Rule {
        krate: "cache-hf",
        features: &["--all-features"],
        forbidden: &["object_store", "cache-remote"],
        why: "cache-hf knows a blob source only as a trait; the facade wires the tier in",
    },
    Rule {
        krate: "cache-remote",
        features: &["--all-features"],
        forbidden: &["cache-store", "cache-hf", "rusqlite"],
        why: "cache-remote reaches the cache only through the facade",
    },
];

/// A workspace member that is a library.
pub(crate) struct LibCrate {
    pub(crate) name: String,
    has_features: bool,
}

/// Library crates under `crates/`, in dependency order as listed in ARCHITECTURE.md.
pub(crate) fn library_crates() -> Result<Vec<LibCrate>, String> {
    const ORDER: &[&str] =
        &["cache-core", "cache-store", "cache-fetch", "cache-hf", "cache-remote", "modelcache", "cache-testkit"];
    let dir = cmd::root().join("crates");
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.join("src/lib.rs").exists() {
            continue;
        }
        let manifest =
            fs::read_to_string(path.join("Cargo.toml")).map_err(|e| format!("reading manifest in {}: {e}", path.display()))?;
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"')))
            .ok_or_else(|| format!("no package name in {}", path.display()))?
            .to_owned();
        // A crate without a `[features]` table or optional dependency builds identically
        // under all three feature sets, so it is tested once.
        let has_features = manifest.contains("[features]") || manifest.contains("optional = true");
        found.push(LibCrate { name, has_features });
    }
    found.sort_by_key(|c| ORDER.iter().position(|o| *o == c.name).unwrap_or(usize::MAX));
    Ok(found)
}

/// Checks one layering rule; returns the offending dependency paths.
fn violations(rule: &Rule) -> Result<Vec<String>, String> {
    let out = cmd::output(
        cmd::cargo()
            .args(["tree", "--quiet", "-p", rule.krate, "-e", "normal", "--prefix", "depth", "--format", "{p}"])
            .args(rule.features),
    )?;
    Ok(find_paths(&out, rule.forbidden))
}

/// Given `cargo tree --prefix depth --format {p}` output, the chains from the root to each
/// forbidden package, as `a → b → tokio`.
fn find_paths(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut paths = Vec::new();
    for line in tree.lines() {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else { continue };
        let name = line[digits..].split_whitespace().next().unwrap_or_default().to_owned();
        stack.truncate(depth);
        stack.push(name.clone());
        if forbidden.contains(&name.as_str()) {
            paths.push(stack.join(" → "));
        }
    }
    paths.sort();
    paths.dedup();
    paths
}

fn fmt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "same".to_owned(), |d| format!("ok {:.0}s", d.as_secs_f64()))
}

/// Runs the matrix; returns the tests it counted.
pub(crate) fn run() -> Result<Tally, String> {
    // Layering first: it is cheap and a violation makes the rest moot.
    let mut failures = Vec::new();
    let mut layering = Vec::new();
    for rule in RULES {
        let bad = violations(rule)?;
        layering.push(format!(
            "{:<14} {:<24} {}",
            rule.krate,
            rule.features.join(" "),
            if bad.is_empty() { format!("ok: no {}", rule.forbidden.join("/")) } else { "VIOLATED".to_owned() }
        ));
        for path in bad {
            failures.push(format!("{} ({}): forbidden dependency path {path}", rule.krate, rule.why));
        }
    }

    if !failures.is_empty() {
        return Err(format!("layering violated:\n  {}", failures.join("\n  ")));
    }

    let crates = library_crates()?;
    let mut rows = Vec::new();
    let mut tally = Tally::default();
    for c in &crates {
        let mut times = Vec::new();
        for flags in [&["--no-default-features"][..], &[][..], &["--all-features"][..]] {
            if !c.has_features && !flags.is_empty() {
                times.push(None);
                continue;
            }
            let (elapsed, t) = cmd::run_tests(cmd::cargo().args(["test", "-p", &c.name]).args(flags))?;
            tally.add(t);
            times.push(Some(elapsed));
        }
        let alone = cmd::run(cmd::cargo().args(["check", "--quiet", "-p", &c.name]))?;
        rows.push((c.name.clone(), times, alone));
    }
    // The binary crate builds alone too.
    cmd::run(cmd::cargo().args(["check", "--quiet", "-p", "cache-cli"]))?;

    println!();
    println!("test matrix ('same': the crate has no features, so that build equals the default one)");
    println!("{:<14} {:>21} {:>9} {:>14} {:>12}", "crate", "--no-default-features", "default", "--all-features", "check alone");
    for (name, times, alone) in &rows {
        println!(
            "{:<14} {:>21} {:>9} {:>14} {:>12}",
            name,
            fmt_duration(times[0]),
            fmt_duration(times[1]),
            fmt_duration(times[2]),
            fmt_duration(Some(*alone))
        );
    }
    println!();
    println!("layering (normal dependencies, transitively)");
    for line in &layering {
        println!("{line}");
    }
    println!("matrix tests: {}", tally.closing_line());
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_chain_to_a_forbidden_crate() {
        let tree = "0cache-store v0.1.0 (/w/crates/cache-store)\n1cache-core v0.1.0 (/w/crates/cache-core)\n2serde v1.0.0\n1foo v1.0.0\n2tokio v1.54.1\n1bar v1.0.0\n";
        assert_eq!(find_paths(tree, &["tokio", "reqwest"]), ["cache-store → foo → tokio"]);
        assert!(find_paths(tree, &["reqwest"]).is_empty());
    }
}
