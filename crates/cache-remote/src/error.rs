//! Errors of the tier layer. Each names the tier (its URL, never a credential) and the
//! operation; [`Error::hint`] says what to do.

use std::time::Duration;

/// What went wrong with a tier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tier spec (`URL[:MODE]`) that cannot be used.
    #[error("invalid remote tier `{spec}`: {reason}")]
    InvalidSpec {
        /// The spec, redacted.
        spec: String,
        /// Why.
        reason: String,
    },
    /// The tier could not be set up (bad settings, missing directory).
    #[error("cannot open remote tier `{url}`: {reason}")]
    Open {
        /// The tier.
        url: String,
        /// Why.
        reason: String,
    },
    /// A call to the tier failed (unreachable, refused, server error).
    #[error("remote tier `{url}`: could not {op} `{key}`")]
    Call {
        /// The tier.
        url: String,
        /// `get`, `put`, `list`…
        op: &'static str,
        /// The object key.
        key: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A call took longer than its timeout (or a transfer stalled).
    #[error("remote tier `{url}`: {op} `{key}` timed out after {}s", after.as_secs())]
    Timeout {
        /// The tier.
        url: String,
        /// The operation.
        op: &'static str,
        /// The object key.
        key: String,
        /// The timeout.
        after: Duration,
    },
    /// The tier refused a write (credentials without write access): it was demoted to `ro`.
    #[error("remote tier `{url}` refused to store `{key}`: this process now only reads from it")]
    Denied {
        /// The tier.
        url: String,
        /// The object key.
        key: String,
    },
    /// The tier's marker names a layout this version does not know.
    #[error("remote tier `{url}` has an unknown format ({found})")]
    UnknownFormat {
        /// The tier.
        url: String,
        /// What its `v1/TIER.json` says.
        found: String,
    },
    /// The tier was skipped: it failed repeatedly just before (circuit breaker open).
    #[error("remote tier `{url}` is skipped for a while after repeated failures")]
    Skipped {
        /// The tier.
        url: String,
    },
    /// A write to a tier this process may not write to.
    #[error("remote tier `{url}` is `{mode}`: nothing is written to it")]
    NotWritable {
        /// The tier.
        url: String,
        /// Its mode.
        mode: crate::Mode,
    },
    /// Reading a local file to push failed.
    #[error("failed to {op} `{path}`")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// One next step for the user.
    pub fn hint(&self) -> String {
        match self {
            Error::InvalidSpec { .. } => {
                "write a tier as `s3://bucket/prefix[:ro|rw|wo]`, `gs://bucket/prefix`, `az://container/prefix` or `file:///path` (`--remote`, `MODELCACHE_REMOTE` or `[[remote]]` in config.toml)".to_owned()
            }
            Error::Open { .. } | Error::UnknownFormat { .. } => {
                "check the tier's URL with `modelcache config`, or run without it: `--no-remote`".to_owned()
            }
            Error::Call { .. } | Error::Timeout { .. } | Error::Skipped { .. } => {
                "check the network, the endpoint (`AWS_ENDPOINT_URL`, `GOOGLE_BASE_URL`, `AZURE_STORAGE_ENDPOINT`) and the credentials; gets still work from the Hub (`--no-remote` skips the tier)".to_owned()
            }
            Error::Denied { .. } | Error::NotWritable { .. } => {
                "give the credentials (`AWS_ACCESS_KEY_ID`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_KEY`…) write access, or use the tier as `ro`".to_owned()
            }
            Error::Io { .. } => "run `modelcache verify --repair`".to_owned(),
        }
    }
}
