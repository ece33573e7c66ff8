//! No silent no-ops or misleading words: every request that does nothing says so, and
//! every message names what was chosen and where a value came from.

use crate::{Env, hub};

#[test]
fn an_include_that_matches_nothing_is_an_error_or_a_warning_beside_one_that_matched() {
    let hub = hub();
    let env = Env::new(&hub);
    let none = env.run(&["get", "org/model", "--include", "*.JSON"]).expect(2);
    assert!(none.stdout.is_empty(), "no path is printed: {}", none.stdout);
    assert!(
        none.stderr.contains("error: `--include` `*.JSON` matched no file of `org/model@main`: nothing was fetched"),
        "{}",
        none.stderr
    );
    assert!(none.stderr.contains("hint: "), "{}", none.stderr);
    let some = env.run(&["get", "org/model", "--include", "*.json", "--include", "*.onnx"]).ok();
    assert_eq!(some.lines().len(), 1, "the snapshot directory: {}", some.stdout);
    assert_eq!(
        some.stderr.trim(),
        "warning: `--include` `*.onnx` matched no file of `org/model@main`",
        "one warning, naming the glob"
    );
    let json = env.run(&["--json", "get", "org/model", "--include", "*.json", "--include", "*.onnx"]).ok().json();
    assert_eq!(json[0]["unmatched_include"], serde_json::json!(["*.onnx"]));
    let offline = env.run(&["--offline", "get", "org/model", "--include", "nothing*"]).expect(2);
    assert!(offline.stderr.contains("`nothing*` matched no file"), "offline too, from the cached listing: {}", offline.stderr);
}

#[test]
fn unpin_of_what_is_not_pinned_says_so() {
    let hub = hub();
    let env = Env::new(&hub);
    env.run(&["get", "org/other", "vocab.txt"]).ok();
    let never = env.run(&["unpin", "org/other"]).ok();
    assert_eq!(never.stdout, "`org/other` was not pinned: nothing changed\n");
    env.run(&["pin", "org/other"]).ok();
    assert_eq!(env.run(&["unpin", "org/other"]).ok().stdout, "unpinned `org/other`\n");
    let again = env.run(&["--json", "unpin", "org/other"]).ok().json();
    assert_eq!((again["pinned"].as_bool(), again["was_pinned"].as_bool()), (Some(false), Some(false)));
}
