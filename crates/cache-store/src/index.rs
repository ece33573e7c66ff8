//! The `SQLite` index: what the disk cannot say (last use, pins, recorded BLAKE3,
//! counters), one database per hub cache in the modelcache home.
//!
//! # Concurrency
//! WAL mode with a generous busy timeout: any number of processes read and write it.
//! Every write is one `BEGIN IMMEDIATE` transaction, and counters are updated with
//! `value = value + ?`, so concurrent processes never lose each other's updates.
//!
//! # Schema
//! Migrations are append-only (`PRAGMA user_version` counts the applied ones). Entries
//! are keyed by `(repo, revision, path)`: the repo folder name, commit and in-repo path
//! for Hub files; `''`, the key hash and the key for artifacts.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use cache_core::Counters;
use camino::{Utf8Path, Utf8PathBuf};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::error::{Error, Result};

const MIGRATIONS: &[&str] = &["CREATE TABLE entries (
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
    CREATE INDEX entries_repo_blob ON entries (repo, blob, size);
    CREATE TABLE pins (
        repo TEXT NOT NULL,
        revision TEXT NOT NULL,
        path TEXT NOT NULL,
        PRIMARY KEY (repo, revision, path)
    ) WITHOUT ROWID;
    CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO counters VALUES ('hits', 0), ('misses', 0), ('downloads', 0), ('bytes_downloaded', 0);"];

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
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Index {
    /// Opens (creating and migrating) the database; `true` when it was just created.
    pub(crate) fn open(path: &Utf8Path) -> Result<(Index, bool)> {
        let err = |op| {
            let path = path.to_owned();
            move |source| Error::Index { op, path, source }
        };
        let mut conn = Connection::open(path).map_err(err("open"))?;
        conn.busy_timeout(Duration::from_secs(60)).map_err(err("configure"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(err("enable WAL"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(err("configure"))?;
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
        Ok((Index { conn: Mutex::new(conn), path: path.to_owned() }, applied == 0))
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn err(&self, op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        move |source| Error::Index { op, path: self.path.clone(), source }
    }

    fn write<T>(&self, op: &'static str, f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(self.err(op))?;
        let out = f(&tx).map_err(self.err(op))?;
        tx.commit().map_err(self.err(op))?;
        Ok(out)
    }

    /// Inserts or replaces an entry; with `download = Some(bytes)` also counts a download.
    pub(crate) fn upsert(&self, row: &Row, download: Option<u64>) -> Result<()> {
        self.write("record an entry", |tx| {
            upsert(tx, row)?;
            if let Some(bytes) = download {
                tx.execute("UPDATE counters SET value = value + 1 WHERE name = 'downloads'", [])?;
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
        let conn = self.conn();
        let sql = "SELECT repo, revision, path, blob, etag, size, blake3, downloaded_at, last_used FROM entries";
        let map = |r: &rusqlite::Row<'_>| {
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
        };
        let rows = if let Some(repo) = repo {
            let mut st = conn.prepare_cached(&format!("{sql} WHERE repo = ?1")).map_err(self.err("read entries"))?;
            st.query_map([repo], map).and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        } else {
            let mut st = conn.prepare_cached(sql).map_err(self.err("read entries"))?;
            st.query_map([], map).and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        };
        rows.map_err(self.err("read entries"))
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

    /// Adds to the hit and miss counters.
    pub(crate) fn add_lookups(&self, hits: u64, misses: u64) -> Result<()> {
        self.write("update counters", |tx| {
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'hits'", [to_i64(hits)])?;
            tx.execute("UPDATE counters SET value = value + ?1 WHERE name = 'misses'", [to_i64(misses)])?;
            Ok(())
        })
    }

    /// The counters as recorded.
    pub(crate) fn counters(&self) -> Result<Counters> {
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
        })
    }

    /// Adds or removes a pin.
    pub(crate) fn set_pin(&self, pin: &Pin, on: bool) -> Result<()> {
        self.write("update pins", |tx| {
            if on {
                tx.execute("INSERT OR IGNORE INTO pins VALUES (?1, ?2, ?3)", [&pin.0, &pin.1, &pin.2])
            } else {
                tx.execute(
                    "DELETE FROM pins WHERE repo = ?1 AND (?2 = '' OR revision = ?2) AND (?3 = '' OR path = ?3)",
                    [&pin.0, &pin.1, &pin.2],
                )
            }
        })?;
        Ok(())
    }

    /// All pins.
    pub(crate) fn pins(&self) -> Result<Vec<Pin>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached("SELECT repo, revision, path FROM pins").map_err(self.err("read pins"))?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).and_then(Iterator::collect).map_err(self.err("read pins"))
    }

    /// Per-scope aggregates: `(repo, files, distinct-blob bytes, first download, last use)`,
    /// the distinct `(repo, revision)` pairs, and the total of distinct blobs.
    pub(crate) fn summary(&self) -> Result<Summary> {
        let conn = self.conn();
        let q = |sql: &str| conn.prepare_cached(sql).map_err(self.err("summarise"));
        let mut per_repo: Vec<(String, u64, u64, i64, i64)> =
            q("SELECT repo, COUNT(*), MIN(downloaded_at), MAX(last_used) FROM entries GROUP BY repo ORDER BY repo")?
                .query_map([], |r| Ok((r.get::<_, String>(0)?, to_u64(r.get(1)?), 0, r.get(2)?, r.get(3)?)))
                .and_then(Iterator::collect)
                .map_err(self.err("summarise"))?;
        let sizes: HashMap<String, u64> =
            q("SELECT repo, SUM(s) FROM (SELECT repo, blob, MAX(size) AS s FROM entries GROUP BY repo, blob) GROUP BY repo")?
                .query_map([], |r| Ok((r.get(0)?, to_u64(r.get(1)?))))
                .and_then(Iterator::collect)
                .map_err(self.err("summarise"))?;
        for r in &mut per_repo {
            r.2 = sizes.get(&r.0).copied().unwrap_or(0);
        }
        let revisions: Vec<(String, String)> = q("SELECT repo, revision FROM entries GROUP BY repo, revision")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(Iterator::collect)
            .map_err(self.err("summarise"))?;
        let (total, files): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT COALESCE(SUM(s), 0) FROM (SELECT MAX(size) AS s FROM entries GROUP BY blob)),
                        (SELECT COUNT(*) FROM entries)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
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
                        let fresh = Row { last_used: o.last_used.max(r.last_used), etag, ..(*r).clone() };
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

#[cfg(test)]
mod tests {
    use super::*;

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
        idx.upsert(&row("x", "bx", 10), Some(10)).unwrap();
        idx.upsert(&row("y", "by", 5), None).unwrap();
        idx.touch(&[("models--a".into(), "c".into(), "x".into(), 50)]).unwrap();
        idx.add_lookups(3, 1).unwrap();
        let c = idx.counters().unwrap();
        assert_eq!((c.hits, c.misses, c.downloads, c.bytes_downloaded), (3, 1, 1, 10));
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
}
