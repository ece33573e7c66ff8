//! `HubClient`: the Hub's metadata over `cache-fetch` — revisions, tree listings and file
//! metadata — with the Hub's errors mapped to precise ones.
//!
//! # Credentials
//! The token goes only to the endpoint's origin: metadata requests follow relative
//! redirects only (a renamed repo), the CDN's absolute `302` is read, not followed, and a
//! listing's `next` link to another origin is refused.
//!
//! # Listings a server gets wrong
//! A listing ends: a `next` link to a page already read, or past [`MAX_LISTING_PAGES`]
//! pages or [`MAX_LISTING_FILES`] files, is an [`Error::InvalidResponse`] (no loop,
//! bounded work and memory). So is a listing that
//! could not be laid out on disk (a path both a file and a folder, a file twice), and an
//! absurd file size (over 1 PiB and over the cache's whole filesystem) is refused before
//! any transfer (see `download`): a server's wrong answer is not reported as a disk
//! problem. A plausible file too large for a small disk is still a full disk.

use std::time::Duration;

use cache_core::{CommitHash, Etag, Repo, RepoPath, Revision};
use cache_fetch::{FetchConfig, Fetcher, Redirects, RequestOptions, Response, Token};
use cache_store::{Tree, TreeEntry};

use crate::api::{self, RepoInfo, TreeItem};
use crate::error::{Error, Result};
use crate::urls;

/// How to reach the Hub. Its `Debug` output hides a password in the endpoint.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// The endpoint (`HF_ENDPOINT`), without a trailing `/`.
    pub endpoint: String,
    /// The token (`HF_TOKEN` or the token file), sent to the endpoint's origin only.
    pub token: Option<Token>,
    /// Never touch the network: answer from the cache only.
    pub offline: bool,
    /// Trust a cached branch or tag for this long after it was last resolved (0: always
    /// ask the Hub, as `huggingface_hub` does).
    pub revalidate_after: Duration,
    /// Concurrent file transfers of a snapshot (each large file may use up to
    /// `fetch.parallelism` range requests besides).
    pub parallelism: usize,
    /// Timeouts (per read, and overall per file: `download_timeout`), retries and range
    /// parallelism of transfers.
    pub fetch: FetchConfig,
}

impl HubConfig {
    /// Defaults for `endpoint`: online, no token, always revalidate, 8 transfers.
    pub fn new(endpoint: impl Into<String>) -> Self {
        HubConfig {
            endpoint: endpoint.into().trim_end_matches('/').to_owned(),
            token: None,
            offline: false,
            revalidate_after: Duration::ZERO,
            parallelism: 8,
            fetch: FetchConfig::default(),
        }
    }
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("endpoint", &cache_core::redact_url(&self.endpoint))
            .field("token", &self.token)
            .field("offline", &self.offline)
            .field("revalidate_after", &self.revalidate_after)
            .field("parallelism", &self.parallelism)
            .field("fetch", &self.fetch)
            .finish()
    }
}

/// What the Hub says about one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMetadata {
    /// The commit the revision resolved to (`X-Repo-Commit`).
    pub commit: CommitHash,
    /// The content's etag (`X-Linked-Etag` for LFS files, else `ETag`).
    pub etag: Etag,
    /// Size in bytes (`X-Linked-Size`, else `Content-Length`).
    pub size: u64,
    /// Where to download it: the CDN location for LFS files, else `resolve/<commit>/…`.
    pub url: String,
}

/// One file of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteFile {
    /// Path in the repository.
    pub path: RepoPath,
    /// Size of the content.
    pub size: u64,
    /// Its etag (sha256 for LFS files, else the git blob id).
    pub etag: Etag,
    /// The git blob id.
    pub blob_id: String,
    /// Whether it is stored in LFS.
    pub lfs: bool,
    /// The Xet hash of the content, when the listing names one (Xet-backed files):
    /// `huggingface_hub`'s shared blob store keys payloads by it.
    pub xet_hash: Option<String>,
}

