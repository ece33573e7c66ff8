//! The team-tier scenarios: pulling the big file from S3 servers on loopback against the
//! same bytes straight from the Hub imitation, all verified the same way; and pushing it
//! (multipart) into each bucket. Two servers: `s3s-fs` (Rust, objects are files, a ranged
//! GET seeks — the tier's own cost shows) and moto (the tests' server, from the project's
//! venv: every ranged GET copies the whole object, so a pull in ranges costs O(n²)).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use super::contenders::{Bins, ours};
use super::report::Table;
use super::runner::{Cleanup, Contender, alternate};
use super::scenarios::Ctx;

const BUCKET: &str = "bench-tier";

/// A process we started, killed (by PID) when dropped.
struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn env(&self, c: &mut Command) {
        c.env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true");
    }
}

/// moto on a free loopback port.
struct Moto(Server);

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
        let moto = Moto(Server { child, endpoint: format!("http://127.0.0.1:{port}") });
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
            .arg(format!("{}{path}", self.0.endpoint))
            .output()
            .map_err(|e| format!("curl: {e}"))?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
    }

    /// Forgets every object (moto keeps them in memory) and creates the bucket again.
    fn reset(&self) -> Result<(), String> {
        self.curl("POST", "/moto-api/reset")?;
        self.curl("PUT", &format!("/{BUCKET}"))
    }
}

/// `s3s-fs` (the `s3server` helper) over a folder, removed when dropped; the server exits
/// when its stdin closes (and is killed anyway).
struct S3s {
    server: Server,
    root: PathBuf,
    _stdin: ChildStdin,
}

impl S3s {
    fn start(bins: &Bins, root: &Path) -> Result<S3s, String> {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root.join(BUCKET)).map_err(|e| format!("creating {}: {e}", root.display()))?;
        let mut child = Command::new(&bins.s3server)
            .arg(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bins.s3server.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin for s3server")?;
        let stdout = child.stdout.take().ok_or("no stdout from s3server")?;
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let mut server = Server { child, endpoint: String::new() };
        let port: u16 = read.ok().and_then(|_| line.trim().parse().ok()).ok_or("s3server did not print its port")?;
        server.endpoint = format!("http://127.0.0.1:{port}");
        Ok(S3s { server, root: root.to_owned(), _stdin: stdin })
    }

    /// Empties the bucket (objects are files under the root).
    fn reset(&self) -> Result<(), String> {
        let bucket = self.root.join(BUCKET);
        let _ = std::fs::remove_dir_all(&bucket);
        std::fs::create_dir_all(&bucket).map_err(|e| format!("emptying {}: {e}", bucket.display()))
    }
}

