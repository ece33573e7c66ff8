//! Range records: which byte ranges of a staging file are complete, kept in the
//! modelcache home so a transfer resumes after a crash or a reboot without re-fetching
//! what an interrupted parallel transfer wrote out of order.
//!
//! # Location
//! Never in the hub cache (`huggingface_hub` warns about entries it does not know):
//! ```text
//! <home>/hubs/<key>/partial/<repo-folder>/<etag>.ranges   for blobs/<etag>.incomplete
//! <home>/artifacts/partial/<id>.ranges                     for artifacts/blobs/<id>.incomplete
//! ```
//! It goes with its staging file: commit, discard, a digest mismatch, `clean_stale`,
//! remove and clear delete it (or, when the staging file is gone, the orphan).
//!
//! # Format
//! Text, so a person can read it; the last line checks the others:
//! ```text
//! modelcache-ranges 1
//! blob <etag or artifact id>
//! size <expected size, or ->
//! file <st_dev> <st_ino>
//! ranges 0-4194304 8388608-12582912
//! check <blake3 of the lines above, hex>
//! ```
//!
//! # Crash safety
//! [`RangeRecord::save`] first makes the staging file's data durable (`fdatasync`), then
//! replaces the record atomically (temporary file, fsync, rename). A crash or power loss
//! at any instant leaves this record or the previous one, and either names only bytes
//! that reached the disk. The record only saves work: the etag check at commit decides.
//!
//! # Trust
//! A record is used only when everything agrees: format, checksum, blob, expected size,
//! the staging file's identity (device and inode, so a file deleted and re-created
//! behind the record's back is not trusted), sorted disjoint ranges within the file's
//! length. Otherwise the staging file counts only for its safe prefix: the bytes before
//! its first hole (`SEEK_HOLE`), less the filesystem block that may be partly written,
//! so a file an older run or another tool left with holes never resumes from its length.

use std::fmt::Write as _;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::MetadataExt;

use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result};
use crate::fsx;

const MAGIC: &str = "modelcache-ranges 1";
/// Suffix of record files.
pub(crate) const SUFFIX: &str = ".ranges";

/// What ties a record to one staging file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) blob: String,
    pub(crate) size: Option<u64>,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl Identity {
    pub(crate) fn of(file: &File, blob: String, size: Option<u64>) -> std::io::Result<Self> {
        let m = file.metadata()?;
        Ok(Identity { blob, size, dev: m.dev(), ino: m.ino() })
    }
}

/// Persists the completed ranges of one staging file (see the module docs). Cheap to
/// use from any thread; obtained from [`Staging::range_record`](crate::Staging::range_record).
#[derive(Debug)]
pub struct RangeRecord {
    file: File,
    home: Dir,
    rel: Utf8PathBuf,
    abs: Utf8PathBuf,
    id: Identity,
}

impl RangeRecord {
    pub(crate) fn new(file: File, home: Dir, rel: Utf8PathBuf, abs: Utf8PathBuf, id: Identity) -> Self {
        RangeRecord { file, home, rel, abs, id }
    }

    /// Records that exactly `ranges` of the staging file are complete (an empty slice
    /// removes the record): syncs the staging file's data, then replaces the record
    /// atomically. Ranges must be sorted and disjoint.
    pub fn save(&self, ranges: &[Range<u64>]) -> Result<()> {
        if ranges.is_empty() {
            return self.clear();
        }
        self.file.sync_data().map_err(Error::io("sync", self.abs.with_extension("incomplete")))?;
        let parent = self.rel.parent().unwrap_or(Utf8Path::new(""));
        fsx::write_atomic(&self.home, parent, &self.rel, encode(&self.id, ranges).as_bytes())
            .map_err(Error::io("write", self.abs.clone()))
    }

    /// Removes the record.
    pub fn clear(&self) -> Result<()> {
        remove(&self.home, &self.rel).map_err(Error::io("remove", self.abs.clone()))
    }

    /// The record's path.
    pub fn path(&self) -> &Utf8Path {
        &self.abs
    }
}

/// Removes a record file if it exists.
pub(crate) fn remove(home: &Dir, rel: &Utf8Path) -> std::io::Result<()> {
    fsx::remove_file_if_exists(home, rel).map(drop)
}

pub(crate) fn encode(id: &Identity, ranges: &[Range<u64>]) -> String {
    let mut s = format!("{MAGIC}\nblob {}\nsize ", id.blob);
    match id.size {
        Some(n) => write!(s, "{n}"),
        None => write!(s, "-"),
    }
    .unwrap_or_default();
    write!(s, "\nfile {} {}\nranges", id.dev, id.ino).unwrap_or_default();
    for r in ranges {
        write!(s, " {}-{}", r.start, r.end).unwrap_or_default();
    }
    s.push('\n');
    let check = blake3::hash(s.as_bytes()).to_hex();
    writeln!(s, "check {check}").unwrap_or_default();
    s
}

