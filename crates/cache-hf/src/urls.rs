//! The Hub's URLs, built exactly as huggingface_hub builds them: the revision is
//! percent-encoded whole (`refs/pr/1` → `refs%2Fpr%2F1`), the file path keeps its `/`.

use cache_core::{Repo, RepoPath, Revision};

/// Percent-encodes everything but RFC 3986 unreserved characters and those in `safe`
/// (Python's `urllib.parse.quote`).
pub(crate) fn quote(s: &str, safe: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || safe.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `{endpoint}/{prefix}{repo}/resolve/{revision}/{path}`.
pub(crate) fn resolve(endpoint: &str, repo: &Repo, revision: &Revision, path: &RepoPath) -> String {
    format!(
        "{endpoint}/{}{}/resolve/{}/{}",
        repo.repo_type.url_prefix(),
        repo.id,
        quote(revision.as_str(), b""),
        quote(path.as_str(), b"/")
    )
}

/// `{endpoint}/api/{models|datasets|spaces}/{repo}[/revision/{revision}]`.
pub(crate) fn repo_info(endpoint: &str, repo: &Repo, revision: Option<&Revision>) -> String {
    let base = format!("{endpoint}/api/{}/{}", repo.repo_type.plural(), repo.id);
    match revision {
        Some(r) => format!("{base}/revision/{}", quote(r.as_str(), b"")),
        None => base,
    }
}

/// `{endpoint}/api/{type}s/{repo}/tree/{revision}[/{path}]?recursive=true&expand=false`.
pub(crate) fn tree(endpoint: &str, repo: &Repo, revision: &Revision, path: Option<&RepoPath>) -> String {
    let mut url = format!("{endpoint}/api/{}/{}/tree/{}", repo.repo_type.plural(), repo.id, quote(revision.as_str(), b""));
    if let Some(p) = path {
        url.push('/');
        url.push_str(&quote(p.as_str(), b"/"));
    }
    url.push_str("?recursive=true&expand=false");
    url
}

/// The origin (`scheme://host[:port]`) of a URL, to decide where a token may go.
pub(crate) fn origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..].find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_core::RepoType;

    fn repo(t: RepoType, id: &str) -> Repo {
        Repo::new(t, id.parse().unwrap())
    }

    #[test]
    fn resolve_urls_match_hf_hub_url() {
        let e = "https://huggingface.co";
        let r = repo(RepoType::Model, "google-bert/bert-base-uncased");
        assert_eq!(
            resolve(e, &r, &Revision::main(), &"config.json".parse().unwrap()),
            "https://huggingface.co/google-bert/bert-base-uncased/resolve/main/config.json"
        );
        // Values computed with huggingface_hub.hf_hub_url 2.4.
        assert_eq!(
            resolve(
                e,
                &repo(RepoType::Dataset, "org/data"),
                &"refs/pr/1".parse().unwrap(),
                &"sub dir/a+b#c.json".parse().unwrap()
            ),
            "https://huggingface.co/datasets/org/data/resolve/refs%2Fpr%2F1/sub%20dir/a%2Bb%23c.json"
        );
        assert_eq!(
            resolve(e, &repo(RepoType::Space, "a/b"), &"v1.0".parse().unwrap(), &"é.txt".parse().unwrap()),
            "https://huggingface.co/spaces/a/b/resolve/v1.0/%C3%A9.txt"
        );
    }

    #[test]
    fn api_urls() {
        let e = "http://127.0.0.1:9";
        let r = repo(RepoType::Model, "a/b");
        assert_eq!(repo_info(e, &r, None), "http://127.0.0.1:9/api/models/a/b");
        assert_eq!(
            repo_info(e, &r, Some(&"refs/pr/2".parse().unwrap())),
            "http://127.0.0.1:9/api/models/a/b/revision/refs%2Fpr%2F2"
        );
        assert_eq!(
            tree(e, &repo(RepoType::Dataset, "x"), &Revision::main(), Some(&"data/train".parse().unwrap())),
            "http://127.0.0.1:9/api/datasets/x/tree/main/data/train?recursive=true&expand=false"
        );
    }

    #[test]
    fn origins() {
        assert_eq!(origin("https://huggingface.co/a/b?x=1"), Some("https://huggingface.co"));
        assert_eq!(origin("http://127.0.0.1:8080"), Some("http://127.0.0.1:8080"));
        assert_eq!(origin("not a url"), None);
    }
}
