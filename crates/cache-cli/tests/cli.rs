//! The binary's surface without a cache: version, help, usage errors (plain and JSON).
//! (The end-to-end behaviour is tested in the workspace's `tests` crate; this target
//! also makes `cargo test` build the binary that crate runs.)
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::Command;

fn modelcache(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modelcache")).args(args).env("NO_COLOR", "1").output().unwrap()
}

#[test]
fn version_and_help_succeed() {
    let v = modelcache(&["--version"]);
    assert!(v.status.success());
    assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), format!("modelcache {}", env!("CARGO_PKG_VERSION")));
    let h = modelcache(&["get", "--help"]);
    assert!(h.status.success());
    assert!(String::from_utf8_lossy(&h.stdout).contains("--repo-type <REPO_TYPE>"));
}

#[test]
fn usage_errors_exit_2_as_text_or_json() {
    let plain = modelcache(&["ls", "--sort", "weight"]);
    assert_eq!(plain.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&plain.stderr).starts_with("error: invalid value 'weight'"));
    let json = modelcache(&["--json", "ls", "--sort", "weight"]);
    assert_eq!(json.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&json.stderr).unwrap();
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(v["error"]["message"].as_str().unwrap().contains("weight"));
    assert!(json.stdout.is_empty());
}
