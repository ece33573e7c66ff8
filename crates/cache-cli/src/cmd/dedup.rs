//! `dedup`: one inode per digest for blobs several repositories hold as separate files.

use std::fmt::Write as _;

use anyhow::Result;
use modelcache::DedupReport;

use crate::app::App;
use crate::cli::DedupArgs;
use crate::format;

/// The `dedup` text: what was linked and saved, and every copy left alone.
pub(crate) fn dedup_text(r: &DedupReport) -> String {
    let mut out = String::new();
    for s in &r.skipped {
        let _ = writeln!(out, "kept as it is  {s}");
    }
    if r.digests == 0 {
        out.push_str("no blob is held twice: nothing to deduplicate\n");
        return out;
    }
    let (linked, saved) = if r.dry_run { ("would link", "would save") } else { ("linked", "saved") };
    let _ = writeln!(
        out,
        "{linked} {} of {} held more than once; {saved} {}",
        format::count(r.linked, "copy", "copies"),
        format::count(r.digests, "blob", "blobs"),
        format::size(r.bytes_saved)
    );
    out
}

pub(crate) fn run(app: &App, args: &DedupArgs) -> Result<()> {
    let cache = app.manager()?;
    let report = App::runtime()?.block_on(cache.dedup(args.dry_run))?;
    app.out.emit(&report, || dedup_text(&report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_as_sentences() {
        let mut r = DedupReport { digests: 2, linked: 3, bytes_saved: 3 * 1024 * 1024, ..DedupReport::default() };
        assert_eq!(dedup_text(&r), "linked 3 copies of 2 blobs held more than once; saved 3 MiB\n");
        r.dry_run = true;
        r.skipped.push("`models--a--b/blobs/x`: changed or in use meanwhile".into());
        assert_eq!(
            dedup_text(&r),
            "kept as it is  `models--a--b/blobs/x`: changed or in use meanwhile\nwould link 3 copies of 2 blobs held more than once; would save 3 MiB\n"
        );
        assert_eq!(dedup_text(&DedupReport::default()), "no blob is held twice: nothing to deduplicate\n");
    }
}
