//! Manifest → lock → sync → bundle → import through the library API, against the
//! testkit hub: a property test over random repositories and manifests, and the
//! promises under interleavings (a sync and an import of the same set racing on one
//! cache; the lock verifies after every round).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::LazyLock;

use cache_testkit::{Content, RepoSpec, TestHub};
use modelcache::{CacheManager, ImportOptions, Lock, Manifest, SyncOptions, Upgrade, stale_entries};
use proptest::prelude::*;

use crate::{Env, files_under};

static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap());

/// The cases a run makes: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const PATHS: [&str; 6] = ["config.json", "tokenizer.json", "model.bin", "sub/a.bin", "sub/deep/b.json", "weights.safetensors"];
const GLOBS: [&str; 5] = ["*.json", "*.bin", "sub/*", "*", "*.safetensors"];

/// One random repository: files (path index, size, seed, LFS) and the manifest's globs.
#[derive(Clone, Debug)]
struct RepoCase {
    files: Vec<(usize, u64, u64, bool)>,
    include: Vec<usize>,
    revision_tag: bool,
}

fn repo_case() -> impl Strategy<Value = RepoCase> {
    (
        proptest::collection::vec((0..PATHS.len(), 0u64..40_000, any::<u64>(), any::<bool>()), 1..5),
        proptest::collection::vec(0..GLOBS.len(), 0..3),
        any::<bool>(),
    )
        .prop_map(|(files, include, revision_tag)| RepoCase { files, include, revision_tag })
}

fn spec(i: usize, case: &RepoCase) -> RepoSpec {
    let mut s = RepoSpec::model(&format!("org/r{i}"));
    for (p, size, seed, lfs) in &case.files {
        let content = Content::generated(*size, *seed);
        s = if *lfs { s.lfs_file(PATHS[*p], content) } else { s.file(PATHS[*p], content) };
    }
    s.commit().tag("v1")
}

fn manifest_text(cases: &[RepoCase]) -> String {
    let mut out = String::new();
    for (i, c) in cases.iter().enumerate() {
        let globs: Vec<String> = c.include.iter().map(|g| format!("\"{}\"", GLOBS[*g])).collect();
        let _ = write!(
            out,
            "[[model]]\nrepo = \"org/r{i}\"\nrevision = \"{}\"\ninclude = [{}]\n\n",
            if c.revision_tag { "v1" } else { "main" },
            globs.join(", ")
        );
    }
    out
}

