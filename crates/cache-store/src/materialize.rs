//! Materializing a cached revision into a plain directory (`get … --to DIR`): its files
//! under their repo paths, placed as the [`LinkMode`] says, with `huggingface_hub`'s
//! `local_dir` metadata so `hf download --local-dir DIR` sees them as up to date.
//!
//! # Link modes and what they mean for the cache
//! - `auto`: a reflink (copy-on-write clone: no bytes written, no extra blocks) where the
//!   filesystem supports it, else a copy (`copy_file_range`, which XFS and btrfs may still
//!   share). Editing the file never reaches the cache.
//! - `reflink`: a reflink or an error. Safe like a copy.
//! - `copy`: a real copy. Safe; costs the bytes.
//! - `hardlink`: the cache's own inode (same filesystem only). The file is read-only (the
//!   cache's blobs are), so an edit fails instead of corrupting the cache; a forced edit
//!   (root, `chmod`) changes the cache's bytes too, which `modelcache verify` reports.
//! - `symlink`: an absolute link to the snapshot file. Valid while the cache keeps it.
//!
//! Files the Hub keeps in git (not LFS: configs, tokenizers, code) up to [`SMALL_TEXT`]
//! are always copies, whatever the mode: they are the ones people edit.
//!
//! # Incremental
//! A file is left alone when its metadata names the same commit and etag and the file is
//! as placed (`huggingface_hub`'s rule: not modified after the metadata was written, and
//! the size; for a hard link the cache's inode, for a symlink its target). A changed or
//! deleted file is placed again; files of `DIR` that are not in the revision are kept.
//!
//! # Nothing outside `DIR`, nothing half-written
//! Every path goes through a capability handle on `DIR` and is a validated repo path: a
//! symlink inside `DIR` leading out of it is refused ([`Error::OutsideTarget`]). Each file
//! is written under a temporary name beside it, synced, and renamed over the old one;
//! the metadata is written (atomically) after the file. The cache is only read.

use std::io;

use cache_core::{CommitHash, Repo, RepoPath, Timestamp};
use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::{Dir, MetadataExt};

use crate::crossrepo::{Placement, set_read_only};
use crate::error::{Error, Result};
use crate::fsx;
use crate::layout::CACHEDIR_TAG;
use crate::scan::SnapFile;
use crate::store::Store;

/// Git-stored (non-LFS) files up to this size are always copied (1 MiB).
pub const SMALL_TEXT: u64 = 1 << 20;

/// Where `huggingface_hub` keeps a local directory's metadata.
const HF_DIR: &str = ".cache/huggingface";

/// How [`Store::materialize`] places files (see the module docs for what each means).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkMode {
    /// A reflink where possible, else a copy.
    #[default]
    Auto,
    /// A reflink, or an error.
    Reflink,
    /// The cache's inode, read-only.
    Hardlink,
    /// A real copy.
    Copy,
    /// An absolute symlink to the snapshot file.
    Symlink,
}

impl LinkMode {
    /// Every mode, in the order `--help` lists them.
    pub const ALL: [LinkMode; 5] = [LinkMode::Auto, LinkMode::Reflink, LinkMode::Hardlink, LinkMode::Copy, LinkMode::Symlink];

    /// Its name: `auto`, `reflink`, `hardlink`, `copy`, `symlink`.
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Auto => "auto",
            LinkMode::Reflink => "reflink",
            LinkMode::Hardlink => "hardlink",
            LinkMode::Copy => "copy",
            LinkMode::Symlink => "symlink",
        }
    }
}

impl std::str::FromStr for LinkMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        LinkMode::ALL.into_iter().find(|m| m.as_str() == s).ok_or_else(|| Error::InvalidRequest {
            reason: format!("unknown link mode `{s}`: use one of auto, reflink, hardlink, copy, symlink"),
        })
    }
}

/// One file of a [`Materialized`] directory.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaterializedFile {
    /// Its repo path (and path under the directory).
    pub path: RepoPath,
    /// How it is placed. For a file left alone under `auto`, `copy` when it is not the
    /// cache's inode or a link (a reflink cannot be told from a copy).
    pub placement: Placement,
    /// Whether it was already in place and left alone.
    pub unchanged: bool,
    /// Its size.
    pub size: u64,
}

/// What [`Store::materialize`] placed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Materialized {
    /// The directory (canonical).
    pub dir: Utf8PathBuf,
    /// Each file, in repo path order.
    pub files: Vec<MaterializedFile>,
}

/// One file to place.
struct Source<'a> {
    file: &'a SnapFile,
    path: RepoPath,
    /// Hub-relative path of its content.
    content: &'a Utf8Path,
    etag: String,
    size: u64,
}

