//! [`CacheManager::doctor`]: what could make the cache slow, shared badly or stuck, found
//! before it bites — filesystems and what their locks are worth, the home's privacy, the
//! index, stale partial downloads, repositories moved out of the cache, the strategy.
//!
//! Every check reads; the one write is the lock probe's empty lock file under
//! `<hub>/.locks/`, removed again (huggingface_hub ignores that folder).

use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::manager::CacheManager;

/// How a check came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Works, but something deserves attention.
    Warn,
    /// Does not work.
    Fail,
}

/// One check of [`CacheManager::doctor`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (`hub cache`, `locks`, …).
    pub name: String,
    /// How it came out.
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// The next step, when there is one.
    pub hint: Option<String>,
}

/// Every check, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorReport {
    /// The checks.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst status of any check (`Ok` when there is none).
    pub fn status(&self) -> CheckStatus {
        self.checks.iter().map(|c| c.status).max().unwrap_or(CheckStatus::Ok)
    }

    fn push(&mut self, name: &str, status: CheckStatus, detail: String, hint: Option<String>) {
        self.checks.push(Check { name: name.to_owned(), status, detail, hint });
    }
}

fn size(bytes: u64) -> String {
    cache_core::ByteSize::new(bytes).to_string()
}

impl CacheManager {
    /// Checks the cache's setup (see the module docs): read-only but for a lock probe.
    pub fn doctor(&self) -> Result<DoctorReport, CacheError> {
        let mut r = DoctorReport::default();
        self.check_roots_and_locks(&mut r)?;
        self.check_contents(&mut r)?;
        self.check_setup(&mut r);
        Ok(r)
    }

    /// The two roots' filesystems, the home's mode, and what `flock` is worth.
    fn check_roots_and_locks(&self, r: &mut DoctorReport) -> Result<(), CacheError> {
        use CheckStatus::{Fail, Ok as Good, Warn};
        let store = &self.inner.store;

        let (hub, home) = store.filesystems()?;
        let shared_hint = "digests keep every file correct; several machines may still download one file at the same \
                           time, and a crashed machine's lock may linger: prefer a local disk for the hub cache, or \
                           give each machine its own"
            .to_owned();
        let on = |fs: &cache_store::Filesystem| format!("on {}, {} free of {}", fs.kind.name(), size(fs.free), size(fs.capacity));
        let (status, hint) = if hub.kind.is_shared() { (Warn, Some(shared_hint.clone())) } else { (Good, None) };
        r.push("hub cache", status, format!("`{}` {}", store.hub_dir(), on(&hub)), hint);

        let mode = std::fs::metadata(store.home_dir()).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
        let (status, hint) = match mode {
            Ok(m) if m & 0o077 != 0 => {
                (Warn, Some(format!("the home holds the index and URL artifacts: `chmod 700 {}`", store.home_dir())))
            }
            Ok(_) => (Good, None),
            Err(_) => (Fail, Some("check that the home exists and is readable (`MODELCACHE_HOME`)".to_owned())),
        };
        let mode = mode.map_or_else(|_| "unreadable".to_owned(), |m| format!("{:o}", m & 0o777));
        r.push("home", status, format!("`{}` {}, mode {mode}", store.home_dir(), on(&home)), hint);

        let (status, detail, hint) = match store.probe_locks() {
            Ok(cache_store::LockProbe::Excludes) if hub.kind.is_shared() => (
                Warn,
                format!("flock excludes processes on this machine; on {} it may not exclude other machines", hub.kind.name()),
                Some(shared_hint),
            ),
            Ok(cache_store::LockProbe::Excludes) => {
                (Good, "flock excludes other processes (and huggingface_hub)".to_owned(), None)
            }
            Ok(probe) => (
                Warn,
                format!(
                    "flock {} here: processes may download one file at the same time",
                    if probe == cache_store::LockProbe::NoOp { "is a no-op" } else { "is not supported" }
                ),
                Some("digests keep every file correct; only work is duplicated".to_owned()),
            ),
            Err(e) => (Fail, format!("no lock file can be made: {e}"), Some("check the hub cache's permissions".to_owned())),
        };
        r.push("locks", status, detail, hint);
        Ok(())
    }

