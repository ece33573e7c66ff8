//! `dedup`: a cache that already holds the same blob under several repos (written by
//! `huggingface_hub`, or before cross-repo hits existed) gets one inode per digest.
//!
//! # What it does
//! From the index (after the caller reconciled it with the disk), the etags held by more
//! than one repo; for each, the repo blobs that are regular files, grouped by inode. The
//! inode with the most names is kept. Every other copy is hashed, and the kept one too,
//! against the etag: only copies whose bytes match are replaced, and only by a kept copy
//! whose bytes match. A replacement is a hard link to the kept inode under a temporary
//! name in the repo folder, renamed over `blobs/<etag>`: at every instant the name holds
//! one whole, correct blob, so `huggingface_hub` and modelcache readers never see a gap.
//! Each replacement holds the repo's lease (no removal meanwhile) and the blob's lock (no
//! download of it meanwhile), and checks the name still holds the inode that was hashed.
//!
//! # Performance
//! One index read of every entry; a `stat` per blob of a digest that several repos hold
//! (the rest costs nothing); hashing only the bytes of such blobs. 100 000 entries with
//! few duplicates take well under a second.
//!
//! # Bytes saved
//! A copy's bytes are saved when its inode lost its last name (its open handle sees a
//! link count of 0). A dry run reports what would be saved: the copies whose every name
//! is a repo blob it would replace, without hashing.

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt as _;

use cache_core::{Etag, Repo};
use camino::Utf8PathBuf;
use cap_std::fs::MetadataExt;

use crate::crossrepo::set_read_only;
use crate::error::{Error, Result};
use crate::layout::RepoLayout;
use crate::store::Store;
use crate::{fsx, hash, lock, scan};

/// What [`Store::dedup`] did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DedupReport {
    /// Digests held by more than one inode.
    pub digests: u64,
    /// Repo blobs replaced by a hard link (or that would be).
    pub linked: u64,
    /// Bytes freed (or that would be).
    pub bytes_saved: u64,
    /// Copies left alone, each with the reason (bytes that do not match their digest, a
    /// repo in use, another filesystem).
    pub skipped: Vec<String>,
    /// Whether nothing was changed.
    pub dry_run: bool,
}

/// One repo blob of a duplicated digest.
struct Copy {
    repo: Repo,
    rel: Utf8PathBuf,
    /// The identity the index gives it.
    id: String,
}

/// One inode holding a duplicated digest, with the repo blobs naming it.
struct Inode {
    dev_ino: (u64, u64),
    nlink: u64,
    size: u64,
    copies: Vec<Copy>,
}

impl Store {
    /// Gives every digest that several repos hold as separate files one inode (see the
    /// module docs). Reconcile first so the index knows what other tools wrote.
    pub fn dedup(&self, dry_run: bool) -> Result<DedupReport> {
        let mut report = DedupReport { dry_run, ..DedupReport::default() };
        for (etag, mut inodes) in self.duplicates()? {
            report.digests += 1;
            // The inode with the most names stays (ties: the first repo by name).
            inodes.sort_by_key(|i| std::cmp::Reverse(i.nlink));
            let mut inodes = inodes.into_iter();
            let Some(keep) = inodes.next() else { continue };
            if dry_run {
                for other in inodes {
                    report.linked += other.copies.len() as u64;
                    if other.nlink == other.copies.len() as u64 {
                        report.bytes_saved += other.size;
                    }
                }
                continue;
            }
            self.dedup_digest(&etag, &keep, inodes.collect(), &mut report)?;
        }
        tracing::info!(digests = report.digests, linked = report.linked, bytes = report.bytes_saved, dry_run, "dedup");
        Ok(report)
    }

    /// The etags whose repo blobs are more than one inode, with those inodes.
    fn duplicates(&self) -> Result<BTreeMap<Etag, Vec<Inode>>> {
        let mut by_etag: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for row in self.index()?.rows(None)? {
            if let Some(etag) = row.etag {
                by_etag.entry(etag).or_default().entry(row.repo).or_insert(row.blob);
            }
        }
        let mut out = BTreeMap::new();
        for (etag, repos) in by_etag.into_iter().filter(|(_, r)| r.len() > 1) {
            let Ok(etag) = Etag::new(&etag) else { continue };
            let mut inodes: Vec<Inode> = Vec::new();
            for (folder, id) in repos {
                let Ok(repo) = Repo::from_folder_name(&folder) else { continue };
                let layout = RepoLayout::new(&repo);
                let rel = layout.blob(&etag);
                let Ok(m) = self.hub.symlink_metadata(&rel) else { continue };
                if !m.is_file() || !self.is_contained(&layout) {
                    continue;
                }
                let copy = Copy { repo, rel, id };
                match inodes.iter_mut().find(|i| i.dev_ino == (m.dev(), m.ino())) {
                    Some(i) => i.copies.push(copy),
                    None => {
                        inodes.push(Inode { dev_ino: (m.dev(), m.ino()), nlink: m.nlink(), size: m.len(), copies: vec![copy] });
                    }
                }
            }
            if inodes.len() > 1 {
                out.insert(etag, inodes);
            }
        }
        Ok(out)
    }

