//! The binary's surface without a cache: version, help, usage errors (plain and JSON).
//! (The end-to-end behaviour is tested in the workspace's `tests` crate; this target
//! also makes `cargo test` build the binary that crate runs.)
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

use std::process::Command;

fn modelcache(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modelcache")).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn stdout(args: &[&str]) -> String {
    let out = modelcache(args);
    assert!(out.status.success(), "modelcache {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `modelcache --help` lists (without `help`).
fn commands() -> Vec<String> {
    let help = stdout(&["--help"]);
    let listed = help.split("Commands:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    let names: Vec<String> =
        listed.lines().filter(|l| !l.starts_with("   ")).filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect();
    names.into_iter().filter(|n| n != "help").collect()
}

#[test]
fn version_names_the_commit_and_the_features() {
    let v = stdout(&["--version"]);
    let rest = v.trim().strip_prefix(&format!("modelcache {} (commit ", env!("CARGO_PKG_VERSION"))).unwrap();
    let (commit, features) = rest.split_once(", features: ").unwrap();
    assert!(commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{v}");
    assert_eq!(features, "downloads, remote)", "{v}");
}

#[test]
fn help_says_what_the_tool_is_for_and_shows_typical_commands() {
    let h = stdout(&["--help"]);
    let first = h.lines().next().unwrap();
    assert!(first.contains("cache") && first.contains("huggingface_hub"), "{first}");
    assert!(first.chars().count() <= 80, "one line on an 80-column terminal: {first}");
    let examples = h.split("Examples:\n").nth(1).unwrap().split("\n\n").next().unwrap();
    let count = examples.lines().filter(|l| l.trim_start().starts_with("modelcache ")).count();
    assert!((3..=4).contains(&count), "{examples}");
    assert!(commands().len() >= 13, "{h}");
}

#[test]
fn each_command_lists_its_own_options_then_the_global_ones_and_examples() {
    for command in commands() {
        let h = stdout(&[&command, "--help"]);
        let own = h.find("\nOptions:\n").unwrap_or_else(|| panic!("{command}: {h}"));
        let global = h.find("\nGlobal options:\n").unwrap_or_else(|| panic!("{command}: {h}"));
        assert!(own < global, "{command}: own options first\n{h}");
        let (own_part, global_part) = h[own..].split_at(global - own);
        assert!(global_part.contains("--offline") && !own_part.contains("--offline"), "{command}\n{h}");
        let examples = h.split("Examples:\n").nth(1).unwrap_or_else(|| panic!("{command} has no examples: {h}"));
        assert!(examples.lines().next().unwrap().trim_start().starts_with("modelcache "), "{command}: {examples}");
        assert!(examples.contains(&command), "{command}: {examples}");
    }
}

#[test]
fn completions_are_generated_for_each_shell_and_offer_every_command() {
    let commands = commands();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout(&["completions", shell]);
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell}: `{command}` missing");
        }
        assert!(script.contains("offline"), "{shell}: global options missing");
        assert!(!script.contains("generate-man"), "{shell}: offers a hidden command");
    }
    assert_eq!(modelcache(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn every_command_has_a_man_page() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("man-pages");
    let _ = std::fs::remove_dir_all(&dir);
    let listed = stdout(&["generate-man", dir.to_str().unwrap()]);
    let mut pages = vec!["modelcache.1".to_owned()];
    pages.extend(commands().iter().map(|c| format!("modelcache-{c}.1")));
    for page in &pages {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{page} is not a man page");
        assert!(listed.contains(page.as_str()), "{page} not reported: {listed}");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), pages.len(), "one page per command, no more");
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