    /// The index, stale partial downloads, repositories moved out of the cache.
    fn check_contents(&self, r: &mut DoctorReport) -> Result<(), CacheError> {
        use CheckStatus::{Ok as Good, Warn};
        let store = &self.inner.store;
        let c = &self.inner.config.config;

        let index = store.index_path();
        // The hub cache's index and the URL artifacts' one, set aside beside themselves.
        let dirs =
            [index.parent().map(|d| d.as_std_path().to_owned()), Some(store.home_dir().join("artifacts").into_std_path_buf())];
        let set_aside: Vec<String> = dirs
            .into_iter()
            .flatten()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".corrupt-") && !n.ends_with("-wal") && !n.ends_with("-shm"))
            .collect();
        let index_size = std::fs::metadata(&index).map_or(0, |m| m.len());
        if set_aside.is_empty() {
            r.push("index", Good, format!("`{index}`, {}", size(index_size)), None);
        } else {
            r.push(
                "index",
                Warn,
                format!(
                    "`{index}`, {}; {} unreadable file(s) were set aside and rebuilt: {}",
                    size(index_size),
                    set_aside.len(),
                    set_aside.join(", ")
                ),
                Some(
                    "nothing was lost but usage history and pins; delete the set-aside files when you no longer need them"
                        .to_owned(),
                ),
            );
        }

        let cutoff = cache_core::Timestamp::now().saturating_sub(c.in_use_grace);
        let incomplete: Vec<_> = store.list()?.into_iter().flat_map(|l| l.incomplete).collect();
        let stale: Vec<_> = incomplete.iter().filter(|i| i.modified <= cutoff).collect();
        let stale_bytes: u64 = stale.iter().map(|i| i.size).sum();
        if stale.is_empty() {
            r.push("partial downloads", Good, format!("{} in progress", incomplete.len()), None);
        } else {
            r.push(
                "partial downloads",
                Warn,
                format!(
                    "{} untouched for over {}, {}",
                    stale.len(),
                    cache_core::format_duration(c.in_use_grace),
                    size(stale_bytes)
                ),
                Some("the next `get` of those files resumes them; `modelcache prune` removes them".to_owned()),
            );
        }

        let moved = store.outside_repos()?;
        if moved.is_empty() {
            r.push("repositories", Good, "every repository folder is inside the cache".to_owned(), None);
        } else {
            let names: Vec<String> = moved.iter().map(|(repo, folder)| format!("`{repo}` (`{folder}`)")).collect();
            r.push(
                "repositories",
                Warn,
                format!("skipped by ls, verify, prune and clean: a folder links outside the cache: {}", names.join(", ")),
                Some("move the folder back into the cache (or remove the link and `modelcache get` it again)".to_owned()),
            );
        }

        Ok(())
    }

    /// The strategy and where the configuration came from.
    fn check_setup(&self, r: &mut DoctorReport) {
        use CheckStatus::{Fail, Ok as Good};
        let c = &self.inner.config.config;
        let info = self.acquisition_info();
        let (status, hint) = if info.available {
            (Good, None)
        } else {
            (Fail, Some("pass `--strategy cache-only`, or build modelcache with the `downloads` feature".to_owned()))
        };
        let availability = if info.available { "available" } else { "not available in this build" };
        r.push("strategy", status, format!("{}, {availability} (`modelcache config` describes it)", info.name), hint);

        let file = self.config().file.as_ref().map_or_else(|| "no config file".to_owned(), |f| format!("`{}`", f.display()));
        let network =
            if c.offline { "offline".to_owned() } else { format!("online, endpoint `{}`", cache_core::redact_url(&c.endpoint)) };
        r.push("configuration", Good, format!("{file}; {network}"), None);
    }
}
