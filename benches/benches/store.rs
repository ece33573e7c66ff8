//! cache-store: lookups and `stats` on 100 000 entries, `verify` throughput on 1 GiB
//! against raw BLAKE3 of the same file, and committing small files.
//!
//! Targets: `find`/`is_cached` hit p50 under 20 µs, `stats` under 50 ms, `verify` at
//! least 0.9× raw BLAKE3. `cargo bench -p modelcache-benches --bench store`
//!
//! The 100 000-entry cache is written in `huggingface_hub`'s layout directly (100 repos ×
//! 1 000 files, tiny blobs) under `CARGO_TARGET_TMPDIR` and reused across runs; the index
//! is built by opening the store on it (reconcile).

use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

use cache_core::{CommitHash, Etag, Repo, RepoPath, Revision, Sha256};
use cache_store::{CommitRequest, Scope, Store, StoreConfig};
use camino::Utf8PathBuf;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const REPOS: usize = 100;
const FILES: usize = 1_000;

fn base() -> Utf8PathBuf {
    Utf8PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-bench")
}

fn commit() -> CommitHash {
    modelcache_benches::generated_commit()
}

fn repo(i: usize) -> Repo {
    modelcache_benches::generated_repo(i)
}

fn file(j: usize) -> String {
    modelcache_benches::generated_file(j)
}

/// Writes the 100 000-entry layout once (a marker file records completion).
fn big_cache() -> Utf8PathBuf {
    let root = base().join("big");
    if root.join("ready").exists() {
        return root;
    }
    let _ = std::fs::remove_dir_all(&root);
    let hub = root.join("hub");
    modelcache_benches::write_hub_layout(hub.as_std_path(), REPOS, FILES).expect("write the layout");
    // Opening builds the index from the layout.
    drop(Store::open(StoreConfig::new(&hub, root.join("home"))).expect("open"));
    std::fs::write(root.join("ready"), b"").expect("marker");
    root
}

fn lookups(c: &mut Criterion) {
    let root = big_cache();
    let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home")).flush_threshold(1 << 20)).expect("open");
    assert_eq!(store.stats().expect("stats").files, (REPOS * FILES) as u64);
    let keys: Vec<(Repo, RepoPath)> =
        (0..997).map(|k| (repo(k * 31 % REPOS), file(k * 7919 % FILES).parse().expect("valid path"))).collect();
    let main = Revision::main();
    let by_commit = Revision::from(commit());
    let mut g = c.benchmark_group("store_100k");
    let mut n = 0;
    g.bench_function("find_hit_branch", |b| {
        b.iter(|| {
            let (repo, path) = &keys[n % keys.len()];
            n += 1;
            black_box(store.find(repo, &main, path).expect("find").expect("hit"))
        });
    });
    g.bench_function("find_hit_commit", |b| {
        b.iter(|| {
            let (repo, path) = &keys[n % keys.len()];
            n += 1;
            black_box(store.find(repo, &by_commit, path).expect("find").expect("hit"))
        });
    });
    g.bench_function("is_cached_hit", |b| {
        b.iter(|| {
            let (repo, path) = &keys[n % keys.len()];
            n += 1;
            assert!(black_box(store.is_cached(repo, &main, path).expect("lookup")));
        });
    });
    g.bench_function("stats", |b| b.iter(|| black_box(store.stats().expect("stats"))));
    g.finish();
}

fn verify(c: &mut Criterion) {
    const SIZE: usize = 1 << 30;
    let root = base().join("verify");
    let _ = std::fs::remove_dir_all(&root);
    let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home"))).expect("open");
    let r = repo(0);
    let path: RepoPath = "model.safetensors".parse().expect("valid path");
    let mut chunk = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hasher = cache_core::Sha256Hasher::new();
    let raw = root.join("raw.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&raw).expect("create"));
        for _ in 0..SIZE / chunk.len() {
            for b in chunk.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.copy_from_slice(&x.to_le_bytes());
            }
            hasher.update(&chunk);
            f.write_all(&chunk).expect("write");
        }
    }
    let etag = Etag::Sha256(hasher.finalize());
    let lock = store.lock_blob(&r, &etag, &mut |_| {}).expect("lock");
    let staging = store.stage(&lock, None).expect("stage");
    let copied = std::fs::read(&raw).expect("read");
    staging.write_at(&copied, 0).expect("write");
    drop(copied);
    store.commit(staging, &CommitRequest::new(r.clone(), commit(), path.clone(), etag, SIZE as u64)).expect("commit");
    drop(lock);
    let scope = Scope::File(r, Revision::from(commit()), path);
    let mut g = c.benchmark_group("verify_1gib");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(SIZE as u64));
    g.bench_function("store_verify", |b| b.iter(|| assert!(store.verify(&scope, false).expect("verify").is_clean())));
    g.bench_function("raw_blake3_mmap_rayon", |b| {
        b.iter(|| black_box(blake3::Hasher::new().update_mmap_rayon(&raw).expect("hash").finalize()));
    });
    g.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&root);
}

fn commits(c: &mut Criterion) {
    let root = base().join("commits");
    let _ = std::fs::remove_dir_all(&root);
    let store = Store::open(StoreConfig::new(root.join("hub"), root.join("home"))).expect("open");
    let r = repo(1);
    let mut n: u64 = 0;
    let mut g = c.benchmark_group("commit_small_files");
    g.sample_size(10).measurement_time(Duration::from_secs(15)).throughput(Throughput::Elements(1));
    g.bench_function("commit_one_1kib_file", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                n += 1;
                let body = format!("{n:01024}");
                let etag = Etag::Sha256(Sha256::of(body.as_bytes()));
                let path: RepoPath = format!("d{}/f{n}.txt", n % 100).parse().expect("valid path");
                let lock = store.lock_blob(&r, &etag, &mut |_| {}).expect("lock");
                let staging = store.stage(&lock, Some(1024)).expect("stage");
                staging.write_at(body.as_bytes(), 0).expect("write");
                let req = CommitRequest::new(r.clone(), commit(), path, etag, 1024);
                black_box(store.commit(staging, &req).expect("commit"));
            }
            start.elapsed()
        });
    });
    g.finish();
    drop(store);
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, lookups, verify, commits);
criterion_main!(benches);
