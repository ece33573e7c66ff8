//! The resolver's errors: what the Hub said, mapped to what the user can do about it.

/// What went wrong while resolving or fetching from the Hub.
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
}

impl Error {
    /// The user's next step.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidPattern { .. } => Some("patterns are globs such as `*.json`, `onnx/` or `model-[0-9].bin`".to_owned()),
        }
    }
}
