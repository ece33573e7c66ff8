//! Which tiers to use: a tier URL and its mode, parsed from `URL[:MODE]` as people type it
//! (`s3://team-models/hub:ro`, `gs://team-models/hub`, `az://models/hub:ro`,
//! `file:///mnt/models`), checked before anything is contacted.

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
    /// `gs://bucket/prefix` (Google Cloud Storage).
    Gcs { bucket: String, prefix: String },
    /// `az://container/prefix`, `azure://…`, `adl://…`, `abfs[s]://container/prefix` or
    /// `abfs[s]://container@account.dfs.core.windows.net/prefix` (Azure Blob Storage; the
    /// account, when the URL names none, comes from `AZURE_STORAGE_ACCOUNT_NAME`).
    Azure { container: String, account: Option<String>, prefix: String },
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
    /// A tier at `url` (`s3://bucket[/prefix]`, `gs://bucket[/prefix]`,
    /// `az://container[/prefix]` and the other Azure forms, or `file:///path`) with `mode`.
    pub fn new(url: &str, mode: Mode) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidSpec { spec: cache_core::redact_url(url), reason: reason.to_owned() };
        if url.split(['/', '\\']).any(|s| s == "." || s == "..") {
            return Err(bad("the path may not contain `.` or `..`"));
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
        let scheme = parsed.scheme();
        // `abfs[s]://container@account.dfs.core.windows.net/…` names the container as the user.
        let azure_user = matches!(scheme, "abfs" | "abfss") && !parsed.username().is_empty();
        if (!parsed.username().is_empty() && !azure_user) || parsed.password().is_some() || parsed.query().is_some() {
            return Err(bad(
                "a tier URL carries no credentials or query: they come from the environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`)",
            ));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let prefix = parsed.path().trim_matches('/').to_owned();
        let location = match scheme {
            "s3" => {
                if host.is_empty() {
                    return Err(bad("an S3 tier names its bucket: `s3://bucket/prefix`"));
                }
                Location::S3 { bucket: host, prefix }
            }
            "gs" => {
                if host.is_empty() {
                    return Err(bad("a Google Cloud Storage tier names its bucket: `gs://bucket/prefix`"));
                }
                Location::Gcs { bucket: host, prefix }
            }
            "az" | "azure" | "adl" | "abfs" | "abfss" => {
                let (container, account) = if azure_user {
                    let account = host
                        .strip_suffix(".dfs.core.windows.net")
                        .or_else(|| host.strip_suffix(".blob.core.windows.net"))
                        .filter(|a| !a.is_empty() && !a.contains('.'))
                        .ok_or_else(|| bad("the host must be `<account>.dfs.core.windows.net`"))?;
                    (parsed.username().to_owned(), Some(account.to_owned()))
                } else {
                    (host, None)
                };
                if container.is_empty() || container.contains('.') {
                    return Err(bad("an Azure tier names its container (no dots): `az://container/prefix`"));
                }
                Location::Azure { container, account, prefix }
            }
            "file" => {
                if !host.is_empty() {
                    return Err(bad("a directory tier is `file:///absolute/path` (three slashes)"));
                }
                let path = parsed.to_file_path().map_err(|()| bad("not an absolute path"))?;
                let path = path.to_str().ok_or_else(|| bad("the path is not UTF-8"))?.to_owned();
                Location::Dir { path }
            }
            _ => return Err(bad("the scheme must be `s3://`, `gs://`, `az://` (or `azure://`, `abfs://`) or `file://`")),
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
    fn parses_google_cloud_storage_and_azure_urls() {
        let s: TierSpec = "gs://team-models/hub/v:ro".parse().unwrap();
        assert_eq!((s.url(), s.mode), ("gs://team-models/hub/v", Mode::ReadOnly));
        assert_eq!(s.location(), &Location::Gcs { bucket: "team-models".into(), prefix: "hub/v".into() });
        let azure = |container: &str, account: Option<&str>, prefix: &str| Location::Azure {
            container: container.into(),
            account: account.map(Into::into),
            prefix: prefix.into(),
        };
        for (spec, want, mode) in [
            ("az://models/hub", azure("models", None, "hub"), Mode::ReadWrite),
            ("azure://models:wo", azure("models", None, ""), Mode::WriteOnly),
            ("adl://models/a/b/:ro", azure("models", None, "a/b"), Mode::ReadOnly),
            ("abfs://models/hub", azure("models", None, "hub"), Mode::ReadWrite),
            ("abfss://models@team.dfs.core.windows.net/hub:ro", azure("models", Some("team"), "hub"), Mode::ReadOnly),
        ] {
            let s: TierSpec = spec.parse().unwrap();
            assert_eq!((s.location(), s.mode), (&want, mode), "{spec}");
        }
        assert_eq!(
            parse_list("gs://a/x:ro, az://c/p, s3://b").unwrap().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["gs://a/x:ro", "az://c/p:rw", "s3://b:rw"]
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve_with_the_reason() {
        for (spec, says) in [
            ("s3://b/p:rx", "`rw`"),
            ("http://host/x", "scheme"),
            ("s3://key:secret@b/p", "credentials"),
            ("file://host/x", "three slashes"),
            ("s3://b/../x", "`..`"),
            ("gs:///p", "names its bucket"),
            ("az://my.container/p", "no dots"),
            ("az://user:secret@c/p", "credentials"),
            ("abfss://c@team.example.com/p", "dfs.core.windows.net"),
            ("ftp://host/x", "`gs://`"),
        ] {
            let e = spec.parse::<TierSpec>().unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
