//! Object keys of a tier (format `v1`): content-addressed, versioned, no symlinks.
//!
//! ```text
//! <prefix>/v1/TIER.json                                  format marker, written once
//! <prefix>/v1/blobs/sha256/<ab>/<hex>                    an LFS file, by its SHA-256
//! <prefix>/v1/blobs/gitsha1/<ab>/<hex>                   a small file, by its git blob id
//! <prefix>/v1/urls/sha256/<ab>/<hex>                     a URL artifact with a known SHA-256
//! <prefix>/v1/trees/<type>/<org>--<name>/<commit>.json   the commit's listing (hub cache `trees/` JSON)
//! <prefix>/v1/refs/<type>/<org>--<name>/<rev>            {"commit": …, "time": …} (optional)
//! ```
//! `<type>` is `models`, `datasets` or `spaces`; `<ab>` the digest's first two hex digits.

use cache_core::{CommitHash, Etag, Repo, Revision, Sha256};

/// The layout version: every key starts with it.
pub const VERSION: &str = "v1";

/// The format marker's key.
pub(crate) const MARKER: &str = "v1/TIER.json";

/// What a tier holds under a content key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlobKey {
    /// A Hub blob, by its etag.
    Hub(Etag),
    /// A URL artifact, by its SHA-256.
    Url(Sha256),
}

impl BlobKey {
    /// The object key (without the tier's prefix).
    pub fn key(&self) -> String {
        let (dir, hex) = match self {
            BlobKey::Hub(Etag::Sha256(d)) => ("blobs/sha256", d.to_hex()),
            BlobKey::Hub(Etag::GitSha1(d)) => ("blobs/gitsha1", d.to_hex()),
            BlobKey::Url(d) => ("urls/sha256", d.to_hex()),
        };
        format!("{VERSION}/{dir}/{}/{hex}", &hex[..2])
    }

    /// The etag the content must hash to.
    pub fn etag(&self) -> Etag {
        match *self {
            BlobKey::Hub(e) => e,
            BlobKey::Url(d) => Etag::Sha256(d),
        }
    }

    /// Parses an object key back (as listed); `None` for anything else.
    pub fn from_key(key: &str) -> Option<BlobKey> {
        let rest = key.strip_prefix(VERSION)?.strip_prefix('/')?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            ["blobs" | "urls", kind, ab, hex] if hex.get(..2) == Some(*ab) => {
                let etag = Etag::new(hex).ok()?;
                match (parts[0], *kind, etag) {
                    ("blobs", "sha256", e @ Etag::Sha256(_)) | ("blobs", "gitsha1", e @ Etag::GitSha1(_)) => {
                        Some(BlobKey::Hub(e))
                    }
                    ("urls", "sha256", Etag::Sha256(d)) => Some(BlobKey::Url(d)),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// `<type>/<org>--<name>` of a repository.
fn repo_dir(repo: &Repo) -> String {
    let folder = repo.folder_name();
    let name = folder.split_once("--").map_or(folder.as_str(), |(_, n)| n);
    format!("{}/{name}", repo.repo_type.plural())
}

/// The key of a commit's listing.
pub fn tree_key(repo: &Repo, commit: &CommitHash) -> String {
    format!("{VERSION}/trees/{}/{commit}.json", repo_dir(repo))
}

/// The key of a branch or tag.
pub fn ref_key(repo: &Repo, revision: &Revision) -> String {
    format!("{VERSION}/refs/{}/{}", repo_dir(repo), revision.as_str())
}

/// A listing key parsed back: the repository and commit; `None` for anything else.
pub fn parse_tree_key(key: &str) -> Option<(Repo, CommitHash)> {
    let rest = key.strip_prefix(VERSION)?.strip_prefix("/trees/")?;
    let (kind, rest) = rest.split_once('/')?;
    let (name, file) = rest.split_once('/')?;
    let commit = CommitHash::new(file.strip_suffix(".json")?).ok()?;
    let repo = Repo::from_folder_name(&format!("{kind}--{name}")).ok()?;
    Some((repo, commit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout_and_parse_back() {
        let sha = Sha256::of(b"x");
        let hex = sha.to_hex();
        let lfs = BlobKey::Hub(Etag::Sha256(sha));
        assert_eq!(lfs.key(), format!("v1/blobs/sha256/{}/{hex}", &hex[..2]));
        assert_eq!(BlobKey::from_key(&lfs.key()), Some(lfs));
        let git = BlobKey::Hub(Etag::GitSha1(cache_core::GitSha1::of(b"x")));
        assert!(git.key().starts_with("v1/blobs/gitsha1/"));
        assert_eq!(BlobKey::from_key(&git.key()), Some(git));
        let url = BlobKey::Url(sha);
        assert!(url.key().starts_with("v1/urls/sha256/"));
        assert_eq!(BlobKey::from_key(&url.key()), Some(url));
        assert_eq!(BlobKey::from_key("v1/blobs/sha256/zz/abc"), None);
        let repo = Repo::model("org/name".parse().unwrap());
        let commit = CommitHash::new(&"a".repeat(40)).unwrap();
        let key = tree_key(&repo, &commit);
        assert_eq!(key, format!("v1/trees/models/org--name/{}.json", "a".repeat(40)));
        assert_eq!(parse_tree_key(&key), Some((repo.clone(), commit)));
        assert_eq!(ref_key(&repo, &Revision::main()), "v1/refs/models/org--name/main");
        let plain = Repo::new(cache_core::RepoType::Dataset, "squad".parse().unwrap());
        assert_eq!(parse_tree_key(&tree_key(&plain, &commit)), Some((plain, commit)));
    }
}
