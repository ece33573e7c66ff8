//! Integration tests of cache-store: one binary, one module per behaviour.
//!
//! Tests that need another process re-execute this binary (`std::env::current_exe()`)
//! with [`support::CHILD_ENV`] set, running the same test function, which then acts as
//! the child instead of the parent.

#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions unwrap too")]
#![expect(clippy::many_single_char_names, reason = "short names for the store, repo and cache under test")]

mod basics;
mod batch;
mod diskfull;
mod escape;
mod faults;
mod journal;
mod maintenance;
mod model;
mod moved;
mod permissions;
mod processes;
mod python;
mod records;
mod shared_fs;
mod support;
