//! The names a bundle uses: which tar paths belong to the hub cache layout of a lock
//! (and what each is), and the relative link a snapshot file has to its blob.

use std::collections::BTreeMap;

use cache_core::{Etag, RepoPath};

/// `../../blobs/<etag>` for a file at `path` of a snapshot (one `../` more per folder).
pub(crate) fn link_target(path: &RepoPath, etag: &Etag) -> String {
    format!("{}blobs/{etag}", "../".repeat(path.components().count() + 1))
}

/// Where an entry goes in the layout.
pub(crate) enum Place<'a> {
    Blob(usize, Etag),
    Ref(usize, &'a str),
    Link(usize, &'a str),
    Tree(usize, &'a str),
    Url(usize),
    Dir,
}

/// Checks a tar path's shape: relative, no `..`, `.` or empty components, UTF-8.
pub(crate) fn safe_path(raw: &[u8]) -> Result<&str, String> {
    let s = std::str::from_utf8(raw).map_err(|_| "the path is not UTF-8".to_owned())?;
    let s = s.strip_suffix('/').unwrap_or(s);
    if s.starts_with('/') {
        return Err("the path is absolute".to_owned());
    }
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err("the path has a control character or a backslash".to_owned());
    }
    if s.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err("the path has a `..`, `.` or empty component".to_owned());
    }
    Ok(s)
}

/// Where `rel` goes in the layout, if it is a path of it.
pub(crate) fn place<'a>(rel: &'a str, folders: &BTreeMap<String, usize>, urls: &BTreeMap<String, usize>) -> Option<Place<'a>> {
    if rel == "hub" || rel == "urls" {
        return Some(Place::Dir);
    }
    if let Some(name) = rel.strip_prefix("urls/") {
        return urls.get(name).map(|i| Place::Url(*i));
    }
    let rest = rel.strip_prefix("hub/")?;
    let (folder, rest) = match rest.split_once('/') {
        Some((f, r)) => (f, Some(r)),
        None => (rest, None),
    };
    let i = *folders.get(folder)?;
    let Some(rest) = rest else { return Some(Place::Dir) };
    let (kind, tail) = match rest.split_once('/') {
        Some((k, t)) => (k, Some(t)),
        None => (rest, None),
    };
    match (kind, tail) {
        ("blobs" | "snapshots" | "refs" | "trees", None) => Some(Place::Dir),
        ("blobs", Some(t)) => Etag::new(t).ok().filter(|e| e.to_string() == t).map(|e| Place::Blob(i, e)),
        ("refs", Some(t)) => Some(Place::Ref(i, t)),
        ("snapshots", Some(t)) => Some(if t.contains('/') { Place::Link(i, t) } else { Place::Dir }),
        ("trees", Some(t)) => {
            t.strip_suffix(".json").filter(|c| cache_core::CommitHash::new(c).is_ok()).map(|c| Place::Tree(i, c))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_climb_one_folder_more_per_folder_of_the_path() {
        let etag = Etag::new(&"a".repeat(40)).unwrap();
        assert_eq!(link_target(&"config.json".parse().unwrap(), &etag), format!("../../blobs/{etag}"));
        assert_eq!(link_target(&"a/b/c.bin".parse().unwrap(), &etag), format!("../../../../blobs/{etag}"));
    }

    #[test]
    fn only_relative_plain_utf8_paths_pass() {
        for bad in [&b"../x"[..], b"/etc/passwd", b"hub/./x", b"hub//x", b"hub/a/../b", b"\xff", b"hub\\x", b"a\nb"] {
            assert!(safe_path(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(safe_path(b"hub/models--a--b/").unwrap(), "hub/models--a--b");
    }
}
