//! Locks for shared and network filesystems, across processes: `fcntl` (OFD) and `both`
//! modes exclude, a holder proved gone is taken over with its verified prefix reused, a
//! live holder (stopped or slow) is never broken, and racing processes make one transfer.

#![expect(clippy::single_range_in_vec_init, reason = "a staging file's one complete range")]

use std::process::{Child, Command};
use std::time::Duration;

use cache_core::Etag;
use cache_store::{CommitRequest, Error, LockMode, Scope, Store};
use camino::Utf8PathBuf;

use crate::processes::wait_for_line;
use crate::support::*;

const ROOT_ENV: &str = "CACHE_STORE_TEST_ROOT";
const MODE_ENV: &str = "CACHE_STORE_TEST_LOCK_MODE";

fn child_store() -> Store {
    let root = Utf8PathBuf::from(std::env::var(ROOT_ENV).unwrap());
    let mode: LockMode = std::env::var(MODE_ENV).unwrap().parse().unwrap();
    Store::open(config(root).lock_mode(mode).lock_stall_timeout(Duration::from_secs(60))).unwrap()
}

fn spawn(test: &str, role: &str, root: &Utf8PathBuf, mode: LockMode) -> Child {
    spawn_child(&format!("shared_fs::{test}"), role, &[(ROOT_ENV, root.as_str()), (MODE_ENV, mode.name())])
}

fn kill(child: &mut Child, signal: &str) {
    let ok = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill {signal} {}", child.id());
}

/// Deterministic content of `len` bytes.
fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| u8::try_from((i * 131 + usize::from(seed)) % 251).unwrap()).collect()
}

