//! The usage journal: what hits record (last use, hit and miss counts, hit latency) is
//! appended to a small file next to the index, and merged into the index before anything
//! reads those figures.
//!
//! # Why
//! A warm `get` ends by recording when its file was used, so that eviction's
//! `in_use_grace` protects the path it returned even after the process exited. Written to
//! `SQLite` that is a write transaction: locks on the database, its WAL and its shared
//! memory, and a WAL append of every page touched (the entry, its repo's aggregate, the
//! counters, the histogram rows). Appended here it is one `open`, one shared `flock`, one
//! `write` and one `close`.
//!
//! # Format
//! `<home>/hubs/<key>/uses.log`, one record per line, fields separated by tabs (no part
//! of a key can hold a tab or a newline: records that would are written to the index
//! directly):
//! - `u <unix millis> <repo folder> <revision> <path>`: a use;
//! - `c <hits> <misses> <hit-latency buckets, comma-separated> <hit-latency sum>`.
//!
//! A line that does not parse (a write cut short by a full disk) is skipped.
//!
//! # Locking
//! Appenders take the journal's `flock` shared, for the `write` only, and never wait: when
//! it is held exclusively (a merge is running) they write the index themselves. A merge
//! takes it exclusively, reads the whole file, applies it to the index in one
//! transaction, and empties the file before releasing it, so no record is merged twice or
//! lost.
//!
//! # Crash safety
//! The merge transaction also records how many bytes it merged and a hash of them
//! (counter rows `journal_merged_bytes`, `journal_merged_hash`). A merge killed after its
//! commit but before emptying the file leaves those bytes in place; the next merge finds
//! them recorded (same length prefix, same hash) and skips them, so counts are never
//! added twice. Last-use times are merged with `max`, so replaying them changes nothing.
//!
//! # Who merges
//! Every index read of last-use times or counters (`rows`, `summary`, `counters`, the
//! listing's reader) merges first, so eviction plans, `is_in_use`, `ls` and `stats` see
//! every recorded use. A process whose append leaves the file above `MERGE_AT` bytes
//! merges it itself, which keeps the file small.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt;

use cache_core::{BUCKETS, Histogram};
use camino::{Utf8Path, Utf8PathBuf};

/// A journal above this size is merged by the process that appended to it.
pub(crate) const MERGE_AT: u64 = 64 << 10;

/// What a journal holds, summed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Records {
    /// `(repo, revision, path, unix millis)`, the latest use per key.
    pub(crate) uses: Vec<(String, String, String, i64)>,
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) hit_latency: Histogram,
}

/// The journal file next to an index.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    path: Utf8PathBuf,
}

/// Why an append did not happen: the caller records in the index instead.
#[derive(Debug)]
pub(crate) enum NotAppended {
    /// A key holds a tab or a newline.
    Unencodable,
    /// A merge holds the journal right now.
    Busy,
    /// Opening or writing failed.
    Io(std::io::Error),
}

impl std::fmt::Display for NotAppended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotAppended::Unencodable => f.write_str("a key holds a tab or a newline"),
            NotAppended::Busy => f.write_str("a merge holds the journal"),
            NotAppended::Io(e) => write!(f, "{e}"),
        }
    }
}

impl Journal {
    /// The journal of the index at `index_path`.
    pub(crate) fn beside(index_path: &Utf8Path) -> Journal {
        Journal { path: index_path.with_file_name("uses.log") }
    }

    /// Appends a batch as one `write`; returns the file's size after it.
    pub(crate) fn append(
        &self,
        uses: &[(String, String, String, i64)],
        hits: u64,
        misses: u64,
        hit_latency: &Histogram,
    ) -> Result<u64, NotAppended> {
        let text = encode(uses, hits, misses, hit_latency).ok_or(NotAppended::Unencodable)?;
        let mut f = OpenOptions::new().append(true).create(true).mode(0o600).open(&self.path).map_err(NotAppended::Io)?;
        // Busy, or a filesystem without `flock` (a merge could not exclude appenders).
        if f.try_lock_shared().is_err() {
            return Err(NotAppended::Busy);
        }
        f.write_all(text.as_bytes()).map_err(NotAppended::Io)?;
        f.metadata().map(|m| m.len()).map_err(NotAppended::Io)
    }

    /// Takes the journal exclusively and returns it open with its contents, or `None`
    /// when there is no journal or it is empty. The lock lasts until the file is dropped.
    pub(crate) fn take(&self) -> std::io::Result<Option<(File, Vec<u8>)>> {
        let mut f = match OpenOptions::new().read(true).write(true).open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if f.metadata()?.len() == 0 {
            return Ok(None);
        }
        f.lock()?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        if bytes.is_empty() { Ok(None) } else { Ok(Some((f, bytes))) }
    }
}

/// A stable 63-bit hash of merged bytes, as the index records it.
pub(crate) fn hash_of(bytes: &[u8]) -> i64 {
    let h = blake3::hash(bytes);
    let mut eight = [0u8; 8];
    eight.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_le_bytes(eight) & i64::MAX
}

