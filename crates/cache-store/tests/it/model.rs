//! Model-based property test: random sequences of commit, find, remove, pin, evict,
//! clear and reconcile against an in-memory model. After every step `is_cached` agrees
//! with the model and the filesystem, `stats()` totals the distinct blob bytes on disk,
//! and the index agrees with the layout; at the end the real `huggingface_hub` scans the
//! cache without a warning.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use cache_core::{EvictionPolicy, Timestamp};
use cache_store::{CommitRequest, ReconcileReport, Scope, Store};
use camino::Utf8Path;
use proptest::prelude::*;

use crate::support::*;

const REPOS: [&str; 2] = ["m/a", "m/b"];
const PATHS: [&str; 3] = ["f", "d/g", "d/e/h"];

#[derive(Clone, Debug)]
enum Op {
    Commit { repo: usize, commit: u32, path: usize, main: bool },
    Find { repo: usize, commit: u32, path: usize },
    RemoveFile { repo: usize, commit: u32, path: usize },
    RemoveRevision { repo: usize, commit: u32 },
    RemoveRepo { repo: usize },
    Pin { repo: usize, on: bool },
    Evict { max_size: u64 },
    Clear,
    Reconcile,
}

fn op() -> impl Strategy<Value = Op> {
    let (r, c, p) = (0..REPOS.len(), 1..4u32, 0..PATHS.len());
    prop_oneof![
        6 => (r.clone(), c.clone(), p.clone(), any::<bool>()).prop_map(|(repo, commit, path, main)| Op::Commit { repo, commit, path, main }),
        2 => (r.clone(), c.clone(), p.clone()).prop_map(|(repo, commit, path)| Op::Find { repo, commit, path }),
        2 => (r.clone(), c.clone(), p).prop_map(|(repo, commit, path)| Op::RemoveFile { repo, commit, path }),
        1 => (r.clone(), c).prop_map(|(repo, commit)| Op::RemoveRevision { repo, commit }),
        1 => r.clone().prop_map(|repo| Op::RemoveRepo { repo }),
        1 => (r, any::<bool>()).prop_map(|(repo, on)| Op::Pin { repo, on }),
        2 => (0..600u64).prop_map(|max_size| Op::Evict { max_size }),
        1 => Just(Op::Clear),
        1 => Just(Op::Reconcile),
    ]
}

/// Content is a function of (commit, path), so different files share blobs.
fn content(commit: u32, path: usize) -> Vec<u8> {
    let k = (commit as usize + path) % 4;
    vec![b'a' + u8::try_from(k).unwrap(); 50 * (k + 1)]
}

#[derive(Default, Debug)]
struct Model {
    files: BTreeMap<(usize, u32, usize), Vec<u8>>,
    main: BTreeMap<usize, u32>,
    pinned: BTreeSet<usize>,
}

impl Model {
    fn forget_empty_mains(&mut self) {
        let files = &self.files;
        self.main.retain(|r, c| files.keys().any(|(fr, fc, _)| fr == r && fc == c));
    }

    fn distinct_bytes(&self) -> u64 {
        let blobs: HashSet<(usize, &Vec<u8>)> = self.files.iter().map(|((r, _, _), c)| (*r, c)).collect();
        blobs.iter().map(|(_, c)| c.len() as u64).sum()
    }
}

fn disk_blob_bytes(hub: &Utf8Path) -> u64 {
    let mut blobs = HashSet::new();
    for (rel, link) in tree_listing(hub) {
        if rel.contains("/snapshots/") {
            let full = hub.join(&rel);
            let target = match link {
                Some(l) => full.parent().unwrap().join(l).canonicalize_utf8().unwrap(),
                None => full,
            };
            blobs.insert(target);
        }
    }
    blobs.iter().map(|b| std::fs::metadata(b).unwrap().len()).sum()
}

fn check(s: &Store, m: &Model, hub: &Utf8Path) {
    for (ri, name) in REPOS.iter().enumerate() {
        let r = repo(name);
        for c in 1..4 {
            for (pi, p) in PATHS.iter().enumerate() {
                let cached = s.is_cached(&r, &rev(commit(c).as_str()), &path(p)).unwrap();
                assert_eq!(cached, m.files.contains_key(&(ri, c, pi)), "{name}@{c}/{p}");
                assert_eq!(cached, hub.join(format!("{}/snapshots/{}/{p}", r.folder_name(), commit(c))).is_file());
            }
        }
        assert_eq!(s.resolve(&r, &rev("main")).unwrap(), m.main.get(&ri).map(|c| commit(*c)), "main of {name}");
    }
    let st = s.stats().unwrap();
    assert_eq!(st.files, m.files.len() as u64);
    assert_eq!(st.total_bytes, disk_blob_bytes(hub), "stats vs disk");
    assert_eq!(st.total_bytes, m.distinct_bytes(), "stats vs model");
    assert_eq!(s.reconcile().unwrap(), ReconcileReport::default(), "the index agrees with the layout");
}

