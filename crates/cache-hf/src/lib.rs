//! Hugging Face Hub resolver: endpoint, token, revisions, listings, file metadata and
//! snapshot plans.
//!
//! Turns "repo, revision, path" into a commit, an etag, a size and a download URL, the way
//! `huggingface_hub` does, and drives `cache-fetch` to bring blobs into `cache-store`.
//!
//! # Layering
//! Depends on `cache-core`, `cache-fetch` and `cache-store`.

mod api;
mod error;
mod patterns;
mod token;
mod urls;

pub use error::Error;
pub use patterns::FileFilter;
pub use token::Token;
