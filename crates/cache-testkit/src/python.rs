//! The Python interpreter with the real `huggingface_hub` package, for interop tests.
//!
//! `cargo xtask ci` (and `cargo xtask py-env`) create a virtualenv under `target/py-env`
//! and pass its interpreter in `MODELCACHE_TEST_PYTHON`. A test run by plain `cargo test`
//! finds the same venv if it exists. Tests never skip when Python is missing: they fail
//! with the reason and the command that fixes it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable through which `cargo xtask` passes the interpreter.
pub const PYTHON_ENV: &str = "MODELCACHE_TEST_PYTHON";

/// The venv interpreter with `huggingface_hub` 2.x importable, or why there is none.
pub fn interpreter() -> Result<PathBuf, String> {
    let candidate = match std::env::var_os(PYTHON_ENV) {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/py-env/bin/python"),
    };
    if !candidate.exists() {
        return Err(format!(
            "no Python with huggingface_hub at `{}`: run `cargo xtask py-env` (`cargo xtask ci` does this) or set {PYTHON_ENV}",
            candidate.display()
        ));
    }
    let out = Command::new(&candidate)
        .args(["-c", "import huggingface_hub; print(huggingface_hub.__version__)"])
        .output()
        .map_err(|e| format!("could not run `{}`: {e}", candidate.display()))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || !version.starts_with("2.") {
        return Err(format!(
            "`{}` cannot import huggingface_hub 2.x (got {version:?}; stderr: {}): run `cargo xtask py-env`",
            candidate.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(candidate)
}

/// Like [`interpreter`], but panics with the reason: for tests, which must not skip.
pub fn require_interpreter() -> PathBuf {
    interpreter().unwrap_or_else(|e| panic!("this test needs the real huggingface_hub package: {e}"))
}

fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }
}
