//! Which tiers to use: a tier URL and its mode, parsed from `URL[:MODE]` as people type it
//! (`s3://team-models/hub:ro`, `file:///mnt/models`), checked before anything is contacted.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// What a process may do with a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Pull and push (the default).
    #[serde(rename = "rw")]
    ReadWrite,
    /// Pull only: never a PUT or DELETE.
    #[serde(rename = "ro")]
    ReadOnly,
    /// Push only (a seeding job that never reads from the tier).
    #[serde(rename = "wo")]
    WriteOnly,
}

impl Mode {
    /// `rw`, `ro` or `wo`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "rw",
            Mode::ReadOnly => "ro",
            Mode::WriteOnly => "wo",
        }
    }

    /// Whether it pulls.
    pub fn reads(self) -> bool {
        matches!(self, Mode::ReadWrite | Mode::ReadOnly)
    }

    /// Whether it pushes.
    pub fn writes(self) -> bool {
        matches!(self, Mode::ReadWrite | Mode::WriteOnly)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "rw" => Ok(Mode::ReadWrite),
            "ro" => Ok(Mode::ReadOnly),
            "wo" => Ok(Mode::WriteOnly),
            other => Err(Error::InvalidSpec {
                spec: other.to_owned(),
                reason: "the mode must be `rw` (pull and push), `ro` (pull only) or `wo` (push only)".to_owned(),
            }),
        }
    }
}

/// The kind of storage behind a tier URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `s3://bucket/prefix`.
    S3 { bucket: String, prefix: String },
    /// `file:///absolute/path`.
    Dir { path: String },
}

/// One configured tier: where it is and what this process may do with it.
#[derive(Clone, PartialEq, Eq)]
pub struct TierSpec {
    url: String,
    location: Location,
    /// Pull, push or both.
    pub mode: Mode,
}

impl TierSpec {
    /// A tier at `url` (`s3://bucket[/prefix]` or `file:///path`) with `mode`.
    pub fn new(url: &str, mode: Mode) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidSpec { spec: cache_core::redact_url(url), reason: reason.to_owned() };
        if url.split(['/', '\\']).any(|s| s == "." || s == "..") {
            return Err(bad("the path may not contain `.` or `..`"));
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() || parsed.query().is_some() {
            return Err(bad(
                "a tier URL carries no credentials or query: S3 credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`",
            ));
        }
        let location = match parsed.scheme() {
            "s3" => {
                let bucket = parsed.host_str().unwrap_or_default().to_owned();
                if bucket.is_empty() {
                    return Err(bad("an S3 tier names its bucket: `s3://bucket/prefix`"));
                }
                let prefix = parsed.path().trim_matches('/').to_owned();
                Location::S3 { bucket, prefix }
            }
            "file" => {
                if parsed.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(bad("a directory tier is `file:///absolute/path` (three slashes)"));
                }
                let path = parsed.to_file_path().map_err(|()| bad("not an absolute path"))?;
                let path = path.to_str().ok_or_else(|| bad("the path is not UTF-8"))?.to_owned();
                Location::Dir { path }
            }
            "gs" | "az" | "abfs" => {
                return Err(bad(
                    "Google Cloud Storage and Azure tiers are not built in: use `s3://` (with their S3-compatible endpoint in `AWS_ENDPOINT_URL`) or `file://`",
                ));
            }
            _ => return Err(bad("the scheme must be `s3://` or `file://`")),
        };
        let url = url.trim_end_matches('/').to_owned();
        Ok(TierSpec { url, location, mode })
    }

    /// The URL as given (it never holds credentials: [`TierSpec::new`] refuses them).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn location(&self) -> &Location {
        &self.location
    }
}

impl FromStr for TierSpec {
    type Err = Error;

    /// `URL[:MODE]`: `s3://team-models/hub:ro`, `file:///mnt/models` (mode `rw`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if let Some((url, mode)) = s.rsplit_once(':')
            && !mode.contains('/')
            && url.contains("://")
        {
            return TierSpec::new(url, mode.parse()?);
        }
        TierSpec::new(s, Mode::ReadWrite)
    }
}

impl fmt::Display for TierSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.url, self.mode)
    }
}

impl fmt::Debug for TierSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TierSpec({self})")
    }
}

/// Several specs, comma-separated, as `MODELCACHE_REMOTE` holds them.
pub fn parse_list(value: &str) -> Result<Vec<TierSpec>, Error> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls_with_and_without_a_mode() {
        let s: TierSpec = "s3://team-models/hub:ro".parse().unwrap();
        assert_eq!((s.url(), s.mode), ("s3://team-models/hub", Mode::ReadOnly));
        assert_eq!(s.location(), &Location::S3 { bucket: "team-models".into(), prefix: "hub".into() });
        let s: TierSpec = "file:///mnt/models".parse().unwrap();
        assert_eq!((s.url(), s.mode), ("file:///mnt/models", Mode::ReadWrite));
        let s: TierSpec = "s3://b:wo".parse().unwrap();
        assert_eq!(s.location(), &Location::S3 { bucket: "b".into(), prefix: String::new() });
        assert_eq!(parse_list("s3://a/x:ro, file:///d").unwrap().len(), 2);
    }

    #[test]
    fn refuses_what_it_cannot_serve_with_the_reason() {
        for (spec, says) in [
            ("s3://b/p:rx", "`rw`"),
            ("http://host/x", "scheme"),
            ("s3://key:secret@b/p", "credentials"),
            ("file://host/x", "three slashes"),
            ("s3://b/../x", "`..`"),
            ("gs://b/p", "not built in"),
        ] {
            let e = spec.parse::<TierSpec>().unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
