//! Holder records: who holds a blob lock, written next to the staging data's range record
//! in the home, so a waiter can say who it waits for and, on a network filesystem where a
//! crashed machine's lock can outlive it, prove that holder gone and take over.
//!
//! # Location and format
//! `<home>/hubs/<key>/partial/<repo-folder>/<etag>.holder` (artifacts:
//! `<home>/artifacts/partial/<id>.holder`), replaced atomically (temporary file, rename):
//! ```text
//! modelcache-holder 1
//! host node-17                 the kernel's host name
//! pid 4242
//! boot 5f2c…                   /proc/sys/kernel/random/boot_id, or -
//! start 81234567               the process's start (clock ticks after boot), or -
//! program modelcache
//! since 1764871234123          when it took the lock (Unix ms)
//! heartbeat 1764871299456      refreshed, at most once a second, as its transfer writes
//! ```
//! The holder removes its record when it releases the lock. A record left behind by a
//! crash is replaced by the next holder.
//!
//! # Proof that a holder is gone
//! - Same host (host name and boot id match): its pid no longer runs, or runs another
//!   process (a different start time: the pid was reused).
//! - Same host name, another boot id: the machine rebooted since.
//! - Another host: neither its heartbeat nor its `.incomplete` file's modification time
//!   moved within the lease (clocks of the machines are assumed to agree within seconds).
//!
//! A live holder on this host is never declared gone, stopped (`SIGSTOP`) or not: it is
//! reported, and a waiter gives up after `lock_stall_timeout` naming its pid.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::fsx;
use crate::record::boot_id;

const MAGIC: &str = "modelcache-holder 1";
/// Suffix of holder records.
pub(crate) const SUFFIX: &str = ".holder";

/// Who holds (or held) a blob lock, as its record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The machine's host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The machine's boot id when it took the lock.
    pub boot: Option<String>,
    /// When its process started (clock ticks after boot), to tell a reused pid apart.
    pub start: Option<u64>,
    /// Its program name (`modelcache`, `python3`).
    pub program: String,
    /// When it took the lock.
    pub since: SystemTime,
    /// When it last showed it was alive.
    pub heartbeat: SystemTime,
}

impl Holder {
    /// This process, now.
    pub(crate) fn me() -> Holder {
        let now = now_ms();
        let pid = std::process::id();
        Holder {
            host: host_name().to_owned(),
            pid,
            boot: boot_id().map(str::to_owned),
            start: my_start(),
            program: program_name().to_owned(),
            since: now,
            heartbeat: now,
        }
    }

    /// `pid 4242 (modelcache)`, with `on node-17` when it is another machine's.
    pub fn describe(&self) -> String {
        let on = if self.host == host_name() { String::new() } else { format!(" on {}", self.host) };
        format!("pid {} ({}){on}", self.pid, self.program)
    }

    fn same_holder(&self, other: &Holder) -> bool {
        (self.host.as_str(), self.pid, self.since) == (other.host.as_str(), other.pid, other.since)
    }

    pub(crate) fn encode(&self) -> String {
        let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let mut s = String::new();
        let _ = writeln!(s, "{MAGIC}\nhost {}\npid {}", one_line(&self.host), self.pid);
        let _ = writeln!(s, "boot {}", self.boot.as_deref().unwrap_or("-"));
        let _ = writeln!(s, "start {}", self.start.map_or_else(|| "-".to_owned(), |t| t.to_string()));
        let _ = writeln!(s, "program {}", one_line(&self.program));
        let _ = writeln!(s, "since {}\nheartbeat {}", ms(self.since), ms(self.heartbeat));
        s
    }

    pub(crate) fn decode(text: &str) -> Option<Holder> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned);
        let host = field("host")?;
        let pid = field("pid")?.parse().ok()?;
        let boot = field("boot").filter(|b| b != "-");
        let start = match field("start")?.as_str() {
            "-" => None,
            t => Some(t.parse().ok()?),
        };
        let program = field("program")?;
        let at = |ms: String| ms.parse::<u64>().ok().map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        let since = at(field("since")?)?;
        let heartbeat = at(field("heartbeat")?)?;
        Some(Holder { host, pid, boot, start, program, since, heartbeat })
    }
}

/// Now, to the millisecond the record keeps.
fn now_ms() -> SystemTime {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

fn one_line(s: &str) -> String {
    let s: String = s.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.is_empty() { "-".to_owned() } else { s }
}

/// This machine's host name, read once (`unknown` where it cannot be read).
pub(crate) fn host_name() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let name = one_line(name.trim());
        if name == "-" { "unknown".to_owned() } else { name }
    })
}

/// This process's name, read once (a snapshot takes a lock per file).
fn program_name() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let comm = comm.trim();
        if comm.is_empty() {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "unknown".to_owned())
        } else {
            comm.to_owned()
        }
    })
}

