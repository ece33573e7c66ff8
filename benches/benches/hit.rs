//! Warm hit in-process on a 100 000-entry cache: the facade's `get_file` with the revision
//! given as a commit (never touches the network) against the `hf-hub` crate's pinned
//! lookup (`download_file` at a commit: one `exists()`), through the same single-threaded
//! tokio runtime. Target: p50 ≤ hf-hub's in the same run, never above 20 µs.
//!
//! `cargo bench -p modelcache-benches --bench hit`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use modelcache::CacheManager;
use modelcache_benches::{generated_commit, generated_file, write_hub_layout};

const REPOS: usize = 100;
const FILES: usize = 1_000;
/// Nothing listens here: a request would fail the benchmark rather than be timed.
const UNREACHABLE: &str = "http://127.0.0.1:9";

fn bench(c: &mut Criterion) {
    let root = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hit-bench");
    let hub = root.join("hub");
    if !root.join("ready").exists() {
        let _ = std::fs::remove_dir_all(&root);
        write_hub_layout(&hub, REPOS, FILES).expect("write the layout");
        std::fs::write(root.join("ready"), b"").expect("marker");
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let manager = CacheManager::builder()
        .env(|_| None)
        .cache_dir(&hub)
        .home(root.join("home"))
        .set(modelcache::ConfigKey::Endpoint, UNREACHABLE)
        .build()
        .expect("open the cache");
    let commit = generated_commit().to_string();
    let client = hf_hub::HFClient::builder().endpoint(UNREACHABLE).cache_dir(&hub).build().expect("hf-hub client");
    let theirs = client.model("org", "repo-42");
    let file = generated_file(421);

    // Both must hit the same file before anything is timed.
    let ours_path = rt.block_on(manager.get_file("org/repo-42", &commit, &file)).expect("modelcache hit");
    let theirs_path =
        rt.block_on(theirs.download_file().filename(file.clone()).revision(commit.clone()).send()).expect("hf-hub hit");
    assert_eq!(std::fs::canonicalize(&ours_path).ok(), std::fs::canonicalize(&theirs_path).ok());

    let mut group = c.benchmark_group("warm_hit_100k");
    group.bench_function("modelcache_get_file_commit", |b| {
        b.iter(|| rt.block_on(manager.get_file(black_box("org/repo-42"), black_box(&commit), black_box(&file))).expect("hit"));
    });
    group.bench_function("hf_hub_download_file_commit", |b| {
        b.iter(|| {
            rt.block_on(theirs.download_file().filename(black_box(file.clone())).revision(black_box(commit.clone())).send())
                .expect("hit")
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
