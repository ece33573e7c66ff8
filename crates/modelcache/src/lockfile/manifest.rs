//! `modelcache.toml`: the model set people write — `[[model]]` entries (a repository, a
//! revision, optional globs and file list) and `[[url]]` entries (a URL with its pinned
//! SHA-256 and a name). Every field is validated when the file is read; a bad one is an
//! error naming the entry and the field, and nothing else happens.
//!
//! The *normalised* manifest (entries sorted, globs and file lists sorted and without
//! duplicates, defaults filled in) has a SHA-256 that the lock records, so `sync --locked`
//! knows whether the lock still answers the manifest.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use cache_core::{Repo, RepoPath, RepoType, Revision, Sha256};
use serde::Deserialize;

use super::error::LockfileError;

/// The default manifest file name, looked for in the current directory.
pub const MANIFEST_FILE: &str = "modelcache.toml";

/// A parsed, validated and normalised manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Hub repositories, sorted by type then id.
    pub models: Vec<ModelSpec>,
    /// URL artifacts, sorted by name.
    pub urls: Vec<UrlSpec>,
}

/// One `[[model]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// The repository (its type from a `datasets/`/`spaces/` prefix or `type`).
    pub repo: Repo,
    /// The requested revision (branch, tag or commit; `main` by default).
    pub revision: Revision,
    /// Only files matching one of these globs (all files when empty); sorted, unique.
    pub include: Vec<String>,
    /// Leave out files matching these globs; sorted, unique.
    pub exclude: Vec<String>,
    /// Only these files (each must exist in the revision); sorted, unique.
    pub files: Vec<RepoPath>,
}

/// One `[[url]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSpec {
    /// The `http(s)://` URL.
    pub url: String,
    /// The SHA-256 its content must have.
    pub sha256: Sha256,
    /// The file name it is stored under (`[A-Za-z0-9._-]`).
    pub name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(default)]
    model: Vec<RawModel>,
    #[serde(default)]
    url: Vec<RawUrl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    repo: String,
    #[serde(rename = "type")]
    repo_type: Option<String>,
    revision: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    files: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    url: String,
    sha256: String,
    name: String,
}

/// `value` shortened and escaped for a message.
pub(crate) fn shown(value: &str) -> String {
    let escaped: String = value.chars().flat_map(char::escape_debug).collect();
    if escaped.chars().count() > 80 { format!("{}…", escaped.chars().take(80).collect::<String>()) } else { escaped }
}

/// Sorted, unique.
fn normalised(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// Checks globs as `get --include` does; `field` names them in the error.
pub(crate) fn check_globs(globs: &[String], field: &str) -> Result<(), String> {
    for g in globs {
        if g.is_empty() || g.chars().any(char::is_control) {
            return Err(format!("`{field}` has an empty glob or one with a control character (`{}`)", shown(g)));
        }
        cache_hf::FileFilter::new(std::slice::from_ref(g), &[])
            .map_err(|e| format!("`{field}` has an invalid glob `{}`: {e}", shown(g)))?;
    }
    Ok(())
}

/// Checks a URL entry's URL: `http://` or `https://`, a host, no whitespace or control
/// characters.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else { return Err(format!("`url` must start with `https://` or `http://` (`{}`)", shown(url))) };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("`url` has whitespace or a control character (`{}`)", shown(url)));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("`url` has no host (`{}`)", shown(&cache_core::redact_url(url))));
    }
    Ok(())
}

/// Checks an artifact name (what `get URL --name` takes).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if cache_store::ArtifactKey::is_safe_name(name) {
        Ok(())
    } else {
        Err(format!("`name` `{}` must be 1 to 100 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`", shown(name)))
    }
}

impl Manifest {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Manifest, LockfileError> {
        let text = std::fs::read_to_string(path).map_err(LockfileError::io("read the manifest", path))?;
        Manifest::parse(&text, path)
    }

