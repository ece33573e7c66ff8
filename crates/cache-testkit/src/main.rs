//! `cache-testkit serve …`: runs the test hub until killed (see `cache_testkit::USAGE`).
#![expect(clippy::print_stderr, reason = "a command-line tool reports errors on stderr")]

use std::io::Write as _;
use std::process::ExitCode;

use cache_testkit::{TestHub, parse_serve_args};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(("serve", rest)) = args.split_first().map(|(c, r)| (c.as_str(), r)) else {
        eprintln!("error: expected a command\n{}", cache_testkit::USAGE);
        return ExitCode::from(2);
    };
    let serve = match parse_serve_args(rest) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<String> = serve.repos.iter().map(|r| r.repo().to_string()).collect();
    let hub = TestHub::start_blocking_with(serve.config, serve.repos);
    hub.update_faults(|f| {
        f.throttle_bps = serve.throttle_bps;
        f.latency_ms = serve.latency_ms;
    });
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", hub.url());
    for name in &names {
        let _ = writeln!(out, "repo {name}");
    }
    let _ = out.flush();
    drop(out);
    eprintln!(
        "cache-testkit: serving {} on {} (CDN {}); control at {}/_testkit/",
        names.join(", "),
        hub.url(),
        hub.cdn_url(),
        hub.url()
    );
    loop {
        std::thread::park();
    }
}