impl Store {
    /// Places the cached files of `repo` at `commit` that `select` accepts (by repo path)
    /// under `dir` (created if missing), as `mode` says, and writes `huggingface_hub`'s
    /// `local_dir` metadata for each. Re-running leaves placed files alone and restores
    /// changed or deleted ones. Hold the repo's lease meanwhile (the facade does).
    pub fn materialize(
        &self,
        repo: &Repo,
        commit: &CommitHash,
        dir: &Utf8Path,
        mode: LinkMode,
        select: &dyn Fn(&str) -> bool,
    ) -> Result<Materialized> {
        std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        let dir = Utf8PathBuf::from_path_buf(dir.canonicalize().map_err(Error::io("resolve", dir))?)
            .map_err(|path| Error::NonUtf8Path { path })?;
        let out = Dir::open_ambient_dir(&dir, cap_std::ambient_authority()).map_err(Error::io("open", &dir))?;
        let scan = self.scan_repo(repo)?;
        let rows = self.index()?.rows(Some(&repo.folder_name()))?;
        let mut sources = Vec::new();
        for f in scan.files.iter().filter(|f| f.commit == commit.as_str() && select(&f.path)) {
            let etag = f
                .etag
                .clone()
                .or_else(|| rows.iter().find(|r| r.revision == f.commit && r.path == f.path).and_then(|r| r.etag.clone()));
            let (Some(size), Some(content), Some(etag)) = (f.size, f.blob_rel.as_deref(), etag) else {
                return Err(Error::InvalidRequest {
                    reason: format!("`{}` of `{repo}` is damaged in the cache: run `modelcache verify --repair`", f.path),
                });
            };
            sources.push(Source { file: f, path: RepoPath::new(&f.path)?, content, etag, size });
        }
        sources.sort_by(|a, b| a.path.cmp(&b.path));
        write_hf_dir(&out, &dir)?;
        let mut files = Vec::with_capacity(sources.len());
        for s in &sources {
            files.push(self.place_one(&out, &dir, commit, s, mode)?);
        }
        let placed = files.iter().filter(|f| !f.unchanged).count();
        tracing::info!(%repo, %commit, dir = %dir, files = files.len(), placed, mode = mode.as_str(), "materialized");
        Ok(Materialized { dir, files })
    }

    /// Places one file unless it is in place already, then its metadata.
    fn place_one(
        &self,
        out: &Dir,
        dir: &Utf8Path,
        commit: &CommitHash,
        s: &Source<'_>,
        mode: LinkMode,
    ) -> Result<MaterializedFile> {
        let small = s.etag.len() == 40 && s.size <= SMALL_TEXT;
        let mode = if small { LinkMode::Copy } else { mode };
        let outside =
            |e: &io::Error| fsx::is_escape(e).then(|| Error::OutsideTarget { dir: dir.to_owned(), path: s.path.to_string() });
        let blob = self.hub.metadata(s.content).map_err(Error::io("stat", self.hub_path.join(s.content)))?;
        let link_target = self.hub_path.join(&s.file.rel);
        if let Some(placement) = in_place(out, s, commit, mode, (blob.dev(), blob.ino()), &link_target) {
            return Ok(MaterializedFile { path: s.path.clone(), placement, unchanged: true, size: s.size });
        }
        let rel = Utf8Path::new(s.path.as_str());
        let parent = rel.parent().unwrap_or(Utf8Path::new(""));
        fsx::create_dirs(out, parent).map_err(|e| {
            // A symlink leading out is reported as `EEXIST` by the sandboxed `mkdir`.
            let escapes = outside(&e).or_else(|| out.open_dir(parent).err().and_then(|e| outside(&e)));
            escapes.unwrap_or_else(|| Error::io("create", dir.join(parent))(e))
        })?;
        let tmp = parent.join(fsx::temp_name());
        let placed = self.place_into(out, &tmp, s, mode, &link_target);
        let placement = match placed {
            Ok(p) => p,
            Err(e) => {
                let _ = out.remove_file(&tmp);
                return Err(outside(&e).unwrap_or(Error::Placement {
                    mode: mode.as_str(),
                    path: s.path.to_string(),
                    dir: dir.to_owned(),
                    source: e,
                }));
            }
        };
        if let Err(e) = out.rename(&tmp, out, rel) {
            let _ = out.remove_file(&tmp);
            return Err(outside(&e).unwrap_or_else(|| Error::io("write", dir.join(rel))(e)));
        }
        let now = Timestamp::now().as_unix_millis();
        #[expect(clippy::cast_precision_loss, reason = "seconds with millisecond precision, as Python's time.time()")]
        let seconds = now as f64 / 1000.0;
        let meta = format!("{commit}\n{}\n{seconds:.3}\n", s.etag);
        let meta_rel = metadata_path(&s.path);
        let meta_parent = meta_rel.parent().unwrap_or(Utf8Path::new(HF_DIR));
        fsx::create_dirs(out, meta_parent)
            .map_err(|e| outside(&e).unwrap_or_else(|| Error::io("create", dir.join(meta_parent))(e)))?;
        fsx::replace(out, meta_parent, &meta_rel, meta.as_bytes(), false)
            .map_err(|e| outside(&e).unwrap_or_else(|| Error::io("write", dir.join(&meta_rel))(e)))?;
        Ok(MaterializedFile { path: s.path.clone(), placement, unchanged: false, size: s.size })
    }

