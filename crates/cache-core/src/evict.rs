//! Eviction planning: which entries to remove to honour a size limit and an age limit.
//!
//! Pure: the caller passes the entries, the set of blobs in use and "now"; the store
//! executes the plan (skipping anything whose lock is held by then).
//!
//! # Rules
//! - The unit is an entry (a file of a revision); a blob's bytes are freed only when every
//!   entry sharing it goes.
//! - Protected entries are never chosen: pinned ones, ones whose blob is in use, ones used
//!   within `in_use_grace`, and ones sharing a blob with a protected entry (removing them
//!   could never free a byte).
//! - Entries older than `max_age` (by last use) go first. Then, if the cache is still over
//!   `max_size`, least recently used entries go until the size is at most
//!   `low_watermark × max_size`. Ties in last use are broken by the entry key, so a plan is
//!   deterministic.
//! - The evicted entries are always a prefix of the unprotected entries in last-use order.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::entry::{BlobId, EntryMeta, Timestamp};
use crate::error::{Error, Result};

/// Default fraction of `max_size` to evict down to.
pub const DEFAULT_LOW_WATERMARK: f64 = 0.8;
/// Default protection window after a use.
pub const DEFAULT_IN_USE_GRACE: Duration = Duration::from_mins(5);

/// When to evict.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvictionPolicy {
    /// Total size above which least recently used entries are evicted.
    pub max_size: Option<u64>,
    /// Once over `max_size`, evict down to this fraction of it (0 < x ≤ 1).
    pub low_watermark: f64,
    /// Entries unused for longer than this are evicted.
    pub max_age: Option<Duration>,
    /// Entries used more recently than this are protected.
    pub in_use_grace: Duration,
}

impl Default for EvictionPolicy {
    fn default() -> Self {
        EvictionPolicy { max_size: None, low_watermark: DEFAULT_LOW_WATERMARK, max_age: None, in_use_grace: DEFAULT_IN_USE_GRACE }
    }
}

impl EvictionPolicy {
    /// Checks the values are in range.
    pub fn validate(&self) -> Result<()> {
        if !(self.low_watermark > 0.0 && self.low_watermark <= 1.0) {
            return Err(Error::InvalidPolicy { reason: "`low_watermark` must be greater than 0 and at most 1" });
        }
        Ok(())
    }

    /// The size to evict down to once `max_size` is exceeded.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a fraction of a byte count; the watermark is validated to (0, 1]"
    )]
    pub fn target_size(&self) -> Option<u64> {
        self.max_size.map(|max| ((max as f64) * self.low_watermark.clamp(0.0, 1.0)).floor() as u64)
    }
}

/// Why an entry was kept regardless of the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// The user pinned it.
    Pinned,
    /// Its blob is in use (a lock is held on it).
    InUse,
    /// It was used within the grace period.
    RecentlyUsed,
    /// Its blob is shared with a protected entry, so removing it would free nothing.
    SharesProtectedBlob,
}

/// Why an entry was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvictReason {
    /// Unused for longer than `max_age`.
    Expired,
    /// Least recently used while the cache was over `max_size`.
    OverSize,
}

/// One entry to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Eviction<'a> {
    /// The entry.
    pub entry: &'a EntryMeta,
    /// Why.
    pub reason: EvictReason,
    /// Bytes this removal frees (non-zero only for the last entry of a blob).
    pub frees: u64,
}

/// The outcome of planning. It borrows the entries it was planned from (a plan over
/// 100 000 entries copies none of them).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EvictionPlan<'a> {
    /// Entries to remove, in order.
    pub evict: Vec<Eviction<'a>>,
    /// Blobs whose last entry is removed.
    pub blobs_freed: Vec<&'a BlobId>,
    /// Sum of the sizes of `blobs_freed`.
    pub bytes_freed: u64,
    /// Entries kept regardless of the policy, and why.
    pub protected: Vec<(&'a EntryMeta, Protection)>,
    /// Total size (distinct blobs) before.
    pub size_before: u64,
    /// Total size after the plan is executed.
    pub size_after: u64,
    /// The size the plan aimed for, when the size limit was exceeded.
    pub target: Option<u64>,
}

