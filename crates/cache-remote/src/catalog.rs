//! What a tier holds: listings and refs for resolving without the Hub (and replacing a
//! wrong listing with the Hub's), a summary of the whole tier (`modelcache remote ls`),
//! and re-hashing its blobs (`modelcache remote verify`).
//!
//! # A wrong listing is replaced
//! Listings are written create-if-absent, so without a check a listing that is
//! unreadable, fails its signature or disagrees with the Hub would stay forever. When the
//! caller holds the Hub's listing of a commit, [`Tier::replace_tree_if_wrong`] reads the
//! tier's copy (one GET, two when signing) and overwrites it in an `rw` tier only, never
//! in `ro` (nor `wo`, which is never read); each key at most once per process, counted
//! (`listings_replaced`) and logged once.

use std::collections::BTreeMap;

use cache_core::{CommitHash, MultiHasher, Repo, Revision, Timestamp};
use futures_util::StreamExt;
use object_store::ObjectStoreExt;

use crate::counters::Counters;
use crate::error::Error;
use crate::layout::{BlobKey, parse_tree_key, ref_key, tree_key};
use crate::push::RefRecord;
use crate::spec::Mode;
use crate::tier::{Failure, Tier};

/// A tier's contents, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TierListing {
    /// The tier.
    pub url: String,
    /// Repositories with at least one listing, and their commits.
    pub repos: BTreeMap<String, Vec<String>>,
    /// Blobs (Hub files and URL artifacts).
    pub blobs: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Refs.
    pub refs: u64,
}

/// What re-hashing a tier's blobs found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TierVerifyReport {
    /// The tier.
    pub url: String,
    /// Blobs the tier holds.
    pub total: u64,
    /// Blobs re-hashed.
    pub checked: u64,
    /// Bytes re-hashed.
    pub bytes: u64,
    /// Keys whose bytes do not match them.
    pub corrupt: Vec<String>,
}

