//! `cargo xtask ci`: the project's test command.
//!
//! Order: formatting, clippy (`-D warnings`), the Python environment for interop tests,
//! the test matrix (which runs every library crate's tests), the tests of the remaining
//! members (binary, end-to-end, benches, xtask), then `cargo deny` (installed first when
//! absent, at a pinned version).

use std::path::Path;

use crate::cmd;
use crate::{matrix, py};

pub(crate) fn run() -> Result<(), String> {
    cmd::run(cmd::cargo().args(["fmt", "--all", "--", "--check"]))?;
    cmd::run(cmd::cargo().args(["clippy", "--workspace", "--all-targets", "--all-features", "--", "-D", "warnings"]))?;

    match py::ensure() {
        Ok(python) => cmd::set_child_env(py::PYTHON_ENV, python.as_os_str()),
        Err(e) => {
            println!("warning: the Python environment could not be set up ({e}); tests that need huggingface_hub will fail");
        }
    }

    let mut tally = matrix::run()?;

    // The library crates ran in the matrix; the rest of the workspace runs here.
    let mut rest = cmd::cargo();
    rest.args(["test", "--workspace", "--all-features"]);
    for c in matrix::library_crates()? {
        rest.args(["--exclude", &c.name]);
    }
    let (_, t) = cmd::run_tests(&mut rest)?;
    tally.add(t);

    deny()?;
    println!();
    println!("ci: all steps passed");
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(())
}

/// The cargo-deny release the checks are written for, installed when absent.
const DENY_VERSION: &str = "0.20.2";

fn deny() -> Result<(), String> {
    let installed = cmd::cargo().args(["deny", "--version"]).output().is_ok_and(|o| o.status.success());
    if !installed {
        println!("cargo deny: not installed; installing cargo-deny {DENY_VERSION} (about 8 minutes, once per machine)");
        cmd::run(cmd::cargo().args(["install", "cargo-deny", "--version", DENY_VERSION, "--locked"]))?;
    }
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
    #[test]
    fn tally_is_reported_in_the_plain_closing_format() {
        let t = crate::cmd::Tally { passed: 3, failed: 0 };
        assert_eq!(format!("{} passed, {} failed", t.passed, t.failed), "3 passed, 0 failed");
    }
}