/// This process's start time, read once (again in a forked child).
fn my_start() -> Option<u64> {
    static START: OnceLock<(u32, Option<u64>)> = OnceLock::new();
    let pid = std::process::id();
    let read = || process(pid).map(|p| p.start);
    match START.get_or_init(|| (pid, read())) {
        &(p, start) if p == pid => start,
        _ => read(),
    }
}

/// A running process, as `/proc/<pid>/stat` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Process {
    /// Clock ticks after boot when it started.
    pub(crate) start: u64,
    /// Stopped by a signal or a tracer (`T`, `t`).
    pub(crate) stopped: bool,
}

/// Parses `/proc/<pid>/stat`: `pid (comm) state ppid …`, field 22 the start time.
pub(crate) fn parse_stat(stat: &str) -> Option<Process> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    // After the state come fields 4..; the start time is field 22 overall.
    let start = f.nth(18)?.parse().ok()?;
    Some(Process { start, stopped: matches!(state, "T" | "t") })
}

/// The process `pid` on this machine, `None` when none runs (or a zombie waits to be reaped).
pub(crate) fn process(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let state = stat.get(stat.rfind(')')? + 2..)?.chars().next()?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    parse_stat(&stat)
}

/// What a waiter can tell about a holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It runs on this machine (`stopped` when a signal stopped it).
    Alive { stopped: bool },
    /// It is gone, for this reason.
    Gone(String),
    /// Another machine's holder that showed life within the lease.
    Recent,
}

/// Judges `holder` (see the module docs): `last_sign` is the latest of its heartbeat and
/// its staging file's modification time, `process` looks a pid up on this machine.
pub(crate) fn judge(
    holder: &Holder,
    last_sign: SystemTime,
    now: SystemTime,
    lease: Duration,
    process: &dyn Fn(u32) -> Option<Process>,
) -> Verdict {
    if holder.host == host_name() {
        match (holder.boot.as_deref(), boot_id()) {
            (Some(theirs), Some(ours)) if theirs != ours => {
                return Verdict::Gone(format!("{} ran before this machine rebooted", holder.describe()));
            }
            _ => {}
        }
        return match process(holder.pid) {
            None => Verdict::Gone(format!("{} no longer runs", holder.describe())),
            Some(p) if holder.start.is_some_and(|s| s != p.start) => {
                Verdict::Gone(format!("{} no longer runs (its pid is another process now)", holder.describe()))
            }
            Some(p) => Verdict::Alive { stopped: p.stopped },
        };
    }
    let silent = now.duration_since(last_sign).unwrap_or_default();
    if silent > lease {
        Verdict::Gone(format!("{} showed no sign of life for {}s", holder.describe(), silent.as_secs()))
    } else {
        Verdict::Recent
    }
}

/// Where a lock's holder record lives.
pub(crate) struct RecordAt {
    pub(crate) home: Dir,
    pub(crate) rel: Utf8PathBuf,
}

impl RecordAt {
    pub(crate) fn read(&self) -> Option<Holder> {
        Holder::decode(&self.home.read_to_string(&self.rel).ok()?)
    }

    pub(crate) fn write(&self, holder: &Holder) -> std::io::Result<()> {
        let parent = self.rel.parent().unwrap_or(Utf8Path::new(""));
        fsx::replace(&self.home, parent, &self.rel, holder.encode().as_bytes(), false)
    }

