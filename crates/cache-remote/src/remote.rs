//! The configured tiers, in order: a blob or listing is looked for in each readable tier
//! until one serves it verified; writes go to each writable tier.

use std::sync::Arc;

use cache_core::{CommitHash, Digests, Repo, Revision, Timestamp};
use cache_fetch::{Progress, Sink};

use crate::counters::TierStats;
use crate::error::Error;
use crate::layout::BlobKey;
use crate::pull::Pulled;
use crate::spec::TierSpec;
use crate::tier::{Tier, TierOptions};

/// The tiers of one process. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    tiers: Vec<Arc<Tier>>,
}

impl Remote {
    /// Opens every tier; a tier that cannot be set up is left out and its error returned
    /// (remote faults never stop a command the Hub can serve).
    pub fn open(specs: &[TierSpec], options: TierOptions) -> (Remote, Vec<Error>) {
        let options = Arc::new(options);
        let mut tiers = Vec::new();
        let mut errors = Vec::new();
        for spec in specs {
            match Tier::open(spec.clone(), Arc::clone(&options)) {
                Ok(t) => tiers.push(Arc::new(t)),
                Err(e) => {
                    tracing::warn!(error = %e, "remote tier left out");
                    errors.push(e);
                }
            }
        }
        (Remote { tiers }, errors)
    }

    /// The tiers, in order.
    pub fn tiers(&self) -> &[Arc<Tier>] {
        &self.tiers
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tiers.is_empty()
    }

    /// Whether any tier is pulled from.
    pub fn reads(&self) -> bool {
        self.tiers.iter().any(|t| t.mode().reads())
    }

    /// Tiers pushed to (now: a demoted tier is no longer one).
    pub fn writers(&self) -> impl Iterator<Item = &Arc<Tier>> {
        self.tiers.iter().filter(|t| t.mode().writes())
    }

    /// Pulls a blob from the first tier that serves it verified; returns its digests and
    /// the tier's URL. Misses, failures and corrupt objects fall through to the next tier.
    pub async fn pull(
        &self,
        key: &BlobKey,
        size: u64,
        sink: &Arc<dyn Sink>,
        label: &str,
        progress: &dyn Progress,
    ) -> Option<(Digests, String)> {
        for tier in &self.tiers {
            match tier.pull(key, size, sink, label, progress).await {
                Pulled::Hit(d) => return Some((d, tier.url().to_owned())),
                Pulled::Failed(e) => tracing::info!(error = %e, "remote tier could not serve `{label}`"),
                Pulled::Miss | Pulled::Corrupt | Pulled::NotRead => {}
            }
        }
        None
    }

    /// Like [`Remote::pull`] for a blob of unknown size (a URL artifact by its SHA-256).
    pub async fn pull_unsized(
        &self,
        key: &BlobKey,
        sink: &Arc<dyn Sink>,
        label: &str,
        progress: &dyn Progress,
    ) -> Option<(Digests, String)> {
        for tier in &self.tiers {
            match tier.pull_unsized(key, sink, label, progress).await {
                Pulled::Hit(d) => return Some((d, tier.url().to_owned())),
                Pulled::Failed(e) => tracing::info!(error = %e, "remote tier could not serve `{label}`"),
                Pulled::Miss | Pulled::Corrupt | Pulled::NotRead => {}
            }
        }
        None
    }

    /// A commit's listing from the first tier that has it.
    pub async fn tree(&self, repo: &Repo, commit: &CommitHash) -> Option<(Vec<u8>, String)> {
        for tier in &self.tiers {
            match tier.tree(repo, commit).await {
                Ok(Some(t)) => return Some((t, tier.url().to_owned())),
                Ok(None) => {}
                Err(e) => tracing::info!(error = %e, "remote tier could not serve a listing"),
            }
        }
        None
    }

    /// A branch or tag from the first tier that has it: commit, when it was pushed, tier.
    pub async fn resolve_ref(&self, repo: &Repo, revision: &Revision) -> Option<(CommitHash, Timestamp, String)> {
        for tier in &self.tiers {
            match tier.resolve_ref(repo, revision).await {
                Ok(Some((c, t))) => return Some((c, t, tier.url().to_owned())),
                Ok(None) => {}
                Err(e) => tracing::info!(error = %e, "remote tier could not serve a ref"),
            }
        }
        None
    }

    /// This process's figures per tier, and resets them.
    pub fn take_stats(&self) -> Vec<TierStats> {
        self.tiers.iter().map(|t| t.take_stats()).collect()
    }

    /// This process's figures per tier so far.
    pub fn stats(&self) -> Vec<TierStats> {
        self.tiers.iter().map(|t| t.stats()).collect()
    }
}
