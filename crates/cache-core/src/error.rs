//! The crate's one error type: every parser and validator reports the bad value and why.

use std::fmt;

/// What went wrong while parsing or validating a value. Messages name the bad value
/// (escaped and shortened, so hostile input cannot garble a terminal) and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A repository id such as `org/name` broke one of the Hub's rules.
    #[error("invalid repo id {value}: {reason}")]
    InvalidRepoId {
        /// The rejected input, escaped and shortened.
        value: Shown,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A repository type other than model, dataset or space.
    #[error("invalid repo type {value}: expected `model`, `dataset` or `space`")]
    InvalidRepoType {
        /// The rejected input.
        value: Shown,
    },
    /// A revision (branch, tag or commit) broke one of git's ref-name rules.
    #[error("invalid revision {value}: {reason}")]
    InvalidRevision {
        /// The rejected input.
        value: Shown,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A path inside a repository that could escape a directory or is malformed.
    #[error("invalid path in repo {value}: {reason}")]
    InvalidPath {
        /// The rejected input.
        value: Shown,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A cache folder name that is not `models--org--name` (or datasets/spaces).
    #[error("invalid repo folder name {value}: {reason}")]
    InvalidFolderName {
        /// The rejected input.
        value: Shown,
        /// The rule it broke.
        reason: &'static str,
    },
    /// A digest or etag that is not the expected number of hex digits.
    #[error("invalid {kind} digest {value}: expected {expected} hex digits")]
    InvalidDigest {
        /// Which digest (`sha256`, `git-sha1`, `blake3`, `etag`).
        kind: &'static str,
        /// The rejected input.
        value: Shown,
        /// How many hex digits that digest has (e.g. `64`, or `40 or 64`).
        expected: &'static str,
    },
    /// A size such as `10GiB` that could not be read.
    #[error("invalid size {value}: {reason} (expected e.g. `500MiB`, `10GiB`, `2TB`, `1024`)")]
    InvalidSize {
        /// The rejected input.
        value: Shown,
        /// What was wrong.
        reason: &'static str,
    },
    /// A duration such as `7d` that could not be read.
    #[error("invalid duration {value}: {reason} (expected e.g. `90s`, `30m`, `12h`, `7d`, `2w`, `1d12h`)")]
    InvalidDuration {
        /// The rejected input.
        value: Shown,
        /// What was wrong.
        reason: &'static str,
    },
    /// An eviction policy value outside its allowed range.
    #[error("invalid eviction policy: {reason}")]
    InvalidPolicy {
        /// What was wrong.
        reason: &'static str,
    },
}

/// A rejected input as it appears in an error message: Rust-escaped (control characters
/// and NUL become visible escapes) and cut to 80 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    const MAX_CHARS: usize = 80;

    /// Captures `value` for an error message.
    pub fn new(value: &str) -> Self {
        let total = value.chars().count();
        let mut s: String = value.chars().take(Self::MAX_CHARS).collect();
        if total > Self::MAX_CHARS {
            s.push('…');
            s.push_str(" (");
            s.push_str(&total.to_string());
            s.push_str(" chars)");
        }
        Shown(s)
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`")?;
        for c in self.0.chars() {
            if c == '`' {
                f.write_str("\\`")?;
            } else if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        f.write_str("`")
    }
}

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_escapes_control_characters_and_truncates() {
        let e = Error::InvalidPath { value: Shown::new("a\0b\n`"), reason: "x" };
        assert_eq!(e.to_string(), "invalid path in repo `a\\u{0}b\\n\\``: x");
        let long = "x".repeat(5000);
        let shown = Shown::new(&long).to_string();
        assert!(shown.len() < 120, "{shown}");
        assert!(shown.contains("5000 chars"));
    }
}
