//! The team tier from the command line: a machine seeds it, others pull through it (many
//! processes at once: one GET per blob), `push`, `remote ls`, `remote verify`, `stats`.

use std::process::Stdio;

use cache_testkit::s3::{BUCKET, MotoServer, S3Proxy};
use cache_testkit::{FailFault, Faults, Route};

use crate::{Env, WEIGHTS, hub};

fn machine(hub: &cache_testkit::TestHub, proxy: &S3Proxy) -> Env {
    let mut env = Env::new(hub);
    for (k, v) in MotoServer::env_for(&proxy.endpoint()) {
        env.var(&k, &v);
    }
    env
}

fn tier(prefix: &str, mode: &str) -> String {
    format!("s3://{BUCKET}/{prefix}:{mode}")
}

#[test]
fn one_machine_seeds_and_eight_processes_on_another_pull_each_blob_with_one_get() {
    let hub = hub();
    let moto = MotoServer::start();
    let proxy = S3Proxy::start(moto.port());
    let a = machine(&hub, &proxy);
    let rw = tier("hub", "rw");
    a.run(&["--remote", &rw, "get", "org/model"]).ok();
    let ls = a.run(&["--remote", &rw, "remote", "ls", "--json"]).ok().json();
    assert_eq!(ls[0]["blobs"], 3, "{ls}");
    assert_eq!(ls[0]["repos"]["org/model"].as_array().unwrap().len(), 1, "{ls}");
    let stats = a.run(&["--remote", &rw, "stats", "--json"]).ok().json();
    assert_eq!(stats["remote"][0]["blobs_pushed"], 3, "{stats}");

    hub.set_faults(Faults {
        fail: Some(FailFault { status: 500, count: 10_000, retry_after: None }),
        path_contains: Some("/resolve/".to_owned()),
        ..Faults::default()
    });
    hub.reset_stats();
    let b = machine(&hub, &proxy);
    let ro = tier("hub", "ro");
    let weights_key = {
        let listed = moto.list();
        listed.into_iter().find(|(k, (size, _))| k.contains("/blobs/sha256/") && *size == WEIGHTS).unwrap().0
    };
    let gets_before = proxy.count("GET", &weights_key);
    let children: Vec<_> = (0..8)
        .map(|_| {
            b.command(&["--remote", &ro, "get", "org/model", "model.safetensors"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let paths: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let run = crate::Run::from(&out).ok();
            run.stdout.trim().to_owned()
        })
        .collect();
    assert!(paths.windows(2).all(|w| w[0] == w[1]), "{paths:?}");
    assert_eq!(std::fs::metadata(&paths[0]).unwrap().len(), WEIGHTS);
    assert_eq!(proxy.count("GET", &weights_key) - gets_before, 1, "one remote GET for eight processes");
    assert_eq!(hub.stats().count(Route::CdnGet) + hub.stats().count(Route::ResolveGet), 0);

    let verify = b.run(&["--remote", &ro, "remote", "verify", "--all", "--json"]).ok().json();
    assert_eq!((verify[0]["checked"].as_u64(), verify[0]["corrupt"].as_array().map(Vec::len)), (Some(3), Some(0)), "{verify}");
    let config = b.run(&["--remote", &ro, "config"]).ok();
    assert!(config.stdout.lines().any(|l| l.starts_with("remote ") && l.contains(&ro)), "{}", config.stdout);
    let stats = b.run(&["--remote", &ro, "stats"]).ok();
    assert!(stats.stdout.contains("team tier") && stats.stdout.contains("1 hits"), "{}", stats.stdout);
    let metrics = b.run(&["--remote", &ro, "stats", "--format", "openmetrics"]).ok();
    assert!(
        metrics.stdout.contains(&format!("modelcache_remote_hits_total{{tier=\"s3://{BUCKET}/hub\"}} 1")),
        "{}",
        metrics.stdout
    );

    let mut bad = moto.get(&weights_key).unwrap();
    bad[7] ^= 1;
    moto.put(&weights_key, &bad);
    let failed = b.run(&["--remote", &ro, "remote", "verify", "--all"]).expect(5);
    assert!(failed.stdout.contains("1 corrupt"), "{}", failed.stdout);
}

#[test]
fn two_processes_pushing_the_same_blobs_both_succeed_and_the_tier_holds_them_once_and_right() {
    let hub = hub();
    let moto = MotoServer::start();
    let proxy = S3Proxy::start(moto.port());
    let (c, d) = (machine(&hub, &proxy), machine(&hub, &proxy));
    c.run(&["--no-remote", "get", "org/model"]).ok();
    d.run(&["--no-remote", "get", "org/model"]).ok();
    let wo = tier("seed", "wo");
    let pushes: Vec<_> = [&c, &d]
        .iter()
        .map(|m| {
            m.command(&["--remote", &wo, "push", "org/model", "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for p in pushes {
        let run = crate::Run::from(&p.wait_with_output().unwrap()).ok();
        let report = run.json();
        assert_eq!(report[0]["tree"], true, "{report}");
        let written = report[0]["blobs_written"].as_u64().unwrap() + report[0]["blobs_present"].as_u64().unwrap();
        assert_eq!(written, 3, "{report}");
    }
    let blobs = moto.list().keys().filter(|k| k.starts_with("seed/v1/blobs/")).count();
    assert_eq!(blobs, 3);
    let verify = c.run(&["--remote", &tier("seed", "ro"), "remote", "verify", "--all", "--json"]).ok().json();
    assert_eq!(verify[0]["corrupt"].as_array().map(Vec::len), Some(0), "{verify}");
    // Nothing to push to a read-only tier: said, not silently done.
    let refused = c.run(&["--remote", &tier("seed", "ro"), "push", "org/model"]).expect(2);
    assert!(refused.stderr.contains("`ro`"), "{}", refused.stderr);
}
