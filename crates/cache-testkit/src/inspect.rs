//! What tests check on a hub cache from outside, as a user or huggingface_hub would see
//! it: links that lead nowhere, transfers under way.

use std::path::{Path, PathBuf};

/// Every symlink under `dir` (recursively, following none) whose target is missing: a
/// cache valid for huggingface_hub has none.
pub fn dangling_links(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_symlink() && std::fs::metadata(e.path()).is_err() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Whether a transfer into the repo folder `folder` (`models--org--name`) of the hub
/// cache `hub` is under way: a staging file (`blobs/*.incomplete`) exists.
pub fn downloading(hub: &Path, folder: &str) -> bool {
    std::fs::read_dir(hub.join(folder).join("blobs"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_to_nothing_is_dangling_and_a_staging_file_is_a_download() {
        let tmp = tempfile::tempdir().unwrap();
        let blobs = tmp.path().join("models--o--n/blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("b"), "x").unwrap();
        std::os::unix::fs::symlink("b", blobs.join("good")).unwrap();
        std::os::unix::fs::symlink("gone", blobs.join("bad")).unwrap();
        assert_eq!(dangling_links(tmp.path()), [blobs.join("bad")]);
        assert!(!downloading(tmp.path(), "models--o--n"));
        std::fs::write(blobs.join("c.incomplete"), "").unwrap();
        assert!(downloading(tmp.path(), "models--o--n"));
    }
}
