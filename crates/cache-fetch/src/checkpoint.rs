//! Checkpoints: persisting which ranges of the sink are complete while a transfer runs, so
//! a later run — after an error, a kill or a reboot — fetches only what is missing.
//!
//! # Policy
//! A thread per transfer (started only when the sink [records progress](Sink::records_progress)
//! and more than one interval is left to fetch) waits until `checkpoint_interval` bytes
//! were written since its last checkpoint, then hands the written ranges to
//! [`Sink::record_completed`] (the store's sink replaces its record atomically, a few
//! small syscalls, and makes the data durable in the background). The receivers never
//! wait for it. A kill therefore loses what was written since the last checkpoint —
//! about one interval plus what arrives during one checkpoint — whatever the parallelism.
//!
//! # Failures
//! When a transfer fails in the process, [`settle`] records exactly what was written; if
//! the sink keeps no record (or recording fails), it truncates the sink to its contiguous
//! prefix instead, so resuming "from the length" never assumes a hole is data. A restart
//! from zero clears the record before truncating ([`clear`]).

use std::sync::Arc;

use crate::frontier::Frontier;
use crate::sink::Sink;

/// The checkpointing thread of one transfer.
pub(crate) struct CheckpointJob {
    done: tokio::sync::oneshot::Receiver<()>,
}

impl CheckpointJob {
    /// Starts checkpointing `sink` every `every` bytes written, until the frontier is
    /// closed or aborted. `None` when the thread cannot be started (the transfer then
    /// simply runs without checkpoints).
    pub(crate) fn spawn(sink: Arc<dyn Sink>, frontier: Arc<Frontier>, every: u64) -> Option<CheckpointJob> {
        let (tx, done) = tokio::sync::oneshot::channel();
        let started = std::thread::Builder::new().name("modelcache-checkpoint".into()).spawn(move || {
            let mut warned = false;
            while let Some(ranges) = frontier.next_checkpoint(every) {
                if let Err(e) = sink.record_completed(&ranges)
                    && !warned
                {
                    warned = true;
                    tracing::warn!("cannot record download progress ({e}); an interrupted transfer may fetch more again");
                }
            }
            let _ = tx.send(());
        });
        match started {
            Ok(_) => Some(CheckpointJob { done }),
            Err(e) => {
                tracing::warn!("cannot start the checkpoint thread ({e}); continuing without checkpoints");
                None
            }
        }
    }

    /// Waits until the thread finished its last checkpoint (after the frontier was closed
    /// or aborted), so nothing is recorded after the transfer returns.
    pub(crate) async fn finish(self) {
        let _ = self.done.await;
    }
}

/// After a transfer failed in the process: records exactly the written ranges, or, for a
/// sink without a record (or when recording fails), truncates the sink to the contiguous
/// prefix so that its length never covers a hole.
pub(crate) async fn settle(sink: &Arc<dyn Sink>, frontier: &Frontier) {
    let ranges = frontier.ranges();
    let contiguous = frontier.contiguous();
    let sink = Arc::clone(sink);
    let settled = tokio::task::spawn_blocking(move || {
        if sink.records_progress() {
            match sink.record_completed(&ranges) {
                Ok(()) => return,
                Err(e) => tracing::warn!("cannot record download progress ({e}); keeping only the contiguous prefix"),
            }
        }
        match sink.size() {
            Ok(len) if len > contiguous => {
                tracing::debug!(len, contiguous, "truncating an interrupted parallel transfer to its contiguous prefix");
                if let Err(e) = sink.set_len(contiguous) {
                    tracing::warn!("cannot truncate an interrupted download ({e}); the next attempt verifies it anyway");
                }
            }
            _ => {}
        }
    })
    .await;
    if let Err(e) = settled {
        tracing::warn!("settling an interrupted download failed: {e}");
    }
}

/// Before a sink is truncated to restart from zero: its record must not outlive the data.
pub(crate) fn clear(sink: &dyn Sink) {
    if sink.records_progress()
        && let Err(e) = sink.record_completed(&[])
    {
        tracing::warn!("cannot clear the download progress record ({e})");
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::Mutex;

    use bytes::Bytes;

    use super::*;

    /// A file sink that remembers what it was told.
    struct Recording {
        file: std::fs::File,
        records: Mutex<Vec<Vec<Range<u64>>>>,
        fail: bool,
    }

    impl Sink for Recording {
        fn size(&self) -> std::io::Result<u64> {
            self.file.size()
        }
        fn write_at(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
            Sink::write_at(&self.file, offset, data)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            Sink::read_at(&self.file, offset, buf)
        }
        fn set_len(&self, len: u64) -> std::io::Result<()> {
            Sink::set_len(&self.file, len)
        }
        fn records_progress(&self) -> bool {
            true
        }
        fn record_completed(&self, ranges: &[Range<u64>]) -> std::io::Result<()> {
            if self.fail {
                return Err(std::io::Error::other("read-only"));
            }
            self.records.lock().unwrap().push(ranges.to_vec());
            Ok(())
        }
    }

    fn setup(fail: bool) -> (Arc<Recording>, Arc<Frontier>) {
        let sink = Arc::new(Recording { file: tempfile::tempfile().unwrap(), records: Mutex::default(), fail });
        let frontier = Frontier::new(0);
        for (a, b) in [(0_u64, 100_u64), (300, 400)] {
            sink.write_at(a, &[1; 100]).unwrap();
            frontier.written(a, Bytes::from(vec![1; usize::try_from(b - a).unwrap()]), u64::MAX);
        }
        (sink, frontier)
    }

    #[tokio::test]
    async fn a_failed_transfer_records_what_was_written() {
        let (sink, frontier) = setup(false);
        let dyn_sink: Arc<dyn Sink> = sink.clone();
        settle(&dyn_sink, &frontier).await;
        assert_eq!(*sink.records.lock().unwrap(), vec![vec![0..100, 300..400]]);
        assert_eq!(sink.size().unwrap(), 400, "recorded bytes are kept");
        clear(&*sink);
        assert_eq!(sink.records.lock().unwrap().last().unwrap(), &Vec::<Range<u64>>::new());
    }

    #[tokio::test]
    async fn without_a_record_the_sink_is_cut_to_its_prefix() {
        let (sink, frontier) = setup(true);
        let dyn_sink: Arc<dyn Sink> = sink.clone();
        settle(&dyn_sink, &frontier).await;
        assert_eq!(sink.size().unwrap(), 100);
        let file: Arc<dyn Sink> = Arc::new(tempfile::tempfile().unwrap());
        file.write_at(0, &[1; 500]).unwrap();
        settle(&file, &frontier).await;
        assert_eq!(file.size().unwrap(), 100);
    }

    #[tokio::test]
    async fn the_thread_checkpoints_until_the_transfer_ends() {
        let (sink, _) = setup(false);
        let frontier = Frontier::with_ranges(&[0..100, 300..400]);
        let job = CheckpointJob::spawn(sink.clone(), Arc::clone(&frontier), 50).unwrap();
        frontier.written(100, Bytes::from(vec![1; 60]), 50);
        while sink.records.lock().unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        frontier.close();
        job.finish().await;
        assert_eq!(sink.records.lock().unwrap()[0], vec![0..160, 300..400]);
    }
}
