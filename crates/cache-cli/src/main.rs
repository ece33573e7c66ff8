//! `modelcache`: fetch, list, verify, prune, pin and clean the model cache from the
//! command line, on top of the `modelcache` facade.
//!
//! # Output
//! Results go to stdout (text, or JSON with `--json`; the shapes are documented in the
//! README); progress bars, notes and errors to stderr. Bars are drawn only when stderr is
//! a terminal and neither `-q` nor `--json` is given. `NO_COLOR` turns colour off. A
//! closed stdout (`modelcache ls | head`) ends the command quietly with success. With
//! `--log-format json` (or `MODELCACHE_LOG_FORMAT=json`) every stderr line is one JSON
//! event (info level without `-v`), the error report included, and no bars are drawn.
//!
//! # Errors and exit codes
//! Errors are one `error:` line, `Caused by:` lines and a `hint:` (or, with `--json`, one
//! JSON object on stderr), never a debug dump; even a panic prints one message (exit
//! code 1). Codes: 0 success, 1 unexpected failure, 2 invalid input or usage, 3 remote failure,
//! 4 not cached while offline, 5 integrity failure, 6 disk full.
//!
//! # Start-up cost
//! A warm `get` is a whole process: only the commands that need it open the cache or
//! start the async runtime, `config` and `dir` open nothing, and no log subscriber is
//! installed without `-v`. A hit of a file unchanged since it was linked opens no database
//! either (see cache-store's `lookup`). What is left is mostly starting the binary: the
//! loader's relocations (packed, see `build.rs`) and clap building the command tree, which
//! is never freed (see `parse`).

mod app;
mod cli;
mod cmd;
mod format;
mod metrics;
mod progress;
mod report;
mod usage;
mod version;

use std::process::ExitCode;

use crate::app::App;
use crate::report::Failure;

fn init_tracing(verbose: u8, color: bool, json: bool) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match verbose {
        0 if json => LevelFilter::INFO,
        0 => return,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let fmt = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr);
    if json {
        fmt.json().flatten_event(true).with_current_span(false).with_span_list(false).init();
    } else {
        fmt.with_ansi(color).with_target(verbose > 1).init();
    }
}

/// Whether JSON logs were asked for, before the command line is parsed (so even a usage
/// error or a panic is a JSON line): `--log-format json`, `--log-format=json`, else the
/// variable.
fn log_json_requested() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let flag = args.iter().enumerate().find_map(|(i, a)| match a.strip_prefix("--log-format") {
        Some("") => args.get(i + 1).cloned(),
        Some(v) => v.strip_prefix('=').map(str::to_owned),
        None => None,
    });
    flag.or_else(|| std::env::var("MODELCACHE_LOG_FORMAT").ok()).is_some_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

fn main() -> ExitCode {
    let json_requested = std::env::args_os().any(|a| a == "--json") || log_json_requested();
    report::install_panic_hook(json_requested);
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(e, json_requested),
    };
    let env_format = std::env::var("MODELCACHE_LOG_FORMAT").ok();
    let log_format = match cli::LogFormat::resolve(cli.global.log_format, env_format.as_deref()) {
        Ok(f) => f,
        Err(message) => {
            let err = anyhow::Error::new(Failure::usage(message, "set `MODELCACHE_LOG_FORMAT` to `text` or `json`, or unset it"));
            return exit(report::report(&err, cli.global.json, false));
        }
    };
    let log_json = log_format == cli::LogFormat::Json;
    let app = App::new(cli.global, log_json);
    init_tracing(app.global.verbose, app.out.color, log_json);
    match cmd::run(&app, &cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if report::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if log_json => exit(report::log(&e)),
        Err(e) => exit(report::report(&e, app.out.json, app.out.color)),
    }
}

/// The command line, parsed as `Cli::try_parse` does, but the command tree clap built
/// for it (every command, every option) is left to the end of the process rather than
/// freed: freeing it was a tenth of the instructions of a warm `get`.
fn parse() -> Result<cli::Cli, clap::Error> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let mut command = std::mem::ManuallyDrop::new(cli::Cli::command());
    let mut matches = command.try_get_matches_from_mut(std::env::args_os())?;
    cli::Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// `--help` and `--version` print normally; usage errors exit 2, as JSON with `--json`.
fn parse_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(e.kind(), K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = e.print();
        return if e.kind() == K::DisplayHelpOnMissingArgumentOrSubcommand { exit(2) } else { ExitCode::SUCCESS };
    }
    let e = match usage::refine(e, &<cli::Cli as clap::CommandFactory>::command()) {
        usage::Refined::Clap(e) => e,
        usage::Refined::Failure(f) => return exit(report::report(&anyhow::Error::new(f), json, false)),
    };
    if json {
        let message = e.render().to_string();
        let first = message.lines().next().unwrap_or_default().trim_start_matches("error: ").to_owned();
        let err = anyhow::Error::new(Failure::usage(first, "`modelcache --help` lists the commands and options"));
        return exit(report::report(&err, true, false));
    }
    let _ = e.print();
    exit(2)
}
