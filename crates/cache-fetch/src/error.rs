//! The crate's error type: what failed, with the URL as it may be shown (query and user
//! info stripped: signed CDN URLs and `user:password@` carry credentials; see
//! [`cache_core::redact_url`]) and a hint for the user's next step.

use std::io;

/// A failed request or transfer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error status that is not worth retrying, or a
    /// retryable one after every retry.
    #[error("`{url}` answered HTTP {status}{}", code.as_ref().map(|c| format!(" (`{c}`)")).unwrap_or_default())]
    Http {
        /// The status code.
        status: u16,
        /// The Hub's `X-Error-Code` (`RepoNotFound`, `EntryNotFound`, `RevisionNotFound`,
        /// `GatedRepo`), when sent.
        code: Option<String>,
        /// The Hub's `X-Error-Message`, when sent.
        message: Option<String>,
        /// The URL, without its query or user info.
        url: String,
    },
    /// The server stopped answering for longer than the configured timeout.
    #[error("request to `{url}` timed out after {retries} retries")]
    Timeout {
        /// The URL, without its query or user info.
        url: String,
        /// Retries made.
        retries: u32,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The whole download took longer than
    /// [`FetchConfig::download_timeout`](crate::FetchConfig::download_timeout).
    #[error("download from `{url}` did not finish within {}", cache_core::format_duration(*limit))]
    DownloadTimeout {
        /// The URL, without its query or user info.
        url: String,
        /// The limit.
        limit: std::time::Duration,
        /// Bytes written by then at the position the transfer had reached (they are kept
        /// for a resume).
        received: u64,
    },
    /// No connection could be made.
    #[error("could not connect to `{url}` after {retries} retries")]
    Connect {
        /// The URL, without its query or user info.
        url: String,
        /// Retries made.
        retries: u32,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The body kept breaking off and the retries ran out.
    #[error("transfer from `{url}` was interrupted at byte {received} after {retries} retries")]
    Interrupted {
        /// The URL, without its query or user info.
        url: String,
        /// Bytes safely written (the next attempt resumes from there).
        received: u64,
        /// Retries made.
        retries: u32,
        /// The last error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The content does not match the expected etag.
    #[error("content from `{url}` has digest `{actual}`, expected `{expected}`")]
    ChecksumMismatch {
        /// The URL, without its query or user info.
        url: String,
        /// The expected digest (the etag).
        expected: String,
        /// The digest of what was received.
        actual: String,
    },
    /// The content has a different size than announced.
    #[error("content from `{url}` has {actual} bytes, expected {expected}")]
    SizeMismatch {
        /// The URL, without its query or user info.
        url: String,
        /// The announced size.
        expected: u64,
        /// The size received.
        actual: u64,
    },
    /// The disk is full.
    #[error("no space left to write the download ({needed} more bytes needed{})", available.map(|a| format!(", {a} available")).unwrap_or_default())]
    DiskFull {
        /// Bytes still to write.
        needed: u64,
        /// Free bytes, when the sink knows.
        available: Option<u64>,
        /// The write error.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the sink failed.
    #[error("failed to {action} the download file")]
    Io {
        /// `write`, `read back`, `truncate`, …
        action: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The server's answer made no sense (bad `Content-Range`, body too large, …).
    #[error("unexpected response from `{url}`: {reason}")]
    Protocol {
        /// The URL, without its query or user info.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The URL could not be parsed or has an unsupported scheme.
    #[error("invalid URL `{url}`")]
    InvalidUrl {
        /// The URL as given.
        url: String,
    },
    /// The HTTP client could not be built (TLS set-up).
    #[error("could not set up the HTTP client")]
    Client {
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// One next step for the user.
    pub fn hint(&self) -> Option<String> {
        let s = match self {
            Error::Http { status: 401, code, .. } if code.as_deref() == Some("GatedRepo") => {
                "this repository is gated: request access on its page, then set `HF_TOKEN`"
            }
            Error::Http { status: 401, .. } => {
                "check the repo id; if the repository is private, set `HF_TOKEN` (or pass `--token`)"
            }
            Error::Http { status: 403, .. } => {
                "your token lacks access: request access on the repository page, or set `HF_TOKEN` to another token"
            }
            Error::Http { status: 404, code, .. } => match code.as_deref() {
                Some("RevisionNotFound") => "check the revision (branch, tag or commit)",
                Some("EntryNotFound") => "check the file name: it is not in that revision",
                _ => "check the repo id and the repo type (`--repo-type`), or set `HF_TOKEN` for a private repo",
            },
            Error::Http { status: 429, .. } => "the server is rate limiting: wait a minute and retry, or set `HF_TOKEN`",
            Error::Http { status, .. } if *status >= 500 => "the server failed: retry later",
            Error::Http { .. } => return None,
            Error::Timeout { .. } => {
                "the server is not answering: check the network or `HF_ENDPOINT`, or raise `read_timeout` (`MODELCACHE_READ_TIMEOUT=2m`)"
            }
            Error::DownloadTimeout { .. } => {
                "the transfer is slower than the download timeout allows: raise `download_timeout`, or run the command again (it resumes where it stopped)"
            }
            Error::Connect { .. } => "check the network or `HF_ENDPOINT`, or pass `--offline` to use the cache",
            Error::Interrupted { .. } => "run the command again: it resumes where it stopped",
            Error::ChecksumMismatch { .. } | Error::SizeMismatch { .. } => {
                "the download was corrupted in transit or the file changed on the server: run the command again"
            }
            Error::DiskFull { .. } => "free disk space (e.g. `modelcache prune --max-size …`) and run the command again",
            Error::Io { .. } => "check the permissions and free space of the cache directory",
            Error::Protocol { .. } => "the server or a proxy in between misbehaves: check `HF_ENDPOINT` and any proxy settings",
            Error::InvalidUrl { .. } => "check `HF_ENDPOINT` and the URL",
            Error::Client { .. } => "this is a bug: please report it",
        };
        Some(s.to_owned())
    }

    /// The HTTP status, for [`Error::Http`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether a later attempt may succeed without any change (network trouble, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Http { status, .. } => crate::retry::retryable_status(*status),
            Error::Timeout { .. } | Error::Connect { .. } | Error::Interrupted { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn io(action: &'static str, source: io::Error) -> Error {
        Error::Io { action, source }
    }
}

/// The URL as it may be shown: without user info, query or fragment (credentials live
/// there).
pub(crate) fn redact(url: &str) -> String {
    cache_core::redact_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_hint_at_a_next_step() {
        let e =
            Error::Http { status: 404, code: Some("EntryNotFound".into()), message: None, url: redact("http://h/x?sig=secret") };
        assert_eq!(e.to_string(), "`http://h/x` answered HTTP 404 (`EntryNotFound`)");
        assert!(e.hint().unwrap().contains("file name"));
        assert!(!e.is_transient());
        let e = Error::Connect { url: "http://h".into(), retries: 2, source: "refused".into() };
        assert!(e.hint().unwrap().contains("HF_ENDPOINT"));
        assert!(e.is_transient());
        let e = Error::DiskFull { needed: 10, available: Some(3), source: io::ErrorKind::StorageFull.into() };
        assert_eq!(e.to_string(), "no space left to write the download (10 more bytes needed, 3 available)");
        assert!(Error::Http { status: 503, code: None, message: None, url: String::new() }.is_transient());
    }
}
