//! Content digests (sha256, git-sha1, blake3) with streaming hashers, hex parsing and
//! constant-time comparison, and the `Etag` that tells which digest a Hub file is named by.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::Digest as _;

use crate::error::{Error, Result, Shown};

fn parse_hex<const N: usize>(value: &str, kind: &'static str, expected: &'static str) -> Result<[u8; N]> {
    let err = || Error::InvalidDigest { kind, value: Shown::new(value), expected };
    let bytes = value.as_bytes();
    if bytes.len() != 2 * N {
        return Err(err());
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0]).ok_or_else(err)? << 4) | nibble(pair[1]).ok_or_else(err)?;
    }
    Ok(out)
}

fn write_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (i, byte) in chunk.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(byte >> 4)];
            buf[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        f.write_str(std::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| fmt::Error)?)?;
    }
    Ok(())
}

/// Compares two byte strings in time that depends only on their length.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident, $len:literal, $kind:literal, $expected:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialOrd, Ord)]
        pub struct $name([u8; $len]);

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state);
            }
        }

        impl $name {
            /// Wraps raw digest bytes.
            pub const fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(bytes)
            }

            /// Parses hex digits (either case).
            pub fn from_hex(value: &str) -> Result<Self> {
                parse_hex(value, $kind, $expected).map($name)
            }

            /// The raw digest bytes.
            pub const fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lowercase hex digits.
            pub fn to_hex(&self) -> String {
                self.to_string()
            }
        }

        /// Constant-time: comparing a received digest leaks nothing about where it differs.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                constant_time_eq(&self.0, &other.0)
            }
        }
        impl Eq for $name {}

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::from_hex(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(
    /// A SHA-256 digest: the etag of LFS files on the Hub.
    Sha256, 32, "sha256", "64"
);
digest_type!(
    /// A git blob hash (SHA-1 of `blob <len>\0` followed by the bytes): the etag of small,
    /// non-LFS files on the Hub.
    GitSha1, 20, "git-sha1", "40"
);
digest_type!(
    /// A BLAKE3 digest: recorded at commit time for fast re-verification.
    Blake3, 32, "blake3", "64"
);

impl Sha256 {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = Sha256Hasher::new();
        h.update(data);
        h.finalize()
    }
}

impl GitSha1 {
    /// The git blob hash of `data`.
    pub fn of(data: &[u8]) -> Self {
        let mut h = GitSha1Hasher::new(data.len() as u64);
        h.update(data);
        h.finalize()
    }
}

impl Blake3 {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Blake3(*blake3::hash(data).as_bytes())
    }
}

/// Streaming SHA-256 (uses the CPU's SHA extensions where present).
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest of everything fed.
    pub fn finalize(self) -> Sha256 {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.0.finalize());
        Sha256(out)
    }
}

/// Streaming git blob hash. The length must be known up front (it is part of the header);
/// if a different number of bytes is fed, the digest cannot match the etag.
#[derive(Clone)]
pub struct GitSha1Hasher(sha1::Sha1);

impl GitSha1Hasher {
    /// A hasher for a blob of `len` bytes.
    pub fn new(len: u64) -> Self {
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {len}\0").as_bytes());
        GitSha1Hasher(h)
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest of the header and everything fed.
    pub fn finalize(self) -> GitSha1 {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0.finalize());
        GitSha1(out)
    }
}

/// Streaming BLAKE3.
#[derive(Clone, Default)]
pub struct Blake3Hasher(blake3::Hasher);

impl Blake3Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    /// The digest of everything fed.
    pub fn finalize(&self) -> Blake3 {
        Blake3(*self.0.finalize().as_bytes())
    }
}

/// The identity of a Hub file's content, from its `ETag` (or `X-Linked-Etag`) header: 64
/// hex digits are a SHA-256 (LFS files), 40 a git blob hash. The blob is stored under
/// `blobs/<etag>`.
///
/// ```
/// use cache_core::{Etag, GitSha1};
/// let etag = Etag::from_header("W/\"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\"").unwrap();
/// assert_eq!(etag, Etag::GitSha1(GitSha1::of(b"")));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Etag {
    /// An LFS file, named by the SHA-256 of its content.
    Sha256(Sha256),
    /// A regular git file, named by its git blob hash.
    GitSha1(GitSha1),
}

