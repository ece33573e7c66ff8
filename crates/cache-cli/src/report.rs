//! Failures as the user sees them: exit codes, `error:` / `Caused by:` / `hint:` text on
//! stderr, or one JSON object with `--json`; and the panic hook that keeps crashes to one
//! clean message.

use std::fmt::Write as _;
use std::io::Write as _;

use modelcache::{CacheError, ErrorKind};
use serde::Serialize;

/// A failure the CLI itself detects (usage the parser cannot check, a refusal, a
/// verification that found damage), with its exit code and next step.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { kind, message: message.into(), hint: Some(hint.into()) }
    }

    pub(crate) fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message, hint)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The kind of an error: the first [`Failure`] or [`CacheError`] in its chain decides.
pub(crate) fn kind(err: &anyhow::Error) -> ErrorKind {
    // Contexts are found by anyhow's downcast, not through `chain()`.
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.kind;
    }
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.kind;
        }
        if let Some(e) = cause.downcast_ref::<CacheError>() {
            return e.kind();
        }
    }
    ErrorKind::Other
}

fn hint(err: &anyhow::Error) -> Option<String> {
    if let Some(f) = err.downcast_ref::<Failure>() {
        return f.hint.clone();
    }
    err.chain().find_map(|cause| {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return f.hint.clone();
        }
        cause.downcast_ref::<CacheError>().map(CacheError::hint)
    })
}

/// Whether the error is a write to a closed pipe (`modelcache ls | head`): not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
}

fn kind_name(kind: ErrorKind) -> String {
    serde_json::to_value(kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| "other".to_owned())
}

/// `--json` errors: `{"error": {"kind", "exit_code", "message", "causes", "hint"}}`.
#[derive(Debug, Serialize)]
struct JsonError {
    error: JsonErrorBody,
}

#[derive(Debug, Serialize)]
struct JsonErrorBody {
    kind: String,
    exit_code: i32,
    message: String,
    causes: Vec<String>,
    hint: Option<String>,
}

/// The causes after the top message, without repeats (a transparent wrapper displays as
/// its source).
fn causes(err: &anyhow::Error) -> Vec<String> {
    let mut seen = vec![err.to_string()];
    let mut out = Vec::new();
    for c in err.chain().skip(1) {
        let s = c.to_string();
        if !seen.contains(&s) {
            seen.push(s.clone());
            out.push(s);
        }
    }
    out
}

/// The text printed on stderr for `err`.
pub(crate) fn render(err: &anyhow::Error, json: bool, color: bool) -> String {
    let kind = kind(err);
    if json {
        let body = JsonErrorBody {
            kind: kind_name(kind),
            exit_code: kind.exit_code(),
            message: err.to_string(),
            causes: causes(err),
            hint: hint(err),
        };
        return serde_json::to_string(&JsonError { error: body }).unwrap_or_default() + "\n";
    }
    let paint = |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_owned() };
    let mut out = format!("{} {err}\n", paint("1;31", "error:"));
    for c in causes(err) {
        let _ = writeln!(out, "  Caused by: {c}");
    }
    if let Some(h) = hint(err) {
        let _ = write!(out, "\n{} {h}\n", paint("1;36", "hint:"));
    }
    out
}

/// Prints `err` on stderr (ignoring a closed stderr) and returns its exit code.
pub(crate) fn report(err: &anyhow::Error, json: bool, color: bool) -> i32 {
    let _ = std::io::stderr().lock().write_all(render(err, json, color).as_bytes());
    kind(err).exit_code()
}

/// With `--log-format json`: `err` as one `error` event (fields `error`, `kind`,
/// `exit_code`, `causes`, `hint`) through the log subscriber; returns its exit code.
pub(crate) fn log(err: &anyhow::Error) -> i32 {
    let kind = kind(err);
    let causes = serde_json::to_string(&causes(err)).unwrap_or_default();
    tracing::error!(
        error = %err,
        kind = %kind_name(kind),
        exit_code = kind.exit_code(),
        causes = %causes,
        hint = hint(err).unwrap_or_default(),
        "error"
    );
    kind.exit_code()
}

/// A panic prints one message (no backtrace, no debug dump) and exits 1.
pub(crate) fn install_panic_hook(json: bool) {
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_owned());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        let err = anyhow::Error::new(Failure::new(
            ErrorKind::Other,
            format!("modelcache crashed: {what}{at}"),
            "this is a bug in modelcache: run the command again with `-vv` and report the output",
        ));
        let _ = std::io::stderr().lock().write_all(render(&err, json, false).as_bytes());
        std::process::exit(1);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_errors_have_one_line_causes_and_a_hint() {
        let inner = std::io::Error::other("connection reset by peer");
        let err =
            anyhow::Error::new(inner).context(Failure::new(ErrorKind::Remote, "failed to download `x`", "check the network"));
        insta::assert_snapshot!(render(&err, false, false), @r"
        error: failed to download `x`
          Caused by: connection reset by peer

        hint: check the network
        ");
        assert_eq!(kind(&err).exit_code(), 3);
    }

    #[test]
    fn json_errors_are_one_object() {
        let err = anyhow::Error::new(CacheError::NotInCache { what: "a/b".into() });
        let v: serde_json::Value = serde_json::from_str(&render(&err, true, false)).unwrap();
        assert_eq!(v["error"]["kind"], "invalid_input");
        assert_eq!(v["error"]["exit_code"], 2);
        assert_eq!(v["error"]["message"], "`a/b` is not in the cache");
        assert!(v["error"]["hint"].as_str().unwrap().contains("modelcache ls"));
    }

    #[test]
    fn unknown_errors_exit_1_and_broken_pipes_are_recognised() {
        let err = anyhow::anyhow!("boom");
        assert_eq!(kind(&err).exit_code(), 1);
        assert!(!is_broken_pipe(&err));
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("writing");
        assert!(is_broken_pipe(&pipe));
    }
}
