//! Hostile inputs: traversal in files, repo ids, revisions and names, absolute paths, NUL,
//! 4 KiB names, and a server that lists a file named `../x`. Each is refused with exit 2
//! or a clear error, and nothing is written outside the cache directories.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use cache_testkit::{Content, RepoSpec, TestHub};

use crate::{Env, files_under, hub};

/// Everything under the temporary directory that is not in the hub cache, the home or
/// `$HOME`.
fn written_outside(env: &Env) -> Vec<String> {
    files_under(env.tmp.path())
        .into_iter()
        .filter(|f| !(f.starts_with("hub/") || f.starts_with("home/") || f.starts_with("user/") || f == "list.txt"))
        .collect()
}

#[test]
fn traversal_absolute_paths_nul_and_long_names_are_refused() {
    let hub = hub();
    let env = Env::new(&hub);
    let long = "a".repeat(4096);
    let long_repo = format!("org/{long}");
    let url = hub.file("org/other", "main", "vocab.txt").unwrap().url;
    for args in [
        &["get", "org/model", "../../etc/passwd"][..],
        &["get", "org/model", "/etc/passwd"],
        &["get", "org/model", "a/../../x"],
        &["get", "../../etc/passwd"],
        &["get", "org/..", "config.json"],
        &["get", "../org/model"],
        &["get", "/abs/repo"],
        &["get", "org/model@../../x", "config.json"],
        &["get", "org/model", &long],
        &["get", &long_repo],
        &["get", &url, "--name", "../x"],
        &["get", &url, "--name", "/tmp/x"],
        &["rm", "org/model", "../../x"],
        &["pin", "../x"],
        &["verify", "org/../.."],
    ] {
        let run = env.run(args);
        assert_eq!(
            run.code,
            2,
            "{:?}: {}",
            args.iter().map(|a| a.chars().take(40).collect::<String>()).collect::<Vec<_>>(),
            run.stderr
        );
        assert!(run.stderr.starts_with("error: ") && run.stderr.contains("hint: "), "{}", run.stderr);
        assert!(run.stderr.len() < 1200, "long values are shortened in messages: {} bytes", run.stderr.len());
    }
    let list = env.tmp.path().join("list.txt");
    std::fs::write(&list, "org/model config.json\norg/model conf\0ig.json\n").unwrap();
    let nul = env.run(&["warm", list.to_str().unwrap()]).expect(2);
    assert!(nul.stderr.contains("line 2"), "{}", nul.stderr);
    assert!(!env.hub_dir().join("models--org--model").exists(), "a bad list fetches nothing");
    assert_eq!(written_outside(&env), Vec::<String>::new());
}

