//! `CacheError`: every failure of the facade, with a `hint()` saying what to do next and a
//! `kind()` that front ends map to exit codes.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::token_source::TokenSource;

type Source = Box<dyn std::error::Error + Send + Sync>;

/// The reason of a plain miss while downloads are off, before the manager says why.
pub(crate) const DOWNLOADS_OFF: &str = "downloads are off";

/// The generic way to turn downloads on, replaced by the one that applies.
pub(crate) const ENABLE_DOWNLOADS: &str =
    "enable downloads (unset `HF_HUB_OFFLINE`/`MODELCACHE_OFFLINE`, drop `--offline`, set `auto_download = true`)";

/// What kind of failure an error is, for exit codes and retry decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: a repo id, path, size, pattern or setting (exit code 2).
    InvalidInput,
    /// The network or the Hub failed, or the Hub says it does not exist (exit code 3).
    Remote,
    /// Not cached, and downloads are off (offline mode or cache-only) (exit code 4).
    NotCachedOffline,
    /// A checksum did not match or the cache is damaged (exit code 5).
    Integrity,
    /// The disk is full (exit code 6).
    DiskFull,
    /// Anything else (exit code 1).
    Other,
}

impl ErrorKind {
    /// The `modelcache` command's exit code for this kind.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::InvalidInput => 2,
            ErrorKind::Remote => 3,
            ErrorKind::NotCachedOffline => 4,
            ErrorKind::Integrity => 5,
            ErrorKind::DiskFull => 6,
            ErrorKind::Other => 1,
        }
    }
}

/// Which part of a request does not exist on the Hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// The repository (or it is private and no valid token was given).
    Repo,
    /// The branch, tag or commit.
    Revision,
    /// The file in that revision.
    File,
}

