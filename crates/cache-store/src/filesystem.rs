//! What filesystem each root is on, and what its locks are worth there.
//!
//! # Why it matters
//! Locks only save work; digests decide correctness. Where `flock` is node-local or a
//! silent no-op (NFS, Lustre, GPFS, CephFS, SMB; FUSE depends on the daemon), two
//! machines sharing one cache may download one blob at the same time: nothing wrong is
//! served, but the work is done twice. [`Store::filesystems`] says which case a cache is in
//! and [`Store::probe_locks`] whether `flock` excludes at all, so `modelcache doctor` can
//! tell the user before they find out.
//!
//! # Detection
//! The filesystem's type is the `f_type` magic number `fstatfs(2)` reports for the open
//! root (Linux). The mount table (`/proc/self/mountinfo`, matched by the root's device)
//! adds what the number does not say: the FUSE daemon (`fuse.sshfs`), a type without a
//! known number, and the mount options that limit locks (see `mountinfo`). Each device is
//! looked at once per process. Elsewhere the kind is [`FsKind::Unknown`].

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use cap_std::fs::Dir;

use crate::mountinfo::{self, Mount};

use crate::error::{Error, Result};
use crate::fsx;
use crate::store::Store;

/// A filesystem type, as far as locking and sharing are concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsKind {
    /// ext2/3/4.
    Ext4,
    /// XFS.
    Xfs,
    /// Btrfs.
    Btrfs,
    /// ZFS.
    Zfs,
    /// tmpfs (memory).
    Tmpfs,
    /// overlayfs (containers).
    Overlay,
    /// NFS (any version).
    Nfs,
    /// Lustre.
    Lustre,
    /// IBM Spectrum Scale (GPFS).
    Gpfs,
    /// CephFS.
    CephFs,
    /// SMB/CIFS.
    Cifs,
    /// A FUSE filesystem (sshfs, s3fs, gcsfuse, …).
    Fuse,
    /// A type this list does not name, by its magic number.
    Other(u64),
    /// Not known on this platform.
    Unknown,
}

impl FsKind {
    /// The kind `fstatfs` reports as `magic` (`f_type`).
    pub fn from_magic(magic: u64) -> FsKind {
        match magic {
            0xEF53 => FsKind::Ext4,
            0x5846_5342 => FsKind::Xfs,
            0x9123_683E => FsKind::Btrfs,
            0x2FC1_2FC1 => FsKind::Zfs,
            0x0102_1994 => FsKind::Tmpfs,
            0x794C_7630 => FsKind::Overlay,
            0x6969 => FsKind::Nfs,
            0x0BD0_0BD0 => FsKind::Lustre,
            0x4750_4653 => FsKind::Gpfs,
            0x00C3_6400 => FsKind::CephFs,
            0xFF53_4D42 | 0xFE53_4D42 | 0x517B => FsKind::Cifs,
            0x6573_5546 => FsKind::Fuse,
            other => FsKind::Other(other),
        }
    }

    /// A short name: `ext4`, `nfs`, `fuse`, `0x1234abcd` for an unnamed type.
    pub fn name(self) -> String {
        match self {
            FsKind::Ext4 => "ext4".into(),
            FsKind::Xfs => "xfs".into(),
            FsKind::Btrfs => "btrfs".into(),
            FsKind::Zfs => "zfs".into(),
            FsKind::Tmpfs => "tmpfs".into(),
            FsKind::Overlay => "overlay".into(),
            FsKind::Nfs => "nfs".into(),
            FsKind::Lustre => "lustre".into(),
            FsKind::Gpfs => "gpfs".into(),
            FsKind::CephFs => "cephfs".into(),
            FsKind::Cifs => "cifs".into(),
            FsKind::Fuse => "fuse".into(),
            FsKind::Other(magic) => format!("{magic:#x}"),
            FsKind::Unknown => "unknown".into(),
        }
    }

    /// The kind the mount table names `fstype` (for types `statfs` does not tell apart).
    pub fn from_fstype(fstype: &str) -> FsKind {
        match fstype.split('.').next().unwrap_or(fstype) {
            "ext2" | "ext3" | "ext4" => FsKind::Ext4,
            "xfs" => FsKind::Xfs,
            "btrfs" => FsKind::Btrfs,
            "zfs" => FsKind::Zfs,
            "tmpfs" => FsKind::Tmpfs,
            "overlay" => FsKind::Overlay,
            "nfs" | "nfs4" => FsKind::Nfs,
            "lustre" => FsKind::Lustre,
            "gpfs" => FsKind::Gpfs,
            "ceph" => FsKind::CephFs,
            "cifs" | "smb3" | "smbfs" => FsKind::Cifs,
            "fuse" | "fuseblk" => FsKind::Fuse,
            _ => FsKind::Unknown,
        }
    }

