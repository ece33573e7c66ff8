//! Where things live: the hub cache in `huggingface_hub`'s exact layout, and the
//! modelcache home. Every function returns a path relative to its root.
//!
//! ```text
//! <hub>/models--org--name/blobs/<etag>[.incomplete]
//!                        /snapshots/<commit>/<path>   -> ../../blobs/<etag>
//!                        /refs/<branch-or-tag>
//!                        /.no_exist/<commit>/<path>
//!                        /trees/<commit>.json
//! <hub>/.locks/models--org--name/<etag>.lock
//! <hub>/blobs/<2hex>/<xet-hash>                       huggingface_hub's shared store
//! <hub>/CACHEDIR.TAG
//! <home>/hubs/<key>/index.sqlite3                     key: hash of the hub's canonical path
//! <home>/hubs/<key>/leases/<repo-folder>.lock         shared while in use
//! <home>/hubs/<key>/partial/<repo-folder>/<etag>.ranges  range record of an .incomplete
//! <home>/hubs/<key>/partial/<repo-folder>/<etag>.holder  who holds its lock (`holder`)
//! <home>/artifacts/{index.sqlite3,blobs/,entries/,locks/,leases/,partial/}
//! ```

use cache_core::{CommitHash, Etag, Repo, RepoPath, Revision};
use camino::{Utf8Path, Utf8PathBuf};

/// `CACHEDIR.TAG` as `huggingface_hub` writes it (`_local_folder.CACHEDIR_TAG_CONTENT`).
pub(crate) const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by huggingface_hub.\n\
# For information about cache directory tags, see:\n\
#\thttps://bford.info/cachedir/\n";

/// The folder of `huggingface_hub`'s cross-repo shared blob store, at the hub root.
pub(crate) const SHARED_BLOBS: &str = "blobs";
/// The lock folder at the hub root.
pub(crate) const LOCKS: &str = ".locks";

/// Paths of one repo inside the hub cache.
#[derive(Clone, Debug)]
pub(crate) struct RepoLayout {
    pub(crate) folder: String,
}

impl RepoLayout {
    pub(crate) fn new(repo: &Repo) -> Self {
        RepoLayout { folder: repo.folder_name() }
    }

    pub(crate) fn root(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(&self.folder)
    }

    pub(crate) fn blobs(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/blobs", self.folder))
    }

    pub(crate) fn blob(&self, etag: &Etag) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/blobs/{etag}", self.folder))
    }

    pub(crate) fn snapshots(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/snapshots", self.folder))
    }

    pub(crate) fn snapshot(&self, commit: &CommitHash) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/snapshots/{commit}", self.folder))
    }

    /// `<root>/<folder>/snapshots/<commit>/<path>` in one allocation, with the length of
    /// `<root>/` and of `<folder>`, so the relative path and the folder are slices of it.
    pub(crate) fn snapshot_file_under(
        root: &Utf8Path,
        repo: &Repo,
        commit: &CommitHash,
        path: &RepoPath,
    ) -> (Utf8PathBuf, usize, usize) {
        // The rest fits in 80: `/`, `datasets` at most, two `--`, `/snapshots/`, 40 hex, `/`.
        let mut s = String::with_capacity(root.as_str().len() + repo.id.as_str().len() + path.as_str().len() + 80);
        s.push_str(root.as_str());
        s.push('/');
        let root_len = s.len();
        repo.push_folder_name(&mut s);
        let folder_len = s.len() - root_len;
        s.push_str("/snapshots/");
        s.push_str(commit.as_str());
        s.push('/');
        s.push_str(path.as_str());
        (Utf8PathBuf::from(s), root_len, folder_len)
    }

    pub(crate) fn snapshot_file(&self, commit: &CommitHash, path: &RepoPath) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/snapshots/{commit}/{path}", self.folder))
    }

    pub(crate) fn refs(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/refs", self.folder))
    }

    pub(crate) fn ref_file(&self, name: &Revision) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/refs/{name}", self.folder))
    }

    pub(crate) fn no_exist(&self, commit: &CommitHash, path: &RepoPath) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/.no_exist/{commit}/{path}", self.folder))
    }

    pub(crate) fn no_exist_dir(&self, commit: &CommitHash) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/.no_exist/{commit}", self.folder))
    }

    pub(crate) fn tree(&self, commit: &CommitHash) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{}/trees/{commit}.json", self.folder))
    }

    pub(crate) fn lock_dir(&self) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{LOCKS}/{}", self.folder))
    }

    pub(crate) fn lock_file(&self, etag: &Etag) -> Utf8PathBuf {
        Utf8PathBuf::from(format!("{LOCKS}/{}/{etag}.lock", self.folder))
    }
}