/// Everything that can go wrong in the facade. Every message names the operation and the
/// thing; [`CacheError::hint`] gives one next step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// A cache directory cannot be created, opened or written.
    #[error("cache directory `{}` is not accessible", path.display())]
    DirectoryNotAccessible {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: Source,
    },
    /// The Hub says the repository, revision or file does not exist (possibly remembered
    /// from an earlier answer).
    #[error("`{model_id}` was not found: {reason}")]
    ModelNotFound {
        /// The repo (and revision/file) asked for.
        model_id: String,
        /// Which part is missing.
        missing: Missing,
        /// What exactly is missing.
        reason: String,
        /// What to do.
        suggestion: String,
    },
    /// Something could not be downloaded (`offline`: because downloads are off).
    #[error("{}", if *offline { format!("`{model_id}` is not in the cache: {reason}") } else { format!("failed to download `{model_id}`: {reason}") })]
    DownloadFailed {
        /// What was asked for.
        model_id: String,
        /// Why.
        reason: String,
        /// Whether downloads were off (offline mode or a cache-only strategy).
        offline: bool,
        /// What to do.
        suggestion: String,
        /// The underlying error.
        #[source]
        source: Option<Source>,
    },
    /// Content does not match its digest. The corrupted copy was removed.
    #[error("checksum mismatch for `{model_id}`: expected `{expected}`, got `{actual}`")]
    ChecksumMismatch {
        /// What was checked.
        model_id: String,
        /// The digest it should have.
        expected: String,
        /// The digest it had.
        actual: String,
    },
    /// The content of a URL does not match the SHA-256 the user gave for it: the URL serves
    /// other bytes (it was downloaded twice), so the digest or the URL is wrong.
    #[error("`{url}` serves content with sha256 `{actual}`, not the given `{expected}`")]
    GivenDigestMismatch {
        /// The URL (without query or user info).
        url: String,
        /// The digest the user gave.
        expected: String,
        /// The digest of what the URL serves.
        actual: String,
    },
    /// A cached file proved corrupted while downloads are off (offline or a cache-only
    /// strategy). The corrupted copy was removed.
    #[error("cached file `{model_id}` is corrupted: expected `{expected}`, got `{actual}`")]
    CorruptedOffline {
        /// The file.
        model_id: String,
        /// The digest it should have.
        expected: String,
        /// The digest it had.
        actual: String,
    },
    /// A tokenizer's vocabulary does not have the size the model expects.
    #[error("the tokenizer of `{model_id}` has {actual} entries in `{file}`, expected {expected}")]
    VocabMismatch {
        /// The repository.
        model_id: String,
        /// The file counted (`tokenizer.json`, `vocab.txt`…).
        file: String,
        /// The size asked for.
        expected: usize,
        /// The size found.
        actual: usize,
    },
    /// Not enough free space.
    #[error(
        "not enough disk space: {needed} bytes needed (with the free-space margin kept on the filesystem), {available} available"
    )]
    DiskFull {
        /// Bytes needed.
        needed: u64,
        /// Bytes available.
        available: u64,
    },
    /// The Hub refused access (private or gated repository).
    #[error("access to `{model_id}` was refused{}{}", if *gated { " (gated repository)" } else { "" }, match token {
        Some(TokenSource::None) => ": no token was sent".to_owned(),
        Some(source) => format!(": the token from {source} was rejected"),
        None => String::new(),
    })]
    Unauthorized {
        /// The repository.
        model_id: String,
        /// Whether the repository is gated.
        gated: bool,
        /// Where the token sent came from (`None`: not known here).
        token: Option<TokenSource>,
    },
    /// Invalid input: a repo id, revision, path, pattern, digest or size. Without a
    /// `value`, `reason` is the whole message (it already names the value).
    #[error("{}", if value.is_empty() { reason.clone() } else { format!("invalid {what} `{value}`: {reason}") })]
    InvalidInput {
        /// What kind of value.
        what: &'static str,
        /// The value (shortened).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A maintenance operation named something that is not in the cache.
    #[error("`{what}` is not in the cache")]
    NotInCache {
        /// What was named.
        what: String,
    },
    /// A name given to `rm`, `pin`, `unpin` or `verify` matches more than one cached item
    /// (URL artifacts, or an artifact and a repository), or a short commit matches several
    /// cached commits.
    #[error("`{what}` names more than one cached item: {}", candidates.join(", "))]
    Ambiguous {
        /// What was named.
        what: String,
        /// Each match, as `ls` shows it (URLs redacted).
        candidates: Vec<String>,
    },
    /// A snapshot lacked files of its listing when it was about to be returned (another
    /// tool removed them meanwhile); nothing incomplete is returned.
    #[error("snapshot `{model_id}` is incomplete: {} file(s) of its listing missing (`{}`)", missing.len(), missing.first().map_or("", String::as_str))]
    IncompleteSnapshot {
        /// The snapshot asked for.
        model_id: String,
        /// The files of the filtered listing that are missing.
        missing: Vec<String>,
    },
    /// Another process is using what should be removed.
    #[error("`{what}` is in use by another process")]
    InUse {
        /// What.
        what: String,
    },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A strategy cannot run in this build or configuration.
    #[error("acquisition strategy `{strategy}` is not available: {reason}")]
    StrategyUnavailable {
        /// The strategy.
        strategy: String,
        /// Why.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("failed to {op} `{}`", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The cache store failed in another way (index, locks).
    #[error(transparent)]
    Store(cache_store::Error),
    /// The Hub resolver failed in another way.
    #[error(transparent)]
    Hub(cache_hf::Error),
    /// A manifest, lock, sync against a lock or bundle failed.
    #[error(transparent)]
    Lockfile(#[from] crate::lockfile::LockfileError),
    /// A team tier could not be used (`push`, `remote ls`, `remote verify`) or is
    /// configured wrongly (`invalid`). A get never fails with it: the Hub serves instead.
    #[error("{message}")]
    Remote {
        /// What failed, naming the tier (its URL holds no credentials).
        message: String,
        /// What to do.
        hint: String,
        /// Whether the configuration or the input is wrong (exit code 2), not the tier (3).
        invalid: bool,
    },
}

impl CacheError {
    /// What kind of failure this is (see [`ErrorKind::exit_code`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::InvalidInput { .. }
            | CacheError::NotInCache { .. }
            | CacheError::Ambiguous { .. }
            | CacheError::Config(_)
            | CacheError::Remote { invalid: true, .. } => ErrorKind::InvalidInput,
            CacheError::ModelNotFound { .. }
            | CacheError::Remote { invalid: false, .. }
            | CacheError::Unauthorized { .. }
            | CacheError::DownloadFailed { offline: false, .. }
            | CacheError::Hub(cache_hf::Error::InvalidResponse { .. }) => ErrorKind::Remote,
            CacheError::DownloadFailed { offline: true, .. } => ErrorKind::NotCachedOffline,
            CacheError::ChecksumMismatch { .. }
            | CacheError::GivenDigestMismatch { .. }
            | CacheError::CorruptedOffline { .. }
            | CacheError::VocabMismatch { .. } => ErrorKind::Integrity,
            CacheError::DiskFull { .. } => ErrorKind::DiskFull,
            CacheError::Lockfile(e) => e.kind(),
            _ => ErrorKind::Other,
        }
    }

    /// One next step for the user.
    pub fn hint(&self) -> String {
        match self {
            CacheError::DirectoryNotAccessible { path, .. } => format!(
                "check that `{}` can be created and written by this user, or point `HF_HUB_CACHE`/`MODELCACHE_HOME` elsewhere",
                path.display()
            ),
            CacheError::ModelNotFound { suggestion, .. } | CacheError::DownloadFailed { suggestion, .. } => suggestion.clone(),
            CacheError::ChecksumMismatch { .. } => {
                "the corrupted copy was removed: run the same command again to download a fresh one; if it keeps happening run `modelcache verify --repair`"
                    .to_owned()
            }
            CacheError::GivenDigestMismatch { .. } => {
                "the given sha256 (`--sha256`) does not match what the URL serves: check the digest or the URL".to_owned()
            }
            CacheError::CorruptedOffline { .. } => {
                "the corrupted copy was removed: run `modelcache verify --repair` to check the rest of the cache, then fetch the file again with downloads on (drop `--offline`)".to_owned()
            }
            CacheError::VocabMismatch { model_id, .. } => format!(
                "check that `{model_id}` holds the tokenizer of this model (the expected size is usually the model config's `vocab_size`), and pin a revision with `{model_id}@<commit>`"
            ),
            CacheError::DiskFull { .. } => {
                "free disk space, e.g. with `modelcache prune --max-size <SIZE>`, lower `free_space_margin` (`MODELCACHE_FREE_SPACE_MARGIN`), or move the cache with `HF_HUB_CACHE`".to_owned()
            }
            CacheError::Unauthorized { token: Some(source), gated, .. } if source.is_some() => format!(
                "{}replace the token in {source} (or pass another with `--token`): it must be valid and have read access to the repository",
                if *gated { "request access on the repository's page with the token's account, or " } else { "" }
            ),
            CacheError::Unauthorized { gated: true, .. } => {
                "request access on the repository's page, then set `HF_TOKEN` (or pass `--token`)".to_owned()
            }
            CacheError::Unauthorized { .. } => "set `HF_TOKEN` (or pass `--token`) to a token with access to the repository".to_owned(),
            CacheError::InvalidInput { what, .. } => format!("check the {what}: `modelcache --help` shows the accepted forms"),
            CacheError::NotInCache { .. } => "`modelcache ls` lists what is cached".to_owned(),
            CacheError::Ambiguous { .. } => {
                "name one exactly, as listed here: a commit by more of its digits, an artifact by its name, URL or id, a repository as `models/ORG/NAME`"
                    .to_owned()
            }
            CacheError::IncompleteSnapshot { .. } => {
                "files were removed while the snapshot was being fetched: run the same command again".to_owned()
            }
            CacheError::InUse { .. } => "retry when the other process has finished, or stop it".to_owned(),
            CacheError::Config(e) => e.hint(),
            CacheError::StrategyUnavailable { .. } => {
                "build modelcache with the `downloads` feature, or pass `--strategy cache-only` (`MODELCACHE_STRATEGY=cache-only`)".to_owned()
            }
            CacheError::Io { .. } => "check the permissions and free space of the cache directories".to_owned(),
            CacheError::Store(e) => e.hint().unwrap_or_else(|| "run `modelcache verify` to check the cache".to_owned()),
            CacheError::Hub(e) => e.hint().unwrap_or_else(|| "run the command again with `-v` for details".to_owned()),
            CacheError::Lockfile(e) => e.hint(),
            CacheError::Remote { hint, .. } => hint.clone(),
        }
    }

    /// This error as it is reported while downloads are off: a corrupted cached file
    /// cannot be fetched again now, so the hint is a repair, not a retry.
    pub(crate) fn downloads_off(self) -> CacheError {
        match self {
            CacheError::ChecksumMismatch { model_id, expected, actual } => {
                CacheError::CorruptedOffline { model_id, expected, actual }
            }
            other => other,
        }
    }

    /// The suggestion of a miss while downloads are off: where files go, how to download.
    /// `reason` is [`DOWNLOADS_OFF`] for a plain miss; the manager replaces it with why
    /// downloads are off ([`CacheError::downloads_off_because`]).
    pub(crate) fn offline_miss(model_id: String, reason: String, place: &std::path::Path) -> CacheError {
        CacheError::DownloadFailed {
            model_id,
            reason,
            offline: true,
            suggestion: format!(
                "{ENABLE_DOWNLOADS} to fetch it, or place the files in huggingface_hub's layout under `{}`",
                place.display()
            ),
            source: None,
        }
    }

    /// A refusal, naming where the token sent came from; a repository "not found" while a
    /// token was sent (the Hub hides private repositories from tokens without access)
    /// says the token may be the cause.
    pub(crate) fn with_token_source(self, source: &TokenSource) -> CacheError {
        match self {
            CacheError::Unauthorized { model_id, gated, .. } => {
                CacheError::Unauthorized { model_id, gated, token: Some(source.clone()) }
            }
            CacheError::ModelNotFound { model_id, missing: Missing::Repo, reason, suggestion } if source.is_some() => {
                CacheError::ModelNotFound {
                    model_id,
                    missing: Missing::Repo,
                    reason,
                    suggestion: format!(
                        "{suggestion}; if it is private, the token from {source} was sent and may be rejected: replace it, or pass another with `--token`"
                    ),
                }
            }
            other => other,
        }
    }

    /// A miss while downloads are off, saying why they are off (`why`: "offline mode was
    /// chosen (`--offline`)") and how to turn them on (`undo`), never "check the network".
    pub(crate) fn downloads_off_because(self, why: &str, undo: &str) -> CacheError {
        match self {
            CacheError::DownloadFailed { model_id, reason, offline: true, suggestion, source } => CacheError::DownloadFailed {
                model_id,
                reason: if reason == DOWNLOADS_OFF { why.to_owned() } else { format!("{reason}; {why}") },
                offline: true,
                suggestion: suggestion.replacen(ENABLE_DOWNLOADS, undo, 1),
                source,
            },
            other => other,
        }
    }
}

