//! How each contender is invoked: `curl` (the transfer floor), the `modelcache` CLI, the
//! `hf-hub` crate (through the `hfhub` helper binary) and Python `huggingface_hub`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The programs a benchmark run uses.
pub(crate) struct Bins {
    pub(crate) modelcache: PathBuf,
    pub(crate) testkit: PathBuf,
    pub(crate) hfhub: PathBuf,
    pub(crate) b3: PathBuf,
    pub(crate) gencache: PathBuf,
    /// `s3s-fs` on loopback (the `s3server` helper), the tier bench's fast S3 server.
    pub(crate) s3server: PathBuf,
    pub(crate) python: Option<PathBuf>,
}

/// `modelcache` on a cache under `dir` (`dir/hub`, `dir/home`), talking to `endpoint`.
pub(crate) fn ours(bins: &Bins, dir: &Path, endpoint: &str) -> Command {
    let mut c = Command::new(&bins.modelcache);
    c.arg("--cache-dir").arg(dir.join("hub")).arg("--home").arg(dir.join("home")).args(["--endpoint", endpoint, "-q"]);
    c.env_remove("HF_HUB_OFFLINE").env_remove("MODELCACHE_OFFLINE").env("XDG_CONFIG_HOME", dir.join("config"));
    c
}

/// The `hfhub` helper: `hfhub <cmd> <endpoint> <dir/hub> <repo> <args…>`.
pub(crate) fn hf_hub(bins: &Bins, dir: &Path, endpoint: &str, cmd: &str, repo: &str, args: &[&str]) -> Command {
    let mut c = Command::new(&bins.hfhub);
    c.args([cmd, endpoint]).arg(dir.join("hub")).arg(repo).args(args);
    c.env_remove("HF_TOKEN").env_remove("HF_HUB_OFFLINE");
    c
}

/// Python `huggingface_hub` running `script` with `args`, cache at `dir/hub`.
pub(crate) fn python(bins: &Bins, dir: &Path, endpoint: &str, script: &str, args: &[&str]) -> Option<Command> {
    let mut c = Command::new(bins.python.as_ref()?);
    c.args(["-c", script]).arg(dir.join("hub")).args(args);
    c.env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_TOKEN");
    Some(c)
}

/// `hf_hub_download(repo, file, cache_dir=argv[1])`.
pub(crate) const PY_GET: &str = "import sys\nfrom huggingface_hub import hf_hub_download\n\
for f in sys.argv[3:]:\n    print(hf_hub_download(sys.argv[2], f, cache_dir=sys.argv[1]))";
/// `snapshot_download(repo, cache_dir=argv[1], max_workers=8)`.
pub(crate) const PY_SNAPSHOT: &str = "import sys\nfrom huggingface_hub import snapshot_download\n\
print(snapshot_download(sys.argv[2], cache_dir=sys.argv[1], max_workers=8))";
/// `snapshot_download(repo, cache_dir=argv[1], local_files_only=True)`.
pub(crate) const PY_SNAPSHOT_OFFLINE: &str = "import sys\nfrom huggingface_hub import snapshot_download\n\
print(snapshot_download(sys.argv[2], cache_dir=sys.argv[1], local_files_only=True))";
/// `scan_cache_dir(argv[1])`, as `hf cache scan` does.
pub(crate) const PY_SCAN: &str = "import sys\nfrom huggingface_hub import scan_cache_dir\n\
info = scan_cache_dir(sys.argv[1])\nprint(len(info.repos), info.size_on_disk)";

/// The `resolve/` URL of a file on the hub.
pub(crate) fn resolve_url(endpoint: &str, repo: &str, file: &str) -> String {
    format!("{endpoint}/{repo}/resolve/main/{file}")
}

/// A command line as it would be typed (for the report); a very long argument list (one
/// output and URL per file) is shortened in the middle, and the machine's paths are
/// placeholders: `$SCRATCH` for the runs' scratch folder (on disk or on tmpfs), `$HUB` for
/// the testkit's loopback URL, paths in the workspace relative.
pub(crate) fn describe(c: &Command) -> String {
    let root = crate::cmd::root();
    let root = root.to_string_lossy();
    let s = describe_raw(c).replace(&format!("{root}/target/bench-scratch"), "$SCRATCH").replace(&format!("{root}/"), "");
    let s = replace_numbered(&s, "/dev/shm/modelcache-bench-", "$SCRATCH");
    replace_numbered(&s, "http://127.0.0.1:", "$HUB")
}

/// `text` with every `prefix` followed by digits replaced by `with`.
fn replace_numbered(text: &str, prefix: &str, with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        out.push_str(&rest[..i]);
        let after = &rest[i + prefix.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            out.push_str(prefix);
        } else {
            out.push_str(with);
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The command line with this machine's paths, as a shell runs it (the scenarios that
/// start several processes at once hand it to `sh -c`).
pub(crate) fn describe_raw(c: &Command) -> String {
    const HEAD: usize = 12;
    const TAIL: usize = 2;
    let mut s = c.get_program().to_string_lossy().into_owned();
    let args: Vec<_> = c.get_args().collect();
    let shown: Vec<_> = if args.len() > HEAD + TAIL + 4 {
        let more = std::ffi::OsString::from(format!("… {} more arguments …", args.len() - HEAD - TAIL));
        let mut v: Vec<std::ffi::OsString> = args[..HEAD].iter().map(|a| (*a).to_owned()).collect();
        v.push(more);
        v.extend(args[args.len() - TAIL..].iter().map(|a| (*a).to_owned()));
        v
    } else {
        args.iter().map(|a| (*a).to_owned()).collect()
    };
    for a in &shown {
        let a = a.to_string_lossy();
        s.push(' ');
        if (a.contains(' ') || a.contains('\n')) && !a.starts_with('…') {
            s.push('\'');
            s.push_str(&a.replace('\n', "; "));
            s.push('\'');
        } else {
            s.push_str(&a);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_show_no_machine_paths_or_ports() {
        let root = crate::cmd::root();
        let mut c = Command::new(root.join("target/release/modelcache"));
        c.arg("--cache-dir")
            .arg(root.join("target/bench-scratch/warm/hub"))
            .args(["--endpoint", "http://127.0.0.1:44995", "get"])
            .arg("/dev/shm/modelcache-bench-28497/x/out")
            .arg("http://127.0.0.1:44995/bench/small/resolve/main/f.json");
        assert_eq!(
            describe(&c),
            "target/release/modelcache --cache-dir $SCRATCH/warm/hub --endpoint $HUB get $SCRATCH/x/out \
             $HUB/bench/small/resolve/main/f.json"
        );
        assert_eq!(replace_numbered("a http://127.0.0.1:x", "http://127.0.0.1:", "$HUB"), "a http://127.0.0.1:x");
    }
}
