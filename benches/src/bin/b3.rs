//! The raw BLAKE3 floor for `cargo xtask bench`: hashes files the fastest way the
//! `blake3` crate offers (memory map + rayon, as `b3sum` does) and prints `HASH  PATH`.
#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a command-line floor")]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        let mut h = blake3::Hasher::new();
        match h.update_mmap_rayon(&path) {
            Ok(_) => println!("{}  {path}", h.finalize()),
            Err(e) => {
                eprintln!("b3: {path}: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
