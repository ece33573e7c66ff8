//! Hashing whole files fast: BLAKE3 over a memory map with rayon (through the opened
//! file's `/proc/self/fd` entry, so the file hashed is exactly the one cap-std opened),
//! other digests with large positional reads.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use cache_core::{Blake3, DigestKinds, Digests, Etag, MultiHasher};

const CHUNK: usize = 4 << 20;

/// Computes `kinds` over the first `len` bytes of `file` (the git-sha1 header uses `len`).
pub(crate) fn digests(file: &std::fs::File, kinds: DigestKinds, len: u64) -> io::Result<Digests> {
    if kinds == (DigestKinds { blake3: true, ..DigestKinds::default() }) {
        let b = blake3(file)?;
        return Ok(Digests { size: file.metadata()?.len(), blake3: Some(b), ..Digests::default() });
    }
    let mut h = MultiHasher::new(kinds, len);
    for_each_chunk(file, |chunk| h.update(chunk))?;
    Ok(h.finalize())
}

/// Feeds the whole file to `f` in large positional reads.
fn for_each_chunk(file: &std::fs::File, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    loop {
        let n = file.read_at(&mut buf, off)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n]);
        off += n as u64;
    }
}

/// The BLAKE3 of a whole file.
pub(crate) fn blake3(file: &std::fs::File) -> io::Result<Blake3> {
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let mut h = blake3::Hasher::new();
    if std::path::Path::new(&proc_path).exists() {
        h.update_mmap_rayon(&proc_path)?;
    } else {
        for_each_chunk(file, |chunk| {
            h.update_rayon(chunk);
        })?;
    }
    Ok(Blake3::from_bytes(*h.finalize().as_bytes()))
}

/// The digest an etag names, computed over the file, as lowercase hex.
pub(crate) fn etag_digest(file: &std::fs::File, etag: &Etag) -> io::Result<String> {
    let len = file.metadata()?.len();
    let d = digests(file, DigestKinds { blake3: false, ..etag.required() }, len)?;
    Ok(match etag {
        Etag::Sha256(_) => d.sha256.map(|s| s.to_string()),
        Etag::GitSha1(_) => d.git_sha1.map(|s| s.to_string()),
    }
    .unwrap_or_default())
}

/// The digest an etag names (lowercase hex) and the BLAKE3, in one pass over the file:
/// the first verify of a blob downloaded without a BLAKE3 checks its etag and records one.
pub(crate) fn etag_digest_and_blake3(file: &std::fs::File, etag: &Etag) -> io::Result<(String, Blake3)> {
    let len = file.metadata()?.len();
    let d = digests(file, DigestKinds { blake3: true, ..etag.required() }, len)?;
    let named = match etag {
        Etag::Sha256(_) => d.sha256.map(|s| s.to_string()),
        Etag::GitSha1(_) => d.git_sha1.map(|s| s.to_string()),
    };
    Ok((named.unwrap_or_default(), d.blake3.unwrap_or_else(|| Blake3::of(b""))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::{GitSha1, Sha256};
    use std::io::Write;

    #[test]
    fn file_digests_equal_one_shot_digests() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(CHUNK + 12_345)).map(|i| u8::try_from(i % 251).unwrap()).collect();
        f.write_all(&data).unwrap();
        let d = digests(&f, DigestKinds::ALL, data.len() as u64).unwrap();
        assert_eq!(d.sha256, Some(Sha256::of(&data)));
        assert_eq!(d.git_sha1, Some(GitSha1::of(&data)));
        assert_eq!(d.blake3, Some(Blake3::of(&data)));
        assert_eq!(blake3(&f).unwrap(), Blake3::of(&data));
        assert_eq!(etag_digest(&f, &Etag::GitSha1(GitSha1::of(b"x"))).unwrap(), GitSha1::of(&data).to_string());
        let (named, b3) = etag_digest_and_blake3(&f, &Etag::Sha256(Sha256::of(b"x"))).unwrap();
        assert_eq!((named, b3), (Sha256::of(&data).to_string(), Blake3::of(&data)));
    }
}
