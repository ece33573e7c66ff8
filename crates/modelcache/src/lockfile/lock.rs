//! `modelcache.lock`: what a manifest resolved to — per repository the commit and every
//! selected file with its size and digest, per URL its digest and size.
//!
//! # Format
//! TOML, written by [`Lock::to_toml`] (never by a generic serializer), so the bytes depend
//! only on the content: entries sorted (repositories by type then id, files by path, URLs
//! by name), one file per line, fixed key order, no timestamps. The same manifest and Hub
//! state give a byte-identical lock, and a change shows as a small diff.
//!
//! ```toml
//! version = 1
//! manifest_hash = "sha256:…"
//!
//! [[model]]
//! repo = "openai/whisper-tiny"
//! type = "model"
//! revision = "main"
//! commit = "…40 hex…"
//! include = ["*.json"]
//! exclude = []
//! paths = []
//! files = [
//!   { path = "config.json", size = 1983, etag = "…", git_sha1 = "…" },
//!   { path = "model.safetensors", size = 151061672, etag = "…", sha256 = "…" },
//! ]
//! ```
//! `etag` names the blob in the cache; the digest (`sha256` for LFS files, `git_sha1`
//! otherwise) is the same value under the name of its algorithm, and must agree with it.
//!
//! # Reading
//! Every field is validated as the manifest's are (ids, commits, paths, digests), and a
//! path that is both a file and a folder of another is refused, so a lock can be used to
//! build paths in the cache without further checks.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use cache_core::{CommitHash, Etag, Repo, RepoPath, RepoType, Revision, Sha256};
use serde::Deserialize;

use super::error::LockfileError;
use super::manifest::{at_line, check_globs, check_name, check_url, shown};

/// The default lock file name, next to the manifest.
pub const LOCK_FILE: &str = "modelcache.lock";

/// The only format version this build reads and writes.
pub const LOCK_VERSION: u32 = 1;

/// A parsed and validated lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    /// The [`Manifest::hash`](super::Manifest::hash) it was made from.
    pub manifest_hash: String,
    /// Repositories, sorted by type then id.
    pub models: Vec<LockedRepo>,
    /// URL artifacts, sorted by name.
    pub urls: Vec<LockedUrl>,
}

/// A repository of the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedRepo {
    /// The repository.
    pub repo: Repo,
    /// The revision the manifest asked for.
    pub revision: Revision,
    /// The commit it resolved to.
    pub commit: CommitHash,
    /// The manifest's `include` globs.
    pub include: Vec<String>,
    /// The manifest's `exclude` globs.
    pub exclude: Vec<String>,
    /// The manifest's explicit `files` list (empty: none given).
    pub paths: Vec<RepoPath>,
    /// Every selected file, sorted by path.
    pub files: Vec<LockedFile>,
}

/// A file of a locked repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedFile {
    /// Its path in the repository.
    pub path: RepoPath,
    /// Its size in bytes.
    pub size: u64,
    /// Its etag: the blob's name and digest (sha256 for LFS files, git-sha1 otherwise).
    pub etag: Etag,
}

/// A URL artifact of the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedUrl {
    /// The URL.
    pub url: String,
    /// The name it is stored under.
    pub name: String,
    /// Its content's SHA-256.
    pub sha256: Sha256,
    /// Its size, when known at lock time (cached then).
    pub size: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLock {
    version: u32,
    manifest_hash: String,
    #[serde(default)]
    model: Vec<RawRepo>,
    #[serde(default)]
    url: Vec<RawUrl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRepo {
    repo: String,
    #[serde(rename = "type")]
    repo_type: String,
    revision: String,
    commit: String,
    include: Vec<String>,
    exclude: Vec<String>,
    paths: Vec<String>,
    files: Vec<RawFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    path: String,
    size: u64,
    etag: String,
    sha256: Option<String>,
    git_sha1: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUrl {
    url: String,
    name: String,
    sha256: String,
    size: Option<u64>,
}

/// A TOML basic string.
fn quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn array(out: &mut String, items: impl IntoIterator<Item = impl AsRef<str>>) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        quoted(out, s.as_ref());
    }
    out.push(']');
}

impl LockedFile {
    /// `("sha256", hex)` for an LFS file, `("git_sha1", hex)` otherwise.
    pub fn digest(&self) -> (&'static str, String) {
        match self.etag {
            Etag::Sha256(d) => ("sha256", d.to_string()),
            Etag::GitSha1(d) => ("git_sha1", d.to_string()),
        }
    }
}

