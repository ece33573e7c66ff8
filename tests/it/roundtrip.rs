//! `--json` output reads back into the library's result types, and says what the library
//! says: a program can parse the CLI's output with the facade's own types.

use std::collections::HashMap;

use modelcache::{
    AcquireRequest, Acquired, CacheManager, CacheStats, IntegrityReport, ModelRef, PruneOptions, PruneReport, RemoveReport,
    RepoInfo, RepoType,
};
use serde::de::DeserializeOwned;

use crate::{Env, hub};

fn parse<T: DeserializeOwned>(env: &Env, args: &[&str]) -> T {
    let run = env.run(args).ok();
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("`{}` does not read back ({e}):\n{}", args.join(" "), run.stdout))
}

/// A manager seeing exactly the environment the binary gets.
fn library(env: &Env) -> CacheManager {
    let vars: HashMap<String, String> =
        env.command(&[]).get_envs().filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned()))).collect();
    CacheManager::builder().env(move |k| vars.get(k).cloned()).build().unwrap()
}

#[test]
fn json_output_reads_back_into_the_facade_types_and_matches_the_library() {
    let hub = hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_IN_USE_GRACE", "0s");
    env.run(&["get", "org/model"]).ok();
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    env.run(&["pin", "org/other"]).ok();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let lib = library(&env);
    let listed: Vec<RepoInfo> = parse(&env, &["--json", "ls"]);
    assert_eq!(listed, lib.list().unwrap());
    assert!(listed.iter().any(|r| r.model_id == "org/other" && r.pinned), "{listed:?}");

    let mut stats: CacheStats = parse(&env, &["--json", "stats"]);
    let mut lib_stats = lib.stats().unwrap();
    assert!(stats.free_disk_bytes.is_some());
    // Free space moves with everything else on the disk.
    (stats.free_disk_bytes, lib_stats.free_disk_bytes) = (None, None);
    assert_eq!(stats, lib_stats);
    assert_eq!(stats.total_models, 2);

    let verified: IntegrityReport = parse(&env, &["--json", "verify"]);
    assert_eq!(verified, rt.block_on(lib.verify(None, false)).unwrap());
    assert_eq!(verified.valid_models.len(), 2);

    let pruned: PruneReport = parse(&env, &["--json", "prune", "--max-size", "1B", "--dry-run"]);
    let options = PruneOptions { max_size: Some(1), max_age: None, dry_run: true };
    assert_eq!(pruned, rt.block_on(lib.prune_with(&options)).unwrap());
    assert!(!pruned.evicted.is_empty() && pruned.evicted.iter().all(|e| !e.entry.contains("org/other")), "{pruned:?}");

    let removed: RemoveReport = parse(&env, &["--json", "rm", "org/model", "--dry-run"]);
    let target = ModelRef::parse("org/model", RepoType::Model).unwrap();
    assert_eq!(removed, rt.block_on(lib.remove(&target, &[], true)).unwrap());
    assert_eq!(removed.entries, 3);
    // Last: a hit through the library records a use that later listings would show.
    let got: Vec<Acquired> = parse(&env, &["--json", "get", "org/other@main", "vocab.txt"]);
    let request = AcquireRequest::File {
        repo: ModelRef::parse("org/other", RepoType::Model).unwrap().repo,
        revision: "main".parse().unwrap(),
        path: "vocab.txt".parse().unwrap(),
    };
    assert_eq!(got, [rt.block_on(lib.fetch(&request)).unwrap()]);
}
