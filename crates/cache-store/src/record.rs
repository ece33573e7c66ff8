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
//! boot <the kernel's boot id when written, or ->
//! ranges 0-4194304 8388608-12582912      written: trusted in the same boot only
//! durable 0-4194304                      fdatasynced: trusted after a reboot too
//! check <blake3 of the lines above, hex>
//! ```
//!
//! # Crash safety and cost
//! [`RangeRecord::save`] replaces the record atomically (temporary file, rename) without
//! any fsync: a checkpoint costs a few small syscalls, so the fetcher can take one every
//! few MiB. Written bytes live in the page cache until the kernel writes them back, which
//! a killed process does not prevent, so within the same boot (same boot id) the written
//! ranges are trusted. Across a reboot (possibly a power loss) only the `durable` ranges
//! are: a background thread `fdatasync`s the staging file every [`SYNC_EVERY`] bytes of
//! progress, then records what the sync covered and fsyncs the record. So a kill loses
//! one checkpoint interval, a power loss at most about `SYNC_EVERY`, and a record that a
//! crash left torn fails its check and is ignored. The record only saves work: the etag
//! check at commit decides.
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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use camino::{Utf8Path, Utf8PathBuf};
use cap_std::fs::Dir;

use crate::error::{Error, Result};
use crate::fsx;

const MAGIC: &str = "modelcache-ranges 1";
/// Suffix of record files.
pub(crate) const SUFFIX: &str = ".ranges";
/// Progress (bytes written beyond the durable ranges) that triggers a background
/// `fdatasync` of the staging file.
pub(crate) const SYNC_EVERY: u64 = 64 << 20;

/// What ties a record to one staging file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) blob: String,
    pub(crate) size: Option<u64>,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl Identity {
    pub(crate) fn of(meta: &std::fs::Metadata, blob: String, size: Option<u64>) -> Self {
        Identity { blob, size, dev: meta.dev(), ino: meta.ino() }
    }
}

/// The kernel's id of the running boot (Linux), read once.
pub(crate) fn boot_id() -> Option<&'static str> {
    static BOOT: OnceLock<Option<String>> = OnceLock::new();
    BOOT.get_or_init(|| {
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let id = id.trim();
        (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then(|| id.to_owned())
    })
    .as_deref()
}

/// What a record says: ranges written (in `boot`) and ranges made durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Content {
    pub(crate) boot: Option<String>,
    pub(crate) written: Vec<Range<u64>>,
    pub(crate) durable: Vec<Range<u64>>,
}

impl Content {
    /// Whether it was written in the running boot (so its written ranges are in the page
    /// cache or on disk).
    fn this_boot(&self, boot: Option<&str>) -> bool {
        boot.is_some() && self.boot.as_deref() == boot
    }
}

/// Adds `0..prefix` to sorted, disjoint ranges.
fn with_prefix(mut ranges: Vec<Range<u64>>, prefix: u64) -> Vec<Range<u64>> {
    if prefix == 0 {
        return ranges;
    }
    let mut end = prefix;
    ranges.retain(|r| {
        let merged = r.start <= end;
        if merged {
            end = end.max(r.end);
        }
        !merged
    });
    ranges.insert(0, 0..end);
    ranges
}

#[derive(Default)]
struct State {
    written: Vec<Range<u64>>,
    durable: Vec<Range<u64>>,
    syncing: bool,
    /// Cleared or dropped: a sync finishing late must not write the record again.
    closed: bool,
}

struct Inner {
    file: File,
    home: Dir,
    rel: Utf8PathBuf,
    abs: Utf8PathBuf,
    id: Identity,
    state: Mutex<State>,
}

/// Persists the completed ranges of one staging file (see the module docs). Cheap to
/// use from any thread; obtained from [`Staging::range_record`](crate::Staging::range_record).
pub struct RangeRecord {
    inner: Arc<Inner>,
    /// The lock its transfer holds: each save is a heartbeat of its holder record. Weak:
    /// a record kept around does not keep the lock.
    held: Option<std::sync::Weak<crate::lock::Held>>,
}

