//! Verified on-disk cache: layout, atomic commit, locks, index, eviction.
//!
//! This crate owns the cache directory. It keeps Hub repositories exactly as
//! `huggingface_hub` lays them out (`models--org--name/{blobs,snapshots,refs}`), so Python
//! and Rust processes share one cache, and keeps modelcache's own index (`SQLite`) in the
//! modelcache home, never in the hub cache.
//!
//! # Layering
//! Depends on `cache-core`, cap-std, camino, rusqlite. Never on tokio or reqwest
//! (`cargo xtask test-matrix` fails if it does). Its API is synchronous; async callers use
//! `spawn_blocking`.
//!
//! # Invariants
//! - A blob is visible only after fsync and a digest check.
//! - Removal never deletes what another process holds a lock on.
