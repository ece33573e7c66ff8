//! Resumable, verified, fault-tolerant HTTP transfers into a staging file.
//!
//! Streams a body into a sink it is given while hashing it (sha256 or git-sha1 to check
//! against the etag, blake3 for fast re-verification), resumes with `Range` requests,
//! retries with backoff, fetches large files as parallel ranges and reports progress as
//! events. It never touches the cache layout: the store hands it a staging file.
//!
//! # Layering
//! Depends on `cache-core`, tokio and reqwest (rustls). Never on `cache-store`.
