//! Several processes on one cache: crashes (SIGKILL), concurrent writers, dead lock
//! holders, readers holding leases, and writers whose locks do not work.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::time::Duration;

use cache_core::{EvictionPolicy, Timestamp};
use cache_store::{CommitRequest, Error, Scope, Store};
use camino::Utf8PathBuf;

use crate::support::*;

const ROOT_ENV: &str = "CACHE_STORE_TEST_ROOT";

fn child_store() -> Store {
    let root = Utf8PathBuf::from(std::env::var(ROOT_ENV).unwrap());
    Store::open(config(root).lock_stall_timeout(Duration::from_secs(30))).unwrap()
}

pub(crate) fn wait_for_line(child: &mut Child, want: &str) {
    let out = child.stdout.as_mut().unwrap();
    let mut line = String::new();
    let mut reader = BufReader::new(out);
    loop {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "child exited before printing {want:?}");
        if line.trim_end().ends_with(want) {
            return;
        }
    }
}

/// Deterministic content for file `i` (sizes from 1 byte to ~300 KB).
fn content(i: u64) -> Vec<u8> {
    let len = usize::try_from(1 + (i * 7919) % 300_000).unwrap();
    (0..len).map(|j| u8::try_from((j as u64 * 31 + i) % 256).unwrap()).collect()
}

