//! The `SQLite` index: what the disk cannot say (last use, pins, recorded BLAKE3,
//! counters), one database per hub cache in the modelcache home.
//!
//! # Concurrency
//! WAL mode with a generous busy timeout: any number of processes read and write it.
//! Every write is one `BEGIN IMMEDIATE` transaction, and counters are updated with
//! `value = value + ?`, so concurrent processes never lose each other's updates.
//!
//! # Start-up cost
//! Opening writes nothing when the schema is current (the version is read first; the
//! migration transaction runs only when behind), and a connection that only read closes
//! without a checkpoint, so a process that only reads, such as a warm `modelcache get`
//! (its usage goes to the journal, see `journal`), needs no `fsync`. But the first
//! connection of a process to a database whose WAL is not empty rebuilds the WAL's index
//! by reading and checksumming the whole WAL (up to the auto-checkpoint's 4 MiB): that was
//! half the CPU time of a warm `get`. So a connection that wrote folds the WAL back into
//! the database when it closes (`wal_checkpoint(TRUNCATE)`, one `fsync`, never waiting:
//! when another process is using the database, that one's close does it), and the next
//! process finds an empty WAL.
//!
//! # Recovery
//! A file that cannot be read as a database is set aside and replaced (see `recover`).
//!
//! # Schema
//! Migrations are append-only (`PRAGMA user_version` counts the applied ones). Entries
//! are keyed by `(repo, revision, path)`: the repo folder name, commit and in-repo path
//! for Hub files; `''`, the key hash and the key for artifacts. `stamps` belongs to the
//! `stamp` module (what a listing may trust without scanning a repo folder).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_core::{
    Counters, DownloadFailures, EvictReason, Evictions, FailureCause, Histogram, Histograms, download_observations,
    eviction_counter_name,
};
use camino::{Utf8Path, Utf8PathBuf};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::counters::{LOCK_WAIT_MICROS, LOCK_WAITS, add_histograms, read_histograms};
use crate::error::{Error, Result};
use crate::journal::{self, Journal};
use crate::recover::{inode, is_corrupt, recovery_turn, set_aside};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE entries (
        repo TEXT NOT NULL,
        revision TEXT NOT NULL,
        path TEXT NOT NULL,
        blob TEXT NOT NULL,
        etag TEXT,
        size INTEGER NOT NULL,
        blake3 TEXT,
        downloaded_at INTEGER NOT NULL,
        last_used INTEGER NOT NULL,
        PRIMARY KEY (repo, revision, path)
    ) WITHOUT ROWID;
    CREATE INDEX entries_blob ON entries (blob);
    CREATE TABLE pins (
        repo TEXT NOT NULL,
        revision TEXT NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (repo, revision, path)
    ) WITHOUT ROWID;
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    -- Aggregates kept by triggers, so `stats()` reads a handful of rows.
    CREATE TABLE repos (
        repo TEXT PRIMARY KEY, files INTEGER NOT NULL, size INTEGER NOT NULL,
        downloaded_at INTEGER, last_used INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE revisions (
        repo TEXT NOT NULL, revision TEXT NOT NULL, files INTEGER NOT NULL, PRIMARY KEY (repo, revision)
    ) WITHOUT ROWID;
    CREATE TABLE repo_blobs (
        repo TEXT NOT NULL, blob TEXT NOT NULL, size INTEGER NOT NULL, refs INTEGER NOT NULL, PRIMARY KEY (repo, blob)
    ) WITHOUT ROWID;
    CREATE TABLE blobs (blob TEXT PRIMARY KEY, size INTEGER NOT NULL, refs INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0), files INTEGER NOT NULL, bytes INTEGER NOT NULL);
    INSERT INTO totals VALUES (0, 0, 0);
    CREATE TRIGGER repo_blob_added AFTER INSERT ON repo_blobs BEGIN
        UPDATE repos SET size = size + NEW.size WHERE repo = NEW.repo;
    END;
    CREATE TRIGGER repo_blob_removed AFTER DELETE ON repo_blobs BEGIN
        UPDATE repos SET size = size - OLD.size WHERE repo = OLD.repo;
    END;
    CREATE TRIGGER blob_added AFTER INSERT ON blobs BEGIN
        UPDATE totals SET bytes = bytes + NEW.size;
    END;
    CREATE TRIGGER blob_removed AFTER DELETE ON blobs BEGIN
        UPDATE totals SET bytes = bytes - OLD.size;
    END;
    CREATE TRIGGER entry_added AFTER INSERT ON entries BEGIN
        INSERT INTO repos VALUES (NEW.repo, 0, 0, NEW.downloaded_at, NEW.last_used) ON CONFLICT (repo) DO NOTHING;
        UPDATE repos SET files = files + 1, downloaded_at = min(downloaded_at, NEW.downloaded_at),
            last_used = max(last_used, NEW.last_used) WHERE repo = NEW.repo;
        INSERT INTO revisions VALUES (NEW.repo, NEW.revision, 1)
            ON CONFLICT (repo, revision) DO UPDATE SET files = files + 1;
        INSERT INTO repo_blobs VALUES (NEW.repo, NEW.blob, NEW.size, 1)
            ON CONFLICT (repo, blob) DO UPDATE SET refs = refs + 1;
        INSERT INTO blobs VALUES (NEW.blob, NEW.size, 1) ON CONFLICT (blob) DO UPDATE SET refs = refs + 1;
        UPDATE totals SET files = files + 1;
    END;
    CREATE TRIGGER entry_removed AFTER DELETE ON entries BEGIN
        UPDATE revisions SET files = files - 1 WHERE repo = OLD.repo AND revision = OLD.revision;
        DELETE FROM revisions WHERE repo = OLD.repo AND revision = OLD.revision AND files <= 0;
        UPDATE repo_blobs SET refs = refs - 1 WHERE repo = OLD.repo AND blob = OLD.blob;
        DELETE FROM repo_blobs WHERE repo = OLD.repo AND blob = OLD.blob AND refs <= 0;
        UPDATE blobs SET refs = refs - 1 WHERE blob = OLD.blob;
        DELETE FROM blobs WHERE blob = OLD.blob AND refs <= 0;
        UPDATE totals SET files = files - 1;
        UPDATE repos SET files = files - 1 WHERE repo = OLD.repo;
        DELETE FROM repos WHERE repo = OLD.repo AND files <= 0;
        UPDATE repos SET
            downloaded_at = (SELECT MIN(downloaded_at) FROM entries WHERE repo = OLD.repo),
            last_used = (SELECT MAX(last_used) FROM entries WHERE repo = OLD.repo)
            WHERE repo = OLD.repo AND (downloaded_at = OLD.downloaded_at OR last_used = OLD.last_used);
    END;
    CREATE TRIGGER entry_changed AFTER UPDATE OF blob, size ON entries
        WHEN OLD.blob <> NEW.blob OR OLD.size <> NEW.size BEGIN
        UPDATE repo_blobs SET refs = refs - 1 WHERE repo = OLD.repo AND blob = OLD.blob;
        DELETE FROM repo_blobs WHERE repo = OLD.repo AND blob = OLD.blob AND refs <= 0;
        UPDATE blobs SET refs = refs - 1 WHERE blob = OLD.blob;
        DELETE FROM blobs WHERE blob = OLD.blob AND refs <= 0;
        INSERT INTO repo_blobs VALUES (NEW.repo, NEW.blob, NEW.size, 1)
            ON CONFLICT (repo, blob) DO UPDATE SET refs = refs + 1;
        INSERT INTO blobs VALUES (NEW.blob, NEW.size, 1) ON CONFLICT (blob) DO UPDATE SET refs = refs + 1;
    END;
    CREATE TRIGGER entry_redownloaded AFTER UPDATE OF downloaded_at ON entries
        WHEN OLD.downloaded_at <> NEW.downloaded_at BEGIN
        UPDATE repos SET downloaded_at = (SELECT MIN(downloaded_at) FROM entries WHERE repo = NEW.repo) WHERE repo = NEW.repo;
    END;
    CREATE TRIGGER entry_used AFTER UPDATE OF last_used ON entries BEGIN
        UPDATE repos SET last_used = max(last_used, NEW.last_used) WHERE repo = NEW.repo;
    END;
    INSERT INTO counters VALUES ('hits', 0), ('misses', 0), ('downloads', 0), ('bytes_downloaded', 0);",
    // 2: per repo folder, the directories a listing trusts unchanged (`stamp`).
    "CREATE TABLE stamps (
        repo TEXT PRIMARY KEY,
        taken_at INTEGER NOT NULL,
        files INTEGER NOT NULL,
        dirs TEXT NOT NULL,
        incomplete TEXT NOT NULL
    ) WITHOUT ROWID;",
    // 3: cross-repo hits look blobs up by digest (`crossrepo`).
    "CREATE INDEX entries_etag ON entries (etag);",
];

