//! [`LockMode`]: which locks a blob lock takes, chosen from the filesystem or set.
//!
//! | mode | takes | excludes |
//! |---|---|---|
//! | `flock` | `flock(2)` | processes on this machine and Python's `filelock`; other machines only where the filesystem makes `flock` coherent |
//! | `fcntl` | an open-file-description lock (`F_OFD_SETLK`) | processes on every machine of NFSv4, Lustre (`flock` mount), GPFS, CephFS; **not** Python's `filelock` |
//! | `both` | `flock`, then the OFD lock on the same file | all of the above |
//! | `none` | nothing | nobody: several processes may download one file at the same time; digests still keep every file correct |
//!
//! `auto` (the default) is `flock` on a local filesystem and `both` on one several
//! machines may share ([`FsKind::is_shared`]). It is decided once per root when a
//! [`Store`](crate::Store) opens; [`Store::lock_mode`](crate::Store::lock_mode) says what
//! was chosen.

use std::fmt;
use std::str::FromStr;

use crate::filesystem::FsKind;

/// Which locks a blob lock takes (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LockMode {
    /// Decide from the filesystem: `flock` locally, `both` on shared filesystems.
    #[default]
    Auto,
    /// `flock(2)` only, as Python's `filelock`.
    Flock,
    /// Open-file-description `fcntl` locks only.
    Fcntl,
    /// `flock` and an open-file-description lock.
    Both,
    /// No locks.
    None,
}

impl LockMode {
    /// Every mode, in the order the docs list them.
    pub const ALL: [LockMode; 5] = [LockMode::Auto, LockMode::Flock, LockMode::Fcntl, LockMode::Both, LockMode::None];

    /// The setting's spelling: `auto`, `flock`, `fcntl`, `both`, `none`.
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Auto => "auto",
            LockMode::Flock => "flock",
            LockMode::Fcntl => "fcntl",
            LockMode::Both => "both",
            LockMode::None => "none",
        }
    }

    /// The mode used on a filesystem of kind `fs`: `Auto` decided, any other kept.
    #[must_use]
    pub fn resolve(self, fs: FsKind) -> LockMode {
        match self {
            LockMode::Auto if fs.is_shared() => LockMode::Both,
            LockMode::Auto => LockMode::Flock,
            set => set,
        }
    }

    /// What a resolved mode excludes, for a person.
    pub fn meaning(self) -> &'static str {
        match self {
            LockMode::Auto => "decided from the filesystem",
            LockMode::Flock => "flock: excludes processes on this machine and huggingface_hub",
            LockMode::Fcntl => "fcntl (OFD): excludes processes on every machine that honours fcntl locks, not huggingface_hub",
            LockMode::Both => "flock + fcntl (OFD): excludes huggingface_hub here and processes on other machines",
            LockMode::None => "none: no locks; digests keep files correct, downloads may be duplicated",
        }
    }

    pub(crate) fn flock(self) -> bool {
        matches!(self, LockMode::Flock | LockMode::Both | LockMode::Auto)
    }

    pub(crate) fn ofd(self) -> bool {
        matches!(self, LockMode::Fcntl | LockMode::Both)
    }
}

impl fmt::Display for LockMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LockMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LockMode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("`{s}` is not a lock mode: use auto, flock, fcntl, both or none"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_both_locks_on_shared_filesystems_only() {
        for fs in [FsKind::Nfs, FsKind::Lustre, FsKind::Gpfs, FsKind::CephFs, FsKind::Cifs, FsKind::Fuse] {
            assert_eq!(LockMode::Auto.resolve(fs), LockMode::Both, "{fs:?}");
        }
        for fs in [FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs, FsKind::Zfs, FsKind::Tmpfs, FsKind::Overlay, FsKind::Unknown] {
            assert_eq!(LockMode::Auto.resolve(fs), LockMode::Flock, "{fs:?}");
        }
        assert_eq!(LockMode::None.resolve(FsKind::Nfs), LockMode::None, "a setting overrides detection");
        assert_eq!(LockMode::Fcntl.resolve(FsKind::Ext4), LockMode::Fcntl);
    }

    #[test]
    fn modes_parse_and_print_as_the_setting_spells_them() {
        for m in LockMode::ALL {
            assert_eq!(m.name().parse::<LockMode>(), Ok(m));
        }
        assert_eq!(" BOTH ".parse::<LockMode>(), Ok(LockMode::Both));
        let err = "posix".parse::<LockMode>().unwrap_err();
        assert!(err.contains("auto, flock, fcntl, both or none"), "{err}");
        assert!((LockMode::Flock.flock(), LockMode::Flock.ofd()) == (true, false));
        assert!((LockMode::Both.flock(), LockMode::Both.ofd()) == (true, true));
        assert!((LockMode::Fcntl.flock(), LockMode::Fcntl.ofd()) == (false, true));
        assert!(!LockMode::None.flock() && !LockMode::None.ofd());
    }
}
