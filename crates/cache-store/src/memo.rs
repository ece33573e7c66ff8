//! Verified hits, remembered in memory so that asking again for the same file costs one
//! `stat`.
//!
//! The first lookup of a file goes through the cap-std root (contained: no link can lead
//! outside the cache) and compares the snapshot link with its blob (a blob modified after
//! its link was made is suspect). When that check passes, the blob's identity (device,
//! inode, size, modification time) is remembered under the snapshot's path. A later
//! lookup stats that path once, from the root's descriptor, and when the identity is
//! unchanged it is the very file that was checked; anything else (a replaced link, a
//! rewritten or removed blob) takes the full path again. The memo is per process, bounded,
//! and never written to disk.

use foldhash::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use camino::Utf8Path;

/// How many verified hits are remembered; past that the memo starts over.
const CAPACITY: usize = 65_536;

/// What a full check established about a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    size: u64,
    modified: Option<SystemTime>,
}

impl Identity {
    pub(crate) fn of_cap(m: &cap_std::fs::Metadata) -> Identity {
        use cap_std::fs::MetadataExt;
        Identity {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            modified: m.modified().ok().map(cap_std::time::SystemTime::into_std),
        }
    }

    fn of_stat(s: &rustix::fs::Stat) -> Identity {
        let modified = u64::try_from(s.st_mtime)
            .ok()
            .zip(u32::try_from(s.st_mtime_nsec).ok())
            .map(|(secs, nanos)| SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos));
        // `st_dev` is `u64` on Linux and `i32` on macOS; a device number is never negative.
        #[cfg_attr(target_os = "linux", expect(clippy::unnecessary_cast, reason = "`i32` on other Unix systems"))]
        let dev = s.st_dev as u64;
        Identity { dev, ino: s.st_ino, size: u64::try_from(s.st_size).unwrap_or(0), modified }
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Default)]
/// Keyed by the path as text: hashing a `Path` walks its components, ten times slower.
pub(crate) struct Memo(Mutex<HashMap<String, Identity>>);

impl Memo {
    fn map(&self) -> MutexGuard<'_, HashMap<String, Identity>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The blob's size when `rel` (relative to `root`) is a remembered hit whose blob is
    /// unchanged. One `stat` from the root's descriptor: shorter than the absolute path.
    pub(crate) fn check(&self, root: &cap_std::fs::Dir, rel: &Utf8Path) -> Option<u64> {
        let known = *self.map().get(rel.as_str())?;
        let now = rustix::fs::statat(root, rel.as_std_path(), rustix::fs::AtFlags::empty()).ok().map(|s| Identity::of_stat(&s));
        if now == Some(known) {
            Some(known.size)
        } else {
            self.forget(rel);
            None
        }
    }

    pub(crate) fn remember(&self, rel: &Utf8Path, id: Identity) {
        let mut m = self.map();
        if m.len() >= CAPACITY {
            m.clear();
        }
        m.insert(rel.as_str().to_owned(), id);
    }

    pub(crate) fn forget(&self, rel: &Utf8Path) {
        self.map().remove(rel.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_or_replaced_file_is_not_taken_from_the_memo() {
        let dir = tempfile::tempdir().unwrap();
        let root = cap_std::fs::Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        let abs = dir.path().join("f");
        let rel = Utf8Path::new("f");
        std::fs::write(&abs, b"one").unwrap();
        let memo = Memo::default();
        memo.remember(rel, Identity::of_cap(&root.metadata("f").unwrap()));
        assert_eq!(memo.check(&root, rel), Some(3));

        // Replaced by another file (another inode): forgotten.
        std::fs::write(dir.path().join("g"), b"two").unwrap();
        std::fs::rename(dir.path().join("g"), &abs).unwrap();
        assert_eq!(memo.check(&root, rel), None);
        assert_eq!(memo.check(&root, rel), None, "forgotten once it failed");

        // Rewritten in place (same inode, new size and time): not taken either.
        memo.remember(rel, Identity::of_cap(&root.metadata("f").unwrap()));
        assert_eq!(memo.check(&root, rel), Some(3));
        std::fs::write(&abs, b"three!").unwrap();
        assert_eq!(memo.check(&root, rel), None);

        memo.remember(rel, Identity::of_cap(&root.metadata("f").unwrap()));
        std::fs::remove_file(&abs).unwrap();
        assert_eq!(memo.check(&root, rel), None);
    }
}
