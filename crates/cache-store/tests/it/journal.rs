//! The usage journal: hits append their uses to a small file, and every reader of last
//! uses or counters (entries for eviction, stats, listings) merges it first — racing
//! processes lose no hit and count none twice.

use std::process::Child;
use std::time::Duration;

use cache_core::{EvictionPolicy, Timestamp};
use cache_store::Store;
use camino::Utf8PathBuf;

use crate::support::{TestCache, child_role, commit, config, path, put, repo, rev, spawn_child};

const ROOT_ENV: &str = "CACHE_STORE_TEST_ROOT";

/// The journal files under the home (one per index that was written to).
fn journal_bytes(t: &TestCache) -> u64 {
    let hubs = t.root().join("home/hubs");
    std::fs::read_dir(&hubs)
        .unwrap()
        .filter_map(|e| std::fs::metadata(e.unwrap().path().join("uses.log")).ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn a_hit_is_journaled_and_eviction_and_stats_see_it() {
    let mut t = TestCache::new();
    let r = repo("a/b");
    put(&t.store, &r, commit(1), "f", b"data");
    t.reopen();
    let before = t.store.entries().unwrap()[0].last_used;
    // The commit falls out of the grace period below; only the hit can protect the file.
    std::thread::sleep(Duration::from_millis(600));
    let hit_at = Timestamp::now();
    assert!(t.store.find(&r, &rev(commit(1).as_str()), &path("f")).unwrap().is_some());
    t.reopen();
    assert!(journal_bytes(&t) > 0, "the hit went to the journal");
    // Eviction plans from entries: the use recorded by the closed store protects the file.
    let uses = t.store.entries().unwrap();
    assert!(uses[0].last_used >= hit_at && uses[0].last_used > before, "{:?} vs {hit_at:?}", uses[0].last_used);
    let policy = EvictionPolicy { max_size: Some(0), in_use_grace: Duration::from_millis(300), ..EvictionPolicy::default() };
    let report = t.store.evict(&policy, Timestamp::now()).unwrap();
    assert!(report.evicted.is_empty(), "used within the grace period: {:?}", report.evicted);
    assert_eq!(journal_bytes(&t), 0, "merged once, then emptied");
    t.reopen();
    assert_eq!(t.store.stats().unwrap().counters.hits, 1, "counted once across merges and reopenings");
}

fn child_store() -> Store {
    let root = Utf8PathBuf::from(std::env::var(ROOT_ENV).unwrap());
    Store::open(config(root)).unwrap()
}

#[test]
fn processes_hitting_while_others_merge_lose_no_hit_and_count_none_twice() {
    const ROUNDS: u64 = 40;
    const WORKERS: u64 = 3;
    let r = repo("hot/repo");
    if let Some(role) = child_role() {
        for _ in 0..ROUNDS {
            // A whole "process" per hit: open, look up, close (the close appends).
            let s = child_store();
            assert!(s.find(&r, &rev("main"), &path("f")).unwrap().is_some());
            drop(s);
            if role == "merger" {
                // Reading the counters merges: racing the appenders.
                child_store().stats().unwrap();
            }
        }
        return;
    }
    let t = TestCache::new();
    let root = t.root();
    let c = commit(1);
    put(&t.store, &r, c, "f", b"hot bytes");
    t.store.write_ref(&r, &rev("main"), &c).unwrap();
    let roles = (0..WORKERS).map(|i| if i == 0 { "merger".to_owned() } else { format!("worker{i}") });
    let mut children: Vec<Child> = roles
        .map(|role| {
            spawn_child(
                "journal::processes_hitting_while_others_merge_lose_no_hit_and_count_none_twice",
                &role,
                &[(ROOT_ENV, root.as_str())],
            )
        })
        .collect();
    // The parent merges too, checking at every step that counts only grow and never
    // pass what was done.
    let mut seen = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let hits = t.store.stats().unwrap().counters.hits;
        assert!(hits >= seen && hits <= ROUNDS * WORKERS, "hits went from {seen} to {hits}");
        seen = hits;
        std::thread::sleep(Duration::from_millis(3));
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(t.store.stats().unwrap().counters.hits, ROUNDS * WORKERS, "every hit counted exactly once");
    assert_eq!(journal_bytes(&t), 0);
}
