//! What people type: short commits as `ls --revisions` prints them, `--revision` and
//! `--type`, ids as `hf cache ls` prints them, `hf://` URIs, near-miss file names, and no
//! misleading option tips.

use std::path::Path;

use crate::{Env, hub};

/// `get org/model config.json`, returning the printed path and the commit.
fn cached_config(env: &Env) -> (String, String) {
    let path = env.run(&["get", "org/model", "config.json"]).ok().stdout.trim().to_owned();
    let commit = Path::new(&path).parent().unwrap().file_name().unwrap().to_str().unwrap().to_owned();
    (path, commit)
}

#[test]
fn a_short_commit_as_ls_prints_it_names_the_cached_commit_offline() {
    let hub = hub();
    let env = Env::new(&hub);
    let (path, commit) = cached_config(&env);
    let ls = env.run(&["ls", "--revisions"]).ok();
    let short = &commit[..12];
    assert!(ls.stdout.contains(short), "ls --revisions prints the 12-digit prefix: {}", ls.stdout);

    let before = hub.stats().total_requests();
    let got = env.run(&["--offline", "get", &format!("org/model@{short}"), "config.json"]).ok();
    assert_eq!(got.stdout.trim(), path);
    let got = env.run(&["--offline", "get", "org/model", "config.json", "--revision", &commit[..7]]).ok();
    assert_eq!(got.stdout.trim(), path);
    env.run_with_stdin(
        &["--offline", "warm", "-"],
        &format!("org/model@{short} config.json\nmodel/org/model@{short} config.json\n"),
    )
    .ok();
    assert_eq!(hub.stats().total_requests(), before, "a cached commit never touches the network");

    // `rm`, `pin` and `verify` take it too, even bare (a prefix unique in the cache).
    env.run(&["verify", &format!("org/model@{short}")]).ok();
    let pin = env.run(&["--json", "pin", short]).ok();
    assert!(pin.stdout.contains(&commit), "the bare prefix names the revision: {}", pin.stdout);
    let dry = env.run(&["--json", "rm", "--dry-run", &commit[..8]]).ok().json();
    assert_eq!(dry["entries"], 1, "{dry}");

    // A prefix no cached commit has stays as typed: offline it is simply not cached.
    let other = if commit.starts_with('0') { "1111111" } else { "0000000" };
    env.run(&["--offline", "get", &format!("org/model@{other}"), "config.json"]).expect(4);
}

#[test]
fn a_short_commit_matching_several_cached_commits_is_an_error_listing_them() {
    let hub = hub();
    let env = Env::new(&hub);
    let (_, commit) = cached_config(&env);
    let twin = format!("{}{}", &commit[..6], if &commit[6..7] == "0" { "1" } else { "0" }.repeat(34));
    std::fs::create_dir_all(env.hub_dir().join("models--org--model/snapshots").join(&twin)).unwrap();
    let run = env.run(&["--offline", "get", &format!("org/model@{}", &commit[..6]), "config.json"]).expect(2);
    assert!(run.stderr.contains(&commit) && run.stderr.contains(&twin), "both candidates are named: {}", run.stderr);
    assert!(run.stderr.contains("a commit by more of its digits"), "{}", run.stderr);
    let run = env.run(&["verify", &commit[..6]]).expect(2);
    assert!(run.stderr.contains(&commit) && run.stderr.contains(&twin), "{}", run.stderr);
    // One digit more is unique again.
    env.run(&["--offline", "get", &format!("org/model@{}", &commit[..7]), "config.json"]).ok();
}

