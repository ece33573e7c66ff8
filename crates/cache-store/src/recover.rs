//! Recovering the index from a file that is not a readable database.
//!
//! The index is derived state: everything in it but usage history and pins can be read
//! back from the disk. A file that cannot be opened or read as a database (random bytes,
//! a truncated copy: `SQLITE_NOTADB`, `SQLITE_CORRUPT`; never a transient "database is
//! locked") is moved aside as `<name>.corrupt-<unix-millis>` (with its `-wal` and `-shm`)
//! and a fresh one takes its place, which the store then rebuilds from the disk
//! (`reconcile`). At open this happens at once; a corruption found later by a query fails
//! that query and sets the file aside, so the next run starts fresh. Processes recovering
//! together take turns on `<name>.recover.lock`, and only the file found corrupt is moved.

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};

/// Whether the file is not (or no longer) a readable database, as opposed to a busy or
/// unreachable one.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

/// The inode of the file at `path`, if there is one.
pub(crate) fn inode(path: &Utf8Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Waits for this process's turn to recover the database at `path` (an exclusive lock on
/// `<path>.recover.lock`, released on drop).
pub(crate) fn recovery_turn(path: &Utf8Path) -> Result<std::fs::File> {
    let lock = Utf8PathBuf::from(format!("{path}.recover.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(Error::io("open", &lock))?;
    file.lock().map_err(Error::io("lock", &lock))?;
    Ok(file)
}

/// Moves a corrupt database (and its `-wal`, `-shm`) to `<path>.corrupt-<unix-millis>`.
pub(crate) fn set_aside(path: &Utf8Path, cause: &rusqlite::Error) -> Result<()> {
    let stamp = cache_core::Timestamp::now().as_unix_millis();
    let aside = Utf8PathBuf::from(format!("{path}.corrupt-{stamp}"));
    match std::fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("move aside", path)(e)),
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::rename(format!("{path}{suffix}"), format!("{aside}{suffix}"));
    }
    tracing::warn!(index = %path, kept = %aside, "the index could not be read ({cause}): set it aside, rebuilding it from the cache");
    Ok(())
}
