//! Range records: kept in the home, survive reopening, go with their staging file, and a
//! corrupt, foreign or missing record falls back to the staging file's safe prefix.
#![expect(clippy::single_range_in_vec_init, reason = "sets of one byte range")]

use std::ops::Range;
use std::time::Duration;

use cache_core::Etag;
use cache_store::{ArtifactKey, CommitRequest, Scope, Staging, Store};
use camino::Utf8PathBuf;

use crate::support::{TestCache, commit, etag_of, path, repo, tree_listing};

const LEN: usize = 3 << 20;

fn body() -> Vec<u8> {
    (0..u32::try_from(LEN).unwrap()).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// Stages `etag`, writes `ranges` of `body` at their offsets and records them.
fn write_ranges(store: &Store, etag: &Etag, body: &[u8], ranges: &[Range<u64>]) -> Utf8PathBuf {
    let lock = store.lock_blob(&repo("org/big"), etag, &mut |_| {}).unwrap();
    let staging = store.stage(&lock, Some(body.len() as u64)).unwrap();
    for r in ranges {
        let (a, b) = (usize::try_from(r.start).unwrap(), usize::try_from(r.end).unwrap());
        staging.write_at(&body[a..b], r.start).unwrap();
    }
    let record = staging.range_record().unwrap();
    record.save(ranges).unwrap();
    record.path().to_owned()
}

fn stage(store: &Store, etag: &Etag, len: usize) -> (cache_store::BlobLock, Staging) {
    let lock = store.lock_blob(&repo("org/big"), etag, &mut |_| {}).unwrap();
    let staging = store.stage(&lock, Some(len as u64)).unwrap();
    (lock, staging)
}

fn records_in(dir: &Utf8PathBuf) -> Vec<String> {
    tree_listing(dir).into_iter().map(|(p, _)| p).filter(|p| p.ends_with(".ranges")).collect()
}

#[test]
fn a_record_lives_in_the_home_and_survives_reopening() {
    let mut t = TestCache::new();
    let body = body();
    let etag = etag_of(&body, true);
    let held = vec![0..100_000, 1_048_576..1_300_000, 2_097_152..2_200_000];
    let at = write_ranges(&t.store, &etag, &body, &held);
    assert!(at.starts_with(t.store.home_dir()), "{at}");
    assert_eq!(records_in(&t.hub()), Vec::<String>::new(), "nothing of ours in the hub cache");
    assert_eq!(records_in(&t.store.home_dir().to_owned()).len(), 1);

    t.reopen();
    let (_lock, staging) = stage(&t.store, &etag, LEN);
    assert_eq!(staging.completed_ranges(), held.as_slice());
    assert_eq!(staging.resume_from(), 100_000);
    // The transfer completes the gaps; the commit checks the digest and drops the record.
    staging.write_at(&body, 0).unwrap();
    let req = CommitRequest::new(repo("org/big"), commit(1), path("w.bin"), etag, LEN as u64);
    t.store.commit(staging, &req).unwrap();
    assert!(!at.exists(), "commit removes the record");
    let kept: u64 = held.iter().map(|r| r.end - r.start).sum();
    assert_eq!(t.store.stats().unwrap().counters.bytes_downloaded, LEN as u64 - kept);
}

#[test]
fn corrupt_or_foreign_records_fall_back_to_the_safe_prefix() {
    let t = TestCache::new();
    let body = body();
    let etag = etag_of(&body, true);
    let at = write_ranges(&t.store, &etag, &body, &[0..100_000, 2_000_000..2_100_000]);
    std::fs::write(&at, std::fs::read_to_string(&at).unwrap().replace("2000000", "1999999")).unwrap();
    let (lock, staging) = stage(&t.store, &etag, LEN);
    // Without a valid record only the bytes before the first hole count (where the
    // filesystem reports holes; elsewhere the length, and the etag check decides).
    let prefix = staging.resume_from();
    assert!(prefix <= 100_000 || prefix == 2_100_000, "{prefix}");
    assert!(staging.completed_ranges().len() <= 1);
    assert!(!at.exists(), "an invalid record is removed");

    // A record that claims more than the file holds (truncated behind its back).
    let record = staging.range_record().unwrap();
    record.save(&[0..100_000, 2_000_000..2_100_000]).unwrap();
    staging.file().set_len(1_000_000).unwrap();
    drop((staging, lock));
    let (lock, staging) = stage(&t.store, &etag, LEN);
    assert!(staging.resume_from() <= 100_000, "{:?}", staging.completed_ranges());
    assert!(
        staging.completed_ranges().iter().all(|r| r.end <= 1_000_000),
        "nothing past the end: {:?}",
        staging.completed_ranges()
    );
    assert!(!at.exists(), "a record that does not fit its file is removed");

    // A record of another blob in its place.
    let other = etag_of(b"other", true);
    staging.range_record().unwrap().save(&[0..50_000]).unwrap();
    let other_at = at.with_file_name(format!("{other}.ranges"));
    std::fs::rename(&at, &other_at).unwrap();
    drop((staging, lock));
    let lock = t.store.lock_blob(&repo("org/big"), &other, &mut |_| {}).unwrap();
    let staging = t.store.stage(&lock, Some(LEN as u64)).unwrap();
    assert_eq!(staging.completed_ranges(), &[] as &[Range<u64>]);
    // With bytes in the other blob's staging file the misplaced record is read, and refused.
    staging.write_at(&body[..60_000], 0).unwrap();
    drop((staging, lock));
    let lock = t.store.lock_blob(&repo("org/big"), &other, &mut |_| {}).unwrap();
    let staging = t.store.stage(&lock, Some(LEN as u64)).unwrap();
    assert!(!other_at.exists(), "a record naming another blob is removed");
    assert_eq!(staging.completed_ranges(), &[0..60_000], "the safe prefix, not the record's 50 000 bytes");
}

#[test]
fn after_a_reboot_only_synced_ranges_and_the_safe_prefix_count() {
    let t = TestCache::new();
    let body = body();
    let etag = etag_of(&body, true);
    let at = write_ranges(&t.store, &etag, &body, &[0..100_000, 2_000_000..2_100_000]);
    // Too little progress for a sync: nothing is durable yet. Pretend another boot wrote it.
    let text = std::fs::read_to_string(&at).unwrap();
    assert!(text.contains("\ndurable\n"), "{text}");
    let body_text: String = text
        .lines()
        .filter(|l| !l.starts_with("check "))
        .map(|l| if l.starts_with("boot ") { "boot 00000000-0000-0000-0000-000000000000\n".to_owned() } else { format!("{l}\n") })
        .collect();
    let check = blake3::hash(body_text.as_bytes()).to_hex();
    std::fs::write(&at, format!("{body_text}check {check}\n")).unwrap();
    let (_lock, staging) = stage(&t.store, &etag, LEN);
    let ranges = staging.completed_ranges();
    assert!(ranges.len() <= 1 && staging.resume_from() <= 2_100_000, "{ranges:?}");
    assert!(!ranges.contains(&(2_000_000..2_100_000)), "unsynced ranges of another boot are not trusted: {ranges:?}");
    assert!(at.exists(), "a valid record of another boot is kept");
}

#[test]
fn records_go_with_their_staging_file() {
    let t = TestCache::new();
    let body = body();
    let etag = etag_of(&body, true);
    let s = &t.store;

    let at = write_ranges(s, &etag, &body, &[0..10, 20..30]);
    let (lock, staging) = stage(s, &etag, LEN);
    staging.discard().unwrap();
    drop(lock);
    assert!(!at.exists(), "discard");

    write_ranges(s, &etag, &body, &[0..10, 20..30]);
    let (lock, staging) = stage(s, &etag, LEN);
    staging.write_at(&[0; 10], 0).unwrap();
    let req = CommitRequest::new(repo("org/big"), commit(1), path("w.bin"), etag, LEN as u64);
    assert!(s.commit(staging, &req).is_err());
    drop(lock);
    assert!(!at.exists(), "a digest mismatch deletes the staging file and its record");

    write_ranges(s, &etag, &body, &[0..10, 20..30]);
    let report = s.clean_stale(Duration::ZERO).unwrap();
    assert_eq!((report.incomplete_removed, report.records_removed), (1, 1), "{report:?}");
    assert!(!at.exists(), "clean_stale");

    // An orphan (its `.incomplete` deleted by another tool) goes on remove and clear.
    write_ranges(s, &etag, &body, &[0..10]);
    let inc = t.hub().join(format!("models--org--big/blobs/{etag}.incomplete"));
    std::fs::remove_file(&inc).unwrap();
    s.remove(&Scope::Repo(repo("org/big"))).unwrap();
    assert!(!at.exists(), "remove");
    write_ranges(s, &etag, &body, &[0..10]);
    std::fs::remove_file(&inc).unwrap();
    s.clear().unwrap();
    assert!(!at.exists(), "clear");

    // A staging file in use keeps its record through remove and clean_stale.
    write_ranges(s, &etag, &body, &[0..10]);
    let (_lock, _staging) = stage(s, &etag, LEN);
    s.remove(&Scope::Repo(repo("org/big"))).unwrap();
    assert_eq!(s.clean_stale(Duration::ZERO).unwrap().records_removed, 0);
    assert!(at.exists());
}

#[test]
fn artifacts_keep_records_too() {
    let mut t = TestCache::new();
    let key = ArtifactKey::new("https://example.invalid/data.bin");
    let body = body();
    {
        let lock = t.store.lock_artifact(&key, &mut |_| {}).unwrap();
        let staging = t.store.stage_artifact(&lock, Some(LEN as u64)).unwrap();
        staging.write_at(&body[2_000_000..], 2_000_000).unwrap();
        staging.write_at(&body[..1000], 0).unwrap();
        staging.range_record().unwrap().save(&[0..1000, 2_000_000..LEN as u64]).unwrap();
    }
    t.reopen();
    let lock = t.store.lock_artifact(&key, &mut |_| {}).unwrap();
    let staging = t.store.stage_artifact(&lock, Some(LEN as u64)).unwrap();
    assert_eq!(staging.completed_ranges(), &[0..1000, 2_000_000..LEN as u64]);
    let at = staging.range_record().unwrap().path().to_owned();
    assert!(at.starts_with(t.store.home_dir().join("artifacts/partial")), "{at}");
    staging.write_at(&body, 0).unwrap();
    t.store.commit_artifact(staging, &key, Some(LEN as u64), None).unwrap();
    assert!(!at.exists());
}
