//! [`Store::artifacts`]: every generic artifact on disk (`<home>/artifacts/entries/`) with
//! its key, file, size, content digest, last use and pin.
//!
//! # Same answer as `stats`
//! The entries on disk are the truth. When the artifact index disagrees with them (an
//! entry removed or added by hand, a crash between link and record), the listing
//! reconciles it first (best effort, as the Hub listing records what it scanned), so
//! [`Store::stats`] called after a listing counts exactly what was listed: each
//! artifact's bytes, a blob shared by two entries (the same content under two names)
//! once. A listing that races a put or a removal in another thread or process may record
//! what it saw a moment before; the next listing corrects it (tested with racing loops in
//! `tests/it/maintenance.rs`). A listing never shows an artifact whose content is missing.
//!
//! # Performance
//! One `getdents` of `entries/`, then per artifact one of its folder, a `readlink`, a
//! `stat` and a read of its `.key`; one index query for usage and pins. Artifacts are few
//! (a handful to hundreds): no index-first fast path as for Hub repos.

use std::collections::{HashMap, HashSet};

use cache_core::{BlobId, Sha256, Timestamp};
use camino::Utf8PathBuf;

use crate::artifacts::ArtifactKey;
use crate::error::Result;
use crate::index::Row;
use crate::reconcile;
use crate::store::Store;

/// One generic artifact as found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactListing {
    /// Its key (URL, required digest, chosen name): never show [`ArtifactKey::url`]
    /// unredacted, it may hold credentials.
    pub key: ArtifactKey,
    /// 32 hex digits naming it on disk ([`ArtifactKey::id`]).
    pub id: String,
    /// The stored file (absolute).
    pub path: Utf8PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of its content (its blob's name).
    pub sha256: Sha256,
    /// The blob holding it, shared with other artifacts of the same content.
    pub blob: BlobId,
    /// When it was stored, when known.
    pub downloaded_at: Option<Timestamp>,
    /// When it was last used (pending hits included), when known.
    pub last_used: Option<Timestamp>,
    /// Whether it is pinned.
    pub pinned: bool,
}

impl Store {
    /// Every artifact on disk whose content is there, ordered by file name then key.
    /// Reconciles the artifact index first when it disagrees with the disk (see the
    /// module docs), so that [`Store::stats`] then agrees with this listing.
    pub fn artifacts(&self) -> Result<Vec<ArtifactListing>> {
        let truth = reconcile::artifact_rows(self)?;
        let mut rows = self.artifact_index()?.rows(None)?;
        let same = |a: &Row, b: &Row| (&a.revision, &a.path, &a.blob, a.size) == (&b.revision, &b.path, &b.blob, b.size);
        let mut sorted = truth.clone();
        sorted.sort_by(|a, b| a.revision.cmp(&b.revision));
        rows.sort_by(|a, b| a.revision.cmp(&b.revision));
        if sorted.len() != rows.len() || !sorted.iter().zip(&rows).all(|(a, b)| same(a, b)) {
            match self.artifact_index()?.reconcile(None, &truth) {
                Ok(d) => tracing::info!(added = d.added, removed = d.removed, "reconciled the artifact index with the disk"),
                Err(e) => tracing::warn!("could not record the artifacts in the index: {e}"),
            }
            rows = self.artifact_index()?.rows(None)?;
        }
        let recorded: HashMap<&str, &Row> = rows.iter().map(|r| (r.revision.as_str(), r)).collect();
        let pins: HashSet<String> = self.artifact_index()?.pins()?.into_iter().map(|p| p.1).collect();
        let mut out: Vec<ArtifactListing> = truth
            .into_iter()
            .filter_map(|t| {
                let sha256 = Sha256::from_hex(t.etag.as_deref()?).ok()?;
                let key = ArtifactKey::from_key_string(&t.path);
                let row = recorded.get(t.revision.as_str());
                let pending = self.usage.last_used(&(String::new(), t.revision.clone(), t.path.clone()));
                let last_used = row.map(|r| r.last_used).max(pending).map(Timestamp::from_unix_millis);
                Some(ArtifactListing {
                    path: self.home_path.join(format!("artifacts/entries/{}/{}", t.revision, key.file_name())),
                    pinned: pins.contains(&t.revision),
                    downloaded_at: row.map(|r| Timestamp::from_unix_millis(r.downloaded_at)),
                    last_used,
                    size: t.size,
                    sha256,
                    blob: BlobId::from_relative_path(t.blob),
                    id: t.revision,
                    key,
                })
            })
            .collect();
        out.sort_by(|a, b| (a.key.file_name(), &a.key).cmp(&(b.key.file_name(), &b.key)));
        Ok(out)
    }
}
