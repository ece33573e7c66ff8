//! Records the commit the binary is built from for `modelcache --version`: the short hash
//! from `git rev-parse --short HEAD`, or `unknown` outside a git checkout of this project
//! (a source tarball, a packaged crate) or without git; `MODELCACHE_BUILD_COMMIT`
//! overrides it (for packagers). Never fails the build.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=MODELCACHE_BUILD_COMMIT");
    let commit = std::env::var("MODELCACHE_BUILD_COMMIT").ok().filter(|c| !c.is_empty()).or_else(|| {
        // Only this project's own checkout: a packaged crate unpacked inside some other
        // repository (or under an ignored `target/`) is not tracked there.
        git(&["ls-files", "--full-name", "build.rs"])?;
        let commit = git(&["rev-parse", "--short", "HEAD"])?;
        // Rebuild when HEAD moves: a commit, a checkout (its reflog is appended either way).
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            for file in ["HEAD", "logs/HEAD"] {
                let path = std::path::Path::new(&dir).join(file);
                if path.is_file() {
                    println!("cargo::rerun-if-changed={}", path.display());
                }
            }
        }
        Some(commit)
    });
    println!("cargo::rustc-env=MODELCACHE_COMMIT={}", commit.as_deref().unwrap_or("unknown"));
}