    /// Whether several machines may share it, so that `flock` may not exclude a process
    /// on another machine (node-local or a no-op on these).
    pub fn is_shared(self) -> bool {
        matches!(self, FsKind::Nfs | FsKind::Lustre | FsKind::Gpfs | FsKind::CephFs | FsKind::Cifs | FsKind::Fuse)
    }
}

/// One root's filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filesystem {
    /// Its type.
    pub kind: FsKind,
    /// Its size in bytes.
    pub capacity: u64,
    /// Bytes available to this user.
    pub free: u64,
    /// Its entry in the mount table, when found (Linux).
    pub mount: Option<Mount>,
}

impl Filesystem {
    /// Its name: the mount table's type where it says more (`fuse.sshfs`, `nfs4`), else
    /// the kind's.
    pub fn name(&self) -> String {
        match (&self.mount, self.kind) {
            (Some(m), FsKind::Fuse | FsKind::Nfs | FsKind::Other(_) | FsKind::Unknown) => m.fstype.clone(),
            _ => self.kind.name(),
        }
    }
}

/// What taking the same `flock` twice showed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockProbe {
    /// A second open file description was refused while the first held the lock.
    Excludes,
    /// Both got it: `flock` is a no-op here (within this machine too).
    NoOp,
    /// The filesystem refused `flock` (`ENOLCK`, unsupported).
    Unsupported,
}

/// What detection found for one root.
#[derive(Clone, Debug)]
pub(crate) struct Detected {
    pub(crate) kind: FsKind,
    pub(crate) mount: Option<Mount>,
}

/// The filesystem of `dir`, looked at once per device per process.
pub(crate) fn detect(dir: &Dir) -> Detected {
    #[cfg(target_os = "linux")]
    {
        use cap_std::fs::MetadataExt;
        static SEEN: OnceLock<Mutex<HashMap<u64, Detected>>> = OnceLock::new();
        let Ok(dev) = dir.dir_metadata().map(|m| m.dev()) else {
            return Detected { kind: FsKind::Unknown, mount: None };
        };
        let seen = SEEN.get_or_init(Mutex::default);
        if let Some(d) = seen.lock().unwrap_or_else(PoisonError::into_inner).get(&dev) {
            return d.clone();
        }
        let magic = rustix::fs::fstatfs(dir).ok().and_then(|s| u64::try_from(s.f_type).ok());
        let rdev = rustix::fs::Dev::from(dev);
        let mount = mountinfo::of_device((u64::from(rustix::fs::major(rdev)), u64::from(rustix::fs::minor(rdev))));
        let kind = match (magic.map(FsKind::from_magic), &mount) {
            (Some(FsKind::Other(_)) | None, Some(m)) if FsKind::from_fstype(&m.fstype) != FsKind::Unknown => {
                FsKind::from_fstype(&m.fstype)
            }
            (Some(kind), _) => kind,
            (None, _) => FsKind::Unknown,
        };
        let d = Detected { kind, mount };
        seen.lock().unwrap_or_else(PoisonError::into_inner).insert(dev, d.clone());
        d
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        Detected { kind: FsKind::Unknown, mount: None }
    }
}

impl Store {
    /// The filesystems of the hub cache and of the home, in that order.
    pub fn filesystems(&self) -> Result<(Filesystem, Filesystem)> {
        let of = |dir: &Dir, path: &camino::Utf8Path| -> Result<Filesystem> {
            let io = || Error::io("measure the filesystem of", path.to_owned());
            let Detected { kind, mount } = detect(dir);
            Ok(Filesystem { kind, capacity: fsx::capacity(dir).map_err(io())?, free: fsx::free_space(dir).map_err(io())?, mount })
        };
        Ok((of(&self.hub, &self.hub_path)?, of(&self.home, &self.home_path)?))
    }

