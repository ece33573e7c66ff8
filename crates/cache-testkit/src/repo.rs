//! Test repositories built in code: files (regular or LFS), commits, branches, tags, pull
//! request refs and access rules, and their served form with every digest precomputed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;

use cache_core::{CommitHash, Etag, GitSha1, Repo, RepoType, Sha256};

use crate::content::Content;

/// Who may read a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone.
    Public,
    /// Only requests with `Authorization: Bearer <token>`; others are told the repo does
    /// not exist (401 without a token, 404 with a wrong one), as the Hub hides private repos.
    Private {
        /// The accepted token.
        token: String,
    },
    /// Only requests with the token; others get `X-Error-Code: GatedRepo` (401 without a
    /// token, 403 with a wrong one).
    Gated {
        /// The accepted token.
        token: String,
    },
}

#[derive(Clone, Debug)]
struct FileSpec {
    content: Content,
    lfs: bool,
    xet_hash: Option<String>,
}

/// A repository described in code. Files are added to a working tree; [`commit`] seals it
/// as a commit on the current branch (initially `main`); [`on_branch`] switches branch and
/// [`tag`] names the current commit. Whatever is uncommitted when the hub starts is
/// committed then.
///
/// ```
/// use cache_testkit::{Content, RepoSpec};
/// let spec = RepoSpec::model("org/tiny")
///     .file("config.json", r#"{"a": 1}"#)
///     .lfs_file("model.safetensors", Content::generated(1 << 20, 1))
///     .commit()
///     .tag("v1.0")
///     .file("config.json", r#"{"a": 2}"#)
///     .commit();
/// # let _ = spec;
/// ```
///
/// [`commit`]: RepoSpec::commit
/// [`on_branch`]: RepoSpec::on_branch
/// [`tag`]: RepoSpec::tag
#[derive(Clone, Debug)]
#[must_use]
pub struct RepoSpec {
    repo: Repo,
    access: Access,
    working: BTreeMap<String, FileSpec>,
    dirty: bool,
    commits: Vec<BTreeMap<String, FileSpec>>,
    refs: BTreeMap<String, usize>,
    branch: String,
}

impl RepoSpec {
    /// A repository of the given type and id.
    ///
    /// # Panics
    /// If `id` is not a valid Hub repo id (this is a test helper).
    pub fn new(repo_type: RepoType, id: &str) -> Self {
        let id = id.parse().unwrap_or_else(|e| panic!("test repo id: {e}"));
        RepoSpec {
            repo: Repo::new(repo_type, id),
            access: Access::Public,
            working: BTreeMap::new(),
            dirty: false,
            commits: Vec::new(),
            refs: BTreeMap::new(),
            branch: "main".to_owned(),
        }
    }

    /// A model repository.
    pub fn model(id: &str) -> Self {
        Self::new(RepoType::Model, id)
    }

    /// A dataset repository.
    pub fn dataset(id: &str) -> Self {
        Self::new(RepoType::Dataset, id)
    }

    /// A Space.
    pub fn space(id: &str) -> Self {
        Self::new(RepoType::Space, id)
    }

    /// The repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Adds or replaces a regular (git) file: served directly, git-sha1 `ETag`.
    pub fn file(self, path: &str, content: impl Into<Content>) -> Self {
        self.put(path, content.into(), false)
    }

    /// Adds or replaces an LFS file: `resolve/` answers 302 to the CDN with
    /// `X-Linked-Etag` (its sha256) and `X-Linked-Size`.
    pub fn lfs_file(self, path: &str, content: impl Into<Content>) -> Self {
        self.put(path, content.into(), true)
    }

    /// Adds or replaces an LFS file that the tree listing also names by a Xet hash
    /// (`"xetHash"`, as the Hub lists Xet-backed files). Downloads stay plain HTTP: no
    /// Xet headers are sent, so only clients that read listings see the hash.
    pub fn xet_file(mut self, path: &str, content: impl Into<Content>, xet_hash: &str) -> Self {
        self = self.put(path, content.into(), true);
        if let Some(f) = self.working.get_mut(path) {
            f.xet_hash = Some(xet_hash.to_owned());
        }
        self
    }

