//! `clean_stale`: delete interrupted downloads nobody is resuming, empty lock files
//! nobody holds, and temporary files left by a crash, once they are old enough.

use std::time::Duration;

use cache_core::{Etag, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result};
use crate::layout::{LOCKS, RepoLayout};
use crate::store::Store;
use crate::{fsx, lock, scan};

/// What [`Store::clean_stale`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// `.incomplete` files removed.
    pub incomplete_removed: u64,
    /// Lock files removed.
    pub locks_removed: u64,
    /// Temporary files removed.
    pub temp_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

fn older(dir: &Dir, rel: &Utf8Path, cutoff: Timestamp) -> Option<u64> {
    let m = dir.symlink_metadata(rel).ok()?;
    let t = Timestamp::from_system_time(m.modified().ok()?.into_std());
    (t <= cutoff).then_some(m.len())
}

impl Store {
    /// Removes `.incomplete` files untouched for `older_than` whose lock is free, lock
    /// files that are empty, free and as old, and the store's own temporary files.
    pub fn clean_stale(&self, older_than: Duration) -> Result<CleanReport> {
        let cutoff = Timestamp::now().saturating_sub(older_than);
        let mut report = CleanReport::default();
        for repo in scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))? {
            let layout = RepoLayout::new(&repo);
            let s = scan::repo(&self.hub, &repo).map_err(Error::io("scan", self.hub_path.join(&layout.folder)))?;
            for inc in &s.incomplete {
                let Ok(etag) = Etag::new(&inc.etag) else { continue };
                if inc.modified > cutoff {
                    continue;
                }
                let lock_rel = layout.lock_file(&etag);
                if let Some(_held) = lock::try_exclusive(&self.hub, &lock_rel, &self.hub_path.join(&lock_rel), false)?
                    && fsx::remove_file_if_exists(&self.hub, &inc.rel).unwrap_or(false)
                {
                    report.incomplete_removed += 1;
                    report.bytes_freed += inc.size;
                }
            }
            clean_temps(&self.hub, &layout.root(), cutoff, &mut report);
            let lock_dir = layout.lock_dir();
            for (name, t) in fsx::list_dir(&self.hub, &lock_dir).unwrap_or_default() {
                let rel = lock_dir.join(&name);
                if !t.is_file() || !name.ends_with(".lock") || older(&self.hub, &rel, cutoff) != Some(0) {
                    continue;
                }
                if let Some(_held) = lock::try_exclusive(&self.hub, &rel, &self.hub_path.join(&rel), false)?
                    && self.hub.remove_file(&rel).is_ok()
                {
                    report.locks_removed += 1;
                }
            }
            let _ = self.hub.remove_dir(&lock_dir);
            // Blobs orphaned by a crash between rename and link, and a repo left empty.
            report.bytes_freed += self.tidy_repo(&repo, &[])?;
        }
        let _ = self.hub.remove_dir(LOCKS);
        let blobs = Utf8PathBuf::from("artifacts/blobs");
        for (name, _) in fsx::list_dir(&self.home, &blobs).unwrap_or_default() {
            let Some(id) = name.strip_suffix(".incomplete") else { continue };
            let rel = blobs.join(&name);
            let Some(size) = older(&self.home, &rel, cutoff) else { continue };
            let lock_rel = Utf8PathBuf::from(format!("artifacts/locks/{id}.lock"));
            if let Some(_held) = lock::try_exclusive(&self.home, &lock_rel, &self.home_path.join(&lock_rel), false)?
                && self.home.remove_file(&rel).is_ok()
            {
                report.incomplete_removed += 1;
                report.bytes_freed += size;
            }
        }
        clean_temps(&self.home, Utf8Path::new("artifacts"), cutoff, &mut report);
        Ok(report)
    }
}

fn clean_temps(dir: &Dir, folder: &Utf8Path, cutoff: Timestamp, report: &mut CleanReport) {
    for (name, _) in fsx::list_dir(dir, folder).unwrap_or_default() {
        let rel = folder.join(&name);
        if name.starts_with(fsx::TEMP_PREFIX) && older(dir, &rel, cutoff).is_some() && dir.remove_file(&rel).is_ok() {
            report.temp_removed += 1;
        }
    }
}
