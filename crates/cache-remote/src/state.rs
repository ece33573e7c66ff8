//! What a tier leaves in the modelcache home: the figures of every process
//! (`remote/stats.json`, summed) and the pushes that did not finish
//! (`remote/pending.json`, retried later). Each file is replaced atomically under a lock
//! file, so concurrent processes never lose each other's updates.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::counters::TierStats;
use crate::error::Error;

/// A commit (or a repository's cached files), or a URL artifact, still to be pushed to a
/// tier.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct PendingPush {
    /// The tier's URL.
    pub tier: String,
    /// The repository, as `huggingface_hub` names its folder (`models--org--name`), or
    /// `url` for a URL artifact.
    pub repo: String,
    /// The commit, or a URL artifact's SHA-256 (hex).
    pub commit: String,
}

/// The home's tier files.
#[derive(Clone, Debug)]
pub struct TierState {
    dir: PathBuf,
}

impl TierState {
    /// The state under `home` (`<home>/remote`).
    pub fn new(home: &Path) -> Self {
        TierState { dir: home.join("remote") }
    }

    fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io { op, path: path.display().to_string(), source }
    }

    /// Runs `f` on the parsed content of `name` under its lock, writing back what it returns.
    fn update<T: serde::Serialize + serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
        f: impl FnOnce(&mut T),
    ) -> Result<T, Error> {
        fs::create_dir_all(&self.dir).map_err(|e| Self::io("create", &self.dir, e))?;
        let lock_path = self.dir.join(format!("{name}.lock"));
        let lock = File::create(&lock_path).map_err(|e| Self::io("create", &lock_path, e))?;
        lock.lock().map_err(|e| Self::io("lock", &lock_path, e))?;
        let path = self.dir.join(name);
        let mut value: T = match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => T::default(),
            Err(e) => return Err(Self::io("read", &path, e)),
        };
        f(&mut value);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let body = serde_json::to_vec_pretty(&value).unwrap_or_default();
        let mut file = File::create(&tmp).map_err(|e| Self::io("create", &tmp, e))?;
        file.write_all(&body).and_then(|()| file.sync_all()).map_err(|e| Self::io("write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Self::io("replace", &path, e))?;
        Ok(value)
    }

    /// Adds this process's figures to the stored ones.
    pub fn add_stats(&self, deltas: &[TierStats]) -> Result<(), Error> {
        if deltas.iter().all(TierStats::is_zero) {
            return Ok(());
        }
        self.update::<BTreeMap<String, TierStats>>("stats.json", |all| {
            for d in deltas {
                let e = all.entry(d.url.clone()).or_insert_with(|| TierStats { url: d.url.clone(), ..TierStats::default() });
                e.add(d);
            }
        })?;
        Ok(())
    }

    /// The figures of every process, per tier URL.
    pub fn stats(&self) -> BTreeMap<String, TierStats> {
        fs::read(self.dir.join("stats.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    /// Remembers pushes to retry later.
    pub fn remember(&self, pending: &[PendingPush]) -> Result<(), Error> {
        if pending.is_empty() {
            return Ok(());
        }
        self.update::<Vec<PendingPush>>("pending.json", |all| {
            all.extend(pending.iter().cloned());
            all.sort();
            all.dedup();
        })?;
        Ok(())
    }

    /// Takes every remembered push (the caller remembers again what fails again).
    pub fn take_pending(&self) -> Result<Vec<PendingPush>, Error> {
        if !self.dir.join("pending.json").exists() {
            return Ok(Vec::new());
        }
        let mut taken = Vec::new();
        self.update::<Vec<PendingPush>>("pending.json", |all| taken = std::mem::take(all))?;
        Ok(taken)
    }

    /// The remembered pushes, without taking them.
    pub fn pending(&self) -> Vec<PendingPush> {
        fs::read(self.dir.join("pending.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_add_up_and_pending_pushes_are_taken_once() {
        let home = tempfile::tempdir().unwrap();
        let s = TierState::new(home.path());
        let one = TierStats { url: "s3://b".into(), hits: 2, bytes_pulled: 10, ..TierStats::default() };
        s.add_stats(std::slice::from_ref(&one)).unwrap();
        s.add_stats(&[one]).unwrap();
        assert_eq!(s.stats()["s3://b"].hits, 4);
        let p = PendingPush { tier: "s3://b".into(), repo: "models--a--b".into(), commit: "c".repeat(40) };
        s.remember(&[p.clone(), p.clone()]).unwrap();
        assert_eq!(s.pending(), vec![p.clone()]);
        assert_eq!(s.take_pending().unwrap(), vec![p]);
        assert!(s.take_pending().unwrap().is_empty());
    }
}
