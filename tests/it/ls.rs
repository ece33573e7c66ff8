//! `ls` as `hf cache ls` does it, and more: a total line, `--filter`, `--limit`, and
//! `--ids` whose every line the other commands take back.

use crate::{Env, hub};

/// `org/model` (config and weights), `org/data`, `org/app`, and the weights again as a
/// URL artifact `w.bin`; returns the model's commit.
fn populated(env: &Env, hub: &cache_testkit::TestHub) -> String {
    env.run(&["get", "org/model", "config.json", "model.safetensors"]).ok();
    env.run(&["get", "datasets/org/data", "train.csv"]).ok();
    env.run(&["get", "spaces/org/app"]).ok();
    let info = hub.file("org/model", "main", "model.safetensors").unwrap();
    env.run(&["get", info.cdn_url.as_deref().unwrap(), "--name", "w.bin"]).ok();
    info.commit.to_string()
}

fn ids(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls", "--ids"];
    all.extend_from_slice(args);
    env.run(&all).ok().lines().into_iter().map(str::to_owned).collect()
}

#[test]
fn ls_ends_its_table_with_a_total_and_filters_limit_and_lists_ids() {
    let hub = hub();
    let env = Env::new(&hub);
    let commit = populated(&env, &hub);
    let ls = env.run(&["ls"]).ok();
    assert!(
        ls.stdout.contains("\ntotal: 3 repositories (3 revisions), 1 url artifact, 512 KiB on disk\n"),
        "the weights count twice (a repository file and an artifact): {}",
        ls.stdout
    );

    assert_eq!(ids(&env, &[]), ["dataset/org/data", "model/org/model", "space/org/app", "w.bin"]);
    assert_eq!(ids(&env, &["--revisions", "--filter", "type=model"]), [format!("model/org/model@{commit}")]);
    assert_eq!(ids(&env, &["-f", "size>100KB"]), ["model/org/model", "w.bin"]);
    assert_eq!(ids(&env, &["-f", "size<=1KiB", "-f", "name=*/org/a*"]), ["space/org/app"]);
    assert_eq!(ids(&env, &["-f", "name=org/*", "-f", "type!=model"]), ["dataset/org/data", "space/org/app"]);
    assert_eq!(ids(&env, &["--sort", "size", "--limit", "2"]), ["model/org/model", "w.bin"]);
    assert_eq!(ids(&env, &["-f", "age<1h"]).len(), 4, "everything was just used");
    env.run(&["pin", "org/data", "--type", "dataset"]).ok();
    assert_eq!(ids(&env, &["-f", "pinned=yes"]), ["dataset/org/data"]);
    assert_eq!(ids(&env, &["-f", "pinned=no", "-f", "type=url"]), ["w.bin"]);

    let some = env.run(&["ls", "--sort", "size", "--limit", "1"]).ok();
    assert!(some.stdout.contains("total: 1 repository (1 revision), 256 KiB on disk; 3 more not shown"), "{}", some.stdout);
    let none = env.run(&["ls", "--filter", "age>30d"]).ok();
    assert_eq!(none.stdout, "nothing matches (4 not shown)\n");
    let json = env.run(&["--json", "ls", "-f", "type=dataset"]).ok().json();
    assert_eq!(json.as_array().unwrap().len(), 1);
    assert_eq!(json[0]["model_id"], "datasets/org/data");

    // Every id goes back into the other commands.
    for id in ids(&env, &[]).into_iter().chain(ids(&env, &["--revisions"])) {
        env.run(&["verify", &id]).ok();
    }
    for bad in ["size>lots", "colour=red", "type>model", "pinned=maybe", "age"] {
        let run = env.run(&["ls", "--filter", bad]).expect(2);
        assert!(run.stderr.contains("invalid `--filter`"), "{bad}: {}", run.stderr);
    }
}
