//! End-to-end tests: the real `modelcache` binary against cache-testkit on 127.0.0.1,
//! with a temporary hub cache, home and `$HOME` per test and a scrubbed environment.
//!
//! The binary is found next to this test executable (`target/<profile>/modelcache`);
//! `cargo test --workspace` builds it (cache-cli has integration tests of its own). When
//! it is missing or older than the sources, it is built with `cargo build -p cache-cli`.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod artifacts;
mod commands;
mod dedup;
mod doctor;
mod downloads;
mod exit_codes;
mod hostile;
mod integrity;
mod interop;
mod lockfile;
mod ls;
mod materialize;
mod messages;
mod observability;
mod progress;
mod races;
mod roundtrip;
mod shared_store;
mod team;
mod typed;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use cache_testkit::{Content, RepoSpec, TestHub};

/// Bytes of the LFS weights in the standard test repo.
pub(crate) const WEIGHTS: u64 = 256 * 1024;

/// `org/model` (a config, a tokenizer, LFS weights), `org/other` (small), a dataset and
/// a space.
pub(crate) fn repos() -> Vec<RepoSpec> {
    vec![
        RepoSpec::model("org/model")
            .file("config.json", r#"{"hidden_size": 64}"#)
            .file("tokenizer.json", Content::generated(3000, 7))
            .lfs_file("model.safetensors", Content::generated(WEIGHTS, 1))
            .commit()
            .tag("v1"),
        RepoSpec::model("org/other").file("vocab.txt", "a\nb\nc\n").file("notes.md", "# notes"),
        RepoSpec::dataset("org/data").file("train.csv", "a,b\n1,2\n"),
        RepoSpec::space("org/app").file("app.py", "print('hi')\n"),
    ]
}

/// A hub with [`repos`].
pub(crate) fn hub() -> TestHub {
    TestHub::start_blocking(repos())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn newest_source(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        let t = if p.is_dir() { newest_source(&p) } else { entry.metadata().and_then(|m| m.modified()).unwrap_or(newest) };
        newest = newest.max(t);
    }
    newest
}

/// The `modelcache` binary, built if missing or stale.
pub(crate) fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let bin = profile_dir.join("modelcache");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let root = workspace_root();
        let sources = [
            "crates/cache-cli/src",
            "crates/modelcache/src",
            "crates/cache-hf/src",
            "crates/cache-remote/src",
            "crates/cache-store/src",
            "crates/cache-fetch/src",
            "crates/cache-core/src",
        ]
        .iter()
        .map(|d| newest_source(&root.join(d)))
        .max()
        .unwrap();
        if built.is_none_or(|b| b < sources) {
            let mut cargo = Command::new(env!("CARGO"));
            cargo.current_dir(&root).args(["build", "--quiet", "-p", "cache-cli", "--bin", "modelcache"]);
            if profile_dir.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            let status = cargo.status().unwrap();
            assert!(status.success(), "building the modelcache binary failed");
        }
        assert!(bin.exists(), "no modelcache binary at {}", bin.display());
        bin
    })
}

/// What a finished `modelcache` run left.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    pub(crate) fn from(out: &Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails the test with the output unless the exit code is `code`.
    #[track_caller]
    pub(crate) fn expect(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    /// Succeeded.
    #[track_caller]
    pub(crate) fn ok(self) -> Run {
        self.expect(0)
    }

    /// stdout as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// stderr as one JSON object (a `--json` error).
    pub(crate) fn json_error(&self) -> serde_json::Value {
        serde_json::from_str(&self.stderr).unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}):\n{}", self.stderr))
    }

    /// stdout lines.
    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A temporary cache and environment for the binary.
pub(crate) struct Env {
    pub(crate) tmp: tempfile::TempDir,
    pub(crate) endpoint: Option<String>,
    vars: Vec<(String, String)>,
}

impl Env {
    /// Hub cache, home and `$HOME` in a new temporary directory; `HF_ENDPOINT` is the hub.
    pub(crate) fn new(hub: &TestHub) -> Env {
        let mut e = Env::offline_only();
        e.endpoint = Some(hub.url().to_owned());
        e
    }

    /// Without an endpoint (the default would be the public Hub: never contacted here).
    pub(crate) fn offline_only() -> Env {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("user")).unwrap();
        Env { tmp, endpoint: None, vars: vec![("MODELCACHE_RETRIES".to_owned(), "0".to_owned())] }
    }

    pub(crate) fn hub_dir(&self) -> PathBuf {
        self.tmp.path().join("hub")
    }

    pub(crate) fn home_dir(&self) -> PathBuf {
        self.tmp.path().join("home")
    }

    /// Adds (or replaces) a variable for every run.
    pub(crate) fn var(&mut self, k: &str, v: &str) -> &mut Env {
        self.vars.retain(|(key, _)| key != k);
        self.vars.push((k.to_owned(), v.to_owned()));
        self
    }

    /// The command, with the scrubbed environment.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args).env_clear().stdin(Stdio::null());
        for k in ["PATH", "LANG", "TMPDIR"] {
            if let Some(v) = std::env::var_os(k) {
                c.env(k, v);
            }
        }
        let user = self.tmp.path().join("user");
        c.env("HOME", &user)
            .env("XDG_CACHE_HOME", user.join(".cache"))
            .env("XDG_CONFIG_HOME", user.join(".config"))
            .env("HF_HUB_CACHE", self.hub_dir())
            .env("MODELCACHE_HOME", self.home_dir())
            .env("NO_COLOR", "1");
        if let Some(e) = &self.endpoint {
            c.env("HF_ENDPOINT", e);
        }
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    /// Runs `modelcache args...` to completion.
    /// `program` with the variables `modelcache` gets here and no stdin: for the binary
    /// under a wrapper (a shell, `unshare`) or another tool on the same cache.
    pub(crate) fn with_env(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let template = self.command(&[]);
        let mut c = Command::new(program);
        c.env_clear().stdin(Stdio::null());
        for (k, v) in template.get_envs() {
            if let Some(v) = v {
                c.env(k, v);
            }
        }
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        Run::from(&self.command(args).output().unwrap())
    }

    /// Runs with `input` on stdin.
    pub(crate) fn run_with_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        Run::from(&child.wait_with_output().unwrap())
    }

    /// Replaces the temporary directory in `text` with `[TMP]`.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(self.tmp.path().to_str().unwrap(), "[TMP]")
    }
}

/// Every file under `dir` (relative, sorted), following no links.
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