impl Drop for S3s {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn run(mut c: Command) -> Result<(), String> {
    let status = c.stdout(Stdio::null()).status().map_err(|e| e.to_string())?;
    if status.success() { Ok(()) } else { Err(format!("a preparation step failed ({status})")) }
}

/// Pull of the big file from each tier vs. from the Hub, then a push of it into each (one
/// table each).
pub(crate) fn tables(ctx: &Ctx<'_>) -> Result<Vec<Table>, String> {
    let python = ctx.bins.python.as_deref().ok_or("no Python venv (cargo xtask py-env) to run moto from")?;
    let s3s = S3s::start(ctx.bins, &ctx.scratch.join("tier-s3s"))?;
    let moto = Moto::start(python)?;
    let servers: [(&str, &Server); 2] = [("s3s-fs", &s3s.server), ("moto", &moto.0)];
    let (repo, file) = ("bench/big", "model.safetensors");
    let size_mib = ctx.plan.big >> 20;
    let tier = |mode: &str| format!("s3://{BUCKET}/hub:{mode}");
    // Seed the tiers once: a Hub download into a cache of its own, then `push` to each.
    let seed = ctx.scratch.join("tier-seed");
    let _ = std::fs::remove_dir_all(&seed);
    let mut get = ours(ctx.bins, &seed, ctx.url_str());
    get.args(["--no-remote", "get", repo, file]);
    run(get)?;
    for (_, server) in servers {
        let mut push = ours(ctx.bins, &seed, ctx.url_str());
        server.env(&mut push);
        push.args(["--remote", &tier("wo"), "push", repo]);
        run(push)?;
    }

    // The floors: the same bytes fetched by plain `curl -o` from the Hub and from s3s-fs
    // (signed), so the tier's row can be read against what its server allows.
    let blob = blob_key(&seed.join("hub/models--bench--big/blobs"))?;
    let hub_url = format!("{}/{repo}/resolve/main/{file}", ctx.url_str());
    let s3_url = format!("{}/{BUCKET}/hub/{blob}", s3s.server.endpoint);
    let mut pulls = vec![
        Contender::new("curl -o (from the Hub)", "floor", move |d: &Path| {
            let mut c = Command::new("curl");
            c.args(["-sSfL", "-o"]).arg(d.join("out")).arg(&hub_url);
            Ok(c)
        }),
        Contender::new("curl -o (from s3s-fs, signed)", "floor", move |d: &Path| {
            let mut c = Command::new("curl");
            // curl 7.x signs but does not send the payload hash S3 servers require.
            c.args(["-sSf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "bench:bench"])
                .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o"])
                .arg(d.join("out"))
                .arg(&s3_url);
            Ok(c)
        }),
        Contender::new("modelcache get (from the Hub)", "ours", |d: &Path| {
            let mut c = ours(ctx.bins, d, ctx.url_str());
            c.args(["--no-remote", "get", repo, file]);
            Ok(c)
        }),
    ];
    for (name, server) in servers {
        pulls.push(Contender::new(format!("modelcache get (from an S3 tier: {name})"), "ours", move |d: &Path| {
            let mut c = ours(ctx.bins, d, ctx.url_str());
            server.env(&mut c);
            c.args(["--remote", &tier("ro"), "get", repo, file]);
            Ok(c)
        }));
    }
    let rows = alternate(&pulls, ctx.plan.runs.min(3), &ctx.scratch.join("tier-pull"), Cleanup::EachRun);
    let pull = Table {
        name: "remote",
        title: format!("Cold get of one {size_mib} MiB file: from an S3 tier on loopback (s3s-fs, moto) vs. the Hub"),
        target: "from the tier (s3s-fs) ≤ 1.2× the direct time (all verified the same way); \
                 read against curl from the same server",
        baseline: "modelcache get (from the Hub)",
        extra_label: None,
        rows,
        note: Some(
            "moto reads and copies the whole object for every ranged GET, so its row grows with the square of \
             the size; it is the tests' server, not a speed reference"
                .to_owned(),
        ),
    };

    let pushes =
        vec![push_to(ctx, "s3s-fs", &s3s.server, &seed, || s3s.reset()), push_to(ctx, "moto", &moto.0, &seed, || moto.reset())];
    let rows = alternate(&pushes, ctx.plan.runs.min(3), &ctx.scratch.join("tier-push"), Cleanup::EachRun);
    let push = Table {
        name: "remote-push",
        title: format!("Push of one {size_mib} MiB file into an S3 tier on loopback (s3s-fs, moto), in 16 MiB parts"),
        target: "bounded memory (peak RSS); the time is the server's as much as ours",
        baseline: "modelcache push (multipart, to s3s-fs)",
        extra_label: None,
        rows,
        note: None,
    };
    let _ = std::fs::remove_dir_all(&seed);
    Ok(vec![pull, push])
}

/// A multipart push of the seed cache's big repo into an emptied bucket on `server`.
fn push_to<'a>(
    ctx: &'a Ctx<'_>,
    name: &str,
    server: &'a Server,
    seed: &'a Path,
    reset: impl Fn() -> Result<(), String> + 'a,
) -> Contender<'a> {
    Contender::new(format!("modelcache push (multipart, to {name})"), "ours", move |_d: &Path| {
        reset()?;
        let mut c = ours(ctx.bins, seed, ctx.url_str());
        server.env(&mut c);
        c.args(["--remote", &format!("s3://{BUCKET}/hub:wo"), "push", "bench/big"]);
        Ok(c)
    })
}

/// The tier key of the one LFS blob in `blobs` (a hub cache's `blobs/` folder of the seeded
/// repo): `v1/blobs/sha256/<ab>/<hex>`.
fn blob_key(blobs: &Path) -> Result<String, String> {
    let entries = std::fs::read_dir(blobs).map_err(|e| format!("reading {}: {e}", blobs.display()))?;
    let hex = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .find(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("no sha256 blob in {}", blobs.display()))?;
    Ok(format!("v1/blobs/sha256/{}/{hex}", &hex[..2]))
}
