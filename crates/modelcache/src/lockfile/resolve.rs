//! `lock`: a manifest resolved into a [`Lock`] — each repository's revision to a commit
//! and its listing to the selected files — without downloading any file body.
//!
//! An entry of an existing lock is kept as it is (same commit, same files, no request)
//! while its manifest entry is unchanged and no upgrade names it; a listing already in
//! `trees/<commit>.json` is used without asking the Hub for it.

use std::collections::BTreeSet;

use cache_core::{Etag, Repo, RepoPath};
use cache_store::{ArtifactKey, Tree};
use serde::{Deserialize, Serialize};

use super::lock::{Lock, LockedFile, LockedRepo, LockedUrl};
use super::manifest::{Manifest, ModelSpec};
use crate::error::{CacheError, Missing};
use crate::manager::CacheManager;

/// Which locked entries `lock` may move to a newer commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Upgrade {
    /// None: keep every commit whose manifest entry is unchanged.
    #[default]
    None,
    /// Every entry.
    All,
    /// These repositories.
    Repos(Vec<Repo>),
}

/// What `lock` did to one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockChange {
    /// `model/org/name`, or a URL artifact's name.
    pub entry: String,
    /// `kept`, `added`, `updated` (another commit or other files), `resolved` (resolved
    /// again to the same content) or `removed`.
    pub action: String,
    /// The commit before, if the entry was locked.
    pub old_commit: Option<String>,
    /// The commit now (`None` for a URL or a removed entry).
    pub new_commit: Option<String>,
    /// Files selected now.
    pub files: usize,
}

/// The result of [`CacheManager::resolve_lock`].
#[derive(Clone, Debug)]
pub struct LockResolution {
    /// The new lock.
    pub lock: Lock,
    /// What changed per entry (sorted as the lock).
    pub changes: Vec<LockChange>,
}

impl ModelSpec {
    /// Whether a locked entry was made from exactly this manifest entry.
    fn locked_by(&self, l: &LockedRepo) -> bool {
        l.repo == self.repo
            && l.revision == self.revision
            && l.include == self.include
            && l.exclude == self.exclude
            && l.paths == self.files
    }
}

/// The etag and size of a listing entry (as `cache_hf::tree_entry_etag`, which only the
/// downloading build has).
fn entry_etag(entry: &cache_store::TreeEntry) -> Option<(Etag, u64)> {
    match &entry.lfs_sha256 {
        Some(sha) => Some((Etag::new(sha).ok()?, entry.lfs_size.unwrap_or(entry.size))),
        None => Some((Etag::new(&entry.blob_id).ok()?, entry.size)),
    }
}

/// The files of `tree` that `spec` selects.
pub(crate) fn select(spec: &ModelSpec, tree: &Tree) -> Result<Vec<LockedFile>, CacheError> {
    let filter = crate::strategy::filter(&spec.include, &spec.exclude)?;
    let wanted: BTreeSet<&RepoPath> = spec.files.iter().collect();
    if let Some(missing) = spec.files.iter().find(|p| !tree.files.contains_key(*p)) {
        return Err(CacheError::ModelNotFound {
            model_id: format!("{}@{}/{missing}", spec.repo, spec.revision),
            missing: Missing::File,
            reason: format!("the manifest's `files` names `{missing}`, which that revision does not have"),
            suggestion: "fix the path in `files` of modelcache.toml (`modelcache get REPO@REV` lists what there is)".to_owned(),
        });
    }
    let mut out = Vec::new();
    for (path, entry) in &tree.files {
        if !filter.matches(path.as_str()) || (!wanted.is_empty() && !wanted.contains(path)) {
            continue;
        }
        let (etag, size) = entry_etag(entry).ok_or_else(|| CacheError::InvalidInput {
            what: "listing",
            value: String::new(),
            reason: format!("the listing of `{}` has no usable etag for `{path}`", spec.repo),
        })?;
        out.push(LockedFile { path: path.clone(), size, etag });
    }
    if out.is_empty() && !tree.files.is_empty() {
        return Err(CacheError::InvalidInput {
            what: "manifest entry",
            value: String::new(),
            reason: format!(
                "`{}@{}` selects no file (include {:?}, exclude {:?}): fix its globs in modelcache.toml",
                spec.repo, spec.revision, spec.include, spec.exclude
            ),
        });
    }
    Ok(out)
}

