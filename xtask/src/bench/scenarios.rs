//! The scenarios of the performance issue, each a table of contenders.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::contenders::{self, Bins, PY_GET, PY_SCAN, PY_SNAPSHOT, hf_hub, ours, python, resolve_url};
use super::hub::Hub;
use super::measure;
use super::report::Table;
use super::runner::{Cleanup, Contender, alternate};

/// Sizes and repetitions for one mode (full or `--quick`).
pub(crate) struct Plan {
    pub(crate) big: u64,
    pub(crate) verify_files: usize,
    pub(crate) verify_size: u64,
    pub(crate) runs: usize,
    pub(crate) warm_runs: usize,
    pub(crate) entries: (usize, usize),
}

impl Plan {
    pub(crate) fn new(quick: bool) -> Plan {
        if quick {
            Plan { big: 256 << 20, verify_files: 2, verify_size: 512 << 20, runs: 2, warm_runs: 8, entries: (100, 1_000) }
        } else {
            Plan { big: 1 << 30, verify_files: 4, verify_size: 1 << 30, runs: 5, warm_runs: 20, entries: (100, 1_000) }
        }
    }

    /// The sizes of the 500 small files: 4–64 KiB, fixed by a seed.
    pub(crate) fn small_sizes() -> Vec<u64> {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        (0..500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (4 << 10) + x % (60 << 10)
            })
            .collect()
    }

    /// The `serve` flags for every repo the scenarios use.
    pub(crate) fn hub_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut repo = |name: &str, files: Vec<String>| {
            a.push("--repo".into());
            a.push(name.into());
            for f in files {
                a.push("--file".into());
                a.push(f);
            }
        };
        repo("bench/big", vec![format!("model.safetensors={}:lfs", self.big)]);
        repo("bench/resume", vec![format!("model.safetensors={}:lfs", self.big)]);
        repo("bench/multi", vec![format!("model.safetensors={}:lfs", self.big)]);
        repo("bench/small", Plan::small_sizes().iter().enumerate().map(|(i, s)| format!("files/f{i:03}.json={s}")).collect());
        repo("bench/warm", vec!["config.json=2KiB".into()]);
        repo("bench/verify", (0..self.verify_files).map(|i| format!("shard-{i}.safetensors={}:lfs", self.verify_size)).collect());
        a
    }
}

/// Everything a scenario needs.
pub(crate) struct Ctx<'a> {
    pub(crate) bins: &'a Bins,
    pub(crate) hub: &'a Hub,
    pub(crate) plan: &'a Plan,
    pub(crate) scratch: PathBuf,
}