    /// Writes the file at `tmp` (a new name under `out`) as `mode` says.
    fn place_into(
        &self,
        out: &Dir,
        tmp: &Utf8Path,
        s: &Source<'_>,
        mode: LinkMode,
        link_target: &Utf8Path,
    ) -> io::Result<Placement> {
        match mode {
            LinkMode::Hardlink => {
                self.hub.hard_link(s.content, out, tmp)?;
                set_read_only(&out.open(tmp)?.into_std())?;
                return Ok(Placement::Hardlink);
            }
            LinkMode::Symlink => {
                let parent = tmp.parent().unwrap_or(Utf8Path::new(""));
                let parent_dir = if parent.as_str().is_empty() { out.try_clone()? } else { out.open_dir(parent)? };
                let name = tmp.file_name().unwrap_or_default();
                rustix::fs::symlinkat(link_target.as_str(), &parent_dir, name)?;
                return Ok(Placement::Symlink);
            }
            LinkMode::Auto | LinkMode::Reflink | LinkMode::Copy => {}
        }
        let src = self.hub.open(s.content)?.into_std();
        let mut o = cap_std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        let dst = out.open_with(tmp, &o)?.into_std();
        let placement = match mode {
            LinkMode::Reflink => {
                reflink_copy::reflink_file(&src, &dst)?;
                Placement::Reflink
            }
            LinkMode::Copy => {
                let (mut from, mut to) = (&src, &dst);
                io::copy(&mut from, &mut to)?;
                Placement::Copy
            }
            _ => crate::crossrepo::clone_or_copy(&src, &dst)?,
        };
        if dst.metadata()?.len() != s.size {
            return Err(io::Error::other(format!("wrote {} bytes of {}", dst.metadata()?.len(), s.size)));
        }
        dst.sync_all()?;
        Ok(placement)
    }
}

/// `.cache/huggingface/download/<path>.metadata`.
fn metadata_path(path: &RepoPath) -> Utf8PathBuf {
    Utf8PathBuf::from(format!("{HF_DIR}/download/{path}.metadata"))
}

/// `.cache/huggingface/` with its `.gitignore` and `CACHEDIR.TAG`, as `huggingface_hub`
/// creates them (only when missing).
fn write_hf_dir(out: &Dir, dir: &Utf8Path) -> Result<()> {
    let hf = Utf8Path::new(HF_DIR);
    let escape = |e: io::Error| {
        if fsx::is_escape(&e) {
            Error::OutsideTarget { dir: dir.to_owned(), path: HF_DIR.to_owned() }
        } else {
            Error::io("create", dir.join(HF_DIR))(e)
        }
    };
    fsx::create_dirs(out, &hf.join("download")).map_err(escape)?;
    for (name, text) in [(".gitignore", "*"), ("CACHEDIR.TAG", CACHEDIR_TAG)] {
        if out.symlink_metadata(hf.join(name)).is_err() {
            fsx::replace(out, hf, &hf.join(name), text.as_bytes(), false).map_err(escape)?;
        }
    }
    Ok(())
}

/// Whether the file is in place already (see "Incremental"): how it is placed, if so.
fn in_place(
    out: &Dir,
    s: &Source<'_>,
    commit: &CommitHash,
    mode: LinkMode,
    blob: (u64, u64),
    link_target: &Utf8Path,
) -> Option<Placement> {
    let text = out.read_to_string(metadata_path(&s.path)).ok()?;
    let mut lines = text.lines();
    let (c, e, t) = (lines.next()?, lines.next()?, lines.next()?.trim().parse::<f64>().ok()?);
    if c != commit.as_str() || e != s.etag {
        return None;
    }
    let meta = out.symlink_metadata(s.path.as_str()).ok()?;
    let same_inode = meta.is_file() && (meta.dev(), meta.ino()) == blob;
    match mode {
        LinkMode::Symlink => (meta.file_type().is_symlink()
            && rustix::fs::readlinkat(out, s.path.as_str(), Vec::new()).ok()?.to_str().ok()? == link_target.as_str())
        .then_some(Placement::Symlink),
        LinkMode::Hardlink => same_inode.then_some(Placement::Hardlink),
        LinkMode::Auto | LinkMode::Reflink | LinkMode::Copy => {
            let modified = meta.modified().ok()?.into_std().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
            let whole = meta.is_file() && !same_inode && meta.len() == s.size && modified - 1.0 <= t;
            whole.then_some(if mode == LinkMode::Reflink { Placement::Reflink } else { Placement::Copy })
        }
    }
}