/// The Hub's metadata API. Cheap to clone (one connection pool). Its `Debug` output hides
/// a password in the endpoint.
#[derive(Clone)]
pub struct HubClient {
    pub(crate) fetcher: Fetcher,
    pub(crate) endpoint: String,
    pub(crate) token: Option<Token>,
    /// Where the retries of its requests are reported, when someone waits for them.
    pub(crate) report: Option<cache_fetch::RetryReport>,
    /// Asked for blobs before the Hub (a team tier), when set.
    pub(crate) source: Option<std::sync::Arc<dyn crate::source::BlobSource>>,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("endpoint", &cache_core::redact_url(&self.endpoint))
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    /// A client for `config`'s endpoint and token.
    pub fn new(config: &HubConfig) -> Result<Self> {
        let fetcher = Fetcher::new(config.fetch.clone())
            .map_err(|source| Error::Fetch { what: "set up the HTTP client".to_owned(), source })?;
        Ok(HubClient { fetcher, endpoint: config.endpoint.clone(), token: config.token.clone(), report: None, source: None })
    }

    /// This client, its requests' retries reported to `progress` as `label`'s.
    pub(crate) fn reporting(&self, label: &str, progress: std::sync::Arc<dyn cache_fetch::Progress>) -> HubClient {
        HubClient { report: Some(cache_fetch::RetryReport { label: label.to_owned(), progress }), ..self.clone() }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The token for `url`: only for the endpoint's origin.
    pub(crate) fn token_for(&self, url: &str) -> Option<Token> {
        self.token.clone().filter(|_| urls::origin(url).is_some() && urls::origin(url) == urls::origin(&self.endpoint))
    }

    fn options(&self, redirects: Redirects) -> RequestOptions {
        RequestOptions { token: self.token.clone(), redirects, report: self.report.clone(), ..RequestOptions::default() }
    }

    /// The commit a branch, tag or commit names (a commit hash is returned as is).
    pub async fn resolve_revision(&self, repo: &Repo, revision: &Revision) -> Result<CommitHash> {
        if let Some(c) = revision.commit() {
            return Ok(c);
        }
        let url = urls::repo_info(&self.endpoint, repo, Some(revision));
        let what = || format!("resolve `{revision}` of `{repo}`");
        let resp = self.fetcher.get_small(&url, &self.options(Redirects::Relative)).await.map_err(fetch(what))?;
        let resp = check(resp, repo, revision, None).map_err(|e| with_what(e, what))?;
        let info: RepoInfo = serde_json::from_slice(&resp.body).map_err(|e| invalid(&url, &e.to_string()))?;
        CommitHash::new(&info.sha).map_err(|e| invalid(&url, &e.to_string()))
    }

    /// Every file of a revision with sizes and etags (the tree API, recursive, following
    /// the Hub's pagination). A `next` link that repeats an earlier page, leaves the
    /// endpoint's origin or goes past [`MAX_LISTING_PAGES`] pages is an
    /// [`Error::InvalidResponse`]: a misbehaving server cannot keep the listing going.
    pub async fn list_files(&self, repo: &Repo, revision: &Revision) -> Result<Vec<RemoteFile>> {
        let mut url = urls::tree(&self.endpoint, repo, revision, None);
        let what = || format!("list the files of `{repo}` at `{revision}`");
        let mut files = Vec::new();
        let mut pages = Pages::default();
        loop {
            let resp = self.fetcher.get_small(&url, &self.options(Redirects::Relative)).await.map_err(fetch(what))?;
            let resp = check(resp, repo, revision, None).map_err(|e| with_what(e, what))?;
            let items: Vec<TreeItem> = serde_json::from_slice(&resp.body).map_err(|e| invalid(&url, &e.to_string()))?;
            for item in items.into_iter().filter(|i| i.kind == "file") {
                files.push(remote_file(&url, item)?);
            }
            let Some(next) = resp.header("link").and_then(api::next_link) else { break };
            if urls::origin(&next) != urls::origin(&self.endpoint) {
                return Err(invalid(&url, "the listing's next page is on another host"));
            }
            pages.follow(&url, &next, files.len()).map_err(|reason| invalid(&url, &reason))?;
            url = next;
        }
        check_file_folder_conflicts(&files)
            .map_err(|reason| invalid(&urls::tree(&self.endpoint, repo, revision, None), &reason))?;
        Ok(files)
    }

    /// A file's metadata via `HEAD resolve/<revision>/<path>`, following only relative
    /// redirects (a renamed repo), never the CDN's.
    pub async fn file_metadata(&self, repo: &Repo, revision: &Revision, path: &RepoPath) -> Result<FileMetadata> {
        let url = urls::resolve(&self.endpoint, repo, revision, path);
        let what = || format!("get metadata of `{path}` from `{repo}`");
        let resp = self.fetcher.head(&url, &self.options(Redirects::Relative)).await.map_err(fetch(what))?;
        let resp = check(resp, repo, revision, Some(path)).map_err(|e| with_what(e, what))?;
        let commit = resp
            .header("x-repo-commit")
            .and_then(|c| CommitHash::new(c.trim()).ok())
            .ok_or_else(|| invalid(&url, "no `X-Repo-Commit` header"))?;
        let etag = resp
            .header("x-linked-etag")
            .or_else(|| resp.header("etag"))
            .and_then(|e| Etag::from_header(e).ok())
            .ok_or_else(|| invalid(&url, "no usable `ETag` header"))?;
        let size = resp
            .header("x-linked-size")
            .or_else(|| resp.header("content-length"))
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| invalid(&url, "no `X-Linked-Size` or `Content-Length` header"))?;
        let url = match resp.header("location").filter(|_| resp.is_redirect()) {
            Some(location) if location.contains("://") => location.to_owned(),
            _ => urls::resolve(&self.endpoint, repo, &Revision::from(commit), path),
        };
        Ok(FileMetadata { commit, etag, size, url })
    }
}

