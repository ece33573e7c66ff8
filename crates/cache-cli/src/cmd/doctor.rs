//! `doctor`: the cache's setup checked — filesystems and lock modes, the home, the index,
//! stale partial downloads, lock holders, repositories moved out of the cache, conflicting
//! settings, permissions, the strategy. Exit 0 when every check is fine, 1 with findings;
//! `--fix` repairs first.

use std::fmt::Write as _;

use anyhow::Result;
use modelcache::{CheckStatus, DoctorReport, ErrorKind};

use crate::app::App;
use crate::cli::DoctorArgs;
use crate::report::Failure;

/// The report as text: a line per check, its hint under it.
pub(crate) fn text(r: &DoctorReport) -> String {
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in &r.fixed {
        let _ = writeln!(out, "fixed: {f}");
    }
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

pub(crate) fn run(app: &App, args: &DoctorArgs) -> Result<()> {
    let manager = app.manager()?;
    let env = |k: &str| std::env::var(k).ok();
    let report = if args.fix { manager.doctor_fix(&env)? } else { manager.doctor_with_env(&env)? };
    app.out.emit(&report, || text(&report))?;
    if report.status() == CheckStatus::Ok {
        return Ok(());
    }
    let found: Vec<&str> = report.checks.iter().filter(|c| c.status != CheckStatus::Ok).map(|c| c.name.as_str()).collect();
    let (message, hint) = if report.status() == CheckStatus::Fail {
        (format!("the cache cannot work as set up: {}", found.join(", ")), "follow the hint under each failed check")
    } else {
        (format!("the cache works, with findings: {}", found.join(", ")), "follow the hint under each warning")
    };
    Err(Failure::new(ErrorKind::Other, message, hint).into())
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
            fixed: vec!["rebuilt the index".to_owned()],
            checks: vec![
                check("locks", CheckStatus::Ok, None),
                check("partial downloads", CheckStatus::Warn, Some("run `modelcache prune`")),
            ],
        };
        assert_eq!(
            text(&r),
            "fixed: rebuilt the index\n\
             ok    locks              locks detail\n\
             warn  partial downloads  partial downloads detail\n\
             \x20                        hint: run `modelcache prune`\n"
        );
        assert_eq!(r.status(), CheckStatus::Warn);
    }
}
