//! What people type for a repository, a revision and a file, read the way they mean it.
//!
//! # Forms
//! [`ModelRef::parse`] and [`ModelRef::parse_location`] accept:
//! - `org/name[@REV]`, with `--repo-type` (the `repo_type` argument) deciding its type;
//! - the plural prefixes of the Hub's URLs: `models/`, `datasets/`, `spaces/`;
//! - ids as `hf cache ls` prints them: `model/org/name`, `dataset/org/name`,
//!   `space/org/name` (a singular prefix is always a type: the repository `model/x` of a
//!   user called `model` is written `models/model/x`);
//! - `hf://` URIs as huggingface_hub documents them, `hf://[TYPE/]ORG/NAME[@REV][/PATH]`:
//!   plural types only, `refs/pr/N` and `refs/convert/NAME` revisions read whole, other
//!   revisions end at the first `/` (write a `/` inside one as `%2F`). Without a type the
//!   repository is of `repo_type` (a model unless `--repo-type` says otherwise).
//!
//! # Short commits
//! [`CacheManager::expand_revision`] turns a commit prefix (4 to 39 lowercase hex digits,
//! as `ls --revisions` prints 12 of them) into the full commit, looking only at the
//! commits cached locally for that repository; a branch or tag cached under that name
//! wins; several matching commits are an [`CacheError::Ambiguous`] error listing them; no
//! match leaves the revision as typed (the Hub may know it as a branch or tag).
//! [`CacheManager::find_commit`] does the same across the whole cache for a bare prefix.
//!
//! # Near misses
//! [`CacheManager::similar_files`] names the files of a cached listing (`trees/`) closest
//! to a path that does not exist, for a "did you mean" hint.

use cache_core::{CommitHash, Repo, RepoPath, RepoType, Revision};

use crate::error::CacheError;
use crate::error::Missing;
use crate::manager::CacheManager;
use crate::types::{AcquireRequest, ModelRef};

/// The shortest commit prefix read as one (git's minimum abbreviation).
pub(crate) const MIN_COMMIT_PREFIX: usize = 4;

fn invalid(value: &str, reason: impl Into<String>) -> CacheError {
    CacheError::InvalidInput { what: "repository", value: value.chars().take(120).collect(), reason: reason.into() }
}

/// The repository type a prefix names (`datasets/`, `dataset/`, `hf://datasets/`…), when
/// the value carries one. `hf://` without a type carries none.
pub(crate) fn explicit_type(value: &str) -> Option<RepoType> {
    let body = value.strip_prefix("hf://").unwrap_or(value);
    let (first, _) = body.split_once('/')?;
    match first {
        "models" => Some(RepoType::Model),
        "datasets" => Some(RepoType::Dataset),
        "spaces" => Some(RepoType::Space),
        "model" | "dataset" | "space" if !value.starts_with("hf://") => first.parse().ok(),
        _ => None,
    }
}

/// `%XX` escapes decoded (an invalid escape is kept as typed).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `refs/pr/N` or `refs/convert/NAME` at the start of `s`: its length.
fn special_ref_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix("refs/")?;
    let (kind, tail) = rest.split_once('/')?;
    let ok = |c: char| match kind {
        "pr" => c.is_ascii_digit(),
        "convert" => c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'),
        _ => false,
    };
    let n = tail.find(|c| !ok(c)).unwrap_or(tail.len());
    (n > 0).then_some("refs/".len() + kind.len() + 1 + n)
}