impl Tier {
    async fn read(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key);
        match self.call("read", key, async { self.store.get(&path).await?.bytes().await }).await {
            Ok(b) => Ok(Some(b.to_vec())),
            Err(Failure::NotFound) => Ok(None),
            Err(f) => Err(f.into_error(self, key).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() })),
        }
    }

    /// Reads `key`, checking its signature when this process signs (a bad one is a miss).
    async fn read_signed(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(body) = self.read(key).await? else { return Ok(None) };
        if let Some(signer) = &self.signer {
            let sig = self.read(&format!("{key}.sig")).await?.unwrap_or_default();
            if !signer.verify(key, &body, &sig) {
                tracing::warn!(tier = %self.url(), key, "remote listing or ref has no valid signature: ignored");
                return Ok(None);
            }
        }
        Ok(Some(body))
    }

    /// A commit's listing (the hub cache's `trees/` JSON), if the tier has it.
    pub async fn tree(&self, repo: &Repo, commit: &CommitHash) -> Result<Option<Vec<u8>>, Error> {
        if !self.mode().reads() {
            return Ok(None);
        }
        self.probe().await?;
        self.read_signed(&tree_key(repo, commit)).await
    }

    /// Replaces the tier's listing of `commit` with `json` (the Hub's, verified by the
    /// caller) when the tier's copy is unreadable, fails its signature or is not what
    /// `is_right` accepts. Only in an `rw` tier; a missing listing is left to
    /// [`Tier::push_tree`]. `Ok(true)` when it replaced one.
    pub async fn replace_tree_if_wrong(
        &self,
        repo: &Repo,
        commit: &CommitHash,
        json: &[u8],
        is_right: impl FnOnce(&[u8]) -> bool,
    ) -> Result<bool, Error> {
        if self.mode() != Mode::ReadWrite {
            return Ok(false);
        }
        self.probe().await?;
        let key = tree_key(repo, commit);
        let Some(body) = self.read(&key).await? else { return Ok(false) };
        let wrong = if let Some(signer) = &self.signer
            && !signer.verify(&key, &body, &self.read(&format!("{key}.sig")).await?.unwrap_or_default())
        {
            "it has no valid signature"
        } else if !is_right(&body) {
            "it is unreadable or not what the Hub lists"
        } else {
            return Ok(false);
        };
        if !self.replaced.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.clone()) {
            return Ok(false);
        }
        self.put_signed(&key, json.to_vec(), true).await?;
        Counters::bump(&self.counters.listings_replaced, 1);
        tracing::warn!(tier = %self.url(), %repo, %commit, key, "the team tier's listing was wrong ({wrong}): replaced by the Hub's");
        Ok(true)
    }

    /// A branch or tag as the tier last saw it: the commit and when it was pushed.
    pub async fn resolve_ref(&self, repo: &Repo, revision: &Revision) -> Result<Option<(CommitHash, Timestamp)>, Error> {
        if !self.mode().reads() {
            return Ok(None);
        }
        self.probe().await?;
        let Some(body) = self.read_signed(&ref_key(repo, revision)).await? else { return Ok(None) };
        let Ok(record) = serde_json::from_slice::<RefRecord>(&body) else {
            tracing::warn!(tier = %self.url(), %repo, %revision, "remote ref is unreadable: ignored");
            return Ok(None);
        };
        Ok(CommitHash::new(&record.commit).ok().map(|c| (c, Timestamp::from_unix_millis(record.time))))
    }

    async fn each_object(&self, mut f: impl FnMut(&str, u64)) -> Result<(), Error> {
        let root = self.listing_root();
        let mut objects = self.store.list(Some(&root));
        loop {
            let next = tokio::time::timeout(self.options.request_timeout, objects.next()).await;
            match next {
                Ok(Some(Ok(meta))) => f(self.strip(&meta.location), meta.size),
                Ok(Some(Err(object_store::Error::NotFound { .. })) | None) => return Ok(()),
                Ok(Some(Err(source))) => {
                    return Err(Error::Call {
                        url: self.url().to_owned(),
                        op: "list",
                        key: "v1/".to_owned(),
                        source: Box::new(source),
                    });
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        url: self.url().to_owned(),
                        op: "list",
                        key: "v1/".to_owned(),
                        after: self.options.request_timeout,
                    });
                }
            }
        }
    }

    /// Everything the tier holds, summed (one listing of `v1/`).
    pub async fn list(&self) -> Result<TierListing, Error> {
        let mut out = TierListing { url: self.url().to_owned(), ..TierListing::default() };
        self.each_object(|key, size| {
            if BlobKey::from_key(key).is_some() {
                out.blobs += 1;
                out.bytes += size;
            } else if let Some((repo, commit)) = parse_tree_key(key) {
                out.repos.entry(repo.to_string()).or_default().push(commit.to_string());
            } else if key.starts_with("v1/refs/") && !key.ends_with(".sig") {
                out.refs += 1;
            }
        })
        .await?;
        Ok(out)
    }

    /// Re-hashes the tier's blobs: every one, or `sample` of them spread evenly over the
    /// listing. Reads only; a corrupt object is reported, never deleted.
    pub async fn verify(&self, sample: Option<u64>) -> Result<TierVerifyReport, Error> {
        let mut keys = Vec::new();
        self.each_object(|key, size| {
            if let Some(k) = BlobKey::from_key(key) {
                keys.push((k, size));
            }
        })
        .await?;
        let total = keys.len() as u64;
        let step = match sample {
            Some(n) if n > 0 && n < total => usize::try_from(total.div_ceil(n)).unwrap_or(1),
            _ => 1,
        };
        let mut report = TierVerifyReport { url: self.url().to_owned(), total, ..TierVerifyReport::default() };
        for (key, size) in keys.into_iter().step_by(step) {
            let k = key.key();
            let path = self.path(&k);
            let etag = key.etag();
            let mut hasher = MultiHasher::new(etag.required(), size);
            let stream = self
                .call("get", &k, self.store.get(&path))
                .await
                .map_err(|f| f.into_error(self, &k).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() }))?;
            let mut body = stream.into_stream();
            loop {
                match tokio::time::timeout(self.options.request_timeout, body.next()).await {
                    Ok(Some(Ok(bytes))) => hasher.update(&bytes),
                    Ok(None) => break,
                    Ok(Some(Err(source))) => {
                        return Err(Error::Call { url: self.url().to_owned(), op: "get", key: k, source: Box::new(source) });
                    }
                    Err(_) => {
                        return Err(Error::Timeout {
                            url: self.url().to_owned(),
                            op: "get",
                            key: k,
                            after: self.options.request_timeout,
                        });
                    }
                }
            }
            let digests = hasher.finalize();
            report.checked += 1;
            report.bytes += digests.size;
            if digests.size != size || etag.verify(&digests).is_err() {
                tracing::warn!(tier = %self.url(), key = %k, "remote blob does not match its key");
                report.corrupt.push(k);
            }
        }
        Ok(report)
    }
}
