//! Faults and shaping the hub applies while it runs: throughput caps, latency, dropped
//! connections, error bursts, wrong bodies and stalls. Settable from Rust and, as JSON, over
//! `POST /_testkit/faults`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The faults in force. Counted faults (`drop`, `fail`, `corrupt`, `stall`) apply to the
/// next `count` matching requests and then switch themselves off.
///
/// As JSON (every field optional):
/// `{"throttle_bps": 50000000, "latency_ms": 20, "drop": {"after_bytes": 1048576, "count": 2},
///   "fail": {"status": 429, "count": 1, "retry_after": 1}, "corrupt": {"count": 1},
///   "stall": {"after_bytes": 0, "count": 1, "duration_ms": 2000}, "path_contains": "/cdn/",
///   "loop_listing": true, "announce_size": 4611686018427387904}`
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Cap on body bytes per second, per connection.
    pub throttle_bps: Option<u64>,
    /// Delay before every response's headers, in milliseconds.
    pub latency_ms: u64,
    /// Close the connection after this many body bytes.
    pub drop: Option<DropFault>,
    /// Answer with an error status instead of the resource.
    pub fail: Option<FailFault>,
    /// Send bytes that do not match the etag (same length).
    pub corrupt: Option<CorruptFault>,
    /// Stop sending mid-body for a while.
    pub stall: Option<StallFault>,
    /// Ignore `Range` headers (answer `200` with the whole file), as some servers do.
    pub ignore_ranges: bool,
    /// Answer every tree listing page with `Link: <the same URL>; rel="next"`: a listing
    /// that never ends.
    pub loop_listing: bool,
    /// Announce this size for files (`X-Linked-Size` and `Content-Length` of `HEAD` on
    /// `resolve/`), whatever they hold: a server lying about sizes.
    pub announce_size: Option<u64>,
    /// Apply faults only to requests whose path contains this text (e.g. `/cdn/`).
    pub path_contains: Option<String>,
}

/// Close the connection after `after_bytes` body bytes, for the next `count` file bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropFault {
    /// Body bytes sent before the connection is cut.
    pub after_bytes: u64,
    /// How many responses to cut.
    pub count: u32,
}

/// Answer `status` (with `Retry-After` when given) to the next `count` requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailFault {
    /// The status, e.g. 429, 500, 503.
    pub status: u16,
    /// How many requests fail.
    pub count: u32,
    /// `Retry-After` in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// Flip bytes of the next `count` file bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptFault {
    /// How many bodies to corrupt.
    pub count: u32,
}

/// Pause for `duration_ms` after `after_bytes` body bytes, for the next `count` bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StallFault {
    /// Body bytes sent before the pause.
    pub after_bytes: u64,
    /// How many bodies stall.
    pub count: u32,
    /// Length of the pause in milliseconds; the connection is then closed.
    pub duration_ms: u64,
}

/// What one file body must suffer, taken from [`Faults`] when its request arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BodyPlan {
    pub(crate) throttle_bps: Option<u64>,
    pub(crate) drop_after: Option<u64>,
    pub(crate) corrupt: bool,
    pub(crate) stall: Option<(u64, Duration)>,
    pub(crate) ignore_ranges: bool,
}

impl Faults {
    pub(crate) fn applies_to(&self, path: &str) -> bool {
        self.path_contains.as_deref().is_none_or(|p| path.contains(p))
    }

    /// The error to answer with instead of the resource, consuming one count.
    pub(crate) fn take_failure(&mut self, path: &str) -> Option<FailFault> {
        if !self.applies_to(path) {
            return None;
        }
        let f = self.fail.as_mut()?;
        let out = *f;
        f.count = f.count.saturating_sub(1);
        if f.count == 0 {
            self.fail = None;
        }
        (out.count > 0).then_some(out)
    }

    /// The latency to add to a request for `path`.
    pub(crate) fn latency(&self, path: &str) -> Duration {
        if self.applies_to(path) { Duration::from_millis(self.latency_ms) } else { Duration::ZERO }
    }

    /// The shaping of one file body, consuming one count of each counted body fault.
    pub(crate) fn take_body_plan(&mut self, path: &str) -> BodyPlan {
        if !self.applies_to(path) {
            return BodyPlan::default();
        }
        let mut plan = BodyPlan {
            throttle_bps: self.throttle_bps.filter(|&b| b > 0),
            ignore_ranges: self.ignore_ranges,
            ..BodyPlan::default()
        };
        if let Some(d) = self.drop.as_mut() {
            plan.drop_after = Some(d.after_bytes);
            d.count = d.count.saturating_sub(1);
            if d.count == 0 {
                self.drop = None;
            }
        }
        if let Some(c) = self.corrupt.as_mut() {
            plan.corrupt = true;
            c.count = c.count.saturating_sub(1);
            if c.count == 0 {
                self.corrupt = None;
            }
        }
        if let Some(s) = self.stall.as_mut() {
            plan.stall = Some((s.after_bytes, Duration::from_millis(s.duration_ms)));
            s.count = s.count.saturating_sub(1);
            if s.count == 0 {
                self.stall = None;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_switch_themselves_off() {
        let mut f = Faults {
            drop: Some(DropFault { after_bytes: 10, count: 2 }),
            fail: Some(FailFault { status: 503, count: 1, retry_after: None }),
            ..Faults::default()
        };
        assert_eq!(f.take_failure("/a").map(|f| f.status), Some(503));
        assert_eq!(f.take_failure("/a"), None);
        assert_eq!(f.take_body_plan("/a").drop_after, Some(10));
        assert_eq!(f.take_body_plan("/a").drop_after, Some(10));
        assert_eq!(f.take_body_plan("/a").drop_after, None);
    }

    #[test]
    fn path_filter_limits_faults() {
        let mut f = Faults {
            corrupt: Some(CorruptFault { count: 1 }),
            latency_ms: 5,
            path_contains: Some("/cdn/".into()),
            ..Faults::default()
        };
        assert!(!f.take_body_plan("/org/x/resolve/main/a").corrupt);
        assert_eq!(f.latency("/api/models/x"), Duration::ZERO);
        assert!(f.take_body_plan("/cdn/abc").corrupt);
        assert!(!f.take_body_plan("/cdn/abc").corrupt);
    }

    #[test]
    fn json_form_is_documented_and_strict() {
        let f: Faults =
            serde_json::from_str(r#"{"throttle_bps": 5, "fail": {"status": 429, "count": 1, "retry_after": 1}}"#).unwrap();
        assert_eq!(f.throttle_bps, Some(5));
        assert_eq!(f.fail.unwrap().retry_after, Some(1));
        assert!(serde_json::from_str::<Faults>(r#"{"thrpttle": 5}"#).is_err());
    }
}
