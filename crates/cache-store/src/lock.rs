//! Locks: per-blob exclusive locks shared with `huggingface_hub`, and per-repo leases
//! that keep removal away from files in use.
//!
//! # Blob locks
//! `<hub>/.locks/<repo-folder>/<etag>.lock`. Which locks are taken is the store's
//! [`LockMode`]: `flock(2)` (`File::try_lock`, the primitive Python's `filelock` uses, so
//! a Rust and a Python process never download one blob twice), an open-file-description
//! `fcntl` lock on the same file (`ofd`: coherent across the machines of NFSv4, GPFS,
//! CephFS, Lustre mounted with `flock`), both (flock first; while the OFD lock is busy the
//! flock is let go again, so a local Python process is not blocked by a waiter), or none.
//! Lock files stay empty, as Python leaves them.
//!
//! # Waiting
//! A waiter polls with backoff and has no short hard timeout: it gives up only after
//! [`StoreConfig::lock_stall_timeout`](crate::StoreConfig) without progress — the holder's
//! `.incomplete` file growing, or its holder record's heartbeat moving — with an error
//! naming the holder's pid. About once a second it reports ([`LockWait`]) who holds the
//! lock (its holder record, or the kernel's lock table `/proc/locks` for a holder that
//! keeps none, such as Python), how far and how fast its download goes, and whether it is
//! stopped. A waiter stops waiting when the blob appears, whoever published it.
//!
//! # Stale holders
//! The OS drops a dead process's locks on a local filesystem. On a network filesystem a
//! crashed client's lock can outlive it, and its holder record (`holder`) stays. A waiter
//! that saw no progress and no heartbeat for [`StoreConfig::lock_lease`](crate::StoreConfig)
//! and can prove the holder gone (same machine: its pid no longer runs or is another
//! process, or the machine rebooted; another machine: no sign of life for longer than the
//! lease) claims the takeover with an exclusive-create claim file (only one waiter wins
//! it), writes its own record and proceeds without the lingering lock. The partial file
//! is then resumed only for what its range record proves (see `record`), and the digest
//! check at commit decides. A holder alive on this machine is never taken over, stopped or
//! slow; a process on this machine holding the `flock` (Python) always counts as alive.
//!
//! # Leases
//! `<home>/hubs/<key>/leases/<repo-folder>.lock`: readers hold a *shared* lock while they
//! use a repo's files ([`Store::lease`](crate::Store::lease)); removal, clear and eviction
//! *try* the exclusive lock and skip (or refuse) a repo in use. Leases take a shared
//! `flock` and a shared OFD lock, and every "is it free?" check tries both kinds, so a
//! holder in any mode is seen. Both belong to open file descriptions, so they exclude
//! threads of one process as well as processes.
//!
//! # Filesystems
//! Where locks are a silent no-op or node-local, work may be duplicated; correctness still
//! holds because every blob is digest-checked before it is published.

use std::fs::TryLockError;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cache_core::{Etag, Repo};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::{Dir, OpenOptionsExt};

use crate::error::{Error, Result};
use crate::holder::{self, Heartbeat, Holder, RecordAt, Verdict};
use crate::lockmode::LockMode;
use crate::{fsx, ofd};

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
#[non_exhaustive]
pub struct LockWait<'a> {
    /// The lock file.
    pub lock_file: &'a Utf8Path,
    /// Who holds it (`pid 1234 (python3)`, `pid 77 (modelcache) on node-3, stopped`),
    /// from its holder record or the kernel's lock table, when known.
    pub holder: Option<&'a str>,
    /// What the holder's record says about it, when it keeps one (modelcache does).
    pub record: Option<&'a Holder>,
    /// How many bytes the holder's `.incomplete` file has, when there is one.
    pub incomplete_bytes: Option<u64>,
    /// How fast that file grew since the last report, in bytes per second.
    pub speed: Option<u64>,
    /// How long this waiter has waited.
    pub waited: Duration,
}

/// What a waiter sees of the holder's work.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seen {
    /// Its staging file's size and modification time, when there is one.
    pub(crate) staged: Option<(u64, SystemTime)>,
    /// The blob is in the cache: waiting is over, whoever holds the lock.
    pub(crate) published: bool,
}

