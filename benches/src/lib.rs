//! Criterion benchmarks across the modelcache layers (`cargo bench -p modelcache-benches`).
//! The benchmarks live in `benches/`; this library holds nothing.
