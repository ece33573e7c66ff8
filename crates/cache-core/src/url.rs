//! URLs as they may be shown: signed URLs carry credentials in their query, and a URL may
//! carry `user:password@`; neither is ever printed, logged or put in `--json` output.

/// The URL without `user:password@`, query or fragment: what messages, logs and listings
/// show of a URL.
///
/// ```
/// use cache_core::redact_url;
/// assert_eq!(redact_url("https://u:secret@h.test/a/b.bin?sig=x#f"), "https://h.test/a/b.bin");
/// assert_eq!(redact_url("http://h.test/x"), "http://h.test/x");
/// ```
pub fn redact_url(url: &str) -> String {
    let bare = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = bare.split_once("://") else { return bare.to_owned() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://{host}{path}"),
        None => bare.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_queries_and_fragments_never_remain() {
        let cases = [
            ("https://h.test/a?X-Amz-Signature=s", "https://h.test/a"),
            ("https://user:pw@h.test:8080/a/b", "https://h.test:8080/a/b"),
            ("https://user@h.test", "https://h.test"),
            ("https://h.test/a@b/c", "https://h.test/a@b/c"),
            ("https://a:b@c@h.test/x?y", "https://h.test/x"),
            ("not a url?q", "not a url"),
            ("", ""),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
