//! Progress as a person sees it: the binary on a pseudo-terminal of 80 and 100 columns,
//! its screen rebuilt by a terminal model (vt100), a 202-file snapshot; retries said on
//! the terminal and, plainly, on a redirected stderr; a rate limit that outlasts the
//! retries named as such.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

use cache_testkit::{Content, RepoSpec, TestHub};

use crate::{Env, Run};

/// Files in the big snapshot: 200 small ones and two large ones (which get bars of their own).
const FILES: usize = 202;

fn big_repo() -> RepoSpec {
    let mut spec = RepoSpec::model("org/big");
    for i in 0..FILES - 2 {
        spec = spec.file(
            &format!("shards/part-{i:03}-of-a-rather-long-file-name-for-a-narrow-terminal.json"),
            Content::generated(2048, i as u64),
        );
    }
    spec.lfs_file("model-00001-of-00002.safetensors", Content::generated(12 << 20, 1))
        .lfs_file("model-00002-of-00002.safetensors", Content::generated(9 << 20, 2))
}

/// What a run on a terminal left: the final screen, everything written to the terminal
/// (escape sequences and all), stdout (a pipe), and the exit code.
struct TermRun {
    screen: vt100::Parser,
    raw: String,
    run: Run,
}

impl TermRun {
    /// The screen's rows, trailing blanks trimmed.
    fn rows(&self) -> Vec<String> {
        let (_, cols) = self.screen.screen().size();
        self.screen.screen().rows(0, cols).map(|r| r.trim_end().to_owned()).collect()
    }

    fn text(&self) -> String {
        self.rows().join("\n")
    }

    /// Rows with something on them.
    fn used_rows(&self) -> Vec<String> {
        self.rows().into_iter().filter(|r| !r.is_empty()).collect()
    }

    /// Whether any line was longer than the terminal (and wrapped onto the next row).
    fn wrapped(&self) -> bool {
        let (rows, _) = self.screen.screen().size();
        (0..rows).any(|r| self.screen.screen().row_wrapped(r))
    }
}

/// Runs `modelcache args` with stderr on a new pseudo-terminal of `cols` x `rows` (stdout a
/// pipe, as `$(modelcache get …)` has it).
fn on_terminal(env: &Env, args: &[&str], cols: u16, rows: u16) -> TermRun {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new().read(true).write(true).open(std::ffi::OsStr::from_bytes(name.as_bytes())).unwrap();
    let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&slave, size).unwrap();
    let mut command = env.command(args);
    command.env("TERM", "xterm-256color").stdout(Stdio::piped()).stderr(Stdio::from(slave.try_clone().unwrap()));
    let child = command.spawn().unwrap();
    drop(command);
    drop(slave);
    let mut master = std::fs::File::from(master);
    // Reads until every copy of the terminal's other end is closed (EIO).
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match master.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        out
    });
    let output = child.wait_with_output().unwrap();
    let bytes = reader.join().unwrap();
    let mut screen = vt100::Parser::new(rows, cols, 0);
    screen.process(&bytes);
    TermRun { screen, raw: String::from_utf8_lossy(&bytes).into_owned(), run: Run::from(&output) }
}

fn check_big_snapshot_screen(cols: u16) {
    let hub = TestHub::start_blocking([big_repo()]);
    let env = Env::new(&hub);
    // Twelve files are already cached: the summary counts them as hits.
    let mut first = vec!["get", "org/big"];
    let names: Vec<String> =
        (0..12).map(|i| format!("shards/part-{i:03}-of-a-rather-long-file-name-for-a-narrow-terminal.json")).collect();
    first.extend(names.iter().map(String::as_str));
    env.run(&first).ok();
    let got = on_terminal(&env, &["get", "org/big"], cols, 30);
    assert_eq!(got.run.code, 0, "{}\n{}", got.text(), got.run.stdout);
    assert_eq!(got.run.lines().len(), 1, "one snapshot directory on stdout");
    assert!(!got.wrapped(), "a line was wider than {cols} columns:\n{}", got.text());
    let used = got.used_rows();
    assert!(used.len() <= 3, "finished bars were left on the screen:\n{}", got.text());
    let summary = used.iter().find(|r| r.starts_with("fetched ")).unwrap_or_else(|| panic!("no summary:\n{}", got.text()));
    assert!(summary.starts_with(&format!("fetched {FILES} files (12 hits), ")), "{summary}");
    assert!(summary.contains("MiB in "), "{summary}");
    assert!(got.raw.contains("/202 files"), "the overall bar counts files:\n{}", got.raw);
    assert!(!got.raw.contains("0 B/0 B"), "an empty bar flashed");
}

