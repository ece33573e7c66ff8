//! Progress on stderr: the facade's [`Progress`] events drawn with indicatif when stderr is
//! a terminal ([`Bars`]); plain note lines for lock waits and retries when it is not
//! ([`Notes`]: a CI log or a redirected stderr must not be silent for the minutes a stuck
//! lock holder can take). Neither with `-q` or `--json`.
//!
//! # What a terminal shows
//! - One overall bar per command (`24/202 files [=====>   ] 96 MiB/1.4 GiB 31 MiB/s 42s`,
//!   the files found in the cache counted as done from the start),
//!   added when the first request has planned its downloads and there are bytes to count:
//!   never an empty `0 B/0 B` bar.
//! - Under it, a bar for each large file in flight ([`Bars::BIG`] or more, at most
//!   [`Bars::MAX_FILE_BARS`] at once); small files only move the overall bar.
//! - One status line for the latest retry (`config.json: rate limited by the Hub (429),
//!   retrying in 2.0 s [1/5]`) until that file moves again, and a spinner per lock being
//!   waited for, saying who holds it and how far it got.
//!
//! Every line fits the terminal, also after a resize: bars and names take the width that is
//! left (`{wide_bar}`, `{wide_msg}`), long names are shortened in the middle. Finished
//! bars are cleared; [`Bars::finish`] clears the rest before the command prints its
//! results and one summary line ([`summary`]).

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use modelcache::{Progress, ProgressEvent};

use crate::format;

/// The overall bar, file bars, the retry line and lock spinners.
pub(crate) struct Bars {
    multi: MultiProgress,
    state: Mutex<State>,
}

/// What the bars count.
#[derive(Default)]
struct State {
    /// Shown once there are bytes to count.
    overall: Option<ProgressBar>,
    files_total: usize,
    files_done: usize,
    bytes_total: u64,
    bytes_done: u64,
    /// Labels planned without a size (URLs): their size counts when their transfer says it.
    size_unknown: HashSet<String>,
    /// The transfers in flight, by label.
    files: HashMap<String, InFlight>,
    /// The latest retry: its file and its line.
    status: Option<(String, ProgressBar)>,
    /// Lock waits, by label.
    waits: HashMap<String, ProgressBar>,
}

/// One transfer in flight.
#[derive(Default)]
struct InFlight {
    total: Option<u64>,
    bar: Option<ProgressBar>,
}

