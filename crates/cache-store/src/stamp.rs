//! Change detection for listings: a repo folder's *stamp* says what its directories looked
//! like when it was last scanned, so that [`Store::list`](crate::Store::list) answers from
//! the index for a folder nobody touched since and scans only the ones that changed.
//!
//! # What a stamp covers
//! Adding, removing or renaming a file changes the mtime and ctime of the directory holding
//! it, whoever does it (modelcache, `huggingface_hub`, `rm`, `ln -s`). A stamp records the
//! device, inode, mtime and ctime of the repo folder, `blobs/`, `snapshots/` and every
//! directory under it, and of the folders of `huggingface_hub`'s shared store that the
//! repo's blobs link into. While they all match, the snapshot entries, their link targets
//! and the blobs are the ones the scan saw, and so are the index rows it reconciled (the
//! stamp also records how many there were, so rows changed behind its back are noticed
//! too). What directory times cannot show is read on every listing: refs (Python rewrites
//! them in place) and the sizes of `.incomplete` files (they grow in place; their names are
//! in the stamp).
//!
//! Not covered: a blob or a regular snapshot file rewritten *in place*, under the same
//! name, leaves its directory's times alone. Every tool writes blobs by rename, and a blob
//! changed in place is corrupted, which `verify` reports; until its folder changes (as
//! `verify --repair` does) or [`Store::reconcile`](crate::Store::reconcile) runs, the
//! listing shows the size the last scan saw.
//!
//! # Racy stamps
//! As git does with its index: a directory changed within [`RACY_WINDOW`] of the moment
//! the scan started may change again within the same timestamp tick after the scan read
//! it, and its times would not show it. Such a stamp is *racy* and never trusted: the
//! folder is scanned (and stamped) again on each listing until a scan starts more than the
//! window after its last change. A directory time in the future (clock skew) is racy too.
//!
//! # Filesystems
//! Directory times must change with their entries, as on every local Linux filesystem. On
//! NFS, attribute caching can hide another client's change for up to `acdirmax` (60 s by
//! default), as it hides it from `ls -l`; [`Store::reconcile`](crate::Store::reconcile)
//! always scans everything.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, Metadata, MetadataExt};
use rusqlite::params;

use crate::error::Result;
use crate::index::Index;

/// How recent a directory change makes a stamp racy: above every filesystem's timestamp
/// granularity (FAT: 2 s) and the kernel's coarse clock tick.
pub(crate) const RACY_WINDOW: Duration = Duration::from_secs(2);

/// One directory as a scan saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirStamp {
    /// Path relative to the hub cache.
    pub(crate) rel: String,
    dev: u64,
    ino: u64,
    /// Nanoseconds since the epoch.
    mtime: i64,
    ctime: i64,
}

fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

impl DirStamp {
    fn new(rel: String, m: &Metadata) -> Self {
        DirStamp {
            rel,
            dev: m.dev(),
            ino: m.ino(),
            mtime: nanos(m.mtime(), m.mtime_nsec()),
            ctime: nanos(m.ctime(), m.ctime_nsec()),
        }
    }

    fn matches(&self, m: &Metadata) -> bool {
        (self.dev, self.ino, self.mtime, self.ctime)
            == (m.dev(), m.ino(), nanos(m.mtime(), m.mtime_nsec()), nanos(m.ctime(), m.ctime_nsec()))
    }
}

/// The directories of one repo folder, as a scan saw them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// When the scan started, in nanoseconds since the epoch.
    pub(crate) taken_at: i64,
    /// The directories, in the order the scan read them.
    pub(crate) dirs: Vec<DirStamp>,
    /// The `.incomplete` file names in `blobs/`.
    pub(crate) incomplete: Vec<String>,
}

impl Stamp {
    /// An empty stamp taken now: start it before reading anything of the folder.
    pub(crate) fn start() -> Stamp {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        Stamp { taken_at: now, ..Stamp::default() }
    }

    /// Adds a directory (its metadata read before its entries).
    pub(crate) fn dir(&mut self, rel: impl Into<String>, m: &Metadata) {
        self.dirs.push(DirStamp::new(rel.into(), m));
    }

    /// Whether no directory changed within `window` before the stamp was taken (or after):
    /// only then can equal times mean no change.
    pub(crate) fn settled(&self, window: Duration) -> bool {
        let limit = self.taken_at.saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX));
        !self.dirs.is_empty() && self.dirs.iter().all(|d| d.mtime.max(d.ctime) < limit)
    }

    /// Whether every directory is still there with the same identity and times (a stat
    /// of each, nothing more).
    pub(crate) fn unchanged(&self, hub: &Dir) -> bool {
        self.dirs.iter().all(|d| hub.metadata(&d.rel).is_ok_and(|m| d.matches(&m)))
    }

    /// Settled and unchanged: the folder holds what the scan that took it saw.
    pub(crate) fn holds(&self, hub: &Dir, window: Duration) -> bool {
        self.settled(window) && self.unchanged(hub)
    }

    /// The snapshot folders of `folder` it saw, sorted.
    pub(crate) fn commits(&self, folder: &str) -> Vec<String> {
        let prefix = format!("{folder}/snapshots/");
        let mut out: Vec<String> = self
            .dirs
            .iter()
            .filter_map(|d| d.rel.strip_prefix(&prefix))
            .filter(|c| !c.contains('/'))
            .map(str::to_owned)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// A stamp as recorded, with the number of index rows of its folder it vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub(crate) stamp: Stamp,
    pub(crate) files: u64,
}