/// Pages of one listing followed at most. The Hub pages recursive listings by 1000 entries
/// (50 with `expand`), so this is ten million files: far beyond any real repository, while
/// a server that keeps sending new `next` links is stopped after a bounded amount of work.
pub const MAX_LISTING_PAGES: usize = 10_000;

/// Files of one listing accepted at most (with [`MAX_LISTING_PAGES`], this bounds the
/// memory a server can make a listing take, whatever it puts on a page).
pub const MAX_LISTING_FILES: usize = 10_000_000;

/// The pages of one listing seen so far: a `next` link is followed only once.
#[derive(Debug, Default)]
struct Pages {
    seen: std::collections::HashSet<String>,
}

impl Pages {
    /// Records `current` and accepts `next` after `files` files, or says why the listing
    /// cannot go on.
    fn follow(&mut self, current: &str, next: &str, files: usize) -> std::result::Result<(), String> {
        self.seen.insert(current.to_owned());
        if files > MAX_LISTING_FILES {
            return Err(format!("the listing has more than {MAX_LISTING_FILES} files"));
        }
        if self.seen.contains(next) {
            return Err("the listing's next page repeats a page already read".to_owned());
        }
        if self.seen.len() >= MAX_LISTING_PAGES {
            return Err(format!("the listing has more than {MAX_LISTING_PAGES} pages"));
        }
        Ok(())
    }
}

/// A listing where one path is both a file and a folder (`a` and `a/b` both files), or a
/// file listed twice, cannot be laid out on disk: the server's answer is wrong.
fn check_file_folder_conflicts(files: &[RemoteFile]) -> std::result::Result<(), String> {
    let mut paths = std::collections::HashSet::with_capacity(files.len());
    for f in files {
        if !paths.insert(f.path.as_str()) {
            return Err(format!("the listing names `{}` twice", f.path));
        }
    }
    for f in files {
        let p = f.path.as_str();
        for (i, _) in p.match_indices('/') {
            if paths.contains(&p[..i]) {
                return Err(format!("the listing has `{}` both as a file and as a folder (of `{p}`)", &p[..i]));
            }
        }
    }
    Ok(())
}

