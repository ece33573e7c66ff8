//! Timing whole processes: wall time measured here, peak RSS from `/usr/bin/time`, runs
//! summarised as median and min–max.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// One run of one contender.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Sample {
    /// Wall time in seconds.
    pub(crate) secs: f64,
    /// Peak resident set size in KiB, when measured.
    pub(crate) rss_kib: Option<u64>,
    /// A scenario-specific number (bytes re-sent, transfers counted…).
    pub(crate) extra: Option<f64>,
}

/// Runs `cmd` to completion under `/usr/bin/time` (when present) and measures it. Its
/// stdout is discarded; a failure returns its stderr.
pub(crate) fn run(cmd: &mut Command, scratch: &Path) -> Result<Sample, String> {
    let rss_file = scratch.join("rss.txt");
    let time = Path::new("/usr/bin/time");
    let mut wrapped = if time.exists() {
        let mut w = Command::new(time);
        w.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(cmd.get_program()).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => w.env(k, v),
                None => w.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            w.current_dir(dir);
        }
        w
    } else {
        std::mem::replace(cmd, Command::new("true"))
    };
    let start = Instant::now();
    let out = wrapped
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("could not start {}: {e}", wrapped.get_program().display()))?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(failure(&String::from_utf8_lossy(&out.stderr), out.status));
    }
    let rss_kib = std::fs::read_to_string(&rss_file).ok().and_then(|s| s.lines().last().and_then(|l| l.trim().parse().ok()));
    let _ = std::fs::remove_file(&rss_file);
    Ok(Sample { secs, rss_kib, extra: None })
}

/// Runs `cmd` to completion without any wrapper and measures its wall time alone (from
/// `spawn` to its exit: what a caller of the command waits): for commands that take a few
/// milliseconds, where `/usr/bin/time`'s own `exec` and `fork` would be a sizeable part of
/// the figure. No RSS. Its stdout is discarded; a failure returns its stderr.
pub(crate) fn run_timed(cmd: &mut Command, scratch: &Path) -> Result<Sample, String> {
    let err_path = scratch.join("stderr.txt");
    let err_file = std::fs::File::create(&err_path).map_err(|e| format!("creating {}: {e}", err_path.display()))?;
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(err_file)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("could not start {}: {e}", cmd.get_program().display()))?;
    let secs = start.elapsed().as_secs_f64();
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if !status.success() {
        return Err(failure(&err, status));
    }
    Ok(Sample { secs, rss_kib: None, extra: None })
}

/// A failed run, told by the last lines of its stderr and its exit status.
fn failure(stderr: &str, status: std::process::ExitStatus) -> String {
    let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
    format!("{} ({status})", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
}

/// Median, min and max of a list.
pub(crate) fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 { v[mid] } else { f64::midpoint(v[mid - 1], v[mid]) };
    Some((median, v[0], v[v.len() - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_take_the_middle() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(summary(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(summary(&[]), None);
    }

    #[test]
    fn runs_a_process_and_reads_its_peak_memory() {
        let dir = std::env::temp_dir().join(format!("xtask-measure-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = run(Command::new("sh").args(["-c", "head -c 1000000 /dev/zero > /dev/null"]), &dir).unwrap();
        assert!(s.secs > 0.0);
        if Path::new("/usr/bin/time").exists() {
            assert!(s.rss_kib.is_some_and(|k| k > 0));
        }
        let err = run(Command::new("sh").args(["-c", "echo boom >&2; exit 3"]), &dir).unwrap_err();
        assert!(err.contains("boom"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