fn encode(uses: &[(String, String, String, i64)], hits: u64, misses: u64, h: &Histogram) -> Option<String> {
    let mut s = String::new();
    for (repo, revision, path, at) in uses {
        if [repo, revision, path].iter().any(|p| p.contains(['\t', '\n']) || p.is_empty()) {
            return None;
        }
        let _ = writeln!(s, "u\t{at}\t{repo}\t{revision}\t{path}");
    }
    if hits > 0 || misses > 0 {
        let buckets: Vec<String> = h.buckets.iter().map(u64::to_string).collect();
        let _ = writeln!(s, "c\t{hits}\t{misses}\t{}\t{}", buckets.join(","), h.sum);
    }
    Some(s)
}

/// Sums the records of `bytes`, skipping lines that do not parse.
pub(crate) fn decode(bytes: &[u8]) -> Records {
    let mut latest: std::collections::HashMap<(String, String, String), i64> = std::collections::HashMap::new();
    let mut r = Records::default();
    for line in String::from_utf8_lossy(bytes).lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f[..] {
            ["u", at, repo, revision, path] if !repo.is_empty() && !revision.is_empty() && !path.is_empty() => {
                let Ok(at) = at.parse::<i64>() else { continue };
                let t = latest.entry((repo.to_owned(), revision.to_owned(), path.to_owned())).or_insert(at);
                *t = (*t).max(at);
            }
            ["c", hits, misses, buckets, sum] => {
                let parsed: Option<Vec<u64>> = buckets.split(',').map(|b| b.parse().ok()).collect();
                let (Ok(hits), Ok(misses), Ok(sum), Some(buckets)) =
                    (hits.parse::<u64>(), misses.parse::<u64>(), sum.parse::<u64>(), parsed)
                else {
                    continue;
                };
                if buckets.len() != BUCKETS {
                    continue;
                }
                r.hits = r.hits.saturating_add(hits);
                r.misses = r.misses.saturating_add(misses);
                for (a, b) in r.hit_latency.buckets.iter_mut().zip(buckets) {
                    *a = a.saturating_add(b);
                }
                r.hit_latency.sum = r.hit_latency.sum.saturating_add(sum);
            }
            _ => {}
        }
    }
    r.uses = latest.into_iter().map(|((a, b, c), t)| (a, b, c, t)).collect();
    r.uses.sort();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(bucket: usize, n: u64, sum: u64) -> Histogram {
        let mut h = Histogram::default();
        h.buckets[bucket] = n;
        h.sum = sum;
        h
    }

    #[test]
    fn records_round_trip_and_sum_up() {
        let a = ("models--o--m".to_owned(), "c".repeat(40), "config.json".to_owned(), 5);
        let b = ("models--o--m".to_owned(), "c".repeat(40), "config.json".to_owned(), 9);
        let mut bytes = encode(&[a], 1, 2, &h(0, 1, 30)).unwrap().into_bytes();
        bytes.extend(encode(std::slice::from_ref(&b), 3, 0, &h(3, 3, 700)).unwrap().into_bytes());
        let r = decode(&bytes);
        assert_eq!(r.uses, [b]);
        assert_eq!((r.hits, r.misses, r.hit_latency.sum), (4, 2, 730));
        assert_eq!((r.hit_latency.buckets[0], r.hit_latency.buckets[3]), (1, 3));
    }

    #[test]
    fn a_cut_or_garbled_line_is_skipped_and_the_rest_kept() {
        let good = encode(&[("r".into(), "v".into(), "p".into(), 7)], 1, 0, &Histogram::default()).unwrap();
        let mut bytes = b"u\t12x\tr\tv\tq\nc\t1\t2\t1,2\t3\nu\t5\tr\tv".to_vec();
        bytes.push(b'\n');
        bytes.extend(good.as_bytes());
        bytes.extend(b"c\t9\t9\t1,1,1");
        let r = decode(&bytes);
        assert_eq!(r.uses, [("r".into(), "v".into(), "p".into(), 7)]);
        assert_eq!((r.hits, r.misses), (1, 0));
    }

    #[test]
    fn keys_with_tabs_or_newlines_are_not_journaled() {
        assert!(encode(&[("r".into(), "v".into(), "a\tb".into(), 1)], 0, 0, &Histogram::default()).is_none());
        assert!(encode(&[("r".into(), "v".into(), "a\nb".into(), 1)], 0, 0, &Histogram::default()).is_none());
    }

    #[test]
    fn appends_are_refused_while_a_merge_holds_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let index = Utf8PathBuf::from_path_buf(dir.path().join("index.sqlite3")).unwrap();
        let j = Journal::beside(&index);
        assert!(j.take().unwrap().is_none(), "no journal yet");
        let use1 = [("r".to_owned(), "v".to_owned(), "p".to_owned(), 1)];
        assert!(j.append(&use1, 1, 0, &Histogram::default()).unwrap() > 0);
        let (held, bytes) = j.take().unwrap().unwrap();
        assert_eq!(decode(&bytes).uses.len(), 1);
        assert!(matches!(j.append(&use1, 1, 0, &Histogram::default()), Err(NotAppended::Busy)));
        drop(held);
        assert!(j.append(&use1, 1, 0, &Histogram::default()).is_ok());
    }
}