/// Plans an eviction.
///
/// `in_use` holds blobs that must not be touched now (their lock is held). Entries with the
/// same `blob` must report the same size; the first one seen is used.
///
/// ```
/// use cache_core::{plan_eviction, BlobId, EntryKey, EntryMeta, EvictionPolicy, Timestamp};
/// use std::collections::BTreeSet;
/// let entry = |name: &str, size, used| EntryMeta {
///     key: EntryKey::Artifact { key: name.into() },
///     blob: BlobId::from_relative_path(name),
///     etag: None, size, blake3: None,
///     downloaded_at: Timestamp::EPOCH,
///     last_used: Timestamp::from_unix_millis(used),
///     pinned: false,
/// };
/// let entries = [entry("old", 600, 1), entry("new", 600, 2)];
/// let policy = EvictionPolicy { max_size: Some(1000), ..EvictionPolicy::default() };
/// let now = Timestamp::from_unix_millis(1_000_000_000);
/// let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, now);
/// assert_eq!(plan.evict[0].entry.key, EntryKey::Artifact { key: "old".into() });
/// assert_eq!(plan.size_after, 600);
/// ```
pub fn plan_eviction<'a>(
    entries: &'a [EntryMeta],
    in_use: &BTreeSet<BlobId>,
    policy: &EvictionPolicy,
    now: Timestamp,
) -> EvictionPlan<'a> {
    struct Blob<'a> {
        id: &'a BlobId,
        size: u64,
        remaining: usize,
        protected: bool,
    }
    // Hash each blob id once; everything after works on indices.
    let mut index: HashMap<&BlobId, usize> = HashMap::with_capacity(entries.len());
    let mut blobs: Vec<Blob<'_>> = Vec::with_capacity(entries.len());
    let mut blob_of: Vec<usize> = Vec::with_capacity(entries.len());
    let mut own: Vec<Option<Protection>> = Vec::with_capacity(entries.len());
    let grace_start = now.saturating_sub(policy.in_use_grace);
    for e in entries {
        let b = *index.entry(&e.blob).or_insert_with(|| {
            blobs.push(Blob { id: &e.blob, size: e.size, remaining: 0, protected: false });
            blobs.len() - 1
        });
        let p = if e.pinned {
            Some(Protection::Pinned)
        } else if in_use.contains(&e.blob) {
            Some(Protection::InUse)
        } else if e.last_used > grace_start {
            Some(Protection::RecentlyUsed)
        } else {
            None
        };
        blobs[b].remaining += 1;
        blobs[b].protected |= p.is_some();
        blob_of.push(b);
        own.push(p);
    }
    drop(index);
    let size_before: u64 = blobs.iter().map(|b| b.size).sum();

    let mut protected = Vec::new();
    // Sort (last use, index) pairs: compact, so the sort stays in cache; keys only break ties.
    let mut candidates: Vec<(Timestamp, usize)> = Vec::with_capacity(entries.len());
    for (i, (e, p)) in entries.iter().zip(own).enumerate() {
        match p {
            Some(p) => protected.push((e, p)),
            None if blobs[blob_of[i]].protected => protected.push((e, Protection::SharesProtectedBlob)),
            None => candidates.push((e.last_used, i)),
        }
    }
    candidates.sort_unstable_by(|&(ta, a), &(tb, b)| ta.cmp(&tb).then_with(|| entries[a].key.cmp(&entries[b].key)));
    protected.sort_by(|a, b| a.0.key.cmp(&b.0.key));

    let mut plan = EvictionPlan { size_before, size_after: size_before, protected, ..EvictionPlan::default() };
    let mut take = |i: usize, reason, plan: &mut EvictionPlan<'a>| {
        let blob = &mut blobs[blob_of[i]];
        blob.remaining -= 1;
        let frees = if blob.remaining == 0 {
            plan.blobs_freed.push(blob.id);
            blob.size
        } else {
            0
        };
        plan.bytes_freed += frees;
        plan.size_after -= frees;
        plan.evict.push(Eviction { entry: &entries[i], reason, frees });
    };

    let mut rest = candidates.as_slice();
    if let Some(max_age) = policy.max_age {
        let cutoff = now.saturating_sub(max_age);
        let expired = rest.iter().take_while(|&&(t, _)| t < cutoff).count();
        for &(_, i) in &rest[..expired] {
            take(i, EvictReason::Expired, &mut plan);
        }
        rest = &rest[expired..];
    }
    if let (Some(max), Some(target)) = (policy.max_size, policy.target_size())
        && plan.size_after > max
    {
        plan.target = Some(target);
        for &(_, i) in rest {
            if plan.size_after <= target {
                break;
            }
            take(i, EvictReason::OverSize, &mut plan);
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::EntryKey;
    use proptest::prelude::*;

    fn entry(name: &str, blob: &str, size: u64, last_used: i64) -> EntryMeta {
        EntryMeta {
            key: EntryKey::Artifact { key: name.to_owned() },
            blob: BlobId::from_relative_path(blob),
            etag: None,
            size,
            blake3: None,
            downloaded_at: Timestamp::EPOCH,
            last_used: Timestamp::from_unix_millis(last_used),
            pinned: false,
        }
    }

    const DAY: i64 = 86_400_000;
    const NOW: Timestamp = Timestamp::from_unix_millis(100 * DAY);

    fn keys(plan: &EvictionPlan<'_>) -> Vec<String> {
        plan.evict.iter().map(|e| e.entry.key.to_string()).collect()
    }

    #[test]
    fn nothing_to_do_under_the_limit() {
        let entries = [entry("a", "a", 10, DAY), entry("b", "b", 10, 2 * DAY)];
        let policy = EvictionPolicy { max_size: Some(20), ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        assert!(plan.evict.is_empty());
        assert_eq!((plan.size_before, plan.size_after, plan.target), (20, 20, None));
    }

    #[test]
    fn lru_down_to_the_low_watermark() {
        let entries =
            [entry("c", "c", 40, 3 * DAY), entry("a", "a", 40, DAY), entry("b", "b", 40, 2 * DAY), entry("d", "d", 40, 4 * DAY)];
        let policy = EvictionPolicy { max_size: Some(150), ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        // 160 > 150: evict down to 120.
        assert_eq!(keys(&plan), ["a"]);
        assert_eq!((plan.size_after, plan.bytes_freed, plan.target), (120, 40, Some(120)));
        let policy = EvictionPolicy { max_size: Some(150), low_watermark: 0.55, ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        // Down to 82: two entries go.
        assert_eq!(keys(&plan), ["a", "b"]);
        assert_eq!(plan.size_after, 80);
    }

    #[test]
    fn pinned_in_use_and_recent_entries_are_protected() {
        let mut pinned = entry("pinned", "p", 100, 0);
        pinned.pinned = true;
        let entries = [
            pinned,
            entry("busy", "busy", 100, 0),
            entry("recent", "r", 100, NOW.as_unix_millis() - 1000),
            entry("old", "o", 100, 0),
        ];
        let in_use = BTreeSet::from([BlobId::from_relative_path("busy")]);
        let policy = EvictionPolicy { max_size: Some(1), ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &in_use, &policy, NOW);
        assert_eq!(keys(&plan), ["old"]);
        assert_eq!(plan.size_after, 300);
        let reasons: Vec<_> = plan.protected.iter().map(|(e, p)| (e.key.to_string(), *p)).collect();
        assert_eq!(
            reasons,
            [
                ("busy".into(), Protection::InUse),
                ("pinned".into(), Protection::Pinned),
                ("recent".into(), Protection::RecentlyUsed)
            ]
        );
    }

    #[test]
    fn shared_blobs_are_freed_only_with_their_last_entry() {
        let entries = [entry("x1", "shared", 100, DAY), entry("y", "y", 50, 2 * DAY), entry("x2", "shared", 100, 3 * DAY)];
        let policy = EvictionPolicy { max_size: Some(100), low_watermark: 1.0, ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        // 150 → x1 frees nothing, y frees 50: 100 ≤ 100.
        assert_eq!(keys(&plan), ["x1", "y"]);
        assert_eq!(plan.evict[0].frees, 0);
        assert_eq!(plan.bytes_freed, 50);
        assert_eq!(plan.blobs_freed, [&BlobId::from_relative_path("y")]);

        let mut pinned = entry("x2", "shared", 100, 3 * DAY);
        pinned.pinned = true;
        let entries = [entry("x1", "shared", 100, DAY), pinned];
        let plan =
            plan_eviction(&entries, &BTreeSet::new(), &EvictionPolicy { max_size: Some(0), ..EvictionPolicy::default() }, NOW);
        assert!(plan.evict.is_empty());
        assert!(
            plan.protected
                .iter()
                .any(|(e, p)| e.key == EntryKey::Artifact { key: "x1".into() } && *p == Protection::SharesProtectedBlob)
        );
    }

    #[test]
    fn max_age_expires_old_entries_even_under_the_size_limit() {
        let entries = [entry("ancient", "a", 1, DAY), entry("fresh", "f", 1, 99 * DAY)];
        let policy = EvictionPolicy { max_age: Some(Duration::from_secs(30 * 86_400)), ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        assert_eq!(keys(&plan), ["ancient"]);
        assert_eq!(plan.evict[0].reason, EvictReason::Expired);
    }

    #[test]
    fn equal_timestamps_break_ties_by_key() {
        let entries = [entry("b", "b", 10, DAY), entry("a", "a", 10, DAY), entry("c", "c", 10, DAY)];
        let policy = EvictionPolicy { max_size: Some(25), low_watermark: 0.5, ..EvictionPolicy::default() };
        let plan = plan_eviction(&entries, &BTreeSet::new(), &policy, NOW);
        assert_eq!(keys(&plan), ["a", "b"]);
    }

    #[test]
    fn watermark_is_validated() {
        assert!(EvictionPolicy::default().validate().is_ok());
        for bad in [0.0, -1.0, 1.5, f64::NAN] {
            let p = EvictionPolicy { low_watermark: bad, ..EvictionPolicy::default() };
            assert!(p.validate().is_err(), "{bad}");
        }
    }

    fn arb_entries() -> impl Strategy<Value = (Vec<EntryMeta>, BTreeSet<BlobId>)> {
        // Blob sizes are fixed per blob id so entries that share a blob agree on its size.
        let raw_entry = (0u8..40, 0u8..30, 0i64..100, any::<bool>(), any::<bool>());
        proptest::collection::vec(raw_entry, 0..60).prop_map(|raw| {
            let mut in_use = BTreeSet::new();
            let entries = raw
                .into_iter()
                .enumerate()
                .map(|(i, (blob, _, used, pinned, busy))| {
                    let blob_name = format!("blob{blob}");
                    let size = u64::from(blob) * 37 + 1;
                    if busy && blob % 7 == 0 {
                        in_use.insert(BlobId::from_relative_path(blob_name.clone()));
                    }
                    let mut e = entry(&format!("e{i}"), &blob_name, size, used * DAY);
                    e.pinned = pinned && blob % 5 == 0;
                    e
                })
                .collect();
            (entries, in_use)
        })
    }

    proptest! {
        #[test]
        fn plans_honour_every_rule(
            (entries, in_use) in arb_entries(),
            max_size in proptest::option::of(0u64..2000),
            watermark in 0.05f64..=1.0,
            max_age_days in proptest::option::of(0u64..120),
            grace_days in 0u64..10,
            now_day in 90i64..110,
        ) {
            let policy = EvictionPolicy {
                max_size,
                low_watermark: watermark,
                max_age: max_age_days.map(|d| Duration::from_secs(d * 86_400)),
                in_use_grace: Duration::from_secs(grace_days * 86_400),
            };
            let now = Timestamp::from_unix_millis(now_day * DAY);
            let plan = plan_eviction(&entries, &in_use, &policy, now);
            let evicted: BTreeSet<&EntryKey> = plan.evict.iter().map(|e| &e.entry.key).collect();
            prop_assert_eq!(evicted.len(), plan.evict.len(), "an entry was evicted twice");

            // No protected entry chosen: pinned, in use, recent, or sharing a blob with one.
            let grace_start = now.saturating_sub(policy.in_use_grace);
            let is_protected = |e: &EntryMeta| e.pinned || in_use.contains(&e.blob) || e.last_used > grace_start;
            let protected_blobs: BTreeSet<&BlobId> = entries.iter().filter(|e| is_protected(e)).map(|e| &e.blob).collect();
            for e in &entries {
                if evicted.contains(&e.key) {
                    prop_assert!(!is_protected(e) && !protected_blobs.contains(&e.blob), "protected {} evicted", e.key);
                }
            }

            // Evicted entries are never more recently used than a kept unprotected one.
            let kept_unprotected = entries.iter().filter(|e| !evicted.contains(&e.key) && !protected_blobs.contains(&e.blob));
            if let Some(oldest_kept) = kept_unprotected.map(|e| e.last_used).min() {
                for e in entries.iter().filter(|e| evicted.contains(&e.key)) {
                    prop_assert!(e.last_used <= oldest_kept);
                }
            }

            // Bytes freed is the sum over blobs all of whose entries go.
            let mut by_blob: HashMap<&BlobId, (u64, usize, usize)> = HashMap::new();
            for e in &entries {
                let b = by_blob.entry(&e.blob).or_insert((e.size, 0, 0));
                b.1 += 1;
                if evicted.contains(&e.key) { b.2 += 1; }
            }
            let freed: u64 = by_blob.values().filter(|(_, n, gone)| n == gone).map(|(s, _, _)| s).sum();
            let total: u64 = by_blob.values().map(|(s, _, _)| s).sum();
            prop_assert_eq!(plan.bytes_freed, freed);
            prop_assert_eq!(plan.size_before, total);
            prop_assert_eq!(plan.size_after, total - freed);
            prop_assert_eq!(plan.blobs_freed.len(), by_blob.values().filter(|(_, n, gone)| n == gone).count());

            // Over the limit → down to the watermark, unless only protected entries remain.
            if let Some(max) = max_size {
                let after_age: u64 = total - plan.evict.iter().filter(|e| e.reason == EvictReason::Expired).map(|e| e.frees).sum::<u64>();
                if after_age > max {
                    let target = policy.target_size().unwrap();
                    let all_unprotected_gone = entries.iter().all(|e| evicted.contains(&e.key) || protected_blobs.contains(&e.blob));
                    prop_assert!(plan.size_after <= target || all_unprotected_gone, "size {} > target {}", plan.size_after, target);
                } else {
                    prop_assert!(plan.evict.iter().all(|e| e.reason == EvictReason::Expired));
                }
            }

            // Expiry: every unprotected entry past max_age goes.
            if let Some(age) = policy.max_age {
                let cutoff = now.saturating_sub(age);
                for e in &entries {
                    if e.last_used < cutoff && !protected_blobs.contains(&e.blob) {
                        prop_assert!(evicted.contains(&e.key), "{} expired but kept", e.key);
                    }
                }
            }

            // Deterministic: the same input in another order plans the same removals.
            let mut reversed = entries.clone();
            reversed.reverse();
            let again = plan_eviction(&reversed, &in_use, &policy, now);
            prop_assert_eq!(keys(&again), keys(&plan));
        }
    }
}