impl Lock {
    /// The lock's TOML (see the module docs): the same content always gives the same bytes.
    pub fn to_toml(&self) -> String {
        let mut out = String::with_capacity(256 + self.models.iter().map(|m| m.files.len() * 160).sum::<usize>());
        out.push_str("# Generated by `modelcache lock` from modelcache.toml: do not edit by hand.\n");
        let _ = writeln!(out, "version = {LOCK_VERSION}");
        out.push_str("manifest_hash = ");
        quoted(&mut out, &self.manifest_hash);
        out.push('\n');
        for m in &self.models {
            out.push_str("\n[[model]]\nrepo = ");
            quoted(&mut out, m.repo.id.as_str());
            out.push_str("\ntype = ");
            quoted(&mut out, m.repo.repo_type.as_str());
            out.push_str("\nrevision = ");
            quoted(&mut out, m.revision.as_str());
            out.push_str("\ncommit = ");
            quoted(&mut out, m.commit.as_str());
            out.push_str("\ninclude = ");
            array(&mut out, &m.include);
            out.push_str("\nexclude = ");
            array(&mut out, &m.exclude);
            out.push_str("\npaths = ");
            array(&mut out, m.paths.iter().map(RepoPath::as_str));
            if m.files.is_empty() {
                out.push_str("\nfiles = []\n");
                continue;
            }
            out.push_str("\nfiles = [\n");
            for f in &m.files {
                out.push_str("  { path = ");
                quoted(&mut out, f.path.as_str());
                let (alg, hex) = f.digest();
                let _ = writeln!(out, ", size = {}, etag = \"{}\", {alg} = \"{hex}\" }},", f.size, f.etag);
            }
            out.push_str("]\n");
        }
        for u in &self.urls {
            out.push_str("\n[[url]]\nurl = ");
            quoted(&mut out, &u.url);
            out.push_str("\nname = ");
            quoted(&mut out, &u.name);
            let _ = write!(out, "\nsha256 = \"{}\"\n", u.sha256);
            if let Some(size) = u.size {
                let _ = writeln!(out, "size = {size}");
            }
        }
        out
    }

    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Lock, LockfileError> {
        let text = std::fs::read_to_string(path).map_err(LockfileError::io("read the lock", path))?;
        Lock::parse(&text, path)
    }

    /// Parses and validates a lock's text (`path` is only named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Lock, LockfileError> {
        let invalid = |reason: String| LockfileError::Invalid { what: "lock", path: path.to_owned(), reason };
        let raw: RawLock = toml::from_str(text).map_err(|e| invalid(e.message().to_owned() + &at_line(text, e.span())))?;
        if raw.version != LOCK_VERSION {
            return Err(invalid(format!("`version = {}`: this modelcache reads version {LOCK_VERSION}", raw.version)));
        }
        let hash_ok = raw.manifest_hash.strip_prefix("sha256:").is_some_and(|h| Sha256::from_hex(h).is_ok());
        if !hash_ok {
            return Err(invalid(format!("`manifest_hash` must be `sha256:<64 hex>`, not `{}`", shown(&raw.manifest_hash))));
        }
        let mut models = Vec::with_capacity(raw.model.len());
        let mut seen = BTreeSet::new();
        for (i, m) in raw.model.into_iter().enumerate() {
            let repo = locked_repo(m).map_err(|r| invalid(format!("`[[model]]` #{}: {r}", i + 1)))?;
            if !seen.insert(repo.repo.clone()) {
                return Err(invalid(format!("`[[model]]` #{}: `{}` is listed twice", i + 1, repo.repo)));
            }
            models.push(repo);
        }
        let mut urls = Vec::with_capacity(raw.url.len());
        let mut names = BTreeSet::new();
        for (i, u) in raw.url.into_iter().enumerate() {
            check_url(&u.url).and_then(|()| check_name(&u.name)).map_err(|r| invalid(format!("`[[url]]` #{}: {r}", i + 1)))?;
            let sha256 = Sha256::from_hex(&u.sha256)
                .map_err(|_| invalid(format!("`[[url]]` #{}: `sha256` must be 64 hex digits", i + 1)))?;
            if !names.insert(u.name.clone()) {
                return Err(invalid(format!("`[[url]]` #{}: the name `{}` is used twice", i + 1, u.name)));
            }
            urls.push(LockedUrl { url: u.url, name: u.name, sha256, size: u.size });
        }
        let mut lock = Lock { manifest_hash: raw.manifest_hash, models, urls };
        lock.normalise();
        Ok(lock)
    }

    /// Sorts entries as [`Lock::to_toml`] writes them.
    pub fn normalise(&mut self) {
        self.models.sort_by(|a, b| (a.repo.repo_type, &a.repo.id).cmp(&(b.repo.repo_type, &b.repo.id)));
        for m in &mut self.models {
            m.files.sort_by(|a, b| a.path.cmp(&b.path));
        }
        self.urls.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// Writes the lock to `path` atomically: a temporary file in the same directory,
    /// flushed to disk, renamed over `path`. A reader sees the old lock or the new one.
    pub fn save(&self, path: &Path) -> Result<(), LockfileError> {
        write_atomic(path, self.to_toml().as_bytes())
    }

    /// The repository entry of `repo`, if any.
    pub fn model(&self, repo: &Repo) -> Option<&LockedRepo> {
        self.models.iter().find(|m| m.repo == *repo)
    }

    /// Files of every repository, and bytes.
    pub fn totals(&self) -> (usize, u64) {
        let files = self.models.iter().map(|m| m.files.len()).sum::<usize>() + self.urls.len();
        let bytes = self.models.iter().flat_map(|m| &m.files).map(|f| f.size).sum::<u64>()
            + self.urls.iter().filter_map(|u| u.size).sum::<u64>();
        (files, bytes)
    }
}

