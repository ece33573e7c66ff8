//! `cargo xtask ci`: the project's test command.
//!
//! Numbered steps, each closed by its duration: formatting, clippy (`-D warnings`), the
//! Python environment for interop tests, the test matrix (which runs every library
//! crate's tests), the tests of the remaining members (binary, end-to-end, benches,
//! xtask), the man pages, `cargo package` of the publishable crates, then `cargo deny`
//! (installed first when absent, at a pinned version). It ends with a table of the steps,
//! a line saying what the test count counts, and the count as `N passed, N failed`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cmd::{self, Tally};
use crate::{man, matrix, package, py};

/// The steps, in order (numbered `[i/N]` as they run).
const STEPS: &[&str] = &[
    "formatting (cargo fmt --check)",
    "lints (cargo clippy -D warnings)",
    "Python environment for the interop tests",
    "test matrix: library crates under three feature sets, layering",
    "tests of the binary, end-to-end, benches and xtask",
    "man pages (cargo xtask man)",
    "packages (cargo xtask package)",
    "licences, bans, sources, advisories (cargo deny)",
];

/// Runs the steps in order, printing a header and a closing line with the duration of each.
struct Steps {
    done: Vec<(usize, Duration, String)>,
}

impl Steps {
    fn run<T>(&mut self, index: usize, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
        println!();
        println!("{}", header(index));
        let start = Instant::now();
        let result = f();
        let elapsed = start.elapsed();
        let outcome = if result.is_ok() { "ok" } else { "FAILED" };
        println!("{}", footer(index, outcome, elapsed));
        self.done.push((index + 1, elapsed, outcome.to_owned()));
        result
    }

    fn summary(&self) {
        println!();
        println!("steps");
        for (n, elapsed, outcome) in &self.done {
            println!("  [{n}/{}] {:<66} {outcome:>6} {:>7}", STEPS.len(), STEPS[n - 1], seconds(*elapsed));
        }
        let total: Duration = self.done.iter().map(|(_, d, _)| *d).sum();
        println!("  total {:>81}", seconds(total));
    }
}

/// `==> [3/8] name`, printed as a step starts.
fn header(index: usize) -> String {
    format!("==> [{}/{}] {}", index + 1, STEPS.len(), STEPS[index])
}

