//! A loopback HTTP server that behaves like the Hugging Face Hub, for tests, the demo and
//! benchmarks: `resolve/` downloads with the Hub's headers and redirects, range requests,
//! the JSON API, and faults (throttling, drops, error bursts, wrong bodies, stalls) that can
//! be switched while it runs. Also the test support every crate shares, such as finding
//! the Python interpreter with the real `huggingface_hub` ([`python`]).
//!
//! # Layering
//! Dev-only: never a normal dependency of a library crate. Depends on `cache-core`, tokio
//! and hyper/axum.

pub mod python;