pub(crate) struct Held {
    file: std::fs::File,
    pub(crate) lock_file: Utf8PathBuf,
    pub(crate) target: Target,
    flock: bool,
    ofd: bool,
    /// How long taking it waited, when it was busy.
    pub(crate) waited: Option<Duration>,
    /// This process's holder record, refreshed as the transfer writes.
    pub(crate) heartbeat: Option<Heartbeat>,
    /// Why the previous holder was declared gone, when this lock was taken over.
    pub(crate) taken_over: Option<String>,
}

impl Held {
    /// Refreshes this process's holder record (at most once a second).
    pub(crate) fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // The record goes first: once the lock is free, the next holder writes its own.
        drop(self.heartbeat.take());
        if self.ofd {
            let _ = ofd::unlock(&self.file);
        }
        if self.flock {
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

    /// Whether the OS granted a real lock (`false` where locks are unsupported, with
    /// `lock_mode = none`, or when a gone holder's lock was taken over).
    pub fn is_exclusive(&self) -> bool {
        self.held.flock || self.held.ofd
    }

    /// Why the previous holder was declared gone, when this lock was taken over from it.
    pub fn taken_over(&self) -> Option<&str> {
        self.held.taken_over.as_deref()
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

/// One blob lock to take.
pub(crate) struct Request<'a> {
    pub(crate) dir: &'a Dir,
    pub(crate) rel: &'a Utf8Path,
    pub(crate) abs: Utf8PathBuf,
    pub(crate) target: Target,
    /// Resolved (never `Auto`).
    pub(crate) mode: LockMode,
    pub(crate) stall_timeout: Duration,
    pub(crate) lease: Duration,
    /// Where the holder's record lives.
    pub(crate) record: RecordAt,
    /// Whether the holder keeps a record there (`RootLock::keeps_holder_records`); a waiter
    /// reads one in any case, and one taking over always writes its own.
    pub(crate) keep_record: bool,
}

/// What one attempt to take the locks of `mode` gave.
enum Attempt {
    Got { flock: bool, ofd: bool },
    Busy,
}

fn unsupported(e: &std::io::Error) -> bool {
    // ENOLCK (37), ENOSYS (38), EINVAL (22: no OFD locks), EOPNOTSUPP (95).
    e.kind() == std::io::ErrorKind::Unsupported || matches!(e.raw_os_error(), Some(22 | 37 | 38 | 95))
}

fn attempt(file: &std::fs::File, mode: LockMode, abs: &Utf8Path) -> Result<Attempt> {
    let mut flock = false;
    if mode.flock() {
        match file.try_lock() {
            Ok(()) => flock = true,
            Err(TryLockError::WouldBlock) => return Ok(Attempt::Busy),
            Err(TryLockError::Error(e)) if unsupported(&e) => {
                tracing::warn!(lock = %abs, "flock is not supported here; relying on digest checks");
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", abs)(e)),
        }
    }
    let mut ofd = false;
    if mode.ofd() {
        match ofd::try_lock(file, ofd::Kind::Exclusive) {
            Ok(true) => ofd = true,
            Ok(false) => {
                if flock {
                    // Not ours yet: leave the flock to others (Python) while waiting.
                    let _ = file.unlock();
                }
                return Ok(Attempt::Busy);
            }
            Err(e) if unsupported(&e) => {
                tracing::warn!(lock = %abs, "fcntl (OFD) locks are not supported here; relying on digest checks");
            }
            Err(e) => return Err(Error::io("lock", abs)(e)),
        }
    }
    Ok(Attempt::Got { flock, ofd })
}

/// What a waiter has observed of the holder.
struct Watch {
    start: Instant,
    last_change: Instant,
    last_seen: Option<(Option<u64>, Option<SystemTime>, Option<String>)>,
    last_report: Option<(Instant, Option<u64>)>,
}

/// Takes the exclusive lock `req` names, waiting while `progress` (the holder's staging
/// file) or its holder record keeps changing; takes over from a holder proved gone (see
/// `holder`) once nothing changed for the lease; gives up after the stall timeout.
pub(crate) fn acquire(
    req: Request<'_>,
    progress: &mut dyn FnMut() -> Seen,
    observer: &mut dyn FnMut(&LockWait<'_>),
) -> Result<BlobLock> {
    let Request { dir, rel, abs, target, mode, stall_timeout, lease, record, keep_record } = req;
    let file = open_lock_file(dir, rel, &abs)?;
    if mode == LockMode::None {
        let held =
            Held { file, lock_file: abs, target, flock: false, ofd: false, waited: None, heartbeat: None, taken_over: None };
        return Ok(BlobLock { held: Arc::new(held) });
    }
    let key = if mode.flock() { lock_table_key(&file) } else { None };
    let now = Instant::now();
    let mut w = Watch { start: now, last_change: now, last_seen: None, last_report: None };
    let mut delay = Duration::from_millis(5);
    let mut busy = false;
    let (flock, ofd, claim, taken_over) = loop {
        match attempt(&file, mode, &abs)? {
            Attempt::Got { flock, ofd } => break (flock, ofd, None, None),
            Attempt::Busy => busy = true,
        }
        let seen = progress();
        if seen.published {
            // Done by someone (perhaps a holder that took over from a gone one while its
            // lock state lingers): the caller finds the blob when it looks again.
            break (false, false, None, None);
        }
        let bytes = seen.staged.map(|(b, _)| b);
        let rec = record.read();
        // A local process holding the flock (Python's filelock, or us) is alive: it wins
        // over whatever an old record says.
        let kernel = key.as_deref().and_then(holder_of);
        let rec = rec.filter(|r| kernel.as_ref().is_none_or(|(pid, _)| *pid == r.pid));
        let now = Instant::now();
        let state = (bytes, rec.as_ref().map(|r| r.heartbeat), kernel.as_ref().map(|(_, d)| d.clone()));
        if w.last_seen.as_ref() != Some(&state) {
            w.last_seen = Some(state);
            w.last_change = now;
        }
        let verdict = rec.as_ref().map(|r| {
            let last_sign = seen.staged.map_or(r.heartbeat, |(_, mtime)| mtime.max(r.heartbeat));
            holder::judge(r, last_sign, SystemTime::now(), lease, &holder::process)
        });
        if now - w.last_change >= lease
            && kernel.is_none()
            && let (Some(stale), Some(Verdict::Gone(reason))) = (&rec, &verdict)
            && record.read().as_ref() == Some(stale)
            && let Some(claim) = record.claim(stale).map_err(Error::io("claim", abs.clone()))?
        {
            tracing::warn!(lock = %abs, "taking over: {reason}");
            break (false, false, Some(claim), Some(reason.clone()));
        }
        let stopped = matches!(verdict, Some(Verdict::Alive { stopped: true }));
        let holder = match (&rec, &kernel) {
            (Some(r), _) => Some(r.describe()),
            (None, Some((_, d))) => Some(d.clone()),
            (None, None) => None,
        }
        .map(|d| if stopped { format!("{d}, stopped") } else { d });
        if w.last_report.is_none_or(|(t, _)| now - t >= Duration::from_secs(1)) {
            let speed = w.last_report.and_then(|(t, before)| {
                let grown = bytes?.checked_sub(before?)?;
                let secs = (now - t).as_secs_f64();
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "a rate for display"
                )]
                let rate = (grown as f64 / secs) as u64;
                (secs > 0.0).then_some(rate)
            });
            w.last_report = Some((now, bytes));
            tracing::info!(
                lock = %abs,
                holder = holder.as_deref().unwrap_or("unknown"),
                bytes = bytes.unwrap_or(0),
                bytes_per_second = speed.unwrap_or(0),
                waited_ms = u64::try_from((now - w.start).as_millis()).unwrap_or(u64::MAX),
                "waiting for lock"
            );
            observer(&LockWait {
                lock_file: &abs,
                holder: holder.as_deref(),
                record: rec.as_ref(),
                incomplete_bytes: bytes,
                speed,
                waited: now - w.start,
            });
        }
        if now - w.last_change >= stall_timeout {
            return Err(Error::LockTimeout { lock_file: abs, stalled: now - w.last_change, holder });
        }
        std::thread::sleep(delay);
        // Polling a lock is a handful of syscalls; a short cap lets every waiter take the
        // blob within ~20 ms of its release (8 processes on one blob: ~1× a single get,
        // not +100 ms per waiter as a 200 ms cap gave).
        delay = (delay * 2).min(POLL_CAP);
    };
    let waited = busy.then(|| w.start.elapsed());
    let heartbeat = ((keep_record && (flock || ofd)) || claim.is_some()).then(|| Heartbeat::start(record, claim));
    Ok(BlobLock { held: Arc::new(Held { file, lock_file: abs, target, flock, ofd, waited, heartbeat, taken_over }) })
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

/// Who holds `file`'s `flock` on this machine (`pid 1234 (python3)`), from the kernel's
/// lock table.
pub(crate) fn flock_holder(file: &std::fs::File) -> Option<String> {
    lock_table_key(file).as_deref().and_then(holder_of).map(|(_, d)| d)
}

/// Who holds the `flock` on the file the lock table names `key`, from the kernel's lock
/// table (Linux `/proc/locks`): its pid and `pid 1234 (python3)`. Any holder on this
/// machine is seen, Python's `filelock` included; `None` where it cannot be told.
fn holder_of(key: &str) -> Option<(u32, String)> {
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = table.lines().find_map(|line| {
        // `1: FLOCK  ADVISORY  WRITE 1234 fe:00:8503346 0 EOF`; blocked waiters show `->`.
        let mut fields = line.split_whitespace().skip(1);
        let (kind, _, mode, pid, at) = (fields.next()?, fields.next()?, fields.next()?, fields.next()?, fields.next()?);
        (kind == "FLOCK" && mode == "WRITE" && at == key).then(|| pid.parse::<u32>().ok()).flatten()
    })?;
    let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let name = name.trim();
    Some((pid, if name.is_empty() { format!("pid {pid}") } else { format!("pid {pid} ({name})") }))
}

/// A lock taken only because it was free; released on drop. Holds no file when the
/// lock file did not exist (nobody can be holding it then).
pub(crate) struct TryHeld {
    file: Option<std::fs::File>,
}

impl Drop for TryHeld {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            let _ = ofd::unlock(f);
            let _ = f.unlock();
        }
    }
}

/// Tries the exclusive lock at `rel` (creating the file when `create`). `Ok(None)`:
/// someone holds it. Both kinds are tried, whatever the lock mode, so a holder in any
/// mode (`flock`, `fcntl`, `both`) is seen.
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
    let flocked = match file.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) => return Ok(None),
        Err(TryLockError::Error(_)) => false,
    };
    match ofd::try_lock(&file, ofd::Kind::Exclusive) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(TryHeld { file: Some(file) })),
        Err(_) if flocked => Ok(Some(TryHeld { file: Some(file) })),
        Err(_) => Ok(Some(TryHeld { file: None })),
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
        let _ = ofd::unlock(&self.file);
        let _ = self.file.unlock();
    }
}

