//! Behaviour of tiers against a real S3 server (moto, behind a counting proxy) and a
//! directory, through the public API.
#![expect(clippy::unwrap_used, reason = "test helpers fail loudly")]

mod faults;
mod roundtrip;

use std::sync::Arc;
use std::time::Duration;

use cache_core::{Etag, Sha256};
use cache_remote::{BlobKey, Mode, Tier, TierOptions, TierSpec};
use cache_testkit::s3::{BUCKET, MotoServer, S3Proxy};

/// Deterministic bytes.
pub(crate) fn sample(len: usize, seed: u32) -> Vec<u8> {
    (0..u32::try_from(len).unwrap()).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

pub(crate) fn lfs_key(data: &[u8]) -> BlobKey {
    BlobKey::Hub(Etag::Sha256(Sha256::of(data)))
}

/// Options that fail fast in tests.
pub(crate) fn options(env: Vec<(String, String)>) -> TierOptions {
    TierOptions {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        chunk: 256 << 10,
        multipart_above: 6 << 20,
        env,
        ..TierOptions::default()
    }
}

/// moto with a proxy in front, and a tier on it.
pub(crate) struct S3 {
    pub(crate) proxy: S3Proxy,
    pub(crate) moto: MotoServer,
}

impl S3 {
    pub(crate) fn start() -> S3 {
        let moto = MotoServer::start();
        let proxy = S3Proxy::start(moto.port());
        S3 { proxy, moto }
    }

    pub(crate) fn tier(&self, mode: Mode) -> Arc<Tier> {
        self.tier_at("hub", mode)
    }

    pub(crate) fn tier_at(&self, prefix: &str, mode: Mode) -> Arc<Tier> {
        let spec = TierSpec::new(&format!("s3://{BUCKET}/{prefix}"), mode).unwrap();
        Arc::new(Tier::open(spec, Arc::new(options(MotoServer::env_for(&self.proxy.endpoint())))).unwrap())
    }
}

pub(crate) fn dir_tier(dir: &std::path::Path, mode: Mode) -> Arc<Tier> {
    let spec = TierSpec::new(&format!("file://{}", dir.display()), mode).unwrap();
    Arc::new(Tier::open(spec, Arc::new(options(Vec::new()))).unwrap())
}

/// A file holding `data`, for pushing.
pub(crate) fn file_with(dir: &std::path::Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// An empty staging file as a sink.
pub(crate) fn sink(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, Arc<dyn cache_fetch::Sink>) {
    let p = dir.join(name);
    let f = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&p).unwrap();
    (p, Arc::new(f))
}
