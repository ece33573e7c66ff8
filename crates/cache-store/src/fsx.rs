//! Small filesystem helpers over cap-std `Dir`s: atomic writes, directory creation and
//! pruning, free space, lexical resolution of symlink targets.
//!
//! Every path here is relative to a `Dir` opened on one of the roots, so a hostile
//! symlink or `..` can never make an operation leave the root (cap-std refuses).

use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use camino::{Utf8Path, Utf8PathBuf};
use cap_fs_ext::{FollowSymlinks, OpenOptionsFollowExt};
use cap_std::fs::{Dir, OpenOptions};

/// Prefix of the store's temporary files. They only ever live directly in a repo folder
/// (where `huggingface_hub` looks at nothing but `snapshots/` and `refs/`) or in the home.
pub(crate) const TEMP_PREFIX: &str = ".mc-tmp-";

/// A fresh, process-unique temporary file name.
pub(crate) fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{TEMP_PREFIX}{}-{n}-{:08x}", std::process::id(), fastrand_u32())
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    #[expect(clippy::cast_possible_truncation, reason = "random bits")]
    let v = h.finish() as u32;
    v
}

/// Whether the error means "it is not there" (including a path through a non-directory).
pub(crate) fn is_not_found(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory)
}

/// Whether cap-std refused the path because it leads outside the root (a planted
/// symlink or `..`): for lookups, such a path simply is not part of the cache.
pub(crate) fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
        && e.get_ref().is_some_and(|inner| inner.to_string().contains("outside of the filesystem"))
}

/// Options to open a regular file without following a symlink in its last component.
pub(crate) fn rw_options(create: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(create);
    o.follow(FollowSymlinks::No);
    o
}

/// Creates `rel` and its parents under `dir`.
pub(crate) fn create_dirs(dir: &Dir, rel: &Utf8Path) -> io::Result<()> {
    if rel.as_str().is_empty() {
        return Ok(());
    }
    dir.create_dir_all(rel)
}

/// Writes `bytes` to `target` atomically: a temporary file in `tmp_parent` (same
/// filesystem), fsynced, then renamed over the target.
pub(crate) fn write_atomic(dir: &Dir, tmp_parent: &Utf8Path, target: &Utf8Path, bytes: &[u8]) -> io::Result<()> {
    replace(dir, tmp_parent, target, bytes, true)
}

/// Like [`write_atomic`], fsyncing the temporary file only when `sync`: readers see the
/// old or the new content; after a power loss the target may be old, new or garbage.
pub(crate) fn replace(dir: &Dir, tmp_parent: &Utf8Path, target: &Utf8Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let parent = target.parent().unwrap_or(Utf8Path::new(""));
    if let Some(name) = target.file_name()
        && tmp_parent == parent
        && !parent.as_str().is_empty()
    {
        // The usual case (holder and range records): one handle on the folder serves the
        // create, the write and the rename, instead of a walk of the path for each.
        let folder = match dir.open_dir(parent) {
            Err(e) if is_not_found(&e) => {
                create_dirs(dir, parent)?;
                dir.open_dir(parent)?
            }
            opened => opened?,
        };
        return replace(&folder, Utf8Path::new(""), Utf8Path::new(name), bytes, sync);
    }
    create_dirs(dir, parent)?;
    let tmp = tmp_parent.join(temp_name());
    let result = (|| {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        o.follow(FollowSymlinks::No);
        let mut f = dir.open_with(&tmp, &o)?;
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        dir.rename(&tmp, dir, target)
    })();
    if result.is_err() {
        let _ = dir.remove_file(&tmp);
    }
    result
}

/// Removes empty directories from `rel`'s parent upwards, stopping at `stop` (kept).
pub(crate) fn prune_empty_dirs(dir: &Dir, rel: &Utf8Path, stop: &Utf8Path) {
    let mut cur = rel.parent();
    while let Some(p) = cur {
        if p == stop || !p.starts_with(stop) || p.as_str().is_empty() {
            break;
        }
        if dir.remove_dir(p).is_err() {
            break;
        }
        cur = p.parent();
    }
}

/// Bytes available to unprivileged users on `dir`'s filesystem.
pub(crate) fn free_space(dir: &Dir) -> io::Result<u64> {
    Ok(space(dir)?.0)
}

/// Bytes available to unprivileged users on `dir`'s filesystem, and its size.
pub(crate) fn space(dir: &Dir) -> io::Result<(u64, u64)> {
    let s = rustix::fs::fstatvfs(dir)?;
    Ok((s.f_bavail.saturating_mul(s.f_frsize), s.f_blocks.saturating_mul(s.f_frsize)))
}

/// The size in bytes of `dir`'s whole filesystem (used and free).
pub(crate) fn capacity(dir: &Dir) -> io::Result<u64> {
    let s = rustix::fs::fstatvfs(dir)?;
    Ok(s.f_blocks.saturating_mul(s.f_frsize))
}

/// The target of a snapshot symlink to `blobs/<name>` for a file `depth` folders deep
/// in its revision: `../../blobs/<name>` plus one `../` per folder, as
/// `huggingface_hub` writes it.
pub(crate) fn blob_link_target(depth: usize, blob_name: &str) -> String {
    let mut s = "../".repeat(depth + 2);
    s.push_str("blobs/");
    s.push_str(blob_name);
    s
}

/// Joins a symlink's `target` to the folder `base` holding it, lexically, relative to
/// the root. `None` when the result is absolute or leaves the root.
pub(crate) fn resolve_link(base: &Utf8Path, target: &str) -> Option<Utf8PathBuf> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.as_str().split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(Utf8PathBuf::from(parts.join("/")))
}

