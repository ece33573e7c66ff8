//! Finding the Hub token: `HF_TOKEN`, else the file `HF_TOKEN_PATH`, else `$HF_HOME/token`
//! (as `huggingface_hub` finds it). The token is a [`cache_fetch::Token`]: its `Debug` is
//! redacted, it has no `Display`, and the fetcher sends it only to the origin it was
//! given for.

use cache_fetch::Token;

use crate::token_file::token_file;

/// A token from what a user gave: trimmed; blank is no token.
pub fn token_from(value: &str) -> Option<Token> {
    let v = value.trim();
    (!v.is_empty()).then(|| Token::new(v))
}

/// Finds the token as `huggingface_hub` does, reading variables through `env`.
pub fn discover_token(env: &dyn Fn(&str) -> Option<String>) -> Option<Token> {
    if let Some(t) = env("HF_TOKEN").and_then(|t| token_from(&t)) {
        return Some(t);
    }
    let path = token_file(env)?;
    std::fs::read_to_string(path).ok().and_then(|t| token_from(&t))
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
        let found = |vars: &[(&str, String)]| discover_token(&env(vars));
        assert_eq!(found(&[("HF_TOKEN", "hf_env".into()), ("HF_HOME", home.clone())]), Some(Token::new("hf_env")));
        assert_eq!(found(&[("HF_HOME", home.clone())]), Some(Token::new("hf_fromfile")));
        let other = dir.path().join("other");
        std::fs::write(&other, "  hf_other  ").unwrap();
        let with_path = found(&[("HF_HOME", home.clone()), ("HF_TOKEN_PATH", other.to_str().unwrap().to_owned())]);
        assert_eq!(with_path, Some(Token::new("hf_other")));
        assert_eq!(found(&[("HF_TOKEN", "  ".into())]), None);
        assert_eq!(found(&[("HOME", "/nonexistent".into())]), None);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = discover_token(&env(&[("HF_TOKEN", "hf_secret".into())])).unwrap();
        assert!(!format!("{t:?}").contains("secret"));
    }
}
