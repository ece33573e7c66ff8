//! Retry policy: which failures are worth another attempt, exponential backoff with full
//! jitter, and `Retry-After` (seconds or an HTTP date).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::FetchConfig;

/// Statuses that a later attempt may fix: timeouts, rate limits, server and gateway errors.
/// 400, 401, 403, 404, 416 and the rest fail at once.
pub(crate) fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The delay before retry number `attempt` (1-based): a uniformly random duration up to
/// `min(cap, base * 2^(attempt-1))` ("full jitter"), but at least `retry_after` (capped at
/// `max_retry_after`) when the server asked for it.
pub(crate) fn backoff(config: &FetchConfig, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = config.backoff_base.saturating_mul(1 << attempt.saturating_sub(1).min(20));
    let ceiling = exp.min(config.backoff_cap);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    let jittered = Duration::from_millis(fastrand::u64(0..=ceiling_ms));
    match retry_after {
        Some(wait) => wait.min(config.max_retry_after).max(jittered),
        None => jittered,
    }
}

/// Parses `Retry-After`: delta-seconds, or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate.
fn parse_http_date(v: &str) -> Option<u64> {
    let mut parts = v.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month_name = parts.next()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        .iter()
        .position(|m| *m == month_name)? as u64
        + 1;
    let year: u64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (hour, min, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || year < 1970 || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm), for years from 1970.
    let (shifted_year, shifted_month) = if month <= 2 { (year - 1, month + 9) } else { (year, month - 3) };
    let era = shifted_year / 400;
    let yoe = shifted_year - era * 400;
    let doy = (153 * shifted_month + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_retry() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 206, 302, 400, 401, 403, 404, 416, 501] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn backoff_is_jittered_under_an_exponential_cap() {
        let mut c = FetchConfig {
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_millis(350),
            ..FetchConfig::default()
        };
        for _ in 0..200 {
            assert!(backoff(&c, 1, None) <= Duration::from_millis(100));
            assert!(backoff(&c, 2, None) <= Duration::from_millis(200));
            assert!(backoff(&c, 30, None) <= Duration::from_millis(350));
        }
        assert!(backoff(&c, 1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
        c.max_retry_after = Duration::from_secs(1);
        assert!(backoff(&c, 1, Some(Duration::from_secs(3600))) <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        for bad in ["", "soon", "-1", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 CET"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }
}