/// Reads a symlink's target as UTF-8, `None` when `rel` is not a symlink.
pub(crate) fn read_link(dir: &Dir, rel: &Utf8Path) -> io::Result<Option<String>> {
    match dir.read_link_contents(rel) {
        Ok(t) => Ok(Some(t.to_str().map(str::to_owned).ok_or_else(|| io::Error::other("symlink target is not UTF-8"))?)),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lists the names in a directory (UTF-8 names only), sorted, empty when it does not
/// exist. Types come from the listing itself (`d_type`); only where the filesystem does
/// not fill it in is the entry stat'ed.
pub(crate) fn list_dir(dir: &Dir, rel: &Utf8Path) -> io::Result<Vec<(String, cap_std::fs::FileType)>> {
    let rd = match if rel.as_str().is_empty() { dir.entries() } else { dir.read_dir(rel) } {
        Ok(rd) => rd,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry?;
        if let Ok(name) = entry.file_name().into_string() {
            let mut t = entry.file_type()?;
            if !(t.is_dir() || t.is_file() || t.is_symlink())
                && let Ok(m) = entry.metadata()
            {
                t = m.file_type();
            }
            out.push((name, t));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Opens the directory `rel` under `dir` (following links inside the root), `None` when
/// it does not exist.
pub(crate) fn open_dir(dir: &Dir, rel: &Utf8Path) -> io::Result<Option<Dir>> {
    match dir.open_dir(rel) {
        Ok(d) => Ok(Some(d)),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file_if_exists(dir: &Dir, rel: &Utf8Path) -> io::Result<bool> {
    match dir.remove_file(rel) {
        Ok(()) => Ok(true),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree, treating "already gone" as success. Only for the home's
/// own folders: in the hub cache another program may be writing, so removal there goes
/// by [`remove_listed_tree`] and [`remove_empty_dirs`].
pub(crate) fn remove_dir_all_if_exists(dir: &Dir, rel: &Utf8Path) -> io::Result<()> {
    match dir.remove_dir_all(rel) {
        Err(e) if !is_not_found(&e) => Err(e),
        _ => Ok(()),
    }
}

/// Removes the empty directories of the tree at `rel` (`rel` included), bottom-up, and
/// never a file: whatever another process put there meanwhile stays, with its folders.
/// Returns whether `rel` is gone.
pub(crate) fn remove_empty_dirs(dir: &Dir, rel: &Utf8Path) -> bool {
    if rel.as_str().is_empty() {
        return false;
    }
    for (name, t) in list_dir(dir, rel).unwrap_or_default() {
        if t.is_dir() {
            remove_empty_dirs(dir, &rel.join(name));
        }
    }
    match dir.remove_dir(rel) {
        Ok(()) => true,
        Err(e) => is_not_found(&e),
    }
}

/// The files (anything but directories) under `rel`, recursively, as paths under `dir`.
pub(crate) fn list_files(dir: &Dir, rel: &Utf8Path) -> io::Result<Vec<Utf8PathBuf>> {
    let mut out = Vec::new();
    for (name, t) in list_dir(dir, rel)? {
        let p = rel.join(&name);
        if t.is_dir() {
            out.extend(list_files(dir, &p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// Removes the files a listing of `rel` finds, then its empty directories: a file created
/// after the listing stays. Returns whether `rel` is gone.
pub(crate) fn remove_listed_tree(dir: &Dir, rel: &Utf8Path) -> io::Result<bool> {
    for f in list_files(dir, rel)? {
        remove_file_if_exists(dir, &f)?;
    }
    Ok(remove_empty_dirs(dir, rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_targets_match_huggingface_hub() {
        assert_eq!(blob_link_target(0, "abc"), "../../blobs/abc");
        assert_eq!(blob_link_target(2, "abc"), "../../../../blobs/abc");
    }

    #[test]
    fn resolve_link_is_lexical_and_stays_inside() {
        let base = Utf8Path::new("models--a/snapshots/c/sub");
        assert_eq!(resolve_link(base, "../../../blobs/x").unwrap(), "models--a/blobs/x");
        assert_eq!(resolve_link(Utf8Path::new("models--a/blobs"), "../../blobs/ab/abc").unwrap(), "blobs/ab/abc");
        assert!(resolve_link(Utf8Path::new("a"), "../../x").is_none());
        assert!(resolve_link(base, "/etc/passwd").is_none());
    }

    #[test]
    fn atomic_writes_replace_and_leave_no_temp() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        write_atomic(&dir, Utf8Path::new(""), Utf8Path::new("a/b/ref"), b"one").unwrap();
        write_atomic(&dir, Utf8Path::new(""), Utf8Path::new("a/b/ref"), b"two").unwrap();
        assert_eq!(dir.read_to_string("a/b/ref").unwrap(), "two");
        let names: Vec<_> = list_dir(&dir, Utf8Path::new("")).unwrap().into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["a"]);
        assert!(free_space(&dir).unwrap() > 0);
        assert!(capacity(&dir).unwrap() >= free_space(&dir).unwrap());
        prune_empty_dirs(&dir, Utf8Path::new("a/b/ref"), Utf8Path::new(""));
        assert!(dir.exists("a/b"), "non-empty dirs stay");
        dir.remove_file("a/b/ref").unwrap();
        prune_empty_dirs(&dir, Utf8Path::new("a/b/ref"), Utf8Path::new(""));
        assert!(!dir.exists("a"));
    }
}