impl Ctx<'_> {
    fn url(&self) -> &str {
        &self.hub.url
    }

    /// The hub's URL (for the scenarios of other modules).
    pub(crate) fn url_str(&self) -> &str {
        self.url()
    }

    fn py(&self, dir: &Path, script: &str, args: &[&str]) -> Result<Command, String> {
        python(self.bins, dir, self.url(), script, args)
            .ok_or_else(|| "no Python with huggingface_hub (cargo xtask py-env)".to_owned())
    }

    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.scratch.join(name)
    }

    /// An empty scratch directory (emptied when it exists).
    pub(crate) fn fresh_dir(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.scratch(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// How the server paces a cold download.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// As fast as loopback and the two cores allow.
    Loopback,
    /// 50 MB/s per connection: a slow link that parallel ranges beat.
    Capped,
    /// 400 MB/s per connection (3.2 Gbit/s): a fast link that, unlike loopback, leaves
    /// the CPU room to hash beside the transfer.
    Fast,
}

/// `curl -o DIR/out URL`: the plain download every cold scenario is measured against.
fn curl_o(dir: &Path, url: &str) -> Command {
    let mut c = Command::new("curl");
    c.args(["-sSfL", "-o"]).arg(dir.join("out")).arg(url);
    c
}

/// Cold download of one large LFS file, over loopback or a capped link.
pub(crate) fn cold(ctx: &Ctx<'_>, link: Link) -> Table {
    let (repo, file) = ("bench/big", "model.safetensors");
    let url = resolve_url(ctx.url(), repo, file);
    let cap = match link {
        Link::Loopback => "{}",
        Link::Capped => r#"{"throttle_bps": 50000000}"#,
        Link::Fast => r#"{"throttle_bps": 400000000}"#,
    };
    let set_faults = || ctx.hub.set_faults(cap);
    let mut contenders = vec![
        Contender::new("curl -o", "floor", |d: &Path| {
            set_faults()?;
            Ok(curl_o(d, &url))
        }),
        Contender::new("modelcache get", "ours", |d: &Path| {
            set_faults()?;
            let mut c = ours(ctx.bins, d, ctx.url());
            c.args(["get", repo, file]);
            Ok(c)
        }),
        Contender::new("hf-hub download_file", "peer", |d: &Path| {
            set_faults()?;
            Ok(hf_hub(ctx.bins, d, ctx.url(), "get", repo, &[file]))
        }),
        Contender::new("huggingface_hub hf_hub_download", "peer", |d: &Path| {
            set_faults()?;
            ctx.py(d, PY_GET, &[repo, file])
        }),
    ];
    if link == Link::Loopback {
        // What a download costs once its bytes are on the disk, as ours are before it is
        // published (curl and the peers leave them in the page cache): the floor for a
        // download that survives a power cut.
        contenders.insert(
            1,
            Contender::new("curl -o, then fsync", "floor", |d: &Path| {
                set_faults()?;
                let mut c = Command::new("sh");
                c.args(["-c", r#"curl -sSfL -o "$1" "$2" && sync "$1""#, "sh"]).arg(d.join("out")).arg(&url);
                Ok(c)
            }),
        );
        // One untimed transfer first: the first scenario of a run otherwise pays for the
        // server's and the page cache's warm-up in its first rounds.
        if let Ok(dir) = ctx.fresh_dir("cold-warm-up") {
            let _ = curl_o(&dir, &url).status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let runs = if link == Link::Loopback { ctx.plan.runs } else { ctx.plan.runs.min(3) };
    let (name, title, target) = match link {
        Link::Loopback => (
            "cold",
            format!("Cold download of one {} LFS file", mib(ctx.plan.big)),
            "≤ 1.1× curl; ≤ 1.3× hf-hub; peak RSS < 64 MiB",
        ),
        Link::Capped => (
            "cold-capped",
            format!("Cold download of one {} LFS file, server capped at 50 MB/s per connection", mib(ctx.plan.big)),
            "≥ 6× faster than curl; ≥ every peer",
        ),
        Link::Fast => (
            "cold-link",
            format!(
                "Cold download of one {} LFS file, server capped at 400 MB/s per connection (the CPU is no longer the limit)",
                mib(ctx.plan.big)
            ),
            "≤ 1.1× curl; ≤ 1.3× hf-hub: verifying costs no time when the link sets the pace",
        ),
    };
    let rows = alternate(&contenders, runs, &ctx.scratch(name), Cleanup::EachRun);
    let _ = ctx.hub.set_faults("{}");
    Table { name, title, target, baseline: "curl -o", extra_label: None, rows, note: None }
}

/// A snapshot of 500 files of 4–64 KiB, written under `target/` or, with `tmpfs`, under
/// `/dev/shm`: the same work without the disk's filesystem (its inode allocator, its
/// writeback), which shows what the tools themselves cost.
pub(crate) fn small_files(ctx: &Ctx<'_>, tmpfs: bool) -> Result<Table, String> {
    let repo = "bench/small";
    let sizes = Plan::small_sizes();
    let curl_z = |c: &mut Command, d: &Path| {
        c.args(["-sSfL", "-Z", "--parallel-max", "8", "--create-dirs"]);
        for i in 0..sizes.len() {
            let f = format!("files/f{i:03}.json");
            c.arg("-o").arg(d.join(&f)).arg(resolve_url(ctx.url(), repo, &f));
        }
    };
    let mut contenders = vec![
        Contender::new("curl -Z (8 parallel)", "floor", |d: &Path| {
            let mut c = Command::new("curl");
            curl_z(&mut c, d);
            Ok(c)
        }),
        Contender::new("modelcache get (snapshot)", "ours", |d: &Path| {
            let mut c = ours(ctx.bins, d, ctx.url());
            c.args(["get", repo]);
            Ok(c)
        }),
        Contender::new("hf-hub snapshot_download", "peer", |d: &Path| Ok(hf_hub(ctx.bins, d, ctx.url(), "snapshot", repo, &[]))),
        Contender::new("huggingface_hub snapshot_download", "peer", |d: &Path| ctx.py(d, PY_SNAPSHOT, &[repo])),
    ];
    if !tmpfs {
        // The same files made durable (one `syncfs`), as ours are before they are linked.
        contenders.insert(
            1,
            Contender::new("curl -Z, then syncfs", "floor", |d: &Path| {
                let mut c = Command::new("sh");
                c.args(["-c", r#"d=$1; shift; curl "$@" && sync -f "$d""#, "sh"]).arg(d);
                curl_z(&mut c, d);
                Ok(c)
            }),
        );
    }
    let scratch = if tmpfs {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return Err("no /dev/shm on this machine".to_owned());
        }
        shm.join(format!("modelcache-bench-{}", std::process::id()))
    } else {
        ctx.scratch("small")
    };
    let rows = alternate(&contenders, ctx.plan.runs, &scratch, Cleanup::AtEnd);
    let on = if tmpfs { ", on tmpfs" } else { "" };
    Ok(Table {
        name: if tmpfs { "small-tmpfs" } else { "small" },
        title: format!("Snapshot of {} files of 4–64 KiB ({} KiB in all){on}", sizes.len(), sizes.iter().sum::<u64>() >> 10),
        target: "≤ hf-hub; ≤ 2× curl with 8 parallel transfers",
        baseline: "curl -Z (8 parallel)",
        extra_label: None,
        rows,
        note: None,
    })
}

/// A cached file asked for again by a whole process, revalidating the branch or offline.
pub(crate) fn warm(ctx: &Ctx<'_>) -> Result<Table, String> {
    let (repo, file) = ("bench/warm", "config.json");
    let shared = ctx.fresh_dir("warm-cache")?;
    // One cache for everyone: the point of the shared layout.
    measure::run(ours(ctx.bins, &shared, ctx.url()).args(["get", repo, file]), &shared)?;
    let s = shared.clone();
    // Every contender is timed alone (no `/usr/bin/time` around it): a few milliseconds
    // are the point here. The floors show what starting a process costs.
    let contenders = vec![
        Contender::new("/bin/true", "floor", |_d: &Path| Ok(Command::new("true"))).precise(),
        Contender::new("modelcache --version", "floor", |_d: &Path| {
            let mut c = Command::new(&ctx.bins.modelcache);
            c.arg("--version");
            Ok(c)
        })
        .precise(),
        Contender::new("modelcache get", "ours", move |_d: &Path| {
            let mut c = ours(ctx.bins, &s, ctx.url());
            c.args(["get", repo, file]);
            Ok(c)
        })
        .precise(),
        Contender::new("modelcache --offline get", "ours", |_d: &Path| {
            let mut c = ours(ctx.bins, &shared, ctx.url());
            c.args(["--offline", "get", repo, file]);
            Ok(c)
        })
        .precise(),
        Contender::new("hf-hub download_file", "peer", |_d: &Path| {
            Ok(hf_hub(ctx.bins, &shared, ctx.url(), "get", repo, &[file]))
        })
        .precise(),
        Contender::new("hf-hub (local_files_only)", "peer", |_d: &Path| {
            Ok(hf_hub(ctx.bins, &shared, ctx.url(), "get", repo, &[file, "--offline"]))
        })
        .precise(),
        Contender::new("huggingface_hub hf_hub_download", "peer", |_d: &Path| ctx.py(&shared, PY_GET, &[repo, file])).precise(),
        Contender::new("huggingface_hub (HF_HUB_OFFLINE=1)", "peer", |_d: &Path| {
            let mut c = ctx.py(&shared, PY_GET, &[repo, file])?;
            c.env("HF_HUB_OFFLINE", "1");
            Ok(c)
        })
        .precise(),
    ];
    let rows = alternate(&contenders, ctx.plan.warm_runs, &ctx.scratch("warm"), Cleanup::AtEnd);
    Ok(Table {
        name: "warm",
        title: "Warm hit as a whole process (branch revision: one revalidation request; and offline)".to_owned(),
        target: "< 3 ms offline, < 5 ms with one revalidation (each run timed alone); ≤ hf-hub in the same mode",
        baseline: "huggingface_hub hf_hub_download",
        extra_label: None,
        rows,
        note: None,
    })
}

/// `verify` of several large cached files against raw BLAKE3 and `sha256sum` of the same bytes.
pub(crate) fn verify(ctx: &Ctx<'_>) -> Result<Table, String> {
    let repo = "bench/verify";
    let shared = ctx.fresh_dir("verify-cache")?;
    measure::run(ours(ctx.bins, &shared, ctx.url()).args(["get", repo]), &shared)?;
    // Untimed: a download proves its content by the etag digest and leaves the BLAKE3
    // for later; the first verify checks the etag once more and records it. What is
    // timed is re-verification, as a user runs it on a cache.
    measure::run(ours(ctx.bins, &shared, ctx.url()).args(["verify", repo]), &shared)?;
    let blobs_dir = shared.join("hub/models--bench--verify/blobs");
    let mut blobs: Vec<PathBuf> = std::fs::read_dir(&blobs_dir)
        .map_err(|e| format!("{}: {e}", blobs_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    blobs.sort();
    let total: u64 = blobs.iter().filter_map(|b| std::fs::metadata(b).ok()).map(|m| m.len()).sum();
    let contenders = vec![
        Contender::new("b3 (blake3, mmap + rayon)", "floor", |_d: &Path| {
            let mut c = Command::new(&ctx.bins.b3);
            c.args(&blobs);
            Ok(c)
        }),
        Contender::new("sha256sum", "floor", |_d: &Path| {
            let mut c = Command::new("sha256sum");
            c.args(&blobs);
            Ok(c)
        }),
        Contender::new("modelcache verify", "ours", |_d: &Path| {
            let mut c = ours(ctx.bins, &shared, ctx.url());
            c.args(["verify", repo]);
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.runs.min(3), &ctx.scratch("verify"), Cleanup::EachRun);
    let _ = std::fs::remove_dir_all(&shared);
    Ok(Table {
        name: "verify",
        title: format!("`verify` of {} of cached files ({} files, page cache warm)", mib(total), blobs.len()),
        target: "≥ 0.9× raw BLAKE3 of the same bytes (time ≤ 1.11× b3)",
        baseline: "b3 (blake3, mmap + rayon)",
        extra_label: None,
        rows,
        note: None,
    })
}

/// A download killed at 50 % and asked for again: bytes re-sent beyond the file size.
pub(crate) fn resume(ctx: &Ctx<'_>) -> Table {
    let (repo, file) = ("bench/resume", "model.safetensors");
    let size = ctx.plan.big;
    // Start the command, kill it (by PID) once the hub has sent half the file, then time
    // the same command again.
    let interrupted = |make: &dyn Fn() -> Result<Command, String>| -> Result<Command, String> {
        ctx.hub.reset_stats()?;
        let mut first = make()?;
        let mut child = first
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the first attempt: {e}"))?;
        let start = Instant::now();
        loop {
            let sent = ctx.hub.body_bytes()?;
            if sent >= size / 2 {
                break;
            }
            if start.elapsed() > Duration::from_secs(120) || child.try_wait().map_err(|e| e.to_string())?.is_some() {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the first attempt ended before reaching 50 %".to_owned());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().map_err(|e| format!("killing the first attempt: {e}"))?;
        let _ = child.wait();
        make()
    };
    let extra = || -> Result<f64, String> {
        let sent = ctx.hub.body_bytes()?;
        #[expect(clippy::cast_precision_loss, reason = "a percentage")]
        Ok((sent.saturating_sub(size)) as f64 * 100.0 / size as f64)
    };
    let contenders = vec![
        Contender::new("modelcache get", "ours", |d: &Path| {
            interrupted(&|| {
                let mut c = ours(ctx.bins, d, ctx.url());
                c.args(["get", repo, file]);
                Ok(c)
            })
        })
        .after(|_| extra()),
        Contender::new("hf-hub download_file", "peer", |d: &Path| {
            interrupted(&|| Ok(hf_hub(ctx.bins, d, ctx.url(), "get", repo, &[file])))
        })
        .after(|_| extra()),
        Contender::new("huggingface_hub hf_hub_download", "peer", |d: &Path| interrupted(&|| ctx.py(d, PY_GET, &[repo, file])))
            .after(|_| extra()),
    ];
    let rows = alternate(&contenders, ctx.plan.runs.min(3), &ctx.scratch("resume"), Cleanup::EachRun);
    Table {
        name: "resume",
        title: format!("Resume: a download of {} killed at 50 %, then run again", mib(size)),
        target: "extra bytes ≤ 1 % of the file",
        baseline: "modelcache get",
        extra_label: Some("extra bytes, % of file"),
        rows,
        note: Some(
            "Time is that of the second run only. Extra bytes = all body bytes the hub sent for both runs minus the file size."
                .to_owned(),
        ),
    }
}

/// `ls` and `stats` on a large generated cache, as whole processes.
pub(crate) fn listing(ctx: &Ctx<'_>) -> Result<Table, String> {
    let (repos, files) = ctx.plan.entries;
    let shared = super::scale::generated_cache(ctx, repos, files)?;
    let cmd = |args: &'static [&'static str]| {
        let shared = shared.clone();
        move |_d: &Path| {
            let mut c = ours(ctx.bins, &shared, ctx.url());
            c.arg("--offline").args(args);
            Ok(c)
        }
    };
    let contenders = vec![
        Contender::new("modelcache ls", "ours", cmd(&["ls"])),
        Contender::new("modelcache ls --json", "ours", cmd(&["--json", "ls"])),
        Contender::new("modelcache stats", "ours", cmd(&["stats"])),
        Contender::new("huggingface_hub scan_cache_dir", "peer", |_d: &Path| {
            let mut c = ctx.py(&shared, PY_SCAN, &[])?;
            c.env("HF_HUB_OFFLINE", "1");
            Ok(c)
        }),
    ];
    let rows = alternate(&contenders, ctx.plan.runs, &ctx.scratch("listing"), Cleanup::AtEnd);
    Ok(Table {
        name: "listing",
        title: format!("`ls`/`stats` on {} entries ({repos} repos), whole process", repos * files),
        target: "< 100 ms",
        baseline: "huggingface_hub scan_cache_dir",
        extra_label: None,
        rows,
        note: None,
    })
}

/// Eight processes asking for the same cold file at once.
pub(crate) fn eight_processes(ctx: &Ctx<'_>) -> Table {
    let (repo, file) = ("bench/multi", "model.safetensors");
    let size = ctx.plan.big;
    let transfers = || -> Result<f64, String> {
        let sent = ctx.hub.body_bytes()?;
        #[expect(clippy::cast_precision_loss, reason = "a ratio")]
        Ok(sent as f64 / size as f64)
    };
    let shell = |d: &Path, n: usize| -> Result<Command, String> {
        ctx.hub.reset_stats()?;
        let mut one = ours(ctx.bins, d, ctx.url());
        one.args(["get", repo, file]);
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "pids=; for i in $(seq {n}); do {} > /dev/null & pids=\"$pids $!\"; done; rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc",
            contenders::describe_raw(&one)
        ));
        // The shell runs `ours`'s command line: give it `ours`'s environment too.
        for (k, v) in one.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        Ok(c)
    };
    let contenders = vec![
        Contender::new("1 × modelcache get", "ours", |d: &Path| shell(d, 1)).after(|_| transfers()),
        Contender::new("8 × modelcache get at once", "ours", |d: &Path| shell(d, 8)).after(|_| transfers()),
    ];
    let rows = alternate(&contenders, ctx.plan.runs.min(3), &ctx.scratch("eight"), Cleanup::EachRun);
    Table {
        name: "eight",
        title: format!("8 processes, same cold {} file", mib(size)),
        target: "exactly 1 transfer; total wall ≤ 1.2× a single cold get",
        baseline: "1 × modelcache get",
        extra_label: Some("file bodies sent"),
        rows,
        note: None,
    }
}