    /// Parses and validates a manifest's text (`path` is only named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, LockfileError> {
        let invalid = |reason: String| LockfileError::Invalid { what: "manifest", path: path.to_owned(), reason };
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(e.message().to_owned() + &at_line(text, e.span())))?;
        let mut models = Vec::with_capacity(raw.model.len());
        let mut seen = BTreeSet::new();
        for (i, m) in raw.model.into_iter().enumerate() {
            let spec = model_spec(m).map_err(|reason| invalid(format!("`[[model]]` #{}: {reason}", i + 1)))?;
            if !seen.insert((spec.repo.repo_type, spec.repo.id.clone())) {
                return Err(invalid(format!(
                    "`[[model]]` #{}: `{}` is listed twice (give one entry per repository)",
                    i + 1,
                    spec.repo
                )));
            }
            models.push(spec);
        }
        let mut urls = Vec::with_capacity(raw.url.len());
        let mut names = BTreeSet::new();
        for (i, u) in raw.url.into_iter().enumerate() {
            let spec = url_spec(u).map_err(|reason| invalid(format!("`[[url]]` #{}: {reason}", i + 1)))?;
            if !names.insert(spec.name.clone()) {
                return Err(invalid(format!("`[[url]]` #{}: the name `{}` is used twice", i + 1, spec.name)));
            }
            urls.push(spec);
        }
        models.sort_by(|a, b| (a.repo.repo_type, &a.repo.id).cmp(&(b.repo.repo_type, &b.repo.id)));
        urls.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Manifest { models, urls })
    }

    /// The SHA-256 of the normalised manifest, as `sha256:<hex>`: equal for manifests
    /// that ask for the same things however they are ordered, commented or formatted.
    pub fn hash(&self) -> String {
        let mut text = String::from("modelcache manifest 1\n");
        for m in &self.models {
            let _ = writeln!(text, "{}", m.fingerprint());
        }
        for u in &self.urls {
            let _ = writeln!(text, "url\t{}\t{}\t{}", u.name, u.url, u.sha256);
        }
        format!("sha256:{}", Sha256::of(text.as_bytes()))
    }

    /// The entry for `repo`, if any.
    pub fn model(&self, repo: &Repo) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.repo == *repo)
    }
}

impl ModelSpec {
    /// One line that changes whenever what the entry asks for changes.
    pub(crate) fn fingerprint(&self) -> String {
        let files: Vec<&str> = self.files.iter().map(RepoPath::as_str).collect();
        format!(
            "model\t{}\t{}\t{}\tinclude={:?}\texclude={:?}\tfiles={files:?}",
            self.repo.repo_type, self.repo.id, self.revision, self.include, self.exclude
        )
    }
}

fn model_spec(m: RawModel) -> Result<ModelSpec, String> {
    let given_type = match &m.repo_type {
        None => None,
        Some(t) => {
            Some(t.parse::<RepoType>().map_err(|_| format!("`type` must be `model`, `dataset` or `space`, not `{}`", shown(t)))?)
        }
    };
    if m.repo.contains('@') || m.repo.starts_with("hf://") {
        return Err(format!(
            "`repo` `{}` must be `[datasets/|spaces/]ORG/NAME`; give the revision as `revision`",
            shown(&m.repo)
        ));
    }
    let (prefix, id) = match m.repo.split_once('/') {
        Some((p @ ("models" | "datasets" | "spaces"), rest)) if rest.contains('/') => (Some(p.parse::<RepoType>().ok()), rest),
        _ => (None, m.repo.as_str()),
    };
    let prefix = prefix.flatten();
    let repo_type = match (prefix, given_type) {
        (Some(p), Some(t)) if p != t => {
            return Err(format!("`type = \"{t}\"` contradicts the `{}/` prefix of `{}`", p.plural(), shown(&m.repo)));
        }
        (p, t) => p.or(t).unwrap_or_default(),
    };
    let id = id.parse().map_err(|e| format!("`repo`: {e}"))?;
    let revision = match &m.revision {
        None => Revision::main(),
        Some(r) => r.parse::<Revision>().map_err(|e| format!("`revision`: {e}"))?,
    };
    check_globs(&m.include, "include")?;
    check_globs(&m.exclude, "exclude")?;
    let mut files = Vec::with_capacity(m.files.len());
    for f in &m.files {
        files.push(RepoPath::new(f).map_err(|e| format!("`files`: {e}"))?);
    }
    files.sort();
    files.dedup();
    Ok(ModelSpec {
        repo: Repo::new(repo_type, id),
        revision,
        include: normalised(m.include),
        exclude: normalised(m.exclude),
        files,
    })
}