fn locked_repo(m: RawRepo) -> Result<LockedRepo, String> {
    let repo_type: RepoType =
        m.repo_type.parse().map_err(|_| format!("`type` `{}` is not model, dataset or space", shown(&m.repo_type)))?;
    let id = m.repo.parse().map_err(|e| format!("`repo`: {e}"))?;
    let revision: Revision = m.revision.parse().map_err(|e| format!("`revision`: {e}"))?;
    let commit = CommitHash::new(&m.commit).map_err(|e| format!("`commit`: {e}"))?;
    check_globs(&m.include, "include")?;
    check_globs(&m.exclude, "exclude")?;
    let paths = m.paths.iter().map(|p| RepoPath::new(p).map_err(|e| format!("`paths`: {e}"))).collect::<Result<Vec<_>, _>>()?;
    let mut files = Vec::with_capacity(m.files.len());
    let mut names = BTreeSet::new();
    for f in m.files {
        let path = RepoPath::new(&f.path).map_err(|e| format!("`files`: {e}"))?;
        let etag = Etag::new(&f.etag).map_err(|e| format!("`files` `{path}`: `etag`: {e}"))?;
        let digest_ok = match (etag, &f.sha256, &f.git_sha1) {
            (Etag::Sha256(d), Some(s), None) => d.to_string() == *s,
            (Etag::GitSha1(d), None, Some(s)) => d.to_string() == *s,
            _ => false,
        };
        if !digest_ok {
            return Err(format!(
                "`files` `{path}`: the digest must be given once, as `sha256` for a 64-digit etag or `git_sha1` for a 40-digit one, equal to the etag"
            ));
        }
        if !names.insert(path.as_str().to_owned()) {
            return Err(format!("`files` names `{path}` twice"));
        }
        files.push(LockedFile { path, size: f.size, etag });
    }
    for name in &names {
        for (i, _) in name.match_indices('/') {
            if names.contains(&name[..i]) {
                return Err(format!("`files` has `{}` both as a file and as a folder (of `{name}`)", &name[..i]));
            }
        }
    }
    Ok(LockedRepo {
        repo: cache_core::Repo::new(repo_type, id),
        revision,
        commit,
        include: m.include,
        exclude: m.exclude,
        paths,
        files,
    })
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync,
/// rename, directory fsync).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LockfileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LockfileError::Io { op: "write", path: path.to_owned(), source: e }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Lock {
        let mut lock = Lock {
            manifest_hash: format!("sha256:{}", Sha256::of(b"m")),
            models: vec![LockedRepo {
                repo: Repo::model("org/a".parse().unwrap()),
                revision: Revision::main(),
                commit: CommitHash::new(&"c".repeat(40)).unwrap(),
                include: vec!["*.json".into()],
                exclude: vec![],
                paths: vec![],
                files: vec![
                    LockedFile { path: "w.safetensors".parse().unwrap(), size: 3, etag: Etag::Sha256(Sha256::of(b"abc")) },
                    LockedFile { path: "a \"q\".json".parse().unwrap(), size: 2, etag: Etag::new(&"1".repeat(40)).unwrap() },
                ],
            }],
            urls: vec![LockedUrl { url: "https://h/x".into(), name: "x".into(), sha256: Sha256::of(b"x"), size: Some(1) }],
        };
        lock.normalise();
        lock
    }

    #[test]
    fn a_lock_round_trips_byte_for_byte() {
        let lock = sample();
        let text = lock.to_toml();
        let back = Lock::parse(&text, Path::new("modelcache.lock")).unwrap();
        assert_eq!(back, lock);
        assert_eq!(back.to_toml(), text);
        assert!(text.contains("git_sha1 = \"1111"), "{text}");
        assert!(text.find("a \\\"q\\\".json").unwrap() < text.find("w.safetensors").unwrap(), "sorted: {text}");
    }

    #[test]
    fn a_tampered_lock_is_refused() {
        let text = sample().to_toml();
        let cases = [
            (text.replacen("version = 1", "version = 2", 1), "version"),
            (text.replacen("sha256 = \"ba", "sha256 = \"bb", 1), "digest"),
            (text.replacen("repo = \"org/a\"", "repo = \"../a\"", 1), "`repo`"),
            (text.replacen("w.safetensors", "../w", 1), "`..`"),
            (text.replacen("commit = \"cccc", "commit = \"zzzz", 1), "`commit`"),
            (text.replacen("a \\\"q\\\".json", "w.safetensors/x", 1), "both as a file and as a folder"),
        ];
        for (t, needle) in cases {
            let e = Lock::parse(&t, Path::new("modelcache.lock")).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    #[test]
    fn save_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        sample().save(&path).unwrap();
        sample().save(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), sample().to_toml());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
