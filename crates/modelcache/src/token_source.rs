//! Where the Hub token comes from: the `--token` option (a builder call), `HF_TOKEN`, or
//! a token file. Messages and `modelcache config` name the source, never the value.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where the Hub token of a manager comes from, found as huggingface_hub finds it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TokenSource {
    /// No token is sent.
    #[default]
    None,
    /// Given explicitly: the `--token` option or [`CacheManagerBuilder::token`](crate::CacheManagerBuilder::token).
    Given,
    /// An environment variable (`HF_TOKEN`).
    Env(String),
    /// A token file (`HF_TOKEN_PATH`, else `$HF_HOME/token`).
    File(PathBuf),
}

impl TokenSource {
    /// Where the token comes from when none is given: `HF_TOKEN` when set and not blank,
    /// else the token file when it holds one, else none (the same order and rules as
    /// the token actually sent).
    pub fn discover(env: &dyn Fn(&str) -> Option<String>) -> TokenSource {
        if env("HF_TOKEN").is_some_and(|t| !t.trim().is_empty()) {
            return TokenSource::Env("HF_TOKEN".to_owned());
        }
        match cache_hf::token_file(env) {
            Some(p) if std::fs::read_to_string(&p).is_ok_and(|t| !t.trim().is_empty()) => TokenSource::File(p),
            _ => TokenSource::None,
        }
    }

    /// For a given value (`None` or blank: no token).
    pub fn given(token: Option<&str>) -> TokenSource {
        if token.is_some_and(|t| !t.trim().is_empty()) { TokenSource::Given } else { TokenSource::None }
    }

    /// Whether a token is sent.
    pub fn is_some(&self) -> bool {
        *self != TokenSource::None
    }
}

impl std::fmt::Display for TokenSource {
    /// `none`, `` `--token` ``, `` `HF_TOKEN` ``, `` the token file `…` ``.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::None => f.write_str("none"),
            TokenSource::Given => f.write_str("`--token`"),
            TokenSource::Env(v) => write!(f, "`{v}`"),
            TokenSource::File(p) => write!(f, "the token file `{}`", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_follows_huggingface_hubs_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        let env = |vars: Vec<(&'static str, String)>| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(TokenSource::discover(&env(vec![("HF_HOME", home.clone())])), TokenSource::None, "no file yet");
        std::fs::write(dir.path().join("token"), "hf_x\n").unwrap();
        let file = TokenSource::discover(&env(vec![("HF_HOME", home.clone())]));
        assert_eq!(file, TokenSource::File(dir.path().join("token")));
        assert_eq!(file.to_string(), format!("the token file `{}`", dir.path().join("token").display()));
        let var = TokenSource::discover(&env(vec![("HF_HOME", home.clone()), ("HF_TOKEN", "hf_y".into())]));
        assert_eq!(var.to_string(), "`HF_TOKEN`");
        assert_eq!(TokenSource::discover(&env(vec![("HF_HOME", home), ("HF_TOKEN", " ".into())])), file, "blank is unset");
        assert_eq!((TokenSource::given(Some("t")), TokenSource::given(Some(""))), (TokenSource::Given, TokenSource::None));
    }
}
