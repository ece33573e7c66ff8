//! [`CacheManager::doctor`]: what could make the cache slow, shared badly or stuck, found
//! before it bites — filesystems, the lock mode chosen for each root and what locks are
//! worth there, the home's privacy, the index (integrity, schema, agreement with the
//! disk), stale partial downloads, lock files and who holds them now, repositories moved
//! out of the cache, whether symlinks and hard links work there, conflicting settings,
//! read-only or foreign roots, the strategy.
//!
//! Every check reads; the only writes are the probes under `<hub>/.locks/` (huggingface_hub
//! ignores that folder): the lock probe's empty lock file, and a scratch folder with a
//! file, a symlink and a hard link; both are removed again.
//! [`CacheManager::doctor_fix`] repairs what can be repaired without losing anything a
//! user made: it rebuilds the index from the disk, deletes index files set aside as
//! unreadable, removes stale partial downloads and unused lock files, and makes the
//! home private (0700).

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
    /// What `--fix` did before the checks ran (empty without it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixed: Vec<String>,
    /// The checks.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst status of any check (`Ok` when there is none).
    pub fn status(&self) -> CheckStatus {
        self.checks.iter().map(|c| c.status).max().unwrap_or(CheckStatus::Ok)
    }

    pub(crate) fn push(&mut self, name: &str, status: CheckStatus, detail: String, hint: Option<String>) {
        self.checks.push(Check { name: name.to_owned(), status, detail, hint });
    }
}

/// Index files set aside as unreadable (with their `-wal`, `-shm`): the hub cache's and
/// the URL artifacts'.
fn set_aside_files(store: &cache_store::Store) -> Vec<std::path::PathBuf> {
    let index = store.index_path();
    let dirs = [index.parent().map(|d| d.as_std_path().to_owned()), Some(store.home_dir().join("artifacts").into_std_path_buf())];
    dirs.into_iter()
        .flatten()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .map(|e| e.path())
        .collect()
}

fn size(bytes: u64) -> String {
    cache_core::ByteSize::new(bytes).to_string()
}

impl CacheManager {
    /// Checks the cache's setup (see the module docs): read-only but for a lock probe.
    /// Environment variables are read from the process.
    pub fn doctor(&self) -> Result<DoctorReport, CacheError> {
        self.doctor_with_env(&|k| std::env::var(k).ok())
    }

    /// [`CacheManager::doctor`], reading environment variables through `env`.
    pub fn doctor_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<DoctorReport, CacheError> {
        let mut r = DoctorReport::default();
        self.check_roots_and_locks(&mut r)?;
        self.check_lock_mode(&mut r)?;
        check_links(&mut r, self.inner.store.hub_dir().as_std_path());
        // Before the listings of `check_contents`, which record what they see.
        self.check_index(&mut r)?;
        self.check_contents(&mut r)?;
        crate::doctor_env::check_environment(&mut r, env);
        let [hub, home] = self.inner.store.root_access()?;
        let root = |a: cache_store::RootAccess, what, setting| crate::doctor_env::Root {
            what,
            path: a.path.into_std_path_buf(),
            read_only: a.read_only,
            owner: a.owner,
            you: a.you,
            setting,
        };
        crate::doctor_env::check_access(
            &mut r,
            &[root(hub, "hub cache", "`cache_dir` (`HF_HUB_CACHE`)"), root(home, "home", "`home` (`MODELCACHE_HOME`)")],
        );
        self.check_setup(&mut r);
        Ok(r)
    }

