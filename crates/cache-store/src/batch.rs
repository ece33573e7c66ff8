//! Publishing many staged blobs at once. Committed one by one, a snapshot of many small
//! files spends most of its time on durability: an fsync and an index transaction per
//! file. [`Store::commit_batch`] checks every staging file (size, digest), makes them all
//! durable with one `syncfs(2)` of the cache's filesystem, then renames, links and
//! records them in one index transaction. The protocol's order holds for every file:
//! nothing is visible before its bytes are on disk and its digest is checked.

use std::io;

use cache_core::Digests;
use camino::Utf8PathBuf;

use crate::commit::CommitRequest;
use crate::error::{Error, Result, is_disk_full};
use crate::fsx;
use crate::staging::Staging;
use crate::store::Store;

impl Store {
    /// Publishes staged blobs as [`Store::commit`] does each, with one durability pass and
    /// one index transaction for them all: the way to commit many small files. Returns one
    /// result per item, in order (a wrong digest fails its item only and deletes its
    /// staging file). The locks the items were staged under must be held until it returns.
    ///
    /// # Errors
    /// A failure of the whole batch. The filesystem could not be synced: nothing was
    /// published (on a full disk the staging files are deleted, [`Error::DiskFull`];
    /// otherwise they stay, complete, for the next attempt to verify and publish). The
    /// index could not record the entries: the files are published, and the next
    /// [`Store::reconcile`] records them.
    pub fn commit_batch(&self, items: Vec<(Staging, CommitRequest)>) -> Result<Vec<Result<Utf8PathBuf>>> {
        let staged: u64 = items.iter().map(|(_, req)| req.size).sum();
        let dirty = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| dirty_bytes(&m));
        self.publish_batch(items, syncfs_pays(staged, dirty))
    }

    /// [`Store::commit_batch`] with the durability pass chosen: one `syncfs`, or an
    /// `fdatasync` per file.
    fn publish_batch(&self, items: Vec<(Staging, CommitRequest)>, one_syncfs: bool) -> Result<Vec<Result<Utf8PathBuf>>> {
        let checked: Vec<Result<(Staging, CommitRequest, Digests)>> =
            items.into_iter().map(|(staging, req)| staging.check_for(&req, false).map(|d| (staging, req, d))).collect();
        let checked = if one_syncfs {
            self.sync_staged(&checked)?;
            checked
        } else {
            sync_each(checked)
        };
        let mut rows = Vec::with_capacity(checked.len());
        let out: Vec<Result<Utf8PathBuf>> = checked
            .into_iter()
            .map(|item| {
                let (staging, req, digests) = item?;
                let (path, row, bytes) = self.place_staged(staging, &req, digests)?;
                tracing::debug!(repo = %req.repo, path = %req.path, commit = %req.commit, size = row.size, "committed");
                rows.push((row, bytes));
                Ok(path)
            })
            .collect();
        self.index()?.upsert_many(rows.iter().map(|(row, download)| (row, Some(*download))))?;
        tracing::info!(files = rows.len(), failed = out.len() - rows.len(), "committed a batch");
        Ok(out)
    }

    /// One `syncfs` for the checked staging files (and whatever else is pending on the
    /// cache's filesystem; they all live on it, in `blobs/` folders). Writeback errors
    /// since a staging file was opened are reported here.
    fn sync_staged(&self, checked: &[Result<(Staging, CommitRequest, Digests)>]) -> Result<()> {
        // The root's descriptor is an `O_PATH` one, which `syncfs` refuses.
        let Err(e) = sync_filesystem(checked.iter().flatten().map(|(staging, ..)| staging.file())) else { return Ok(()) };
        if is_disk_full(&e) {
            let mut needed = 0_u64;
            for (staging, req, _) in checked.iter().flatten() {
                staging.remove_all();
                needed = needed.saturating_add(req.size);
            }
            let available = fsx::free_space(&self.hub).unwrap_or(0);
            return Err(Error::DiskFull { path: self.hub_path.clone(), needed, available });
        }
        Err(Error::io("sync", self.hub_path.clone())(e))
    }
}

/// `fdatasync` of each checked staging file, for when a `syncfs` would also wait for much
/// else. A file that cannot be synced fails alone (on a full disk it is deleted).
///
/// The files are synced by a few threads at once: each `fdatasync` waits for its own
/// writeback and a cache flush of the device, which concurrent calls share, so a batch
/// costs a few flushes rather than one per file.
fn sync_each(checked: Vec<Result<(Staging, CommitRequest, Digests)>>) -> Vec<Result<(Staging, CommitRequest, Digests)>> {
    const THREADS: usize = 8;
    let synced: Vec<io::Result<()>> = {
        let files: Vec<Option<&std::fs::File>> =
            checked.iter().map(|item| item.as_ref().ok().map(|(staging, ..)| staging.file())).collect();
        let per_thread = files.len().div_ceil(THREADS).max(1);
        std::thread::scope(|scope| {
            let parts: Vec<_> = files
                .chunks(per_thread)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|f| f.map_or(Ok(()), std::fs::File::sync_data)).collect::<Vec<_>>())
                })
                .collect();
            parts.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    };
    checked
        .into_iter()
        .zip(synced)
        .map(|(item, synced)| {
            let (staging, req, digests) = item?;
            match synced {
                Ok(()) => Ok((staging, req, digests)),
                Err(e) => Err(staging.write_error(e)),
            }
        })
        .collect()
}