    fn put(mut self, path: &str, content: Content, lfs: bool) -> Self {
        cache_core::RepoPath::new(path).unwrap_or_else(|e| panic!("test file path: {e}"));
        self.working.insert(path.to_owned(), FileSpec { content, lfs, xet_hash: None });
        self.dirty = true;
        self
    }

    /// Removes a file from the working tree.
    pub fn remove(mut self, path: &str) -> Self {
        self.dirty |= self.working.remove(path).is_some();
        self
    }

    /// Seals the working tree as a new commit on the current branch.
    pub fn commit(mut self) -> Self {
        self.commits.push(self.working.clone());
        self.refs.insert(self.branch.clone(), self.commits.len() - 1);
        self.dirty = false;
        self
    }

    fn sealed(self) -> Self {
        if self.dirty || self.commits.is_empty() { self.commit() } else { self }
    }

    /// Switches to branch `name` (created at the current commit), committing pending
    /// changes to the previous branch first. Later commits move only this branch.
    pub fn on_branch(self, name: &str) -> Self {
        let mut s = self.sealed();
        let at = s.refs[&s.branch];
        s.refs.entry(name.to_owned()).or_insert(at);
        name.clone_into(&mut s.branch);
        s
    }

    /// Names the current commit (committing pending changes first). Tags and branches
    /// are served alike.
    pub fn tag(self, name: &str) -> Self {
        let mut s = self.sealed();
        let at = s.refs[&s.branch];
        s.refs.insert(name.to_owned(), at);
        s
    }

    /// Names the current commit `refs/pr/<n>`.
    pub fn pr(self, n: u32) -> Self {
        self.tag(&format!("refs/pr/{n}"))
    }

    /// Makes the repository private to `token`.
    pub fn private(mut self, token: &str) -> Self {
        self.access = Access::Private { token: token.to_owned() };
        self
    }

    /// Makes the repository gated: only `token` may read it.
    pub fn gated(mut self, token: &str) -> Self {
        self.access = Access::Gated { token: token.to_owned() };
        self
    }

    /// Computes every digest and commit hash.
    pub(crate) fn build(self) -> HubRepo {
        let s = self.sealed();
        let mut known: HashMap<String, Vec<Arc<HubFile>>> = HashMap::new();
        let mut commits = Vec::with_capacity(s.commits.len());
        let mut parent = String::new();
        for tree in &s.commits {
            let mut files = BTreeMap::new();
            let mut id = format!("commit {}\nparent {parent}\n", s.repo);
            for (path, spec) in tree {
                let candidates = known.entry(path.clone()).or_default();
                let same = |f: &&Arc<HubFile>| f.content == spec.content && f.lfs == spec.lfs && f.xet_hash == spec.xet_hash;
                let file = if let Some(f) = candidates.iter().find(same) {
                    Arc::clone(f)
                } else {
                    let mut f = HubFile::new(spec.content.clone(), spec.lfs);
                    f.xet_hash.clone_from(&spec.xet_hash);
                    let f = Arc::new(f);
                    candidates.push(Arc::clone(&f));
                    f
                };
                let _ = writeln!(id, "{path} {}", file.oid);
                files.insert(path.clone(), file);
            }
            let hash = GitSha1::of(id.as_bytes()).to_hex();
            parent.clone_from(&hash);
            commits.push(HubCommit { hash: CommitHash::new(&hash).expect("a git sha1 is a commit hash"), files });
        }
        HubRepo { repo: s.repo, access: s.access, commits, refs: s.refs.into_iter().collect() }
    }
}

/// A file as served, with its digests.
#[derive(Debug)]
pub(crate) struct HubFile {
    pub(crate) content: Content,
    pub(crate) lfs: bool,
    /// The git object id: of the content for regular files, of the pointer for LFS.
    pub(crate) oid: GitSha1,
    pub(crate) sha256: Option<Sha256>,
    pub(crate) pointer_size: u64,
    /// The Xet hash the tree listing names it by, if any.
    pub(crate) xet_hash: Option<String>,
}