    /// Claims the takeover of `stale` (see [`crate::lock`]): only one waiter creates the
    /// claim file for a given record. Returns its path.
    pub(crate) fn claim(&self, stale: &Holder) -> std::io::Result<Option<Utf8PathBuf>> {
        let tag = blake3::hash(stale.encode().as_bytes()).to_hex();
        let rel = Utf8PathBuf::from(format!("{}.claim-{}", self.rel, &tag[..16]));
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        match self.home.open_with(&rel, &o) {
            Ok(_) => Ok(Some(rel)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// This process's record of a lock it holds: refreshed as its transfer writes, removed
/// (when still its own) with the lock.
pub(crate) struct Heartbeat {
    at: RecordAt,
    me: Mutex<(Holder, Instant)>,
    claim: Option<Utf8PathBuf>,
}

/// How often a holder refreshes its record at most.
const BEAT_EVERY: Duration = Duration::from_secs(1);

impl Heartbeat {
    /// Writes this process's record (a failure only costs the waiters' explanation).
    pub(crate) fn start(at: RecordAt, claim: Option<Utf8PathBuf>) -> Heartbeat {
        let me = Holder::me();
        if let Err(e) = at.write(&me) {
            tracing::debug!(record = %at.rel, "cannot write a holder record: {e}");
        }
        Heartbeat { at, me: Mutex::new((me, Instant::now())), claim }
    }

    /// Shows that the holder is alive (at most once per second).
    pub(crate) fn beat(&self) {
        let mut g = self.me.lock().unwrap_or_else(PoisonError::into_inner);
        if g.1.elapsed() < BEAT_EVERY {
            return;
        }
        g.0.heartbeat = now_ms();
        g.1 = Instant::now();
        let _ = self.at.write(&g.0);
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        let me = &self.me.lock().unwrap_or_else(PoisonError::into_inner).0;
        if self.at.read().is_some_and(|h| h.same_holder(me)) {
            let _ = fsx::remove_file_if_exists(&self.at.home, &self.at.rel);
        }
        if let Some(claim) = &self.claim {
            let _ = fsx::remove_file_if_exists(&self.at.home, claim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(host: &str, pid: u32) -> Holder {
        Holder {
            host: host.to_owned(),
            pid,
            boot: boot_id().map(str::to_owned),
            start: Some(7),
            program: "modelcache".to_owned(),
            since: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            heartbeat: UNIX_EPOCH + Duration::from_millis(1_700_000_005_456),
        }
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let h = holder("node-1", 42);
        assert_eq!(Holder::decode(&h.encode()), Some(h.clone()));
        let odd = Holder { program: "a\nb".into(), boot: None, start: None, ..h };
        let back = Holder::decode(&odd.encode()).unwrap();
        assert_eq!((back.program.as_str(), back.boot, back.start), ("a?b", None, None));
        assert_eq!(Holder::decode("modelcache-holder 1\nhost x\npid nope\n"), None);
        assert_eq!(Holder::decode(""), None);
        assert!(Holder::me().encode().starts_with(MAGIC));
    }

    #[test]
    fn proc_stat_gives_the_start_time_and_whether_stopped() {
        let stat = "4242 (my (odd) prog) T 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 81234567 1000 100";
        assert_eq!(parse_stat(stat), Some(Process { start: 81_234_567, stopped: true }));
        let me = process(std::process::id()).unwrap();
        assert!(!me.stopped);
        assert_eq!(Holder::me().start, Some(me.start));
    }

    #[test]
    fn a_holder_is_gone_only_when_that_can_be_proved() {
        let now = SystemTime::now();
        let lease = Duration::from_secs(60);
        let local = Holder { host: host_name().to_owned(), ..holder("", 42) };
        let running = |_: u32| Some(Process { start: 7, stopped: false });
        let stopped = |_: u32| Some(Process { start: 7, stopped: true });
        let reused = |_: u32| Some(Process { start: 8, stopped: false });
        let dead = |_: u32| None;
        // Same machine: the process table decides, however old the heartbeat.
        let old = now - Duration::from_secs(3600);
        assert_eq!(judge(&local, old, now, lease, &running), Verdict::Alive { stopped: false });
        assert_eq!(judge(&local, old, now, lease, &stopped), Verdict::Alive { stopped: true });
        assert!(matches!(judge(&local, now, now, lease, &dead), Verdict::Gone(r) if r.contains("no longer runs")));
        assert!(matches!(judge(&local, now, now, lease, &reused), Verdict::Gone(r) if r.contains("another process")));
        if boot_id().is_some() {
            let rebooted = Holder { boot: Some("00000000-0000-0000-0000-000000000000".into()), ..local.clone() };
            assert!(matches!(judge(&rebooted, now, now, lease, &running), Verdict::Gone(r) if r.contains("rebooted")));
        }
        // Another machine: only the age of its last sign of life.
        let remote = holder("node-elsewhere", 42);
        assert_eq!(judge(&remote, now - Duration::from_secs(30), now, lease, &dead), Verdict::Recent);
        assert!(matches!(
            judge(&remote, now - Duration::from_secs(90), now, lease, &running),
            Verdict::Gone(r) if r.contains("on node-elsewhere showed no sign of life for 90s")
        ));
    }

    #[test]
    fn one_waiter_claims_a_stale_record_and_the_holder_cleans_up() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let at = || RecordAt { home: home.try_clone().unwrap(), rel: "partial/r/x.holder".into() };
        let stale = holder("node-gone", 1);
        at().write(&stale).unwrap();
        assert_eq!(at().read(), Some(stale.clone()));
        let claim = at().claim(&stale).unwrap().unwrap();
        assert_eq!(at().claim(&stale).unwrap(), None, "a second waiter loses the claim");
        let beat = Heartbeat::start(at(), Some(claim.clone()));
        assert_eq!(at().read().unwrap().pid, std::process::id());
        drop(beat);
        assert_eq!(at().read(), None, "the record goes with the lock");
        assert!(!home.exists(&claim), "and so does the claim");
    }
}