impl Etag {
    /// Parses bare hex digits (64 or 40).
    pub fn new(value: &str) -> Result<Self> {
        match value.len() {
            64 => Sha256::from_hex(value).map(Etag::Sha256),
            40 => GitSha1::from_hex(value).map(Etag::GitSha1),
            _ => Err(Error::InvalidDigest { kind: "etag", value: Shown::new(value), expected: "40 or 64" }),
        }
    }

    /// Parses a header value as the Hub sends it: optionally weak (`W/`), optionally quoted.
    pub fn from_header(value: &str) -> Result<Self> {
        let v = value.trim();
        let v = v.strip_prefix("W/").unwrap_or(v);
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        Self::new(v)
    }

    /// Which digests a download must compute to check this etag.
    pub fn required(&self) -> DigestKinds {
        match self {
            Etag::Sha256(_) => DigestKinds { sha256: true, git_sha1: false, blake3: true },
            Etag::GitSha1(_) => DigestKinds { sha256: false, git_sha1: true, blake3: true },
        }
    }

    /// Checks computed digests against this etag.
    pub fn verify(&self, digests: &Digests) -> std::result::Result<(), DigestMismatch> {
        let actual = match self {
            Etag::Sha256(want) => digests.sha256.map(|got| (got == *want, got.to_string())),
            Etag::GitSha1(want) => digests.git_sha1.map(|got| (got == *want, got.to_string())),
        };
        match actual {
            Some((true, _)) => Ok(()),
            Some((false, actual)) => Err(DigestMismatch { expected: self.to_string(), actual }),
            None => Err(DigestMismatch { expected: self.to_string(), actual: "(not computed)".to_owned() }),
        }
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Etag::Sha256(d) => d.fmt(f),
            Etag::GitSha1(d) => d.fmt(f),
        }
    }
}

impl fmt::Debug for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Etag({self})")
    }
}

impl FromStr for Etag {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl Serialize for Etag {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Etag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Etag::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Computed digests disagree with the expected etag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content digest `{actual}` does not match the expected `{expected}`")]
pub struct DigestMismatch {
    /// The digest the content should have had.
    pub expected: String,
    /// The digest it had.
    pub actual: String,
}

/// Which digests to compute while streaming.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestKinds {
    /// SHA-256.
    pub sha256: bool,
    /// git blob hash.
    pub git_sha1: bool,
    /// BLAKE3.
    pub blake3: bool,
}

impl DigestKinds {
    /// All three.
    pub const ALL: DigestKinds = DigestKinds { sha256: true, git_sha1: true, blake3: true };
}

/// The digests of a whole file, as computed in one pass.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// Number of bytes hashed.
    pub size: u64,
    /// SHA-256, when asked for.
    pub sha256: Option<Sha256>,
    /// git blob hash, when asked for.
    pub git_sha1: Option<GitSha1>,
    /// BLAKE3, when asked for.
    pub blake3: Option<Blake3>,
}

/// Computes several digests over one stream of bytes.
///
/// ```
/// use cache_core::{DigestKinds, MultiHasher, Sha256};
/// let mut h = MultiHasher::new(DigestKinds::ALL, 5);
/// h.update(b"hel");
/// h.update(b"lo");
/// let d = h.finalize();
/// assert_eq!(d.size, 5);
/// assert_eq!(d.sha256, Some(Sha256::of(b"hello")));
/// ```
#[derive(Clone)]
pub struct MultiHasher {
    sha256: Option<Sha256Hasher>,
    git_sha1: Option<GitSha1Hasher>,
    blake3: Option<Blake3Hasher>,
    size: u64,
}

