//! End-to-end tests of modelcache: the real `modelcache` binary run against
//! `cache-testkit` on 127.0.0.1, one temporary cache per test. The tests live in
//! `tests/it/` (one test binary, a module per area); this library holds nothing.