/// Whether one `syncfs` costs about what syncing `staged` bytes does: little else is
/// waiting to be written (`dirty`, Linux's `Dirty:` in `/proc/meminfo`, within 256 MiB of
/// what we staged: well under a second of writeback, paid once). A machine saving
/// gigabytes of checkpoints would make every batch wait for them; unknown means no.
fn syncfs_pays(staged: u64, dirty: Option<u64>) -> bool {
    dirty.is_some_and(|d| d <= staged.saturating_add(256 << 20))
}

/// The `Dirty:` figure of a `/proc/meminfo` text, in bytes.
fn dirty_bytes(meminfo: &str) -> Option<u64> {
    let kib = meminfo.lines().find_map(|l| l.strip_prefix("Dirty:"))?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()?;
    Some(kib.saturating_mul(1024))
}

/// One `syncfs(2)` through the first file: every pending write of its filesystem (Linux).
#[cfg(target_os = "linux")]
fn sync_filesystem<'a>(mut files: impl Iterator<Item = &'a std::fs::File>) -> io::Result<()> {
    files.next().map_or(Ok(()), |first| rustix::fs::syncfs(first).map_err(io::Error::from))
}

/// Without `syncfs(2)` (other Unix systems): an `fsync` of each file. [`syncfs_pays`] is
/// never true there (no `/proc/meminfo`), so this is only the fallback.
#[cfg(not(target_os = "linux"))]
fn sync_filesystem<'a>(mut files: impl Iterator<Item = &'a std::fs::File>) -> io::Result<()> {
    files.try_for_each(std::fs::File::sync_all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::{Etag, Repo, Sha256};

    #[test]
    fn one_syncfs_only_when_little_else_waits_to_be_written() {
        assert!(syncfs_pays(10 << 20, Some(200 << 20)));
        assert!(syncfs_pays(1 << 30, Some(1200 << 20)), "our own staged bytes do not count against it");
        assert!(!syncfs_pays(10 << 20, Some(1 << 30)), "a checkpoint being written elsewhere");
        assert!(!syncfs_pays(10 << 20, None), "not Linux, or no /proc");
    }

    #[test]
    fn a_batch_synced_file_by_file_publishes_every_good_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = camino::Utf8Path::from_path(tmp.path()).unwrap();
        let store = Store::open(crate::StoreConfig::new(root.join("hub"), root.join("home")).free_space_margin(0)).unwrap();
        let repo = Repo::model("org/busy".parse().unwrap());
        let (mut locks, mut items) = (Vec::new(), Vec::new());
        // More files than syncing threads, so each thread syncs several.
        for i in 0..20_u8 {
            let bytes = vec![i; 1000 + usize::from(i)];
            // The tenth one's bytes do not match its etag.
            let etag = Etag::Sha256(Sha256::of(if i == 9 { b"other" } else { &bytes }));
            let commit = "c".repeat(40).parse().unwrap();
            let req = CommitRequest::new(repo.clone(), commit, format!("f{i}").parse().unwrap(), etag, bytes.len() as u64);
            let lock = store.lock_blob(&repo, &etag, &mut |_| {}).unwrap();
            let staging = store.stage(&lock, Some(req.size)).unwrap();
            staging.write_at(&bytes, 0).unwrap();
            locks.push(lock);
            items.push((staging, req));
        }
        let results = store.publish_batch(items, false).unwrap();
        for (i, r) in results.iter().enumerate().filter(|(i, _)| *i != 9) {
            assert_eq!(std::fs::read(r.as_ref().unwrap()).unwrap(), vec![u8::try_from(i).unwrap(); 1000 + i]);
        }
        assert!(matches!(results[9], Err(Error::ChecksumMismatch { .. })), "{:?}", results[9]);
        assert_eq!(store.stats().unwrap().files, 19);
    }

    #[test]
    fn dirty_bytes_are_read_from_meminfo() {
        let text = "MemTotal:       24576000 kB\nDirty:              1532 kB\nWriteback:             0 kB\n";
        assert_eq!(dirty_bytes(text), Some(1532 * 1024));
        assert_eq!(dirty_bytes("MemTotal: 1 kB\n"), None);
        assert_eq!(dirty_bytes("Dirty: lots\n"), None);
    }
}
