//! Tokenizers: the file a tokenizer library needs from a model repository, preferring
//! `tokenizer.json`, then `tokenizer.model` (`SentencePiece`), then `vocab.txt` (`WordPiece`).

use std::path::PathBuf;

use cache_core::{RepoPath, RepoType};
use cache_hf::offline::{self, FileLookup};

use crate::error::{CacheError, ErrorKind, Missing};
use crate::manager::CacheManager;
use crate::types::{AcquireRequest, ModelRef};

/// The tokenizer files looked for, in order of preference.
pub const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer.model", "vocab.txt"];

impl CacheManager {
    /// The cached tokenizer file of a model (`org/name[@rev]`), by [`TOKENIZER_FILES`]
    /// preference; `None` when none is cached. Never touches the network.
    pub fn find_cached_tokenizer(&self, key: &str) -> Result<Option<PathBuf>, CacheError> {
        let r = ModelRef::parse(key, RepoType::Model)?;
        let store = &self.inner.store;
        // The ref is read once, not once per candidate name.
        let Some(commit) = store.resolve(&r.repo, &r.revision_or_main())? else { return Ok(None) };
        let at = cache_core::Revision::from(commit);
        for name in TOKENIZER_FILES {
            let path: RepoPath = name.parse()?;
            match offline::lookup_file(store, &r.repo, &at, &path, None)
                .map_err(|e| crate::error::from_hub(e, key, self.cache_dir()))?
            {
                FileLookup::Hit { path, .. } => return Ok(Some(path.into_std_path_buf())),
                FileLookup::NotInRepo(_) | FileLookup::Miss { .. } => {}
            }
        }
        Ok(None)
    }

    /// The tokenizer file of a model, through [`get_file`](Self::get_file)'s strategy:
    /// the first of [`TOKENIZER_FILES`] the repository has.
    pub async fn get_tokenizer(&self, key: &str) -> Result<PathBuf, CacheError> {
        let r = ModelRef::parse(key, RepoType::Model)?;
        let mut last = None;
        for name in TOKENIZER_FILES {
            let request = AcquireRequest::File { repo: r.repo.clone(), revision: r.revision_or_main(), path: name.parse()? };
            match self.fetch(&request).await {
                Ok(a) => return Ok(a.path),
                Err(e @ CacheError::ModelNotFound { missing: Missing::File, .. }) => last = Some(e),
                Err(e) if e.kind() == ErrorKind::NotCachedOffline => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| CacheError::NotInCache { what: key.to_owned() }))
    }
}
