//! Progress on stderr: the facade's [`Progress`] events drawn with indicatif, one bar per
//! file, when stderr is a terminal ([`Bars`]); plain note lines for lock waits and retries
//! when it is not ([`Notes`]: a CI log or a redirected stderr must not be silent for the
//! minutes a stuck lock holder can take). Neither with `-q` or `--json`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use modelcache::{Progress, ProgressEvent};

/// One bar per file being downloaded, and a spinner per lock being waited for.
pub(crate) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:<32!} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ")
}

fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Bars {
    pub(crate) fn new() -> Self {
        Bars { multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)), bars: Mutex::new(HashMap::new()) }
    }

    fn with_bar(&self, label: &str, f: impl FnOnce(&ProgressBar)) {
        let Ok(mut bars) = self.bars.lock() else { return };
        let bar = bars.entry(label.to_owned()).or_insert_with(|| {
            let b = self.multi.add(ProgressBar::new(0).with_style(bar_style()));
            b.set_message(label.to_owned());
            b
        });
        f(bar);
    }

    fn take(&self, label: &str) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|mut b| b.remove(label))
    }
}

impl Progress for Bars {
    fn event(&self, event: &ProgressEvent<'_>) {
        match *event {
            ProgressEvent::Started { label, total, resumed_from } => self.with_bar(label, |b| {
                b.set_style(bar_style());
                b.set_length(total.unwrap_or(0));
                b.set_position(resumed_from);
                b.reset_eta();
                if resumed_from > 0 {
                    b.set_message(format!("{label} (resumed)"));
                }
            }),
            ProgressEvent::Sized { label, total } => self.with_bar(label, |b| b.set_length(total)),
            ProgressEvent::Advanced { label, bytes } => self.with_bar(label, |b| b.inc(bytes)),
            ProgressEvent::Retrying { label, attempt, delay, reason } => {
                self.with_bar(label, |b| b.set_message(format!("{label} (retry {attempt} in {}s: {reason})", delay.as_secs())));
            }
            ProgressEvent::Restarted { label, .. } => self.with_bar(label, |b| b.set_position(0)),
            ProgressEvent::Finished { label, bytes } => {
                if let Some(b) = self.take(label) {
                    b.set_length(bytes);
                    b.set_position(bytes);
                    b.set_message(label.to_owned());
                    b.finish();
                }
            }
            ProgressEvent::WaitingForLock { label, holder, incomplete_bytes, .. } => self.with_bar(label, |b| {
                b.set_style(spinner_style());
                b.enable_steady_tick(Duration::from_millis(100));
                let who = holder.unwrap_or("another process");
                let far = incomplete_bytes.map(|n| format!(", {} so far", crate::format::size(n))).unwrap_or_default();
                b.set_message(format!("{label}: waiting for {who} to finish downloading it{far}"));
            }),
            _ => {}
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Ok(bars) = self.bars.lock() {
            for b in bars.values() {
                b.finish_and_clear();
            }
        }
    }
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
            ProgressEvent::WaitingForLock { label, holder, incomplete_bytes, waited, .. } if self.due(label, waited) => {
                let who = holder.unwrap_or("another process");
                let far = incomplete_bytes.map(|n| format!(", {} so far", crate::format::size(n))).unwrap_or_default();
                format!("note: {label}: waiting {}s for {who} to finish downloading it{far}", waited.as_secs())
            }
            ProgressEvent::Retrying { label, attempt, delay, reason } => {
                format!("note: {label}: {reason}; retrying in {}s [attempt {attempt}]", delay.as_secs())
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
}