#[test]
fn sigkill_at_random_moments_never_leaves_a_wrong_committed_file() {
    if child_role().as_deref() == Some("committer") {
        let s = child_store();
        let r = repo("crash/test");
        let round: u32 = std::env::var("ROUND").unwrap().parse().unwrap();
        for i in 0..10_000u64 {
            let bytes = content(u64::from(round) * 1000 + i);
            let req = CommitRequest::new(
                r.clone(),
                commit(round),
                path(&format!("d/{i}.bin")),
                etag_of(&bytes, i % 2 == 0),
                bytes.len() as u64,
            )
            .with_ref(rev("main"));
            let lock = s.lock_blob(&r, &req.etag, &mut |_| {}).unwrap();
            let staging = s.stage(&lock, Some(bytes.len() as u64)).unwrap();
            let from = usize::try_from(staging.resume_from()).unwrap().min(bytes.len());
            // Write in pieces so a kill can land mid-transfer.
            for (k, chunk) in bytes[from..].chunks(16 * 1024).enumerate() {
                staging.write_at(chunk, (from + k * 16 * 1024) as u64).unwrap();
            }
            s.commit(staging, &req).unwrap();
            if i % 5 == 0 {
                s.flush().unwrap();
            }
        }
        return;
    }
    let t = TestCache::new();
    let root = t.root();
    drop(t.store);
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..20u32 {
        let mut child = spawn_child(
            "processes::sigkill_at_random_moments_never_leaves_a_wrong_committed_file",
            "committer",
            &[(ROOT_ENV, root.as_str()), ("ROUND", &round.to_string())],
        );
        std::thread::sleep(Duration::from_millis(rng.u64(20..150)));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let s = Store::open(config(root.clone())).unwrap();
    s.reconcile().unwrap();
    let report = s.verify(&Scope::All, false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.valid > 0, "the children committed nothing");
    // Every committed file has exactly the intended content.
    let r = repo("crash/test");
    for listing in s.list().unwrap() {
        for revision in &listing.revisions {
            for f in &revision.files {
                let round: u64 = u64::from_str_radix(&revision.commit.as_str()[32..], 16).unwrap();
                let i: u64 = f.path.file_name().trim_end_matches(".bin").parse().unwrap();
                let found = s.find(&r, &rev(revision.commit.as_str()), &f.path).unwrap().unwrap();
                assert_eq!(std::fs::read(found).unwrap(), content(round * 1000 + i));
            }
        }
    }
    // Leftovers are resumable (their size is reported) or cleaned.
    let leftovers: Vec<_> = s.list().unwrap().into_iter().flat_map(|l| l.incomplete).collect();
    for inc in &leftovers {
        assert_eq!(std::fs::metadata(&inc.path).unwrap().len(), inc.size);
    }
    let cleaned = s.clean_stale(Duration::ZERO).unwrap();
    assert_eq!(cleaned.incomplete_removed, leftovers.len() as u64);
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    assert_eq!(s.reconcile().unwrap(), cache_store::ReconcileReport::default());
    crate::python::scan_clean(&root.join("hub"));
}

#[test]
fn processes_committing_looking_up_and_evicting_together_lose_no_update() {
    const FILES: u32 = 20;
    if let Some(role) = child_role() {
        let s = child_store();
        let r = repo("multi/shared");
        let worker: u32 = role.trim_start_matches("worker").parse().unwrap();
        for i in 0..FILES {
            // Half the content is shared between workers: they contend for the same blob locks.
            let bytes = if i % 2 == 0 { content(u64::from(i)) } else { content(u64::from(worker * 100 + i)) };
            let req = CommitRequest::new(
                r.clone(),
                commit(worker + 1),
                path(&format!("{i}.bin")),
                etag_of(&bytes, true),
                bytes.len() as u64,
            );
            put_req(&s, req, &bytes);
            assert!(s.find(&r, &rev(commit(worker + 1).as_str()), &path(&format!("{i}.bin"))).unwrap().is_some());
            if i % 4 == 0 {
                // Everything is recently used: eviction must plan, lock and skip, never fail.
                let report =
                    s.evict(&EvictionPolicy { max_size: Some(0), ..EvictionPolicy::default() }, Timestamp::now()).unwrap();
                assert!(report.evicted.is_empty());
            }
        }
        return;
    }
    let t = TestCache::new();
    let root = t.root();
    let children: Vec<Child> = (0..3)
        .map(|w| {
            spawn_child(
                "processes::processes_committing_looking_up_and_evicting_together_lose_no_update",
                &format!("worker{w}"),
                &[(ROOT_ENV, root.as_str())],
            )
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let st = t.store.stats().unwrap();
    assert_eq!(st.files, 3 * u64::from(FILES), "every commit reached the index");
    assert_eq!(st.counters.hits, 3 * u64::from(FILES), "every hit was counted");
    let distinct_blobs = u64::from(FILES) / 2 + 3 * u64::from(FILES) / 2;
    assert_eq!(st.counters.downloads, distinct_blobs, "each blob was transferred once");
    assert_eq!(t.store.reconcile().unwrap(), cache_store::ReconcileReport::default(), "the index agrees with the disk");
    assert!(t.store.verify(&Scope::All, false).unwrap().is_clean());
}

#[test]
fn the_os_releases_the_lock_of_a_killed_holder() {
    let r = repo("dead/holder");
    let etag = etag_of(b"content", true);
    if child_role().as_deref() == Some("holder") {
        let s = child_store();
        let _lock = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
        println!("locked");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let t = TestCache::with(|c| c.lock_stall_timeout(Duration::from_millis(300)));
    let mut child =
        spawn_child("processes::the_os_releases_the_lock_of_a_killed_holder", "holder", &[(ROOT_ENV, t.root().as_str())]);
    wait_for_line(&mut child, "locked");
    let mut holders = Vec::new();
    let err = t.store.lock_blob(&r, &etag, &mut |w| holders.push(w.holder.map(str::to_owned))).unwrap_err();
    assert!(
        matches!(&err, Error::LockTimeout { lock_file, .. } if lock_file.as_str().ends_with(&format!(".locks/models--dead--holder/{etag}.lock"))),
        "{err}"
    );
    let holder = holders[0].clone().unwrap_or_default();
    assert!(holder.starts_with(&format!("pid {} (", child.id())), "the waiter names the holder: {holder}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(t.store.lock_blob(&r, &etag, &mut |_| {}).unwrap().is_exclusive());
}

#[test]
fn a_reader_in_another_process_keeps_its_repo_from_removal() {
    let r = repo("busy/reader");
    if child_role().as_deref() == Some("reader") {
        let s = child_store();
        let _lease = s.lease(&r).unwrap();
        assert!(s.find(&r, &rev("main"), &path("f")).unwrap().is_some());
        println!("leased");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let t = TestCache::new();
    let req = CommitRequest::new(r.clone(), commit(1), path("f"), etag_of(b"data", true), 4).with_ref(rev("main"));
    put_req(&t.store, req, b"data");
    put(&t.store, &repo("idle/repo"), commit(2), "g", b"other");
    let mut child = spawn_child(
        "processes::a_reader_in_another_process_keeps_its_repo_from_removal",
        "reader",
        &[(ROOT_ENV, t.root().as_str())],
    );
    wait_for_line(&mut child, "leased");
    let s = &t.store;
    assert!(matches!(s.remove(&Scope::Repo(r.clone())), Err(Error::InUse { .. })));
    let policy = EvictionPolicy { max_size: Some(0), in_use_grace: Duration::ZERO, ..EvictionPolicy::default() };
    let report = s.evict(&policy, Timestamp::now()).unwrap();
    assert_eq!(report.skipped_in_use.len(), 1);
    assert_eq!(report.evicted.len(), 1, "the idle repo goes");
    let cleared = s.clear().unwrap();
    assert_eq!(cleared.skipped_in_use, [r.to_string()]);
    assert!(s.is_cached(&r, &rev("main"), &path("f")).unwrap());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(s.remove(&Scope::Repo(r.clone())).unwrap().entries, 1);
    assert!(!s.is_cached(&r, &rev("main"), &path("f")).unwrap());
}

#[test]
fn writers_whose_locks_do_nothing_still_cannot_publish_a_wrong_blob() {
    let t = TestCache::new();
    let s = &t.store;
    let r = repo("nfs/like");
    let good = content(42);
    let etag = etag_of(&good, true);
    let req = CommitRequest::new(r.clone(), commit(1), path("w.bin"), etag, good.len() as u64);
    let lock_a = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let a = s.stage(&lock_a, None).unwrap();
    a.write_at(&good[..1000], 0).unwrap();
    // Writer B's lock "succeeds" too: simulate a filesystem where flock is a no-op by
    // replacing the lock file, so B locks another inode.
    std::fs::remove_file(lock_a.lock_file()).unwrap();
    let lock_b = s.lock_blob(&r, &etag, &mut |_| {}).unwrap();
    let b = s.stage(&lock_b, None).unwrap();
    assert_eq!(b.resume_from(), 1000, "both write into the same .incomplete");
    b.write_at(&vec![0xEE; good.len()], 0).unwrap();
    a.write_at(&good[1000..], 1000).unwrap();
    assert!(matches!(s.commit(a, &req), Err(Error::ChecksumMismatch { .. })));
    assert!(matches!(s.commit(b, &req), Err(Error::InvalidRequest { .. } | Error::ChecksumMismatch { .. } | Error::Io { .. })));
    assert!(!s.has_blob(&r, &etag).unwrap(), "no wrong blob was published");
    // Both writing the right bytes: both commits succeed and the blob is right.
    let a = s.stage(&lock_a, None).unwrap();
    let b = s.stage(&lock_b, None).unwrap();
    a.file().set_len(0).unwrap();
    a.write_at(&good, 0).unwrap();
    b.write_at(&good, 0).unwrap();
    s.commit(a, &req).unwrap();
    assert!(matches!(s.commit(b, &req), Ok(_) | Err(Error::Io { .. })));
    assert!(s.verify(&Scope::All, false).unwrap().is_clean());
    assert_eq!(std::fs::read(s.find(&r, &rev(commit(1).as_str()), &path("w.bin")).unwrap().unwrap()).unwrap(), good);
}

#[test]
fn processes_opening_a_fresh_cache_at_once_all_succeed() {
    if child_role().as_deref() == Some("opener") {
        let root = Utf8PathBuf::from(std::env::var(ROOT_ENV).unwrap());
        while !root.join("go").exists() {
            std::thread::yield_now();
        }
        let s = child_store();
        assert_eq!(s.stats().unwrap().files, 0);
        println!("opened");
        return;
    }
    // Eight CI jobs starting on a machine whose cache does not exist yet.
    for _ in 0..4 {
        let tmp = tempfile::tempdir().unwrap();
        let root = root(&tmp);
        let mut children: Vec<Child> = (0..8)
            .map(|_| {
                spawn_child(
                    "processes::processes_opening_a_fresh_cache_at_once_all_succeed",
                    "opener",
                    &[(ROOT_ENV, root.as_str())],
                )
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        std::fs::write(root.join("go"), b"").unwrap();
        for child in &mut children {
            wait_for_line(child, "opened");
            assert!(child.wait().unwrap().success());
        }
    }
}