    /// Replaces the copies of `others` by hard links to `keep`, each after checking both.
    fn dedup_digest(&self, etag: &Etag, keep: &Inode, others: Vec<Inode>, report: &mut DedupReport) -> Result<()> {
        let Some(source) = keep.copies.first() else { return Ok(()) };
        if !self.matches(&source.rel, etag, keep.dev_ino)? {
            let what = format!("`{}`: its bytes do not match its digest (run `modelcache verify --repair`)", source.rel);
            tracing::warn!("not deduplicating {what}");
            report.skipped.push(what);
            return Ok(());
        }
        let new_id = scan::inode_id(keep.dev_ino.0, keep.dev_ino.1, &etag.to_string());
        let mut renamed = false;
        for other in others {
            let Some(first) = other.copies.first() else { continue };
            let handle = match self.hub.open(&first.rel) {
                Ok(f) => f.into_std(),
                Err(_) => continue,
            };
            let hashed = handle.metadata().is_ok_and(|m| (m.dev(), m.ino()) == other.dev_ino)
                && hash::etag_digest(&handle, etag).map_err(Error::io("read", self.hub_path.join(&first.rel)))?
                    == etag.to_string();
            if !hashed {
                let what = format!("`{}`: its bytes do not match its digest (run `modelcache verify --repair`)", first.rel);
                tracing::warn!("not deduplicating {what}");
                report.skipped.push(what);
                continue;
            }
            for copy in &other.copies {
                match self.replace_with_link(&source.rel, copy, etag, other.dev_ino) {
                    Ok(true) => {
                        report.linked += 1;
                        renamed |= self.index()?.rename_blob(&copy.id, &new_id)? > 0;
                    }
                    Ok(false) => report.skipped.push(format!("`{}`: changed or in use meanwhile", copy.rel)),
                    Err(e) => report.skipped.push(format!("`{}`: {e}", copy.rel)),
                }
            }
            if handle.metadata().is_ok_and(|m| m.nlink() == 0) {
                report.bytes_saved += other.size;
            }
        }
        if renamed {
            for copy in &keep.copies {
                self.index()?.rename_blob(&copy.id, &new_id)?;
            }
        }
        Ok(())
    }

    /// Whether the file at `rel` is still the inode `dev_ino` and holds the etag's bytes.
    fn matches(&self, rel: &camino::Utf8Path, etag: &Etag, dev_ino: (u64, u64)) -> Result<bool> {
        let Ok(file) = self.hub.open(rel) else { return Ok(false) };
        let file = file.into_std();
        if !file.metadata().is_ok_and(|m| (m.dev(), m.ino()) == dev_ino) {
            return Ok(false);
        }
        let digest = hash::etag_digest(&file, etag).map_err(Error::io("read", self.hub_path.join(rel)))?;
        if digest == etag.to_string() {
            set_read_only(&file).map_err(Error::io("protect", self.hub_path.join(rel)))?;
        }
        Ok(digest == etag.to_string())
    }

    /// Under the repo's lease and the blob's lock: links `source` to a temporary name in
    /// the repo folder and renames it over `copy`, if `copy` is still the inode `dev_ino`.
    fn replace_with_link(&self, source: &camino::Utf8Path, copy: &Copy, etag: &Etag, dev_ino: (u64, u64)) -> Result<bool> {
        let _lease = self.lease(&copy.repo)?;
        let lock_rel = RepoLayout::new(&copy.repo).lock_file(etag);
        let Some(_lock) = lock::try_exclusive(&self.hub, &lock_rel, &self.hub_path.join(&lock_rel), false)? else {
            return Ok(false);
        };
        let still = self.hub.symlink_metadata(&copy.rel).is_ok_and(|m| m.is_file() && (m.dev(), m.ino()) == dev_ino);
        if !still {
            return Ok(false);
        }
        let tmp = RepoLayout::new(&copy.repo).root().join(fsx::temp_name());
        self.hub.hard_link(source, &self.hub, &tmp).map_err(Error::io("link", self.hub_path.join(&tmp)))?;
        self.hub.rename(&tmp, &self.hub, &copy.rel).map_err(|e| {
            let _ = self.hub.remove_file(&tmp);
            Error::io("replace", self.hub_path.join(&copy.rel))(e)
        })?;
        Ok(true)
    }
}
