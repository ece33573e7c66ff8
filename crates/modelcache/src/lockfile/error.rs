//! `LockfileError`: what can go wrong with a manifest, a lock, a sync against a lock or a
//! bundle, each with the exit-code class and the next step.

use std::path::PathBuf;

use crate::error::ErrorKind;

/// A failure of the manifest, lockfile, sync-from-lock or bundle operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockfileError {
    /// A manifest or lock cannot be read or is invalid (a field, an unknown key, a
    /// duplicate entry). Nothing was changed.
    #[error("invalid {what} `{}`: {reason}", path.display())]
    Invalid {
        /// `manifest` or `lock`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the entry and field.
        reason: String,
    },
    /// The manifest no longer matches the lock (`--locked`).
    #[error("`{}` does not match `{}`: {}", manifest.display(), lock.display(), changed.join("; "))]
    Stale {
        /// The manifest.
        manifest: PathBuf,
        /// The lock.
        lock: PathBuf,
        /// What changed, an entry per line.
        changed: Vec<String>,
    },
    /// Cached files differ from the lock (size or digest), or are missing where they must
    /// be present (`verify --lock`).
    #[error("{} file(s) of the lock differ from the cache: {}", problems.len(), problems.first().map_or("", String::as_str))]
    Differs {
        /// One line per file: what it is and how it differs.
        problems: Vec<String>,
        /// Whether a repair (`--repair`) can fix it.
        repairable: bool,
    },
    /// A bundle's content does not match its lock (a flipped byte, swapped blobs, a file
    /// the lock does not name). Nothing of the import is visible.
    #[error("bundle `{}` does not match its lock: {reason}", path.display())]
    BundleMismatch {
        /// The bundle.
        path: PathBuf,
        /// The entry and what differs.
        reason: String,
    },
    /// A bundle entry is not a path the layout has (`..`, absolute, a link out of the
    /// repository, a device). Nothing of the import was written.
    #[error("bundle `{}` has an unsafe entry `{entry}`: {reason}", path.display())]
    HostileBundle {
        /// The bundle.
        path: PathBuf,
        /// The entry's path as written in the tar (shortened, escaped).
        entry: String,
        /// Why it is refused.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("failed to {op} `{}`", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl LockfileError {
    /// The exit-code class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LockfileError::Invalid { .. } | LockfileError::Stale { .. } | LockfileError::HostileBundle { .. } => {
                ErrorKind::InvalidInput
            }
            LockfileError::Differs { .. } | LockfileError::BundleMismatch { .. } => ErrorKind::Integrity,
            LockfileError::Io { .. } => ErrorKind::Other,
        }
    }

    /// One next step.
    pub fn hint(&self) -> String {
        match self {
            LockfileError::Invalid { what: "lock", .. } => {
                "regenerate it with `modelcache lock` (it is generated: do not edit it by hand)".to_owned()
            }
            LockfileError::Invalid { .. } => {
                "fix the entry named above (README, \"Reproducible model sets\", lists every field)".to_owned()
            }
            LockfileError::Stale { .. } => {
                "run `modelcache lock` to update the lock, then commit it; or drop `--locked` (`--frozen` uses the lock as it is)"
                    .to_owned()
            }
            LockfileError::Differs { repairable: true, .. } => {
                "run `modelcache sync --repair` to download the differing files again".to_owned()
            }
            LockfileError::Differs { .. } => {
                "run `modelcache sync` to fetch what is missing, or `modelcache sync --repair` to replace damaged files"
                    .to_owned()
            }
            LockfileError::BundleMismatch { .. } => {
                "the bundle was damaged or altered: create it again with `modelcache bundle create` from a verified cache"
                    .to_owned()
            }
            LockfileError::HostileBundle { .. } => {
                "only import bundles made by `modelcache bundle create`; nothing was written".to_owned()
            }
            LockfileError::Io { .. } => "check the path, its permissions and the free space".to_owned(),
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LockfileError {
        let path = path.into();
        move |source| LockfileError::Io { op, path, source }
    }
}
