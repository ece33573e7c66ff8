//! A loopback HTTP server that behaves like the Hugging Face Hub, for tests, the demo and
//! benchmarks: `resolve/` downloads with the Hub's headers and redirects, range requests,
//! the JSON API, and faults (throttling, drops, error bursts, wrong bodies, stalls) that can
//! be switched while it runs. Also the test support every crate shares, such as finding
//! the Python interpreter with the real `huggingface_hub` ([`python`]), and a real S3
//! server (moto) with a counting, fault-injecting proxy for team-tier tests ([`s3`]).
//!
//! # Layering
//! Dev-only: never a normal dependency of a library crate. Depends on `cache-core`, tokio
//! and hyper.
//!
//! # What it imitates
//! - `HEAD`/`GET /{repo}/resolve/{rev}/{path}` (and `/datasets/…`, `/spaces/…`; revisions
//!   percent-encoded, e.g. `refs%2Fpr%2F1`): regular files are served directly with a
//!   git-sha1 `ETag`, `X-Repo-Commit`, `Content-Length`, `Accept-Ranges: bytes`; LFS files
//!   answer `302` to `/cdn/<sha256>` on a second listener (another port, so another origin,
//!   like the Hub's CDN) with `X-Linked-Etag` and `X-Linked-Size`. `If-None-Match` with the
//!   current etag answers `304`. No Xet headers are sent, so clients use plain HTTP.
//! - Ranges: a single `bytes=` range answers `206` with `Content-Range`, an unsatisfiable
//!   one `416` with `Content-Range: bytes */<size>`; others are ignored (`200`).
//! - Errors as the Hub sends them: JSON body, `X-Error-Code` (`RepoNotFound`,
//!   `RevisionNotFound`, `EntryNotFound` — with `X-Repo-Commit` —, `GatedRepo`) and
//!   `X-Error-Message`. Missing and private repos answer `401` to anonymous callers and
//!   `404` to callers with a (wrong) token; gated repos `401`/`403`.
//! - `GET /api/{models|datasets|spaces}/{repo}[/revision/{rev}]` (`sha`, `siblings`, …) and
//!   `/api/…/{repo}/tree/{rev}[/{path}][?recursive=true]` (`type`, `oid`, `size`, `path`,
//!   `lfs: {oid, size, pointerSize}`), paginated with `Link: <…>; rel="next"`.
//!
//! # Control
//! From Rust through [`HubHandle`] (a [`TestHub`] dereferences to one), from other
//! processes over HTTP (see [`control`](crate::control) docs: `POST /_testkit/faults`,
//! `GET /_testkit/stats`, …), and from the command line:
//! `cargo run -p cache-testkit -- serve --port 0 --repo org/name --file config.json=1KiB
//! --file model.safetensors=1GiB:lfs` prints the base URL on its first line.
//!
//! # Example
//! ```
//! use cache_testkit::{Content, RepoSpec, TestHub};
//! let hub = TestHub::start_blocking([RepoSpec::model("org/tiny")
//!     .file("config.json", "{}")
//!     .lfs_file("model.bin", Content::generated(4096, 1))]);
//! let info = hub.file("org/tiny", "main", "model.bin").unwrap();
//! assert!(info.url.starts_with(hub.url()));
//! hub.drop_after(1000, 1); // the next file body is cut after 1000 bytes
//! assert_eq!(hub.stats().total_requests(), 0);
//! ```

mod api;
mod body;
mod cli;
mod content;
pub mod control;
mod faults;
pub mod inspect;
pub mod python;
mod repo;
mod routes;
pub mod s3;
mod server;
mod stats;

pub use cli::{ServeArgs, USAGE, parse_serve_args};
pub use content::Content;
pub use faults::{CorruptFault, DropFault, FailFault, Faults, StallFault};
pub use repo::{Access, FileInfo, RepoSpec};
pub use server::{HubConfig, HubHandle, TestHub};
pub use stats::{RequestRecord, Route, Stats};
