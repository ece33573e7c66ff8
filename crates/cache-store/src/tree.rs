//! `trees/<commit>.json`: a commit's file listing, in `huggingface_hub` 2.x's exact format
//! (`_tree_cache.py`: `json.dump(data, f, indent=1)` with sorted paths, ASCII-escaped).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cache_core::RepoPath;

/// The format version `huggingface_hub` writes and accepts.
pub const TREE_FORMAT_VERSION: u64 = 1;

/// One file of a cached tree listing, mirroring the Hub's `/tree` endpoint fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// Size in bytes.
    pub size: u64,
    /// The git blob id.
    pub blob_id: String,
    /// For LFS files: their SHA-256 (hex).
    pub lfs_sha256: Option<String>,
    /// For LFS files: their size (written, possibly as `null`, whenever `lfs_sha256` is).
    pub lfs_size: Option<u64>,
    /// For Xet-backed files: their Xet hash.
    pub xet_hash: Option<String>,
}

/// A commit's file listing: which files exist in it and their metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// Files by path (sorted, as written).
    pub files: BTreeMap<RepoPath, TreeEntry>,
}

impl Tree {
    /// The bytes `huggingface_hub` would write for this listing.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + self.files.len() * 96);
        out.push_str("{\n \"format_version\": 1,\n \"files\": ");
        if self.files.is_empty() {
            out.push_str("{}");
        } else {
            out.push_str("{\n");
            for (i, (path, e)) in self.files.iter().enumerate() {
                if i > 0 {
                    out.push_str(",\n");
                }
                out.push_str("  ");
                push_str(&mut out, path.as_str());
                let _ = write!(out, ": {{\n   \"size\": {},\n   \"blob_id\": ", e.size);
                push_str(&mut out, &e.blob_id);
                if let Some(sha) = &e.lfs_sha256 {
                    out.push_str(",\n   \"lfs_sha256\": ");
                    push_str(&mut out, sha);
                    out.push_str(",\n   \"lfs_size\": ");
                    match e.lfs_size {
                        Some(n) => {
                            let _ = write!(out, "{n}");
                        }
                        None => out.push_str("null"),
                    }
                }
                if let Some(x) = &e.xet_hash {
                    out.push_str(",\n   \"xet_hash\": ");
                    push_str(&mut out, x);
                }
                out.push_str("\n  }");
            }
            out.push_str("\n }");
        }
        out.push_str("\n}");
        out
    }

    /// Parses a listing; `None` for another format version or a malformed file (which
    /// `huggingface_hub` also ignores). Entries whose path is not a valid [`RepoPath`]
    /// are dropped.
    pub fn from_json(text: &str) -> Option<Tree> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        if v.get("format_version")?.as_u64()? != TREE_FORMAT_VERSION {
            return None;
        }
        let mut files = BTreeMap::new();
        for (path, info) in v.get("files")?.as_object()? {
            let entry = TreeEntry {
                size: info.get("size")?.as_u64()?,
                blob_id: info.get("blob_id")?.as_str()?.to_owned(),
                lfs_sha256: info.get("lfs_sha256").and_then(|s| s.as_str()).map(str::to_owned),
                lfs_size: info.get("lfs_size").and_then(serde_json::Value::as_u64),
                xet_hash: info.get("xet_hash").and_then(|s| s.as_str()).map(str::to_owned),
            };
            match RepoPath::new(path) {
                Ok(p) => {
                    files.insert(p, entry);
                }
                Err(e) => tracing::warn!("ignoring a tree entry with an invalid path: {e}"),
            }
        }
        Some(Tree { files })
    }
}

/// Appends a JSON string the way Python's `json` does with `ensure_ascii=True`.
fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64) -> TreeEntry {
        TreeEntry { size, blob_id: "b".repeat(40), lfs_sha256: None, lfs_size: None, xet_hash: None }
    }

    #[test]
    fn writes_pythons_indent_1_layout() {
        assert_eq!(Tree::default().to_json(), "{\n \"format_version\": 1,\n \"files\": {}\n}");
        let mut t = Tree::default();
        t.files.insert("z.json".parse().unwrap(), entry(3));
        let mut lfs = entry(9);
        lfs.lfs_sha256 = Some("c".repeat(64));
        lfs.lfs_size = Some(9);
        lfs.xet_hash = Some("d".repeat(64));
        t.files.insert("a/é.bin".parse().unwrap(), lfs);
        let json = t.to_json();
        let expected = format!(
            "{{\n \"format_version\": 1,\n \"files\": {{\n  \"a/\\u00e9.bin\": {{\n   \"size\": 9,\n   \"blob_id\": \"{b}\",\n   \"lfs_sha256\": \"{c}\",\n   \"lfs_size\": 9,\n   \"xet_hash\": \"{d}\"\n  }},\n  \"z.json\": {{\n   \"size\": 3,\n   \"blob_id\": \"{b}\"\n  }}\n }}\n}}",
            b = "b".repeat(40),
            c = "c".repeat(64),
            d = "d".repeat(64)
        );
        assert_eq!(json, expected);
        assert_eq!(Tree::from_json(&json).unwrap(), t);
    }

    #[test]
    fn escapes_like_python_and_rejects_other_versions() {
        let mut s = String::new();
        push_str(&mut s, "q\"\\\u{1}😀~");
        assert_eq!(s, "\"q\\\"\\\\\\u0001\\ud83d\\ude00~\"");
        assert!(Tree::from_json("{\"format_version\": 2, \"files\": {}}").is_none());
        assert!(Tree::from_json("not json").is_none());
        assert!(Tree::from_json("{\"format_version\": 1, \"files\": {\"x\": {\"size\": 1}}}").is_none());
    }
}
