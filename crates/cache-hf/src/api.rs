//! The Hub's JSON API responses that the resolver reads.

use serde::Deserialize;

/// `GET /api/{type}s/{repo}/revision/{rev}` (only the fields used).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct RepoInfo {
    /// The commit the revision resolves to.
    pub(crate) sha: String,
}

/// One item of `GET /api/{type}s/{repo}/tree/{rev}?recursive=true`.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TreeItem {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// The git object id (blob sha1 for files).
    pub(crate) oid: String,
    /// Size in bytes (of the real file, for LFS files).
    #[serde(default)]
    pub(crate) size: u64,
    /// Path inside the repository.
    pub(crate) path: String,
    /// Present for LFS files.
    #[serde(default)]
    pub(crate) lfs: Option<LfsInfo>,
    /// Present for Xet-backed files: the Xet hash of the content.
    #[serde(default, rename = "xetHash")]
    pub(crate) xet_hash: Option<String>,
}

/// The LFS part of a tree item.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LfsInfo {
    /// The sha256 of the content.
    pub(crate) oid: String,
    /// The real size.
    pub(crate) size: u64,
}

/// The `rel="next"` target of a `Link` header, as the Hub paginates listings.
pub(crate) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tree_items_as_the_hub_sends_them() {
        let json = r#"[
          {"type":"directory","oid":"1111111111111111111111111111111111111111","size":0,"path":"onnx"},
          {"type":"file","oid":"2222222222222222222222222222222222222222","size":512,"path":"config.json"},
          {"type":"file","oid":"3333333333333333333333333333333333333333","size":134,"path":"model.bin",
           "lfs":{"oid":"4444444444444444444444444444444444444444444444444444444444444444","size":1000000,"pointerSize":134}}
        ]"#;
        let items: Vec<TreeItem> = serde_json::from_str(json).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2].lfs.as_ref().unwrap().size, 1_000_000);
        assert!(items[1].lfs.is_none());
    }

    #[test]
    fn follows_next_links() {
        assert_eq!(
            next_link(r#"<https://hub/api/models/a/tree/main?cursor=abc>; rel="next""#).as_deref(),
            Some("https://hub/api/models/a/tree/main?cursor=abc")
        );
        assert_eq!(next_link(r#"<https://x/1>; rel="prev", <https://x/3>; rel="next""#).as_deref(), Some("https://x/3"));
        assert_eq!(next_link(r#"<https://x/1>; rel="prev""#), None);
    }
}
