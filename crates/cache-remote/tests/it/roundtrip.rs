//! Push then pull, on S3 and on a directory: verified bytes, create-if-absent, multipart,
//! listings and refs, `ls` and `verify`.

use cache_core::{CommitHash, Repo, Revision};
use cache_fetch::NoProgress;
use cache_remote::{Mode, Pulled, Pushed, Tier};

use crate::*;

async fn roundtrip(tier: &Tier, scratch: &std::path::Path) {
    let small = sample(3000, 1);
    let big = sample(7 << 20, 2); // above `multipart_above`: pushed in parts
    for (name, data) in [("small", &small), ("big", &big)] {
        let key = lfs_key(data);
        let file = file_with(scratch, name, data);
        assert_eq!(tier.push_blob(&key, &file, data.len() as u64).await.unwrap(), Pushed::Written, "{name}");
        assert_eq!(tier.push_blob(&key, &file, data.len() as u64).await.unwrap(), Pushed::Present, "{name} again");
        let (path, sink) = sink(scratch, &format!("{name}.incomplete"));
        match tier.pull(&key, data.len() as u64, &sink, name, &NoProgress).await {
            Pulled::Hit(d) => assert_eq!(d.size, data.len() as u64),
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(&std::fs::read(&path).unwrap(), data, "{name}: the bytes pulled");
    }
    let missing = lfs_key(b"never pushed");
    let (_, s) = sink(scratch, "missing");
    assert!(matches!(tier.pull(&missing, 12, &s, "missing", &NoProgress).await, Pulled::Miss));

    let repo = Repo::model("org/name".parse().unwrap());
    let commit = CommitHash::new(&"c".repeat(40)).unwrap();
    tier.push_tree(&repo, &commit, b"{\"format_version\": 1}").await.unwrap();
    tier.push_ref(&repo, &Revision::main(), &commit).await.unwrap();
    assert_eq!(tier.tree(&repo, &commit).await.unwrap().as_deref(), Some(&b"{\"format_version\": 1}"[..]));
    assert_eq!(tier.resolve_ref(&repo, &Revision::main()).await.unwrap().map(|(c, _)| c), Some(commit));

    let ls = tier.list().await.unwrap();
    assert_eq!((ls.blobs, ls.bytes, ls.refs), (2, (small.len() + big.len()) as u64, 1));
    assert_eq!(ls.repos["org/name"], vec!["c".repeat(40)]);
    let report = tier.verify(None).await.unwrap();
    assert_eq!((report.total, report.checked, report.corrupt.len()), (2, 2, 0));
    let stats = tier.stats();
    assert_eq!((stats.hits, stats.misses, stats.blobs_pushed, stats.errors), (2, 1, 2, 0));
    assert_eq!(stats.bytes_pulled, (small.len() + big.len()) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_tier_stores_and_serves_verified_blobs_listings_and_refs() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    roundtrip(&s3.tier(Mode::ReadWrite), scratch.path()).await;
    let listed = s3.moto.list();
    assert!(listed.contains_key("hub/v1/TIER.json"), "{listed:?}");
    assert!(listed.keys().all(|k| k.starts_with("hub/v1/")), "{listed:?}");
    // Ranged GETs of 256 KiB: the 7 MiB blob took 28 of them (one HEAD before), and
    // `verify` one more.
    let big = lfs_key(&sample(7 << 20, 2)).key();
    assert_eq!(s3.proxy.count("GET", &big), 29);
    assert_eq!(s3.proxy.count("HEAD", &big), 3, "two pushes and one pull looked first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_tier_works_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    roundtrip(&dir_tier(&dir.path().join("tier"), Mode::ReadWrite), scratch.path()).await;
    assert!(dir.path().join("tier/v1/TIER.json").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_tier_never_writes_and_a_write_only_tier_never_reads() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    let data = sample(5000, 3);
    let key = lfs_key(&data);
    let file = file_with(scratch.path(), "f", &data);
    s3.tier(Mode::ReadWrite).push_blob(&key, &file, 5000).await.unwrap();
    let before = s3.moto.list();
    let ro = s3.tier(Mode::ReadOnly);
    for i in 0..5 {
        let other = sample(100, 100 + i);
        let (_, s) = sink(scratch.path(), "miss");
        assert!(matches!(ro.pull(&lfs_key(&other), 100, &s, "miss", &NoProgress).await, Pulled::Miss));
    }
    let (_, s) = sink(scratch.path(), "hit");
    assert!(matches!(ro.pull(&key, 5000, &s, "hit", &NoProgress).await, Pulled::Hit(_)));
    let e = ro.push_blob(&lfs_key(b"x"), &file_with(scratch.path(), "x", b"x"), 1).await.unwrap_err();
    assert!(e.to_string().contains("is `ro`"), "{e}");
    assert_eq!(s3.moto.list(), before, "listing and ETags identical");
    assert_eq!(s3.proxy.count_method("PUT") + s3.proxy.count_method("POST"), 2, "only the rw tier's marker and blob");

    let wo = s3.tier(Mode::WriteOnly);
    let (_, s) = sink(scratch.path(), "wo");
    assert!(matches!(wo.pull(&key, 5000, &s, "wo", &NoProgress).await, Pulled::NotRead));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_size_corrupt_object_is_detected_never_served_and_repaired_by_a_verified_push() {
    let s3 = S3::start();
    let scratch = tempfile::tempdir().unwrap();
    let data = sample(300_000, 4);
    let key = lfs_key(&data);
    let mut wrong = data.clone();
    wrong[123_456] ^= 0xff;
    s3.moto.put(&format!("hub/{}", key.key()), &wrong);
    let tier = s3.tier(Mode::ReadWrite);
    let (path, s) = sink(scratch.path(), "blob.incomplete");
    assert!(matches!(tier.pull(&key, 300_000, &s, "blob", &NoProgress).await, Pulled::Corrupt));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "nothing of the wrong bytes is kept");
    assert_eq!(tier.stats().corrupt, 1);
    assert_eq!(tier.stats().misses, 0, "corruption is not a miss");
    // The verified bytes overwrite it: create-if-absent would have kept the wrong ones.
    let file = file_with(scratch.path(), "good", &data);
    assert_eq!(tier.push_blob(&key, &file, 300_000).await.unwrap(), Pushed::Written);
    assert_eq!(s3.moto.get(&format!("hub/{}", key.key())).unwrap(), data);
    let (_, s) = sink(scratch.path(), "again.incomplete");
    assert!(matches!(tier.pull(&key, 300_000, &s, "blob", &NoProgress).await, Pulled::Hit(_)));
    assert_eq!(tier.verify(Some(1)).await.unwrap().corrupt, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_pull_fetches_only_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let tier = dir_tier(&dir.path().join("tier"), Mode::ReadWrite);
    let data = sample(1 << 20, 5);
    let key = lfs_key(&data);
    tier.push_blob(&key, &file_with(dir.path(), "f", &data), data.len() as u64).await.unwrap();
    // A sink that already holds the first 300 000 bytes (as a plain file: its length).
    let (path, _) = sink(dir.path(), "part");
    std::fs::write(&path, &data[..300_000]).unwrap();
    let s: std::sync::Arc<dyn cache_fetch::Sink> =
        std::sync::Arc::new(std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap());
    assert!(matches!(tier.pull(&key, data.len() as u64, &s, "part", &NoProgress).await, Pulled::Hit(_)));
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(tier.stats().bytes_pulled, (data.len() - 300_000) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_signing_key_unsigned_or_badly_signed_listings_and_refs_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("tier");
    let signed = |key: Option<&[u8]>| {
        let spec = cache_remote::TierSpec::new(&format!("file://{}", at.display()), Mode::ReadWrite).unwrap();
        let options = cache_remote::TierOptions { signing_key: key.map(<[u8]>::to_vec), ..options(Vec::new()) };
        cache_remote::Tier::open(spec, std::sync::Arc::new(options)).unwrap()
    };
    let repo = Repo::model("org/name".parse().unwrap());
    let commit = CommitHash::new(&"d".repeat(40)).unwrap();
    let team = signed(Some(b"team key"));
    team.push_tree(&repo, &commit, b"{}").await.unwrap();
    team.push_ref(&repo, &Revision::main(), &commit).await.unwrap();
    assert!(team.tree(&repo, &commit).await.unwrap().is_some());
    assert!(team.resolve_ref(&repo, &Revision::main()).await.unwrap().is_some());
    let stranger = signed(Some(b"another key"));
    assert!(stranger.tree(&repo, &commit).await.unwrap().is_none(), "a bad signature is a miss");
    assert!(stranger.resolve_ref(&repo, &Revision::main()).await.unwrap().is_none());
    // A listing written without a signature (by a process without the key) is a miss too.
    let other = CommitHash::new(&"e".repeat(40)).unwrap();
    signed(None).push_tree(&repo, &other, b"{}").await.unwrap();
    assert!(team.tree(&repo, &other).await.unwrap().is_none());
    // A tampered listing is a miss.
    let file = at.join(format!("v1/trees/models/org--name/{commit}.json"));
    std::fs::write(&file, b"{\"x\":1}").unwrap();
    assert!(team.tree(&repo, &commit).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_listing_is_replaced_once_in_rw_only_and_an_unsigned_one_when_signing() {
    let dir = tempfile::tempdir().unwrap();
    let at = dir.path().join("tier");
    let open = |mode: Mode, key: Option<&[u8]>| {
        let spec = cache_remote::TierSpec::new(&format!("file://{}", at.display()), mode).unwrap();
        let options = cache_remote::TierOptions { signing_key: key.map(<[u8]>::to_vec), ..options(Vec::new()) };
        cache_remote::Tier::open(spec, std::sync::Arc::new(options)).unwrap()
    };
    let repo = Repo::model("org/name".parse().unwrap());
    let commit = CommitHash::new(&"d".repeat(40)).unwrap();
    let file = at.join(format!("v1/trees/models/org--name/{commit}.json"));
    let right = b"{\"format_version\": 1, \"files\": {}}".as_slice();
    let is_right = |body: &[u8]| body == right;

    // Nothing there: nothing to replace (the push creates it).
    let rw = open(Mode::ReadWrite, None);
    assert!(!rw.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap());
    assert_eq!(rw.push_tree(&repo, &commit, b"{ broken").await.unwrap(), Pushed::Written);
    assert_eq!(rw.push_tree(&repo, &commit, right).await.unwrap(), Pushed::Present, "create-if-absent");

    // `ro` and `wo` leave it as it is.
    for mode in [Mode::ReadOnly, Mode::WriteOnly] {
        let t = open(mode, None);
        assert!(!t.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap(), "{mode}");
        assert_eq!(std::fs::read(&file).unwrap(), b"{ broken", "{mode}");
        assert_eq!(t.stats().listings_replaced, 0);
    }

    // `rw` replaces it, once per process, and counts it.
    assert!(rw.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap());
    assert_eq!(std::fs::read(&file).unwrap(), right);
    std::fs::write(&file, b"{ broken again").unwrap();
    assert!(!rw.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap(), "once per key and process");
    assert_eq!(rw.stats().listings_replaced, 1);
    // A right one is left alone.
    let fresh = open(Mode::ReadWrite, None);
    std::fs::write(&file, right).unwrap();
    assert!(!fresh.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap());

    // With a key, a right body without a valid signature is replaced, and then verifies.
    let signed = open(Mode::ReadWrite, Some(b"team key"));
    assert!(signed.tree(&repo, &commit).await.unwrap().is_none(), "unsigned: a miss");
    assert!(signed.replace_tree_if_wrong(&repo, &commit, right, is_right).await.unwrap());
    assert_eq!(signed.tree(&repo, &commit).await.unwrap().as_deref(), Some(right));
}