/// Takes a shared lease — a shared `flock` and, where supported, a shared OFD lock, so
/// removal on another machine of a shared filesystem sees it too — waiting while a
/// removal holds it exclusively.
pub(crate) fn lease(dir: &Dir, rel: &Utf8Path, abs: &Utf8Path) -> Result<Lease> {
    let file = open_lock_file(dir, rel, abs)?;
    match file.lock_shared() {
        Ok(()) => {}
        Err(e) if unsupported(&e) => {}
        Err(e) => return Err(Error::io("lock", abs)(e)),
    }
    loop {
        match ofd::try_lock(&file, ofd::Kind::Shared) {
            Ok(true) => break,
            // A removal is busy: it holds the exclusive lock for a moment only.
            Ok(false) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) if unsupported(&e) => break,
            Err(e) => return Err(Error::io("lock", abs)(e)),
        }
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

    fn request<'a>(
        d: &'a Dir,
        abs: &Utf8Path,
        rel: &'a Utf8Path,
        mode: LockMode,
        stall: Duration,
        lease: Duration,
    ) -> Request<'a> {
        Request {
            dir: d,
            rel,
            abs: abs.join(rel),
            target: Target::Artifact { id: "x".into() },
            mode,
            stall_timeout: stall,
            lease,
            record: RecordAt { home: d.try_clone().unwrap(), rel: Utf8PathBuf::from(format!("{rel}.holder")) },
            keep_record: true,
        }
    }

    fn staged(bytes: u64) -> Seen {
        Seen { staged: Some((bytes, SystemTime::now())), published: false }
    }

    const LONG: Duration = Duration::from_secs(3600);

    #[test]
    fn second_locker_waits_and_times_out_without_progress() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new(".locks/r/x.lock");
        let lock =
            acquire(request(&d, &abs, rel, LockMode::Flock, Duration::from_secs(1), LONG), &mut Seen::default, &mut |_| {})
                .unwrap();
        assert!(lock.is_exclusive());
        assert_eq!(std::fs::read(abs.join(rel)).unwrap(), b"", "lock files stay empty, as Python leaves them");
        assert!(try_exclusive(&d, rel, &abs.join(rel), false).unwrap().is_none(), "busy for another descriptor");
        let record = d.read_to_string(".locks/r/x.lock.holder").unwrap();
        assert!(record.contains(&format!("\npid {}\n", std::process::id())), "the holder recorded itself: {record}");

        let mut waits = Vec::new();
        let err =
            acquire(request(&d, &abs, rel, LockMode::Flock, Duration::from_millis(300), LONG), &mut || staged(7), &mut |w| {
                waits.push((w.holder.map(str::to_owned), w.incomplete_bytes, w.record.map(|r| r.pid)));
            })
            .unwrap_err();
        let me = format!("pid {} (", std::process::id());
        assert!(
            matches!(&err, Error::LockTimeout { lock_file, holder: Some(h), .. } if lock_file.ends_with("x.lock") && h.starts_with(&me)),
            "{err}"
        );
        let (holder, bytes, pid) = &waits[0];
        let holder = holder.as_deref().unwrap_or_default();
        assert!(holder.starts_with(&me), "{holder}");
        assert_eq!((*bytes, *pid), (Some(7), Some(std::process::id())));

        drop(lock);
        assert!(!d.exists(".locks/r/x.lock.holder"), "the record goes with the lock");
        assert!(try_exclusive(&d, rel, &abs.join(rel), false).unwrap().is_some());
    }

    #[test]
    fn waiting_continues_while_the_holder_makes_progress() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        let lock = acquire(request(&d, &abs, rel, LockMode::Both, Duration::from_secs(5), LONG), &mut Seen::default, &mut |_| {})
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(900));
            drop(lock);
        });
        let mut n = 0;
        let mut speeds = Vec::new();
        // Stall timeout far below the hold time: only progress keeps the waiter going.
        let got = acquire(
            request(&d, &abs, rel, LockMode::Both, Duration::from_millis(250), LONG),
            &mut || {
                n += 1000;
                staged(n)
            },
            &mut |w| speeds.push(w.speed),
        );
        release.join().unwrap();
        assert!(got.is_ok());
    }

    #[test]
    fn fcntl_locks_exclude_other_descriptions_and_none_excludes_nobody() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        let short = Duration::from_millis(200);
        let a = acquire(request(&d, &abs, rel, LockMode::Fcntl, short, LONG), &mut Seen::default, &mut |_| {}).unwrap();
        assert!(a.is_exclusive());
        let err = acquire(request(&d, &abs, rel, LockMode::Fcntl, short, LONG), &mut Seen::default, &mut |_| {}).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
        assert!(try_exclusive(&d, rel, &abs.join(rel), false).unwrap().is_none(), "cleaners see an fcntl holder");
        // flock alone does not see it (that is what `both` is for)...
        assert!(acquire(request(&d, &abs, rel, LockMode::Flock, short, LONG), &mut Seen::default, &mut |_| {}).is_ok());
        // ...and `none` takes nothing and never waits.
        let n = acquire(request(&d, &abs, rel, LockMode::None, short, LONG), &mut Seen::default, &mut |_| {}).unwrap();
        assert!(!n.is_exclusive());
        drop(a);
        let b = acquire(request(&d, &abs, rel, LockMode::Both, short, LONG), &mut Seen::default, &mut |_| {}).unwrap();
        assert!(b.is_exclusive());
    }

    #[test]
    fn a_waiter_stops_waiting_when_the_blob_appears() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        let _held = acquire(request(&d, &abs, rel, LockMode::Flock, LONG, LONG), &mut Seen::default, &mut |_| {}).unwrap();
        let mut polls = 0;
        let got = acquire(
            request(&d, &abs, rel, LockMode::Flock, LONG, LONG),
            &mut || {
                polls += 1;
                Seen { staged: None, published: polls > 3 }
            },
            &mut |_| {},
        )
        .unwrap();
        assert!(!got.is_exclusive(), "no lock, but the caller finds the blob");
    }

    #[test]
    fn a_gone_holder_whose_lock_lingers_is_taken_over_once() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        // Lock state that outlived its holder (as on a network filesystem): an OFD lock
        // held by a description nobody will release, and a record naming a dead process.
        let lingering = open_lock_file(&d, rel, &abs.join(rel)).unwrap();
        assert!(ofd::try_lock(&lingering, ofd::Kind::Exclusive).unwrap());
        let at = || RecordAt { home: d.try_clone().unwrap(), rel: "x.lock.holder".into() };
        let mut dead = Holder::me();
        dead.pid = u32::MAX - 1; // beyond pid_max: never runs
        at().write(&dead).unwrap();

        let lease = Duration::from_millis(200);
        let mut waits = 0;
        let taker =
            acquire(request(&d, &abs, rel, LockMode::Fcntl, LONG, lease), &mut || staged(100), &mut |_| waits += 1).unwrap();
        assert!(waits > 0, "it waited for the lease first");
        assert!(taker.taken_over().is_some_and(|r| r.contains("no longer runs")), "{:?}", taker.taken_over());
        assert_eq!(at().read().unwrap().pid, std::process::id(), "the taker recorded itself");
        // Another waiter now sees a live holder and is not let in.
        let err =
            acquire(request(&d, &abs, rel, LockMode::Fcntl, Duration::from_millis(400), lease), &mut || staged(100), &mut |_| {})
                .unwrap_err();
        assert!(
            matches!(err, Error::LockTimeout { holder: Some(ref h), .. } if h.contains(&std::process::id().to_string())),
            "{err}"
        );
        drop(taker);
        assert_eq!(at().read(), None);
    }

    #[test]
    fn another_machines_holder_is_taken_over_only_once_its_heartbeat_is_older_than_the_lease() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("x.lock");
        let lingering = open_lock_file(&d, rel, &abs.join(rel)).unwrap();
        assert!(ofd::try_lock(&lingering, ofd::Kind::Exclusive).unwrap());
        let at = || RecordAt { home: d.try_clone().unwrap(), rel: "x.lock.holder".into() };
        let remote = Holder { host: "node-elsewhere".into(), ..Holder::me() };
        at().write(&remote).unwrap();
        // Its heartbeat keeps coming for a second (another machine's holder writing),
        // then stops: taken over only a lease after the last beat.
        let beating = {
            let (at, remote) = (at(), remote.clone());
            std::thread::spawn(move || {
                let (start, mut last) = (Instant::now(), Instant::now());
                while start.elapsed() < Duration::from_secs(1) {
                    last = Instant::now();
                    at.write(&Holder { heartbeat: SystemTime::now(), ..remote.clone() }).unwrap();
                    std::thread::sleep(Duration::from_millis(50));
                }
                last
            })
        };
        let lease = Duration::from_millis(300);
        let old = Seen { staged: Some((10, SystemTime::now() - Duration::from_secs(3600))), published: false };
        let mut holders = Vec::new();
        let taker = acquire(request(&d, &abs, rel, LockMode::Both, LONG, lease), &mut || old, &mut |w| {
            holders.push(w.holder.map(str::to_owned));
        })
        .unwrap();
        let taken_at = Instant::now();
        let last_beat = beating.join().unwrap();
        assert!(taken_at >= last_beat + lease, "never while its heartbeat was fresh");
        assert!(holders[0].as_deref().is_some_and(|h| h.ends_with(" on node-elsewhere")), "{holders:?}");
        let why = taker.taken_over().unwrap_or_default();
        assert!(why.contains("on node-elsewhere showed no sign of life"), "{why}");
    }

    #[test]
    fn leases_are_shared_but_exclude_removal() {
        let (_t, d, abs) = dir();
        let rel = Utf8Path::new("leases/r.lock");
        let a = lease(&d, rel, &abs.join(rel)).unwrap();
        let b = lease(&d, rel, &abs.join(rel)).unwrap();
        assert!(try_exclusive(&d, rel, &abs.join(rel), true).unwrap().is_none());
        drop((a, b));
        let held = try_exclusive(&d, rel, &abs.join(rel), true).unwrap();
        assert!(held.is_some());
        // While removal holds it, a lease waits (its OFD part too), then gets it.
        let (d2, abs2) = (d.try_clone().unwrap(), abs.clone());
        let t = std::thread::spawn(move || lease(&d2, Utf8Path::new("leases/r.lock"), &abs2.join("leases/r.lock")).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        drop(held);
        drop(t.join().unwrap());
    }
}
