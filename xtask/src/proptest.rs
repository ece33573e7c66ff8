//! `cargo xtask proptest [--cases N]`: every property test of the workspace with many
//! cases (default 256), where CI runs each with its own small default.
//!
//! # Finding them
//! A property test is a `#[test]` function inside a `proptest! { … }` block. The sources
//! of every workspace member (`crates/*`, `tests`, `xtask`; `src/` and `tests/`) are read
//! for such blocks, and each member that has some runs
//! `cargo test -p MEMBER --all-features -- NAME...` with those names as filters: only
//! property tests run, unit and end-to-end tests do not. A new property test is picked up
//! by being written; nothing is listed by hand.
//!
//! # Cases
//! `PROPTEST_CASES=N` is set for the test processes. proptest reads it for every block
//! that keeps its default count; blocks that set a smaller default for CI (the facade's
//! and the store's model tests, which download or scan per case) read it themselves.
//! The Python environment is prepared as for `ci`, since the store's model test ends
//! each case with a `huggingface_hub` scan.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::{cmd, py};

/// Default number of cases per property test.
const DEFAULT_CASES: u32 = 256;

pub(crate) fn run(args: &[String]) -> Result<(), String> {
    let cases = match args {
        [] => DEFAULT_CASES,
        [flag, n] if flag == "--cases" => n.parse().map_err(|_| format!("`--cases` takes a number, not `{n}`"))?,
        _ => return Err("usage: cargo xtask proptest [--cases N]".to_owned()),
    };
    let found = find()?;
    if found.is_empty() {
        return Err("no property test found (no `proptest!` block in the workspace)".to_owned());
    }
    match py::ensure() {
        Ok(python) => cmd::set_child_env(py::PYTHON_ENV, python.as_os_str()),
        Err(e) => println!("warning: the Python environment could not be set up ({e}); the store's model test will fail"),
    }
    cmd::set_child_env("PROPTEST_CASES", cases.to_string().as_ref());
    let mut tally = cmd::Tally::default();
    for (package, tests) in &found {
        println!("proptest: {package}: {} with {cases} cases each", tests.join(", "));
        let (_, t) = cmd::run_tests(cmd::cargo().args(["test", "-p", package, "--all-features", "--"]).args(tests))?;
        tally.add(t);
    }
    println!();
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 { Err(format!("{} property tests failed", tally.failed)) } else { Ok(()) }
}

/// Package name → the names of its property tests, for every workspace member that has one.
pub(crate) fn find() -> Result<BTreeMap<String, Vec<String>>, String> {
    let root = cmd::root();
    let mut members = vec![root.join("tests"), root.join("xtask")];
    let crates = root.join("crates");
    for entry in fs::read_dir(&crates).map_err(|e| format!("reading {}: {e}", crates.display()))? {
        members.push(entry.map_err(|e| e.to_string())?.path());
    }
    let mut found = BTreeMap::new();
    for dir in members {
        let Ok(manifest) = fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        let Some(name) = manifest.lines().find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"'))) else {
            continue;
        };
        let mut tests = Vec::new();
        for sub in ["src", "tests"] {
            sources(&dir.join(sub), &mut |text| tests.extend(property_tests(text)))?;
        }
        if !tests.is_empty() {
            tests.sort();
            found.insert(name.to_owned(), tests);
        }
    }
    Ok(found)
}

/// Calls `f` with the text of every `.rs` file under `dir` (none when it does not exist).
fn sources(dir: &Path, f: &mut dyn FnMut(&str)) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            sources(&path, f)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            f(&fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?);
        }
    }
    Ok(())
}

/// The `fn` names inside the `proptest! { … }` blocks of `text`: blocks opened on a line
/// of their own (not in a comment or a string).
fn property_tests(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut offset = 0;
    let starts: Vec<usize> = text
        .split_inclusive('\n')
        .filter_map(|line| {
            let at = offset + (line.len() - line.trim_start().len());
            offset += line.len();
            line.trim_start().starts_with("proptest! {").then_some(at)
        })
        .collect();
    for at in starts {
        let block = &text[at + "proptest! ".len()..];
        let mut depth = 0_usize;
        let end = block
            .char_indices()
            .find_map(|(i, c)| {
                match c {
                    '{' => depth += 1,
                    '}' => depth = depth.saturating_sub(1),
                    _ => return None,
                }
                (depth == 0).then_some(i)
            })
            .unwrap_or(block.len());
        for piece in block[..end].split("fn ").skip(1) {
            let name: String = piece.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && piece[name.len()..].starts_with('(') {
                names.push(name);
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_tests_are_the_fns_of_proptest_blocks() {
        let text = "fn helper() {}\nproptest! {\n    #![proptest_config(c())]\n    #[test]\n    fn a_b(x in 0..3u8) { if x > 1 { f(); } }\n\n    #[test]\n    fn c(s in \"[a-z]\") {}\n}\nfn after() {}\n";
        assert_eq!(property_tests(text), ["a_b", "c"]);
        assert!(property_tests("fn plain() {}").is_empty());
        assert!(property_tests("//! a `proptest! { … }` block\nlet s = \"proptest! { fn x() {} }\";\n").is_empty());
    }

    #[test]
    fn the_workspace_property_tests_are_found() {
        let found = find().unwrap();
        let has = |package: &str, test: &str| found.get(package).is_some_and(|t| t.iter().any(|n| n == test));
        assert!(has("cache-store", "the_store_behaves_like_its_model"), "{found:?}");
        assert!(has("cache-store", "trigger_aggregates_equal_a_brute_force_summary"), "{found:?}");
        assert!(has("modelcache", "is_cached_agrees_with_the_disk_and_stats_count_what_is_listed"), "{found:?}");
        assert!(found.contains_key("cache-core"), "{found:?}");
        assert!(!found.contains_key("xtask"), "this module's own examples are not tests: {found:?}");
    }
}