#[test]
fn a_202_file_snapshot_at_80_columns_fits_and_ends_with_one_summary_line() {
    check_big_snapshot_screen(80);
}

#[test]
fn a_202_file_snapshot_at_100_columns_fits_and_ends_with_one_summary_line() {
    check_big_snapshot_screen(100);
}

fn retrying_env(hub: &TestHub) -> Env {
    let mut env = Env::new(hub);
    env.var("MODELCACHE_RETRIES", "2");
    env
}

#[test]
fn a_rate_limited_download_says_so_on_the_terminal_and_then_succeeds() {
    let hub = crate::hub();
    let env = retrying_env(&hub);
    hub.update_faults(|f| {
        f.fail = Some(cache_testkit::FailFault { status: 429, count: 1, retry_after: Some(1) });
        f.path_contains = Some("model.safetensors".to_owned());
    });
    let got = on_terminal(&env, &["get", "org/model"], 80, 24);
    assert_eq!(got.run.code, 0, "{}\n{}", got.text(), got.run.stdout);
    let plain = strip_escapes(&got.raw);
    assert!(
        plain.contains("model.safetensors: rate limited by the Hub (429), retrying in 1.0 s [1/2]"),
        "no retry line on the terminal:\n{plain}"
    );
    assert!(!got.text().contains("retrying"), "the retry line is cleared once the file moves:\n{}", got.text());
}

#[test]
fn off_a_terminal_a_retry_is_one_note_line_and_in_verbose_logs() {
    let hub = crate::hub();
    let env = retrying_env(&hub);
    hub.update_faults(|f| {
        f.fail = Some(cache_testkit::FailFault { status: 429, count: 1, retry_after: Some(1) });
        f.path_contains = Some("model.safetensors".to_owned());
    });
    // The file's metadata request (`HEAD`) is the one rate limited here.
    let got = env.run(&["get", "org/model", "model.safetensors", "-v"]).ok();
    let note = "note: model.safetensors: rate limited by the Hub (429), retrying in 1.0 s [1/2]";
    assert!(got.stderr.lines().any(|l| l == note), "{}", got.stderr);
    assert!(
        got.stderr.lines().any(|l| l.contains("INFO") && l.contains("rate limited by the Hub (429), retrying in 1.0 s [1/2]")),
        "not in the -v log:\n{}",
        got.stderr
    );
}

#[test]
fn a_rate_limit_that_outlasts_the_retries_is_named_with_the_servers_message() {
    let hub = crate::hub();
    let mut env = Env::new(&hub);
    env.var("MODELCACHE_RETRIES", "1");
    hub.fail_next(429, 10, None);
    let got = env.run(&["get", "org/model", "config.json"]).expect(3);
    assert!(got.stderr.contains("rate limited"), "{}", got.stderr);
    assert!(got.stderr.contains("\"testkit fault: injected error\""), "the server's message is quoted:\n{}", got.stderr);
    let hint = got.stderr.lines().find(|l| l.starts_with("hint:")).unwrap_or_else(|| panic!("{}", got.stderr));
    assert!(!hint.contains("network"), "a rate limit is not a network problem: {hint}");
    assert!(hint.contains("wait"), "{hint}");
}

/// The text of terminal output without escape sequences.
fn strip_escapes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

#[test]
fn warm_draws_one_overall_bar_for_all_its_lines_and_ends_with_one_summary() {
    let hub = TestHub::start_blocking([big_repo(), RepoSpec::model("org/small").file("a.txt", "a").file("b.txt", "b")]);
    let env = Env::new(&hub);
    let list = env.tmp.path().join("list.txt");
    std::fs::write(&list, "org/big\norg/small a.txt\n").unwrap();
    let got = on_terminal(&env, &["warm", list.to_str().unwrap()], 80, 30);
    assert_eq!(got.run.code, 0, "{}\n{}", got.text(), got.run.stdout);
    assert!(got.run.stdout.contains("warmed 2 of 2 entries"), "{}", got.run.stdout);
    assert!(!got.wrapped(), "a line was wider than 80 columns:\n{}", got.text());
    let used = got.used_rows();
    assert!(used.len() <= 3, "finished bars were left on the screen:\n{}", got.text());
    assert!(used.iter().any(|r| r.starts_with(&format!("fetched {} files, ", FILES + 1))), "{}", got.text());
}

