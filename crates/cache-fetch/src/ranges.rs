//! Sets of byte ranges: what a sink already holds, what is missing, and the pieces a
//! transfer requests. Ranges are half-open (`start..end`); a normalized set is sorted,
//! without empty, overlapping or touching ranges.

use std::ops::Range;

/// Sorts, merges and clips `ranges` to `0..limit`, dropping empty ones.
pub(crate) fn normalize(mut ranges: Vec<Range<u64>>, limit: u64) -> Vec<Range<u64>> {
    ranges.sort_by_key(|r| r.start);
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        let r = r.start..r.end.min(limit);
        if r.start >= r.end {
            continue;
        }
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Bytes covered by a normalized set.
pub(crate) fn covered(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// The end of the run from byte 0 (0 when the set does not start at 0).
pub(crate) fn prefix(ranges: &[Range<u64>]) -> u64 {
    ranges.first().filter(|r| r.start == 0).map_or(0, |r| r.end)
}

/// What a normalized set misses of `0..total`.
pub(crate) fn gaps(ranges: &[Range<u64>], total: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut pos = 0;
    for r in ranges {
        if r.start >= total {
            break;
        }
        if r.start > pos {
            out.push(pos..r.start);
        }
        pos = pos.max(r.end);
    }
    if pos < total {
        out.push(pos..total);
    }
    out
}

/// Cuts ranges into pieces of at most `chunk` bytes, in order.
pub(crate) fn split(ranges: &[Range<u64>], chunk: u64) -> Vec<Range<u64>> {
    let chunk = chunk.max(1);
    let mut out = Vec::new();
    for r in ranges {
        let mut a = r.start;
        while a < r.end {
            let b = r.end.min(a.saturating_add(chunk));
            out.push(a..b);
            a = b;
        }
    }
    out
}

#[cfg(test)]
#[expect(clippy::single_range_in_vec_init, reason = "sets of one byte range")]
mod tests {
    use super::*;

    #[test]
    fn sets_normalize_and_complement() {
        let set = normalize(vec![30..40, 0..10, 5..12, 12..15, 50..50, 90..200], 100);
        assert_eq!(set, vec![0..15, 30..40, 90..100]);
        assert_eq!(covered(&set), 35);
        assert_eq!(prefix(&set), 15);
        assert_eq!(prefix(&[3..4]), 0);
        assert_eq!(gaps(&set, 100), vec![15..30, 40..90]);
        assert_eq!(gaps(&set, 35), vec![15..30]);
        assert_eq!(gaps(&[], 7), vec![0..7]);
        assert!(gaps(&[0..7], 7).is_empty());
    }

    #[test]
    fn pieces_cover_the_gaps_exactly() {
        assert_eq!(split(&[0..10, 20..25], 4), vec![0..4, 4..8, 8..10, 20..24, 24..25]);
        assert_eq!(split(&[5..6], 0), vec![5..6]);
        assert!(split(&[], 4).is_empty());
    }
}
