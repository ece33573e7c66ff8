//! `stats --format openmetrics`: the cache's figures as `OpenMetrics` text (rendered by
//! `prometheus-client`), optionally written atomically to a file for `node_exporter`'s
//! textfile collector.
//!
//! # Metric names
//! Every name starts with `modelcache_`; counters end in `_total` (see the README's
//! "Metrics" section for the full list). The figures are the ones `stats` shows: counters
//! from the index (all processes that used this cache), plus this process's unflushed
//! hits, so two renders of an unchanged cache are equal.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use modelcache::{CacheStats, FailureCause, Histogram, HistogramKind, TierStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// One snapshot of [`CacheStats`], encoded on demand.
#[derive(Debug)]
struct Figures(CacheStats);

/// A histogram already counted elsewhere (the index), encoded as it is.
#[derive(Debug)]
struct Fixed<'a>(HistogramKind, &'a Histogram);

impl EncodeMetric for Fixed<'_> {
    #[expect(clippy::cast_precision_loss, reason = "sums in seconds or bytes per second, for export")]
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        let Fixed(kind, h) = *self;
        let sum = h.sum as f64 / kind.divisor();
        // The encoder accumulates: it takes each bucket's own count.
        let own: Vec<(f64, u64)> = h.cumulative(kind).iter().zip(h.buckets).map(|((le, _), n)| (*le, n)).collect();
        encoder.encode_histogram::<NoLabelSet>(sum, h.count(), &own, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Writes one counter family with one label, a sample per `(value, count)`.
fn labelled(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    label: &str,
    samples: &[(&str, u64)],
) -> std::fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, count) in samples {
        let labels = [(label, *value)];
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(count, None)?;
    }
    Ok(())
}

fn counter(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> std::fmt::Result {
    encoder.encode_descriptor(name, help, unit, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(encoder: &mut DescriptorEncoder<'_>, name: &str, help: &str, unit: Option<&Unit>, v: u64) -> std::fmt::Result {
    encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?.encode_gauge(&v)
}

impl Collector for Figures {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let (s, c) = (&self.0, &self.0.counters);
        counter(&mut e, "hits", "Lookups answered from the cache", None, c.hits)?;
        counter(&mut e, "misses", "Lookups that found nothing cached", None, c.misses)?;
        counter(&mut e, "downloads", "Files downloaded, verified and committed", None, c.downloads)?;
        counter(&mut e, "downloaded", "Body bytes received by downloads", Some(&Unit::Bytes), c.bytes_downloaded)?;
        let causes: Vec<(&str, u64)> = FailureCause::ALL.iter().map(|k| (cause_label(*k), c.failures.get(*k))).collect();
        labelled(&mut e, "download_failures", "Failed requests that needed a download, by cause", "cause", &causes)?;
        let reasons = [("expired", c.evictions.expired), ("over_size", c.evictions.over_size)];
        labelled(&mut e, "evictions", "Entries evicted by prune or auto-prune, by reason", "reason", &reasons)?;
        counter(&mut e, "lock_waits", "Waits for a blob lock another download held", None, c.lock_waits)?;
        e.encode_descriptor("lock_wait", "Time spent waiting for blob locks", Some(&Unit::Seconds), MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, u64>(&c.lock_wait_seconds, None)?;
        gauge(&mut e, "cache_size", "Bytes on disk (each blob once)", Some(&Unit::Bytes), s.total_size_bytes)?;
        gauge(&mut e, "cache_entries", "Cached files (snapshot entries and URL artifacts)", None, s.total_files)?;
        gauge(&mut e, "cache_repositories", "Cached repositories", None, s.total_models as u64)?;
        gauge(&mut e, "cache_artifacts", "Cached URL artifacts", None, s.total_artifacts as u64)?;
        if let Some(free) = s.free_disk_bytes {
            gauge(&mut e, "free_disk", "Free bytes on the hub cache's filesystem", Some(&Unit::Bytes), free)?;
        }
        for kind in HistogramKind::ALL {
            let (name, help, unit) = histogram_descriptor(kind);
            Fixed(kind, c.histograms.get(kind)).encode(e.encode_descriptor(name, help, Some(&unit), MetricType::Histogram)?)?;
        }
        Ok(())
    }
}

fn cause_label(cause: FailureCause) -> &'static str {
    match cause {
        FailureCause::Remote => "remote",
        FailureCause::Integrity => "integrity",
        FailureCause::DiskFull => "disk_full",
        _ => "other",
    }
}

fn histogram_descriptor(kind: HistogramKind) -> (&'static str, &'static str, Unit) {
    match kind {
        HistogramKind::DownloadSeconds => {
            ("download_duration", "Time from opening a file's staging file to its commit", Unit::Seconds)
        }
        HistogramKind::DownloadBytesPerSecond => {
            ("download_throughput", "Bytes per second a download received", Unit::Other("bytes_per_second".to_owned()))
        }
        HistogramKind::HitSeconds => ("hit_latency", "Time a lookup took to answer from the cache", Unit::Seconds),
    }
}

/// The team tiers' figures, one sample per tier (label `tier`, its URL).
#[derive(Debug)]
struct Tiers(Vec<TierStats>);

impl Collector for Tiers {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        type Field = fn(&TierStats) -> u64;
        if self.0.is_empty() {
            return Ok(());
        }
        let families: [(&str, &str, Field); 8] = [
            ("remote_hits", "Blobs served verified from a team tier", |t| t.hits),
            ("remote_misses", "Blobs a team tier did not hold", |t| t.misses),
            ("remote_pulled_bytes", "Body bytes pulled from a team tier", |t| t.bytes_pulled),
            ("remote_pushed_bytes", "Body bytes pushed to a team tier", |t| t.bytes_pushed),
            ("remote_pushed_blobs", "Blobs pushed to a team tier", |t| t.blobs_pushed),
            ("remote_errors", "Failed calls to a team tier (down, slow, denied), apart from misses", |t| t.errors),
            ("remote_corrupt", "Team tier objects that did not match their digest (never served)", |t| t.corrupt),
            ("remote_listings_replaced", "Wrong team tier listings replaced by the Hub's", |t| t.listings_replaced),
        ];
        for (name, help, field) in families {
            let samples: Vec<(&str, u64)> = self.0.iter().map(|t| (t.url.as_str(), field(t))).collect();
            labelled(&mut e, name, help, "tier", &samples)?;
        }
        Ok(())
    }
}

/// The `OpenMetrics` text of `stats` (ends with `# EOF`), with the team tiers' figures.
pub(crate) fn render(stats: CacheStats, tiers: Vec<TierStats>) -> Result<String> {
    let mut registry = Registry::with_prefix("modelcache");
    registry.register_collector(Box::new(Figures(stats)));
    registry.register_collector(Box::new(Tiers(tiers)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry).context("could not render the metrics")?;
    if !out.ends_with('\n') {
        let _ = writeln!(out);
    }
    Ok(out)
}

/// Writes `text` to `path` atomically: a temporary file beside it, flushed to disk, then
/// renamed over it, so a collector reading it never sees half a file.
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().with_context(|| format!("`{}` is not a file path", path.display()))?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("could not write `{}`", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("modelcache.prom");
        std::fs::write(&path, "old").unwrap();
        write_atomically(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let names: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [std::ffi::OsString::from("modelcache.prom")]);
        assert!(write_atomically(&tmp.path().join("missing/dir/x.prom"), "x").is_err());
    }
}
