//! `reconcile`: rebuild the index from the layout (files other tools added or removed,
//! a deleted index), keeping usage history, pins and recorded digests of unchanged blobs.

use cache_core::Timestamp;

use crate::error::{Error, Result};
use crate::index::Row;
use crate::layout::RepoLayout;
use crate::scan::{self, SnapFile};
use crate::stamp::Stamp;
use crate::store::Store;

/// What [`Store::reconcile`] changed in the index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Entries found on disk that the index did not know.
    pub added: u64,
    /// Index entries whose file is gone.
    pub removed: u64,
    /// Entries whose blob or size changed.
    pub updated: u64,
}

impl Store {
    /// Makes the index agree with the disk and reports what it fixed.
    pub fn reconcile(&self) -> Result<ReconcileReport> {
        self.flush()?;
        let hub = reconcile_hub(self)?;
        let art = reconcile_artifacts(self)?;
        Ok(ReconcileReport {
            added: hub.added + art.added,
            removed: hub.removed + art.removed,
            updated: hub.updated + art.updated,
        })
    }
}

/// The index rows a repo's scan stands for: its snapshot files that have content.
pub(crate) fn rows(folder: &str, files: Vec<SnapFile>) -> Vec<Row> {
    files
        .into_iter()
        .filter_map(|f| {
            let t = f.modified.as_unix_millis();
            Some(Row {
                repo: folder.to_owned(),
                revision: f.commit,
                path: f.path,
                blob: f.blob_id,
                etag: f.etag,
                size: f.size?,
                blake3: None,
                downloaded_at: t,
                last_used: t,
            })
        })
        .collect()
}

/// Makes the index agree with the whole hub cache, and records each repo's stamp so that
/// listings need not scan it again until it changes.
pub(crate) fn reconcile_hub(store: &Store) -> Result<ReconcileReport> {
    let mut truth = Vec::new();
    let mut stamps = Vec::new();
    for repo in scan::repos(&store.hub).map_err(Error::io("list", store.hub_path.clone()))? {
        let folder = RepoLayout::new(&repo).folder;
        let Some(s) = store.scan_repo_or_skip(&repo)? else { continue };
        let rows = rows(&folder, s.files);
        stamps.push((folder, s.stamp, rows.len() as u64));
        truth.extend(rows);
    }
    let d = store.index()?.reconcile(None, &truth)?;
    // A folder that changed during the scan may not match its rows: no stamp, so the next
    // listing scans it.
    let stamps: Vec<(&str, &Stamp, u64)> =
        stamps.iter().filter(|(_, s, _)| s.unchanged(&store.hub)).map(|(f, s, n)| (f.as_str(), s, *n)).collect();
    store.index()?.save_stamps(&stamps, true)?;
    if d != crate::index::Diff::default() {
        tracing::info!(added = d.added, removed = d.removed, updated = d.updated, "reconciled the index with the hub cache");
    }
    Ok(ReconcileReport { added: d.added, removed: d.removed, updated: d.updated })
}

/// Makes the artifact index agree with the artifact entries on disk.
pub(crate) fn reconcile_artifacts(store: &Store) -> Result<ReconcileReport> {
    let truth = artifact_rows(store)?;
    let d = store.artifact_index()?.reconcile(None, &truth)?;
    Ok(ReconcileReport { added: d.added, removed: d.removed, updated: d.updated })
}

/// The index rows the artifact entries on disk stand for: those whose content is there
/// and whose key can be read.
pub(crate) fn artifact_rows(store: &Store) -> Result<Vec<Row>> {
    let mut truth = Vec::new();
    for (id, link, sha) in store.artifact_links()? {
        let Ok(m) = store.home.metadata(&link) else { continue };
        let Some(key) = store.artifact_key(&id) else { continue };
        let t = m.modified().map(|t| Timestamp::from_system_time(t.into_std())).unwrap_or_default().as_unix_millis();
        truth.push(Row {
            repo: String::new(),
            revision: id,
            path: key,
            blob: format!("artifacts/blobs/{sha}"),
            etag: Some(sha),
            size: m.len(),
            blake3: None,
            downloaded_at: t,
            last_used: t,
        });
    }
    Ok(truth)
}
