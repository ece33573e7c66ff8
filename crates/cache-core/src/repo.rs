//! Repository identifiers: `RepoId` (`org/name`), `RepoType` and their pair `Repo`, whose
//! cache folder name (`models--org--name`) round-trips.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result, Shown};

/// The longest namespace or name the Hub accepts.
pub const MAX_REPO_NAME_LEN: usize = 96;

/// A Hub repository id: `name` or `namespace/name`.
///
/// Follows the Hub's rules (as `huggingface_hub.utils.validate_repo_id` enforces them):
/// each part is 1–96 of `A-Z a-z 0-9 _ - .`, starts and ends with a letter, digit or `_`;
/// `--` and `..` never appear; the id does not end in `.git`.
///
/// ```
/// use cache_core::RepoId;
/// let id: RepoId = "google-bert/bert-base-uncased".parse().unwrap();
/// assert_eq!(id.namespace(), Some("google-bert"));
/// assert_eq!(id.name(), "bert-base-uncased");
/// assert!("../etc/passwd".parse::<RepoId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoId {
    full: String,
    slash: Option<usize>,
}

impl RepoId {
    /// Parses and validates a repo id.
    pub fn new(value: &str) -> Result<Self> {
        let err = |reason| Error::InvalidRepoId { value: Shown::new(value), reason };
        if value.is_empty() {
            return Err(err("it is empty"));
        }
        if value.len() > 2 * MAX_REPO_NAME_LEN + 1 {
            return Err(err("it is longer than the Hub allows (96 characters per part)"));
        }
        let mut parts = value.split('/');
        let first = parts.next().unwrap_or_default();
        let second = parts.next();
        if parts.next().is_some() {
            return Err(err("it has more than one `/` (expected `name` or `namespace/name`)"));
        }
        if value.contains("--") {
            return Err(err("it contains `--`, which the Hub forbids"));
        }
        if value.contains("..") {
            return Err(err("it contains `..`, which the Hub forbids"));
        }
        if value.ends_with(".git") {
            return Err(err("it ends with `.git`, which the Hub forbids"));
        }
        let check = |part: &str, what: &'static str| -> Result<()> {
            if part.is_empty() {
                return Err(err(what));
            }
            if part.len() > MAX_REPO_NAME_LEN {
                return Err(err("a part is longer than 96 characters"));
            }
            if !part.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')) {
                return Err(err("only letters, digits, `_`, `-` and `.` are allowed"));
            }
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let bytes = part.as_bytes();
            if !word(bytes[0]) || !word(bytes[bytes.len() - 1]) {
                return Err(err("each part must start and end with a letter, digit or `_`"));
            }
            Ok(())
        };
        match second {
            None => {
                check(first, "it is empty")?;
                Ok(RepoId { full: value.to_owned(), slash: None })
            }
            Some(name) => {
                check(first, "the namespace before `/` is empty")?;
                check(name, "the name after `/` is empty")?;
                Ok(RepoId { full: value.to_owned(), slash: Some(first.len()) })
            }
        }
    }

    /// The id as written: `org/name` or `name`.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The namespace (user or organisation), if the id has one.
    pub fn namespace(&self) -> Option<&str> {
        self.slash.map(|i| &self.full[..i])
    }

    /// The repository name without its namespace.
    pub fn name(&self) -> &str {
        self.slash.map_or(self.full.as_str(), |i| &self.full[i + 1..])
    }
}

impl fmt::Display for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for RepoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoId({:?})", self.full)
    }
}

impl FromStr for RepoId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl AsRef<str> for RepoId {
    fn as_ref(&self) -> &str {
        &self.full
    }
}

/// The three kinds of Hub repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    /// A model repository (the default).
    #[default]
    Model,
    /// A dataset repository.
    Dataset,
    /// A Space (an app).
    Space,
}

impl RepoType {
    /// All repository types, in folder order.
    pub const ALL: [RepoType; 3] = [RepoType::Model, RepoType::Dataset, RepoType::Space];

