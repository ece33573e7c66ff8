//! `cargo xtask demo`: what makes modelcache worth it, shown end to end with the real
//! binaries in well under a minute once built.
//!
//! Builds `modelcache` and `cache-testkit` in release mode, starts the testkit hub on
//! 127.0.0.1 serving a small model (a config, a tokenizer, an 8 MiB LFS weights file), a
//! second model and a repo for Python, and runs a session — each command printed before it
//! runs, with every setting it changes: a cold `get` with progress bars (on a terminal), a
//! hit, Python's `huggingface_hub` (the venv of `cargo xtask py-env`) reading offline what
//! modelcache downloaded and modelcache reading offline what Python downloaded, a download
//! cut mid-transfer and resumed, what people type (a short commit, an `hf://` URI, `ls`
//! filters), a corrupted blob caught by `verify` and repaired (and Python reading the
//! repaired file), `prune` under a size limit keeping a pinned model, and a team tier (a
//! shared directory) that this cache seeds and a second cache fills from with no body byte
//! from the Hub; then a recap and next steps. Every directory is temporary (never the user's cache, config or token); only
//! the server started here is stopped, by its PID. Any step with an unexpected exit code
//! fails the demo.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::{cmd, py};

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

/// `arg` as a shell reads it back: single-quoted when it holds anything but plain characters.
fn shell_quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./@:=,%+".contains(c)) {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

struct Session {
    bin: PathBuf,
    python: PathBuf,
    tmp: PathBuf,
    endpoint: String,
}

impl Session {
    /// The demo's environment: temporary directories, the testkit hub, no token.
    fn env(&self, c: &mut Command) {
        c.env("HF_ENDPOINT", &self.endpoint)
            .env("HF_HUB_CACHE", self.tmp.join("hub"))
            .env("HF_HOME", self.tmp.join("hf-home"))
            .env("MODELCACHE_HOME", self.tmp.join("modelcache-home"))
            .env("XDG_CONFIG_HOME", self.tmp.join("config"))
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("MODELCACHE_OFFLINE");
    }

    /// Runs a Python script with huggingface_hub on the same cache, printing it first.
    fn python(&self, script: &str, offline: bool) -> Result<(), String> {
        let prefix = if offline { "HF_HUB_OFFLINE=1 " } else { "" };
        println!("\n{}", style("1", &format!("$ {prefix}python - <<'EOF'")));
        for line in script.trim().lines() {
            println!("{}", style("1", line));
        }
        println!("{}", style("1", "EOF"));
        let _ = std::io::stdout().flush();
        let mut c = Command::new(&self.python);
        self.env(&mut c);
        c.args(["-c", script]).env("HF_HUB_DISABLE_TELEMETRY", "1").env("HF_HUB_DISABLE_PROGRESS_BARS", "1");
        if offline {
            c.env("HF_HUB_OFFLINE", "1");
        }
        let status = c.status().map_err(|e| format!("could not run {}: {e}", self.python.display()))?;
        if status.success() { Ok(()) } else { Err(format!("the Python step failed ({status})")) }
    }

    /// Replaces the hub's faults (`POST /_testkit/faults`, a JSON body), saying so.
    fn faults(&self, json: &str) -> Result<(), String> {
        println!("{}", style("2", &format!("(testkit hub faults now: {json})")));
        let addr = self.endpoint.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = std::net::TcpStream::connect(addr).map_err(|e| format!("connecting to the hub: {e}"))?;
        let request = format!(
            "POST /_testkit/faults HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        );
        let mut answer = String::new();
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.read_to_string(&mut answer))
            .map_err(|e| format!("setting the hub's faults: {e}"))?;
        if answer.starts_with("HTTP/1.1 2") { Ok(()) } else { Err(format!("the hub refused the faults: {answer}")) }
    }

