//! `dedup`: one inode per digest for a cache that already holds duplicates (see
//! `cache_store`'s `Store::dedup` for the protocol: both copies hashed, atomic
//! replacement, leases and locks respected).

use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::manager::CacheManager;

/// What [`CacheManager::dedup`] did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupReport {
    /// Digests (etags) that several repositories held as separate files.
    pub digests: u64,
    /// Repository blobs replaced by a hard link to one copy (or that would be).
    pub linked: u64,
    /// Bytes freed (or that would be).
    pub bytes_saved: u64,
    /// Copies left alone, each with the reason.
    pub skipped: Vec<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

impl CacheManager {
    /// Makes every blob that several repositories hold as separate files one inode (hard
    /// links), after checking each copy's bytes against its digest. With `dry_run`,
    /// reports what it would do and changes nothing. Reads what other tools wrote first.
    pub async fn dedup(&self, dry_run: bool) -> Result<DedupReport, CacheError> {
        self.blocking(move |m| {
            let store = &m.inner.store;
            store.reconcile()?;
            let r = store.dedup(dry_run)?;
            Ok(DedupReport { digests: r.digests, linked: r.linked, bytes_saved: r.bytes_saved, skipped: r.skipped, dry_run })
        })
        .await
    }
}