/// The home-relative folder of one hub cache's state.
pub(crate) fn hub_state_dir(key: &str) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("hubs/{key}"))
}

/// The home-relative folder of one hub cache's range records (`record`).
pub(crate) fn records_dir(state: &Utf8Path) -> Utf8PathBuf {
    state.join("partial")
}

/// The range record of `<hub>/<folder>/blobs/<blob>.incomplete`.
pub(crate) fn range_record(state: &Utf8Path, folder: &str, blob: &str) -> Utf8PathBuf {
    records_dir(state).join(folder).join(format!("{blob}{}", crate::record::SUFFIX))
}

/// The holder record of the lock on `<hub>/<folder>/blobs/<blob>` (`holder`), beside its
/// range record.
pub(crate) fn holder_record(state: &Utf8Path, folder: &str, blob: &str) -> Utf8PathBuf {
    records_dir(state).join(folder).join(format!("{blob}{}", crate::holder::SUFFIX))
}

/// The home-relative folder of the artifacts' range records.
pub(crate) const ARTIFACT_RECORDS: &str = "artifacts/partial";

/// The key of a hub cache in the home: 16 hex digits of the BLAKE3 of its canonical path.
pub(crate) fn hub_key(canonical: &str) -> String {
    blake3::hash(canonical.as_bytes()).to_hex()[..16].to_owned()
}

/// Whether a name in `blobs/` is a blob named by an etag (not `.incomplete`, not a temp).
pub(crate) fn is_etag_name(name: &str) -> bool {
    Etag::new(name).is_ok()
}

/// The etag an `.incomplete` file belongs to: `<etag>.incomplete` (ours, resumable) or
/// `<etag>.<8hex>.incomplete` (`huggingface_hub`'s per-process files).
pub(crate) fn incomplete_etag(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(".incomplete")?;
    let etag = stem.split('.').next()?;
    is_etag_name(etag).then_some(etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_hub_layout() {
        let repo = Repo::model("org/name".parse().unwrap());
        let l = RepoLayout::new(&repo);
        let commit: CommitHash = "0123456789abcdef0123456789abcdef01234567".parse().unwrap();
        let etag = Etag::new(&"ab".repeat(32)).unwrap();
        assert_eq!(l.blob(&etag), format!("models--org--name/blobs/{}", "ab".repeat(32)));
        assert_eq!(
            l.snapshot_file(&commit, &"a/b.bin".parse().unwrap()),
            format!("models--org--name/snapshots/{commit}/a/b.bin")
        );
        assert_eq!(l.ref_file(&"refs/pr/1".parse().unwrap()), "models--org--name/refs/refs/pr/1");
        assert_eq!(l.lock_file(&etag), format!(".locks/models--org--name/{etag}.lock"));
        assert_eq!(l.tree(&commit), format!("models--org--name/trees/{commit}.json"));
        assert_eq!(l.no_exist(&commit, &"x".parse().unwrap()), format!("models--org--name/.no_exist/{commit}/x"));
        assert_eq!(incomplete_etag(&format!("{etag}.incomplete")), Some(etag.to_string().as_str()));
        assert_eq!(incomplete_etag(&format!("{etag}.0a1b2c3d.incomplete")), Some(etag.to_string().as_str()));
        assert_eq!(incomplete_etag("junk.incomplete"), None);
        assert_eq!(hub_key("/a").len(), 16);
    }
}
