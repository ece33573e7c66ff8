//! `RepoPath`: a relative file path inside a repository that can never escape the folder
//! it is joined to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result, Shown};

/// The longest file or folder name accepted (the common filesystem limit).
pub const MAX_COMPONENT_LEN: usize = 255;
/// The longest whole path accepted (Linux's `PATH_MAX`).
pub const MAX_PATH_LEN: usize = 4096;

/// A file path inside a repository, such as `config.json` or `onnx/model.onnx`.
///
/// Always relative and `/`-separated, with no empty, `.` or `..` component, no NUL,
/// backslash or other control character, each name at most 255 bytes and the whole at most
/// 4096: joined to a directory, it stays inside it.
///
/// ```
/// use cache_core::RepoPath;
/// let p = RepoPath::new("onnx/model.onnx").unwrap();
/// assert_eq!(p.components().collect::<Vec<_>>(), ["onnx", "model.onnx"]);
/// assert!(RepoPath::new("../../etc/passwd").is_err());
/// assert!(RepoPath::new("/etc/passwd").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoPath(String);

impl RepoPath {
    /// Parses and validates a path.
    pub fn new(value: &str) -> Result<Self> {
        let err = |reason| Error::InvalidPath { value: Shown::new(value), reason };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > MAX_PATH_LEN {
            return Err(err("it is longer than 4096 bytes"));
        }
        if value.starts_with('/') {
            return Err(err("it is absolute (starts with `/`)"));
        }
        if value.contains('\0') {
            return Err(err("it contains a NUL byte"));
        }
        if value.contains('\\') {
            return Err(err("it contains a backslash"));
        }
        if value.chars().any(char::is_control) {
            return Err(err("it contains a control character"));
        }
        for component in value.split('/') {
            match component {
                "" => return Err(err("it has an empty component (`//` or a trailing `/`)")),
                "." => return Err(err("it has a `.` component")),
                ".." => return Err(err("it has a `..` component")),
                c if c.len() > MAX_COMPONENT_LEN => return Err(err("a component is longer than 255 bytes")),
                _ => {}
            }
        }
        Ok(RepoPath(value.to_owned()))
    }

    /// The path as written, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's components (folders, then the file name).
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The file name: the last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The number of folders above the file (0 for `config.json`).
    pub fn depth(&self) -> usize {
        self.0.bytes().filter(|&b| b == b'/').count()
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({:?})", self.0)
    }
}

impl FromStr for RepoPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for RepoPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for RepoPath {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RepoPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RepoPath::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    #[test]
    fn accepts_ordinary_repo_files() {
        for ok in ["config.json", "onnx/model.onnx", ".gitattributes", "a/b/c/d.bin", "weird name (1).txt", "..hidden", "x..y"] {
            assert_eq!(RepoPath::new(ok).unwrap().as_str(), ok);
        }
        let p = RepoPath::new("a/b/c.txt").unwrap();
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(p.depth(), 2);
    }

    #[test]
    fn rejects_every_escape_and_malformed_path() {
        let cases = [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../../etc/passwd", "`..`"),
            ("a/../../b", "`..`"),
            ("a/..", "`..`"),
            ("./a", "`.` component"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a\0b", "NUL"),
            ("a\\..\\b", "backslash"),
            ("a\nb", "control"),
        ];
        for (bad, why) in cases {
            let msg = RepoPath::new(bad).expect_err(bad).to_string();
            assert!(msg.contains(why), "{bad:?}: {msg}");
        }
        assert!(RepoPath::new(&"x".repeat(256)).is_err());
        assert!(RepoPath::new(&"x".repeat(255)).is_ok());
        assert!(RepoPath::new(&vec!["x"; 3000].join("/")).is_err());
    }

    fn stays_inside(p: &str) -> bool {
        let mut depth = 0i32;
        for c in Path::new(p).components() {
            match c {
                Component::Normal(_) => depth += 1,
                Component::CurDir => {}
                Component::ParentDir => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                Component::RootDir | Component::Prefix(_) => return false,
            }
        }
        true
    }

    proptest! {
        #[test]
        fn parser_never_panics_and_round_trips(s in "\\PC*") {
            if let Ok(p) = RepoPath::new(&s) {
                prop_assert_eq!(p.to_string(), s.clone());
                prop_assert_eq!(p.as_str().parse::<RepoPath>().unwrap(), p);
            }
        }

        #[test]
        fn rejects_every_path_that_could_escape(s in "(\\.\\.|\\.|/|a|b\\\\|\\x00){0,8}") {
            if RepoPath::new(&s).is_ok() {
                prop_assert!(stays_inside(&s), "{:?} escapes", s);
                prop_assert!(!s.contains('\0') && !s.contains('\\'));
                prop_assert!(Path::new(&s).components().all(|c| matches!(c, Component::Normal(_))));
            }
        }
    }
}