/// Parses the part after `hf://`.
fn parse_hf_uri(value: &str, body: &str, repo_type: RepoType) -> Result<(ModelRef, Option<RepoPath>), CacheError> {
    let (repo_type, location) = match body.split_once('/') {
        Some(("models", rest)) => (RepoType::Model, rest),
        Some(("datasets", rest)) => (RepoType::Dataset, rest),
        Some(("spaces", rest)) => (RepoType::Space, rest),
        Some((t @ ("model" | "dataset" | "space"), _)) => {
            return Err(invalid(value, format!("the type prefix of an `hf://` URI is plural: `hf://{t}s/…`")));
        }
        Some(("kernels" | "buckets", _)) => return Err(invalid(value, "only model, dataset and space repositories are cached")),
        _ => (repo_type, body),
    };
    let location = location.trim_matches('/');
    let at = location.find('@').filter(|&i| location[..i].matches('/').count() <= 1);
    let (id, revision, path) = match at {
        None => {
            let mut parts = location.splitn(3, '/');
            let (org, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            (format!("{org}/{name}"), None, parts.next().unwrap_or_default().to_owned())
        }
        Some(i) => {
            let rest = &location[i + 1..];
            let n = special_ref_len(rest).or_else(|| rest.find('/')).unwrap_or(rest.len());
            let path = rest[n..].trim_start_matches('/').to_owned();
            (location[..i].to_owned(), Some(percent_decode(&rest[..n])), path)
        }
    };
    if id.matches('/').count() != 1 || id.starts_with('/') || id.ends_with('/') {
        return Err(invalid(value, "an `hf://` URI names `ORG/NAME`, as in `hf://org/name` or `hf://datasets/org/name`"));
    }
    let revision = revision.map(|r| Revision::new(&r)).transpose()?;
    let path = if path.is_empty() { None } else { Some(path.parse::<RepoPath>()?) };
    Ok((ModelRef { repo: Repo::new(repo_type, id.parse()?), revision }, path))
}

impl ModelRef {
    /// Parses a repository reference that may also name a file, as an `hf://` URI can
    /// (`hf://org/name@v1/config.json`); other forms never carry a path. The accepted
    /// forms are in the module docs; `repo_type` applies when the value names no type.
    ///
    /// ```
    /// use modelcache::{ModelRef, RepoType};
    /// let (r, path) = ModelRef::parse_location("hf://datasets/org/data@refs/pr/3/train.csv", RepoType::Model)?;
    /// assert_eq!(r.to_string(), "datasets/org/data@refs/pr/3");
    /// assert_eq!(path.unwrap().as_str(), "train.csv");
    /// let (r, _) = ModelRef::parse_location("dataset/org/data", RepoType::Model)?;
    /// assert_eq!(r.repo.repo_type, RepoType::Dataset);
    /// # Ok::<(), modelcache::CacheError>(())
    /// ```
    pub fn parse_location(value: &str, repo_type: RepoType) -> Result<(ModelRef, Option<RepoPath>), CacheError> {
        if let Some(body) = value.strip_prefix("hf://") {
            return parse_hf_uri(value, body, repo_type);
        }
        let (id, revision) = match value.split_once('@') {
            Some((id, rev)) => (id, Some(rev.parse::<Revision>()?)),
            None => (value, None),
        };
        let (repo_type, id) = match (explicit_type(value), id.split_once('/')) {
            (Some(t), Some((_, rest))) => (t, rest),
            _ => (repo_type, id),
        };
        Ok((ModelRef { repo: Repo::new(repo_type, id.parse()?), revision }, None))
    }
}

impl CacheManager {
    /// The cached commits of `repo` (its `snapshots/` folders), sorted.
    fn cached_commits(&self, repo: &Repo) -> Vec<CommitHash> {
        let dir = self.cache_dir().join(repo.folder_name()).join("snapshots");
        let mut out: Vec<CommitHash> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| CommitHash::new(n).ok()))
            .collect();
        out.sort();
        out
    }

    /// `model` with a short commit prefix replaced by the cached commit it names (see the
    /// module docs): unchanged when its revision is not a prefix of a cached commit or is
    /// a cached branch or tag; an [`CacheError::Ambiguous`] error when several cached
    /// commits start with it. Reads only the disk, never the network.
    pub fn expand_revision(&self, model: ModelRef) -> Result<ModelRef, CacheError> {
        let Some(rev) = model.revision.as_ref().filter(|r| is_commit_prefix(r.as_str())) else { return Ok(model) };
        if self.inner.store.resolve(&model.repo, rev)?.is_some() {
            return Ok(model);
        }
        let found: Vec<CommitHash> =
            self.cached_commits(&model.repo).into_iter().filter(|c| c.as_str().starts_with(rev.as_str())).collect();
        match found.as_slice() {
            [] => Ok(model),
            [one] => Ok(ModelRef { revision: Some(Revision::new(one.as_str())?), repo: model.repo }),
            many => Err(CacheError::Ambiguous {
                what: model.to_string(),
                candidates: many.iter().map(|c| format!("{}@{c}", model.repo)).collect(),
            }),
        }
    }

    /// The cached revisions, across the whole cache, whose commit starts with `prefix`
    /// (4 to 40 lowercase hex digits): `repo@commit` for each, sorted. Empty for anything
    /// else. Reads only the disk.
    pub fn find_commit(&self, prefix: &str) -> Result<Vec<ModelRef>, CacheError> {
        if !(is_commit_prefix(prefix) || CommitHash::new(prefix).is_ok()) {
            return Ok(Vec::new());
        }
        let entries = match std::fs::read_dir(self.cache_dir()) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Io { op: "read", path: self.cache_dir().to_path_buf(), source }),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(repo) = entry.file_name().to_str().and_then(|n| Repo::from_folder_name(n).ok()) else { continue };
            for c in self.cached_commits(&repo) {
                if c.as_str().starts_with(prefix) {
                    out.push(ModelRef { repo: repo.clone(), revision: Some(Revision::new(c.as_str())?) });
                }
            }
        }
        out.sort_by(|a, b| (&a.repo, &a.revision).cmp(&(&b.repo, &b.revision)));
        Ok(out)
    }

    /// Up to three files of the cached listing of `model`'s revision (`trees/<commit>.json`)
    /// closest to `path` (a typo, another case, the same name in another folder), closest
    /// first; empty when no listing is cached or nothing is close. Reads only the disk.
    pub fn similar_files(&self, model: &ModelRef, path: &RepoPath) -> Result<Vec<String>, CacheError> {
        let revision = model.revision_or_main();
        let Some(commit) = self.inner.store.resolve(&model.repo, &revision)? else { return Ok(Vec::new()) };
        let Some(tree) = self.inner.store.read_tree(&model.repo, &commit)? else { return Ok(Vec::new()) };
        Ok(closest(path.as_str(), tree.files.keys().map(RepoPath::as_str)))
    }

    /// A file the Hub does not have, with a "did you mean" hint when its revision's
    /// listing is cached and names a close file; other errors as they are.
    pub(crate) fn with_near_miss(&self, request: &AcquireRequest, e: CacheError) -> CacheError {
        let (AcquireRequest::File { repo, revision, path }, CacheError::ModelNotFound { missing: Missing::File, .. }) =
            (request, &e)
        else {
            return e;
        };
        let model = ModelRef { repo: repo.clone(), revision: Some(revision.clone()) };
        let Ok(near) = self.similar_files(&model, path) else { return e };
        match (near.as_slice(), e) {
            ([], e) => e,
            (_, CacheError::ModelNotFound { model_id, missing, reason, suggestion: _ }) => {
                let names: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
                let suggestion = format!("did you mean {}?", names.join(" or "));
                CacheError::ModelNotFound { model_id, missing, reason, suggestion }
            }
            (_, e) => e,
        }
    }
}

