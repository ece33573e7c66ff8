//! Facts for a health check (`modelcache doctor`): the index's own integrity and whether
//! it agrees with the disk, the blob lock files and who holds them, and who owns the two
//! roots and whether they are mounted read-only. Everything here reads; the one change
//! offered, [`Store::rebuild_index`], is the reconcile every open may do anyway.

use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::{Dir, MetadataExt};

use crate::error::{Error, Result};
use crate::holder::RecordAt;
use crate::reconcile::{self, ReconcileReport};
use crate::store::Store;
use crate::{fsx, layout, lock, scan};

/// How the index is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexHealth {
    /// What SQLite's `quick_check` found, when not fine.
    pub problem: Option<String>,
    /// The schema version of the file.
    pub schema: u64,
    /// The schema version this build writes.
    pub expected_schema: u64,
    /// What a rebuild would change to make it agree with the hub cache.
    pub disagrees: ReconcileReport,
}

/// A blob lock file someone holds right now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldLock {
    /// The lock file.
    pub lock_file: Utf8PathBuf,
    /// Who holds it, when it can be told (its holder record, or this machine's lock table).
    pub holder: Option<String>,
}

/// The hub cache's blob lock files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockFiles {
    /// How many there are.
    pub total: u64,
    /// Those held right now.
    pub held: Vec<HeldLock>,
    /// Free ones untouched for longer than asked ([`Store::clean_stale`] removes them).
    pub stale: u64,
}

/// Who owns a root and whether it can be written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootAccess {
    /// The root.
    pub path: Utf8PathBuf,
    /// Its mount is read-only.
    pub read_only: bool,
    /// Its owner's uid.
    pub owner: u32,
    /// This process's effective uid.
    pub you: u32,
}

fn read_only(dir: &Dir) -> bool {
    rustix::fs::fstatvfs(dir).is_ok_and(|s| s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
}

impl Store {
    /// The index's integrity, schema version, and how far it is from the disk.
    pub fn index_health(&self) -> Result<IndexHealth> {
        let (problem, schema, expected_schema) = self.index()?.health()?;
        let mut truth = Vec::new();
        for repo in scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))? {
            let folder = layout::RepoLayout::new(&repo).folder;
            let Some(s) = self.scan_repo_or_skip(&repo)? else { continue };
            truth.extend(reconcile::rows(&folder, s.files));
        }
        let d = self.index()?.differences(&truth)?;
        let disagrees = ReconcileReport { added: d.added, removed: d.removed, updated: d.updated };
        Ok(IndexHealth { problem, schema, expected_schema, disagrees })
    }

    /// Makes the index agree with the disk again (see [`Store::reconcile`]).
    pub fn rebuild_index(&self) -> Result<ReconcileReport> {
        self.reconcile()
    }

    /// The blob lock files under `<hub>/.locks/`, who holds which, and how many are free
    /// and untouched for `older_than`.
    pub fn lock_files(&self, older_than: Duration) -> Result<LockFiles> {
        let mut out = LockFiles::default();
        let locks = Utf8Path::new(".locks");
        let folders = match fsx::list_dir(&self.hub, locks) {
            Ok(f) => f,
            Err(e) if fsx::is_not_found(&e) => return Ok(out),
            Err(e) => return Err(Error::io("list", self.hub_path.join(locks))(e)),
        };
        let cutoff = std::time::SystemTime::now().checked_sub(older_than);
        for (folder, _) in folders {
            let dir = locks.join(&folder);
            let Ok(files) = fsx::list_dir(&self.hub, &dir) else { continue };
            for (name, _) in files.into_iter().filter(|(n, _)| n.ends_with(".lock")) {
                out.total += 1;
                let rel = dir.join(&name);
                let abs = self.hub_path.join(&rel);
                if lock::try_exclusive(&self.hub, &rel, &abs, false)?.is_none() {
                    let etag = name.trim_end_matches(".lock");
                    let home = self.home.try_clone().map_err(Error::io("open", self.home_path.clone()))?;
                    let record = RecordAt { home, rel: layout::holder_record(&self.state, &folder, etag) };
                    let holder = record.read().map(|h| h.describe()).or_else(|| {
                        let file = self.hub.open(&rel).ok()?.into_std();
                        lock::flock_holder(&file)
                    });
                    out.held.push(HeldLock { lock_file: abs, holder });
                } else if let Ok(m) = self.hub.symlink_metadata(&rel)
                    && m.len() == 0
                    && let (Ok(t), Some(cutoff)) = (m.modified(), cutoff)
                    && t.into_std() <= cutoff
                {
                    out.stale += 1;
                }
            }
        }
        Ok(out)
    }

    /// Who owns the hub cache and the home, and whether each is on a read-only mount.
    pub fn root_access(&self) -> Result<[RootAccess; 2]> {
        let you = rustix::process::geteuid().as_raw();
        let of = |dir: &Dir, path: &Utf8Path| -> Result<RootAccess> {
            let m = dir.dir_metadata().map_err(Error::io("stat", path.to_owned()))?;
            Ok(RootAccess { path: path.to_owned(), read_only: read_only(dir), owner: m.uid(), you })
        };
        Ok([of(&self.hub, &self.hub_path)?, of(&self.home, &self.home_path)?])
    }
}