impl From<cache_store::Error> for CacheError {
    fn from(e: cache_store::Error) -> Self {
        match e {
            cache_store::Error::DiskFull { needed, available, .. } => CacheError::DiskFull { needed, available },
            cache_store::Error::ChecksumMismatch { what, expected, actual } => {
                CacheError::ChecksumMismatch { model_id: what, expected, actual }
            }
            cache_store::Error::InUse { what } => CacheError::InUse { what },
            cache_store::Error::Core(e) => invalid_core(&e),
            cache_store::Error::InvalidRequest { reason } => {
                CacheError::InvalidInput { what: "request", value: String::new(), reason }
            }
            cache_store::Error::Io { op, path, source } => CacheError::Io { op, path: path.into_std_path_buf(), source },
            other => CacheError::Store(other),
        }
    }
}

fn invalid_core(e: &cache_core::Error) -> CacheError {
    let what = match e {
        cache_core::Error::InvalidRepoId { .. } | cache_core::Error::InvalidRepoType { .. } => "repo id",
        cache_core::Error::InvalidRevision { .. } => "revision",
        cache_core::Error::InvalidPath { .. } => "path",
        cache_core::Error::InvalidDigest { .. } => "digest",
        cache_core::Error::InvalidSize { .. } => "size",
        cache_core::Error::InvalidDuration { .. } => "duration",
        _ => "value",
    };
    CacheError::InvalidInput { what, value: String::new(), reason: e.to_string() }
}