/// The locked files' bytes as the hub serves them, and as the cache has them.
fn assert_cache_holds(hub: &TestHub, cache: &CacheManager, lock: &Lock) {
    for m in &lock.models {
        for f in &m.files {
            let served = hub.file(m.repo.id.as_str(), m.commit.as_str(), f.path.as_str()).unwrap().content.to_vec();
            let cached =
                cache.cache_dir().join(m.repo.folder_name()).join("snapshots").join(m.commit.as_str()).join(f.path.as_str());
            assert_eq!(std::fs::read(&cached).unwrap(), served, "{}", cached.display());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(6), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_manifests_round_trip_through_lock_bundle_and_import(repos in proptest::collection::vec(repo_case(), 1..4)) {
        let hub = TestHub::start_blocking(repos.iter().enumerate().map(|(i, c)| spec(i, c)));
        let text = manifest_text(&repos);
        let manifest = Manifest::parse(&text, Path::new("modelcache.toml")).unwrap();
        let env = Env::new();
        let cache = env.manager(hub.url());
        let resolved = match RUNTIME.block_on(cache.resolve_lock(&manifest, None, &Upgrade::None)) {
            Ok(r) => r,
            Err(e) => {
                // A glob that selects no file of its repository is refused, and only that.
                prop_assert_eq!(e.kind().exit_code(), 2, "{}", e);
                return Ok(());
            }
        };
        let lock = resolved.lock;
        prop_assert_eq!(Lock::parse(&lock.to_toml(), Path::new("l")).unwrap(), lock.clone());
        prop_assert!(stale_entries(&manifest, &lock).is_empty());
        let again = RUNTIME.block_on(cache.resolve_lock(&manifest, Some(&lock), &Upgrade::All)).unwrap();
        prop_assert_eq!(again.lock.to_toml(), lock.to_toml(), "the same manifest and Hub give the same lock");
        RUNTIME.block_on(cache.sync(&lock, &SyncOptions::default())).unwrap();
        assert_cache_holds(&hub, &cache, &lock);
        let out = env.tmp.path().join("set.tar");
        let report = cache.bundle_create(&lock, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        cache.bundle_create(&lock, &out).unwrap();
        prop_assert_eq!(std::fs::read(&out).unwrap(), bytes, "deterministic");
        prop_assert_eq!(report.sha256, modelcache::Sha256::of(&std::fs::read(&out).unwrap()).to_string());
        let target = Env::new();
        let offline = target.builder().offline(true).build().unwrap();
        let imported = offline.bundle_import(&out, &ImportOptions { dry_run: false, expect: Some(lock.clone()) }).unwrap();
        prop_assert_eq!(imported.lock.as_ref(), Some(&lock));
        prop_assert!(offline.verify_lock(&lock).unwrap().is_complete());
        assert_cache_holds(&hub, &offline, &lock);
        let synced = RUNTIME.block_on(offline.sync(&lock, &SyncOptions::default())).unwrap();
        prop_assert_eq!(synced.downloaded, 0);
        prop_assert!(files_under(&target.hub_dir()).iter().all(|f| !f.ends_with(".incomplete")));
    }
}

fn twins_hub() -> TestHub {
    TestHub::start_blocking([RepoSpec::model("org/twins")
        .file("config.json", "{}")
        .lfs_file("a.bin", Content::generated(300_000, 1))
        .lfs_file("b.bin", Content::generated(300_000, 2))
        .file("sub/c.txt", Content::generated(5000, 3))])
}

#[test]
fn a_sync_and_an_import_of_one_set_racing_on_one_cache_both_succeed_and_the_lock_verifies() {
    let hub = twins_hub();
    let manifest = Manifest::parse("[[model]]\nrepo = \"org/twins\"\n", Path::new("m")).unwrap();
    let source = Env::new();
    let cache = source.manager(hub.url());
    let lock = RUNTIME.block_on(cache.resolve_lock(&manifest, None, &Upgrade::None)).unwrap().lock;
    RUNTIME.block_on(cache.sync(&lock, &SyncOptions::default())).unwrap();
    let bundle = source.tmp.path().join("twins.tar");
    cache.bundle_create(&lock, &bundle).unwrap();
    for round in 0..4 {
        let env = Env::new();
        let online = env.manager(hub.url());
        let importer = env.builder().offline(true).build().unwrap();
        let (lock2, bundle2) = (lock.clone(), bundle.clone());
        let imports = std::thread::spawn(move || importer.bundle_import(&bundle2, &ImportOptions::default()).map(|_| ()));
        let synced = RUNTIME.block_on(online.sync(&lock2, &SyncOptions::default()));
        let imported = imports.join().unwrap();
        assert!(synced.is_ok() && imported.is_ok(), "round {round}: sync {synced:?}, import {imported:?}");
        let check = online.verify_lock(&lock).unwrap();
        assert!(check.is_complete(), "round {round}: {check:?}");
        assert!(files_under(&env.hub_dir()).iter().all(|f| !f.ends_with(".incomplete")), "round {round}");
        assert_cache_holds(&hub, &online, &lock);
    }
}

#[test]
fn a_corrupted_blob_fails_verify_lock_and_sync_reports_it_without_downloading() {
    let hub = twins_hub();
    let manifest = Manifest::parse("[[model]]\nrepo = \"org/twins\"\ninclude = [\"*.bin\"]\n", Path::new("m")).unwrap();
    let env = Env::new();
    let cache = env.manager(hub.url());
    let lock = RUNTIME.block_on(cache.resolve_lock(&manifest, None, &Upgrade::None)).unwrap().lock;
    RUNTIME.block_on(cache.sync(&lock, &SyncOptions::default())).unwrap();
    let etag = lock.models[0].files[0].etag;
    let blob = env.hub_dir().join(format!("models--org--twins/blobs/{etag}"));
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let check = cache.verify_lock(&lock).unwrap();
    assert_eq!(check.differs.len(), 1, "{check:?}");
    assert!(check.differs[0].contains("a.bin") && check.differs[0].contains("has digest"), "{check:?}");
    assert!(cache.check_lock(&lock).is_complete(), "the cheap check trusts a same-size blob; verify does not");
    hub.reset_stats();
    let repaired = RUNTIME.block_on(cache.sync(&lock, &SyncOptions::default())).unwrap();
    assert_eq!(repaired.downloaded, 0);
    std::fs::write(&blob, &bytes[..100]).unwrap();
    let e = RUNTIME.block_on(cache.sync(&lock, &SyncOptions::default())).unwrap_err();
    assert_eq!(e.kind().exit_code(), 5, "{e}");
    assert_eq!(hub.stats().total_requests(), 0, "reported, not downloaded");
    let fixed = RUNTIME.block_on(cache.sync(&lock, &SyncOptions { repair: true, ..SyncOptions::default() })).unwrap();
    assert_eq!(fixed.repaired.len(), 1);
    assert!(cache.verify_lock(&lock).unwrap().is_complete());
}

#[test]
fn a_lock_names_what_changed_in_the_manifest() {
    let a = Manifest::parse("[[model]]\nrepo = \"org/twins\"\ninclude = [\"*.bin\"]\n", Path::new("m")).unwrap();
    let hub = twins_hub();
    let env = Env::new();
    let cache = env.manager(hub.url());
    let lock = RUNTIME.block_on(cache.resolve_lock(&a, None, &Upgrade::None)).unwrap().lock;
    assert!(stale_entries(&a, &lock).is_empty());
    let b = Manifest::parse("[[model]]\nrepo = \"org/twins\"\ninclude = [\"*.json\"]\n", Path::new("m")).unwrap();
    let stale = stale_entries(&b, &lock);
    assert_eq!(stale.len(), 1);
    assert!(stale[0].contains("org/twins") && stale[0].contains("changed"), "{stale:?}");
    let c = Manifest::parse("[[model]]\nrepo = \"org/nope\"\n", Path::new("m")).unwrap();
    assert_eq!(stale_entries(&c, &lock).len(), 2, "one added, one removed");
}
