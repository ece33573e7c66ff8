//! `cargo xtask demo`: the main job, shown end to end with the real binaries.
//!
//! Builds `modelcache` and `cache-testkit` in release mode, starts the testkit hub on
//! 127.0.0.1 serving a small model (a config, a tokenizer, an 8 MiB LFS weights file) and
//! a second repo, and runs a session — each command printed before it runs: a cold `get`
//! with progress bars (on a terminal), a hit, `ls`, `stats`, a corrupted blob caught by
//! `verify` and repaired, and `prune` under a size limit keeping a pinned model. Every
//! directory is temporary (never the user's cache, config or token); only the server
//! started here is stopped, by its PID. Any step with an unexpected exit code fails the
//! demo.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::cmd;

/// The temporary directory, removed when the demo ends however it ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The hub server, stopped (by PID, as a child of this process) when the demo ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Bold (`1`) or dim (`2`) on a terminal without `NO_COLOR`.
fn style(code: &str, text: &str) -> String {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

struct Session {
    bin: PathBuf,
    tmp: PathBuf,
    endpoint: String,
}

impl Session {
    /// Runs `modelcache args` with the demo's environment, printing the command first;
    /// fails unless it exits with `expected`.
    fn run(&self, args: &[&str], expected: i32, extra_env: &[(&str, &str)]) -> Result<(), String> {
        let shown: Vec<String> = extra_env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        println!("\n{}", style("1", &format!("$ {}modelcache {}", shown.concat(), args.join(" "))));
        let _ = std::io::stdout().flush();
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("HF_ENDPOINT", &self.endpoint)
            .env("HF_HUB_CACHE", self.tmp.join("hub"))
            .env("HF_HOME", self.tmp.join("hf-home"))
            .env("MODELCACHE_HOME", self.tmp.join("modelcache-home"))
            .env("XDG_CONFIG_HOME", self.tmp.join("config"))
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("MODELCACHE_OFFLINE");
        for (k, v) in extra_env {
            c.env(k, v);
        }
        let start = Instant::now();
        let status = c.status().map_err(|e| format!("could not run {}: {e}", self.bin.display()))?;
        let code = status.code().unwrap_or(-1);
        println!("{}", style("2", &format!("(exit {code}, {} ms)", start.elapsed().as_millis())));
        if code == expected {
            Ok(())
        } else {
            Err(format!("`modelcache {}` exited with {code}, expected {expected}", args.join(" ")))
        }
    }
}

fn start_server(bin: &Path) -> Result<(Server, String), String> {
    let args = [
        "serve",
        "--port",
        "0",
        "--throttle",
        "6MiB",
        "--repo",
        "demo/tiny-model",
        "--file",
        "config.json=text:{\"architectures\": [\"TinyModel\"], \"hidden_size\": 256}",
        "--file",
        "tokenizer.json=256KiB",
        "--file",
        "model.safetensors=8MiB:lfs",
        "--tag",
        "v1.0",
        "--repo",
        "demo/other-model",
        "--file",
        "config.json=text:{}",
        "--file",
        "weights.bin=4MiB:lfs",
    ];
    println!("$ {} {}", bin.display(), args.join(" "));
    let mut child = Command::new(bin)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start the testkit hub: {e}"))?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        reader.read_line(&mut first).map_err(|e| format!("reading the hub's address: {e}"))?;
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in reader.lines() {});
    }
    let server = Server(child);
    let url = first.trim().to_owned();
    if !url.starts_with("http://127.0.0.1:") {
        return Err(format!("the testkit hub printed `{url}` instead of its address"));
    }
    println!("testkit hub (pid {}) listening on {url}", server.0.id());
    Ok((server, url))
}

/// Flips bytes in the middle of the model's weights blob; returns its name.
fn corrupt_weights(hub: &Path) -> Result<String, String> {
    let blobs = hub.join("models--demo--tiny-model/blobs");
    let entries = std::fs::read_dir(&blobs).map_err(|e| format!("reading {}: {e}", blobs.display()))?;
    let biggest =
        entries.flatten().filter_map(|e| Some((e.metadata().ok()?.len(), e.path()))).max().ok_or("no blobs were downloaded")?.1;
    let mut f = std::fs::OpenOptions::new().write(true).open(&biggest).map_err(|e| format!("opening the blob: {e}"))?;
    f.seek(SeekFrom::Start(4 << 20)).and_then(|_| f.write_all(b"bit rot")).map_err(|e| format!("corrupting the blob: {e}"))?;
    Ok(biggest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

pub(crate) fn run() -> Result<(), String> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "cache-cli", "-p", "cache-testkit"]))?;
    let release = cmd::root().join("target/release");
    let tmp = TempDir(std::env::temp_dir().join(format!("modelcache-demo-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).map_err(|e| format!("creating {}: {e}", tmp.0.display()))?;
    let (_server, endpoint) = start_server(&release.join("cache-testkit"))?;
    let s = Session { bin: release.join("modelcache"), tmp: tmp.0.clone(), endpoint };
    println!("temporary cache under {} (removed at the end)", tmp.0.display());

    println!("\n# A cold download: progress bars on stderr when it is a terminal; the paths on stdout.");
    s.run(&["get", "demo/tiny-model"], 0, &[])?;
    println!("\n# The same files again: a cache hit (one revalidation request, no body bytes).");
    s.run(&["get", "demo/tiny-model", "config.json", "model.safetensors"], 0, &[])?;
    s.run(&["--offline", "get", "demo/tiny-model", "config.json"], 0, &[])?;
    s.run(&["get", "demo/tiny-model@v1.0", "config.json"], 0, &[])?;
    s.run(&["get", "demo/other-model"], 0, &[])?;
    s.run(&["ls"], 0, &[])?;
    s.run(&["stats"], 0, &[])?;

    let blob = corrupt_weights(&s.tmp.join("hub"))?;
    println!("\n# Bit rot: 7 bytes of blobs/{blob} overwritten behind modelcache's back.");
    s.run(&["verify"], 5, &[])?;
    s.run(&["verify", "--repair"], 0, &[])?;
    s.run(&["verify"], 0, &[])?;

    println!("\n# A size limit: the pinned model stays, the least recently used other one goes.");
    s.run(&["pin", "demo/tiny-model"], 0, &[])?;
    s.run(&["prune", "--max-size", "10MiB", "--dry-run"], 0, &[("MODELCACHE_IN_USE_GRACE", "0s")])?;
    s.run(&["prune", "--max-size", "10MiB"], 0, &[("MODELCACHE_IN_USE_GRACE", "0s")])?;
    s.run(&["ls"], 0, &[])?;
    s.run(&["--json", "stats"], 0, &[])?;
    println!("\ndemo: every step behaved as expected");
    Ok(())
}
