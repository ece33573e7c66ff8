//! Pushing into a tier: blobs create-if-absent (keys are digests, so a racing writer
//! stores the same bytes and "already exists" is success), in parts above
//! [`TierOptions::multipart_above`](crate::TierOptions); listings after their blobs; refs
//! last. A denied write demotes the tier to `ro` for the process. Nothing is ever deleted.

use std::path::Path as FsPath;
use std::sync::atomic::Ordering;

use cache_core::{CommitHash, Repo, Revision, Timestamp};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;

use crate::counters::Counters;
use crate::error::Error;
use crate::layout::{BlobKey, ref_key, tree_key};
use crate::tier::{Failure, Tier};

/// What a push did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Written now.
    Written,
    /// The tier already held it.
    Present,
}

/// A ref as a tier stores it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefRecord {
    /// The commit the ref pointed at.
    pub commit: String,
    /// When it was pushed (milliseconds since the epoch).
    pub time: i64,
}

const PART: usize = 16 << 20;

impl Tier {
    fn writable(&self) -> Result<(), Error> {
        if self.mode().writes() { Ok(()) } else { Err(Error::NotWritable { url: self.url().to_owned(), mode: self.mode() }) }
    }

    fn fail(&self, f: Failure, key: &str) -> Error {
        match f {
            Failure::Denied(_) => self.demote(key),
            f => f.into_error(self, key).unwrap_or_else(|| Error::Skipped { url: self.url().to_owned() }),
        }
    }

    /// Writes small bytes at `key`: create-if-absent unless `overwrite`.
    async fn put_small(&self, key: &str, body: Vec<u8>, overwrite: bool) -> Result<Pushed, Error> {
        let path = self.path(key);
        let create = !overwrite && self.conditional_put.load(Ordering::Relaxed);
        if !overwrite && !create && self.exists(key).await? {
            return Ok(Pushed::Present);
        }
        let mode = if create { PutMode::Create } else { PutMode::Overwrite };
        let opts = PutOptions { mode, ..PutOptions::default() };
        match self.call("store", key, self.store.put_opts(&path, PutPayload::from(body.clone()), opts)).await {
            Ok(_) => Ok(Pushed::Written),
            Err(Failure::Exists) => Ok(Pushed::Present),
            Err(Failure::Unsupported) if create => {
                // This store has no conditional writes: look, then write (same bytes either way).
                self.conditional_put.store(false, Ordering::Relaxed);
                Box::pin(self.put_small(key, body, false)).await
            }
            Err(f) => Err(self.fail(f, key)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        match self.call("look up", key, self.store.head(&self.path(key))).await {
            Ok(_) => Ok(true),
            Err(Failure::NotFound) => Ok(false),
            Err(f) => Err(self.fail(f, key)),
        }
    }

    /// Pushes a verified local blob (`file`, `size` bytes) under `key`. An object this
    /// process found corrupt is overwritten (repaired); anything else is created only if
    /// absent.
    pub async fn push_blob(&self, key: &BlobKey, file: &FsPath, size: u64) -> Result<Pushed, Error> {
        self.writable()?;
        self.probe().await?;
        let k = key.key();
        let repair = self.repair.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&k);
        let io = |op, source| Error::Io { op, path: file.display().to_string(), source };
        let pushed = if size <= self.options.multipart_above {
            let body = tokio::fs::read(file).await.map_err(|e| io("read", e))?;
            if body.len() as u64 != size {
                return Err(io("read", std::io::Error::other(format!("expected {size} bytes, found {}", body.len()))));
            }
            self.put_small(&k, body, repair).await?
        } else {
            if !repair && self.exists(&k).await? {
                return Ok(Pushed::Present);
            }
            self.put_parts(&k, file, size).await?;
            Pushed::Written
        };
        if pushed == Pushed::Written {
            Counters::bump(&self.counters.blobs_pushed, 1);
            Counters::bump(&self.counters.bytes_pushed, size);
            self.repair.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&k);
            tracing::info!(tier = %self.url(), key = %k, bytes = size, repaired = repair, "pushed to the remote tier");
        }
        Ok(pushed)
    }

    /// A multipart upload from the file, a few parts in flight.
    async fn put_parts(&self, key: &str, file: &FsPath, size: u64) -> Result<(), Error> {
        let io = |op, source| Error::Io { op, path: file.display().to_string(), source };
        let path = self.path(key);
        let upload =
            self.call("start the upload of", key, self.store.put_multipart(&path)).await.map_err(|f| self.fail(f, key))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut f = tokio::fs::File::open(file).await.map_err(|e| io("open", e))?;
        let mut sent = 0u64;
        let mut buf = vec![0u8; PART];
        loop {
            let n = f.read(&mut buf).await.map_err(|e| io("read", e))?;
            if n == 0 {
                break;
            }
            if let Err(f) = self.call("upload", key, writer.wait_for_capacity(4)).await {
                return Err(self.fail(f, key));
            }
            writer.write(&buf[..n]);
            sent += n as u64;
        }
        if sent != size {
            writer.abort().await.ok();
            return Err(io("read", std::io::Error::other(format!("expected {size} bytes, read {sent}"))));
        }
        self.call("finish the upload of", key, writer.finish()).await.map_err(|f| self.fail(f, key))?;
        Ok(())
    }

    /// Pushes a commit's listing (the hub cache's `trees/<commit>.json` bytes). Push it
    /// only after every blob it lists is in the tier.
    pub async fn push_tree(&self, repo: &Repo, commit: &CommitHash, json: &[u8]) -> Result<Pushed, Error> {
        self.writable()?;
        self.probe().await?;
        let key = tree_key(repo, commit);
        self.put_signed(&key, json.to_vec(), false).await
    }

    /// Points the tier's ref at `commit` (after its listing).
    pub async fn push_ref(&self, repo: &Repo, revision: &Revision, commit: &CommitHash) -> Result<Pushed, Error> {
        self.writable()?;
        self.probe().await?;
        let key = ref_key(repo, revision);
        let record = RefRecord { commit: commit.to_string(), time: Timestamp::now().as_unix_millis() };
        let body = serde_json::to_vec(&record).unwrap_or_default();
        self.put_signed(&key, body, true).await
    }

    /// Writes the signature (when signing) before the object, so a reader that sees the
    /// object can check it.
    pub(crate) async fn put_signed(&self, key: &str, body: Vec<u8>, overwrite: bool) -> Result<Pushed, Error> {
        if let Some(signer) = &self.signer {
            let sig = signer.sign(key, &body);
            self.put_small(&format!("{key}.sig"), sig.into_bytes(), true).await?;
        }
        self.put_small(key, body, overwrite).await
    }
}