    /// The singular name: `model`, `dataset`, `space`.
    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
        }
    }

    /// The plural used in cache folder names and API paths: `models`, `datasets`, `spaces`.
    pub fn plural(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
        }
    }

    /// The prefix of `resolve/` URLs on the Hub: empty for models, `datasets/`, `spaces/`.
    pub fn url_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "",
            RepoType::Dataset => "datasets/",
            RepoType::Space => "spaces/",
        }
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RepoType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "model" | "models" => Ok(RepoType::Model),
            "dataset" | "datasets" => Ok(RepoType::Dataset),
            "space" | "spaces" => Ok(RepoType::Space),
            _ => Err(Error::InvalidRepoType { value: Shown::new(s) }),
        }
    }
}

/// A repository: its type and id. Its cache folder is `models--org--name` (or
/// `datasets--…`, `spaces--…`), exactly as `huggingface_hub` names it.
///
/// ```
/// use cache_core::{Repo, RepoType};
/// let repo = Repo::model("openai/whisper-tiny".parse().unwrap());
/// assert_eq!(repo.folder_name(), "models--openai--whisper-tiny");
/// assert_eq!(Repo::from_folder_name("models--openai--whisper-tiny").unwrap(), repo);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Repo {
    /// Model, dataset or space.
    #[serde(rename = "type")]
    pub repo_type: RepoType,
    /// The repository id.
    pub id: RepoId,
}

impl Repo {
    /// A repository of the given type.
    pub fn new(repo_type: RepoType, id: RepoId) -> Self {
        Repo { repo_type, id }
    }

    /// A model repository.
    pub fn model(id: RepoId) -> Self {
        Repo::new(RepoType::Model, id)
    }

    /// The cache folder name: `models--org--name`.
    pub fn folder_name(&self) -> String {
        let mut s = String::with_capacity(self.id.as_str().len() + 12);
        self.push_folder_name(&mut s);
        s
    }

    /// Appends [`Repo::folder_name`] to `s` (for a caller building a longer path).
    pub fn push_folder_name(&self, s: &mut String) {
        s.push_str(self.repo_type.plural());
        for part in self.id.as_str().split('/') {
            s.push_str("--");
            s.push_str(part);
        }
    }

    /// Parses a cache folder name back into a repository.
    pub fn from_folder_name(folder: &str) -> Result<Self> {
        let err = |reason| Error::InvalidFolderName { value: Shown::new(folder), reason };
        let mut parts = folder.split("--");
        let kind = parts.next().unwrap_or_default();
        let repo_type = match kind {
            "models" => RepoType::Model,
            "datasets" => RepoType::Dataset,
            "spaces" => RepoType::Space,
            _ => return Err(err("expected it to start with `models--`, `datasets--` or `spaces--`")),
        };
        let rest: Vec<&str> = parts.collect();
        let id = match rest.as_slice() {
            [name] => (*name).to_owned(),
            [namespace, name] => format!("{namespace}/{name}"),
            _ => return Err(err("expected `<type>--<name>` or `<type>--<namespace>--<name>`")),
        };
        let id = RepoId::new(&id).map_err(|_| err("the repo id inside it is not valid"))?;
        Ok(Repo { repo_type, id })
    }
}

impl fmt::Display for Repo {
    /// `org/name` for models, `datasets/org/name` and `spaces/org/name` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.repo_type.url_prefix(), self.id)
    }
}

impl Serialize for RepoId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for RepoId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RepoId::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_hub_style_ids() {
        for ok in ["gpt2", "bert-base-uncased", "google-bert/bert-base-uncased", "a/b", "_x/y_", "Org.1/model-v1.5_final"] {
            let id = RepoId::new(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(id.to_string(), ok);
        }
        assert_eq!(RepoId::new(&"a".repeat(96)).unwrap().name().len(), 96);
    }

