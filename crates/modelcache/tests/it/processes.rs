//! Two processes fetching the same model at once: one download, both succeed.

use std::process::{Command, Stdio};

use cache_testkit::Route;

use crate::hub;
use crate::{Env, files_under};

const CHILD: &str = "MODELCACHE_IT_CHILD";

/// In the child (this test binary re-run with `MODELCACHE_IT_CHILD` set) it fetches the
/// model and prints its directory; in the parent it races a child.
#[tokio::test]
async fn two_processes_fetching_one_model_download_it_once() {
    if let Ok(dirs) = std::env::var(CHILD) {
        let (hub_dir, home, endpoint) = {
            let mut it = dirs.split('\n');
            (it.next().unwrap().to_owned(), it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
        };
        let env = Env::new();
        let cache = env.builder().cache_dir(hub_dir).home(home).set(modelcache::ConfigKey::Endpoint, endpoint).build().unwrap();
        let dir = cache.get_model("org/model").await.unwrap();
        println!("CHILD-DIR {}", dir.display());
        return;
    }
    let hub = hub::start().await;
    hub.throttle(Some(300_000));
    let env = Env::new();
    let cache = env.manager(hub.url());
    let spec = format!("{}\n{}\n{}", env.hub_dir().display(), env.home_dir().display(), hub.url());
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["processes::two_processes_fetching_one_model_download_it_once", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mine = cache.get_model("org/model").await.unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    assert!(out.status.success(), "the child failed");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let theirs = stdout
        .lines()
        .find_map(|l| l.split_once("CHILD-DIR ").map(|(_, d)| d.trim()))
        .unwrap_or_else(|| panic!("the child printed no directory: {stdout}"));
    assert_eq!(std::path::Path::new(theirs), mine);
    let s = hub.stats();
    assert_eq!(s.count(Route::CdnGet), 1, "one transfer of the weights across both processes");
    for f in ["config.json", "tokenizer.json"] {
        let n: u64 = s.requests_by_path.iter().filter(|(p, _)| p.ends_with(&format!("/{f}"))).map(|(_, n)| n).sum();
        assert_eq!(n, 1, "{f} fetched once");
    }
    assert_eq!(files_under(&mine), ["config.json", "model.safetensors", "tokenizer.json"]);
    assert!(cache.validate_integrity().await.unwrap().is_clean());
}