/// A listing as `trees/<commit>.json` records it.
pub fn to_tree(files: &[RemoteFile]) -> Tree {
    let mut tree = Tree::default();
    for f in files {
        let (lfs_sha256, lfs_size) = match f.etag {
            Etag::Sha256(s) if f.lfs => (Some(s.to_hex()), Some(f.size)),
            _ => (None, None),
        };
        tree.files.insert(
            f.path.clone(),
            TreeEntry { size: f.size, blob_id: f.blob_id.clone(), lfs_sha256, lfs_size, xet_hash: f.xet_hash.clone() },
        );
    }
    tree
}

/// The etag and size of a recorded listing entry.
pub fn tree_entry_etag(entry: &TreeEntry) -> Option<(Etag, u64)> {
    match &entry.lfs_sha256 {
        Some(sha) => Some((Etag::new(sha).ok()?, entry.lfs_size.unwrap_or(entry.size))),
        None => Some((Etag::new(&entry.blob_id).ok()?, entry.size)),
    }
}

fn remote_file(url: &str, item: TreeItem) -> Result<RemoteFile> {
    let path = RepoPath::new(&item.path).map_err(|e| invalid(url, &format!("the listing has an unsafe path: {e}")))?;
    let (etag, size, lfs) = match &item.lfs {
        Some(lfs) => (Etag::new(&lfs.oid), lfs.size, true),
        None => (Etag::new(&item.oid), item.size, false),
    };
    let etag = etag.map_err(|e| invalid(url, &e.to_string()))?;
    let xet_hash = item.xet_hash.filter(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    Ok(RemoteFile { path, size, etag, blob_id: item.oid, lfs, xet_hash })
}

fn invalid(url: &str, reason: &str) -> Error {
    Error::InvalidResponse { url: cache_core::redact_url(url), reason: reason.to_owned() }
}

fn fetch(what: impl Fn() -> String) -> impl FnOnce(cache_fetch::Error) -> Error {
    move |source| Error::Fetch { what: what(), source }
}

fn with_what(e: Error, what: impl Fn() -> String) -> Error {
    match e {
        Error::Fetch { source, .. } => Error::Fetch { what: what(), source },
        other => other,
    }
}

/// Maps an error status to the Hub's meaning. `EntryNotFound` carries the commit of
/// `X-Repo-Commit` as its revision when the Hub sent one, so that the caller can write the
/// `.no_exist` marker (and then restore the revision the user asked for).
fn check(resp: Response, repo: &Repo, revision: &Revision, path: Option<&RepoPath>) -> Result<Response> {
    if resp.status < 400 {
        return Ok(resp);
    }
    let code = resp.header("x-error-code").map(str::to_owned);
    let status = resp.status;
    match (status, code.as_deref()) {
        (401 | 403, Some("GatedRepo")) => Err(Error::Unauthorized { repo: repo.clone(), gated: true }),
        (401 | 404, Some("RepoNotFound")) => Err(Error::RepoNotFound { repo: repo.clone() }),
        (404, Some("RevisionNotFound")) => Err(Error::RevisionNotFound { repo: repo.clone(), revision: revision.to_string() }),
        (404, Some("EntryNotFound")) => {
            let commit = resp.header("x-repo-commit").map(str::to_owned).unwrap_or_default();
            Err(Error::EntryNotFound {
                repo: repo.clone(),
                revision: if commit.is_empty() { revision.to_string() } else { commit },
                path: path.map(ToString::to_string).unwrap_or_default(),
                cached: false,
            })
        }
        (401 | 403, _) => Err(Error::Unauthorized { repo: repo.clone(), gated: false }),
        _ => resp.error_for_status().map_err(|source| Error::Fetch { what: String::new(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(path: &str) -> TreeItem {
        serde_json::from_value(
            serde_json::json!({"type": "file", "oid": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "size": 0, "path": path}),
        )
        .unwrap()
    }

    #[test]
    fn hostile_listing_paths_are_refused() {
        for bad in ["../x", "/etc/passwd", "a/../../b", "a\0b"] {
            let err = remote_file("http://h/api/models/a/tree/main?recursive=true", item(bad)).unwrap_err();
            assert!(matches!(&err, Error::InvalidResponse { url, .. } if url == "http://h/api/models/a/tree/main"), "{err}");
        }
        assert!(remote_file("http://h", item("ok/file.txt")).is_ok());
    }

    #[test]
    fn listing_pages_are_followed_once_and_at_most_max_listing_pages() {
        let mut pages = Pages::default();
        assert!(pages.follow("u?cursor=0", "u?cursor=1", 10).is_ok());
        assert!(pages.follow("u?cursor=1", "u?cursor=1", 20).unwrap_err().contains("repeats"));
        let mut pages = Pages::default();
        assert!(pages.follow("a", "b", 0).is_ok());
        assert!(pages.follow("b", "a", 0).unwrap_err().contains("repeats"), "a loop of two pages is noticed too");
        let mut pages = Pages::default();
        assert!(pages.follow("a", "b", MAX_LISTING_FILES).is_ok());
        assert!(pages.follow("b", "c", MAX_LISTING_FILES + 1).unwrap_err().contains("files"), "huge pages are bounded too");
        let mut pages = Pages::default();
        let mut read = 1;
        let err = loop {
            match pages.follow(&format!("p{read}"), &format!("p{}", read + 1), read) {
                Ok(()) => read += 1,
                Err(e) => break e,
            }
            assert!(read <= MAX_LISTING_PAGES, "the cap holds");
        };
        assert_eq!(read, MAX_LISTING_PAGES, "every page up to the cap is read: {err}");
        assert!(err.contains(&MAX_LISTING_PAGES.to_string()));
    }

    #[test]
    fn a_path_that_is_both_a_file_and_a_folder_is_a_conflict() {
        let file = |p: &str| remote_file("http://h", item(p)).unwrap();
        assert!(check_file_folder_conflicts(&[file("a/b"), file("a-b"), file("a/c/d"), file("ab")]).is_ok());
        let err = check_file_folder_conflicts(&[file("a/c/d"), file("x"), file("a/c")]).unwrap_err();
        assert!(err.contains("`a/c` both as a file and as a folder (of `a/c/d`)"), "{err}");
        assert!(check_file_folder_conflicts(&[file("x"), file("x")]).unwrap_err().contains("twice"));
    }

    #[test]
    fn listings_become_trees_with_lfs_digests() {
        let sha = cache_core::Sha256::of(b"w");
        let files = vec![
            RemoteFile {
                path: "a.json".parse().unwrap(),
                size: 2,
                etag: Etag::new(&"1".repeat(40)).unwrap(),
                blob_id: "1".repeat(40),
                lfs: false,
                xet_hash: None,
            },
            RemoteFile {
                path: "w.bin".parse().unwrap(),
                size: 1,
                etag: Etag::Sha256(sha),
                blob_id: "2".repeat(40),
                lfs: true,
                xet_hash: None,
            },
        ];
        let tree = to_tree(&files);
        let w = &tree.files[&"w.bin".parse::<RepoPath>().unwrap()];
        assert_eq!(w.lfs_sha256.as_deref(), Some(sha.to_hex().as_str()));
        assert_eq!(tree_entry_etag(w), Some((Etag::Sha256(sha), 1)));
        let a = &tree.files[&"a.json".parse::<RepoPath>().unwrap()];
        assert_eq!(tree_entry_etag(a), Some((files[0].etag, 2)));
        let config = HubConfig::new("http://h/");
        assert_eq!(config.endpoint, "http://h");
        let client = HubClient {
            fetcher: Fetcher::new(FetchConfig::default()).unwrap(),
            endpoint: "http://h".into(),
            token: Some(Token::new("t")),
            report: None,
            source: None,
        };
        assert!(client.token_for("http://h/a/resolve/main/x").is_some());
        assert!(client.token_for("http://cdn.h/x").is_none());
        assert!(client.token_for("https://h/x").is_none());
    }
}