fn run(ops: Vec<Op>) {
    let t = TestCache::new();
    let (s, hub) = (&t.store, t.hub());
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Commit { repo: ri, commit: c, path: pi, main } => {
                let bytes = content(c, pi);
                let mut req =
                    CommitRequest::new(repo(REPOS[ri]), commit(c), path(PATHS[pi]), etag_of(&bytes, true), bytes.len() as u64);
                if main {
                    req = req.with_ref(rev("main"));
                    m.main.insert(ri, c);
                }
                put_req(s, req, &bytes);
                m.files.insert((ri, c, pi), bytes);
            }
            Op::Find { repo: ri, commit: c, path: pi } => {
                let found = s.find(&repo(REPOS[ri]), &rev(commit(c).as_str()), &path(PATHS[pi])).unwrap();
                assert_eq!(found.is_some(), m.files.contains_key(&(ri, c, pi)));
            }
            Op::RemoveFile { repo: ri, commit: c, path: pi } => {
                s.remove(&Scope::File(repo(REPOS[ri]), rev(commit(c).as_str()), path(PATHS[pi]))).unwrap();
                m.files.remove(&(ri, c, pi));
                m.forget_empty_mains();
            }
            Op::RemoveRevision { repo: ri, commit: c } => {
                s.remove(&Scope::Revision(repo(REPOS[ri]), rev(commit(c).as_str()))).unwrap();
                m.files.retain(|(r, fc, _), _| !(*r == ri && *fc == c));
                m.forget_empty_mains();
            }
            Op::RemoveRepo { repo: ri } => {
                s.remove(&Scope::Repo(repo(REPOS[ri]))).unwrap();
                m.files.retain(|(r, _, _), _| *r != ri);
                m.main.remove(&ri);
            }
            Op::Pin { repo: ri, on } => {
                let scope = Scope::Repo(repo(REPOS[ri]));
                if on {
                    s.pin(&scope).unwrap();
                } else {
                    s.unpin(&scope).unwrap();
                }
                if on {
                    m.pinned.insert(ri)
                } else {
                    m.pinned.remove(&ri)
                };
            }
            Op::Evict { max_size } => {
                let policy = EvictionPolicy {
                    max_size: Some(max_size),
                    low_watermark: 1.0,
                    in_use_grace: Duration::ZERO,
                    ..Default::default()
                };
                let report = s.evict(&policy, Timestamp::now().saturating_add(Duration::from_secs(60))).unwrap();
                assert!(report.skipped_in_use.is_empty());
                for key in &report.evicted {
                    let cache_core::EntryKey::Hub { repo: r, commit: c, path: p } = key else { panic!() };
                    let ri = REPOS.iter().position(|n| *n == r.id.as_str()).unwrap();
                    assert!(!m.pinned.contains(&ri), "a pinned entry was evicted");
                    let pi = PATHS.iter().position(|n| *n == p.as_str()).unwrap();
                    let c = u32::from_str_radix(c.as_str(), 16).unwrap();
                    assert!(m.files.remove(&(ri, c, pi)).is_some());
                }
                m.forget_empty_mains();
                let unpinned_left = m.files.keys().any(|(r, _, _)| !m.pinned.contains(r));
                assert!(
                    m.distinct_bytes() <= max_size
                        || !unpinned_left
                        || report.evicted.is_empty() && m.pinned.len() == REPOS.len(),
                    "over the limit with evictable entries left"
                );
            }
            Op::Clear => {
                s.clear().unwrap();
                m.files.clear();
                m.main.clear();
            }
            Op::Reconcile => assert_eq!(s.reconcile().unwrap(), ReconcileReport::default()),
        }
        check(s, &m, &hub);
    }
    crate::python::scan_clean(&hub);
}

/// `PROPTEST_CASES` when set (`cargo xtask proptest` sets it), else 12: every case ends
/// with a scan by the real `huggingface_hub`, so the default stays small for CI.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]
    #[test]
    fn the_store_behaves_like_its_model(ops in proptest::collection::vec(op(), 1..25)) {
        run(ops);
    }
}
