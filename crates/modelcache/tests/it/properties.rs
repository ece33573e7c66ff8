//! Facade-level properties: after any sequence of gets (a Hub file, a snapshot, a URL),
//! removals, prunes and clears against the testkit hub,
//! - `is_cached` agrees with the disk: `refs/main` names a commit whose snapshot holds
//!   every file of the recorded listing (`trees/<commit>.json`), or, without a listing,
//!   at least one file;
//! - `stats().total_size_bytes` equals the sum of the `size_bytes` that `list()` lists
//!   (a blob shared by several URL artifacts counted once), and `total_files` the files.
//!
//! Every case starts a fresh cache against one shared hub; a case costs real downloads,
//! so the default count is small. `PROPTEST_CASES` raises it (`cargo xtask proptest`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use cache_core::Sha256;
use cache_testkit::TestHub;
use modelcache::{AcquireRequest, CacheError, CacheManager, ItemType, ModelRef, RepoPath, RepoType};
use proptest::prelude::*;

use crate::Env;

/// The repositories of [`crate::hub::specs`] and their files at `main`.
const REPOS: [(&str, &[&str]); 3] = [
    ("org/model", &["config.json", "tokenizer.json", "model.safetensors"]),
    ("org/other", &["config.json", "vocab.txt"]),
    ("org/third", &["tokenizer.model", "x.bin"]),
];
const NAMES: [Option<&str>; 3] = [None, Some("a.bin"), Some("b.bin")];

/// The cases a run makes: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

static HUB: LazyLock<TestHub> = LazyLock::new(|| TestHub::start_blocking(crate::hub::specs()));
static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap());

#[derive(Clone, Debug)]
enum Op {
    GetFile { repo: usize, file: usize },
    Snapshot { repo: usize },
    Url { repo: usize, file: usize, name: usize, sha256: bool },
    RemoveRepo { repo: usize },
    RemoveFile { repo: usize, file: usize },
    RemoveArtifact { nth: usize },
    Prune { max_size: u64 },
    Clear,
}

fn op() -> impl Strategy<Value = Op> {
    let (r, f) = (0..REPOS.len(), 0..3usize);
    prop_oneof![
        3 => (r.clone(), f.clone()).prop_map(|(repo, file)| Op::GetFile { repo, file }),
        2 => r.clone().prop_map(|repo| Op::Snapshot { repo }),
        3 => (r.clone(), f.clone(), 0..NAMES.len(), any::<bool>())
            .prop_map(|(repo, file, name, sha256)| Op::Url { repo, file, name, sha256 }),
        1 => r.clone().prop_map(|repo| Op::RemoveRepo { repo }),
        2 => (r, f).prop_map(|(repo, file)| Op::RemoveFile { repo, file }),
        2 => (0..4usize).prop_map(|nth| Op::RemoveArtifact { nth }),
        2 => prop_oneof![Just(0_u64), Just(2_500), Just(60_000), Just(200_000)].prop_map(|max_size| Op::Prune { max_size }),
        1 => Just(Op::Clear),
    ]
}

fn file_of(repo: usize, file: usize) -> &'static str {
    let files = REPOS[repo].1;
    files[file % files.len()]
}

fn model_ref(repo: usize) -> ModelRef {
    ModelRef::parse(REPOS[repo].0, RepoType::Model).unwrap()
}

/// A removal of something not cached is refused as not in the cache; nothing else fails.
fn removed(r: Result<modelcache::RemoveReport, CacheError>) {
    match r {
        Ok(report) => assert!(report.skipped_in_use.is_empty(), "{report:?}"),
        Err(CacheError::NotInCache { .. }) => {}
        Err(e) => panic!("removal failed: {e}"),
    }
}

