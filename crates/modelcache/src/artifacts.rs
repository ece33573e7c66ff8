//! URL artifacts in maintenance: listed beside Hub repositories, and named in `rm`, `pin`,
//! `unpin` and `verify` by their name, their URL or their id.
//!
//! # Naming
//! [`CacheManager::resolve_target`] reads what a user typed:
//! - an `http://` or `https://` URL names the artifacts stored from that URL (compared
//!   with the full URL, and with the URL as listings show it, credentials and query
//!   removed);
//! - a bare name (no `/`, no `@`) names the artifacts stored under that file name, or the
//!   one with that id (32 hex digits, `ls --json`). When it also names a cached Hub
//!   repository (a legacy id such as `gpt2`), it is ambiguous: `models/gpt2` names the
//!   repository;
//! - anything else is a repository, `REPO[@REV]`, as before.
//!
//! More than one match is an [`CacheError::Ambiguous`] error listing the candidates, so
//! that nothing is removed or pinned by surprise.
//!
//! # Shown, never leaked
//! Listings, reports and errors show an artifact's URL through
//! [`cache_core::redact_url`]: no `user:password@`, no query (signed URLs carry
//! credentials there). The full key stays inside [`ArtifactInfo`], unserialized, to fetch
//! the artifact again.

use std::path::PathBuf;

use cache_core::{EntryKey, RepoType, redact_url};
use cache_store::{ArtifactKey, ArtifactListing, Scope};
use serde::Serialize;

use crate::error::CacheError;
use crate::manager::CacheManager;
use crate::types::{CachedModelInfo, IntegrityReport, ItemType, ModelRef, RemoveReport, RepoInfo};

/// A URL artifact as `list()` and `stats()` report it. Its URL is shown without
/// `user:password@` and without query or fragment ([`cache_core::redact_url`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ArtifactInfo {
    /// 32 hex digits naming it on disk; names it exactly in `rm`, `pin`, `verify`.
    pub id: String,
    /// The file name it is stored under (`--name`, else the URL's last segment).
    pub name: String,
    /// Where it came from, redacted.
    pub url: String,
    /// The stored file.
    pub path: PathBuf,
    /// The SHA-256 (hex) of its content. Two artifacts with equal content share one blob.
    pub sha256: String,
    /// The SHA-256 it was required to have (`--sha256`), when one was given.
    pub required_sha256: Option<String>,
    /// The full key, to fetch it again; never serialized (it may hold credentials), so an
    /// `ArtifactInfo` read back from JSON names the artifact but cannot fetch it again.
    #[serde(skip, default = "unknown_key")]
    pub(crate) key: ArtifactKey,
}

/// The key of an artifact read back from JSON, where the key is never written.
fn unknown_key() -> ArtifactKey {
    ArtifactKey::new("")
}

impl ArtifactInfo {
    /// How messages name it: `NAME (URL)`, the URL redacted.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.name, self.url)
    }
}

/// What `rm`, `pin`, `unpin` and `verify` name: a Hub repository (or revision), or one
/// URL artifact ([`CacheManager::resolve_target`](crate::CacheManager::resolve_target)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A repository, or one revision of it.
    Repo(ModelRef),
    /// A URL artifact.
    Artifact(Box<ArtifactInfo>),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Repo(r) => write!(f, "{r}"),
            Target::Artifact(a) => f.write_str(&a.describe()),
        }
    }
}

impl ArtifactInfo {
    pub(crate) fn from_listing(l: &ArtifactListing) -> Self {
        ArtifactInfo {
            id: l.id.clone(),
            name: l.key.file_name(),
            url: redact_url(l.key.url()),
            path: l.path.clone().into_std_path_buf(),
            sha256: l.sha256.to_hex(),
            required_sha256: l.key.sha256().map(|s| s.to_hex()),
            key: l.key.clone(),
        }
    }
}

/// An artifact's row in `list()`: one file, no revisions.
pub(crate) fn repo_info(l: &ArtifactListing) -> RepoInfo {
    let info = ArtifactInfo::from_listing(l);
    RepoInfo {
        model_id: info.name.clone(),
        repo_type: ItemType::Url,
        repo_id: info.name.clone(),
        revisions: Vec::new(),
        files: 1,
        size_bytes: l.size,
        last_used: l.last_used,
        pinned: l.pinned,
        incomplete: Vec::new(),
        artifact: Some(info),
    }
}

/// An artifact's row in `stats().models`.
pub(crate) fn model_info(l: &ArtifactListing) -> CachedModelInfo {
    let info = ArtifactInfo::from_listing(l);
    CachedModelInfo {
        model_id: info.name.clone(),
        repo_type: ItemType::Url,
        size_bytes: l.size,
        files: 1,
        revisions: Vec::new(),
        downloaded_at: l.downloaded_at,
        last_accessed: l.last_used,
        pinned: l.pinned,
        artifact: Some(info),
    }
}

/// How reports show an entry: Hub entries as `org/name@<commit>/<path>`, artifacts as
/// their key with the URL redacted (`URL#sha256=…#name=…`).
pub(crate) fn shown(key: &EntryKey) -> String {
    match key {
        EntryKey::Hub { .. } => key.to_string(),
        EntryKey::Artifact { key } => {
            let k = ArtifactKey::from_key_string(key);
            let url = k.url();
            format!("{}{}", redact_url(url), &key[url.len()..])
        }
    }
}