impl HubFile {
    fn new(content: Content, lfs: bool) -> Self {
        if lfs {
            let sha = content.sha256();
            let pointer = format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {}\n", content.len());
            HubFile {
                oid: GitSha1::of(pointer.as_bytes()),
                sha256: Some(sha),
                pointer_size: pointer.len() as u64,
                content,
                lfs,
                xet_hash: None,
            }
        } else {
            HubFile { oid: content.git_sha1(), sha256: None, pointer_size: 0, content, lfs, xet_hash: None }
        }
    }

    /// The etag clients store the blob under.
    pub(crate) fn etag(&self) -> Etag {
        self.sha256.map_or(Etag::GitSha1(self.oid), Etag::Sha256)
    }

    pub(crate) fn size(&self) -> u64 {
        self.content.len()
    }
}

#[derive(Debug)]
pub(crate) struct HubCommit {
    pub(crate) hash: CommitHash,
    pub(crate) files: BTreeMap<String, Arc<HubFile>>,
}

/// A repository as served.
#[derive(Debug)]
pub(crate) struct HubRepo {
    pub(crate) repo: Repo,
    pub(crate) access: Access,
    pub(crate) commits: Vec<HubCommit>,
    pub(crate) refs: HashMap<String, usize>,
}

impl HubRepo {
    /// The commit a revision (ref name or full commit hash) names.
    pub(crate) fn commit(&self, revision: &str) -> Option<&HubCommit> {
        if let Some(&i) = self.refs.get(revision) {
            return self.commits.get(i);
        }
        self.commits.iter().find(|c| c.hash.as_str() == revision)
    }
}

/// What a test may want to know about a served file.
#[derive(Clone, Debug)]
pub struct FileInfo {
    /// The commit the revision resolved to.
    pub commit: CommitHash,
    /// The etag (sha256 for LFS files, git-sha1 otherwise).
    pub etag: Etag,
    /// Size in bytes.
    pub size: u64,
    /// Whether the file is stored in LFS (served through the CDN redirect).
    pub lfs: bool,
    /// Its bytes.
    pub content: Content,
    /// The `resolve/` URL on the hub.
    pub url: String,
    /// The CDN URL the hub redirects to (LFS files only).
    pub cdn_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_branches_and_tags_resolve() {
        let built = RepoSpec::model("org/r")
            .file("a.txt", "one")
            .commit()
            .tag("v1")
            .on_branch("dev")
            .file("a.txt", "two")
            .commit()
            .pr(1)
            .build();
        assert_eq!(built.commits.len(), 2);
        let main = built.commit("main").unwrap();
        let dev = built.commit("dev").unwrap();
        assert_ne!(main.hash, dev.hash);
        assert_eq!(built.commit("v1").unwrap().hash, main.hash);
        assert_eq!(built.commit("refs/pr/1").unwrap().hash, dev.hash);
        assert_eq!(built.commit(dev.hash.as_str()).unwrap().hash, dev.hash);
        assert!(built.commit("nope").is_none());
        assert_eq!(main.files["a.txt"].content, Content::from("one"));
        assert_eq!(main.files["a.txt"].etag(), Etag::GitSha1(GitSha1::of(b"one")));
    }

    #[test]
    fn lfs_files_are_named_by_sha256_with_a_pointer_oid() {
        let built = RepoSpec::model("r").lfs_file("w.bin", Content::generated(1000, 1)).build();
        let f = &built.commit("main").unwrap().files["w.bin"];
        assert_eq!(f.etag(), Etag::Sha256(Sha256::of(&f.content.to_vec())));
        assert!(f.pointer_size > 100 && f.pointer_size < 200);
        assert_ne!(f.oid, f.content.git_sha1());
    }

    #[test]
    fn an_empty_spec_has_one_empty_commit_on_main() {
        let built = RepoSpec::dataset("org/empty").build();
        assert!(built.commit("main").unwrap().files.is_empty());
        assert_eq!(built.repo.repo_type, RepoType::Dataset);
    }
}
