//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: everything CI checks, in numbered, timed steps — formatting, clippy, the
//!   feature/layering matrix, the remaining tests, man pages, packages, and `cargo deny`
//!   (installed when absent). The project's test command.
//! - `test-matrix`: each library crate's tests with no, default and all features, each
//!   crate built alone, and the layering rules of ARCHITECTURE.md.
//! - `demo`: the main job, shown end to end.
//! - `bench`: whole-process benchmarks against peers and floors, written to
//!   `BENCHMARKS.md`, and scale curves (`--only scale`) charted in `benches/scale.svg`.
//! - `man`: a man page per command of `modelcache` in `target/man/`, checked against the
//!   commands its `--help` lists.
//! - `package`: `cargo package` (offline, verified) of every crate under `crates/`.
//! - `py-env`: the Python virtualenv with `huggingface_hub` that interop tests use.
//! - `proptest [--cases N]`: every property test of the workspace (found in the sources'
//!   `proptest!` blocks) with `PROPTEST_CASES=N` (default 256); CI runs their own small
//!   defaults.
//!
//! Std-only on purpose: it must build in seconds on a fresh machine. Every command it runs
//! is echoed first.
#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a command-line tool reports on stdout and stderr")]

mod bench;
mod ci;
mod cmd;
mod demo;
mod man;
mod matrix;
mod package;
mod proptest;
mod py;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(),
        Some("test-matrix") => matrix::run().map(|_| ()),
        Some("demo") => demo::run(),
        Some("bench") => bench::run(&args[1..]),
        Some("proptest") => proptest::run(&args[1..]),
        Some("man") => man::run().map(|_| ()),
        Some("package") => package::run().map(|_| ()),
        Some("py-env") => py::ensure().map(|python| println!("{}", python.display())),
        Some("help" | "--help" | "-h") | None => {
            println!(
                "usage: cargo xtask <ci | test-matrix | man | package | demo | bench [--quick] [--only NAME,...] | proptest [--cases N] | py-env>"
            );
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown xtask command `{other}` (try `cargo xtask help`)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
