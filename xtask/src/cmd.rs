//! Running commands: echo first, fail with the command line on a non-zero exit.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The workspace root (the parent of `xtask/`).
pub(crate) fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map_or(manifest.clone(), Path::to_path_buf)
}

static CHILD_ENV: Mutex<Vec<(String, OsString)>> = Mutex::new(Vec::new());

/// Sets an environment variable for every cargo command started from now on.
pub(crate) fn set_child_env(key: &str, value: &OsStr) {
    if let Ok(mut env) = CHILD_ENV.lock() {
        env.push((key.to_owned(), value.to_owned()));
    }
}

/// `cargo` as invoked by the user (respects `$CARGO`), in the workspace root.
pub(crate) fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    if let Ok(env) = CHILD_ENV.lock() {
        for (k, v) in env.iter() {
            c.env(k, v);
        }
    }
    c
}

/// The command line as a person would type it: `cargo`, not the toolchain's absolute path
/// in `$CARGO`, and paths inside the workspace relative to it.
fn describe(cmd: &Command) -> String {
    let cargo = std::env::var_os("CARGO");
    let program = if cargo.as_deref() == Some(cmd.get_program()) { "cargo".into() } else { cmd.get_program().to_string_lossy() };
    shorten(&program, cmd.get_args().map(|a| a.to_string_lossy()), &root().to_string_lossy())
}

fn shorten<'a>(program: &str, args: impl Iterator<Item = std::borrow::Cow<'a, str>>, root: &str) -> String {
    let relative = |s: &str| {
        let root = format!("{}/", root.trim_end_matches('/'));
        s.strip_prefix(root.as_str()).map_or_else(|| s.to_owned(), str::to_owned)
    };
    let mut s = relative(program);
    for a in args {
        s.push(' ');
        s.push_str(&relative(&a));
    }
    s
}

/// Runs a command with inherited output; returns how long it took.
pub(crate) fn run(cmd: &mut Command) -> Result<Duration, String> {
    println!("$ {}", describe(cmd));
    let start = Instant::now();
    let status = cmd.status().map_err(|e| format!("could not start `{}`: {e}", describe(cmd)))?;
    if status.success() { Ok(start.elapsed()) } else { Err(format!("`{}` failed ({status})", describe(cmd))) }
}

/// Runs a command and captures its stdout (stderr passes through).
pub(crate) fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.stderr(Stdio::inherit()).output().map_err(|e| format!("could not start `{}`: {e}", describe(cmd)))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("`{}` failed ({})", describe(cmd), out.status))
    }
}

/// Test totals read from `cargo test` output.
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
}

impl Tally {
    /// What the count means, printed before the closing line.
    pub(crate) const DESCRIPTION: &str = "tests: the sum of the `test result:` lines of every `cargo test` run above (unit, integration and doc-tests; a library crate's tests once per feature set the matrix ran them under; ignored tests not counted)";

    pub(crate) fn add(&mut self, other: Tally) {
        self.passed += other.passed;
        self.failed += other.failed;
    }

    /// Adds what one line of `cargo test` output reports: a `test result:` summary (one
    /// per test binary and doc-test run) counts; every other line is ignored.
    pub(crate) fn read_line(&mut self, line: &str) {
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            self.add(parse_result(rest));
        }
    }

    /// The closing line `cargo xtask ci` prints: `12 passed, 0 failed`.
    pub(crate) fn closing_line(self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed)
    }
}

/// Runs `cargo test ...`, streaming its output, and adds up its `test result:` lines.
pub(crate) fn run_tests(cmd: &mut Command) -> Result<(Duration, Tally), String> {
    use std::io::{BufRead, BufReader};
    println!("$ {}", describe(cmd));
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).spawn().map_err(|e| format!("could not start `{}`: {e}", describe(cmd)))?;
    let mut tally = Tally::default();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading test output: {e}"))?;
            println!("{line}");
            tally.read_line(&line);
        }
    }
    let status = child.wait().map_err(|e| format!("waiting for `{}`: {e}", describe(cmd)))?;
    if status.success() { Ok((start.elapsed(), tally)) } else { Err(format!("`{}` failed ({status})", describe(cmd))) }
}

/// Reads `ok. 12 passed; 0 failed; 0 ignored; ...`.
fn parse_result(s: &str) -> Tally {
    let mut t = Tally::default();
    for part in s.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        if let [.., n, kind] = words.as_slice() {
            let n = n.parse().unwrap_or(0);
            match *kind {
                "passed" => t.passed += n,
                "failed" => t.failed += n,
                _ => {}
            }
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_echoed_without_absolute_paths_into_the_workspace() {
        let args = ["-m", "venv", "/w/modelcache/target/py-env", "/elsewhere/x"].map(std::borrow::Cow::from);
        assert_eq!(
            shorten("/w/modelcache/target/py-env/bin/python", args.into_iter(), "/w/modelcache"),
            "target/py-env/bin/python -m venv target/py-env /elsewhere/x"
        );
        let mut c = cargo();
        c.args(["test", "-p", "cache-core"]);
        assert_eq!(describe(&c), "cargo test -p cache-core", "never the toolchain's path");
    }

    #[test]
    fn parses_cargo_test_summaries() {
        let t = parse_result("ok. 42 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.33s");
        assert_eq!((t.passed, t.failed), (42, 1));
    }
}
