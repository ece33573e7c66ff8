//! Hugging Face Hub resolver: endpoint, token, revisions, listings, file metadata and
//! snapshots, through the cache.
//!
//! Turns "repo, revision, path" into a commit, an etag, a size and a download URL the way
//! `huggingface_hub` does, and drives `cache-fetch` to bring blobs into `cache-store` with
//! ARCHITECTURE.md's download protocol. Freshness follows `huggingface_hub`: commits never
//! revalidate, branches and tags do (optionally within a `revalidate_after` window), an
//! unreachable Hub falls back on the cached ref with a warning.
//!
//! # Layering
//! Depends on `cache-core`, `cache-store` and, with the `network` feature (default),
//! `cache-fetch` (tokio, reqwest). Without `network` only the offline half is built:
//! [`offline`] lookups, snapshot completeness and [`FileFilter`].
//!
//! # Invariants
//! - The token is sent to the endpoint's origin only: never to the CDN or another host.
//! - URLs in errors and logs never show a password or a query ([`cache_core::redact_url`]).
//! - A server's wrong answer (a listing that loops or never ends, a path both a file and a
//!   folder, an absurd size) is an [`Error::InvalidResponse`], never a hang or a disk error.
//! - A hit is checked cheaply (size, blob newer than its link) and re-hashed only when
//!   suspect; a corrupted file is removed and reported, never served.
//! - Blocking store calls run on tokio's blocking pool; a wait for another process's lock
//!   is reported to the [`Observer`], never cut short by a timeout while it progresses.
//! - A request that downloads tells the [`Observer`] its plan (files, cached files, bytes)
//!   before its first transfer, and every retry of its requests, metadata ones included.
//! - A [`BlobSource`] (a team tier, given with [`HubCache::with_source`]) is asked for a
//!   missed blob under its lock before the Hub, and for listings and refs only when the
//!   Hub is unreachable (and told when the Hub has listed a commit, so it can correct a
//!   wrong copy); what it writes is committed only after the digests match, and
//!   any failure of it falls through to the Hub. cache-hf never depends on an object
//!   store: the facade implements the trait.
//!
//! # Resume
//! Downloads write into the store's staging file through a sink that also checkpoints the
//! completed ranges into the store's range record (in the modelcache home), so a transfer
//! interrupted by an error, a kill or a reboot resumes in the next call or process with
//! only what is missing; the digest check at commit still decides.
//!
//! # Example
//! ```no_run
//! # #[cfg(feature = "network")]
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use cache_hf::{FileFilter, HubCache, HubConfig, NoObserver, Observer};
//! use cache_store::{Store, StoreConfig};
//!
//! let store = Arc::new(Store::open(StoreConfig::new("/tmp/hub", "/tmp/modelcache"))?);
//! let hub = HubCache::new(&HubConfig::new("https://huggingface.co"), store)?;
//! let repo = cache_core::Repo::model("openai/whisper-tiny".parse()?);
//! let observer: Arc<dyn Observer> = Arc::new(NoObserver);
//! let file = hub.get_file(&repo, &"main".parse()?, &"config.json".parse()?, &observer).await?;
//! println!("{}", file.path);
//! let filter = FileFilter::new(&["*.json".to_owned()], &[])?;
//! let snapshot = hub.snapshot(&repo, &"main".parse()?, &filter, &observer).await?;
//! println!("{} ({} files)", snapshot.dir, snapshot.files);
//! # Ok(()) }
//! ```

// Unix only, as the cache store it writes into (and `getrlimit` through rustix).
#[cfg(not(unix))]
compile_error!("cache-hf supports Unix systems only (Linux; macOS untested), as cache-store does");

#[cfg(feature = "network")]
mod api;
#[cfg(feature = "network")]
mod cache;
#[cfg(feature = "network")]
mod client;
#[cfg(feature = "network")]
mod download;
mod error;
pub mod offline;
mod patterns;
#[cfg(feature = "network")]
mod sink;
#[cfg(feature = "network")]
mod source;
#[cfg(feature = "network")]
mod token;
mod token_file;
#[cfg(feature = "network")]
mod urls;

#[cfg(feature = "network")]
pub use cache::{ArtifactOutcome, FileOutcome, HubCache, SnapshotOutcome};
#[cfg(feature = "network")]
pub use cache_fetch::{FetchConfig, Token};
#[cfg(feature = "network")]
pub use client::{
    FileMetadata, HubClient, HubConfig, MAX_LISTING_FILES, MAX_LISTING_PAGES, RemoteFile, to_tree, tree_entry_etag,
};
#[cfg(feature = "network")]
pub use download::{NoObserver, Observer};
pub use error::{Error, Result};
pub use patterns::FileFilter;
#[cfg(feature = "network")]
pub use source::{BlobSource, SourceBlob, SourceFuture};
#[cfg(feature = "network")]
pub use token::{discover_token, token_from};
pub use token_file::token_file;