    /// Runs `modelcache args` with the demo's environment, printing the command first;
    /// fails unless it exits with `expected`.
    fn run(&self, args: &[&str], expected: i32, extra_env: &[(&str, &str)]) -> Result<(), String> {
        let shown: Vec<String> = extra_env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        println!("\n{}", style("1", &format!("$ {}modelcache {}", shown.concat(), quoted.join(" "))));
        let _ = std::io::stdout().flush();
        let mut c = Command::new(&self.bin);
        c.args(args);
        self.env(&mut c);
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

/// A team tier (a shared directory here; a bucket works the same): this cache seeds it,
/// then a second cache fills from it while the Hub's file routes fail.
fn team_tier(s: &Session) -> Result<(), String> {
    let tier = format!("file://{}", s.tmp.join("team-tier").display());
    println!("\n# A team tier: this cache seeds a shared directory (an NFS export; an S3 bucket works the same).");
    s.run(&["--remote", &format!("{tier}:wo"), "push", "demo/tiny-model"], 0, &[])?;
    s.run(&["--remote", &tier, "remote", "ls"], 0, &[])?;
    println!("\n# A second machine's cache fills from the tier: the Hub's file routes now fail, so not one");
    println!("# body byte comes from the Hub (metadata still does); every blob is verified before it is used.");
    s.faults(r#"{"fail": {"status": 500, "count": 1000000}, "path_contains": "/resolve/"}"#)?;
    let second = s.tmp.join("second-machine");
    let (hub, home) = (second.join("hub"), second.join("home"));
    let env = [("HF_HUB_CACHE", hub.to_str().unwrap_or_default()), ("MODELCACHE_HOME", home.to_str().unwrap_or_default())];
    s.run(&["--remote", &format!("{tier}:ro"), "get", "demo/tiny-model"], 0, &env)?;
    s.run(&["--remote", &format!("{tier}:ro"), "stats"], 0, &env)?;
    s.faults("{}")
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
        "--repo",
        "demo/from-python",
        "--file",
        "config.json=text:{\"fetched_by\": \"huggingface_hub\"}",
        "--file",
        "data.bin=1MiB:lfs",
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

/// Python reading, offline, what modelcache downloaded: same paths, no warning.
const PY_READS: &str = r#"
import warnings
from huggingface_hub import hf_hub_download, scan_cache_dir
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    print(hf_hub_download("demo/tiny-model", "model.safetensors"))
    info = scan_cache_dir()
print([r.cache_id for r in info.repos], "warnings:", len(caught) + len(info.warnings))
"#;

/// Python downloading a repo modelcache then reads offline.
const PY_DOWNLOADS: &str = r#"
from huggingface_hub import snapshot_download
print(snapshot_download("demo/from-python"))
"#;

/// Python checking the repaired weights against their etag.
const PY_CHECKS: &str = r#"
import hashlib
from huggingface_hub import hf_hub_download, get_hf_file_metadata, hf_hub_url
path = hf_hub_download("demo/tiny-model", "model.safetensors")
print("sha256", hashlib.sha256(open(path, "rb").read()).hexdigest(), "==", get_hf_file_metadata(hf_hub_url("demo/tiny-model", "model.safetensors")).etag)
"#;

const RECAP: &str = "
demo: every step behaved as expected. What you saw:
  - one download per file; hits and `--offline` answered from disk
  - Python's huggingface_hub and modelcache read each other's downloads (one cache, one layout)
  - a cut transfer resumed from where it stopped, not from zero
  - short commits, `hf://` URIs, `hf cache ls` ids and `ls --filter/--ids` accepted
  - bit rot caught by `verify`, repaired by `verify --repair`
  - `prune` under a size limit kept the pinned model
  - a second cache filled from a team tier with no body byte from the Hub

Next steps:
  cargo build --release -p cache-cli          # then put target/release/modelcache on PATH
  modelcache get openai/whisper-tiny config.json
  modelcache ls --revisions && modelcache stats
  modelcache config                           # every setting and where it came from
  README.md lists every command, setting, exit code and JSON shape.";

pub(crate) fn run() -> Result<(), String> {
    cmd::run(cmd::cargo().args(["build", "--release", "-p", "cache-cli", "-p", "cache-testkit"]))?;
    let release = cmd::root().join("target/release");
    let tmp = TempDir(std::env::temp_dir().join(format!("modelcache-demo-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).map_err(|e| format!("creating {}: {e}", tmp.0.display()))?;
    let (_server, endpoint) = start_server(&release.join("cache-testkit"))?;
    let python = py::ensure()?;
    let s = Session { bin: release.join("modelcache"), python, tmp: tmp.0.clone(), endpoint };
    println!("temporary cache under {} (removed at the end)", tmp.0.display());

    println!("\n# A cold download: progress bars on stderr when it is a terminal; the paths on stdout.");
    s.run(&["get", "demo/tiny-model"], 0, &[])?;
    println!("\n# The same files again: a cache hit (one revalidation request, no body bytes).");
    s.run(&["get", "demo/tiny-model", "config.json", "model.safetensors"], 0, &[])?;
    s.run(&["--offline", "get", "demo/tiny-model", "config.json"], 0, &[])?;
    s.run(&["get", "demo/tiny-model@v1.0", "config.json"], 0, &[])?;

    println!("\n# Python's huggingface_hub reads what modelcache downloaded, offline, with no warning...");
    s.python(PY_READS, true)?;
    println!("\n# ...and modelcache reads, offline, what huggingface_hub downloaded.");
    s.python(PY_DOWNLOADS, false)?;
    s.run(&["--offline", "get", "demo/from-python", "config.json", "data.bin"], 0, &[])?;

    println!("\n# A transfer cut after 1.5 MiB (the hub drops the connection once; retries off for this step).");
    s.faults(r#"{"throttle_bps": 6291456, "drop": {"after_bytes": 1572864, "count": 1}, "path_contains": "/cdn/"}"#)?;
    s.run(&["get", "demo/other-model"], 3, &[("MODELCACHE_RETRIES", "0")])?;
    s.faults(r#"{"throttle_bps": 6291456}"#)?;
    s.run(&["ls"], 0, &[])?;
    println!("\n# The next `get` resumes it: `bytes_downloaded` is only what was missing.");
    s.run(&["--json", "get", "demo/other-model"], 0, &[])?;

    println!("\n# What people type: a short commit as `ls --revisions` prints it, an hf:// URI, ls filters.");
    s.run(&["ls", "--revisions"], 0, &[])?;
    let main = std::fs::read_to_string(s.tmp.join("hub/models--demo--tiny-model/refs/main"))
        .map_err(|e| format!("reading the model's ref: {e}"))?;
    let short = format!("demo/tiny-model@{}", main.trim().get(..12).unwrap_or_default());
    s.run(&["--offline", "get", &short, "config.json"], 0, &[])?;
    s.run(&["get", "hf://demo/tiny-model@v1.0/config.json"], 0, &[])?;
    s.run(&["ls", "--filter", "size>2MiB", "--sort", "size", "--ids"], 0, &[])?;
    s.run(&["stats"], 0, &[])?;

    let blob = corrupt_weights(&s.tmp.join("hub"))?;
    println!("\n# Bit rot: 7 bytes of blobs/{blob} overwritten behind modelcache's back.");
    s.run(&["verify"], 5, &[])?;
    s.run(&["verify", "--repair"], 0, &[])?;
    s.run(&["verify"], 0, &[])?;
    println!("\n# The repaired weights, as Python sees them: their sha256 is their etag again.");
    s.python(PY_CHECKS, false)?;

    println!("\n# A size limit: the pinned model stays, the least recently used others go.");
    println!(
        "# Everything here was used seconds ago, and files used within `in_use_grace` (default 5 min)\n\
         # are never evicted: this step sets MODELCACHE_IN_USE_GRACE=0s, shown before each command."
    );
    s.run(&["pin", "demo/tiny-model"], 0, &[])?;
    s.run(&["prune", "--max-size", "10MiB", "--dry-run"], 0, &[("MODELCACHE_IN_USE_GRACE", "0s")])?;
    s.run(&["prune", "--max-size", "10MiB"], 0, &[("MODELCACHE_IN_USE_GRACE", "0s")])?;
    s.run(&["ls"], 0, &[])?;
    team_tier(&s)?;
    println!("{RECAP}");
    Ok(())
}
