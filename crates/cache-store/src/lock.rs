//! Locks: per-blob exclusive locks shared with `huggingface_hub`, and per-repo leases
//! that keep removal away from files in use.
//!
//! # Blob locks
//! `<hub>/.locks/<repo-folder>/<etag>.lock`, taken with `File::try_lock` (`flock(2)` on
//! Linux, the primitive Python's `filelock` uses), so a Rust and a Python process never
//! download one blob twice. A waiter polls with backoff and has no short hard timeout:
//! it gives up only after [`StoreConfig::lock_stall_timeout`](crate::StoreConfig) without
//! progress, progress being the holder's `.incomplete` file growing. Waiters say who they
//! wait for (`pid 1234 (python3)`) from the kernel's lock table (`/proc/locks`), so the
//! lock files stay empty, as Python leaves them, and a lock costs no write. The OS drops
//! a dead holder's lock.
//!
//! # Leases
//! `<home>/hubs/<key>/leases/<repo-folder>.lock`: readers hold a *shared* lock while they
//! use a repo's files ([`Store::lease`](crate::Store::lease)); removal, clear and eviction
//! *try* the exclusive lock and skip (or refuse) a repo in use. flock locks belong to
//! open file descriptions, so they exclude threads of one process as well as processes.
//!
//! # Filesystems
//! Where `flock` is a silent no-op (some NFS, Lustre, GPFS) both work as if uncontended;
//! correctness still holds because every blob is digest-checked before it is published.

use std::fs::TryLockError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_core::{Etag, Repo};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::{Dir, OpenOptionsExt};

use crate::error::{Error, Result};
use crate::fsx;

/// What a lock protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A Hub blob `<repo>/blobs/<etag>`.
    Hub { repo: Repo, etag: Etag },
    /// A generic artifact, by the hash of its key.
    Artifact { id: String },
}

/// What a waiter knows while another process holds a blob lock.
#[derive(Clone, Copy, Debug)]
pub struct LockWait<'a> {
    /// The lock file being waited on.
    pub lock_file: &'a Utf8Path,
    /// Who holds it, as the holder wrote it (`pid 1234`), when known.
    pub holder: Option<&'a str>,
    /// How many bytes the holder's `.incomplete` file has, when there is one.
    pub incomplete_bytes: Option<u64>,
    /// How long this waiter has waited.
    pub waited: Duration,
}

pub(crate) struct Held {
    file: std::fs::File,
    pub(crate) lock_file: Utf8PathBuf,
    pub(crate) target: Target,
    locked: bool,
    /// How long taking it waited, when it was busy.
    pub(crate) waited: Option<Duration>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.locked {
            let _ = self.file.unlock();
        }
    }
}

/// An exclusive lock on one blob (see the module docs). Dropping it releases the lock
/// once every [`Staging`](crate::Staging) made under it is gone too.
pub struct BlobLock {
    pub(crate) held: Arc<Held>,
}

impl BlobLock {
    /// The lock file.
    pub fn lock_file(&self) -> &Utf8Path {
        &self.held.lock_file
    }

    /// Whether the OS granted a real lock (`false` where `flock` is unsupported).
    pub fn is_exclusive(&self) -> bool {
        self.held.locked
    }
}

impl std::fmt::Debug for BlobLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobLock").field("lock_file", &self.held.lock_file).field("target", &self.held.target).finish()
    }
}

fn open_lock_file(dir: &Dir, rel: &Utf8Path, abs: &Utf8Path) -> Result<std::fs::File> {
    let mut o = fsx::rw_options(true);
    o.mode(0o664);
    match dir.open_with(rel, &o) {
        Ok(f) => return Ok(f.into_std()),
        Err(e) if !fsx::is_not_found(&e) => return Err(Error::io("open lock", abs)(e)),
        Err(_) => {}
    }
    if let Some(parent) = rel.parent() {
        fsx::create_dirs(dir, parent).map_err(Error::io("create", abs.parent().unwrap_or(abs)))?;
    }
    Ok(dir.open_with(rel, &o).map_err(Error::io("open lock", abs))?.into_std())
}

