//! `doctor`: the cache's setup checked — filesystems and locks, the home, the index,
//! stale partial downloads, repositories moved out of the cache, the strategy.

use std::fmt::Write as _;

use anyhow::Result;
use modelcache::{CheckStatus, DoctorReport, ErrorKind};

use crate::app::App;
use crate::report::Failure;

/// The report as text: a line per check, its hint under it.
pub(crate) fn text(r: &DoctorReport) -> String {
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &r.checks {
        let status = match c.status {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        };
        let _ = writeln!(out, "{status:<4}  {:<width$}  {}", c.name, c.detail);
        if let Some(h) = &c.hint {
            let _ = writeln!(out, "      {:<width$}  hint: {h}", "");
        }
    }
    out
}

pub(crate) fn run(app: &App) -> Result<()> {
    let report = app.manager()?.doctor()?;
    app.out.emit(&report, || text(&report))?;
    if report.status() < CheckStatus::Fail {
        return Ok(());
    }
    let failed: Vec<&str> = report.checks.iter().filter(|c| c.status == CheckStatus::Fail).map(|c| c.name.as_str()).collect();
    Err(Failure::new(
        ErrorKind::Other,
        format!("the cache cannot work as set up: {}", failed.join(", ")),
        "follow the hint under each failed check",
    )
    .into())
}

#[cfg(test)]
mod tests {
    use modelcache::Check;

    use super::*;

    #[test]
    fn checks_line_up_and_hints_sit_under_them() {
        let check = |name: &str, status, hint: Option<&str>| Check {
            name: name.to_owned(),
            status,
            detail: format!("{name} detail"),
            hint: hint.map(str::to_owned),
        };
        let r = DoctorReport {
            checks: vec![
                check("locks", CheckStatus::Ok, None),
                check("partial downloads", CheckStatus::Warn, Some("run `modelcache prune`")),
            ],
        };
        assert_eq!(
            text(&r),
            "ok    locks              locks detail\n\
             warn  partial downloads  partial downloads detail\n\
             \x20                        hint: run `modelcache prune`\n"
        );
        assert_eq!(r.status(), CheckStatus::Warn);
    }
}
