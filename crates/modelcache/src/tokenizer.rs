//! Tokenizers: the files a tokenizer library needs from a model repository.
//!
//! # Families
//! A repository's tokenizer is one of these, in order of preference:
//! 1. `tokenizer.json` (a fast tokenizer, whole in one file);
//! 2. `vocab.json` with `merges.txt` (byte-level BPE, GPT-2 style);
//! 3. `tokenizer.model` (`SentencePiece`);
//! 4. `vocab.txt` (`WordPiece`).
//!
//! plus [`TOKENIZER_EXTRAS`] (`tokenizer_config.json`, `special_tokens_map.json`,
//! `added_tokens.json`) when the repository has them. [`CacheManager::get_tokenizer_files`]
//! fetches `tokenizer.json` and the extras first (one filtered snapshot), and only when
//! there is no `tokenizer.json` the other families, one filtered snapshot each in order
//! until one is complete: only the chosen family is downloaded (a repository with a fast
//! tokenizer never downloads its slow files).
//!
//! # Vocabulary check
//! With `expected_vocab` (typically the model config's `vocab_size`), the entries of the
//! vocabulary are counted — `model.vocab` in `tokenizer.json` (a map or, for Unigram, a
//! list), the keys of `vocab.json`, the lines of `vocab.txt`, the pieces of
//! `tokenizer.model` — and a different count is [`CacheError::VocabMismatch`].

use std::path::{Path, PathBuf};

use cache_core::{RepoPath, RepoType, Revision};
use cache_hf::offline::{self, FileLookup};
use serde::Serialize;

use crate::error::{CacheError, ErrorKind, Missing};
use crate::manager::CacheManager;
use crate::types::{AcquireRequest, ModelRef, RemoveReport};

/// The main tokenizer files looked for by [`CacheManager::get_tokenizer`], in order of
/// preference.
pub const TOKENIZER_FILES: [&str; 3] = ["tokenizer.json", "tokenizer.model", "vocab.txt"];

/// Files that configure a tokenizer, fetched with it when the repository has them.
pub const TOKENIZER_EXTRAS: [&str; 3] = ["tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"];

/// The slow families, tried when there is no `tokenizer.json`: each a set of files that
/// must all be there.
const FAMILIES: [&[&str]; 3] = [&["vocab.json", "merges.txt"], &["tokenizer.model"], &["vocab.txt"]];

/// A tokenizer's files in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenizerFiles {
    /// The snapshot directory holding them.
    pub dir: PathBuf,
    /// The commit.
    pub commit: Option<String>,
    /// The file(s) of its family (`tokenizer.json`, `vocab.json` + `merges.txt`, …).
    pub main: Vec<PathBuf>,
    /// The extras it has ([`TOKENIZER_EXTRAS`]).
    pub extras: Vec<PathBuf>,
    /// Entries of its vocabulary, when counted (an `expected_vocab` was given).
    pub vocab_size: Option<usize>,
}

