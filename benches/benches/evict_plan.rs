//! Eviction planning over 100 000 entries (target: under 50 ms).
//!
//! `cargo bench -p modelcache-benches --bench evict_plan`

use std::collections::BTreeSet;
use std::hint::black_box;
use std::time::Duration;

use cache_core::{BlobId, EntryKey, EntryMeta, EvictionPolicy, Repo, Timestamp, plan_eviction};
use criterion::{Criterion, criterion_group, criterion_main};

const ENTRIES: usize = 100_000;

fn generate() -> Vec<EntryMeta> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..ENTRIES)
        .map(|i| {
            let repo = Repo::model(format!("org{}/repo-{}", i % 97, i / 100).parse().expect("valid id"));
            // One in ten entries shares its blob with the previous revision's file.
            let blob = if i % 10 == 0 && i > 0 { i - 1 } else { i };
            let used = Timestamp::from_unix_millis(1_700_000_000_000 + i64::try_from(next() % 10_000_000_000).unwrap_or(0));
            EntryMeta {
                key: EntryKey::Hub {
                    repo: repo.clone(),
                    commit: format!("{:040x}", i / 100).parse().expect("valid commit"),
                    path: format!("dir{}/file-{i}.bin", i % 7).parse().expect("valid path"),
                },
                blob: BlobId::from_relative_path(format!("{}/blobs/{blob:064x}", repo.folder_name())),
                etag: None,
                size: next() % (64 << 20),
                blake3: None,
                downloaded_at: used,
                last_used: used,
                pinned: i % 1000 == 0,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let entries = generate();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let now = Timestamp::from_unix_millis(1_720_000_000_000);
    let policy = EvictionPolicy {
        max_size: Some(total / 2),
        max_age: Some(Duration::from_secs(100 * 86_400)),
        ..EvictionPolicy::default()
    };
    let in_use = BTreeSet::new();
    let mut group = c.benchmark_group("evict_plan");
    group.sample_size(20);
    group.bench_function("100k_entries_half_over_limit", |b| {
        b.iter(|| plan_eviction(black_box(&entries), &in_use, &policy, now));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
