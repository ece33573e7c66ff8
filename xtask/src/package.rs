//! `cargo xtask package`: `cargo package` of every publishable crate (those under
//! `crates/`), together and offline, so each one builds from its `.crate` file alone
//! against the others as a registry would serve them.
//!
//! The crates are packaged in one invocation because they depend on each other (and on
//! `cache-testkit` for their tests): cargo then verifies each against a local registry of
//! the others' packages (`target/package/tmp-registry`), so no crate needs to be on
//! crates.io first, and `--offline` keeps it to the index cache already on disk. The
//! tools (`xtask`, `tests`, `benches`) inherit `publish = false` and are left out.

use std::fs;

use crate::cmd;

/// The metadata crates.io shows, required of every publishable crate.
const REQUIRED: &[&str] = &["description", "license", "repository", "readme", "keywords", "categories"];

/// The names of the crates under `crates/`, all publishable.
pub(crate) fn publishable() -> Result<Vec<String>, String> {
    let dir = cmd::root().join("crates");
    let mut names = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| format!("reading {}: {e}", dir.display()))? {
        let manifest = entry.map_err(|e| e.to_string())?.path().join("Cargo.toml");
        let Ok(text) = fs::read_to_string(&manifest) else { continue };
        let missing = missing_metadata(&text);
        if !missing.is_empty() {
            return Err(format!("{} lacks package metadata: {}", manifest.display(), missing.join(", ")));
        }
        if let Some(name) = text.lines().find_map(|l| l.strip_prefix("name = \"").and_then(|r| r.strip_suffix('"'))) {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The required keys a manifest's `[package]` table neither sets nor inherits, and
/// `publish` if it opts out of publishing.
fn missing_metadata(manifest: &str) -> Vec<String> {
    let package = manifest.split("\n[").next().unwrap_or_default();
    let keys: Vec<&str> =
        package.lines().filter_map(|l| l.split_once('=')).map(|(k, _)| k.trim().trim_end_matches(".workspace")).collect();
    let mut missing: Vec<String> = REQUIRED.iter().filter(|k| !keys.contains(k)).map(|k| (*k).to_owned()).collect();
    if package.lines().any(|l| matches!(l.replace(' ', "").as_str(), "publish=false" | "publish.workspace=true")) {
        missing.push("publish (must be publishable, not `publish = false`)".to_owned());
    }
    missing
}

/// Packages and verifies every publishable crate.
pub(crate) fn run() -> Result<usize, String> {
    let crates = publishable()?;
    let mut c = cmd::cargo();
    c.args(["package", "--offline", "--allow-dirty"]);
    for name in &crates {
        c.args(["-p", name]);
    }
    cmd::run(&mut c)?;
    println!("package: {} crates packaged and verified: {}", crates.len(), crates.join(", "));
    Ok(crates.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crate_under_crates_has_complete_package_metadata() {
        let crates = publishable().unwrap();
        for expected in ["cache-core", "cache-store", "cache-fetch", "cache-hf", "modelcache", "cache-cli", "cache-testkit"] {
            assert!(crates.iter().any(|c| c == expected), "{expected} is not publishable: {crates:?}");
        }
    }

    #[test]
    fn a_manifest_missing_a_key_or_opting_out_is_named() {
        let manifest = "[package]\nname = \"x\"\ndescription = \"d\"\nlicense.workspace = true\npublish.workspace = true\n\n[dependencies]\nkeywords = 1\n";
        assert_eq!(
            missing_metadata(manifest),
            ["repository", "readme", "keywords", "categories", "publish (must be publishable, not `publish = false`)"]
        );
    }
}
