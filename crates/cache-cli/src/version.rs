//! What `modelcache --version` prints: the version, the commit the binary was built from
//! (recorded by `build.rs`, `unknown` outside a git checkout) and the facade's features.

use std::sync::OnceLock;

/// `0.1.0 (commit 1a2b3c4, features: downloads)`; clap puts the name in front.
pub(crate) fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let features = if modelcache::FEATURES.is_empty() { "none".to_owned() } else { modelcache::FEATURES.join(", ") };
        format!("{} (commit {}, features: {features})", env!("CARGO_PKG_VERSION"), env!("MODELCACHE_COMMIT"))
    })
}
