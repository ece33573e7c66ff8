//! The Hub token: `HF_TOKEN`, else the file `HF_TOKEN_PATH`, else `$HF_HOME/token` (as
//! huggingface_hub finds it). It is never logged, printed or sent to another host: its
//! `Debug` is redacted and it has no `Display`.

use std::fmt;
use std::path::PathBuf;

/// A bearer token for the Hub.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps a token (surrounding whitespace removed); `None` if it is empty.
    pub fn new(value: &str) -> Option<Self> {
        let v = value.trim();
        (!v.is_empty()).then(|| Token(v.to_owned()))
    }

    /// The secret itself, to put in an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Finds the token as huggingface_hub does, reading variables through `env`.
    pub fn discover(env: &dyn Fn(&str) -> Option<String>) -> Option<Token> {
        if let Some(t) = env("HF_TOKEN").and_then(|t| Token::new(&t)) {
            return Some(t);
        }
        let path = env("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
            let hf_home = env("HF_HOME").map(PathBuf::from).or_else(|| {
                env("XDG_CACHE_HOME")
                    .map(|x| PathBuf::from(x).join("huggingface"))
                    .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")))
            })?;
            Some(hf_home.join("token"))
        })?;
        std::fs::read_to_string(path).ok().and_then(|t| Token::new(&t))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn env_then_token_path_then_hf_home() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "hf_fromfile\n").unwrap();
        let home = dir.path().to_str().unwrap().to_owned();
        assert_eq!(Token::discover(&env(&[("HF_TOKEN", "hf_env".into()), ("HF_HOME", home.clone())])).unwrap().expose(), "hf_env");
        assert_eq!(Token::discover(&env(&[("HF_HOME", home.clone())])).unwrap().expose(), "hf_fromfile");
        let other = dir.path().join("other");
        std::fs::write(&other, "  hf_other  ").unwrap();
        let found = Token::discover(&env(&[("HF_HOME", home.clone()), ("HF_TOKEN_PATH", other.to_str().unwrap().to_owned())]));
        assert_eq!(found.unwrap().expose(), "hf_other");
        assert_eq!(Token::discover(&env(&[("HF_TOKEN", "  ".into())])), None);
        assert_eq!(Token::discover(&env(&[("HOME", "/nonexistent".into())])), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = Token::new("hf_secret").unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }
}