/// A child that takes the lock of `etag` in `MODE`, writes `half` bytes of `content`,
/// records them, says `locked`, and holds the lock until killed.
#[expect(clippy::print_stdout, reason = "the child tells its parent over stdout")]
fn hold_after_writing_half(etag: &Etag, bytes: &[u8], half: usize) {
    let s = child_store();
    let r = repo("shared/fs");
    let lock = s.lock_blob(&r, etag, &mut |_| {}).unwrap();
    let staging = s.stage(&lock, Some(bytes.len() as u64)).unwrap();
    staging.write_at(&bytes[..half], 0).unwrap();
    staging.range_record().unwrap().save(&[0..half as u64]).unwrap();
    println!("locked");
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn fcntl_and_both_modes_exclude_another_process() {
    let bytes = content(10_000, 1);
    let etag = etag_of(&bytes, true);
    if child_role().is_some() {
        return hold_after_writing_half(&etag, &bytes, 4000);
    }
    for mode in [LockMode::Fcntl, LockMode::Both] {
        let t = TestCache::with(|c| c.lock_mode(mode).lock_stall_timeout(Duration::from_millis(400)));
        assert_eq!(t.store.lock_mode(), mode);
        let mut child = spawn("fcntl_and_both_modes_exclude_another_process", "holder", &t.root(), mode);
        wait_for_line(&mut child, "locked");
        let r = repo("shared/fs");
        let mut seen = Vec::new();
        let err =
            t.store.lock_blob(&r, &etag, &mut |w| seen.push((w.holder.map(str::to_owned), w.incomplete_bytes))).unwrap_err();
        let pid = format!("pid {} (", child.id());
        assert!(matches!(&err, Error::LockTimeout { holder: Some(h), .. } if h.starts_with(&pid)), "{mode}: {err}");
        assert!(err.hint().unwrap().contains(&format!("stop pid {} if it hangs", child.id())), "{:?}", err.hint());
        assert_eq!(seen[0].1, Some(4000), "{mode}: the waiter sees how far the holder got");
        kill(&mut child, "-KILL");
        child.wait().unwrap();
        // The kernel released the killed holder's locks: the next one gets them at once
        // and resumes from what the dead holder's range record proves.
        let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        assert!(lock.is_exclusive() && lock.taken_over().is_none());
        let staging = t.store.stage(&lock, Some(bytes.len() as u64)).unwrap();
        assert_eq!(staging.resume_from(), 4000);
    }
}

#[test]
fn a_sigkilled_holder_whose_lock_state_lingers_is_taken_over_and_its_prefix_reused() {
    let bytes = content(300_000, 2);
    let etag = etag_of(&bytes, true);
    if child_role().is_some() {
        return hold_after_writing_half(&etag, &bytes, 120_000);
    }
    let lease = Duration::from_millis(500);
    let t = TestCache::with(|c| c.lock_mode(LockMode::Both).lock_lease(lease).lock_stall_timeout(Duration::from_secs(30)));
    let r = repo("shared/fs");
    let test = "a_sigkilled_holder_whose_lock_state_lingers_is_taken_over_and_its_prefix_reused";
    let mut child = spawn(test, "holder", &t.root(), LockMode::Both);
    wait_for_line(&mut child, "locked");
    let lock_file = t.hub().join(format!(".locks/models--shared--fs/{etag}.lock"));
    // What a network filesystem does when a client dies: its server keeps the byte-range
    // lock until its own lease runs out. Simulated by a description that keeps the OFD
    // lock (taken by Python, which has no dependency on us) after the holder is killed.
    let script = "import fcntl, struct, sys\nf = open(sys.argv[1], 'r+')\n\
                  while True:\n    try:\n        fcntl.fcntl(f, 37, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0)); break\n\
                  \x20   except OSError:\n        pass\nprint('lingering', flush=True)\nsys.stdin.read()\n";
    let mut lingering = Command::new(cache_testkit::python::require_interpreter())
        .args(["-c", script, lock_file.as_str()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    kill(&mut child, "-KILL");
    child.wait().unwrap();
    wait_for_line(&mut lingering, "lingering");
    let record = t
        .root()
        .join("home/hubs")
        .read_dir_utf8()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join(format!("partial/models--shared--fs/{etag}.holder"));
    assert!(
        std::fs::read_to_string(&record).unwrap().contains(&format!("\npid {}\n", child.id())),
        "the dead holder's record stays"
    );

    let mut waits = Vec::new();
    let lock = t.store.lock_blob(&r, &etag, &mut |w| waits.push(w.holder.map(str::to_owned))).unwrap();
    assert!(!waits.is_empty(), "it waited for the lease first");
    assert!(waits[0].as_deref().is_some_and(|h| h.starts_with(&format!("pid {} (", child.id()))), "{waits:?}");
    let why = lock.taken_over().unwrap_or_default();
    assert!(why.contains(&format!("pid {}", child.id())) && why.contains("no longer runs"), "{why}");
    assert!(std::fs::read_to_string(&record).unwrap().contains(&format!("\npid {}\n", std::process::id())));
    let staging = t.store.stage(&lock, Some(bytes.len() as u64)).unwrap();
    assert_eq!(staging.completed_ranges(), [0..120_000], "the verified prefix is adopted");
    staging.write_at(&bytes[120_000..], 120_000).unwrap();
    let req = CommitRequest::new(r.clone(), commit(1), path("w.bin"), etag, bytes.len() as u64).with_ref(rev("main"));
    let found = t.store.commit(staging, &req).unwrap();
    assert_eq!(std::fs::read(found).unwrap(), bytes);
    drop(lock);
    assert!(!record.exists(), "the taker's record goes with its lock");
    drop(lingering.stdin.take());
    lingering.wait().unwrap();
    assert!(t.store.verify(&Scope::All, false).unwrap().is_clean());
}

#[test]
fn a_stopped_holder_is_reported_and_never_broken_while_alive() {
    let bytes = content(50_000, 3);
    let etag = etag_of(&bytes, true);
    if child_role().is_some() {
        return hold_after_writing_half(&etag, &bytes, 10_000);
    }
    let t = TestCache::with(|c| {
        c.lock_mode(LockMode::Both).lock_lease(Duration::from_millis(200)).lock_stall_timeout(Duration::from_millis(1500))
    });
    let mut child = spawn("a_stopped_holder_is_reported_and_never_broken_while_alive", "holder", &t.root(), LockMode::Both);
    wait_for_line(&mut child, "locked");
    kill(&mut child, "-STOP");
    let mut holders = Vec::new();
    let err = t.store.lock_blob(&repo("shared/fs"), &etag, &mut |w| holders.push(w.holder.map(str::to_owned))).unwrap_err();
    let Error::LockTimeout { holder: Some(holder), .. } = &err else { panic!("not taken over, but: {err}") };
    assert!(holder.starts_with(&format!("pid {} (", child.id())) && holder.ends_with(", stopped"), "{holder}");
    assert!(err.to_string().contains(&format!("pid {}", child.id())), "{err}");
    assert!(holders.iter().flatten().any(|h| h.ends_with("stopped")), "reported while waiting: {holders:?}");
    kill(&mut child, "-CONT");
    kill(&mut child, "-KILL");
    child.wait().unwrap();
}

#[test]
fn a_slow_holder_that_keeps_writing_is_never_broken() {
    let bytes = content(4_000, 4);
    let etag = etag_of(&bytes, true);
    let r = repo("shared/fs");
    if child_role().is_some() {
        let s = child_store();
        let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        let staging = s.stage(&lock, Some(bytes.len() as u64)).unwrap();
        println!("locked");
        // 40 pieces, 50 ms apart: 2 s in all, ten times the lease.
        for (i, piece) in bytes.chunks(100).enumerate() {
            staging.write_at(piece, (i * 100) as u64).unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
        let req = CommitRequest::new(r.clone(), commit(1), path("slow.bin"), etag, bytes.len() as u64);
        s.commit(staging, &req).unwrap();
        return;
    }
    let t = TestCache::with(|c| {
        c.lock_mode(LockMode::Fcntl).lock_lease(Duration::from_millis(200)).lock_stall_timeout(Duration::from_millis(800))
    });
    let mut child = spawn("a_slow_holder_that_keeps_writing_is_never_broken", "holder", &t.root(), LockMode::Fcntl);
    wait_for_line(&mut child, "locked");
    let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    assert!(lock.taken_over().is_none(), "waited for the holder: {:?}", lock.taken_over());
    assert!(child.wait().unwrap().success());
    assert!(t.store.has_blob(&r, &etag).unwrap(), "the holder finished; the waiter finds its blob");
}

/// Processes racing for one blob with random timing, in a random lock mode that takes an
/// exclusive lock: exactly one transfers, the others find its blob; every round.
#[test]
fn racing_processes_make_one_transfer_and_a_correct_blob_in_every_round() {
    let bytes = content(200_000, 5);
    let etag = etag_of(&bytes, true);
    let r = repo("shared/fs");
    if let Some(role) = child_role() {
        let seed: u64 = role.trim_start_matches("racer").parse().unwrap();
        let mut rng = fastrand::Rng::with_seed(seed);
        let s = child_store();
        std::thread::sleep(Duration::from_millis(rng.u64(0..60)));
        if !s.has_blob(&r, &etag).unwrap() {
            let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
            if !s.has_blob(&r, &etag).unwrap() {
                println!("transfer");
                let staging = s.stage(&lock, Some(bytes.len() as u64)).unwrap();
                for (i, piece) in bytes.chunks(20_000).enumerate() {
                    staging.write_at(piece, (i * 20_000) as u64).unwrap();
                    std::thread::sleep(Duration::from_millis(rng.u64(0..8)));
                }
                let req = CommitRequest::new(r.clone(), commit(1), path("race.bin"), etag, bytes.len() as u64);
                s.commit(staging, &req).unwrap();
            }
        }
        println!("done");
        return;
    }
    let mut rng = fastrand::Rng::with_seed(15);
    for round in 0..8u64 {
        let mode = [LockMode::Flock, LockMode::Fcntl, LockMode::Both][rng.usize(0..3)];
        let tmp = tempfile::tempdir().unwrap();
        let root = root(&tmp);
        let test = "racing_processes_make_one_transfer_and_a_correct_blob_in_every_round";
        let children: Vec<Child> = (0..4).map(|i| spawn(test, &format!("racer{}", round * 10 + i), &root, mode)).collect();
        let mut transfers = 0;
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round} ({mode})");
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("done"), "{text}");
            transfers += text.lines().filter(|l| l.ends_with("transfer")).count();
        }
        assert_eq!(transfers, 1, "round {round} ({mode}): one transfer");
        let s = Store::open(config(root)).unwrap();
        let blob = s.hub_dir().join(format!("models--shared--fs/blobs/{etag}"));
        assert_eq!(std::fs::read(blob).unwrap(), bytes, "round {round} ({mode})");
        assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    }
}

/// `lock_mode = none`: eight processes write one blob at once; duplicate transfers are
/// allowed, a wrong or torn blob is not.
#[test]
fn with_no_locks_eight_processes_still_publish_one_correct_blob() {
    let bytes = content(300_000, 6);
    let etag = etag_of(&bytes, true);
    let r = repo("shared/fs");
    if child_role().is_some() {
        let s = child_store();
        let lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        assert!(!lock.is_exclusive(), "none takes no lock");
        if !s.has_blob(&r, &etag).unwrap() {
            let staging = s.stage(&lock, Some(bytes.len() as u64)).unwrap();
            for (i, piece) in bytes.chunks(30_000).enumerate() {
                staging.write_at(piece, (i * 30_000) as u64).unwrap();
            }
            let req = CommitRequest::new(r.clone(), commit(1), path("none.bin"), etag, bytes.len() as u64);
            // Another writer may have renamed the shared staging file under us: then the
            // blob is there (same digest, same bytes) or this commit fails and says why.
            match s.commit(staging, &req) {
                Ok(_) => println!("committed"),
                Err(e) => println!("lost the race: {e}"),
            }
        }
        println!("done");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = root(&tmp);
    let test = "with_no_locks_eight_processes_still_publish_one_correct_blob";
    let children: Vec<Child> = (0..8).map(|i| spawn(test, &format!("writer{i}"), &root, LockMode::None)).collect();
    let mut committed = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        committed += String::from_utf8(out.stdout).unwrap().lines().filter(|l| l.ends_with("committed")).count();
    }
    assert!(committed >= 1, "at least one writer published");
    let s = Store::open(config(root)).unwrap();
    assert_eq!(std::fs::read(s.hub_dir().join(format!("models--shared--fs/blobs/{etag}"))).unwrap(), bytes);
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
}

#[test]
fn a_dead_holders_record_is_cleaned_while_a_live_ones_is_kept() {
    let bytes = content(8_000, 7);
    let etag = etag_of(&bytes, true);
    if child_role().is_some() {
        return hold_after_writing_half(&etag, &bytes, 1000);
    }
    let t = TestCache::with(|c| c.lock_mode(LockMode::Both));
    let test = "a_dead_holders_record_is_cleaned_while_a_live_ones_is_kept";
    let mut child = spawn(test, "holder", &t.root(), LockMode::Both);
    wait_for_line(&mut child, "locked");
    let records =
        t.root().join("home/hubs").read_dir_utf8().unwrap().next().unwrap().unwrap().path().join("partial/models--shared--fs");
    let record = records.join(format!("{etag}.holder"));
    t.store.clean_stale(Duration::from_secs(3600)).unwrap();
    assert!(record.exists(), "a live holder keeps its record");
    kill(&mut child, "-KILL");
    child.wait().unwrap();
    assert!(record.exists(), "a killed holder leaves it behind");
    t.store.clean_stale(Duration::from_secs(3600)).unwrap();
    assert!(!record.exists(), "cleaned once its lock is free");
    assert!(records.join(format!("{etag}.ranges")).exists(), "the partial's range record stays with its recent partial");
}

#[test]
fn a_holder_keeps_a_record_only_where_its_lock_can_outlive_it_and_waiters_still_name_it() {
    let bytes = content(4_000, 9);
    let etag = etag_of(&bytes, true);
    let r = repo("shared/fs");
    for (mode, keeps) in [(LockMode::Flock, false), (LockMode::Fcntl, true), (LockMode::Both, true)] {
        let t = TestCache::with(|c| c.lock_mode(mode));
        let lock = t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        let hubs = t.root().join("home/hubs").read_dir_utf8().unwrap().next().unwrap().unwrap().path().to_owned();
        let record = hubs.join(format!("partial/models--shared--fs/{etag}.holder"));
        assert_eq!(record.exists(), keeps, "{mode:?}: a holder record");
        if mode == LockMode::Flock {
            // No record on a local filesystem: the kernel's lock table names the holder.
            let other = Store::open(t.store.config().clone().lock_stall_timeout(Duration::from_millis(300))).unwrap();
            let mut seen = Vec::new();
            let err = other.lock_blob(&r, &etag, &mut |w| seen.push(w.holder.map(str::to_owned))).unwrap_err();
            assert!(matches!(err, Error::LockTimeout { .. }), "{err}");
            let me = format!("pid {} (", std::process::id());
            assert!(seen.iter().flatten().any(|h| h.starts_with(&me)), "the waiter named the holder: {seen:?}");
        }
        drop(lock);
        assert!(!record.exists(), "{mode:?}: no record is left once the lock is released");
    }
}