impl CacheManager {
    /// The cached tokenizer file of a model (`org/name[@rev]`), by [`TOKENIZER_FILES`]
    /// preference; `None` when none is cached. Never touches the network.
    pub fn find_cached_tokenizer(&self, key: &str) -> Result<Option<PathBuf>, CacheError> {
        let r = ModelRef::parse(key, RepoType::Model)?;
        let store = &self.inner.store;
        // The ref is read once, not once per candidate name.
        let Some(commit) = store.resolve(&r.repo, &r.revision_or_main())? else { return Ok(None) };
        let at = Revision::from(commit);
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

    /// Every file a tokenizer of `key` (`org/name[@rev]`) needs (see the module docs),
    /// through the strategy; with `expected_vocab`, checks the vocabulary's size.
    pub async fn get_tokenizer_files(&self, key: &str, expected_vocab: Option<usize>) -> Result<TokenizerFiles, CacheError> {
        let r = ModelRef::parse(key, RepoType::Model)?;
        let mut wanted: Vec<String> = std::iter::once("tokenizer.json").chain(TOKENIZER_EXTRAS).map(str::to_owned).collect();
        let first = self.get_snapshot(&r, &wanted, &[]).await?;
        let has = |dir: &Path, name: &str| dir.join(name).is_file();
        let (dir, commit) = (first.path, first.commit);
        let main: Vec<PathBuf> = if has(&dir, "tokenizer.json") {
            vec![dir.join("tokenizer.json")]
        } else {
            let mut found = None;
            for family in FAMILIES {
                wanted = family.iter().map(|n| (*n).to_owned()).collect();
                let got = self.get_snapshot(&r, &wanted, &[]).await?;
                if family.iter().all(|n| has(&got.path, n)) {
                    found = Some(family.iter().map(|n| got.path.join(n)).collect());
                    break;
                }
            }
            found.ok_or_else(|| CacheError::ModelNotFound {
                model_id: key.to_owned(),
                missing: Missing::File,
                reason:
                    "it has no tokenizer: none of `tokenizer.json`, `vocab.json` + `merges.txt`, `tokenizer.model`, `vocab.txt`"
                        .to_owned(),
                suggestion:
                    "check that this is the repository of the model's tokenizer (some models keep it in another repository)"
                        .to_owned(),
            })?
        };
        let extras = TOKENIZER_EXTRAS.iter().map(|n| dir.join(n)).filter(|p| p.is_file()).collect();
        let vocab_size = match expected_vocab {
            None => None,
            Some(expected) => {
                let actual = count_vocab(&main[0])?;
                if actual != expected {
                    return Err(CacheError::VocabMismatch {
                        model_id: key.to_owned(),
                        file: file_name(&main[0]),
                        expected,
                        actual,
                    });
                }
                Some(actual)
            }
        };
        Ok(TokenizerFiles { dir, commit, main, extras, vocab_size })
    }

    /// Removes cached tokenizer files: with `Some(key)` only those of that model (at its
    /// revision, `main` when none is given), leaving its other files; with `None`
    /// everything, as [`clear_cache`](Self::clear_cache) does.
    pub async fn clear_tokenizer_cache(&self, key: Option<&str>) -> Result<RemoveReport, CacheError> {
        let Some(key) = key else { return self.clear_cache().await };
        let r = ModelRef::parse(key, RepoType::Model)?;
        let store = &self.inner.store;
        let not_cached = || CacheError::NotInCache { what: format!("a tokenizer of `{key}`") };
        let commit = store.resolve(&r.repo, &r.revision_or_main())?.ok_or_else(not_cached)?;
        let at = Revision::from(commit);
        let names = ["tokenizer.json"].into_iter().chain(FAMILIES.iter().flat_map(|f| f.iter().copied())).chain(TOKENIZER_EXTRAS);
        let mut files = Vec::new();
        for name in names {
            let path: RepoPath = name.parse()?;
            if store.is_cached(&r.repo, &at, &path)? && !files.contains(&path) {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(not_cached());
        }
        self.remove(&ModelRef { repo: r.repo, revision: Some(at) }, &files, false).await
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Entries of the vocabulary in a tokenizer's main file.
fn count_vocab(path: &Path) -> Result<usize, CacheError> {
    let io = |source| CacheError::Io { op: "read the tokenizer", path: path.to_owned(), source };
    let unreadable = |why: &str| CacheError::InvalidInput {
        what: "tokenizer",
        value: String::new(),
        reason: format!("cannot count the vocabulary of `{}`: {why}", path.display()),
    };
    let name = file_name(path);
    if name == "tokenizer.model" {
        let bytes = std::fs::read(path).map_err(io)?;
        return sentencepiece_pieces(&bytes).ok_or_else(|| unreadable("not a `SentencePiece` model"));
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    if name == "vocab.txt" {
        return Ok(text.lines().count());
    }
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| unreadable(&e.to_string()))?;
    let vocab = if name == "tokenizer.json" { &json["model"]["vocab"] } else { &json };
    match vocab {
        serde_json::Value::Object(map) => Ok(map.len()),
        serde_json::Value::Array(list) => Ok(list.len()),
        _ => Err(unreadable("it has no `model.vocab`")),
    }
}

/// The pieces of a `SentencePiece` model: the top-level field 1 entries of its protobuf
/// (`ModelProto.pieces`). `None` when the bytes are not a well-formed protobuf.
fn sentencepiece_pieces(bytes: &[u8]) -> Option<usize> {
    fn varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let (mut at, mut pieces) = (0usize, 0usize);
    while at < bytes.len() {
        let key = varint(bytes, &mut at)?;
        let skip = match key & 7 {
            0 => varint(bytes, &mut at).map(|_| 0)?,
            1 => 8,
            2 => {
                pieces += usize::from(key >> 3 == 1);
                usize::try_from(varint(bytes, &mut at)?).ok()?
            }
            5 => 4,
            _ => return None,
        };
        at = at.checked_add(skip).filter(|end| *end <= bytes.len())?;
    }
    Some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentencepiece_pieces_are_counted_and_garbage_is_refused() {
        // Two pieces (field 1), a trainer spec (field 2) and a varint field.
        let piece = |s: &str| [&[0x0a, u8::try_from(s.len()).unwrap()], s.as_bytes()].concat();
        let bytes = [piece("a"), piece("bc"), vec![0x12, 0x01, 0x00], vec![0x18, 0x96, 0x01]].concat();
        assert_eq!(sentencepiece_pieces(&bytes), Some(2));
        assert_eq!(sentencepiece_pieces(&[]), Some(0));
        assert_eq!(sentencepiece_pieces(&[0x0a, 0x05, b'a']), None, "truncated");
        assert_eq!(sentencepiece_pieces(&[0x0f]), None, "unknown wire type");
    }

    #[test]
    fn vocabularies_are_counted_per_format() {
        let tmp = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = tmp.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        assert_eq!(count_vocab(&write("tokenizer.json", r#"{"model": {"vocab": {"a": 0, "b": 1, "c": 2}}}"#)).unwrap(), 3);
        let unigram = write("tokenizer.json", r#"{"model": {"type": "Unigram", "vocab": [["a", -1.0], ["b", -2.0]]}}"#);
        assert_eq!(count_vocab(&unigram).unwrap(), 2);
        assert_eq!(count_vocab(&write("vocab.json", r#"{"x": 0, "y": 1}"#)).unwrap(), 2);
        assert_eq!(count_vocab(&write("vocab.txt", "[PAD]\n[UNK]\nthe\n")).unwrap(), 3);
        let err = count_vocab(&write("tokenizer.json", r#"{"model": {}}"#)).unwrap_err();
        assert!(err.to_string().contains("model.vocab"), "{err}");
    }
}
