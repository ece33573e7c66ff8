//! Unknown keys in `config.toml`: a warning naming the file, the line and the nearest
//! valid key, never a failure — a typo in the file must not stop every command.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Key;

/// A key of the config file that modelcache does not know; it is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownKey {
    /// The file.
    pub path: PathBuf,
    /// The line it is on (1-based), when found.
    pub line: Option<usize>,
    /// The key as written.
    pub key: String,
    /// The valid key it most resembles, when one is close.
    pub nearest: Option<String>,
}

impl UnknownKey {
    pub(super) fn new(path: &Path, text: &str, key: &str) -> UnknownKey {
        UnknownKey { path: path.to_path_buf(), line: line_of(text, key), key: key.to_owned(), nearest: nearest(key) }
    }
}

impl std::fmt::Display for UnknownKey {
    /// ``unknown key `max_szie` in `/c/config.toml` line 2 (ignored); did you mean `max_size`?``
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown key `{}` in `{}`", self.key, self.path.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        f.write_str(" (ignored)")?;
        match &self.nearest {
            Some(n) => write!(f, "; did you mean `{n}`?"),
            None => write!(f, "; `modelcache config` lists the valid keys"),
        }
    }
}

/// The first line that sets `key` (`key = …`, `"key" = …` or a `[key]` table).
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let rest = l
                .strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| l.strip_prefix(&format!("'{key}'")));
            rest.is_some_and(|r| r.trim_start().starts_with('='))
                || l.strip_prefix('[')
                    .is_some_and(|r| r.trim_start().strip_prefix(key).is_some_and(|r| r.trim_start().starts_with(']')))
        })
        .map(|i| i + 1)
}

/// The valid key at the smallest edit distance, if it is close: within a third of the
/// key's length, but 2 edits are always allowed and never more than 3.
fn nearest(key: &str) -> Option<String> {
    let key = key.to_ascii_lowercase().replace('-', "_");
    let (d, best) = Key::ALL.iter().map(|k| (cache_core::edit_distance(&key, k.name()), k.name())).min_by_key(|(d, _)| *d)?;
    (d <= (key.chars().count() / 3).clamp(2, 3)).then(|| best.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_key_is_a_close_one() {
        assert_eq!(nearest("max_szie").as_deref(), Some("max_size"));
        assert_eq!(nearest("max-size").as_deref(), Some("max_size"), "dashes are a common slip");
        assert_eq!(nearest("retires").as_deref(), Some("retries"));
        assert_eq!(nearest("colour"), None, "nothing close");
    }

    #[test]
    fn the_line_is_found_for_plain_quoted_and_table_keys() {
        let text = "max_size = \"1GiB\"\n  \"maxage\" = \"1d\"\n[proxy]\nmaxage_x = 1\n";
        assert_eq!(line_of(text, "maxage"), Some(2));
        assert_eq!(line_of(text, "proxy"), Some(3));
        assert_eq!(line_of(text, "absent"), None);
        let w = UnknownKey::new(Path::new("/c/config.toml"), text, "maxage");
        assert_eq!(w.to_string(), "unknown key `maxage` in `/c/config.toml` line 2 (ignored); did you mean `max_age`?");
    }
}
