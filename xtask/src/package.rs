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
    forget_unpacked(&crates)?;
    let mut c = cmd::cargo();
    c.args(["package", "--offline", "--allow-dirty"]);
    for name in &crates {
        c.args(["-p", name]);
    }
    cmd::run(&mut c)?;
    println!("package: {} crates packaged and verified: {}", crates.len(), crates.join(", "));
    Ok(crates.len())
}

/// Forgets what an earlier run unpacked and built from `target/package/tmp-registry`.
/// Cargo unpacks a registry's crate once per name and version under
/// `$CARGO_HOME/registry/src/<registry>/` and reuses that copy later, and takes a registry
/// crate's build as done once built (its fingerprint holds the version, not the content),
/// so a second run at the same version would verify against the first run's sources.
/// Local registries are the folders whose names start with `-` (crates.io's start with
/// its host); only our crates' folders and fingerprints go (the next build of the
/// workspace recompiles our crates, nothing else).
fn forget_unpacked(crates: &[String]) -> Result<(), String> {
    let ours = |name: &str| {
        crates.iter().any(|c| {
            name.strip_prefix(c.as_str())
                .and_then(|v| v.strip_prefix('-'))
                .is_some_and(|v| v.starts_with(|ch: char| ch.is_ascii_hexdigit()))
        })
    };
    let entries = |dir: std::path::PathBuf| fs::read_dir(dir).into_iter().flatten().flatten();
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let mut stale: Vec<std::path::PathBuf> = Vec::new();
    if let Some(home) = home {
        for registry in entries(home.join("registry/src")).filter(|r| r.file_name().to_string_lossy().starts_with('-')) {
            stale.extend(entries(registry.path()).filter(|e| ours(&e.file_name().to_string_lossy())).map(|e| e.path()));
        }
    }
    let fingerprints = cmd::root().join("target/debug/.fingerprint");
    stale.extend(entries(fingerprints).filter(|e| ours(&e.file_name().to_string_lossy())).map(|e| e.path()));
    for dir in stale {
        fs::remove_dir_all(&dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
    }
    Ok(())
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