#[test]
fn revision_and_type_are_aliases_of_at_rev_and_repo_type() {
    let hub = hub();
    let env = Env::new(&hub);
    let a = env.run(&["get", "datasets/org/data@main", "train.csv"]).ok();
    let b = env.run(&["get", "org/data", "train.csv", "--type", "dataset", "--revision", "main"]).ok();
    assert_eq!(a.stdout, b.stdout);
    let tag = env.run(&["get", "org/model", "config.json", "--revision", "v1"]).ok();
    assert_eq!(tag.stdout, env.run(&["get", "org/model@v1", "config.json"]).ok().stdout);
    let clash = env.run(&["get", "org/model@v1", "config.json", "--revision", "main"]).expect(2);
    assert!(clash.stderr.contains("`@v1` and `--revision main`"), "{}", clash.stderr);
    let clash = env.run(&["get", "datasets/org/data", "train.csv", "--type", "model"]).expect(2);
    assert!(clash.stderr.contains("contradicts"), "{}", clash.stderr);
    env.run(&["verify", "org/data", "--type", "dataset", "--revision", "main"]).ok();
}

#[test]
fn ids_as_hf_cache_ls_prints_them_and_hf_uris_name_repositories_and_files() {
    let hub = hub();
    let env = Env::new(&hub);
    let plain = env.run(&["get", "datasets/org/data", "train.csv"]).ok();
    assert_eq!(env.run(&["get", "dataset/org/data", "train.csv"]).ok().stdout, plain.stdout);
    assert_eq!(env.run(&["get", "hf://datasets/org/data/train.csv"]).ok().stdout, plain.stdout);
    assert_eq!(env.run(&["get", "hf://datasets/org/data@main/train.csv"]).ok().stdout, plain.stdout);
    let v1 = env.run(&["get", "org/model@v1", "config.json"]).ok();
    assert_eq!(env.run(&["get", "hf://org/model@v1/config.json"]).ok().stdout, v1.stdout);
    assert_eq!(env.run(&["get", "hf://models/org/model@v1", "config.json"]).ok().stdout, v1.stdout);
    let space = env.run(&["get", "hf://spaces/org/app"]).ok();
    assert!(Path::new(space.stdout.trim()).join("app.py").is_file(), "{}", space.stdout);
    env.run(&["pin", "model/org/model"]).ok();
    env.run(&["verify", "space/org/app"]).ok();
    let ls = env.run(&["--json", "ls"]).ok().json();
    let pinned: Vec<_> = ls.as_array().unwrap().iter().filter(|r| r["pinned"] == true).map(|r| r["model_id"].clone()).collect();
    assert_eq!(pinned, ["org/model"]);
    let bad = env.run(&["get", "hf://dataset/org/data"]).expect(2);
    assert!(bad.stderr.contains("hf://datasets/"), "huggingface_hub's plural types: {}", bad.stderr);
}

#[test]
fn a_missing_file_suggests_the_near_miss_from_the_cached_listing() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/model"]).ok();
    let run = env.run(&["get", "org/model", "confg.json"]).expect(3);
    assert!(run.stderr.contains("hint: did you mean `config.json`?"), "{}", run.stderr);
    let json = env.run(&["--json", "get", "org/model", "Config.json"]).expect(3).json_error();
    assert_eq!(json["error"]["hint"], "did you mean `config.json`?");
    // No listing known for `org/other`: no guess.
    let run = env.run(&["get", "org/other", "vocab.tx"]).expect(3);
    assert!(!run.stderr.contains("did you mean"), "{}", run.stderr);
}

#[test]
fn local_dir_gets_a_truthful_error_and_far_option_tips_are_gone() {
    let env = Env::offline_only();
    let run = env.run(&["get", "org/model", "config.json", "--local-dir", "out"]).expect(2);
    assert!(run.stderr.starts_with("error: modelcache has no `--local-dir`"), "{}", run.stderr);
    assert!(run.stderr.contains("--to DIR"), "it names what to use instead: {}", run.stderr);
    assert!(!run.stderr.contains("similar argument"), "{}", run.stderr);
    let run = env.run(&["ls", "--cache-size", "1"]).expect(2);
    assert!(run.stderr.contains("unexpected argument '--cache-size'") && !run.stderr.contains("tip:"), "{}", run.stderr);
    let run = env.run(&["get", "org/model", "--dry-rn"]).expect(2);
    assert!(run.stderr.contains("unexpected argument '--dry-rn'"), "{}", run.stderr);
}
