//! `clean_stale`: delete interrupted downloads nobody is resuming, empty lock files
//! nobody holds, and temporary files left by a crash, once they are old enough; and
//! range records (in the home) whose staging file is gone.

use std::time::Duration;

use cache_core::{Etag, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result};
use crate::layout::{self, LOCKS, RepoLayout};
use crate::store::Store;
use crate::{fsx, lock, record, scan};

/// What [`Store::clean_stale`] deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// `.incomplete` files removed.
    pub incomplete_removed: u64,
    /// Range records removed (their `.incomplete` file was gone).
    pub records_removed: u64,
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
    /// Removes `.incomplete` files untouched for `older_than` whose lock is free (with
    /// their range records), lock files that are empty, free and as old, and the store's
    /// own temporary files. Repos in use ([`Store::lease`]) are skipped.
    pub fn clean_stale(&self, older_than: Duration) -> Result<CleanReport> {
        let cutoff = Timestamp::now().saturating_sub(older_than);
        let mut report = CleanReport::default();
        for repo in scan::repos(&self.hub).map_err(Error::io("list", self.hub_path.clone()))? {
            let layout = RepoLayout::new(&repo);
            // A repo in use is left alone: a get that wrote its ref and listing but has not
            // staged a file yet looks like an empty repo folder.
            let Some(_lease) = self.try_exclusive_repo(&layout.folder)? else { continue };
            let Some(s) = self.scan_repo_or_skip(&repo)? else { continue };
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
        report.records_removed = self.prune_records(None, Some(cutoff))?;
        Ok(report)
    }

    /// Removes the range records whose staging file is gone and whose lock is free — of
    /// one repo folder, or of every repo and the artifacts — and, given a cutoff, the
    /// temporary files of record writes older than it. Returns how many records went.
    pub(crate) fn prune_records(&self, folder: Option<&str>, cutoff: Option<Timestamp>) -> Result<u64> {
        let dir = layout::records_dir(&self.state);
        let folders: Vec<String> = match folder {
            Some(f) => vec![f.to_owned()],
            None => fsx::list_dir(&self.home, &dir)
                .map_err(Error::io("list", self.home_path.join(&dir)))?
                .into_iter()
                .filter(|(_, t)| t.is_dir())
                .map(|(n, _)| n)
                .collect(),
        };
        let mut removed = 0;
        for f in folders {
            let sub = dir.join(&f);
            removed += self.prune_record_dir(&sub, cutoff, |id| {
                let etag = Etag::new(id).ok()?;
                let lock = Utf8PathBuf::from(format!("{LOCKS}/{f}/{etag}.lock"));
                Some((&self.hub, &self.hub_path, Utf8PathBuf::from(format!("{f}/blobs/{etag}.incomplete")), lock))
            })?;
            let _ = self.home.remove_dir(&sub);
        }
        if folder.is_none() {
            removed += self.prune_record_dir(Utf8Path::new(layout::ARTIFACT_RECORDS), cutoff, |id| {
                let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
                valid.then(|| {
                    let lock = Utf8PathBuf::from(format!("artifacts/locks/{id}.lock"));
                    (&self.home, &self.home_path, Utf8PathBuf::from(format!("artifacts/blobs/{id}.incomplete")), lock)
                })
            })?;
        }
        Ok(removed)
    }

    /// One folder of records; `staging` maps a record's blob name to the root, its
    /// staging file and its lock file.
    fn prune_record_dir<'a>(
        &'a self,
        dir: &Utf8Path,
        cutoff: Option<Timestamp>,
        staging: impl Fn(&str) -> Option<(&'a Dir, &'a Utf8PathBuf, Utf8PathBuf, Utf8PathBuf)>,
    ) -> Result<u64> {
        let mut removed = 0;
        for (name, _) in fsx::list_dir(&self.home, dir).unwrap_or_default() {
            let rel = dir.join(&name);
            if name.starts_with(fsx::TEMP_PREFIX) {
                if cutoff.is_some_and(|c| older(&self.home, &rel, c).is_some()) {
                    let _ = self.home.remove_file(&rel);
                }
                continue;
            }
            // A holder record whose lock is free was left by a holder that died (or is
            // being released right now, and removes it itself).
            if let Some((root, root_abs, _, lock_rel)) = name.strip_suffix(crate::holder::SUFFIX).and_then(&staging) {
                if let Some(_held) = lock::try_exclusive(root, &lock_rel, &root_abs.join(&lock_rel), false)?
                    && fsx::remove_file_if_exists(&self.home, &rel).unwrap_or(false)
                {
                    removed += 1;
                }
                continue;
            }
            let Some((root, root_abs, inc, lock_rel)) = name.strip_suffix(record::SUFFIX).and_then(&staging) else { continue };
            if root.symlink_metadata(&inc).is_ok() {
                continue;
            }
            if let Some(_held) = lock::try_exclusive(root, &lock_rel, &root_abs.join(&lock_rel), false)?
                && fsx::remove_file_if_exists(&self.home, &rel).unwrap_or(false)
            {
                removed += 1;
            }
        }
        Ok(removed)
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
