//! The Python virtualenv (under `target/py-env`) with the real `huggingface_hub` package,
//! for the interop tests, and `prometheus_client`, whose `OpenMetrics` parser reads
//! `stats --format openmetrics` in the end-to-end tests, and `moto`, the S3 API server the
//! team-tier tests run on loopback. Tests find its interpreter in `MODELCACHE_TEST_PYTHON`.

use std::path::PathBuf;
use std::process::Command;

use crate::cmd;

/// The variable through which tests receive the venv's interpreter.
pub(crate) const PYTHON_ENV: &str = "MODELCACHE_TEST_PYTHON";
/// The package the interop tests drive: the 2.x line, whose cache layout modelcache writes.
const REQUIREMENT: &str = "huggingface_hub>=2.4,<3";
/// The `OpenMetrics` parser (`prometheus_client.openmetrics.parser`).
const METRICS_REQUIREMENT: &str = "prometheus_client>=0.20,<1";
/// A real S3 API server on loopback for the team-tier tests (`python -m moto.server`).
const S3_REQUIREMENT: &str = "moto[server]>=5,<6";

/// Creates the venv and installs `huggingface_hub` and `prometheus_client` unless already
/// there; returns the interpreter's path.
pub(crate) fn ensure() -> Result<PathBuf, String> {
    let venv = cmd::root().join("target/py-env");
    let python = venv.join("bin/python");
    // The `hf` command the tests run: a venv moved from another folder imports fine but
    // its scripts name the old interpreter.
    let hf_runs = || Command::new(venv.join("bin/hf")).arg("version").output().is_ok_and(|o| o.status.success());
    let ready = || {
        Command::new(&python)
            .args([
                "-c",
                "import huggingface_hub, prometheus_client.openmetrics.parser, moto.server, sys; \
                 sys.exit(0 if huggingface_hub.__version__.startswith('2.') else 1)",
            ])
            .output()
            .is_ok_and(|o| o.status.success())
            && hf_runs()
    };
    if python.exists() && ready() {
        return Ok(python);
    }
    if python.exists() && !hf_runs() {
        println!("{} was moved or is broken: creating it again", venv.display());
        std::fs::remove_dir_all(&venv).map_err(|e| format!("removing {}: {e}", venv.display()))?;
    }
    let system = ["python3", "python"]
        .into_iter()
        .find(|p| Command::new(p).arg("--version").output().is_ok_and(|o| o.status.success()))
        .ok_or("no `python3` on PATH: install Python 3.9+ to run the interop tests")?;
    if !python.exists() {
        cmd::run(Command::new(system).args(["-m", "venv"]).arg(&venv))?;
    }
    let pip =
        ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENT, METRICS_REQUIREMENT, S3_REQUIREMENT];
    cmd::run(Command::new(&python).args(pip))?;
    if ready() {
        Ok(python)
    } else {
        Err(format!("`{REQUIREMENT}`, `{METRICS_REQUIREMENT}` or `{S3_REQUIREMENT}` did not import after installation"))
    }
}
