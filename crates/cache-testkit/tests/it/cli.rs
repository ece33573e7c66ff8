//! The `serve` command: prints the URL first, then serves until killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::get;

#[test]
fn serve_prints_the_url_and_serves_the_repos() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cache-testkit"))
        .args([
            "serve",
            "--port",
            "0",
            "--repo",
            "org/name",
            "--file",
            "config.json=1KiB",
            "--file",
            "model.safetensors=3MiB:lfs",
        ])
        .args(["--repo", "datasets/org/data", "--file", "a.csv=text:x,y"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().to_owned();
    let result = std::panic::catch_unwind(|| {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_eq!(get(&format!("{url}/_testkit/health")).body, b"ok");
        assert_eq!(get(&format!("{url}/org/name/resolve/main/config.json")).body.len(), 1024);
        let head = crate::send("HEAD", &format!("{url}/org/name/resolve/main/model.safetensors"), &[], b"");
        assert_eq!((head.status, head.header("x-linked-size")), (302, Some("3145728")));
        assert_eq!(get(&format!("{url}/datasets/org/data/resolve/main/a.csv")).body, b"x,y");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
}

#[test]
fn serve_rejects_bad_arguments() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_cache-testkit")).args(["serve", "--repo", "org/x", "--file", "a=1XB"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown unit"));
}
