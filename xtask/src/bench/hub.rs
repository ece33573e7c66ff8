//! The testkit hub the benchmarks run against: started as a child process from its
//! release binary, driven through its control API with `curl`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `cache-testkit serve`. Killed (by its PID) when dropped.
pub(crate) struct Hub {
    child: Child,
    pub(crate) url: String,
}

impl Hub {
    /// Starts the binary with `args` after `serve --port 0` and reads the base URL it prints.
    pub(crate) fn start(binary: &Path, args: &[String]) -> Result<Hub, String> {
        let mut child = Command::new(binary)
            .args(["serve", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not start {}: {e}", binary.display()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("the hub has no stdout")?;
        BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("reading the hub's URL: {e}"))?;
        let url = line.trim().to_owned();
        if !url.starts_with("http://127.0.0.1:") {
            let _ = child.kill();
            return Err(format!("the hub printed {url:?} instead of its URL"));
        }
        Ok(Hub { child, url })
    }

    fn control(&self, method: &str, path: &str, body: Option<&str>) -> Result<String, String> {
        let mut c = Command::new("curl");
        c.args(["-sS", "--fail", "-X", method]).arg(format!("{}/_testkit/{path}", self.url));
        if let Some(b) = body {
            c.args(["-H", "content-type: application/json", "--data", b]);
        }
        let out = c.output().map_err(|e| format!("curl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("control request {method} {path} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// Replaces the faults in force (JSON as `cache_testkit::Faults` reads it; `{}` clears).
    pub(crate) fn set_faults(&self, json: &str) -> Result<(), String> {
        self.control("POST", "faults", Some(json)).map(drop)
    }

    /// Zeroes the counters.
    pub(crate) fn reset_stats(&self) -> Result<(), String> {
        self.control("POST", "stats/reset", None).map(drop)
    }

    /// Body bytes sent since the last reset.
    pub(crate) fn body_bytes(&self) -> Result<u64, String> {
        let json = self.control("GET", "stats", None)?;
        json_number(&json, "body_bytes").ok_or_else(|| "no `body_bytes` in the hub's stats".to_owned())
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first number following `"key":` in a JSON text (enough for the hub's flat counters).
fn json_number(json: &str, key: &str) -> Option<u64> {
    let at = json.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = json[at..].trim_start().strip_prefix(':')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_from_the_stats_json() {
        let json = r#"{"requests": {"cdn_get": 3, "resolve_head": 1}, "body_bytes": 1048576}"#;
        assert_eq!(json_number(json, "body_bytes"), Some(1_048_576));
        assert_eq!(json_number(json, "cdn_get"), Some(3));
        assert_eq!(json_number(json, "missing"), None);
    }
}
