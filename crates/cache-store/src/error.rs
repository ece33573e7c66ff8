//! The crate's one error type, with a `hint()` that tells the user what to do next.

use std::io;
use std::time::Duration;

use camino::Utf8PathBuf;

/// Everything that can go wrong in the store. Variants carry the context (path, blob,
/// lock file); the cause, when there is one, is the error's `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem operation failed.
    #[error("failed to {op} `{path}`")]
    Io {
        /// What the store was doing (`open`, `rename`, `write`…).
        op: &'static str,
        /// The path it was doing it to.
        path: Utf8PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Downloaded content does not have the expected size or digest; the staging file was
    /// deleted.
    #[error("content of `{what}` does not match: expected `{expected}`, got `{actual}`")]
    ChecksumMismatch {
        /// The blob or file that was checked.
        what: String,
        /// The digest (or size) it should have had.
        expected: String,
        /// The digest (or size) it had.
        actual: String,
    },
    /// The filesystem holding the cache has not enough free space.
    #[error(
        "not enough disk space under `{path}`: `{needed}` bytes needed (with the free-space margin kept on the filesystem), `{available}` available"
    )]
    DiskFull {
        /// The directory whose filesystem is full.
        path: Utf8PathBuf,
        /// Bytes needed (including the configured margin).
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// Another process held a blob lock and made no progress for too long.
    #[error(
        "gave up waiting for lock `{lock_file}`: its holder{} made no progress for {}s",
        holder.as_ref().map(|h| format!(", {h},")).unwrap_or_default(),
        stalled.as_secs()
    )]
    LockTimeout {
        /// The lock file.
        lock_file: Utf8PathBuf,
        /// How long nothing happened.
        stalled: Duration,
        /// Who holds it (`pid 1234 (python3)`), when known.
        holder: Option<String>,
    },
    /// Removal was refused because another process is using the files right now.
    #[error("`{what}` is in use by another process")]
    InUse {
        /// What could not be removed.
        what: String,
    },
    /// The `SQLite` index failed.
    #[error("index `{path}` failed to {op}")]
    Index {
        /// What the store asked of the index.
        op: &'static str,
        /// The database file.
        path: Utf8PathBuf,
        /// The database error.
        #[source]
        source: rusqlite::Error,
    },
    /// A repo folder (or its `blobs/`, `snapshots/`, `refs/`) is a symlink leading outside
    /// the cache, such as a model moved to another disk. The store never follows links out
    /// of its roots: whole-cache operations skip such a repo (and log why).
    #[error("repo folder `{path}` leads outside the cache through a symlink")]
    OutsideCache {
        /// The repo folder.
        path: Utf8PathBuf,
    },
    /// Something other than a regular file (a directory, a fifo) stands where the cache
    /// keeps a file, such as a staging file (`blobs/<etag>.incomplete`).
    #[error("`{path}` is in the cache's way: it should be a regular file")]
    NotAFile {
        /// What is in the way.
        path: Utf8PathBuf,
    },
    /// A configured directory is not valid UTF-8.
    #[error("path `{}` is not valid UTF-8", path.display())]
    NonUtf8Path {
        /// The path as the OS returned it.
        path: std::path::PathBuf,
    },
    /// A call's arguments do not fit together (such as committing a staging file under
    /// another etag than the one it was locked for).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What does not fit.
        reason: String,
    },
    /// A file could not be placed into a directory the way the link mode asks
    /// ([`Store::materialize`](crate::Store::materialize)).
    #[error("cannot {mode} `{path}` into `{dir}`")]
    Placement {
        /// The link mode (`reflink`, `hardlink`, `symlink`, `copy`).
        mode: &'static str,
        /// The file's path in the repository.
        path: String,
        /// The target directory.
        dir: Utf8PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A path inside a target directory leads out of it through a symlink.
    #[error("`{path}` in `{dir}` leads outside it through a symlink: nothing was written there")]
    OutsideTarget {
        /// The target directory.
        dir: Utf8PathBuf,
        /// The path inside it.
        path: String,
    },
    /// A value failed validation in `cache-core`.
    #[error(transparent)]
    Core(#[from] cache_core::Error),
}

impl Error {
    /// One next step for the user, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::ChecksumMismatch { .. } => {
                "the transfer was corrupted or the file changed upstream: retry; if it happens again run `modelcache verify --repair`"
                    .to_owned()
            }
            Error::DiskFull { path, .. } => {
                format!(
                    "free space on the filesystem of `{path}`, lower `free_space_margin` (`MODELCACHE_FREE_SPACE_MARGIN`), or lower `max_size` and run `modelcache prune`"
                )
            }
            Error::LockTimeout { lock_file, holder, .. } => {
                let who = match holder.as_deref().and_then(|h| h.strip_prefix("pid ")) {
                    Some(rest) => format!("stop pid {} if it hangs", rest.split(' ').next().unwrap_or(rest)),
                    None => "stop that process".to_owned(),
                };
                format!(
                    "another process holds `{lock_file}` but its download is stuck: {who}, or raise `lock_stall_timeout` (`MODELCACHE_LOCK_STALL_TIMEOUT=15m`)"
                )
            }
            Error::InUse { .. } => "retry when the other process has finished, or close it".to_owned(),
            Error::Index { source, .. } if crate::recover::is_corrupt(source) => {
                "the index could not be read and was set aside; it is rebuilt from the cache on the next run: run the command again"
                    .to_owned()
            }
            Error::Index { source, .. } if crate::index::is_busy(source) => {
                "another modelcache process kept the index busy: run the command again when it has finished".to_owned()
            }
            Error::Index { path, .. } => format!(
                "the index only remembers usage and pins and is rebuilt from the cache when missing: delete `{path}` and run the command again"
            ),
            Error::Io { source, path, .. } if source.kind() == io::ErrorKind::PermissionDenied => format!(
                "check the permissions of `{path}` and its parents, or point `HF_HUB_CACHE` (the cache) or `MODELCACHE_HOME` (the index) elsewhere"
            ),
            Error::Io { source, path, .. } if source.kind() == io::ErrorKind::NotADirectory => format!(
                "a file stands where a folder of `{path}` should be: move it away, or point `HF_HUB_CACHE` or `MODELCACHE_HOME` elsewhere"
            ),
            Error::NonUtf8Path { .. } => "use a cache directory whose path is valid UTF-8".to_owned(),
            Error::NotAFile { path } => format!("remove `{path}` (the cache never keeps anything there but a regular file) and run the command again"),
            Error::OutsideCache { path } => format!(
                "modelcache does not follow links out of the cache: move `{path}` back into the cache (or point `HF_HUB_CACHE` at the other disk), or remove the link"
            ),
            Error::Placement { mode: "copy", dir, .. } => format!("check that `{dir}` is writable and has free space"),
            Error::Placement { mode, .. } => format!(
                "the filesystem (or a cache on another disk) does not allow a {mode} here: use `--link-mode auto` (reflink, else copy) or `--link-mode copy`"
            ),
            Error::OutsideTarget { dir, .. } => format!("remove the symlink from `{dir}`, or give another directory"),
            _ => return None,
        })
    }

    pub(crate) fn io(op: &'static str, path: impl Into<Utf8PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether an I/O error means the disk is full.
pub(crate) fn is_disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_with_backticked_values_and_hints() {
        let e = Error::ChecksumMismatch { what: "models--a--b/blobs/x".into(), expected: "aa".into(), actual: "bb".into() };
        assert_eq!(e.to_string(), "content of `models--a--b/blobs/x` does not match: expected `aa`, got `bb`");
        assert!(e.hint().unwrap().contains("modelcache verify --repair"));
        let e = Error::DiskFull { path: "/c".into(), needed: 10, available: 3 };
        assert!(e.to_string().contains("`10` bytes needed (with the free-space margin kept on the filesystem), `3` available"));
        assert!(e.hint().unwrap().contains("`free_space_margin`") && e.hint().unwrap().contains("modelcache prune"));
        let e = Error::LockTimeout {
            lock_file: "/c/.locks/x.lock".into(),
            stalled: Duration::from_secs(30),
            holder: Some("pid 4242 (python3)".into()),
        };
        assert_eq!(
            e.to_string(),
            "gave up waiting for lock `/c/.locks/x.lock`: its holder, pid 4242 (python3), made no progress for 30s"
        );
        assert!(e.hint().unwrap().contains("stop pid 4242 if it hangs"), "{:?}", e.hint());
        let e = Error::io("open", "/x")(io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error()));
        let Error::Io { source, .. } = &e else { panic!() };
        assert!(is_disk_full(source));
        assert!(std::error::Error::source(&e).is_some());
    }

    #[test]
    fn index_hints_depend_on_what_failed() {
        let index = |code| Error::Index {
            op: "read entries",
            path: "/h/index.sqlite3".into(),
            source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
        };
        let hint = |code| index(code).hint().unwrap();
        assert!(hint(rusqlite::ffi::SQLITE_BUSY).contains("when it has finished"));
        assert!(hint(rusqlite::ffi::SQLITE_CORRUPT).contains("set aside"));
        assert!(hint(rusqlite::ffi::SQLITE_NOTADB).contains("rebuilt from the cache on the next run"));
        assert!(hint(rusqlite::ffi::SQLITE_IOERR).contains("delete `/h/index.sqlite3`"));
        assert_eq!(index(rusqlite::ffi::SQLITE_BUSY).to_string(), "index `/h/index.sqlite3` failed to read entries");
    }
}