    #[test]
    fn rejects_bad_ids_with_the_rule_broken() {
        let cases = [
            ("", "empty"),
            ("a/b/c", "more than one"),
            ("../etc", "`..`"),
            ("a--b", "`--`"),
            ("org/model.git", "`.git`"),
            ("/name", "namespace"),
            ("org/", "name after"),
            ("-org/name", "start and end"),
            ("org/name-", "start and end"),
            ("org/na me", "only letters"),
            ("org/na\0me", "only letters"),
            ("org/naïve", "only letters"),
        ];
        for (bad, why) in cases {
            let err = RepoId::new(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
        assert!(RepoId::new(&"a".repeat(97)).is_err());
        assert!(RepoId::new(&format!("{}/b", "a".repeat(97))).is_err());
    }

    #[test]
    fn folder_names_match_huggingface_hub() {
        let cases = [
            (RepoType::Model, "gpt2", "models--gpt2"),
            (RepoType::Model, "google-bert/bert-base-uncased", "models--google-bert--bert-base-uncased"),
            (RepoType::Dataset, "squad", "datasets--squad"),
            (RepoType::Space, "org/demo", "spaces--org--demo"),
        ];
        for (t, id, folder) in cases {
            let repo = Repo::new(t, id.parse().unwrap());
            assert_eq!(repo.folder_name(), folder);
            assert_eq!(Repo::from_folder_name(folder).unwrap(), repo);
        }
        for bad in ["models", "models--", "models--a--b--c", "model--a", "models--..", "blobs", ".locks"] {
            assert!(Repo::from_folder_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_types_parse_and_display() {
        for t in RepoType::ALL {
            assert_eq!(t.as_str().parse::<RepoType>().unwrap(), t);
            assert_eq!(t.plural().parse::<RepoType>().unwrap(), t);
        }
        assert!("Model ".parse::<RepoType>().is_err());
        assert_eq!(serde_json::to_string(&RepoType::Dataset).unwrap(), "\"dataset\"");
        let repo = Repo::new(RepoType::Dataset, "a/b".parse().unwrap());
        assert_eq!(repo.to_string(), "datasets/a/b");
        let json = serde_json::to_string(&repo).unwrap();
        assert_eq!(json, r#"{"type":"dataset","id":"a/b"}"#);
        assert_eq!(serde_json::from_str::<Repo>(&json).unwrap(), repo);
        assert!(serde_json::from_str::<Repo>(r#"{"type":"model","id":"../x"}"#).is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC*") {
            let _ = RepoId::new(&s);
            let _ = Repo::from_folder_name(&s);
        }

        #[test]
        fn valid_ids_round_trip_through_display_and_folder(
            ns in proptest::option::of("[A-Za-z0-9_]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9_])?"),
            name in "[A-Za-z0-9_]([A-Za-z0-9_.-]{0,20}[A-Za-z0-9_])?",
            t in prop::sample::select(RepoType::ALL.to_vec()),
        ) {
            let s = match &ns { Some(ns) => format!("{ns}/{name}"), None => name.clone() };
            if let Ok(id) = RepoId::new(&s) {
                prop_assert_eq!(id.to_string(), s.clone());
                prop_assert_eq!(id.name(), name.as_str());
                let repo = Repo::new(t, id);
                prop_assert_eq!(Repo::from_folder_name(&repo.folder_name()).unwrap(), repo);
            } else {
                prop_assert!(s.contains("--") || s.contains("..") || s.ends_with(".git"), "{}", s);
            }
        }

        #[test]
        fn accepted_ids_are_safe_as_folder_names(s in "[a-z./_-]{0,12}") {
            if let Ok(id) = RepoId::new(&s) {
                let folder = Repo::model(id).folder_name();
                prop_assert!(!folder.contains('/'));
                prop_assert!(!folder.contains(".."));
                prop_assert!(folder != "." && !folder.starts_with('.'));
            }
        }
    }
}
