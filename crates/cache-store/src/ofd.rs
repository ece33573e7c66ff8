//! Open-file-description byte-range locks (`F_OFD_SETLK`, Linux 3.15+): the `fcntl`
//! locks that network filesystems keep coherent across machines (NFSv4, GPFS, CephFS,
//! Lustre mounted with `flock`), where `flock(2)` may be node-local.
//!
//! Unlike classic POSIX `fcntl` locks, an OFD lock belongs to the open file description,
//! as a `flock` does: two descriptors opened separately exclude each other even in one
//! process, closing an unrelated descriptor of the same file does not drop it, and it
//! goes when the description is closed. So it can sit beside the `flock` on the same lock
//! file without either releasing the other. The whole file is locked (`l_len = 0`); lock
//! files stay empty.
//!
//! Elsewhere than Linux there are no OFD locks: taking one reports `Unsupported`.

use std::fs::File;
use std::io;

#[cfg(target_os = "linux")]
use nix::libc;

/// The lock's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Shared,
    Exclusive,
}

/// Tries to take the OFD lock on the whole of `file` without waiting: `Ok(false)` when
/// another open file description holds a conflicting one.
#[cfg(target_os = "linux")]
pub(crate) fn try_lock(file: &File, kind: Kind) -> io::Result<bool> {
    let l_type = match kind {
        Kind::Shared => libc::F_RDLCK,
        Kind::Exclusive => libc::F_WRLCK,
    };
    match set(file, l_type) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EACCES)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases the OFD lock `file` holds, if any.
#[cfg(target_os = "linux")]
pub(crate) fn unlock(file: &File) -> io::Result<()> {
    set(file, libc::F_UNLCK)
}

#[cfg(target_os = "linux")]
fn set(file: &File, l_type: libc::c_int) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, fcntl};
    let whole = libc::flock {
        l_type: libc::c_short::try_from(l_type).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        l_whence: libc::c_short::try_from(libc::SEEK_SET).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        l_start: 0,
        l_len: 0,
        // The kernel requires 0 for OFD locks.
        l_pid: 0,
    };
    fcntl(file, FcntlArg::F_OFD_SETLK(&whole)).map(drop).map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn try_lock(_: &File, _: Kind) -> io::Result<bool> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn unlock(_: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn two_open_file_descriptions_exclude_each_other_even_in_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let open = || std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).unwrap();
        let (a, b) = (open(), open());
        assert!(try_lock(&a, Kind::Exclusive).unwrap());
        assert!(!try_lock(&b, Kind::Exclusive).unwrap(), "a second description is refused");
        assert!(!try_lock(&b, Kind::Shared).unwrap());
        // The flock on the same file is independent of the OFD lock (locally).
        a.try_lock().unwrap();
        drop(open()); // closing another descriptor of the file keeps a's lock (unlike F_SETLK)
        assert!(!try_lock(&b, Kind::Exclusive).unwrap());
        unlock(&a).unwrap();
        assert!(try_lock(&b, Kind::Shared).unwrap());
        let c = open();
        assert!(try_lock(&c, Kind::Shared).unwrap(), "shared locks share");
        assert!(!try_lock(&a, Kind::Exclusive).unwrap());
        drop((b, c));
        assert!(try_lock(&a, Kind::Exclusive).unwrap(), "closing a description releases its lock");
        assert_eq!(std::fs::read(&path).unwrap(), b"", "lock files stay empty");
    }
}