impl std::fmt::Debug for RangeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeRecord").field("path", &self.inner.abs).finish_non_exhaustive()
    }
}

impl RangeRecord {
    pub(crate) fn new(file: File, home: Dir, at: (Utf8PathBuf, Utf8PathBuf), id: Identity, durable: Vec<Range<u64>>) -> Self {
        let (rel, abs) = at;
        let state = Mutex::new(State { durable, ..State::default() });
        RangeRecord { inner: Arc::new(Inner { file, home, rel, abs, id, state }), held: None }
    }

    /// Makes each save refresh the heartbeat of `held`'s holder record.
    pub(crate) fn beating(mut self, held: &Arc<crate::lock::Held>) -> Self {
        self.held = Some(Arc::downgrade(held));
        self
    }

    /// Records that exactly `ranges` of the staging file are written (an empty slice
    /// removes the record), replacing the record atomically; starts a background data
    /// sync once enough is written beyond the durable ranges. Ranges must be sorted and
    /// disjoint, and only name bytes already written.
    pub fn save(&self, ranges: &[Range<u64>]) -> Result<()> {
        if ranges.is_empty() {
            return self.clear();
        }
        if let Some(held) = self.held.as_ref().and_then(std::sync::Weak::upgrade) {
            held.beat();
        }
        let inner = &self.inner;
        let mut state = inner.lock();
        state.closed = false;
        state.written = ranges.to_vec();
        inner.write(&state, false)?;
        if !state.syncing && covered(ranges).saturating_sub(covered(&state.durable)) >= SYNC_EVERY {
            state.syncing = true;
            let (me, snapshot) = (Arc::clone(inner), ranges.to_vec());
            let started = std::thread::Builder::new().name("modelcache-sync".into()).spawn(move || me.sync(snapshot));
            if let Err(e) = started {
                state.syncing = false;
                tracing::debug!("cannot start a sync thread ({e}); the record stays valid for this boot only");
            }
        }
        Ok(())
    }

    /// Removes the record; a sync still running will not write it again.
    pub fn clear(&self) -> Result<()> {
        let mut state = self.inner.lock();
        state.closed = true;
        state.written.clear();
        remove(&self.inner.home, &self.inner.rel).map_err(Error::io("remove", self.inner.abs.clone()))
    }

    /// The record's path.
    pub fn path(&self) -> &Utf8Path {
        &self.inner.abs
    }
}

impl Drop for RangeRecord {
    fn drop(&mut self) {
        // The staging file is about to be committed or abandoned: the record as it is
        // stays for a later run; a late sync leaves it alone.
        self.inner.lock().closed = true;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, state: &State, sync: bool) -> Result<()> {
        let content =
            Content { boot: boot_id().map(str::to_owned), written: state.written.clone(), durable: state.durable.clone() };
        let parent = self.rel.parent().unwrap_or(Utf8Path::new(""));
        fsx::replace(&self.home, parent, &self.rel, encode(&self.id, &content).as_bytes(), sync)
            .map_err(Error::io("write", self.abs.clone()))
    }

    /// Makes the data durable, then records that `snapshot` (written before) is.
    fn sync(&self, snapshot: Vec<Range<u64>>) {
        let synced = self.file.sync_data();
        let mut state = self.lock();
        state.syncing = false;
        match synced {
            Ok(()) => {
                state.durable = snapshot;
                if !state.closed
                    && let Err(e) = self.write(&state, true)
                {
                    tracing::debug!("cannot record durable progress: {e}");
                }
            }
            Err(e) => tracing::debug!("cannot sync a staging file ({e}); its record stays valid for this boot only"),
        }
    }
}

