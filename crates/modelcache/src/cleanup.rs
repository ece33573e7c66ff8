//! Opportunistic cleanup: prune by the configured `max_size`/`max_age` at most once per
//! `cleanup_interval` (default 24 h), as cargo's automatic gc does, so age limits apply
//! without anyone running `modelcache prune`.
//!
//! # When it runs
//! After a download (the one caller is the manager's after-download prune) when only an
//! age limit is set — a size limit is enforced after every download anyway — and all of
//! these hold: not offline (a cache that cannot download again is not thinned), automatic
//! pruning on (`auto_prune`), an interval set (`cleanup_interval` other than `never`), a
//! limit to apply (`max_size` or `max_age`), and the last run is at least one interval
//! ago — or never happened, or lies in the future (a clock that went back does not block
//! cleanup for ever).
//!
//! # The timestamp
//! The last run is a file `last-cleanup` beside the hub cache's index in the modelcache
//! home (one per hub cache), holding seconds since the Unix epoch; never in the hub cache,
//! which belongs to huggingface_hub's layout. It is written (atomically) before the prune,
//! so other processes that look meanwhile skip; two that look at the same instant both
//! prune, which is harmless: eviction takes the same locks as any removal.
//!
//! # Performance
//! When not due it costs one small file read; time is a parameter of [`is_due`], never
//! read inside it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::types::PruneReport;

/// The timestamp file's name, beside the index.
const STAMP: &str = "last-cleanup";

/// Whether the cleanup should run at `now` with settings `c`, the last run at `last`.
pub(crate) fn is_due(c: &Config, last: Option<SystemTime>, now: SystemTime) -> bool {
    let Some(interval) = c.cleanup_interval else { return false };
    if c.offline || !c.auto_prune || (c.max_size.is_none() && c.max_age.is_none()) {
        return false;
    }
    last.is_none_or(|last| !matches!(now.duration_since(last), Ok(since) if since < interval))
}

impl CacheManager {
    /// Where the last cleanup's time is kept.
    pub(crate) fn cleanup_stamp(&self) -> PathBuf {
        let index = self.inner.store.index_path().into_std_path_buf();
        index.parent().map_or_else(|| self.home_dir().join(STAMP), |dir| dir.join(STAMP))
    }

    /// Runs the opportunistic cleanup when it is due (see the module docs): `None` when it
    /// was not, the prune's report when it ran. Blocking.
    pub(crate) fn cleanup_if_due(&self, now: SystemTime) -> Result<Option<PruneReport>, CacheError> {
        let c = &self.inner.config.config;
        let stamp = self.cleanup_stamp();
        if !is_due(c, read_stamp(&stamp), now) {
            return Ok(None);
        }
        write_stamp(&stamp, now)?;
        let report = self.prune_now(&c.eviction_policy(), false)?;
        tracing::info!(evicted = report.evicted.len(), bytes = report.bytes_freed, "periodic cleanup");
        Ok(Some(report))
    }

    /// [`cleanup_if_due`](Self::cleanup_if_due) now, off the async threads: whether it
    /// ran (a failure is logged: the download it follows succeeded).
    pub(crate) async fn cleanup_when_due(&self) -> bool {
        match self.blocking(|m| m.cleanup_if_due(SystemTime::now())).await {
            Ok(ran) => ran.is_some(),
            Err(e) => {
                tracing::warn!("periodic cleanup failed: {e}");
                false
            }
        }
    }
}

fn read_stamp(path: &std::path::Path) -> Option<SystemTime> {
    let text = std::fs::read_to_string(path).ok()?;
    let secs: u64 = text.trim().parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

fn write_stamp(path: &std::path::Path, now: SystemTime) -> Result<(), CacheError> {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let io = |source| CacheError::Io { op: "record the cleanup time in", path: path.to_owned(), source };
    std::fs::write(&tmp, format!("{secs}\n")).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigLoader;

    fn config(settings: &[(crate::config::Key, &str)]) -> Config {
        let mut l = ConfigLoader::with_env(|k| (k == "HOME").then(|| "/home/u".to_owned()));
        for (k, v) in settings {
            l = l.set(*k, *v);
        }
        l.load().unwrap().config
    }

    #[test]
    fn due_once_per_interval_only_with_a_limit_and_online() {
        use crate::config::Key;
        let now = UNIX_EPOCH + Duration::from_secs(10 * 86_400);
        let day = Duration::from_secs(86_400);
        let c = config(&[(Key::MaxAge, "7d")]);
        assert!(is_due(&c, None, now), "never ran");
        assert!(!is_due(&c, Some(now - day / 2), now), "ran half a day ago");
        assert!(is_due(&c, Some(now - day), now), "a whole interval ago");
        assert!(is_due(&c, Some(now + day), now), "a stamp from the future does not block");
        assert!(!is_due(&config(&[]), None, now), "no limit, nothing to do");
        assert!(is_due(&config(&[(Key::MaxSize, "1GiB")]), None, now));
        assert!(!is_due(&config(&[(Key::MaxAge, "7d"), (Key::Offline, "true")]), None, now), "off while offline");
        assert!(!is_due(&config(&[(Key::MaxAge, "7d"), (Key::AutoPrune, "false")]), None, now));
        assert!(!is_due(&config(&[(Key::MaxAge, "7d"), (Key::CleanupInterval, "never")]), None, now));
        let hourly = config(&[(Key::MaxAge, "7d"), (Key::CleanupInterval, "1h")]);
        assert!(is_due(&hourly, Some(now - Duration::from_secs(3600)), now));
    }

    #[test]
    fn the_stamp_reads_back_and_garbage_counts_as_never() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join(STAMP);
        assert_eq!(read_stamp(&p), None);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        write_stamp(&p, t).unwrap();
        assert_eq!(read_stamp(&p), Some(t));
        std::fs::write(&p, "yesterday").unwrap();
        assert_eq!(read_stamp(&p), None);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1, "no temporary file left");
    }
}