impl From<cache_core::Error> for CacheError {
    fn from(e: cache_core::Error) -> Self {
        invalid_core(&e)
    }
}

/// Maps a resolver error about `model_id` (`place`: where files go for a cache-only setup).
pub(crate) fn from_hub(e: cache_hf::Error, model_id: &str, place: &std::path::Path) -> CacheError {
    use cache_hf::Error as H;
    match e {
        H::InvalidPattern { pattern, reason } => CacheError::InvalidInput { what: "file pattern", value: pattern, reason },
        e @ (H::RepoNotFound { .. } | H::RevisionNotFound { .. } | H::EntryNotFound { .. }) => CacheError::ModelNotFound {
            model_id: model_id.to_owned(),
            missing: match e {
                H::RepoNotFound { .. } => Missing::Repo,
                H::RevisionNotFound { .. } => Missing::Revision,
                _ => Missing::File,
            },
            reason: e.to_string(),
            suggestion: e.hint().unwrap_or_default(),
        },
        H::Unauthorized { gated, .. } => CacheError::Unauthorized { model_id: model_id.to_owned(), gated, token: None },
        H::NotCached { what } => {
            tracing::debug!(%what, "not cached");
            CacheError::offline_miss(model_id.to_owned(), DOWNLOADS_OFF.to_owned(), place)
        }
        e @ H::IncompleteSnapshot { .. } => CacheError::offline_miss(model_id.to_owned(), e.to_string(), place),
        H::Corrupted { path, expected, actual, .. } => {
            // A file request already names its path (`org/model@main/config.json`).
            let model_id =
                if model_id.ends_with(&format!("/{path}")) { model_id.to_owned() } else { format!("{model_id}/{path}") };
            CacheError::ChecksumMismatch { model_id, expected, actual }
        }
        H::GivenDigestMismatch { url, expected, actual } => CacheError::GivenDigestMismatch { url, expected, actual },
        H::Store(e) => e.into(),
        other => crate::network::from_hub_transfer(other, model_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_clis_exit_codes_and_every_error_has_a_hint() {
        let place = std::path::Path::new("/c");
        let offline = CacheError::offline_miss("a/b".into(), "not cached".into(), place);
        assert_eq!(offline.kind().exit_code(), 4);
        assert!(offline.hint().contains("enable downloads") && offline.hint().contains("/c"), "{}", offline.hint());
        let why = offline.downloads_off_because("offline mode was chosen (`--offline`)", "drop `--offline`");
        assert_eq!(why.to_string(), "`a/b` is not in the cache: not cached; offline mode was chosen (`--offline`)");
        assert!(why.hint().starts_with("drop `--offline` to fetch it, or place"), "{}", why.hint());
        assert!(!why.hint().contains("network"), "{}", why.hint());
        let e = CacheError::ChecksumMismatch { model_id: "a/b".into(), expected: "x".into(), actual: "y".into() };
        assert_eq!((e.kind().exit_code(), e.to_string().as_str()), (5, "checksum mismatch for `a/b`: expected `x`, got `y`"));
        assert!(e.hint().contains("again"));
        assert_eq!(CacheError::DiskFull { needed: 2, available: 1 }.kind().exit_code(), 6);
        let e: CacheError = "a/../b".parse::<cache_core::RepoId>().unwrap_err().into();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = from_hub(cache_hf::Error::NotCached { what: "x".into() }, "a/b", place);
        assert!(matches!(e, CacheError::DownloadFailed { offline: true, .. }));
        let repo = cache_core::Repo::model("a/b".parse().unwrap());
        let e = from_hub(cache_hf::Error::Unauthorized { repo, gated: true }, "a/b", place);
        assert_eq!(e.kind().exit_code(), 3);
        assert!(e.hint().contains("HF_TOKEN"));
        let e: CacheError = cache_store::Error::DiskFull { path: "/c".into(), needed: 5, available: 1 }.into();
        assert!(matches!(e, CacheError::DiskFull { needed: 5, available: 1 }));
        let given = cache_hf::Error::GivenDigestMismatch { url: "http://h/x".into(), expected: "aa".into(), actual: "bb".into() };
        let e = from_hub(given, "http://h/x", place);
        assert_eq!(e.kind().exit_code(), 5);
        assert!(e.hint().contains("check the digest or the URL") && !e.hint().contains("again"), "{}", e.hint());
        let e = from_hub(cache_hf::Error::InvalidResponse { url: "http://h".into(), reason: "r".into() }, "a/b", place);
        assert_eq!(e.kind().exit_code(), 3, "a server's wrong answer is a remote failure");
    }

    /// The settings a hint names (`` `snake_key` `` and `` `MODELCACHE_KEY=…` ``), each
    /// checked against the configuration's keys.
    fn named_settings(hint: &str) -> Vec<String> {
        hint.split('`')
            .skip(1)
            .step_by(2)
            .filter_map(|quoted| {
                let name = quoted.split('=').next().unwrap_or(quoted);
                if let Some(var) = name.strip_prefix("MODELCACHE_") {
                    Some(var.to_ascii_lowercase())
                } else if name.contains('_') && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    Some(name.to_owned())
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn hints_name_settings_and_options_that_exist() {
        let keys: Vec<&str> = crate::config::Key::ALL.iter().map(|k| k.name()).collect();
        let stalled = cache_store::Error::LockTimeout {
            lock_file: "/c/.locks/x.lock".into(),
            stalled: std::time::Duration::from_mins(5),
            holder: None,
        };
        #[cfg_attr(not(feature = "downloads"), expect(unused_mut, reason = "transfers exist only with downloads"))]
        let mut hints = vec![
            CacheError::Store(stalled).hint(),
            CacheError::StrategyUnavailable { strategy: "network".into(), reason: "r".into() }.hint(),
            CacheError::offline_miss("a/b".into(), "r".into(), std::path::Path::new("/c")).hint(),
            CacheError::DiskFull { needed: 2, available: 1 }.hint(),
        ];
        #[cfg(feature = "remote")]
        for e in [
            cache_remote::Error::InvalidSpec { spec: "x".into(), reason: "r".into() },
            cache_remote::Error::Skipped { url: "s3://b/p".into() },
            cache_remote::Error::Denied { url: "s3://b/p".into(), key: "k".into() },
        ] {
            hints.push(crate::team::remote_error(&e).hint());
        }
        #[cfg(feature = "downloads")]
        hints.push(
            crate::network::from_hub_transfer(
                cache_hf::Error::Fetch {
                    what: "download `x`".into(),
                    source: cache_fetch::Error::Timeout { url: "http://h/x".into(), retries: 0, source: "slow".into() },
                },
                "a/b",
            )
            .hint(),
        );
        assert!(hints[0].contains("`lock_stall_timeout`") && hints[0].contains("MODELCACHE_LOCK_STALL_TIMEOUT"), "{}", hints[0]);
        assert!(hints[1].contains("--strategy cache-only"), "{}", hints[1]);
        for hint in &hints {
            for name in named_settings(hint) {
                assert!(keys.contains(&name.as_str()), "`{name}` in {hint:?} is not a setting");
            }
        }
        #[cfg(feature = "downloads")]
        assert!(hints.last().is_some_and(|h| h.contains("`read_timeout`")), "{hints:?}");
    }

    #[test]
    fn a_corrupted_file_is_named_once() {
        let place = std::path::Path::new("/c");
        let corrupted = || cache_hf::Error::Corrupted {
            repo: cache_core::Repo::model("org/model".parse().unwrap()),
            path: "model.safetensors".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        };
        let e = from_hub(corrupted(), "org/model@main/model.safetensors", place);
        assert_eq!(e.to_string(), "checksum mismatch for `org/model@main/model.safetensors`: expected `aa`, got `bb`");
        let e = from_hub(corrupted(), "org/model@main", place);
        assert_eq!(e.to_string(), "checksum mismatch for `org/model@main/model.safetensors`: expected `aa`, got `bb`");
    }
}
