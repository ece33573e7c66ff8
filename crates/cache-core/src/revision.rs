//! Revisions: a branch or tag name, or a 40-hex commit hash.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result, Shown};

/// The longest revision name accepted (a ref name is a file path under `refs/`).
pub const MAX_REVISION_LEN: usize = 255;

/// A full commit hash: 40 lowercase hex digits, as the Hub reports in `X-Repo-Commit`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitHash([u8; 40]);

impl CommitHash {
    /// Parses 40 lowercase hex digits.
    pub fn new(value: &str) -> Result<Self> {
        let bytes = value.as_bytes();
        if bytes.len() == 40 && bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            let mut out = [0u8; 40];
            out.copy_from_slice(bytes);
            Ok(CommitHash(out))
        } else {
            Err(Error::InvalidRevision { value: Shown::new(value), reason: "a commit hash is 40 lowercase hex digits" })
        }
    }

    /// The hash as 40 hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for CommitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CommitHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitHash({})", self.as_str())
    }
}

impl FromStr for CommitHash {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// A revision as a user gives it: a branch or tag (`main`, `v1.0`, `refs/pr/1`) or a
/// commit hash. A 40-lowercase-hex string is a commit, as on the Hub.
///
/// Names follow git's `check-ref-format` rules, which also make them safe as paths under
/// `refs/`: no `..`, no control characters or spaces, none of `~ ^ : ? * [ \`, no `@{`, no
/// leading or trailing `/`, no empty component, no component starting with `.` or ending
/// with `.lock`, not ending with `.`, at most 255 bytes.
///
/// ```
/// use cache_core::Revision;
/// assert!(Revision::new("main").unwrap().commit().is_none());
/// assert!(Revision::new(&"a".repeat(40)).unwrap().commit().is_some());
/// assert!(Revision::new("../../etc").is_err());
/// ```
#[derive(Clone)]
pub struct Revision {
    name: String,
    /// Set when `name` is a commit hash (parsed once: lookups ask often).
    commit: Option<CommitHash>,
}

impl PartialEq for Revision {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Revision {}
impl std::hash::Hash for Revision {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}
impl PartialOrd for Revision {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Revision {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name.cmp(&other.name)
    }
}

impl Revision {
    /// The Hub's default branch.
    pub fn main() -> Self {
        Revision { name: "main".to_owned(), commit: None }
    }

    /// Parses and validates a revision.
    pub fn new(value: &str) -> Result<Self> {
        let err = |reason| Error::InvalidRevision { value: Shown::new(value), reason };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > MAX_REVISION_LEN {
            return Err(err("it is longer than 255 bytes"));
        }
        if value.bytes().any(|b| b.is_ascii_control()) {
            return Err(err("it contains a control character"));
        }
        if value.contains("..") {
            return Err(err("it contains `..`"));
        }
        if value.starts_with('/') {
            return Err(err("it starts with `/`"));
        }
        if value.ends_with('/') {
            return Err(err("it ends with `/`"));
        }
        if value.ends_with('.') {
            return Err(err("it ends with `.`"));
        }
        if value.contains("@{") || value == "@" {
            return Err(err("it contains `@{` or is `@`"));
        }
        if let Some(c) = value.chars().find(|c| matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')) {
            return Err(match c {
                ' ' => err("it contains a space"),
                '\\' => err("it contains a backslash"),
                _ => err("it contains one of `~ ^ : ? * [`"),
            });
        }
        for component in value.split('/') {
            if component.is_empty() {
                return Err(err("it contains `//`"));
            }
            if component.starts_with('.') {
                return Err(err("a component starts with `.`"));
            }
            if component.ends_with(".lock") {
                return Err(err("a component ends with `.lock`"));
            }
        }
        Ok(Revision { name: value.to_owned(), commit: CommitHash::new(value).ok() })
    }

    /// The revision as written.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The commit, when the revision is a commit hash.
    pub fn commit(&self) -> Option<CommitHash> {
        self.commit
    }
}

impl Default for Revision {
    fn default() -> Self {
        Revision::main()
    }
}

impl From<CommitHash> for Revision {
    fn from(c: CommitHash) -> Self {
        Revision { name: c.as_str().to_owned(), commit: Some(c) }
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl fmt::Debug for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Revision({:?})", self.name)
    }
}

impl FromStr for Revision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
string_serde!(Revision);
string_serde!(CommitHash);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn accepts_branches_tags_prs_and_commits() {
        for ok in ["main", "v1.0", "refs/pr/1", "release-2024_01", "feature/x.y", SHA] {
            assert_eq!(Revision::new(ok).unwrap().as_str(), ok);
        }
        assert_eq!(Revision::new(SHA).unwrap().commit().unwrap().as_str(), SHA);
        assert!(Revision::new(&SHA.to_uppercase()).unwrap().commit().is_none());
        assert!(Revision::new("main").unwrap().commit().is_none());
    }

    #[test]
    fn rejects_names_that_git_or_the_filesystem_would_not_take() {
        let cases = [
            ("", "empty"),
            ("..", "`..`"),
            ("a/../b", "`..`"),
            ("/main", "starts with `/`"),
            ("main/", "ends with `/`"),
            ("a//b", "`//`"),
            ("ma\nin", "control"),
            ("ma\0in", "control"),
            ("a b", "space"),
            ("a\\b", "backslash"),
            ("a:b", "`~ ^ : ? * [`"),
            (".hidden", "starts with `.`"),
            ("x/.y", "starts with `.`"),
            ("x.lock", "`.lock`"),
            ("x.", "ends with `.`"),
            ("a@{1}", "`@{`"),
        ];
        for (bad, why) in cases {
            let msg = Revision::new(bad).expect_err(bad).to_string();
            assert!(msg.contains(why), "{bad:?}: {msg}");
        }
        assert!(Revision::new(&"a".repeat(256)).is_err());
        assert!(CommitHash::new("main").is_err());
        assert!(CommitHash::new(&SHA.to_uppercase()).is_err());
    }

    #[test]
    fn serde_validates() {
        let r: Revision = serde_json::from_str("\"refs/pr/3\"").unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"refs/pr/3\"");
        assert!(serde_json::from_str::<Revision>("\"../x\"").is_err());
        assert!(serde_json::from_str::<CommitHash>("\"abc\"").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_accepted_revisions_round_trip(s in "\\PC*") {
            if let Ok(r) = Revision::new(&s) {
                prop_assert_eq!(r.to_string(), s.clone());
                prop_assert_eq!(r.as_str().parse::<Revision>().unwrap(), r.clone());
                // Safe as a relative path under `refs/`.
                prop_assert!(!s.starts_with('/'));
                prop_assert!(s.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
            }
        }

        #[test]
        fn commit_hashes_round_trip(s in "[0-9a-f]{40}") {
            let r = Revision::new(&s).unwrap();
            prop_assert_eq!(Revision::from(r.commit().unwrap()), r);
        }
    }
}