/// The repository column of a report entry: the repository, or an artifact's redacted URL.
pub(crate) fn shown_owner(key: &EntryKey) -> String {
    match key {
        EntryKey::Hub { repo, .. } => repo.to_string(),
        EntryKey::Artifact { key } => redact_url(ArtifactKey::from_key_string(key).url()),
    }
}

fn is_url(value: &str) -> bool {
    value.starts_with("http://") || value.starts_with("https://")
}

impl CacheManager {
    /// What `value` names, as `rm`, `pin`, `unpin` and `verify` read it: a URL artifact
    /// (by URL, name or id) or a repository `REPO[@REV]` (`repo_type` applies to a bare
    /// `org/name`). See the module docs for the rules; several matches are an
    /// [`CacheError::Ambiguous`] error, a URL that is not cached [`CacheError::NotInCache`].
    pub fn resolve_target(&self, value: &str, repo_type: RepoType) -> Result<Target, CacheError> {
        let artifacts = self.inner.store.artifacts()?;
        let found: Vec<&ArtifactListing> = if is_url(value) {
            artifacts.iter().filter(|a| a.key.url() == value || redact_url(a.key.url()) == value).collect()
        } else if value.contains(['/', '@']) {
            Vec::new()
        } else {
            artifacts.iter().filter(|a| a.key.file_name() == value || a.id == value).collect()
        };
        let mut candidates: Vec<String> =
            found.iter().map(|a| format!("{} ({}, id {})", a.key.file_name(), redact_url(a.key.url()), a.id)).collect();
        if is_url(value) && found.is_empty() {
            return Err(CacheError::NotInCache { what: redact_url(value) });
        }
        let repo = if is_url(value) { None } else { Some(ModelRef::parse(value, repo_type)) };
        if let Some(Ok(r)) = &repo
            && !found.is_empty()
            && self.cache_dir().join(r.repo.folder_name()).exists()
        {
            candidates.push(format!("the {} repository `{}`", r.repo.repo_type, r.repo));
        }
        match (found.as_slice(), repo) {
            ([one], _) if candidates.len() == 1 => Ok(Target::Artifact(Box::new(ArtifactInfo::from_listing(one)))),
            ([], Some(r)) => Ok(Target::Repo(r?)),
            _ => {
                Err(CacheError::Ambiguous { what: if is_url(value) { redact_url(value) } else { value.to_owned() }, candidates })
            }
        }
    }

    /// Removes a URL artifact (or, with `dry_run`, reports what would go: its file, and
    /// its blob's bytes unless another artifact shares the blob). An artifact in use by
    /// another process is kept and named in `skipped_in_use`.
    pub async fn remove_artifact(&self, artifact: &ArtifactInfo, dry_run: bool) -> Result<RemoveReport, CacheError> {
        if dry_run {
            let all = self.inner.store.artifacts()?;
            let Some(me) = all.iter().find(|a| a.id == artifact.id) else {
                return Ok(RemoveReport { dry_run: true, ..RemoveReport::default() });
            };
            let shared = all.iter().any(|a| a.id != me.id && a.blob == me.blob);
            return Ok(RemoveReport {
                dry_run: true,
                entries: 1,
                bytes_freed: if shared { 0 } else { me.size },
                skipped_in_use: Vec::new(),
            });
        }
        let scope = Scope::Artifact(artifact.key.clone());
        let name = artifact.describe();
        self.blocking(move |m| {
            let r = m.inner.store.remove(&scope)?;
            let skipped_in_use = if r.skipped_in_use.is_empty() { Vec::new() } else { vec![name] };
            Ok(RemoveReport { dry_run: false, entries: r.entries, bytes_freed: r.bytes_freed, skipped_in_use })
        })
        .await
    }

    /// Protects a URL artifact from eviction.
    pub fn pin_artifact(&self, artifact: &ArtifactInfo) -> Result<(), CacheError> {
        self.inner.store.pin(&Scope::Artifact(artifact.key.clone()))?;
        Ok(())
    }

    /// Removes the pin of a URL artifact; returns whether it was pinned (`false`:
    /// nothing changed).
    pub fn unpin_artifact(&self, artifact: &ArtifactInfo) -> Result<bool, CacheError> {
        Ok(self.inner.store.unpin(&Scope::Artifact(artifact.key.clone()))?)
    }

    /// Re-hashes a URL artifact; with `repair`, a damaged one is removed and, when the
    /// strategy may download, fetched again from its URL.
    pub async fn verify_artifact(&self, artifact: &ArtifactInfo, repair: bool) -> Result<IntegrityReport, CacheError> {
        self.verify_scope(Scope::Artifact(artifact.key.clone()), repair).await
    }

    /// The URL artifacts on disk, as `list()` and `stats()` show them.
    pub(crate) fn artifact_listings(&self) -> Result<Vec<ArtifactListing>, CacheError> {
        Ok(self.inner.store.artifacts()?)
    }
}

/// The request that fetches an artifact entry again.
pub(crate) fn refetch_request(key: &str) -> crate::AcquireRequest {
    let k = ArtifactKey::from_key_string(key);
    crate::AcquireRequest::Url { url: k.url().to_owned(), sha256: k.sha256(), name: k.name().map(str::to_owned) }
}
