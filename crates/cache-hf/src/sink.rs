//! `StagingSink`: the store's staging file as a cache-fetch [`Sink`], with its range
//! record, so an interrupted transfer — in this process or after a kill or a reboot —
//! fetches only what is missing.
//!
//! cache-fetch decides when to checkpoint and what is complete; cache-store decides where
//! the record lives and how it is made durable. This type only joins the two.

use std::io;
use std::ops::Range;

use cache_fetch::Sink;
use cache_store::{RangeRecord, Staging};

/// A staging file and its range record, shared by the ranges of one transfer.
pub(crate) struct StagingSink {
    file: std::fs::File,
    record: RangeRecord,
    /// What the staging file held when staged (the fetcher asks once, when it starts).
    completed: Vec<Range<u64>>,
}

impl StagingSink {
    pub(crate) fn new(staging: &Staging) -> cache_store::Result<Self> {
        let file = staging.file().try_clone().map_err(|e| cache_store::Error::Io {
            op: "open",
            path: staging.path().to_owned(),
            source: e,
        })?;
        let record = staging.range_record()?;
        Ok(StagingSink { file, record, completed: staging.completed_ranges().to_vec() })
    }
}

impl Sink for StagingSink {
    fn size(&self) -> io::Result<u64> {
        self.file.size()
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        Sink::write_at(&self.file, offset, data)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        Sink::read_at(&self.file, offset, buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        Sink::set_len(&self.file, len)
    }

    fn completed_ranges(&self) -> io::Result<Option<Vec<Range<u64>>>> {
        Ok(Some(self.completed.clone()))
    }

    fn records_progress(&self) -> bool {
        true
    }

    fn record_completed(&self, ranges: &[Range<u64>]) -> io::Result<()> {
        self.record.save(ranges).map_err(io::Error::other)
    }
}
