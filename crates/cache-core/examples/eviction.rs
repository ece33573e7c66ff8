//! Plans an eviction over a generated cache of 20 repositories and prints what would go.
//!
//! `cargo run -p cache-core --example eviction`
#![expect(clippy::print_stdout, reason = "an example shows its result")]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cache_core::{BlobId, ByteSize, EntryKey, EntryMeta, EvictionPolicy, Repo, Timestamp, plan_eviction};

fn main() -> Result<(), cache_core::Error> {
    let now = Timestamp::from_unix_millis(1_790_000_000_000);
    let day = Duration::from_secs(86_400);
    let mut entries = Vec::new();
    // A deterministic generator: sizes from a few KiB (configs) to GiBs (weights).
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for r in 0..20u32 {
        let repo = Repo::model(format!("org{}/model-{r}", r % 4).parse()?);
        let commit = format!("{:040x}", u128::from(r) * 0x1234_5678_9abc_def1);
        let files = ["config.json", "tokenizer.json", "model.safetensors", "README.md"];
        for (i, file) in files.iter().enumerate() {
            let size = if *file == "model.safetensors" { (next() % 4 + 1) << 30 } else { next() % (512 << 10) + 1024 };
            let last_used = now.saturating_sub(day * u32::try_from(next() % 60).unwrap_or(0));
            entries.push(EntryMeta {
                key: EntryKey::Hub { repo: repo.clone(), commit: commit.parse()?, path: (*file).parse()? },
                blob: BlobId::from_relative_path(format!("{}/blobs/{r}-{i}", repo.folder_name())),
                etag: None,
                size,
                blake3: None,
                downloaded_at: last_used,
                last_used,
                pinned: r == 3,
            });
        }
    }
    let policy = EvictionPolicy {
        max_size: Some(ByteSize::parse("30GiB")?.bytes()),
        max_age: Some(45 * day),
        ..EvictionPolicy::default()
    };
    let start = Instant::now();
    let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, now);
    let took = start.elapsed();

    println!(
        "eviction plan for a generated cache of {} files in 20 repos (max_size 30GiB, max_age 45d, repo org3/model-3 pinned):",
        entries.len()
    );
    println!("  size before: {}", ByteSize::new(plan.size_before));
    println!(
        "  size after:  {}  (target {})",
        ByteSize::new(plan.size_after),
        plan.target.map_or("-".to_owned(), |t| ByteSize::new(t).to_string())
    );
    println!(
        "  evict {} files, freeing {}; {} protected",
        plan.evict.len(),
        ByteSize::new(plan.bytes_freed),
        plan.protected.len()
    );
    for e in plan.evict.iter().take(8) {
        println!("    {:?} {:>10}  {}", e.reason, ByteSize::new(e.frees).to_string(), e.entry.key);
    }
    if plan.evict.len() > 8 {
        println!("    … and {} more", plan.evict.len() - 8);
    }
    println!("  planned in {took:?}");
    Ok(())
}
