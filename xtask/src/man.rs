//! `cargo xtask man`: a man page per command of the `modelcache` binary (`clap_mangen`, run
//! by its hidden `generate-man` command) in `target/man/`, checked against the commands
//! `modelcache --help` lists, so a new command without a page fails CI.

use std::path::PathBuf;

use crate::cmd;

/// Generates the pages into `target/man/`; returns how many there are.
pub(crate) fn run() -> Result<usize, String> {
    let dir = cmd::root().join("target/man");
    // Stale pages of a removed command must not satisfy the check below.
    if dir.is_dir() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("clearing {}: {e}", dir.display()))?;
    }
    cmd::run(cmd::cargo().args(["run", "--quiet", "-p", "cache-cli", "--", "generate-man"]).arg(&dir))?;
    let help = cmd::output(cmd::cargo().args(["run", "--quiet", "-p", "cache-cli", "--", "--help"]))?;
    let pages = expected_pages(&help);
    if pages.len() < 2 {
        return Err(format!("no commands found in `modelcache --help`:\n{help}"));
    }
    let missing: Vec<&String> = pages.iter().filter(|p| !dir.join(p).is_file()).collect();
    if !missing.is_empty() {
        return Err(format!("commands without a man page in {}: {missing:?}", dir.display()));
    }
    println!("man: {} pages in {}", pages.len(), display(&dir));
    Ok(pages.len())
}

fn display(dir: &std::path::Path) -> String {
    dir.strip_prefix(cmd::root()).map_or_else(|_| dir.display().to_string(), |p| PathBuf::from(p).display().to_string())
}

/// `modelcache.1` and `modelcache-NAME.1` for each command in the `Commands:` section of
/// `--help` (except `help`).
fn expected_pages(help: &str) -> Vec<String> {
    let mut pages = vec!["modelcache.1".to_owned()];
    let listed = help.split("Commands:\n").nth(1).and_then(|rest| rest.split("\n\n").next()).unwrap_or_default();
    // A command starts its line after two spaces; a wrapped description is indented deeper.
    for line in listed.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")) {
        match line.split_whitespace().next() {
            Some("help") | None => {}
            Some(name) => pages.push(format!("modelcache-{name}.1")),
        }
    }
    pages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_expected_for_each_listed_command() {
        let help = "Keep things\n\nUsage: modelcache <COMMAND>\n\nCommands:\n  get   Ensure files\n        are cached\n  ls    List\n  help  Print this\n\nOptions:\n  -h\n";
        assert_eq!(expected_pages(help), ["modelcache.1", "modelcache-get.1", "modelcache-ls.1"]);
    }
}