impl MultiHasher {
    /// A hasher for the given digests; `len` is the total length the git blob header
    /// declares (only used for git-sha1).
    pub fn new(kinds: DigestKinds, len: u64) -> Self {
        MultiHasher {
            sha256: kinds.sha256.then(Sha256Hasher::new),
            git_sha1: kinds.git_sha1.then(|| GitSha1Hasher::new(len)),
            blake3: kinds.blake3.then(Blake3Hasher::new),
            size: 0,
        }
    }

    /// Feeds bytes to every hasher.
    pub fn update(&mut self, data: &[u8]) {
        if let Some(h) = &mut self.sha256 {
            h.update(data);
        }
        if let Some(h) = &mut self.git_sha1 {
            h.update(data);
        }
        if let Some(h) = &mut self.blake3 {
            h.update(data);
        }
        self.size += data.len() as u64;
    }

    /// How many bytes were fed so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The digests of everything fed.
    pub fn finalize(self) -> Digests {
        Digests {
            size: self.size,
            sha256: self.sha256.map(Sha256Hasher::finalize),
            git_sha1: self.git_sha1.map(GitSha1Hasher::finalize),
            blake3: self.blake3.as_ref().map(Blake3Hasher::finalize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_vectors() {
        assert_eq!(Sha256::of(b"").to_string(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // `git hash-object` of an empty file and of "hello\n".
        assert_eq!(GitSha1::of(b"").to_string(), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
        assert_eq!(GitSha1::of(b"hello\n").to_string(), "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(Blake3::of(b"").to_string(), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    }

    #[test]
    fn etags_know_their_digest() {
        let sha = Sha256::of(b"x");
        assert_eq!(Etag::new(&sha.to_hex()).unwrap(), Etag::Sha256(sha));
        assert_eq!(Etag::from_header(&format!("\"{sha}\"")).unwrap(), Etag::Sha256(sha));
        assert_eq!(Etag::from_header(&format!("W/\"{}\"", sha.to_hex().to_uppercase())).unwrap(), Etag::Sha256(sha));
        assert!(Etag::new("abc").unwrap_err().to_string().contains("40 or 64"));
        assert!(Etag::new(&"g".repeat(64)).is_err());

        let mut h = MultiHasher::new(Etag::Sha256(sha).required(), 1);
        h.update(b"x");
        let d = h.finalize();
        assert!(Etag::Sha256(sha).verify(&d).is_ok());
        let wrong = Etag::Sha256(Sha256::of(b"y"));
        let e = wrong.verify(&d).unwrap_err();
        assert_eq!(e.actual, sha.to_string());
        assert_eq!(e.expected, wrong.to_string());
        assert!(Etag::GitSha1(GitSha1::of(b"x")).verify(&d).unwrap_err().actual.contains("not computed"));
    }

    #[test]
    fn constant_time_eq_compares_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_ne!(Sha256::of(b"a"), Sha256::of(b"b"));
    }

    #[test]
    fn serde_is_hex() {
        let b = Blake3::of(b"z");
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, format!("\"{b}\""));
        assert_eq!(serde_json::from_str::<Blake3>(&json).unwrap(), b);
        assert!(serde_json::from_str::<Blake3>("\"zz\"").is_err());
    }

    proptest! {
        #[test]
        fn streaming_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..2048), split in 0usize..2048) {
            let split = split.min(data.len());
            let mut h = MultiHasher::new(DigestKinds::ALL, data.len() as u64);
            h.update(&data[..split]);
            h.update(&data[split..]);
            let d = h.finalize();
            prop_assert_eq!(d.size, data.len() as u64);
            prop_assert_eq!(d.sha256, Some(Sha256::of(&data)));
            prop_assert_eq!(d.git_sha1, Some(GitSha1::of(&data)));
            prop_assert_eq!(d.blake3, Some(Blake3::of(&data)));
        }

        #[test]
        fn hex_round_trips_and_never_panics(bytes in any::<[u8; 32]>(), junk in "\\PC*") {
            let d = Sha256::from_bytes(bytes);
            prop_assert_eq!(Sha256::from_hex(&d.to_hex()).unwrap(), d);
            let _ = Etag::from_header(&junk);
            let _ = GitSha1::from_hex(&junk);
        }
    }
}