/// The ranges a record names, if it belongs to `id` and fits a file of `len` bytes.
pub(crate) fn decode(text: &str, id: &Identity, len: u64) -> Option<Vec<Range<u64>>> {
    let body_end = text.rfind("check ")?;
    let (body, check) = text.split_at(body_end);
    if check.trim_end() != format!("check {}", blake3::hash(body.as_bytes()).to_hex()) {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != MAGIC || lines.next()?.strip_prefix("blob ")? != id.blob {
        return None;
    }
    let size = match lines.next()?.strip_prefix("size ")? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    if size != id.size || lines.next()? != format!("file {} {}", id.dev, id.ino) {
        return None;
    }
    let limit = id.size.map_or(len, |s| s.min(len));
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in lines.next()?.strip_prefix("ranges")?.split_whitespace() {
        let (a, b) = r.split_once('-')?;
        let r = a.parse::<u64>().ok()?..b.parse::<u64>().ok()?;
        if r.start >= r.end || r.end > limit || out.last().is_some_and(|l| r.start <= l.end) {
            return None;
        }
        out.push(r);
    }
    lines.next().is_none().then_some(out)
}

/// What a staging file of `len` bytes is known to hold: its record's ranges when the
/// record is valid, else its safe prefix. An invalid record is removed.
pub(crate) fn completed(home: &Dir, rel: &Utf8Path, file: &File, id: &Identity, len: u64) -> Vec<Range<u64>> {
    match home.read_to_string(rel) {
        Ok(text) => {
            if let Some(ranges) = decode(&text, id, len) {
                return ranges;
            }
            tracing::info!(record = %rel, "ignoring a progress record that does not match its staging file");
            let _ = remove(home, rel);
        }
        Err(e) if !fsx::is_not_found(&e) => tracing::info!(record = %rel, "cannot read a progress record: {e}"),
        Err(_) => {}
    }
    let prefix = safe_prefix(file, len);
    if prefix < len {
        tracing::info!(len, prefix, "the staging file has holes and no progress record: resuming from its safe prefix");
    }
    if prefix > 0 { std::iter::once(0..prefix).collect() } else { Vec::new() }
}

/// The bytes of a file without a record that can be taken as written: all of them
/// unless it has a hole below its length, else those before the hole less one block.
pub(crate) fn safe_prefix(file: &File, len: u64) -> u64 {
    let hole = rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(0));
    // Positional I/O ignores the offset, but a caller of `Staging::file` may not.
    let _ = rustix::fs::seek(file, rustix::fs::SeekFrom::Start(0));
    match hole {
        Ok(h) if h < len => {
            let block = file.metadata().map_or(4096, |m| m.blksize()).clamp(4096, 1 << 20);
            (h - h % block).saturating_sub(block)
        }
        // No hole, or no `SEEK_HOLE` on this filesystem: the etag check decides.
        _ => len,
    }
}

#[cfg(test)]
#[expect(clippy::single_range_in_vec_init, reason = "sets of one byte range")]
mod tests {
    use std::os::unix::fs::FileExt;

    use super::*;

    fn id() -> Identity {
        Identity { blob: "ab".repeat(32), size: Some(1000), dev: 7, ino: 42 }
    }

    #[test]
    fn records_round_trip_and_reject_anything_doubtful() {
        let text = encode(&id(), &[0..100, 200..300]);
        assert_eq!(decode(&text, &id(), 1000), Some(vec![0..100, 200..300]));
        assert_eq!(decode(&encode(&id(), &[]), &id(), 1000), Some(vec![]));
        let other = |f: fn(&mut Identity)| {
            let mut i = id();
            f(&mut i);
            decode(&text, &i, 1000)
        };
        assert_eq!(other(|i| i.blob = "cd".repeat(32)), None, "another blob");
        assert_eq!(other(|i| i.size = Some(999)), None, "another size");
        assert_eq!(other(|i| i.ino = 43), None, "a re-created file");
        assert_eq!(decode(&text, &id(), 250), None, "a range past the end of the file");
        assert_eq!(decode(&text.replace("200-300", "200-301"), &id(), 1000), None, "checksum");
        assert_eq!(decode(&text[..text.len() - 5], &id(), 1000), None, "torn");
        assert_eq!(decode("", &id(), 1000), None);
        for bad in [&[5..5][..], &[0..10, 10..20], &[20..30, 0..10]] {
            assert_eq!(decode(&encode(&id(), bad), &id(), 1000), None, "{bad:?}");
        }
        let unsized_id = Identity { size: None, ..id() };
        assert_eq!(decode(&encode(&unsized_id, &[0..10]), &unsized_id, 10), Some(vec![0..10]));
    }

    #[test]
    fn a_file_with_holes_counts_only_up_to_its_first_hole() {
        let file = tempfile::tempfile().unwrap();
        file.write_all_at(&[1; 10_000], 0).unwrap();
        assert_eq!(safe_prefix(&file, 10_000), 10_000, "no hole");
        file.write_all_at(&[1; 4096], 1 << 20).unwrap();
        let len = file.metadata().unwrap().len();
        let prefix = safe_prefix(&file, len);
        // Where holes are reported (ext4, xfs, btrfs, tmpfs), the prefix stops below them.
        assert!(prefix == len || prefix <= 10_000, "{prefix}");
        let probe = rustix::fs::seek(&file, rustix::fs::SeekFrom::Hole(0)).unwrap();
        if probe < len {
            assert!((4096..=10_000).contains(&prefix), "{prefix}");
        }
    }
}