/// One entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) repo: String,
    pub(crate) revision: String,
    pub(crate) path: String,
    pub(crate) blob: String,
    pub(crate) etag: Option<String>,
    pub(crate) size: u64,
    pub(crate) blake3: Option<String>,
    pub(crate) downloaded_at: i64,
    pub(crate) last_used: i64,
}

impl Row {
    fn key(&self) -> (&str, &str, &str) {
        (&self.repo, &self.revision, &self.path)
    }
}

/// What a reconcile changed in one scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub(crate) added: u64,
    pub(crate) removed: u64,
    pub(crate) updated: u64,
}

/// Aggregates for `stats()`.
pub(crate) struct Summary {
    pub(crate) per_repo: Vec<(String, u64, u64, i64, i64)>,
    pub(crate) revisions: Vec<(String, String)>,
    pub(crate) total_bytes: u64,
    pub(crate) files: u64,
}

/// A pin: `''` in `revision` or `path` matches anything.
pub(crate) type Pin = (String, String, String);

pub(crate) struct Index {
    conn: Mutex<Connection>,
    path: Utf8PathBuf,
    /// The database file's inode when opened: a corrupt file is set aside only while it
    /// is still the one this connection reads.
    ino: Option<u64>,
    /// The usage journal beside the database, merged before last uses or counters are
    /// read (`None` for a read-only reader: its creator merged).
    journal: Option<Journal>,
    /// This connection committed a write: on close it folds the WAL back into the
    /// database (see "Start-up cost").
    wrote: std::sync::atomic::AtomicBool,
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Index {
    /// Opens (creating and migrating) the database; `true` when it was just created. A
    /// file that is not a readable database is set aside first (see "Recovery"), so it
    /// counts as just created.
    pub(crate) fn open(path: &Utf8Path) -> Result<(Index, bool)> {
        match Index::open_db(path) {
            Err(Error::Index { source, .. }) if is_corrupt(&source) => {
                let _turn = recovery_turn(path)?;
                // Another process may have replaced it meanwhile: look again under the lock.
                match Index::open_db(path) {
                    Err(Error::Index { source, .. }) if is_corrupt(&source) => {
                        set_aside(path, &source)?;
                        Index::open_db(path)
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    fn open_db(path: &Utf8Path) -> Result<(Index, bool)> {
        let err = |op| {
            let path = path.to_owned();
            move |source| Error::Index { op, path, source }
        };
        let mut conn = Connection::open(path).map_err(err("open"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err("configure"))?;
        // Switching a new database to WAL needs a lock SQLite does not wait for (its busy
        // handler is not called there): processes opening a fresh cache together retry.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                done => break done.map_err(err("enable WAL"))?,
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err("configure"))?;
        // Statement journals (an insert whose triggers update the totals needs one inside
        // a transaction) in memory rather than in a temporary file: a 500-file snapshot
        // wrote ~6 000 pages to such files for nothing, since they die with the statement.
        conn.pragma_update(None, "temp_store", "MEMORY").map_err(err("configure"))?;
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true).map_err(err("configure"))?;
        stable_plans(&conn).map_err(err("configure"))?;
        let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err("open"))?;
        let ino = inode(path);
        if usize::try_from(current).is_ok_and(|v| v == MIGRATIONS.len()) {
            return Ok((
                Index {
                    conn: Mutex::new(conn),
                    path: path.to_owned(),
                    ino,
                    journal: Some(Journal::beside(path)),
                    wrote: false.into(),
                },
                false,
            ));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err("migrate"))?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(err("migrate"))?;
        let applied = usize::try_from(version).unwrap_or(usize::MAX);
        if applied > MIGRATIONS.len() {
            return Err(Error::InvalidRequest {
                reason: format!("index `{path}` was written by a newer modelcache (schema {version})"),
            });
        }
        for m in &MIGRATIONS[applied..] {
            tx.execute_batch(m).map_err(err("migrate"))?;
        }
        tx.pragma_update(None, "user_version", i64::try_from(MIGRATIONS.len()).unwrap_or(0)).map_err(err("migrate"))?;
        tx.commit().map_err(err("migrate"))?;
        Ok((
            Index {
                conn: Mutex::new(conn),
                path: path.to_owned(),
                ino,
                journal: Some(Journal::beside(path)),
                wrote: true.into(),
            },
            applied == 0,
        ))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |source| {
            if is_corrupt(&source) {
                self.set_aside_if_current(&source);
            }
            Error::Index { op, path: self.path.clone(), source }
        }
    }

    /// A query found the database corrupt: moves it aside (when it is still the file this
    /// connection opened) so that the next open starts a fresh one.
    fn set_aside_if_current(&self, cause: &rusqlite::Error) {
        let Ok(_turn) = recovery_turn(&self.path) else { return };
        if self.ino.is_some() && inode(&self.path) == self.ino {
            let _ = set_aside(&self.path, cause);
        }
    }

    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err(op))?;
        let out = f(&tx).map_err(self.err(op))?;
        tx.commit().map_err(self.err(op))?;
        self.wrote.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// Inserts or replaces an entry; with `download = Some((bytes, duration))` also counts
    /// a download (and observes its duration and throughput).
    pub(crate) fn upsert(&self, row: &Row, download: Option<(u64, Duration)>) -> Result<()> {
        self.upsert_many(std::iter::once((row, download)))
    }

    /// [`Index::upsert`] for several entries in one transaction (one WAL commit).
    pub(crate) fn upsert_many<'a>(&self, rows: impl IntoIterator<Item = (&'a Row, Option<(u64, Duration)>)>) -> Result<()> {
        self.write("record entries", |tx| {
            let (mut downloads, mut bytes) = (0_u64, 0_u64);
            let mut histograms = Histograms::default();
            for (row, download) in rows {
                upsert(tx, row)?;
                if let Some((b, took)) = download {
                    downloads += 1;
                    bytes = bytes.saturating_add(b);
                    for (kind, value) in download_observations(b, took) {
                        histograms.get_mut(kind).observe(kind, value);
                    }
                }
            }
            add_histograms(tx, &histograms)?;
            if downloads > 0 {
                tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'downloads'", [to_i64(downloads)])?;
                tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'bytes_downloaded'", [to_i64(bytes)])?;
            }
            Ok(())
        })
    }

    /// Deletes the entries of `repo`, optionally only one revision or one file.
    pub(crate) fn delete(&self, repo: &str, revision: Option<&str>, path: Option<&str>) -> Result<usize> {
        self.write("delete entries", |tx| match (revision, path) {
            (None, _) => tx.execute("DELETE FROM entries WHERE repo = ?1", [repo]),
            (Some(r), None) => tx.execute("DELETE FROM entries WHERE repo = ?1 AND revision = ?2", [repo, r]),
            (Some(r), Some(p)) => tx.execute("DELETE FROM entries WHERE repo = ?1 AND revision = ?2 AND path = ?3", [repo, r, p]),
        })
    }

    /// All entries, or those of one repo.
    pub(crate) fn rows(&self, repo: Option<&str>) -> Result<Vec<Row>> {
        self.merge_journal_or_warn();
        let conn = self.conn();
        let sql = format!("SELECT {ROW_COLUMNS} FROM entries");
        let map = row_from;
        let rows = if let Some(repo) = repo {
            let mut st = conn.prepare_cached(&format!("{sql} WHERE repo = ?1")).map_err(self.err("read entries"))?;
            st.query_map([repo], map).and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        } else {
            let mut st = conn.prepare_cached(&sql).map_err(self.err("read entries"))?;
            st.query_map([], map).and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        };
        rows.map_err(self.err("read entries"))
    }

    /// The size recorded for one entry (what it was committed with), if it is known;
    /// `None` without waiting when another thread is using the connection.
    pub(crate) fn try_size_of(&self, repo: &str, revision: &str, path: &str) -> Option<Result<Option<u64>>> {
        let conn = match self.conn.try_lock() {
            Ok(conn) => conn,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let size = conn
            .prepare_cached("SELECT size FROM entries WHERE repo = ?1 AND revision = ?2 AND path = ?3")
            .and_then(|mut st| st.query_row([repo, revision, path], |r| r.get::<_, i64>(0)).optional())
            .map(|s| s.map(to_u64))
            .map_err(self.err("read a size"));
        Some(size)
    }

    /// Entries of other repos than `except` whose blob is named `etag` (the same digest),
    /// those with a recorded BLAKE3 (checked by a commit of ours) first.
    pub(crate) fn rows_with_etag(&self, etag: &str, except: &str) -> Result<Vec<Row>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM entries WHERE etag = ?1 AND repo <> ?2 ORDER BY blake3 IS NULL LIMIT 16"
            ))
            .map_err(self.err("read entries"))?;
        st.query_map([etag, except], row_from).and_then(Iterator::collect).map_err(self.err("read entries"))
    }

    /// Gives every entry whose blob is `old` the identity `new` (the blob became one
    /// inode with another: the triggers then count it once).
    pub(crate) fn rename_blob(&self, old: &str, new: &str) -> Result<usize> {
        if old == new {
            return Ok(0);
        }
        self.write("record a shared blob", |tx| tx.execute("UPDATE entries SET blob = ?2 WHERE blob = ?1", [old, new]))
    }

    /// The sum of the repos' sizes: each repo counts its blobs once, so a blob two repos
    /// share counts twice (what the files would take without sharing).
    pub(crate) fn logical_bytes(&self) -> Result<u64> {
        self.conn()
            .query_row("SELECT coalesce(sum(size), 0) FROM repos", [], |r| r.get::<_, i64>(0))
            .map(to_u64)
            .map_err(self.err("summarise"))
    }

    /// The recorded BLAKE3 of a blob, if any entry has one.
    pub(crate) fn blake3_of(&self, blob: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT blake3 FROM entries WHERE blob = ?1 AND blake3 IS NOT NULL LIMIT 1", [blob], |r| r.get(0))
            .optional()
            .map_err(self.err("read a digest"))
    }

    /// Records last-use times (never moving one backwards).
    pub(crate) fn touch(&self, batch: &[(String, String, String, i64)]) -> Result<()> {
        self.write("record last use", |tx| {
            let mut st = tx.prepare_cached(
                "UPDATE entries SET last_used = max(last_used, ?4) WHERE repo = ?1 AND revision = ?2 AND path = ?3",
            )?;
            for (repo, rev, path, t) in batch {
                st.execute(params![repo, rev, path, t])?;
            }
            Ok(())
        })
    }

    /// Adds to the hit and miss counters and the hit latency histogram.
    pub(crate) fn add_lookups(&self, hits: u64, misses: u64, hit_latency: &Histogram) -> Result<()> {
        self.write("update counters", |tx| {
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'hits'", [to_i64(hits)])?;
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'misses'", [to_i64(misses)])?;
            add_histograms(tx, &Histograms { hit_seconds: *hit_latency, ..Histograms::default() })
        })
    }

    /// Counts one failed request. Its row is created on first use (`INSERT OR IGNORE`), so
    /// indexes made before failures were counted need no migration.
    pub(crate) fn add_failure(&self, cause: FailureCause) -> Result<()> {
        let name = cause.counter_name();
        self.write("update counters", |tx| {
            tx.execute("INSERT OR IGNORE INTO counters VALUES (?1, 0)", [name])?;
            tx.execute("UPDATE counters SET value = value + 1 WHERE name = ?1", [name])?;
            Ok(())
        })
    }

    /// The counters as recorded.
    pub(crate) fn counters(&self) -> Result<Counters> {
        self.merge_journal_or_warn();
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT name, value FROM counters").map_err(self.err("read counters"))?;
        let all: HashMap<String, i64> =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(Iterator::collect).map_err(self.err("read counters"))?;
        let get = |k: &str| to_u64(all.get(k).copied().unwrap_or(0));
        Ok(Counters {
            hits: get("hits"),
            misses: get("misses"),
            downloads: get("downloads"),
            bytes_downloaded: get("bytes_downloaded"),
            failures: DownloadFailures {
                remote: get(FailureCause::Remote.counter_name()),
                integrity: get(FailureCause::Integrity.counter_name()),
                disk_full: get(FailureCause::DiskFull.counter_name()),
                other: get(FailureCause::Other.counter_name()),
            },
            evictions: Evictions {
                expired: get(eviction_counter_name(EvictReason::Expired)),
                over_size: get(eviction_counter_name(EvictReason::OverSize)),
            },
            lock_waits: get(LOCK_WAITS),
            lock_wait_micros: get(LOCK_WAIT_MICROS),
            histograms: read_histograms(&get),
        })
    }

    /// Adds or removes a pin.
    pub(crate) fn set_pin(&self, pin: &Pin, on: bool) -> Result<bool> {
        let changed = self.write("update pins", |tx| {
            if on {
                tx.execute("INSERT OR IGNORE INTO pins VALUES (?1, ?2, ?3)", [&pin.0, &pin.1, &pin.2])
            } else {
                tx.execute(
                    "DELETE FROM pins WHERE repo = ?1 AND (?2 = '' OR revision = ?2) AND (?3 = '' OR path = ?3)",
                    [&pin.0, &pin.1, &pin.2],
                )
            }
        })?;
        Ok(changed > 0)
    }

    /// All pins.
    pub(crate) fn pins(&self) -> Result<Vec<Pin>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT repo, revision, path FROM pins").map_err(self.err("read pins"))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(Iterator::collect).map_err(self.err("read pins"))
    }

    /// The aggregates the triggers keep: per repo `(repo, files, distinct-blob bytes,
    /// first download, last use)`, the `(repo, revision)` pairs, and the totals (each
    /// blob once).
    pub(crate) fn summary(&self) -> Result<Summary> {
        self.merge_journal_or_warn();
        let conn = self.conn();
        let q = |sql: &str| conn.prepare_cached(sql).map_err(self.err("summarise"));
        let per_repo: Vec<(String, u64, u64, i64, i64)> =
            q("SELECT repo, files, size, coalesce(downloaded_at, 0), coalesce(last_used, 0) FROM repos ORDER BY repo")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?), to_u64(r.get(2)?), r.get(3)?, r.get(4)?)))
                .and_then(Iterator::collect)
                .map_err(self.err("summarise"))?;
        let revisions: Vec<(String, String)> = q("SELECT repo, revision FROM revisions ORDER BY repo, revision")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(self.err("summarise"))?;
        let (files, total): (i64, i64) = conn
            .query_row("SELECT files, bytes FROM totals", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err("summarise"))?;
        Ok(Summary { per_repo, revisions, total_bytes: to_u64(total), files: to_u64(files) })
    }

    /// Makes the entries of one scope (`repo = Some`: that repo; `None`: all) equal to
    /// `truth`, keeping usage history and recorded digests of unchanged blobs.
    pub(crate) fn reconcile(&self, repo: Option<&str>, truth: &[Row]) -> Result<Diff> {
        let current = self.rows(repo)?;
        let old: HashMap<(&str, &str, &str), &Row> = current.iter().map(|r| (r.key(), r)).collect();
        let new: HashMap<(&str, &str, &str), &Row> = truth.iter().map(|r| (r.key(), r)).collect();
        self.write("reconcile", |tx| {
            let mut diff = Diff::default();
            for (k, r) in &new {
                match old.get(k) {
                    None => {
                        upsert(tx, r)?;
                        diff.added += 1;
                    }
                    Some(o) if o.blob != r.blob || o.size != r.size || (r.etag.is_some() && o.etag != r.etag) => {
                        let etag = r.etag.clone().or_else(|| o.etag.clone());
                        // Only the blob's identity changed (a name of it went, or it became
                        // one inode with another repo's): the same digest, so the same bytes
                        // were recorded when, and with the BLAKE3, the old row says.
                        let same = r.etag.is_some() && o.etag == r.etag && o.size == r.size;
                        let (downloaded_at, blake3) =
                            if same { (o.downloaded_at, o.blake3.clone()) } else { (r.downloaded_at, r.blake3.clone()) };
                        let fresh = Row { last_used: o.last_used.max(r.last_used), etag, downloaded_at, blake3, ..(*r).clone() };
                        tx.execute("DELETE FROM entries WHERE repo = ?1 AND revision = ?2 AND path = ?3", [k.0, k.1, k.2])?;
                        upsert(tx, &fresh)?;
                        diff.updated += 1;
                    }
                    Some(_) => {}
                }
            }
            for k in old.keys().filter(|k| !new.contains_key(*k)) {
                tx.execute("DELETE FROM entries WHERE repo = ?1 AND revision = ?2 AND path = ?3", [k.0, k.1, k.2])?;
                diff.removed += 1;
            }
            Ok(diff)
        })
    }

    /// SQLite's own check of the file (`PRAGMA quick_check`: `None` when fine, else what
    /// it found) and the schema version (`user_version`) with the one this build writes.
    pub(crate) fn health(&self) -> Result<(Option<String>, u64, u64)> {
        let conn = self.conn();
        let found: Vec<String> = conn
            .prepare("PRAGMA quick_check")
            .and_then(|mut q| q.query_map([], |r| r.get::<_, String>(0))?.collect())
            .map_err(self.err("check"))?;
        let problem = (found != ["ok"]).then(|| found.join("; "));
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(self.err("check"))?;
        Ok((problem, to_u64(version), MIGRATIONS.len() as u64))
    }

    /// What [`Index::reconcile`] would change to make the entries equal `truth`, without
    /// changing anything.
    pub(crate) fn differences(&self, truth: &[Row]) -> Result<Diff> {
        let current = self.rows(None)?;
        let old: HashMap<(&str, &str, &str), &Row> = current.iter().map(|r| (r.key(), r)).collect();
        let new: HashMap<(&str, &str, &str), &Row> = truth.iter().map(|r| (r.key(), r)).collect();
        let mut diff = Diff::default();
        for (k, r) in &new {
            match old.get(k) {
                None => diff.added += 1,
                Some(o) if o.blob != r.blob || o.size != r.size || (r.etag.is_some() && o.etag != r.etag) => diff.updated += 1,
                Some(_) => {}
            }
        }
        diff.removed = old.keys().filter(|k| !new.contains_key(*k)).count() as u64;
        Ok(diff)
    }

    /// Another connection to the same database, read-only, for a thread of its own.
    pub(crate) fn reader(&self) -> Result<Index> {
        let err = |source| Error::Index { op: "open", path: self.path.clone(), source };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        stable_plans(&conn).map_err(err)?;
        Ok(Index { conn: Mutex::new(conn), path: self.path.clone(), ino: self.ino, journal: None, wrote: false.into() })
    }

    /// Records the BLAKE3 of a blob whose entries have none yet (the first verify of a
    /// download checked by its etag).
    pub(crate) fn record_blake3(&self, blob: &str, blake3: &str) -> Result<()> {
        self.write("record a digest", |tx| {
            tx.execute("UPDATE entries SET blake3 = ?2 WHERE blob = ?1 AND blake3 IS NULL", [blob, blake3]).map(drop)
        })
    }

    /// Records a batch of uses and lookups in the index itself, for when the usage
    /// journal cannot take them (see `Store::flush`).
    pub(crate) fn record_usage_directly(
        &self,
        uses: &[(String, String, String, i64)],
        hits: u64,
        misses: u64,
        hit_latency: &Histogram,
    ) -> Result<()> {
        self.touch(uses)?;
        self.add_lookups(hits, misses, hit_latency)
    }

    /// [`Index::merge_journal`] before a read: a journal that cannot be merged (a
    /// read-only home, a database busy past the timeout) leaves the read to the index as
    /// it is, as before the journal existed, rather than failing it.
    fn merge_journal_or_warn(&self) {
        if let Err(e) = self.merge_journal() {
            tracing::warn!("reading the index without the latest recorded uses: {e}");
        }
    }

    /// Merges the usage journal into the index, once, in one transaction (see `journal`).
    pub(crate) fn merge_journal(&self) -> Result<()> {
        let Some(j) = &self.journal else { return Ok(()) };
        let io_err = |e| Error::io("merge the usage journal", self.path.with_file_name("uses.log"))(e);
        let Some((file, bytes)) = j.take().map_err(io_err)? else { return Ok(()) };
        let (done_len, done_hash): (i64, i64) = self.read("read the usage journal's mark", |c| {
            let get = |name: &str| -> rusqlite::Result<i64> {
                c.query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| r.get(0))
                    .optional()
                    .map(Option::unwrap_or_default)
            };
            Ok((get(JOURNAL_BYTES)?, get(JOURNAL_HASH)?))
        })?;
        // Bytes a merge killed before emptying the file already counted: skipped.
        let skip = usize::try_from(done_len)
            .ok()
            .filter(|&n| n > 0 && n <= bytes.len() && journal::hash_of(&bytes[..n]) == done_hash)
            .unwrap_or(0);
        let records = journal::decode(&bytes[skip..]);
        let (len, hash) = (to_i64(bytes.len() as u64), journal::hash_of(&bytes));
        self.write("merge the usage journal", |tx| {
            let mut st = tx.prepare_cached(
                "UPDATE entries SET last_used = max(last_used, ?4) WHERE repo = ?1 AND revision = ?2 AND path = ?3",
            )?;
            for (repo, rev, path, t) in &records.uses {
                st.execute(params![repo, rev, path, t])?;
            }
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'hits'", [to_i64(records.hits)])?;
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'misses'", [to_i64(records.misses)])?;
            add_histograms(tx, &Histograms { hit_seconds: records.hit_latency, ..Histograms::default() })?;
            let mut mark = tx.prepare_cached("INSERT OR REPLACE INTO counters VALUES (?1, ?2)")?;
            mark.execute(params![JOURNAL_BYTES, len])?;
            mark.execute(params![JOURNAL_HASH, hash])?;
            Ok(())
        })?;
        file.set_len(0).map_err(io_err)
    }

    /// Runs the queries `f` (for tables another module owns, such as `stamp`'s).
    pub(crate) fn read<T>(&self, op: &'static str, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        f(&self.conn()).map_err(self.err(op))
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        if !*self.wrote.get_mut() {
            return;
        }
        let conn = self.conn.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Never wait at exit: a busy database is checkpointed by whoever closes it last.
        let _ = conn.busy_timeout(Duration::ZERO);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::debug!("left the index's WAL for a later checkpoint: {e}");
        }
    }
}

