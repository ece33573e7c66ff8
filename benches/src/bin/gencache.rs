//! Writes a hub cache of `REPOS × FILES` entries in `huggingface_hub`'s layout (tiny
//! blobs, relative symlinks, `refs/main`) for the `ls`/`stats` benchmarks.
//!
//! `gencache HUB_DIR [REPOS] [FILES]` (defaults: 100 × 1 000 = 100 000 entries).
#![expect(clippy::print_stderr, reason = "a command-line generator")]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(hub) = args.first() else {
        eprintln!("usage: gencache HUB_DIR [REPOS] [FILES]");
        return ExitCode::from(2);
    };
    let repos = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let files = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    match modelcache_benches::write_hub_layout(std::path::Path::new(hub), repos, files) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gencache: {e}");
            ExitCode::FAILURE
        }
    }
}