/// The longest pause between two attempts to take a busy lock.
const POLL_CAP: Duration = Duration::from_millis(20);

/// Takes the exclusive lock at `rel` under `dir`, waiting while `progress` keeps changing.
pub(crate) fn acquire(
    dir: &Dir,
    rel: &Utf8Path,
    abs: Utf8PathBuf,
    target: Target,
    stall_timeout: Duration,
    progress: &mut dyn FnMut() -> Option<u64>,
    observer: &mut dyn FnMut(&LockWait<'_>),
) -> Result<BlobLock> {
    let file = open_lock_file(dir, rel, &abs)?;
    let key = lock_table_key(&file);
    let start = Instant::now();
    let mut last_change = start;
    let mut last_seen: Option<(Option<u64>, Option<String>)> = None;
    let mut last_report: Option<Instant> = None;
    let mut delay = Duration::from_millis(5);
    let mut busy = false;
    let locked = loop {
        match file.try_lock() {
            Ok(()) => break true,
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported || e.raw_os_error() == Some(37) => {
                tracing::warn!(lock = %abs, "file locks are not supported here; relying on digest checks");
                break false;
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", abs)(e)),
            Err(TryLockError::WouldBlock) => busy = true,
        }
        let bytes = progress();
        let holder = key.as_deref().and_then(holder_of);
        let now = Instant::now();
        let seen = (bytes, holder.clone());
        if last_seen.as_ref() != Some(&seen) {
            last_seen = Some(seen);
            last_change = now;
        }
        if last_report.is_none_or(|t| now - t >= Duration::from_secs(1)) {
            last_report = Some(now);
            tracing::info!(lock = %abs, holder = holder.as_deref().unwrap_or("unknown"), "waiting for lock");
            observer(&LockWait { lock_file: &abs, holder: holder.as_deref(), incomplete_bytes: bytes, waited: now - start });
        }
        if now - last_change >= stall_timeout {
            return Err(Error::LockTimeout { lock_file: abs, stalled: now - last_change });
        }
        std::thread::sleep(delay);
        // Polling a lock is a handful of syscalls; a short cap lets every waiter take the
        // blob within ~20 ms of its release (8 processes on one blob: ~1× a single get,
        // not +100 ms per waiter as a 200 ms cap gave).
        delay = (delay * 2).min(POLL_CAP);
    };
    let waited = busy.then(|| start.elapsed());
    Ok(BlobLock { held: Arc::new(Held { file, lock_file: abs, target, locked, waited }) })
}

/// How the kernel's lock table names `file`: device as `%02x:%02x` (major, minor), then
/// the inode in decimal. Linux only: elsewhere there is no such table to read.
#[cfg(target_os = "linux")]
fn lock_table_key(file: &std::fs::File) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = file.metadata().ok()?;
    let dev = rustix::fs::Dev::from(meta.dev());
    Some(format!("{:02x}:{:02x}:{}", rustix::fs::major(dev), rustix::fs::minor(dev), meta.ino()))
}

#[cfg(not(target_os = "linux"))]
fn lock_table_key(_: &std::fs::File) -> Option<String> {
    None
}

/// Who holds the `flock` on the file the lock table names `key`, from the kernel's lock
/// table (Linux `/proc/locks`): `pid 1234 (python3)`. Any holder is seen, Python's
/// `filelock` included; `None` where it cannot be told.
fn holder_of(key: &str) -> Option<String> {
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = table.lines().find_map(|line| {
        // `1: FLOCK  ADVISORY  WRITE 1234 fe:00:8503346 0 EOF`; blocked waiters show `->`.
        let mut fields = line.split_whitespace().skip(1);
        let (kind, _, mode, pid, at) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        (kind == "FLOCK" && mode == "WRITE" && at == key).then(|| pid.parse::<u32>().ok()).flatten()
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let name = name.trim();
    Some(if name.is_empty() { format!("pid {pid}") } else { format!("pid {pid} ({name})") })
}

/// A lock taken only because it was free; released on drop. Holds no file when the
/// lock file did not exist (nobody can be holding it then).
pub(crate) struct TryHeld {
    file: Option<std::fs::File>,
}

impl Drop for TryHeld {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.unlock();
        }
    }
}

/// Tries the exclusive lock at `rel` (creating the file when `create`). `Ok(None)`:
/// someone holds it.
pub(crate) fn try_exclusive(dir: &Dir, rel: &Utf8Path, abs: &Utf8Path, create: bool) -> Result<Option<TryHeld>> {
    let file = if create {
        open_lock_file(dir, rel, abs)?
    } else {
        match dir.open_with(rel, &fsx::rw_options(false)) {
            Ok(f) => f.into_std(),
            Err(e) if fsx::is_not_found(&e) => return Ok(Some(TryHeld { file: None })),
            Err(e) => return Err(Error::io("open lock", abs)(e)),
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(TryHeld { file: Some(file) })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(_)) => Ok(Some(TryHeld { file: None })),
    }
}

/// A shared hold on a repo (or artifact): while any process has one, removal, clear and
/// eviction leave its files alone. Released on drop (or by the OS when the process dies).
#[derive(Debug)]
pub struct Lease {
    file: std::fs::File,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// Takes a shared lease, waiting while a removal holds it exclusively.
pub(crate) fn lease(dir: &Dir, rel: &Utf8Path, abs: &Utf8Path) -> Result<Lease> {
    let file = open_lock_file(dir, rel, abs)?;
    match file.lock_shared() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
        Err(e) => return Err(Error::io("lock", abs)(e)),
    }
    Ok(Lease { file })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, Dir, Utf8PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let d = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let abs = Utf8PathBuf::from_path_buf(tmp.path().to_owned()).unwrap();
        (tmp, d, abs)
    }

    #[test]
    fn second_locker_waits_and_times_out_without_progress() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new(".locks/r/x.lock");
        let target = Target::Artifact { id: "x".into() };
        let lock = acquire(&d, rel, abs.join(rel), target.clone(), Duration::from_secs(1), &mut || None, &mut |_| {}).unwrap();
        assert!(lock.is_exclusive());
        assert_eq!(std::fs::read(abs.join(rel)).unwrap(), b"", "lock files stay empty, as Python leaves them");
        assert!(try_exclusive(&d, rel, &abs.join(rel), false).unwrap().is_none(), "busy for another descriptor");

        let mut waits = Vec::new();
        let err = acquire(&d, rel, abs.join(rel), target.clone(), Duration::from_millis(300), &mut || Some(7), &mut |w| {
            waits.push((w.holder.map(str::to_owned), w.incomplete_bytes));
        })
        .unwrap_err();
        assert!(matches!(&err, Error::LockTimeout { lock_file, .. } if lock_file.ends_with("x.lock")), "{err}");
        let (holder, bytes) = &waits[0];
        let holder = holder.as_deref().unwrap_or_default();
        assert!(holder.starts_with(&format!("pid {} (", std::process::id())), "{holder}");
        assert_eq!(*bytes, Some(7));

        drop(lock);
        assert!(try_exclusive(&d, rel, &abs.join(rel), false).unwrap().is_some());
    }

    #[test]
    fn waiting_continues_while_the_holder_makes_progress() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        let target = Target::Artifact { id: "x".into() };
        let lock = acquire(&d, rel, abs.join(rel), target.clone(), Duration::from_secs(5), &mut || None, &mut |_| {}).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(900));
            drop(lock);
        });
        let mut n = 0;
        // Stall timeout far below the hold time: only progress keeps the waiter going.
        let got = acquire(
            &d,
            rel,
            abs.join(rel),
            target,
            Duration::from_millis(250),
            &mut || {
                n += 1;
                Some(n)
            },
            &mut |_| {},
        );
        release.join().unwrap();
        assert!(got.is_ok());
    }

    #[test]
    fn leases_are_shared_but_exclude_removal() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("leases/r.lock");
        let a = lease(&d, rel, &abs.join(rel)).unwrap();
        let b = lease(&d, rel, &abs.join(rel)).unwrap();
        assert!(try_exclusive(&d, rel, &abs.join(rel), true).unwrap().is_none());
        drop((a, b));
        assert!(try_exclusive(&d, rel, &abs.join(rel), true).unwrap().is_some());
    }
}
