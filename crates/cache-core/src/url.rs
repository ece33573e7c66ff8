//! URLs as they may be shown: in messages, logs, `--json` output and configuration.

/// `url` as it may be shown to a user or written to a log: the query and fragment removed
/// (signed CDN URLs carry credentials there) and any user info (`user:password@`) replaced
/// by `***@`, so that a password in an artifact URL or in `HF_ENDPOINT` is never printed.
/// Text that is not a URL is returned without its query and fragment.
///
/// ```
/// use cache_core::redact_url;
/// assert_eq!(redact_url("https://user:secret@host:8080/a/b?sig=x#f"), "https://***@host:8080/a/b");
/// assert_eq!(redact_url("https://huggingface.co/org/name"), "https://huggingface.co/org/name");
/// ```
pub fn redact_url(url: &str) -> String {
    let strip = |s: &str| s.split(['?', '#']).next().unwrap_or_default().to_owned();
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else { return strip(url) };
    let rest = &url[scheme_end..];
    // The authority ends at the first `/`; its last `@` ends the user info. A `?`, `#` or
    // `@` typed unencoded in a password is still inside it, so no part of it is shown.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], strip(&rest[at..])),
        None => strip(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_query_and_fragment_never_survive() {
        let cases = [
            ("http://u:secret@127.0.0.1:9/x", "http://***@127.0.0.1:9/x"),
            ("http://secret@h", "http://***@h"),
            ("http://u:p@ss:secret@h/a@b", "http://***@h/a@b"),
            ("https://h/a?token=secret", "https://h/a"),
            ("https://h/a#secret", "https://h/a"),
            ("https://u:secret@h?x", "https://***@h"),
            ("http://h/path@with-at", "http://h/path@with-at"),
            ("not a url?secret", "not a url"),
            ("http://u:sec#ret@h/x", "http://***@h/x"),
            ("http://u:sec?ret@h", "http://***@h"),
            ("", ""),
        ];
        for (input, shown) in cases {
            assert_eq!(redact_url(input), shown, "{input}");
            assert!(!redact_url(input).contains("secret"), "{input}");
        }
    }
}