/// `<== [3/8] name: ok in 12.3s`, printed as a step ends.
fn footer(index: usize, outcome: &str, elapsed: Duration) -> String {
    format!("<== [{}/{}] {}: {outcome} in {}", index + 1, STEPS.len(), STEPS[index], seconds(elapsed))
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

pub(crate) fn run() -> Result<(), String> {
    let mut steps = Steps { done: Vec::new() };
    let result = run_steps(&mut steps);
    steps.summary();
    let tally = result?;
    println!();
    println!("ci: all {} steps passed", STEPS.len());
    println!("{}", Tally::DESCRIPTION);
    println!("{}", tally.closing_line());
    Ok(())
}

fn run_steps(steps: &mut Steps) -> Result<Tally, String> {
    steps.run(0, || cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"])))?;
    steps.run(1, || {
        cmd::run(cmd::cargo().args(["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]))
    })?;
    steps.run(2, || {
        match py::ensure() {
            Ok(python) => cmd::set_child_env(py::PYTHON_ENV, python.as_os_str()),
            Err(e) => {
                println!("warning: the Python environment could not be set up ({e}); tests that need huggingface_hub will fail");
            }
        }
        Ok(())
    })?;
    let mut tally = steps.run(3, matrix::run)?;
    let rest = steps.run(4, || {
        // The library crates ran in the matrix; the rest of the workspace runs here.
        let mut rest = cmd::cargo();
        rest.args(["test", "--workspace", "--all-features"]);
        for c in matrix::library_crates()? {
            rest.args(["--exclude", &c.name]);
        }
        cmd::run_tests(&mut rest).map(|(_, t)| t)
    })?;
    tally.add(rest);
    steps.run(5, man::run)?;
    steps.run(6, package::run)?;
    steps.run(7, deny)?;
    Ok(tally)
}

/// The cargo-deny release the checks are written for, installed when absent.
const DENY_VERSION: &str = "0.20.2";

fn deny() -> Result<(), String> {
    let installed = cmd::cargo().args(["deny", "--version"]).output().is_ok_and(|o| o.status.success());
    if !installed {
        println!("cargo deny: not installed; installing cargo-deny {DENY_VERSION} (about 8 minutes, once per machine)");
        cmd::run(cmd::cargo().args(["install", "cargo-deny", "--version", DENY_VERSION, "--locked"]))?;
    }
    // cargo-deny runs `cargo metadata` for every platform, offline: fetch the crates of the
    // other platforms too (a build fetched only this one's), or a fresh machine fails here.
    cmd::run(cmd::cargo().args(["fetch", "--locked"]))?;
    // cargo-deny reads advisories from a git repository; build one from the offline copy.
    let shared = cmd::root().join("../shared/advisory-db");
    if shared.is_dir() {
        let db = cmd::root().join("target/advisory-dbs/advisory-db-3157b0e258782691");
        if !db.join(".git").is_dir() {
            copy_dir(&shared, &db).map_err(|e| format!("copying the advisory database: {e}"))?;
            let git = |args: &[&str]| cmd::run(std::process::Command::new("git").arg("-C").arg(&db).args(args));
            git(&["init", "-q"])?;
            git(&["add", "-A"])?;
            git(&["-c", "user.name=ci", "-c", "user.email=ci@localhost", "commit", "-qm", "snapshot"])?;
        }
        cmd::run(cmd::cargo().args(["deny", "--offline", "check"]))?;
    } else {
        println!("cargo deny: advisories SKIPPED — no offline advisory database at {}", shared.display());
        cmd::run(cmd::cargo().args(["deny", "--offline", "check", "licenses", "bans", "sources"]))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cmd::Tally;

    /// `cargo test -p modelcache-tests` output, as it streams: a unit-test binary, an
    /// integration binary with a failure, doc-tests, and the noise between them.
    const OUTPUT: &str = "\
    Finished `test` profile [unoptimized + debuginfo] target(s) in 0.42s
     Running unittests src/lib.rs (target/debug/deps/modelcache_tests-1c0a)

running 0 tests

test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s

     Running it/main.rs (target/debug/deps/it-3309f26b89fb8b84)

running 3 tests
test exit_codes::code_0_success_and_help ... ok
test exit_codes::code_4_not_cached_while_offline ... FAILED
test roundtrip::json_output_reads_back_into_the_facade_types_and_matches_the_library ... ok

failures:

---- exit_codes::code_4_not_cached_while_offline stdout ----
thread 'exit_codes::code_4_not_cached_while_offline' panicked at tests/it/exit_codes.rs:40:5:
expected exit 4, got 0: the test output mentions test result: ok. 99 passed; nothing counts here
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 33 filtered out; finished in 36.68s

   Doc-tests modelcache

running 4 tests
test crates/modelcache/src/lib.rs - (line 23) - compile ... ok
test result: ok. 4 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s

error: test failed, to rerun pass `-p modelcache-tests --test it`
";

    /// Reads `output` line by line, as `run_tests` does while streaming it.
    fn read(output: &str) -> Tally {
        let mut t = Tally::default();
        output.lines().for_each(|line| t.read_line(line));
        t
    }

    #[test]
    fn the_test_result_lines_of_real_output_are_summed_and_closed_plainly() {
        let tally = read(OUTPUT);
        assert_eq!(tally, Tally { passed: 6, failed: 1 }, "three summaries; a panic message quoting one is not one");
        assert_eq!(tally.closing_line(), "6 passed, 1 failed");
        // Totals across runs (the matrix, then the rest) add up.
        let mut all = read("test result: ok. 10 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n");
        all.add(tally);
        assert_eq!(all.closing_line(), "16 passed, 1 failed");
        assert_eq!(read("no tests here\n").closing_line(), "0 passed, 0 failed");
    }

    #[test]
    fn steps_are_numbered_and_closed_with_their_duration() {
        use std::time::Duration;
        assert_eq!(super::header(0), "==> [1/8] formatting (cargo fmt --check)");
        assert_eq!(
            super::footer(6, "FAILED", Duration::from_millis(12_340)),
            "<== [7/8] packages (cargo xtask package): FAILED in 12.3s"
        );
        let mut steps = super::Steps { done: Vec::new() };
        assert_eq!(steps.run(0, || Ok(3)), Ok(3));
        assert!(steps.run(1, || Err::<(), _>("lint".to_owned())).is_err());
        let outcomes: Vec<(usize, &str)> = steps.done.iter().map(|(n, _, o)| (*n, o.as_str())).collect();
        assert_eq!(outcomes, [(1, "ok"), (2, "FAILED")]);
    }

    #[test]
    fn the_step_list_and_the_count_say_what_they_are() {
        assert_eq!(super::STEPS.len(), 8);
        assert!(Tally::DESCRIPTION.contains("test result:") && !Tally::DESCRIPTION.contains('\n'));
        // CI reads the closing line alone: the description must not look like one.
        assert!(!Tally::DESCRIPTION.ends_with("failed"));
    }
}
