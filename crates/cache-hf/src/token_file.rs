//! Where huggingface_hub keeps the token when `HF_TOKEN` is not set: needed without the
//! network too (the facade names a token's source in every build).

use std::path::PathBuf;

/// The token file `huggingface_hub` reads when `HF_TOKEN` is not set: `HF_TOKEN_PATH`,
/// else `$HF_HOME/token`, with `HF_HOME` defaulting to `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface` (it may not exist).
pub fn token_file(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("HF_TOKEN_PATH").map(PathBuf::from).or_else(|| {
        let hf_home = env("HF_HOME").map(PathBuf::from).or_else(|| {
            env("XDG_CACHE_HOME")
                .map(|x| PathBuf::from(x).join("huggingface"))
                .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache/huggingface")))
        })?;
        Some(hf_home.join("token"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Variables set, and the token file they give.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

    #[test]
    fn token_path_then_hf_home_then_xdg_then_home() {
        let cases: [Case<'_>; 5] = [
            (&[("HF_TOKEN_PATH", "/t/p"), ("HF_HOME", "/h")], Some("/t/p")),
            (&[("HF_HOME", "/h"), ("XDG_CACHE_HOME", "/x")], Some("/h/token")),
            (&[("XDG_CACHE_HOME", "/x"), ("HOME", "/u")], Some("/x/huggingface/token")),
            (&[("HOME", "/u")], Some("/u/.cache/huggingface/token")),
            (&[], None),
        ];
        for (vars, want) in cases {
            let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned());
            assert_eq!(token_file(&env), want.map(PathBuf::from), "{vars:?}");
        }
    }
}
