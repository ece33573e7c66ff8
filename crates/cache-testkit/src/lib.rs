//! A loopback HTTP server that behaves like the Hugging Face Hub, for tests, the demo and
//! benchmarks: `resolve/` downloads with the Hub's headers and redirects, range requests,
//! the JSON API, and faults (throttling, drops, error bursts, wrong bodies, stalls) that can
//! be switched while it runs.
//!
//! # Layering
//! Dev-only: never a normal dependency of a library crate. Depends on `cache-core`, tokio
//! and hyper/axum.
