//! The resolver's errors: what the Hub said, mapped to what the user can do about it.

use cache_core::Repo;

/// What went wrong while resolving, looking up or fetching Hub files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An include/exclude pattern that is not a valid glob.
    #[error("invalid file pattern `{pattern}`: {reason}")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// Why.
        reason: String,
    },
    /// The Hub does not know the repository (or hides it: private repos look missing).
    #[error("repository `{repo}` was not found on the Hub")]
    RepoNotFound {
        /// The repository.
        repo: Repo,
    },
    /// The repository has no such branch, tag or commit.
    #[error("revision `{revision}` was not found in `{repo}`")]
    RevisionNotFound {
        /// The repository.
        repo: Repo,
        /// The revision asked for.
        revision: String,
    },
    /// The file is not in that revision (`cached`: known from the `.no_exist` marker,
    /// without asking the Hub).
    #[error("file `{path}` is not in `{repo}` at `{revision}`{}", if *cached { " (remembered from an earlier lookup)" } else { "" })]
    EntryNotFound {
        /// The repository.
        repo: Repo,
        /// The revision.
        revision: String,
        /// The file.
        path: String,
        /// Whether the answer came from the cache's `.no_exist` marker.
        cached: bool,
    },
    /// The repository needs a token (private or gated) or the token lacks access.
    #[error("access to `{repo}` was refused{}", if *gated { ": the repository is gated" } else { "" })]
    Unauthorized {
        /// The repository.
        repo: Repo,
        /// Whether the Hub said the repository is gated.
        gated: bool,
    },
    /// Not in the cache, and the network may not be used.
    #[error("`{what}` is not in the cache and offline mode forbids downloading it")]
    NotCached {
        /// What was asked for.
        what: String,
    },
    /// A cached snapshot lacks files its recorded listing says the revision has.
    #[error("the cached snapshot of `{repo}` at `{commit}` is incomplete: {} missing ({})", missing.len(), preview(missing))]
    IncompleteSnapshot {
        /// The repository.
        repo: Repo,
        /// The commit.
        commit: String,
        /// Files that match the request but are not cached.
        missing: Vec<String>,
    },
    /// A cached file failed its integrity check; it was removed from the cache.
    #[error("cached file `{path}` of `{repo}` is corrupted (expected `{expected}`, found `{actual}`) and was removed")]
    Corrupted {
        /// The repository.
        repo: Repo,
        /// The file.
        path: String,
        /// The digest it should have.
        expected: String,
        /// The digest it had.
        actual: String,
    },
    /// The content of a URL does not match the SHA-256 the caller gave for it (checked on
    /// two downloads, so it is what the URL serves, not a transfer error).
    #[error("`{url}` serves content with sha256 `{actual}`, not the given `{expected}`")]
    GivenDigestMismatch {
        /// The URL (without query or user info).
        url: String,
        /// The digest the caller gave.
        expected: String,
        /// The digest of what the URL serves.
        actual: String,
    },
    /// The server's answer was not what the Hub sends.
    #[error("unexpected answer from `{url}`: {reason}")]
    InvalidResponse {
        /// The URL (without query).
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A request or transfer failed.
    #[cfg(feature = "network")]
    #[error("failed to {what}")]
    Fetch {
        /// What was being done, e.g. ``download `config.json` of `org/name` ``.
        what: String,
        /// The transfer error.
        #[source]
        source: cache_fetch::Error,
    },
    /// The cache failed.
    #[error(transparent)]
    Store(#[from] cache_store::Error),
    /// A background task failed (a panic in a blocking store call).
    #[error("a background task failed: {reason}")]
    Task {
        /// The panic or cancellation.
        reason: String,
    },
}

fn preview(missing: &[String]) -> String {
    let mut s: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
    if missing.len() > 5 {
        s.push("…");
    }
    s.join(", ")
}

impl Error {
    /// The user's next step.
    pub fn hint(&self) -> Option<String> {
        let s = match self {
            Error::InvalidPattern { .. } => "patterns are globs such as `*.json`, `onnx/` or `model-[0-9].bin`".to_owned(),
            Error::RepoNotFound { .. } => {
                "check the repo id and the repo type (`--repo-type`); if the repository is private, set `HF_TOKEN`".to_owned()
            }
            Error::RevisionNotFound { .. } => "check the revision (branch, tag or full commit hash)".to_owned(),
            Error::EntryNotFound { cached: true, .. } => {
                "the Hub said so earlier; go online (unset `HF_HUB_OFFLINE`) to check again, or check the file name".to_owned()
            }
            Error::EntryNotFound { .. } => "check the file name and the revision".to_owned(),
            Error::Unauthorized { gated: true, .. } => {
                "request access on the repository's page, then set `HF_TOKEN` to a token of that account".to_owned()
            }
            Error::Unauthorized { .. } => "set `HF_TOKEN` (or pass `--token`) to a token with access to the repository".to_owned(),
            Error::NotCached { .. } => {
                "check the network connection and unset `HF_HUB_OFFLINE`/`MODELCACHE_OFFLINE` (or drop `--offline`) to download it"
                    .to_owned()
            }
            Error::IncompleteSnapshot { .. } => {
                "go online (drop `--offline`, unset `HF_HUB_OFFLINE`) to download the missing files, or narrow the request with `--include`/`--exclude`".to_owned()
            }
            Error::Corrupted { .. } => "run the same command again to download a fresh copy".to_owned(),
            Error::GivenDigestMismatch { .. } => {
                "the given sha256 (`--sha256`) does not match what the URL serves: check the digest or the URL".to_owned()
            }
            Error::InvalidResponse { .. } => "check `HF_ENDPOINT` and any proxy in between".to_owned(),
            #[cfg(feature = "network")]
            Error::Fetch { source, .. } => return source.hint(),
            Error::Store(e) => return e.hint(),
            Error::Task { .. } => "this is a bug: please report it".to_owned(),
        };
        Some(s)
    }

    /// Whether the Hub could not be reached (connection, timeout, 5xx after retries):
    /// a cached answer may stand in.
    pub fn is_unreachable(&self) -> bool {
        match self {
            #[cfg(feature = "network")]
            Error::Fetch { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// Whether the error means "the Hub says it does not exist" (repo, revision or file).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::RepoNotFound { .. } | Error::RevisionNotFound { .. } | Error::EntryNotFound { .. })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_thing_and_hints_say_what_to_do() {
        let repo = Repo::model("org/name".parse().unwrap());
        let e = Error::EntryNotFound { repo: repo.clone(), revision: "main".into(), path: "x.bin".into(), cached: true };
        assert_eq!(e.to_string(), "file `x.bin` is not in `org/name` at `main` (remembered from an earlier lookup)");
        assert!(e.is_not_found() && !e.is_unreachable());
        let e = Error::Unauthorized { repo: repo.clone(), gated: true };
        assert!(e.hint().unwrap().contains("HF_TOKEN"));
        let missing: Vec<String> = (0..7).map(|i| format!("f{i}")).collect();
        let e = Error::IncompleteSnapshot { repo, commit: "c".into(), missing };
        assert!(e.to_string().contains("7 missing (f0, f1, f2, f3, f4, …)"), "{e}");
        assert!(Error::NotCached { what: "a".into() }.hint().unwrap().contains("HF_HUB_OFFLINE"));
    }
}
