//! URL artifacts as a user meets them: in `ls` and `stats` (URLs redacted), named by
//! name or URL in `rm`, `pin`, `unpin` and `verify`, repaired, and warmed from a list.

use std::io::Write;
use std::path::Path;

use crate::{Env, hub};

/// The vocabulary of `org/other` as a URL with credentials and a signed query, and the
/// URL as listings show it.
fn vocab_url(hub: &cache_testkit::TestHub) -> (String, String, Vec<u8>) {
    let info = hub.file("org/other", "main", "vocab.txt").unwrap();
    let secret = format!("{}?sig=secret", info.url.replacen("http://", "http://user:secret@", 1));
    let shown = info.url.replacen("http://", "http://***@", 1);
    (secret, shown, info.content.to_vec())
}

#[test]
fn url_artifacts_are_listed_and_named_by_name_or_url() {
    let hub = hub();
    let env = Env::new(&hub);
    let (url, shown, body) = vocab_url(&hub);
    env.run(&["get", "org/model", "config.json"]).ok();
    let got = env.run(&["--json", "get", &url, "--name", "vocab.bin"]).ok();
    assert!(!got.stdout.contains("secret"), "{}", got.stdout);
    assert_eq!(got.json()[0]["request"].as_str(), Some(shown.as_str()));
    let path = got.json()[0]["path"].as_str().unwrap().to_owned();

    let ls = env.run(&["ls"]).ok();
    assert!(!ls.stdout.contains("secret"), "{}", ls.stdout);
    let row = ls.lines().into_iter().find(|l| l.starts_with("url")).unwrap_or_else(|| panic!("{}", ls.stdout));
    assert!(row.contains("vocab.bin") && row.contains(" 6 B"), "{row}");
    assert!(ls.stdout.contains(&format!("vocab.bin  {shown}\n")), "the URL, redacted, below the table: {}", ls.stdout);
    let json = env.run(&["--json", "ls"]).ok();
    assert!(!json.stdout.contains("secret"), "{}", json.stdout);
    let rows = json.json();
    let rows = rows.as_array().unwrap();
    let art = rows.iter().find(|r| r["repo_type"] == "url").unwrap();
    assert_eq!((art["model_id"].as_str(), art["files"].as_u64()), (Some("vocab.bin"), Some(1)));
    assert_eq!((art["artifact"]["url"].as_str(), art["artifact"]["path"].as_str()), (Some(shown.as_str()), Some(path.as_str())));
    assert!(rows.iter().any(|r| r["repo_type"] == "model" && r["artifact"].is_null()), "Hub rows keep their fields");
    let stats = env.run(&["--json", "stats"]).ok().json();
    let listed: u64 = rows.iter().map(|r| r["size_bytes"].as_u64().unwrap()).sum();
    assert_eq!(stats["total_size_bytes"].as_u64(), Some(listed));
    assert_eq!((stats["total_models"].as_u64(), stats["total_artifacts"].as_u64()), (Some(1), Some(1)));
    assert!(env.run(&["stats"]).ok().stdout.contains("url artifacts        1\n"));

    let pinned = env.run(&["pin", "vocab.bin"]).ok();
    assert_eq!(pinned.stdout, format!("pinned `vocab.bin ({shown})`\n"));
    let pinned = env.run(&["--json", "ls"]).ok().json();
    assert_eq!(pinned.as_array().unwrap().iter().find(|r| r["repo_type"] == "url").unwrap()["pinned"], true);
    env.run(&["unpin", &url]).ok();

    // Damaged: `verify NAME` finds it, `--repair` downloads it again.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"XX").unwrap();
    let damaged = env.run(&["verify", "vocab.bin"]).expect(5);
    assert!(damaged.stdout.contains(&format!("corrupted  {shown}#name=vocab.bin")), "{}", damaged.stdout);
    assert!(!damaged.stdout.contains("secret") && !damaged.stderr.contains("secret"));
    let repaired = env.run(&["verify", "--repair"]).ok();
    assert!(repaired.stdout.contains(&format!("downloaded again  {shown}#name=vocab.bin")), "{}", repaired.stdout);
    assert_eq!(std::fs::read(&path).unwrap(), body);
    env.run(&["verify"]).ok();

    // The same URL under a second name: the URL is ambiguous, the names are not.
    env.run(&["get", &url, "--name", "vocab2.bin"]).ok();
    let ambiguous = env.run(&["rm", &shown]).expect(2);
    assert!(ambiguous.stderr.contains("vocab.bin (") && ambiguous.stderr.contains("vocab2.bin ("), "{}", ambiguous.stderr);
    env.run(&["rm", "vocab.bin", "x.txt"]).expect(2);
    let dry = env.run(&["rm", "--dry-run", "vocab.bin"]).ok();
    assert_eq!(dry.stdout, format!("would remove 1 file from `vocab.bin ({shown})`, freeing 0 B\n"), "the blob is shared");
    env.run(&["rm", "vocab.bin"]).ok();
    assert!(!Path::new(&path).exists());
    let last = env.run(&["--json", "rm", &url]).ok().json();
    assert_eq!((last["entries"].as_u64(), last["bytes_freed"].as_u64()), (Some(1), Some(body.len() as u64)));
    env.run(&["rm", &url]).expect(2);
    assert!(!env.run(&["ls"]).ok().stdout.contains("url "));
}

#[test]
fn warm_takes_url_lines_with_a_digest_and_a_name() {
    let hub = hub();
    let env = Env::new(&hub);
    let (url, _, body) = vocab_url(&hub);
    let sha = cache_core::Sha256::of(&body).to_hex();
    let list = env.tmp.path().join("warm.txt");
    std::fs::write(&list, format!("org/other notes.md\n{url} sha256={sha} name=vocab.bin  # the vocabulary\n")).unwrap();
    let run = env.run(&["--json", "warm", list.to_str().unwrap()]).ok().json();
    assert_eq!((run["succeeded"].as_u64(), run["files_downloaded"].as_u64()), (Some(2), Some(2)));
    let path = run["entries"][1]["paths"][0].as_str().unwrap().to_owned();
    assert!(path.ends_with("/vocab.bin") && std::fs::read(&path).unwrap() == body, "{path}");
    let again = env.run(&["--offline", "warm", list.to_str().unwrap()]).ok();
    assert!(again.stdout.contains("2 entries already cached"), "{}", again.stdout);
    std::fs::write(&list, format!("{url} sha256={}\n", "0".repeat(64))).unwrap();
    env.run(&["warm", list.to_str().unwrap()]).expect(5);
    std::fs::write(&list, format!("{url} size=3\n")).unwrap();
    let bad = env.run(&["warm", list.to_str().unwrap()]).expect(2);
    assert!(bad.stderr.contains("line 1 of the list"), "{}", bad.stderr);
}
