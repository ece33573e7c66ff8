//! The team-tier scenarios: pulling the big file from an S3 server on loopback (moto, from
//! the project's venv) against the same bytes straight from the Hub imitation, both
//! verified the same way; and pushing it (multipart) into the bucket.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::contenders::ours;
use super::report::Table;
use super::runner::{Cleanup, Contender, alternate};
use super::scenarios::Ctx;

const BUCKET: &str = "bench-tier";

/// moto on a free loopback port, killed (by PID) when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    fn start(python: &Path) -> Result<Moto, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting moto (`cargo xtask py-env` installs it): {e}"))?;
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.curl("GET", "/").is_err() {
            if Instant::now() > deadline {
                return Err("moto did not answer within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        moto.reset()?;
        Ok(moto)
    }

    fn curl(&self, method: &str, path: &str) -> Result<(), String> {
        let out = Command::new("curl")
            .args(["-sSf", "-o", "/dev/null", "-X", method])
            .arg(format!("{}{path}", self.endpoint))
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
    }

    /// Forgets every object (moto keeps them in memory) and creates the bucket again.
    fn reset(&self) -> Result<(), String> {
        self.curl("POST", "/moto-api/reset")?;
        self.curl("PUT", &format!("/{BUCKET}"))
    }

    fn env(&self, c: &mut Command) {
        c.env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true");
    }
}

fn run(mut c: Command) -> Result<(), String> {
    let status = c.stdout(Stdio::null()).status().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("a preparation step failed ({status})")) }
}

/// Pull of the big file from the tier vs. from the Hub, then a push of it (one table each).
pub(crate) fn tables(ctx: &Ctx<'_>) -> Result<Vec<Table>, String> {
    let python = ctx.bins.python.as_deref().ok_or("no Python venv (cargo xtask py-env) to run moto from")?;
    let moto = Moto::start(python)?;
    let (repo, file) = ("bench/big", "model.safetensors");
    let size_mib = ctx.plan.big >> 20;
    let tier = |mode: &str| format!("s3://{BUCKET}/hub:{mode}");
    // Seed the tier once: a Hub download into a cache of its own, then `push`.
    let seed = ctx.scratch.join("tier-seed");
    let _ = std::fs::remove_dir_all(&seed);
    let mut get = ours(ctx.bins, &seed, ctx.url_str());
    get.args(["--no-remote", "get", repo, file]);
    run(get)?;
    let mut push = ours(ctx.bins, &seed, ctx.url_str());
    moto.env(&mut push);
    push.args(["--remote", &tier("wo"), "push", repo]);
    run(push)?;

    let pulls = vec![
        Contender::new("modelcache get (from the Hub)", "ours", |d: &Path| {
            let mut c = ours(ctx.bins, d, ctx.url_str());
            c.args(["--no-remote", "get", repo, file]);
            Ok(c)
        }),
        Contender::new("modelcache get (from the S3 tier)", "ours", |d: &Path| {
            let mut c = ours(ctx.bins, d, ctx.url_str());
            moto.env(&mut c);
            c.args(["--remote", &tier("ro"), "get", repo, file]);
            Ok(c)
        }),
    ];
    let rows = alternate(&pulls, ctx.plan.runs.min(3), &ctx.scratch.join("tier-pull"), Cleanup::EachRun);
    let pull = Table {
        name: "remote",
        title: format!("Cold get of one {size_mib} MiB file: from an S3 tier on loopback (moto) vs. the Hub"),
        target: "from the tier ≤ 1.2× the direct time (both verified the same way)",
        baseline: "modelcache get (from the Hub)",
        extra_label: None,
        rows,
        note: Some("moto is a Python server: its own speed bounds the tier's; a real S3 or MinIO is faster".to_owned()),
    };

    let pushes = vec![Contender::new("modelcache push (multipart)", "ours", |_d: &Path| {
        // Each run pushes into an empty bucket (moto keeps objects in memory).
        moto.reset()?;
        let mut c = ours(ctx.bins, &seed, ctx.url_str());
        moto.env(&mut c);
        c.args(["--remote", &tier("wo"), "push", repo]);
        Ok(c)
    })];
    let rows = alternate(&pushes, ctx.plan.runs.min(3), &ctx.scratch.join("tier-push"), Cleanup::EachRun);
    let push = Table {
        name: "remote-push",
        title: format!("Push of one {size_mib} MiB file into an S3 tier on loopback (moto), in 16 MiB parts"),
        target: "bounded memory (peak RSS); the time is moto's as much as ours",
        baseline: "modelcache push (multipart)",
        extra_label: None,
        rows,
        note: None,
    };
    let _ = std::fs::remove_dir_all(&seed);
    Ok(vec![pull, push])
}