impl CacheManager {
    /// Resolves `manifest` into a lock (see the module docs): entries of `existing` whose
    /// manifest entry is unchanged keep their commit unless `upgrade` names them. Asks
    /// the Hub for revisions and listings only (a listing cached in `trees/` is reused);
    /// downloads no file.
    #[expect(clippy::too_many_lines, reason = "one pass per kind of entry, then the removed ones")]
    pub async fn resolve_lock(
        &self,
        manifest: &Manifest,
        existing: Option<&Lock>,
        upgrade: &Upgrade,
    ) -> Result<LockResolution, CacheError> {
        if let Upgrade::Repos(repos) = upgrade
            && let Some(r) = repos.iter().find(|r| manifest.model(r).is_none())
        {
            return Err(CacheError::InvalidInput {
                what: "repository",
                value: r.to_string(),
                reason: "`--upgrade` names a repository that modelcache.toml does not list".to_owned(),
            });
        }
        let store = &self.inner.store;
        let mut models = Vec::with_capacity(manifest.models.len());
        let mut changes = Vec::new();
        for spec in &manifest.models {
            let old = existing.and_then(|l| l.model(&spec.repo));
            let upgrading = match upgrade {
                Upgrade::None => false,
                Upgrade::All => true,
                Upgrade::Repos(r) => r.contains(&spec.repo),
            };
            let entry = format!("{}/{}", spec.repo.repo_type, spec.repo.id);
            if let Some(old) = old.filter(|o| spec.locked_by(o) && !upgrading) {
                changes.push(LockChange {
                    entry,
                    action: "kept".into(),
                    old_commit: Some(old.commit.to_string()),
                    new_commit: Some(old.commit.to_string()),
                    files: old.files.len(),
                });
                models.push(old.clone());
                continue;
            }
            let (commit, tree) = self.inner.network.resolve_listing(store, &spec.repo, &spec.revision).await?;
            let files = select(spec, &tree)?;
            let locked = LockedRepo {
                repo: spec.repo.clone(),
                revision: spec.revision.clone(),
                commit,
                include: spec.include.clone(),
                exclude: spec.exclude.clone(),
                paths: spec.files.clone(),
                files,
            };
            let action = match old {
                None => "added",
                Some(o) if o.commit == locked.commit && o.files == locked.files => "resolved",
                Some(_) => "updated",
            };
            changes.push(LockChange {
                entry,
                action: action.into(),
                old_commit: old.map(|o| o.commit.to_string()),
                new_commit: Some(commit.to_string()),
                files: locked.files.len(),
            });
            models.push(locked);
        }
        let mut urls = Vec::with_capacity(manifest.urls.len());
        for u in &manifest.urls {
            let key = ArtifactKey::new(&u.url).with_sha256(u.sha256).with_name(&u.name);
            let cached_size = store.find_artifact(&key)?.and_then(|p| std::fs::metadata(p).ok()).map(|m| m.len());
            let old = existing.and_then(|l| l.urls.iter().find(|o| o.name == u.name));
            let size = cached_size.or_else(|| old.filter(|o| o.url == u.url && o.sha256 == u.sha256).and_then(|o| o.size));
            let action = match old {
                None => "added",
                Some(o) if o.url == u.url && o.sha256 == u.sha256 && o.size == size => "kept",
                Some(_) => "updated",
            };
            changes.push(LockChange {
                entry: u.name.clone(),
                action: action.into(),
                old_commit: None,
                new_commit: None,
                files: 1,
            });
            urls.push(LockedUrl { url: u.url.clone(), name: u.name.clone(), sha256: u.sha256, size });
        }
        if let Some(old) = existing {
            for m in old.models.iter().filter(|m| manifest.model(&m.repo).is_none()) {
                changes.push(LockChange {
                    entry: format!("{}/{}", m.repo.repo_type, m.repo.id),
                    action: "removed".into(),
                    old_commit: Some(m.commit.to_string()),
                    new_commit: None,
                    files: 0,
                });
            }
            for u in old.urls.iter().filter(|u| !manifest.urls.iter().any(|m| m.name == u.name)) {
                changes.push(LockChange {
                    entry: u.name.clone(),
                    action: "removed".into(),
                    old_commit: None,
                    new_commit: None,
                    files: 0,
                });
            }
        }
        let mut lock = Lock { manifest_hash: manifest.hash(), models, urls };
        lock.normalise();
        Ok(LockResolution { lock, changes })
    }
}

/// What differs between a manifest and a lock, one line per entry (empty: the lock
/// answers the manifest exactly).
pub fn stale_entries(manifest: &Manifest, lock: &Lock) -> Vec<String> {
    let mut out = Vec::new();
    for spec in &manifest.models {
        match lock.model(&spec.repo) {
            None => out.push(format!("`{}` is not in the lock", spec.repo)),
            Some(l) if !spec.locked_by(l) => {
                out.push(format!("`{}` changed in the manifest (revision or globs or files)", spec.repo));
            }
            Some(_) => {}
        }
    }
    for l in lock.models.iter().filter(|l| manifest.model(&l.repo).is_none()) {
        out.push(format!("`{}` is locked but no longer in the manifest", l.repo));
    }
    for u in &manifest.urls {
        match lock.urls.iter().find(|l| l.name == u.name) {
            Some(l) if l.url == u.url && l.sha256 == u.sha256 => {}
            Some(_) => out.push(format!("URL `{}` changed in the manifest", u.name)),
            None => out.push(format!("URL `{}` is not in the lock", u.name)),
        }
    }
    for l in lock.urls.iter().filter(|l| !manifest.urls.iter().any(|u| u.name == l.name)) {
        out.push(format!("URL `{}` is locked but no longer in the manifest", l.name));
    }
    if out.is_empty() && manifest.hash() != lock.manifest_hash {
        out.push("the manifest's hash differs from the one the lock records".to_owned());
    }
    out
}