pub(crate) fn covered(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// Removes a record file if it exists.
pub(crate) fn remove(home: &Dir, rel: &Utf8Path) -> std::io::Result<()> {
    fsx::remove_file_if_exists(home, rel).map(drop)
}

fn write_ranges(s: &mut String, name: &str, ranges: &[Range<u64>]) {
    s.push_str(name);
    for r in ranges {
        let _ = write!(s, " {}-{}", r.start, r.end);
    }
    s.push('\n');
}

pub(crate) fn encode(id: &Identity, content: &Content) -> String {
    let mut s = format!("{MAGIC}\nblob {}\nsize ", id.blob);
    let _ = match id.size {
        Some(n) => writeln!(s, "{n}"),
        None => writeln!(s, "-"),
    };
    let _ = writeln!(s, "file {} {}\nboot {}", id.dev, id.ino, content.boot.as_deref().unwrap_or("-"));
    write_ranges(&mut s, "ranges", &content.written);
    write_ranges(&mut s, "durable", &content.durable);
    let check = blake3::hash(s.as_bytes()).to_hex();
    let _ = writeln!(s, "check {check}");
    s
}

fn parse_ranges(line: &str, name: &str, limit: u64) -> Option<Vec<Range<u64>>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    let rest = line.strip_prefix(name)?;
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    for r in rest.split_whitespace() {
        let (a, b) = r.split_once('-')?;
        let r = a.parse::<u64>().ok()?..b.parse::<u64>().ok()?;
        if r.start >= r.end || r.end > limit || out.last().is_some_and(|l| r.start <= l.end) {
            return None;
        }
        out.push(r);
    }
    Some(out)
}

/// What a record says, if it belongs to `id` and fits a file of `len` bytes.
pub(crate) fn decode(text: &str, id: &Identity, len: u64) -> Option<Content> {
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
    let boot = match lines.next()?.strip_prefix("boot ")? {
        "-" => None,
        b => Some(b.to_owned()),
    };
    let limit = id.size.map_or(len, |s| s.min(len));
    let written = parse_ranges(lines.next()?, "ranges", limit)?;
    let durable = parse_ranges(lines.next()?, "durable", limit)?;
    lines.next().is_none().then_some(Content { boot, written, durable })
}

