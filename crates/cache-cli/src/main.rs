//! `modelcache`: fetch, list, verify, prune, pin and clean the model cache.
//!
//! The command set arrives with the CLI issue; until then the binary reports its version
//! and says which commands it lacks, so scripts fail loudly rather than silently.
#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a command-line tool talks on stdout and stderr")]

use std::process::ExitCode;

fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version" | "-V") => {
            println!("modelcache {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`");
            eprintln!("hint: this build of modelcache only supports `--version`");
            ExitCode::from(2)
        }
        None => {
            eprintln!("usage: modelcache --version");
            ExitCode::from(2)
        }
    }
}
