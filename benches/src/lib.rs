//! Criterion benchmarks across the modelcache layers (`cargo bench -p modelcache-benches`),
//! and the helper binaries `cargo xtask bench` runs: `hfhub` (the `hf-hub` crate as a
//! contender), `b3` (the raw BLAKE3 floor), `gencache` (a large cache to list) and
//! `scalechart` (the SVG chart of the scale curves).

use std::io;
use std::path::Path;

// The generated caches use Unix symlinks, and the stack below is Unix only.
#[cfg(not(unix))]
compile_error!("the benchmarks run on Unix systems only");

use cache_core::{CommitHash, GitSha1, Repo};

/// The commit every generated repo is at.
pub fn generated_commit() -> CommitHash {
    "0123456789abcdef0123456789abcdef01234567".parse().expect("valid commit")
}

/// The `i`-th generated repo: `org/repo-<i>`.
pub fn generated_repo(i: usize) -> Repo {
    Repo::model(format!("org/repo-{i}").parse().expect("valid repo id"))
}

/// The `j`-th generated file path: spread over ten folders.
pub fn generated_file(j: usize) -> String {
    format!("dir-{}/file-{j}.json", j % 10)
}

/// Writes `repos × files` entries in `huggingface_hub`'s layout under `hub`: tiny JSON
/// blobs named by their git-sha1, relative snapshot symlinks and `refs/main`.
pub fn write_hub_layout(hub: &Path, repos: usize, files: usize) -> io::Result<()> {
    let commit = generated_commit();
    for i in 0..repos {
        let folder = hub.join(generated_repo(i).folder_name());
        let snap = folder.join("snapshots").join(commit.as_str());
        std::fs::create_dir_all(folder.join("blobs"))?;
        std::fs::create_dir_all(folder.join("refs"))?;
        std::fs::write(folder.join("refs/main"), commit.as_str())?;
        for d in 0..10 {
            std::fs::create_dir_all(snap.join(format!("dir-{d}")))?;
        }
        for j in 0..files {
            let body = format!("{{\"repo\": {i}, \"file\": {j}}}\n");
            let etag = GitSha1::of(body.as_bytes()).to_string();
            std::fs::write(folder.join("blobs").join(&etag), body)?;
            std::os::unix::fs::symlink(format!("../../../blobs/{etag}"), snap.join(generated_file(j)))?;
        }
    }
    Ok(())
}
