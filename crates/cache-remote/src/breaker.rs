//! The circuit breaker: a tier that keeps failing is skipped for a while instead of costing
//! a timeout per file, then tried again with one request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive failures that open the breaker.
const THRESHOLD: u32 = 3;

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

/// Counts consecutive failures; open = skip the tier until the cool-down ends.
#[derive(Debug)]
pub(crate) struct Breaker {
    state: Mutex<State>,
    cool_down: Duration,
}

impl Breaker {
    pub(crate) fn new(cool_down: Duration) -> Self {
        Breaker { state: Mutex::default(), cool_down }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go to the tier now. After the cool-down one call goes through
    /// (the breaker stays armed: its failure opens it again at once).
    pub(crate) fn allows(&self, now: Instant) -> bool {
        let mut s = self.state();
        match s.open_until {
            Some(until) if now < until => false,
            Some(_) => {
                s.open_until = None;
                s.failures = THRESHOLD - 1;
                true
            }
            None => true,
        }
    }

    /// A call succeeded (a miss is a success: the tier answered).
    pub(crate) fn success(&self) {
        let mut s = self.state();
        s.failures = 0;
        s.open_until = None;
    }

    /// A call failed; returns whether this opened the breaker.
    pub(crate) fn failure(&self, now: Instant) -> bool {
        let mut s = self.state();
        s.failures += 1;
        if s.failures >= THRESHOLD && s.open_until.is_none() {
            s.open_until = Some(now + self.cool_down);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_failures_and_half_opens_after_the_cool_down() {
        let b = Breaker::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(b.allows(t0));
        assert!(!b.failure(t0));
        b.success();
        assert!(!b.failure(t0) && !b.failure(t0));
        assert!(b.failure(t0), "the third failure in a row opens it");
        assert!(!b.allows(t0 + Duration::from_secs(29)));
        assert!(b.allows(t0 + Duration::from_secs(31)), "one try after the cool-down");
        assert!(b.failure(t0 + Duration::from_secs(31)), "and one failure opens it again");
        assert!(!b.allows(t0 + Duration::from_secs(32)));
    }
}