/// Counter rows marking what the last merge of the usage journal took (see `journal`).
const JOURNAL_BYTES: &str = "journal_merged_bytes";
const JOURNAL_HASH: &str = "journal_merged_hash";

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Keeps each cached statement's plan across bindings. Without it, SQLite re-prepares a
/// statement whenever a parameter it looked at while planning gets a new value (here the
/// cross-repo lookup by etag, once per file of a snapshot: ~5 % of a 500-file snapshot's
/// CPU). The index has no statistics (`ANALYZE` never runs), so no plan depends on them.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop)
}

pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

fn upsert(tx: &rusqlite::Transaction<'_>, row: &Row) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO entries (repo, revision, path, blob, etag, size, blake3, downloaded_at, last_used)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (repo, revision, path) DO UPDATE SET
           blake3 = coalesce(excluded.blake3, CASE WHEN entries.blob = excluded.blob THEN entries.blake3 END),
           blob = excluded.blob, etag = excluded.etag, size = excluded.size,
           downloaded_at = excluded.downloaded_at, last_used = max(entries.last_used, excluded.last_used)",
    )?;
    st.execute(params![
        row.repo,
        row.revision,
        row.path,
        row.blob,
        row.etag,
        to_i64(row.size),
        row.blake3,
        row.downloaded_at,
        row.last_used
    ])?;
    Ok(())
}