type DirRow = (String, u64, u64, i64, i64);

fn encode(stamp: &Stamp) -> (String, String) {
    let dirs: Vec<(&str, u64, u64, i64, i64)> =
        stamp.dirs.iter().map(|d| (d.rel.as_str(), d.dev, d.ino, d.mtime, d.ctime)).collect();
    // Serialising numbers and strings cannot fail.
    (serde_json::to_string(&dirs).unwrap_or_default(), serde_json::to_string(&stamp.incomplete).unwrap_or_default())
}

/// `None` for anything unreadable: the folder is then scanned, as without a stamp.
fn decode(taken_at: i64, dirs: &str, incomplete: &str) -> Option<Stamp> {
    let dirs: Vec<DirRow> = serde_json::from_str(dirs).ok()?;
    let dirs = dirs.into_iter().map(|(rel, dev, ino, mtime, ctime)| DirStamp { rel, dev, ino, mtime, ctime }).collect();
    Some(Stamp { taken_at, dirs, incomplete: serde_json::from_str(incomplete).ok()? })
}

impl Index {
    /// Every recorded stamp by repo folder.
    pub(crate) fn stamps(&self) -> Result<HashMap<String, Recorded>> {
        self.read("read stamps", |conn| {
            let mut st = conn.prepare_cached("SELECT repo, taken_at, files, dirs, incomplete FROM stamps")?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
            })?;
            let mut out = HashMap::new();
            for row in rows {
                let (repo, taken_at, files, dirs, incomplete) = row?;
                if let Some(stamp) = decode(taken_at, &dirs, &incomplete) {
                    out.insert(repo, Recorded { stamp, files: u64::try_from(files).unwrap_or(0) });
                }
            }
            Ok(out)
        })
    }

    /// Records stamps; with `only`, forgets every other one.
    pub(crate) fn save_stamps(&self, stamps: &[(&str, &Stamp, u64)], only: bool) -> Result<()> {
        self.write("record stamps", |tx| {
            if only {
                tx.execute("DELETE FROM stamps", [])?;
            }
            let mut st = tx.prepare_cached("INSERT OR REPLACE INTO stamps VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for (repo, stamp, files) in stamps {
                let (dirs, incomplete) = encode(stamp);
                st.execute(params![repo, stamp.taken_at, i64::try_from(*files).unwrap_or(i64::MAX), dirs, incomplete])?;
            }
            Ok(())
        })
    }

    /// Forgets the stamps of these folders.
    pub(crate) fn forget_stamps(&self, folders: &[&str]) -> Result<()> {
        self.write("forget stamps", |tx| {
            let mut st = tx.prepare_cached("DELETE FROM stamps WHERE repo = ?1")?;
            for f in folders {
                st.execute([f])?;
            }
            Ok(())
        })
    }

    /// Folders the index has entries or a stamp for.
    pub(crate) fn known_folders(&self) -> Result<Vec<String>> {
        self.read("read repos", |conn| {
            let mut st = conn.prepare_cached("SELECT repo FROM repos UNION SELECT repo FROM stamps")?;
            st.query_map([], |r| r.get(0)).and_then(Iterator::collect)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    fn dir_stamp(rel: &str, t: i64) -> DirStamp {
        DirStamp { rel: rel.to_owned(), dev: 1, ino: 2, mtime: t, ctime: t }
    }

    #[test]
    fn a_change_within_the_window_makes_a_stamp_racy() {
        let s =
            |t: i64| Stamp { taken_at: 10_000_000_000, dirs: vec![dir_stamp("a", 1), dir_stamp("a/b", t)], incomplete: vec![] };
        let window = Duration::from_secs(2);
        assert!(s(7_999_999_999).settled(window));
        assert!(!s(8_000_000_000).settled(window), "2 s before the scan: the same tick may hide a later change");
        assert!(!s(11_000_000_000).settled(window), "in the future");
        assert!(!Stamp::default().settled(window), "nothing seen, nothing trusted");
    }

    #[test]
    fn stamps_round_trip_through_the_index_and_see_directory_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let (idx, _) = Index::open(&Utf8PathBuf::from_path_buf(tmp.path().join("i.sqlite3")).unwrap()).unwrap();
        let hub = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        hub.create_dir_all("models--a/snapshots/c1/sub").unwrap();
        let mut stamp = Stamp::start();
        for rel in ["models--a", "models--a/snapshots", "models--a/snapshots/c1", "models--a/snapshots/c1/sub"] {
            stamp.dir(rel, &hub.metadata(rel).unwrap());
        }
        stamp.incomplete.push("e.incomplete".to_owned());
        assert_eq!(stamp.commits("models--a"), ["c1"]);
        idx.save_stamps(&[("models--a", &stamp, 3), ("models--b", &Stamp::default(), 0)], false).unwrap();
        assert_eq!(idx.stamps().unwrap()["models--a"], Recorded { stamp: stamp.clone(), files: 3 });
        assert!(stamp.unchanged(&hub));
        // Past the coarse clock's tick, so the change shows in the times (within one tick
        // it may not: what the racy rule is for).
        std::thread::sleep(Duration::from_millis(30));
        hub.write("models--a/snapshots/c1/sub/new", b"x").unwrap();
        assert!(!stamp.unchanged(&hub), "a new file changes its directory");
        idx.save_stamps(&[("models--a", &stamp, 3)], true).unwrap();
        assert_eq!(idx.stamps().unwrap().len(), 1);
        idx.forget_stamps(&["models--a"]).unwrap();
        assert!(idx.stamps().unwrap().is_empty());
    }
}