    /// Whether `flock` excludes on the hub cache's filesystem, tried on a lock file of the
    /// cache's own kind (`.locks/.probe.lock`, empty, as every lock file is) from two open
    /// file descriptions. It shows a no-op `flock`, not one that is node-local: that needs
    /// a second machine ([`FsKind::is_shared`] names the filesystems where it may be).
    pub fn probe_locks(&self) -> Result<LockProbe> {
        let rel = camino::Utf8Path::new(".locks/.probe.lock");
        let abs = self.hub_path.join(rel);
        let open = || {
            let mut o = fsx::rw_options(true);
            cap_std::fs::OpenOptionsExt::mode(&mut o, 0o664);
            self.hub.open_with(rel, &o).map(cap_std::fs::File::into_std).map_err(Error::io("open lock", abs.clone()))
        };
        if let Some(parent) = rel.parent() {
            fsx::create_dirs(&self.hub, parent).map_err(Error::io("create", self.hub_path.join(parent)))?;
        }
        let (first, second) = (open()?, open()?);
        let probe = match first.try_lock() {
            Err(std::fs::TryLockError::Error(_)) => LockProbe::Unsupported,
            Err(std::fs::TryLockError::WouldBlock) => LockProbe::Excludes, // another doctor holds it
            Ok(()) => match second.try_lock() {
                Ok(()) => LockProbe::NoOp,
                Err(std::fs::TryLockError::WouldBlock) => LockProbe::Excludes,
                Err(std::fs::TryLockError::Error(_)) => LockProbe::Unsupported,
            },
        };
        drop((first, second));
        let _ = self.hub.remove_file(rel);
        Ok(probe)
    }

    /// The repos whose folder (or `blobs/`, `snapshots/`, `refs/` in it) is a symlink
    /// leading outside the cache, which whole-cache operations skip, with the folder.
    pub fn outside_repos(&self) -> Result<Vec<(cache_core::Repo, camino::Utf8PathBuf)>> {
        let mut out = Vec::new();
        for repo in crate::scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))? {
            let layout = crate::layout::RepoLayout::new(&repo);
            if !self.is_contained(&layout) {
                out.push((repo, self.hub_path.join(layout.root())));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_name_the_filesystems_that_matter_for_locks() {
        assert_eq!(FsKind::from_magic(0x6969), FsKind::Nfs);
        assert_eq!(FsKind::from_magic(0x0BD0_0BD0), FsKind::Lustre);
        assert_eq!(FsKind::from_magic(0xEF53).name(), "ext4");
        assert_eq!(FsKind::from_magic(0x1234).name(), "0x1234");
        assert!(FsKind::Nfs.is_shared() && FsKind::Fuse.is_shared() && FsKind::CephFs.is_shared());
        assert!(!FsKind::Ext4.is_shared() && !FsKind::Tmpfs.is_shared() && !FsKind::Overlay.is_shared());
    }

    /// `f_type` values as `statfs` reported them on each family (recorded on real mounts).
    #[test]
    fn recorded_statfs_values_of_each_family() {
        let recorded = [
            (0xEF53, "ext4"),
            (0x5846_5342, "xfs"),
            (0x9123_683E, "btrfs"),
            (0x2FC1_2FC1, "zfs"),
            (0x0102_1994, "tmpfs"),
            (0x794C_7630, "overlay"),
            (0x6969, "nfs"),
            (0x0BD0_0BD0, "lustre"),
            (0x4750_4653, "gpfs"),
            (0x00C3_6400, "cephfs"),
            (0xFF53_4D42, "cifs"),
            (0xFE53_4D42, "cifs"),
            (0x6573_5546, "fuse"),
        ];
        for (magic, name) in recorded {
            assert_eq!(FsKind::from_magic(magic).name(), name, "{magic:#x}");
        }
        for (fstype, kind) in [
            ("nfs4", FsKind::Nfs),
            ("fuse.sshfs", FsKind::Fuse),
            ("ceph", FsKind::CephFs),
            ("smb3", FsKind::Cifs),
            ("proc", FsKind::Unknown),
        ] {
            assert_eq!(FsKind::from_fstype(fstype), kind, "{fstype}");
        }
        let fuse = Filesystem {
            kind: FsKind::Fuse,
            capacity: 0,
            free: 0,
            mount: crate::mountinfo::parse_line("1 0 0:9 / /m rw - fuse.sshfs u@h:/ rw").map(|(_, m)| m),
        };
        assert_eq!(fuse.name(), "fuse.sshfs", "the mount table names the daemon");
    }

    /// The real call on this machine's filesystems: a temporary directory (whatever the
    /// test machine has there) and `/dev/shm` (tmpfs) when present.
    #[test]
    fn detection_on_this_machine_agrees_with_the_mount_table() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let d = detect(&dir);
        assert_ne!(d.kind, FsKind::Unknown, "statfs answers on Linux");
        if let Some(m) = &d.mount {
            let by_table = FsKind::from_fstype(&m.fstype);
            assert!(by_table == FsKind::Unknown || by_table == d.kind, "{:?} vs {}", d.kind, m.fstype);
        }
        if let Ok(shm) = Dir::open_ambient_dir("/dev/shm", cap_std::ambient_authority()) {
            assert_eq!(detect(&shm).kind, FsKind::Tmpfs);
        }
    }
}