/// 4 to 39 lowercase hex digits.
fn is_commit_prefix(s: &str) -> bool {
    (MIN_COMMIT_PREFIX..40).contains(&s.len()) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The candidates close to `typed`: within a third of its length (at least 2) by edit
/// distance ignoring case, or with the same file name in another folder; closest first.
pub(crate) fn closest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let lower = typed.to_lowercase();
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_lowercase();
    let limit = (typed.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter(|c| *c != typed)
        .filter_map(|c| {
            let d =
                cache_core::edit_distance(&lower, &c.to_lowercase()).min(cache_core::edit_distance(&base(typed), &base(c)) + 1);
            (d <= limit).then_some((d, c))
        })
        .collect();
    scored.sort_unstable();
    scored.into_iter().take(3).map(|(_, c)| c.to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> (String, Option<String>) {
        let (r, p) = ModelRef::parse_location(v, RepoType::Model).unwrap();
        (r.to_string(), p.map(|p| p.as_str().to_owned()))
    }

    #[test]
    fn hf_uris_read_as_huggingface_hub_documents_them() {
        assert_eq!(parse("hf://org/name"), ("org/name".into(), None));
        assert_eq!(parse("hf://datasets/org/d@v1/train.csv"), ("datasets/org/d@v1".into(), Some("train.csv".into())));
        assert_eq!(parse("hf://spaces/org/app@refs/pr/3/a/b.py"), ("spaces/org/app@refs/pr/3".into(), Some("a/b.py".into())));
        assert_eq!(parse("hf://org/m@refs/convert/parquet"), ("org/m@refs/convert/parquet".into(), None));
        assert_eq!(parse("hf://org/m@feature%2Fx/c.json"), ("org/m@feature/x".into(), Some("c.json".into())));
        assert_eq!(parse("hf://models/org/m/onnx/model.onnx"), ("org/m".into(), Some("onnx/model.onnx".into())));
        assert_eq!(parse("hf://org/m/dir/file@1.txt"), ("org/m".into(), Some("dir/file@1.txt".into())));
        for bad in ["hf://", "hf://gpt2", "hf://dataset/org/d", "hf://buckets/org/b", "hf://org/m@", "hf://org/m/../../x"] {
            assert!(ModelRef::parse_location(bad, RepoType::Model).is_err(), "{bad}");
        }
    }

    #[test]
    fn hf_cache_ls_ids_and_plural_prefixes_name_their_type() {
        assert_eq!(parse("model/org/name@v1"), ("org/name@v1".into(), None));
        assert_eq!(parse("dataset/org/d"), ("datasets/org/d".into(), None));
        assert_eq!(parse("space/org/app"), ("spaces/org/app".into(), None));
        assert_eq!(parse("model/gpt2"), ("gpt2".into(), None));
        assert_eq!(parse("datasets/org/d"), ("datasets/org/d".into(), None));
        assert_eq!(explicit_type("hf://org/m"), None);
        assert_eq!(explicit_type("hf://spaces/org/m"), Some(RepoType::Space));
        assert_eq!(explicit_type("org/m"), None);
        assert!(ModelRef::parse("hf://org/m/config.json", RepoType::Model).is_err(), "a path where none is taken");
    }

    #[test]
    fn near_misses_are_close_names_closest_first() {
        let files = ["config.json", "generation_config.json", "tokenizer.json", "onnx/model.onnx", "README.md"];
        assert_eq!(closest("confg.json", files), ["config.json"]);
        assert_eq!(closest("Config.JSON", files), ["config.json"]);
        assert_eq!(closest("model.onnx", files), ["onnx/model.onnx"]);
        assert!(closest("weights.bin", files).is_empty());
    }

    #[test]
    fn commit_prefixes_are_short_lowercase_hex() {
        assert!(is_commit_prefix("0123456789ab") && is_commit_prefix("abcd"));
        assert!(
            !is_commit_prefix("abc")
                && !is_commit_prefix("main")
                && !is_commit_prefix("ABCDEF")
                && !is_commit_prefix(&"a".repeat(40))
        );
    }
}
