//! `Sink`: where a download is written — a file the caller opened (the store hands over
//! `blobs/<etag>.incomplete`), written and read back at explicit offsets, optionally with
//! a crash-safe record of which byte ranges are complete.
//!
//! # Progress records
//! A parallel transfer writes ranges out of order, so after an interruption the file can
//! have holes below its length. A sink that keeps a record ([`Sink::records_progress`])
//! is told every few MiB which ranges are complete ([`Sink::record_completed`]) and names
//! them when the next download starts ([`Sink::completed_ranges`]); only the rest is
//! fetched. A sink without one (a plain [`File`]) is resumed from its length, so after an
//! interrupted parallel transfer the fetcher truncates it to its contiguous prefix.
//! Correctness never depends on a record: the etag check at the end decides.

use std::fs::File;
use std::io;
use std::ops::Range;

/// A positional, shareable destination for a download.
///
/// Parallel ranges write at their offsets concurrently and the hasher reads back what was
/// written, so every method takes `&self`. Implemented for [`std::fs::File`].
pub trait Sink: Send + Sync {
    /// Bytes currently in the sink: a non-empty sink is resumed from its end.
    fn size(&self) -> io::Result<u64>;
    /// Writes all of `data` at `offset`.
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Reads into `buf` from `offset`; returns how many bytes were read (0 at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Truncates or extends to `len` bytes (0 to restart a transfer).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Free space where the sink lives, when known; used to report a full disk.
    fn available_space(&self) -> Option<u64> {
        None
    }

    /// The byte ranges (`start..end`) known complete when a download starts. `None` (the
    /// default) means the sink keeps no record and its first [`Sink::size`] bytes are
    /// taken as complete. The fetcher sorts, merges and clips what it gets to the size.
    fn completed_ranges(&self) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(None)
    }

    /// Whether [`Sink::record_completed`] persists anything (default: no).
    fn records_progress(&self) -> bool {
        false
    }

    /// Persists that exactly `ranges` (sorted, disjoint, every byte in them written with
    /// [`Sink::write_at`]) are complete, replacing the previous record; an empty slice
    /// clears it. Called every `FetchConfig::checkpoint_interval` bytes from a background
    /// thread, never concurrently with itself, and when a transfer fails or restarts.
    /// Must be crash-safe: the record replaced atomically, so a crash leaves this record or
    /// the previous one, and never trusted for bytes a power loss may have lost (the
    /// store's records say which ranges were synced). Default: nothing.
    fn record_completed(&self, ranges: &[Range<u64>]) -> io::Result<()> {
        let _ = ranges;
        Ok(())
    }
}

impl Sink for File {
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    #[cfg(unix)]
    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(self, data, offset)
    }

    #[cfg(windows)]
    fn write_at(&self, offset: u64, mut data: &[u8]) -> io::Result<()> {
        let mut offset = offset;
        while !data.is_empty() {
            let n = std::os::windows::fs::FileExt::seek_write(self, data, offset)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
            offset += n as u64;
        }
        Ok(())
    }

    #[cfg(unix)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }

    #[cfg(windows)]
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        std::os::windows::fs::FileExt::seek_read(self, buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

/// Fills `buf` from `offset`, failing if the sink ends first.
pub(crate) fn read_exact_at(sink: &dyn Sink, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match sink.read_at(offset, buf) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the download file is shorter than what was written"));
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_write_and_read_at_offsets() {
        let f = tempfile::tempfile().unwrap();
        let sink: &dyn Sink = &f;
        sink.write_at(4, b"world").unwrap();
        sink.write_at(0, b"helo").unwrap();
        assert_eq!(sink.size().unwrap(), 9);
        let mut buf = [0u8; 9];
        read_exact_at(sink, 0, &mut buf).unwrap();
        assert_eq!(&buf, b"heloworld");
        assert!(read_exact_at(sink, 5, &mut buf).is_err());
        sink.set_len(0).unwrap();
        assert_eq!(sink.size().unwrap(), 0);
        assert_eq!(sink.available_space(), None);
        assert!(!sink.records_progress());
        sink.record_completed(std::slice::from_ref(&(0..1))).unwrap();
        assert_eq!(sink.completed_ranges().unwrap(), None);
    }
}