fn overall_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn file_style() -> ProgressStyle {
    ProgressStyle::with_template("  {wide_msg} {binary_bytes:>10}/{binary_total_bytes:<10} [{bar:20}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{wide_msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {wide_msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `name` in at most `max` characters, shortened in the middle: `models/very…/weights.bin`.
pub(crate) fn shorten_middle(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max || max < 5 {
        return name.to_owned();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(count - tail).collect();
    format!("{start}…{end}")
}

/// `2.0 s`, `350 ms`: a retry's wait.
fn delay(d: Duration) -> String {
    format::duration(d)
}

/// A retry as one line: `config.json: rate limited by the Hub (429), retrying in 2.0 s [1/5]`.
fn retry_line(label: &str, reason: &str, wait: Duration, attempt: u32, retries: u32) -> String {
    format!("{label}: {reason}, retrying in {} [{attempt}/{retries}]", delay(wait))
}

/// A lock wait as one line.
/// What a waiter says about the holder: who, how far, how fast, for how long.
fn wait_line(
    label: &str,
    waited: Option<Duration>,
    holder: Option<&str>,
    incomplete_bytes: Option<u64>,
    speed: Option<u64>,
    held_for: Option<Duration>,
) -> String {
    let who = holder.unwrap_or("another process");
    let far = incomplete_bytes.map(|n| format!(", {} so far", format::size(n))).unwrap_or_default();
    let rate = match (incomplete_bytes, speed) {
        (Some(_), Some(0)) => " (not moving)".to_owned(),
        (Some(_), Some(b)) => format!(" at {}/s", format::size(b)),
        _ => String::new(),
    };
    let held = held_for
        .map(|d| format!(" (holding it for {})", modelcache::format_duration(Duration::from_secs(d.as_secs()))))
        .unwrap_or_default();
    let waited = waited.map(|w| format!(" {}s", w.as_secs())).unwrap_or_default();
    format!("{label}: waiting{waited} for {who}{held} to finish downloading it{far}{rate}")
}

impl Bars {
    /// Files at least this large get a bar of their own.
    pub(crate) const BIG: u64 = 8 << 20;
    /// At most this many file bars at once.
    pub(crate) const MAX_FILE_BARS: usize = 3;
    /// Names in bars are shortened to this many characters (and further, at the end, on a
    /// narrow terminal).
    const NAME: usize = 40;

    pub(crate) fn new() -> Self {
        Self::with_target(ProgressDrawTarget::stderr_with_hz(10))
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        Bars { multi: MultiProgress::with_draw_target(target), state: Mutex::new(State::default()) }
    }

    /// Clears every bar and line (before the command prints its results).
    pub(crate) fn finish(&self) {
        let Ok(mut guard) = self.state.lock() else { return };
        let s = &mut *guard;
        for bar in s.files.drain().filter_map(|(_, f)| f.bar).chain(s.waits.drain().map(|(_, b)| b)) {
            bar.finish_and_clear();
        }
        if let Some((_, line)) = s.status.take() {
            line.finish_and_clear();
        }
        if let Some(overall) = s.overall.take() {
            overall.finish_and_clear();
        }
        let _ = self.multi.clear();
    }

    fn update(&self, f: impl FnOnce(&mut State, &MultiProgress)) {
        if let Ok(mut s) = self.state.lock() {
            f(&mut s, &self.multi);
            s.refresh(&self.multi);
        }
    }
}

impl State {
    /// Shows the overall bar once there is something to count, and keeps it current.
    fn refresh(&mut self, multi: &MultiProgress) {
        let prefix = format!("{}/{} files", self.files_done.min(self.files_total), self.files_total);
        if self.overall.is_none() && self.bytes_total > 0 {
            let bar = ProgressBar::with_draw_target(Some(self.bytes_total), ProgressDrawTarget::hidden())
                .with_style(overall_style())
                .with_prefix(prefix.clone())
                .with_position(self.bytes_done);
            bar.reset_eta();
            self.overall = Some(multi.insert(0, bar));
        }
        let Some(bar) = &self.overall else { return };
        bar.set_length(self.bytes_total.max(self.bytes_done));
        bar.set_position(self.bytes_done);
        if bar.prefix() != prefix {
            bar.set_prefix(prefix);
        }
    }

    /// The size of `label` became known.
    fn sized(&mut self, multi: &MultiProgress, label: &str, total: u64) {
        if self.size_unknown.remove(label) {
            self.bytes_total += total;
        }
        let open_bars = self.files.values().filter(|f| f.bar.is_some()).count();
        let many = self.files_total > 1;
        let file = self.files.entry(label.to_owned()).or_default();
        file.total = Some(total);
        match &file.bar {
            Some(bar) => bar.set_length(total),
            None if many && total >= Bars::BIG && open_bars < Bars::MAX_FILE_BARS => {
                let bar = multi.add(ProgressBar::new(total).with_style(file_style()));
                bar.set_message(shorten_middle(label, Bars::NAME));
                file.bar = Some(bar);
            }
            None => {}
        }
    }

    /// `label` moved: its retry line (if it is the latest) has served.
    fn moved(&mut self, label: &str) {
        if self.status.as_ref().is_some_and(|(l, _)| l == label)
            && let Some((_, line)) = self.status.take()
        {
            line.finish_and_clear();
        }
        if let Some(spinner) = self.waits.remove(label) {
            spinner.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn event(&self, event: &ProgressEvent<'_>) {
        match *event {
            ProgressEvent::Planned { label, files, cached, bytes } => self.update(|s, _| {
                // A retry of the request's own metadata requests has served.
                s.moved(label);
                // Files already cached count as done: `12/202 files` from the start.
                s.files_total += files + cached;
                s.files_done += cached;
                match bytes {
                    Some(b) => s.bytes_total += b,
                    None => {
                        s.size_unknown.insert(label.to_owned());
                    }
                }
            }),
            ProgressEvent::Started { label, total, resumed_from } => self.update(|s, multi| {
                s.moved(label);
                s.files.entry(label.to_owned()).or_default();
                if let Some(total) = total {
                    s.sized(multi, label, total);
                }
                s.bytes_done += resumed_from;
                if let Some(bar) = s.files.get(label).and_then(|f| f.bar.as_ref()) {
                    bar.set_position(resumed_from);
                    bar.reset_eta();
                }
            }),
            ProgressEvent::Sized { label, total } => self.update(|s, multi| s.sized(multi, label, total)),
            ProgressEvent::Advanced { label, bytes } => self.update(|s, _| {
                s.moved(label);
                s.bytes_done += bytes;
                if let Some(bar) = s.files.get(label).and_then(|f| f.bar.as_ref()) {
                    bar.inc(bytes);
                }
            }),
            ProgressEvent::Restarted { label, discarded } => self.update(|s, _| {
                s.bytes_done = s.bytes_done.saturating_sub(discarded);
                if let Some(bar) = s.files.get(label).and_then(|f| f.bar.as_ref()) {
                    bar.set_position(0);
                }
            }),
            ProgressEvent::Finished { label, .. } => self.update(|s, _| {
                s.moved(label);
                s.files_done += 1;
                if let Some(bar) = s.files.remove(label).and_then(|f| f.bar) {
                    bar.finish_and_clear();
                }
            }),
            ProgressEvent::Retrying { label, attempt, retries, delay, reason } => self.update(|s, multi| {
                let text = retry_line(&shorten_middle(label, Bars::NAME), reason, delay, attempt, retries);
                match &s.status {
                    Some((l, line)) if l == label => line.set_message(text),
                    _ => {
                        if let Some((_, old)) = s.status.take() {
                            old.finish_and_clear();
                        }
                        let line = multi.add(ProgressBar::new(0).with_style(line_style()));
                        line.set_message(text);
                        s.status = Some((label.to_owned(), line));
                    }
                }
            }),
            ProgressEvent::WaitingForLock { label, holder, incomplete_bytes, speed, held_for, .. } => self.update(|s, multi| {
                let text = wait_line(&shorten_middle(label, Bars::NAME), None, holder, incomplete_bytes, speed, held_for);
                let spinner = s.waits.entry(label.to_owned()).or_insert_with(|| {
                    let b = multi.add(ProgressBar::new_spinner().with_style(spinner_style()));
                    b.enable_steady_tick(Duration::from_millis(100));
                    b
                });
                spinner.set_message(text);
            }),
            _ => {}
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The line a fetching command ends with on a terminal:
/// `fetched 202 files (12 hits), 1.4 GiB in 8.2 s`.
pub(crate) fn summary(files: usize, hits: usize, bytes: u64, elapsed: Duration) -> String {
    let hits = match hits {
        0 => String::new(),
        1 => " (1 hit)".to_owned(),
        n => format!(" ({n} hits)"),
    };
    format!(
        "fetched {}{hits}, {} in {}",
        format::count(files as u64, "file", "files"),
        format::size(bytes),
        format::duration(elapsed)
    )
}

/// Plain notes on a stderr that is not a terminal: who a lock wait is waiting for (after
/// the first second, then every [`Notes::EVERY`]) and each retry, one line each.
#[derive(Default)]
pub(crate) struct Notes {
    /// Per file: how long it had waited when it was last reported.
    reported: Mutex<HashMap<String, Duration>>,
}

impl Notes {
    /// How often a continuing wait is reported again.
    const EVERY: Duration = Duration::from_secs(30);

    /// Whether a wait of `waited` on `label` is due for a note now.
    fn due(&self, label: &str, waited: Duration) -> bool {
        if waited < Duration::from_secs(1) {
            return false;
        }
        let Ok(mut reported) = self.reported.lock() else { return false };
        match reported.get(label) {
            Some(last) if waited.saturating_sub(*last) < Self::EVERY => false,
            _ => {
                reported.insert(label.to_owned(), waited);
                true
            }
        }
    }
}

impl Progress for Notes {
    fn event(&self, event: &ProgressEvent<'_>) {
        let line = match *event {
            ProgressEvent::WaitingForLock { label, holder, incomplete_bytes, speed, held_for, waited, .. }
                if self.due(label, waited) =>
            {
                format!("note: {}", wait_line(label, Some(waited), holder, incomplete_bytes, speed, held_for))
            }
            ProgressEvent::Retrying { label, attempt, retries, delay, reason } => {
                format!("note: {}", retry_line(label, reason, delay, attempt, retries))
            }
            _ => return,
        };
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_says_who_holds_the_lock_how_far_how_fast_and_for_how_long() {
        let mib = 1 << 20;
        assert_eq!(
            wait_line(
                "model.bin",
                Some(Duration::from_secs(12)),
                Some("pid 77 (modelcache) on node-3"),
                Some(3 * mib),
                Some(mib),
                Some(Duration::from_millis(192_500)),
            ),
            "model.bin: waiting 12s for pid 77 (modelcache) on node-3 (holding it for 3m12s) to finish downloading it, \
             3 MiB so far at 1 MiB/s"
        );
        assert_eq!(
            wait_line("f", None, Some("pid 9 (python3), stopped"), Some(10), Some(0), None),
            "f: waiting for pid 9 (python3), stopped to finish downloading it, 10 B so far (not moving)"
        );
        assert_eq!(wait_line("f", None, None, None, None, None), "f: waiting for another process to finish downloading it");
    }

    #[test]
    fn a_wait_is_noted_after_a_second_then_every_thirty() {
        let notes = Notes::default();
        let due = |s: u64| notes.due("config.json", Duration::from_secs(s));
        assert!(!due(0), "a short wait is not worth a line");
        assert!(due(1));
        assert!(!due(2));
        assert!(!due(30));
        assert!(due(31));
        assert!(notes.due("other.bin", Duration::from_secs(5)), "each file has its own schedule");
    }

    #[test]
    fn long_names_are_shortened_in_the_middle() {
        assert_eq!(shorten_middle("config.json", 40), "config.json");
        let long = "onnx/decoder_model_merged_quantized_for_the_edge.onnx";
        let short = shorten_middle(long, 20);
        assert_eq!(short.chars().count(), 20);
        assert!(short.starts_with("onnx/deco") && short.ends_with("edge.onnx"), "{short}");
    }

    #[test]
    fn the_summary_counts_files_hits_bytes_and_time() {
        let s = summary(202, 12, 3 << 29, Duration::from_millis(8200));
        assert_eq!(s, "fetched 202 files (12 hits), 1.5 GiB in 8.2 s");
        assert_eq!(summary(1, 0, 10, Duration::from_millis(5)), "fetched 1 file, 10 B in 5 ms");
    }

    #[test]
    fn a_retry_says_why_how_long_and_which_attempt() {
        let line = retry_line("config.json", "rate limited by the Hub (429)", Duration::from_secs(2), 1, 5);
        assert_eq!(line, "config.json: rate limited by the Hub (429), retrying in 2.0 s [1/5]");
    }

    /// The bars count what the events say: files planned and finished, bytes, no bar before
    /// there are bytes to count, file bars only for large files, cleared when done.
    #[test]
    fn bars_count_files_and_bytes_and_clear_what_finished() {
        let bars = Bars::with_target(ProgressDrawTarget::hidden());
        let state = |f: &dyn Fn(&State)| f(&bars.state.lock().unwrap());
        bars.event(&ProgressEvent::Planned { label: "a.bin", files: 1, cached: 0, bytes: None });
        state(&|s| assert!(s.overall.is_none(), "no bar before a size is known"));
        bars.event(&ProgressEvent::Planned { label: "org/m@main", files: 3, cached: 2, bytes: Some(Bars::BIG + 20) });
        bars.event(&ProgressEvent::Started { label: "big.bin", total: Some(Bars::BIG), resumed_from: 0 });
        bars.event(&ProgressEvent::Started { label: "small.txt", total: Some(20), resumed_from: 0 });
        bars.event(&ProgressEvent::Started { label: "a.bin", total: None, resumed_from: 0 });
        bars.event(&ProgressEvent::Sized { label: "a.bin", total: 5 });
        bars.event(&ProgressEvent::Advanced { label: "small.txt", bytes: 20 });
        bars.event(&ProgressEvent::Finished { label: "small.txt", bytes: 20 });
        state(&|s| {
            assert_eq!((s.files_done, s.files_total), (3, 6), "cached files count as done");
            assert_eq!((s.bytes_done, s.bytes_total), (20, Bars::BIG + 25));
            assert!(s.overall.is_some());
            assert!(s.files["big.bin"].bar.is_some(), "a large file has a bar");
            assert!(s.files["a.bin"].bar.is_none(), "a small one does not");
        });
        bars.event(&ProgressEvent::Retrying {
            label: "big.bin",
            attempt: 1,
            retries: 5,
            delay: Duration::from_secs(2),
            reason: "rate limited by the Hub (429)",
        });
        state(&|s| assert!(s.status.is_some()));
        bars.event(&ProgressEvent::Advanced { label: "big.bin", bytes: Bars::BIG });
        bars.event(&ProgressEvent::Finished { label: "big.bin", bytes: Bars::BIG });
        state(&|s| {
            assert!(s.status.is_none(), "the retry line goes when the file moves again");
            assert!(!s.files.contains_key("big.bin"), "a finished file's bar is gone");
        });
        bars.finish();
        state(&|s| assert!(s.overall.is_none() && s.files.is_empty()));
    }
}