    /// Repairs what [`CacheManager::doctor`] finds and can be repaired without losing
    /// anything a user made (see the module docs), then checks again.
    pub fn doctor_fix(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<DoctorReport, CacheError> {
        let store = &self.inner.store;
        let mut fixed = Vec::new();
        for file in set_aside_files(store) {
            if std::fs::remove_file(&file).is_ok() {
                fixed.push(format!("deleted the set-aside index file `{}`", file.display()));
            }
        }
        let rebuilt = store.rebuild_index()?;
        if rebuilt != cache_store::ReconcileReport::default() {
            fixed.push(format!(
                "rebuilt the index from the disk: {} added, {} removed, {} updated",
                rebuilt.added, rebuilt.removed, rebuilt.updated
            ));
        }
        let cleaned = store.clean_stale(self.inner.config.config.in_use_grace)?;
        if cleaned.incomplete_removed > 0 || cleaned.locks_removed > 0 {
            fixed.push(format!(
                "removed {} stale partial download(s) ({}) and {} unused lock file(s)",
                cleaned.incomplete_removed,
                size(cleaned.bytes_freed),
                cleaned.locks_removed
            ));
        }
        let home = store.home_dir();
        if let Ok(m) = std::fs::metadata(home)
            && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o077 != 0
            && std::fs::set_permissions(home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).is_ok()
        {
            fixed.push(format!("made the home `{home}` private (0700)"));
        }
        let mut r = self.doctor_with_env(env)?;
        r.fixed = fixed;
        Ok(r)
    }

    /// The lock mode chosen for each root, and what the mount options allow.
    fn check_lock_mode(&self, r: &mut DoctorReport) -> Result<(), CacheError> {
        use CheckStatus::{Ok as Good, Warn};
        let store = &self.inner.store;
        let (hub, home) = store.filesystems()?;
        let chosen = self.inner.config.config.lock_mode;
        let how = if chosen == cache_store::LockMode::Auto { "auto" } else { "set" };
        let detail = format!(
            "hub cache: {} ({how}, on {}); home: {} ({how}, on {})",
            store.lock_mode().meaning(),
            hub.name(),
            store.home_lock_mode().name(),
            home.name()
        );
        let limit = hub.mount.as_ref().and_then(cache_store::Mount::lock_limit);
        let (status, hint) = match (store.lock_mode(), limit) {
            (cache_store::LockMode::None, _) => {
                (Warn, Some("set `lock_mode = \"auto\"` (`MODELCACHE_LOCK_MODE=auto`) unless duplicate downloads are fine".to_owned()))
            }
            (_, Some(limit)) => (
                Warn,
                Some(format!("the hub cache's mount is {limit}: several machines may download one file at once; digests keep it correct")),
            ),
            (cache_store::LockMode::Flock, None) if hub.kind.is_shared() => (
                Warn,
                Some("on a shared filesystem set `lock_mode = \"both\"` (`MODELCACHE_LOCK_MODE=both`) so other machines are excluded too".to_owned()),
            ),
            _ => (Good, None),
        };
        r.push("lock mode", status, detail, hint);
        Ok(())
    }

    /// The index's integrity, schema and agreement with the disk; lock files and holders.
    fn check_index(&self, r: &mut DoctorReport) -> Result<(), CacheError> {
        use CheckStatus::{Fail, Ok as Good, Warn};
        let store = &self.inner.store;
        let h = store.index_health()?;
        let path = store.index_path();
        let d = &h.disagrees;
        let (status, detail, hint) = if let Some(problem) = &h.problem {
            (
                Fail,
                format!("`{path}` fails SQLite's integrity check: {problem}"),
                Some(format!("delete `{path}`: the next run rebuilds it from the cache (usage history and pins are lost)")),
            )
        } else if h.schema > h.expected_schema {
            (
                Warn,
                format!("schema {} is newer than this modelcache's ({})", h.schema, h.expected_schema),
                Some("upgrade modelcache (`modelcache --version` says which this is)".to_owned()),
            )
        } else if *d != cache_store::ReconcileReport::default() {
            (
                Warn,
                format!(
                    "schema {}; disagrees with the disk: {} file(s) not recorded, {} recorded but gone, {} changed",
                    h.schema, d.added, d.removed, d.updated
                ),
                Some("`modelcache doctor --fix` rebuilds it from the disk".to_owned()),
            )
        } else {
            (Good, format!("schema {}, passes SQLite's integrity check, agrees with the disk", h.schema), None)
        };
        r.push("index integrity", status, detail, hint);

        let locks = store.lock_files(self.inner.config.config.in_use_grace)?;
        let held: Vec<String> = locks
            .held
            .iter()
            .map(|l| {
                let name = l.lock_file.file_name().unwrap_or_default();
                format!("`{name}` by {}", l.holder.as_deref().unwrap_or("another process"))
            })
            .collect();
        let now = if held.is_empty() { "none held now".to_owned() } else { format!("held now: {}", held.join(", ")) };
        let stale = if locks.stale > 0 {
            format!("; {} unused and old (`modelcache doctor --fix` removes them)", locks.stale)
        } else {
            String::new()
        };
        r.push("lock files", Good, format!("{} under `.locks/`, {now}{stale}", locks.total), None);
        Ok(())
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
        let on = |fs: &cache_store::Filesystem| format!("on {}, {} free of {}", fs.name(), size(fs.free), size(fs.capacity));
        let margin = store.config().margin_for(hub.capacity);
        let max_size = self.inner.config.config.max_size.map(cache_core::ByteSize::bytes);
        let (status, note, hint) = if hub.free <= margin {
            (
                Warn,
                format!(": full (downloads need more than the {} kept free)", size(margin)),
                Some("free space there, or set `max_size` below what the disk holds and run `modelcache prune`".to_owned()),
            )
        } else if let Some(max) = max_size.filter(|m| *m > hub.capacity) {
            (
                Warn,
                format!(": `max_size` ({}) is more than the whole filesystem", size(max)),
                Some("lower `max_size` (`MODELCACHE_MAX_SIZE`) below the filesystem's size, or the disk fills first".to_owned()),
            )
        } else if hub.kind.is_shared() {
            (Warn, String::new(), Some(shared_hint.clone()))
        } else {
            (Good, String::new(), None)
        };
        r.push("hub cache", status, format!("`{}` {}{note}", store.hub_dir(), on(&hub)), hint);

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
        let set_aside: Vec<String> = set_aside_files(store)
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
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
                    "nothing was lost but usage history and pins; `modelcache doctor --fix` deletes the set-aside files"
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
                Some("the next `get` of those files resumes them; `modelcache doctor --fix` removes them".to_owned()),
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

/// Whether the hub cache's filesystem has symlinks (snapshots link to blobs) and hard
/// links (cross-repo hits, `dedup`, `get --to DIR --link-mode hardlink`), tried with a
/// scratch folder under `.locks/` (huggingface_hub's, which readers of the cache ignore)
/// that is removed at once.
fn check_links(r: &mut DoctorReport, hub: &std::path::Path) {
    let probe = hub.join(".locks").join(format!(".modelcache-link-probe-{}", std::process::id()));
    let tried = (|| {
        std::fs::create_dir_all(&probe)?;
        std::fs::write(probe.join("file"), b"probe")?;
        let symlink = std::os::unix::fs::symlink("file", probe.join("symlink"))
            .and_then(|()| std::fs::read(probe.join("symlink")))
            .is_ok_and(|b| b == b"probe");
        let hard_link = std::fs::hard_link(probe.join("file"), probe.join("hard_link")).is_ok();
        Ok::<_, std::io::Error>((symlink, hard_link))
    })();
    let _ = std::fs::remove_dir_all(&probe);
    let (status, detail, hint) = match tried {
        Ok((true, true)) => (CheckStatus::Ok, "symlinks and hard links work in the hub cache".to_owned(), None),
        Ok((true, false)) => (
            CheckStatus::Warn,
            "symlinks work, hard links do not: a file another repository holds is copied instead of shared".to_owned(),
            Some(
                "nothing is wrong; to share files between repositories, keep the hub cache (`cache_dir`) on a local filesystem"
                    .to_owned(),
            ),
        ),
        Ok((false, _)) => (
            CheckStatus::Warn,
            "symlinks do not work in the hub cache: snapshots cannot link to their blobs".to_owned(),
            Some(
                "set `HF_HUB_DISABLE_SYMLINKS=1` (snapshot files become copies, as huggingface_hub makes them), or move the \
                 hub cache (`cache_dir`) to a filesystem with symlinks"
                    .to_owned(),
            ),
        ),
        Err(e) => {
            (CheckStatus::Warn, format!("links could not be tried: {e}"), Some("check the hub cache's permissions".to_owned()))
        }
    };
    r.push("links", status, detail, hint);
}