fn url_spec(u: RawUrl) -> Result<UrlSpec, String> {
    check_url(&u.url)?;
    let sha256 = Sha256::from_hex(&u.sha256.to_ascii_lowercase())
        .map_err(|_| format!("`sha256` must be 64 hex digits, not `{}`", shown(&u.sha256)))?;
    check_name(&u.name)?;
    Ok(UrlSpec { url: u.url, sha256, name: u.name })
}

/// ` (line N)` for a parse error's span.
pub(crate) fn at_line(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    span.map(|s| format!(" (line {})", text[..s.start.min(text.len())].matches('\n').count() + 1)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, LockfileError> {
        Manifest::parse(text, Path::new("modelcache.toml"))
    }

    #[test]
    fn entries_are_normalised_and_the_hash_ignores_order_and_format() {
        let a = parse(&(
            "[[model]]\nrepo = \"org/b\"\ninclude = [\"*.json\", \"*.bin\", \"*.json\"]\n\n[[model]]\nrepo = \"datasets/org/a\"\nrevision = \"v1\"\n\n[[url]]\nurl = \"https://h/x\"\nsha256 = \"AB".to_owned()
                + &"ab".repeat(31)
                + "\"\nname = \"x.onnx\"\n"),
        )
        .unwrap();
        assert_eq!((a.models[0].repo.repo_type, a.models[0].repo.id.as_str()), (RepoType::Model, "org/b"));
        assert_eq!((a.models[1].repo.repo_type, a.models[1].repo.id.as_str()), (RepoType::Dataset, "org/a"));
        assert_eq!(a.models[0].include, ["*.bin", "*.json"]);
        assert_eq!(a.models[0].revision, Revision::main());
        let b = parse(&(
            "# same thing\n[[url]]\nname = \"x.onnx\"\nurl = \"https://h/x\"\nsha256 = \"".to_owned()
                + &"ab".repeat(32)
                + "\"\n[[model]]\nrepo = \"org/a\"\ntype = \"dataset\"\nrevision = \"v1\"\n[[model]]\nrepo = \"org/b\"\nrevision = \"main\"\ninclude = [\"*.bin\", \"*.json\"]\n"),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hash(), b.hash());
        let c = parse("[[model]]\nrepo = \"org/b\"\ninclude = [\"*.json\"]\n").unwrap();
        assert_ne!(a.hash(), c.hash());
    }

    #[test]
    fn hostile_or_wrong_fields_are_refused_naming_the_entry() {
        let cases = [
            ("[[model]]\nrepo = \"../etc/passwd\"\n", "`[[model]]` #1: `repo`"),
            ("[[model]]\nrepo = \"org/a\"\nfiles = [\"../../x\"]\n", "`files`"),
            ("[[model]]\nrepo = \"org/a\"\nfiles = [\"/etc/passwd\"]\n", "absolute"),
            ("[[model]]\nrepo = \"org/a\"\nrevision = \"a..b\"\n", "`revision`"),
            ("[[model]]\nrepo = \"org/a\"\ninclude = [\"[\"]\n", "invalid glob"),
            ("[[model]]\nrepo = \"org/a@main\"\n", "give the revision as `revision`"),
            ("[[model]]\nrepo = \"datasets/org/a\"\ntype = \"model\"\n", "contradicts"),
            ("[[model]]\nrepo = \"org/a\"\n[[model]]\nrepo = \"org/a\"\n", "listed twice"),
            ("[[model]]\nrepo = \"org/a\"\nrevison = \"main\"\n", "unknown field"),
            ("[[url]]\nurl = \"file:///etc/passwd\"\nsha256 = \"00\"\nname = \"x\"\n", "https://"),
            ("[[url]]\nurl = \"https://h/x\"\nsha256 = \"00\"\nname = \"x\"\n", "64 hex"),
            ("[[url]]\nurl = \"https://h/x\"\nsha256 = \"".to_owned().leak() as &str, "line"),
        ];
        for (text, needle) in cases {
            let e = parse(text).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert_eq!(e.kind().exit_code(), 2, "{msg}");
        }
        let name = format!("[[url]]\nurl = \"https://h/x\"\nsha256 = \"{}\"\nname = \"../x\"\n", "0".repeat(64));
        assert!(parse(&name).unwrap_err().to_string().contains("`name`"));
    }
}