/// `verify` counts the blobs it hashes on the same overall bar, and clears it before its
/// report: nothing of it stays on the screen.
#[test]
fn verify_on_a_terminal_leaves_only_its_report() {
    let hub = TestHub::start_blocking([big_repo()]);
    let env = Env::new(&hub);
    env.run(&["get", "org/big"]).ok();
    let got = on_terminal(&env, &["verify"], 80, 30);
    assert_eq!(got.run.code, 0, "{}\n{}", got.text(), got.run.stdout);
    assert!(got.run.stdout.starts_with(&format!("{FILES} files valid, 0 corrupted")), "{}", got.run.stdout);
    assert!(!got.wrapped(), "a line was wider than 80 columns:\n{}", got.text());
    assert_eq!(got.used_rows(), Vec::<String>::new(), "the bar was cleared:\n{}", got.text());
    assert!(!got.raw.contains("0 B/0 B"), "an empty bar flashed");
}

/// The bars follow the terminal when it is resized mid-run: every line drawn after the
/// terminal shrank to 60 columns fits in 60.
#[test]
fn bars_follow_a_terminal_resized_mid_run() {
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let hub = TestHub::start_blocking([big_repo()]);
    hub.throttle(Some(6 << 20)); // the 21 MiB take a few seconds: time to resize mid-run
    let env = Env::new(&hub);
    crate::bin();
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave = std::fs::OpenOptions::new().read(true).write(true).open(std::ffi::OsStr::from_bytes(name.as_bytes())).unwrap();
    let size = |cols| rustix::termios::Winsize { ws_row: 30, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(&slave, size(100)).unwrap();
    let mut command = env.command(&["get", "org/big"]);
    command.env("TERM", "xterm-256color").stdout(Stdio::piped()).stderr(Stdio::from(slave.try_clone().unwrap()));
    let child = command.spawn().unwrap();
    drop(command);
    let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut reader_end = std::fs::File::from(master.try_clone().unwrap());
    let sink = std::sync::Arc::clone(&output);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match reader_end.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !String::from_utf8_lossy(&output.lock().unwrap()).contains("/202 files") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    rustix::termios::tcsetwinsize(&slave, size(60)).unwrap();
    drop(slave);
    // What was being drawn at the old width has been written by then; indicatif reads the
    // width again at each draw.
    std::thread::sleep(std::time::Duration::from_millis(400));
    let offset = output.lock().unwrap().len();
    let run = Run::from(&child.wait_with_output().unwrap());
    reader.join().unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = output.lock().unwrap().clone();
    let after = visible_pieces(&String::from_utf8_lossy(&bytes[offset..]));
    // Each draw writes its rows padded to the terminal's width, one after the other: cut
    // into rows of 60, a draw at 60 columns gives the overall bar first, then file rows
    // (which start with two spaces). A draw still at 100 columns would cut rows mid-way.
    let drawn: Vec<&str> = after.lines().skip(1).filter(|l| l.contains("/202 files [")).collect();
    assert!(!drawn.is_empty(), "no bar was drawn after the resize:\n{after}");
    for piece in drawn {
        let chars: Vec<char> = piece.chars().collect();
        let rows: Vec<String> = chars.chunks(60).map(|c| c.iter().collect()).collect();
        assert!(rows[0].starts_with(|c: char| c.is_ascii_digit()) && rows[0].contains(" files ["), "{rows:#?}");
        assert!(rows[1..].iter().all(|r| r.starts_with("  ")), "rows not 60 columns wide: {rows:#?}");
    }
}

/// The runs of text written between cursor moves (an escape sequence, a carriage return,
/// a line feed), one a line.
fn visible_pieces(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for n in chars.by_ref() {
                        if n.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
                out.push('\n');
            }
            '\r' => out.push('\n'),
            c => out.push(c),
        }
    }
    out
}