/// The columns [`row_from`] reads, in its order.
const ROW_COLUMNS: &str = "repo, revision, path, blob, etag, size, blake3, downloaded_at, last_used";

/// One `entries` row selected as [`ROW_COLUMNS`].
fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        repo: r.get(0)?,
        revision: r.get(1)?,
        path: r.get(2)?,
        blob: r.get(3)?,
        etag: r.get(4)?,
        size: to_u64(r.get(5)?),
        blake3: r.get(6)?,
        downloaded_at: r.get(7)?,
        last_used: r.get(8)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn reopening_a_current_index_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("index.sqlite3")).unwrap();
        let (_, created) = Index::open(&path).unwrap();
        assert!(created);
        let wal = tmp.path().join("index.sqlite3-wal");
        let stamp = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.len(), m.modified().unwrap())).ok();
        let before = (stamp(path.as_std_path()), stamp(&wal));
        assert_eq!(before.1.map(|s| s.0), Some(0), "the creating connection folded its WAL back on close");
        std::thread::sleep(Duration::from_millis(20));
        let (again, created) = Index::open(&path).unwrap();
        assert!(!created);
        drop(again);
        assert_eq!((stamp(path.as_std_path()), stamp(&wal)), before, "a current index is opened without writing");
    }

    #[test]
    fn a_merge_killed_before_emptying_the_journal_counts_nothing_twice() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("index.sqlite3")).unwrap();
        let (idx, _) = Index::open(&path).unwrap();
        idx.upsert(&row("p", "b", 1), None).unwrap();
        let journal = tmp.path().join("uses.log");
        Journal::beside(&path).append(&[("models--a".into(), "c".into(), "p".into(), 50)], 2, 1, &Histogram::default()).unwrap();
        assert!(std::fs::metadata(&journal).unwrap().len() > 0, "journaled, not written");
        assert_eq!(idx.rows(None).unwrap()[0].last_used, 50, "a read merges first");
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), 0, "and empties the journal");
        // A merge killed after its commit leaves the merged bytes in place; more are
        // appended behind them before the next merge.
        let merged = encode_for_test(&[("models--a".into(), "c".into(), "p".into(), 50)], 2, 1);
        std::fs::write(&journal, &merged).unwrap();
        Journal::beside(&path).append(&[("models--a".into(), "c".into(), "p".into(), 70)], 1, 0, &Histogram::default()).unwrap();
        let c = idx.counters().unwrap();
        assert_eq!((c.hits, c.misses), (3, 1), "the leftover bytes were recognised as merged");
        assert_eq!(idx.rows(None).unwrap()[0].last_used, 70);
    }

    #[test]
    fn an_index_that_cannot_be_written_is_read_without_merging() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("index.sqlite3")).unwrap();
        let (idx, _) = Index::open(&path).unwrap();
        idx.upsert(&row("p", "b", 1), None).unwrap();
        Journal::beside(&path).append(&[("models--a".into(), "c".into(), "p".into(), 50)], 1, 0, &Histogram::default()).unwrap();
        idx.read("test", |c| c.pragma_update(None, "query_only", true)).unwrap();
        assert_eq!(idx.rows(None).unwrap()[0].last_used, 1, "read as it is");
        assert!(std::fs::metadata(tmp.path().join("uses.log")).unwrap().len() > 0, "the journal waits for a writer");
        idx.read("test", |c| c.pragma_update(None, "query_only", false)).unwrap();
        assert_eq!(idx.rows(None).unwrap()[0].last_used, 50);
    }

    fn encode_for_test(uses: &[(String, String, String, i64)], hits: u64, misses: u64) -> Vec<u8> {
        let tmp = tempfile::tempdir().unwrap();
        let j = Journal::beside(&Utf8PathBuf::from_path_buf(tmp.path().join("x")).unwrap());
        j.append(uses, hits, misses, &Histogram::default()).unwrap();
        std::fs::read(tmp.path().join("uses.log")).unwrap()
    }

    #[test]
    fn a_writer_leaves_an_empty_wal_and_a_reader_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("index.sqlite3")).unwrap();
        let wal = tmp.path().join("index.sqlite3-wal");
        drop(Index::open(&path).unwrap());
        let (idx, _) = Index::open(&path).unwrap();
        idx.upsert(&row("p", "b", 1), None).unwrap();
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        drop(idx);
        assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "the next process reads no WAL");
        let (reader, _) = Index::open(&path).unwrap();
        assert_eq!(reader.rows(None).unwrap().len(), 1);
        let stamp = std::fs::metadata(&path).unwrap().modified().unwrap();
        drop(reader);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), stamp, "a reader closes without writing");
    }

    #[test]
    fn an_index_of_the_first_schema_is_migrated_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("index.sqlite3")).unwrap();
        let old = Connection::open(&path).unwrap();
        old.execute_batch(MIGRATIONS[0]).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.execute("INSERT INTO entries VALUES ('models--a', 'c', 'x', 'b', NULL, 3, NULL, 1, 1)", []).unwrap();
        drop(old);
        let (idx, created) = Index::open(&path).unwrap();
        assert!(!created);
        assert_eq!(idx.rows(None).unwrap().len(), 1, "entries survive");
        assert!(idx.stamps().unwrap().is_empty(), "no folder is trusted yet: the first listing scans them all");
        assert_eq!(idx.summary().unwrap().files, 1);
    }

    fn row(path: &str, blob: &str, size: u64) -> Row {
        Row {
            repo: "models--a".into(),
            revision: "c".into(),
            path: path.into(),
            blob: blob.into(),
            etag: None,
            size,
            blake3: Some(format!("b3-{blob}")),
            downloaded_at: 1,
            last_used: 1,
        }
    }

    #[test]
    fn entries_counters_pins_and_reconcile() {
        let tmp = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(tmp.path().join("i.sqlite3")).unwrap();
        let (idx, fresh) = Index::open(&path).unwrap();
        assert!(fresh);
        idx.upsert(&row("x", "bx", 10), Some((10, Duration::from_millis(2)))).unwrap();
        idx.upsert(&row("y", "by", 5), None).unwrap();
        idx.touch(&[("models--a".into(), "c".into(), "x".into(), 50)]).unwrap();
        idx.add_lookups(3, 1, &Histogram::default()).unwrap();
        let c = idx.counters().unwrap();
        assert_eq!((c.hits, c.misses, c.downloads, c.bytes_downloaded), (3, 1, 1, 10));
        assert_eq!(c.failures, DownloadFailures::default(), "no failure rows before the first failure");
        idx.add_failure(FailureCause::Remote).unwrap();
        idx.add_failure(FailureCause::Remote).unwrap();
        idx.add_failure(FailureCause::DiskFull).unwrap();
        let f = idx.counters().unwrap().failures;
        assert_eq!((f.remote, f.integrity, f.disk_full, f.other, f.total()), (2, 0, 1, 0, 3));
        assert_eq!(idx.rows(None).unwrap().iter().find(|r| r.path == "x").unwrap().last_used, 50);
        assert_eq!(idx.blake3_of("bx").unwrap().as_deref(), Some("b3-bx"));

        idx.set_pin(&("models--a".into(), String::new(), String::new()), true).unwrap();
        assert_eq!(idx.pins().unwrap().len(), 1);
        idx.set_pin(&("models--a".into(), String::new(), String::new()), false).unwrap();
        assert!(idx.pins().unwrap().is_empty());

        let mut changed = row("x", "bx2", 11);
        changed.blake3 = None;
        let diff = idx.reconcile(Some("models--a"), &[changed, row("z", "bz", 1)]).unwrap();
        assert_eq!(diff, Diff { added: 1, removed: 1, updated: 1 });
        let rows = idx.rows(Some("models--a")).unwrap();
        let x = rows.iter().find(|r| r.path == "x").unwrap();
        assert_eq!((x.blob.as_str(), x.last_used, x.blake3.clone()), ("bx2", 50, None));
        drop(idx);
        let (again, fresh) = Index::open(&path).unwrap();
        assert!(!fresh);
        assert_eq!(again.rows(None).unwrap().len(), 2);
        assert_eq!(again.delete("models--a", Some("c"), Some("z")).unwrap(), 1);
    }

    type Brute = (Vec<(String, u64, u64, i64, i64)>, Vec<(String, String)>, u64, u64);

    fn brute_force(idx: &Index) -> Brute {
        let rows = idx.rows(None).unwrap();
        let mut per: BTreeMap<String, (u64, BTreeMap<String, u64>, i64, i64)> = BTreeMap::new();
        let mut revs = BTreeSet::new();
        let mut blobs = BTreeMap::new();
        for r in &rows {
            let e = per.entry(r.repo.clone()).or_insert((0, BTreeMap::new(), i64::MAX, i64::MIN));
            e.0 += 1;
            e.1.insert(r.blob.clone(), r.size);
            e.2 = e.2.min(r.downloaded_at);
            e.3 = e.3.max(r.last_used);
            revs.insert((r.repo.clone(), r.revision.clone()));
            blobs.insert(r.blob.clone(), r.size);
        }
        let per = per.into_iter().map(|(k, (n, b, d, u))| (k, n, b.values().sum(), d, u)).collect();
        (per, revs.into_iter().collect(), blobs.values().sum(), rows.len() as u64)
    }

    /// `PROPTEST_CASES` when set (`cargo xtask proptest` sets it), else 32.
    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(32)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
        #[test]
        fn trigger_aggregates_equal_a_brute_force_summary(
            ops in proptest::collection::vec((0u8..4, 0u8..3, 0u8..3, 0u8..4, 0u8..6, 1i64..100), 1..40)
        ) {
            let tmp = tempfile::tempdir().unwrap();
            let (idx, _) = Index::open(&Utf8PathBuf::from_path_buf(tmp.path().join("i.sqlite3")).unwrap()).unwrap();
            for (kind, repo, rev, path, blob, t) in ops {
                // A blob's size is a function of its name, as on disk.
                let row = Row {
                    repo: format!("r{repo}"), revision: format!("c{rev}"), path: format!("p{path}"),
                    blob: format!("b{blob}"), etag: None, size: u64::from(blob) * 10 + 1, blake3: None,
                    downloaded_at: t, last_used: t,
                };
                match kind {
                    0 | 1 => idx.upsert(&row, None).unwrap(),
                    2 => { idx.delete(&row.repo, Some(&row.revision), None).unwrap(); }
                    _ => idx.touch(&[(row.repo, row.revision, row.path, t + 1000)]).unwrap(),
                }
            }
            let s = idx.summary().unwrap();
            let (per, revs, total, files) = brute_force(&idx);
            prop_assert_eq!(s.per_repo, per);
            prop_assert_eq!(s.revisions, revs);
            prop_assert_eq!((s.total_bytes, s.files), (total, files));
        }
    }
}