/// What a staging file of `len` bytes is known to hold, and which of that is durable:
/// its record's written ranges when the record is valid and from this boot, with the
/// file's safe prefix (what a stream wrote after the last checkpoint); after a
/// reboot its durable ranges plus the file's safe prefix; without a valid record the safe
/// prefix alone (not known durable). An invalid record is removed.
pub(crate) fn completed(home: &Dir, rel: &Utf8Path, file: &File, id: &Identity, len: u64) -> (Vec<Range<u64>>, Vec<Range<u64>>) {
    if len == 0 {
        // Nothing to resume; a leftover record cannot fit an empty file, and the commit or
        // the first checkpoint replaces it.
        return (Vec::new(), Vec::new());
    }
    match home.read_to_string(rel) {
        Ok(text) => {
            if let Some(content) = decode(&text, id, len) {
                let durable = content.durable.clone();
                if content.this_boot(boot_id()) {
                    // Bytes written after the last checkpoint are in the file too (a kill
                    // loses nothing written in this boot): the run before its first hole
                    // counts as well, so a stream killed between checkpoints resumes
                    // where it stopped rather than at its last checkpoint.
                    return (with_prefix(content.written, safe_prefix(file, len)), durable);
                }
                // After a reboot: what was synced, and what the file shows it holds.
                return (with_prefix(content.durable, safe_prefix(file, len)), durable);
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
    (if prefix > 0 { std::iter::once(0..prefix).collect() } else { Vec::new() }, Vec::new())
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

    fn content() -> Content {
        Content { boot: Some("b-1".into()), written: vec![0..100, 200..300], durable: vec![0..100] }
    }

    #[test]
    fn records_round_trip_and_reject_anything_doubtful() {
        let text = encode(&id(), &content());
        assert_eq!(decode(&text, &id(), 1000), Some(content()));
        assert!(content().this_boot(Some("b-1")));
        assert!(!content().this_boot(Some("b-2")) && !content().this_boot(None));
        assert_eq!(with_prefix(vec![10..20, 30..40, 50..60], 35), vec![0..40, 50..60]);
        assert_eq!(with_prefix(vec![10..20], 0), vec![10..20]);
        assert_eq!(with_prefix(vec![], 5), vec![0..5]);
        let empty = Content::default();
        assert_eq!(decode(&encode(&id(), &empty), &id(), 1000), Some(empty));
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
            let c = Content { written: bad.to_vec(), ..content() };
            assert_eq!(decode(&encode(&id(), &c), &id(), 1000), None, "{bad:?}");
        }
        let unsized_id = Identity { size: None, ..id() };
        let c = Content { written: vec![0..10], durable: vec![], boot: None };
        assert_eq!(decode(&encode(&unsized_id, &c), &unsized_id, 10), Some(c));
    }

    #[test]
    fn saves_are_cheap_and_a_background_sync_makes_them_durable() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let file = tempfile::tempfile().unwrap();
        let rel = Utf8PathBuf::from("partial/x/blob.ranges");
        let abs = Utf8PathBuf::from_path_buf(tmp.path().join(&rel)).unwrap();
        let record = RangeRecord::new(file, home.try_clone().unwrap(), (rel.clone(), abs), id(), vec![]);
        let read = || decode(&home.read_to_string(&rel).unwrap(), &Identity { size: Some(1000), ..id() }, 1000);
        record.save(&[0..100]).unwrap();
        let c = read().unwrap();
        assert_eq!((c.written, c.durable, c.boot.as_deref()), (vec![0..100], vec![], boot_id()));
        // Enough progress starts a sync; once it is done the record says so.
        let big = Identity { size: Some(SYNC_EVERY), ..id() };
        let record = RangeRecord::new(
            tempfile::tempfile().unwrap(),
            home.try_clone().unwrap(),
            (rel.clone(), rel.clone()),
            big.clone(),
            vec![],
        );
        record.save(&[0..SYNC_EVERY]).unwrap();
        let start = std::time::Instant::now();
        while decode(&home.read_to_string(&rel).unwrap(), &big, SYNC_EVERY).unwrap().durable.is_empty() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "the sync never finished");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        record.clear().unwrap();
        assert!(!home.exists(&rel));
    }

    #[test]
    fn a_stream_killed_between_checkpoints_resumes_from_what_it_wrote() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority()).unwrap();
        let rel = Utf8PathBuf::from("partial/x/blob.ranges");
        let path = tmp.path().join("blob");
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        let id = Identity::of(&file.metadata().unwrap(), "ab".repeat(32), Some(1 << 20));
        let record = RangeRecord::new(
            file.try_clone().unwrap(),
            home.try_clone().unwrap(),
            (rel.clone(), rel.clone()),
            id.clone(),
            vec![],
        );
        file.write_all_at(&[1; 8192], 0).unwrap();
        record.save(&[0..8192]).unwrap();
        // The stream went on after its checkpoint, then was killed.
        file.write_all_at(&vec![1; 20_000], 8192).unwrap();
        let (held, _) = completed(&home, &rel, &file, &id, 28_192);
        assert_eq!(held, vec![0..28_192], "bytes written after the checkpoint count");
        // A range written beyond a hole still needs the record; the hole stops the prefix.
        file.write_all_at(&[1; 4096], 512 << 10).unwrap();
        record.save(&[0..28_192, (512 << 10)..(516 << 10)]).unwrap();
        let len = file.metadata().unwrap().len();
        let (held, _) = completed(&home, &rel, &file, &id, len);
        if rustix::fs::seek(&file, rustix::fs::SeekFrom::Hole(0)).unwrap() < len {
            assert_eq!(held, vec![0..28_192, (512 << 10)..(516 << 10)]);
        }
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
        let probe = rustix::fs::seek(&file, rustix::fs::SeekFrom::Hole(0)).unwrap();
        if probe < len {
            assert!((4096..=10_000).contains(&prefix), "{prefix}");
        } else {
            assert_eq!(prefix, len);
        }
    }
}
