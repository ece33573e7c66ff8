//! A shared team tier on object storage: a bucket (S3 or any S3-compatible store, Google
//! Cloud Storage, Azure Blob Storage) or a shared directory that every cache pulls blobs through before asking the Hub, that a CI
//! job seeds, and that laptops read without being able to write.
//!
//! # Layering
//! Depends on `cache-core`, `cache-fetch` (only its [`Sink`](cache_fetch::Sink) and
//! progress events, so a pull lands in the same staging file as a Hub download), tokio
//! and `object_store` (`aws-base`, `gcp-base`, `azure-base` with ring, and `fs`). Never on `cache-store` or
//! `cache-hf`: the facade wires a tier into the download protocol as a blob source tried
//! before the Hub (`cargo xtask test-matrix` checks this).
//!
//! # Tiers and modes
//! A tier is one of
//! - `s3://bucket/prefix`: credentials, region and endpoint from the standard `AWS_*`
//!   variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//!   `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`);
//! - `gs://bucket/prefix`: Google Cloud Storage, credentials from `GOOGLE_SERVICE_ACCOUNT`
//!   (a key file), `GOOGLE_SERVICE_ACCOUNT_KEY`, `GOOGLE_APPLICATION_CREDENTIALS` or the
//!   gcloud application-default file; `GOOGLE_BASE_URL` for another endpoint;
//! - `az://container/prefix` (also `azure://`, `adl://`, `abfs[s]://container/prefix` and
//!   `abfs[s]://container@account.dfs.core.windows.net/prefix`): Azure Blob Storage, the
//!   account from `AZURE_STORAGE_ACCOUNT_NAME` (or the URL), credentials from
//!   `AZURE_STORAGE_ACCOUNT_KEY`, a SAS, a service principal, workload identity or the
//!   Azure CLI; `AZURE_STORAGE_ENDPOINT` for another endpoint and
//!   `AZURE_STORAGE_USE_EMULATOR=true` for Azurite;
//! - `file:///path`: NFS, a shared directory.
//!
//! With none of a cloud's credential variables set, reads go anonymous (a public bucket)
//! rather than asking an instance-metadata service. Each tier has its own mode: `rw` pulls and pushes, `ro` only pulls (never a
//! PUT or DELETE), `wo` only pushes. One read-only tier never makes the others read-only.
//!
//! # Object layout (`v1`)
//! Content-addressed, versioned, no symlinks (object stores have none):
//! ```text
//! <prefix>/v1/TIER.json                                  {"layout":"modelcache-tier","version":1}, written once
//! <prefix>/v1/blobs/sha256/<ab>/<hex>                    an LFS file, by its SHA-256
//! <prefix>/v1/blobs/gitsha1/<ab>/<hex>                   a small file, by its git blob id
//! <prefix>/v1/urls/sha256/<ab>/<hex>                     a URL artifact with a known SHA-256
//! <prefix>/v1/trees/<type>/<org>--<name>/<commit>.json   the commit's listing, as the hub cache's trees/
//! <prefix>/v1/refs/<type>/<org>--<name>/<rev>            {"commit": "<sha>", "time": <ms since epoch>}
//! <key>.sig                                              HMAC-SHA256 of a listing or ref (when signing)
//! ```
//!
//! # Invariants
//! - **No wrong byte is published.** A pulled blob is hashed while it arrives and checked
//!   against the digest its key names; a mismatch (even of the same length) empties the
//!   sink, is counted as corruption and falls through to the next tier or the Hub; an
//!   `rw` tier gets the verified bytes back (repair). A vanished object is a plain miss.
//! - **Faults never fail a get that the Hub can serve.** Every call has a connect, request
//!   and stall timeout; errors are counted apart from misses; a tier failing three times
//!   in a row is skipped for a cool-down (circuit breaker); a tier that refuses a write
//!   is `ro` for the rest of the process, with one warning.
//! - **A reader never sees a listing whose blobs are missing**: blobs are pushed before
//!   the listing that names them, refs last; keys are digests, so racing pushes of one
//!   blob store the same bytes and "already exists" is success.
//! - **Nothing is ever deleted from a tier.** Expiry is the bucket's lifecycle rules'
//!   job (refs first, listings before blobs).
//! - **No secret is printed.** Tier URLs carry no credentials ([`TierSpec::new`] refuses
//!   them); credentials are only read from the environment given.
//! - The format marker is read once per process; a marker of an unknown layout disables
//!   the tier instead of misreading it.
//!
//! # Example
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use cache_remote::{BlobKey, Remote, TierOptions, TierSpec};
//! let spec: TierSpec = "s3://team-models/hub:ro".parse()?;
//! let options = TierOptions::default().with_env(&|k| std::env::var(k).ok());
//! let (remote, _left_out) = Remote::open(&[spec], options);
//! let etag = cache_core::Etag::new(&"ab".repeat(32))?;
//! let sink: Arc<dyn cache_fetch::Sink> = Arc::new(std::fs::File::create("/tmp/blob.incomplete")?);
//! if let Some((digests, tier)) = remote.pull(&BlobKey::Hub(etag), 1234, &sink, "model.bin", &cache_fetch::NoProgress).await {
//!     println!("{} bytes from {tier}, verified: {:?}", digests.size, digests.sha256);
//! }
//! # Ok(()) }
//! ```

mod backend;
mod breaker;
mod catalog;
mod counters;
mod error;
mod layout;
mod pull;
mod push;
mod remote;
mod sign;
mod spec;
mod state;
mod tier;

pub use catalog::{TierListing, TierVerifyReport};
pub use counters::TierStats;
pub use error::Error;
pub use layout::{BlobKey, VERSION, parse_tree_key, ref_key, tree_key};
pub use pull::Pulled;
pub use push::{Pushed, RefRecord};
pub use remote::Remote;
pub use spec::{Mode, TierSpec, parse_list};
pub use state::{PendingPush, TierState};
pub use tier::{Tier, TierOptions};