/// A server whose listing names `../x`: the snapshot is refused as an invalid response.
#[test]
fn a_server_listing_a_file_named_dotdot_x_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let commit = "0123456789abcdef0123456789abcdef01234567";
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let (status, body) = if path.contains("/tree/") {
                ("200 OK", format!(r#"[{{"type":"file","path":"../x","oid":"{commit}","size":1}}]"#))
            } else if path.starts_with("/api/models/evil/repo") {
                ("200 OK", format!(r#"{{"sha":"{commit}","siblings":[{{"rfilename":"../x"}}]}}"#))
            } else {
                ("404 Not Found", "{}".to_owned())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let mut env = Env::offline_only();
    env.endpoint = Some(url);
    let run = env.run(&["get", "evil/repo"]).expect(3);
    assert!(run.stderr.contains("unsafe path"), "a clear error: {}", run.stderr);
    assert!(!env.tmp.path().join("x").exists() && !env.hub_dir().join("models--evil--repo/x").exists());
    assert_eq!(written_outside(&env), Vec::<String>::new());
    let snapshots = env.hub_dir().join("models--evil--repo/snapshots");
    assert!(files_under(&snapshots).is_empty(), "nothing was linked: {:?}", files_under(&snapshots));
}

/// A hub that lies: a listing whose `next` link is itself, a listing with `a` both a file
/// and a folder, a size beyond any filesystem. Each is an invalid response (exit 3), never
/// a hang, a disk error or "disk full".
#[test]
fn a_lying_hub_is_a_remote_failure_not_a_hang_or_a_disk_error() {
    let hub = TestHub::start_blocking([
        RepoSpec::model("org/loop").file("a.txt", "a"),
        RepoSpec::model("org/clash").file("a", "file a").file("a/b", "file a/b"),
        RepoSpec::model("org/huge").lfs_file("w.bin", Content::generated(100, 1)),
    ]);
    let env = Env::new(&hub);
    hub.update_faults(|f| f.loop_listing = true);
    let looped = env.run(&["--json", "get", "org/loop"]).expect(3).json_error();
    assert_eq!(looped["error"]["kind"], "remote", "{looped}");
    assert!(looped["error"]["message"].as_str().unwrap().contains("repeats a page"), "{looped}");
    hub.clear_faults();
    let clash = env.run(&["get", "org/clash"]).expect(3);
    assert!(clash.stderr.contains("both as a file and as a folder"), "{}", clash.stderr);
    assert!(clash.stderr.contains("HF_ENDPOINT") && !clash.stderr.contains("disk"), "{}", clash.stderr);
    hub.update_faults(|f| f.announce_size = Some(1 << 62));
    let huge = env.run(&["get", "org/huge", "w.bin"]).expect(3);
    assert!(huge.stderr.contains("more than any file and than the cache's whole filesystem holds"), "{}", huge.stderr);
    assert_eq!(written_outside(&env), Vec::<String>::new());
}

/// A password in an artifact URL or in `HF_ENDPOINT` is used, but never printed: not in
/// errors (text or `--json`), not in `-vv` logs, not by `config`.
#[test]
fn passwords_in_urls_are_never_printed() {
    let hub = hub();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let env = Env::new(&hub);
    let missing = format!("{}/org/model/resolve/main/missing.json", hub.url().replace("http://", "http://user:secret@"));
    for url in [format!("http://user:secret@{closed}/x"), missing] {
        let json = env.run(&["--json", "get", &url]).expect(3);
        assert!(!json.stderr.contains("secret") && !json.stdout.contains("secret"), "{}", json.stderr);
        assert!(json.json_error()["error"]["message"].as_str().unwrap().contains("***@127.0.0.1:"), "{}", json.stderr);
        let logged = env.run(&["-vv", "get", &url]).expect(3);
        assert!(!logged.stderr.contains("secret"), "{}", logged.stderr);
    }

    let served = hub.file("org/other", "main", "vocab.txt").unwrap().url.replace("http://", "http://user:secret@");
    let got = env.run(&["--json", "-vv", "get", &served]).ok();
    assert!(got.stdout.contains("***@127.0.0.1:"), "{}", got.stdout);
    assert!(!got.stdout.contains("secret") && !got.stderr.contains("secret"), "{}\n{}", got.stdout, got.stderr);

    let mut env = Env::new(&hub);
    env.endpoint = Some(hub.url().replace("http://", "http://u:secret@"));
    let config = env.run(&["config"]).ok();
    assert!(config.stdout.contains("http://***@127.0.0.1:") && !config.stdout.contains("secret"), "{}", config.stdout);
    let config = env.run(&["--json", "config"]).ok();
    assert!(config.stdout.contains("***@127.0.0.1:") && !config.stdout.contains("secret"), "{}", config.stdout);
    let got = env.run(&["-vv", "get", "org/model", "config.json"]).ok();
    assert!(got.stderr.contains("127.0.0.1"), "the logs name the endpoint's requests: {}", got.stderr);
    assert!(!got.stderr.contains("secret") && !got.stdout.contains("secret"), "{}", got.stderr);
    hub.fail_next(404, 1, None);
    let failed = env.run(&["--json", "-vv", "get", "org/model", "tokenizer.json"]).expect(3);
    assert!(!failed.stderr.contains("secret"), "{}", failed.stderr);
}