async fn apply(cache: &CacheManager, op: &Op) {
    match *op {
        Op::GetFile { repo, file } => {
            let p = cache.get_file(REPOS[repo].0, "main", file_of(repo, file)).await.unwrap();
            assert!(p.is_file(), "a returned file exists: {}", p.display());
        }
        Op::Snapshot { repo } => {
            let dir = cache.get_model(REPOS[repo].0).await.unwrap();
            for f in REPOS[repo].1 {
                assert!(dir.join(f).is_file(), "{f} of a fetched snapshot");
            }
        }
        Op::Url { repo, file, name, sha256 } => {
            let info = HUB.file(REPOS[repo].0, "main", file_of(repo, file)).unwrap();
            let sha = sha256.then(|| Sha256::of(&info.content.to_vec()));
            let request = AcquireRequest::url(info.url, sha, NAMES[name].map(str::to_owned)).unwrap();
            let got = cache.fetch(&request).await.unwrap();
            assert_eq!(std::fs::read(&got.path).unwrap(), info.content.to_vec());
        }
        Op::RemoveRepo { repo } => removed(cache.remove(&model_ref(repo), &[], false).await),
        Op::RemoveFile { repo, file } => {
            let path: RepoPath = file_of(repo, file).parse().unwrap();
            removed(cache.remove(&model_ref(repo), &[path], false).await);
        }
        Op::RemoveArtifact { nth } => {
            let artifacts: Vec<_> = cache.list().unwrap().into_iter().filter_map(|r| r.artifact).collect();
            if let Some(a) = artifacts.get(nth) {
                removed(cache.remove_artifact(a, false).await);
                assert!(!a.path.exists(), "a removed artifact's file is gone");
            }
        }
        Op::Prune { max_size } => {
            let mut policy = cache.config().config.eviction_policy();
            (policy.max_size, policy.in_use_grace, policy.low_watermark) = (Some(max_size), Duration::ZERO, 1.0);
            let r = cache.prune(&policy).await.unwrap();
            assert!(r.size_after <= max_size, "pruned to the limit, nothing pinned: {r:?}");
        }
        Op::Clear => {
            cache.clear_cache().await.unwrap();
            assert!(cache.list().unwrap().is_empty());
        }
    }
}

/// What the disk says about a whole snapshot at `main`, read without the library.
fn cached_on_disk(hub_dir: &Path, repo: &str) -> bool {
    let root = hub_dir.join(format!("models--{}", repo.replace('/', "--")));
    let Ok(commit) = std::fs::read_to_string(root.join("refs/main")) else { return false };
    let snapshot = root.join("snapshots").join(commit.trim());
    let files = REPOS.iter().find(|r| r.0 == repo).unwrap().1;
    if root.join("trees").join(format!("{}.json", commit.trim())).exists() {
        files.iter().all(|f| snapshot.join(f).is_file())
    } else {
        std::fs::read_dir(&snapshot).is_ok_and(|mut d| d.next().is_some())
    }
}

fn check(env: &Env, cache: &CacheManager, after: &Op) {
    for (repo, _) in REPOS {
        assert_eq!(cache.is_cached(repo), cached_on_disk(&env.hub_dir(), repo), "is_cached(`{repo}`) after {after:?}");
    }
    let listed = cache.list().unwrap();
    let stats = cache.stats().unwrap();
    let mut artifact_blobs = BTreeMap::new();
    let mut sum = 0;
    for r in &listed {
        match &r.artifact {
            Some(a) => {
                assert_eq!(r.repo_type, ItemType::Url);
                artifact_blobs.insert(a.sha256.clone(), r.size_bytes);
            }
            None => sum += r.size_bytes,
        }
    }
    sum += artifact_blobs.values().sum::<u64>();
    assert_eq!(stats.total_size_bytes, sum, "stats count what is listed, after {after:?}: {listed:#?}");
    assert_eq!(stats.total_files, listed.iter().map(|r| r.files).sum::<u64>(), "files, after {after:?}");
    assert_eq!(stats.models.len(), listed.len(), "one stats row per listed row, after {after:?}");
}

fn run(ops: &[Op]) {
    let env = Env::new();
    let cache = env.manager(HUB.url());
    for op in ops {
        RUNTIME.block_on(apply(&cache, op));
        check(&env, &cache, op);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(4), max_shrink_iters: 32, ..ProptestConfig::default() })]
    #[test]
    fn is_cached_agrees_with_the_disk_and_stats_count_what_is_listed(ops in proptest::collection::vec(op(), 1..14)) {
        run(&ops);
    }
}
