//! Include/exclude patterns with the Hub's semantics (`allow_patterns`/`ignore_patterns`
//! of `snapshot_download`): fnmatch-style, case-sensitive, `*` matches across `/`, a
//! pattern ending in `/` matches everything below that folder, and backslashes are path
//! separators.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::Error;

/// Which files of a repository a snapshot takes.
#[derive(Clone, Debug, Default)]
pub struct FileFilter {
    allow: Option<(GlobSet, Vec<String>)>,
    ignore: Option<(GlobSet, Vec<String>)>,
}

fn build(patterns: &[String]) -> Result<Option<(GlobSet, Vec<String>)>, Error> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    let mut normalized = Vec::with_capacity(patterns.len());
    for p in patterns {
        let mut p = p.replace('\\', "/");
        if p.ends_with('/') {
            p.push('*');
        }
        let glob = GlobBuilder::new(&p)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .map_err(|e| Error::InvalidPattern { pattern: p.clone(), reason: e.kind().to_string() })?;
        set.add(glob);
        normalized.push(p);
    }
    let set = set.build().map_err(|e| Error::InvalidPattern { pattern: patterns.join(" "), reason: e.to_string() })?;
    Ok(Some((set, normalized)))
}

impl FileFilter {
    /// Takes every file.
    pub fn all() -> Self {
        FileFilter::default()
    }

    /// Files matching at least one of `allow` (all files if empty) and none of `ignore`.
    pub fn new(allow: &[String], ignore: &[String]) -> Result<Self, Error> {
        Ok(FileFilter { allow: build(allow)?, ignore: build(ignore)? })
    }

    /// Whether the filter takes `path`.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.replace('\\', "/");
        self.allow.as_ref().is_none_or(|(s, _)| s.is_match(&path))
            && !self.ignore.as_ref().is_some_and(|(s, _)| s.is_match(&path))
    }

    /// Whether it takes every file.
    pub fn is_all(&self) -> bool {
        self.allow.is_none() && self.ignore.is_none()
    }

    /// A short description, for messages: `include *.json exclude *.bin`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some((_, p)) = &self.allow {
            parts.push(format!("include {}", p.join(" ")));
        }
        if let Some((_, p)) = &self.ignore {
            parts.push(format!("exclude {}", p.join(" ")));
        }
        if parts.is_empty() { "all files".to_owned() } else { parts.join(", ") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(allow: &[&str], ignore: &[&str]) -> FileFilter {
        let v = |x: &[&str]| x.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        FileFilter::new(&v(allow), &v(ignore)).unwrap()
    }

    fn take<'a>(filter: &FileFilter, files: &[&'a str]) -> Vec<&'a str> {
        files.iter().copied().filter(|p| filter.matches(p)).collect()
    }

    #[test]
    fn the_docstring_examples_of_filter_repo_objects_hold() {
        let files = ["aaa.pdf", "bbb.jpg", ".ccc.pdf", ".ddd.png"];
        assert_eq!(take(&f(&["*.pdf"], &[".*"]), &files), ["aaa.pdf"]);
        assert_eq!(take(&FileFilter::all(), &files), files);
    }

    #[test]
    fn star_crosses_folders_and_trailing_slash_means_below() {
        let files = ["data/file.json", "data/sub/file.json", "other.json", "onnx/model.onnx", "onnx/x/y.bin"];
        assert_eq!(take(&f(&["data/*.json"], &[]), &files), ["data/file.json", "data/sub/file.json"]);
        assert_eq!(take(&f(&["onnx/"], &[]), &files), ["onnx/model.onnx", "onnx/x/y.bin"]);
        assert_eq!(take(&f(&["*.json"], &["data/sub/*"]), &files), ["data/file.json", "other.json"]);
        assert_eq!(take(&f(&["onnx\\"], &[]), &files), ["onnx/model.onnx", "onnx/x/y.bin"]);
    }

    #[test]
    fn matching_is_case_sensitive_with_classes() {
        let files = ["Model.BIN", "model.bin", "model-1.bin", "model-a.bin"];
        assert_eq!(take(&f(&["*.bin"], &[]), &files), ["model.bin", "model-1.bin", "model-a.bin"]);
        assert_eq!(take(&f(&["model-[0-9].bin"], &[]), &files), ["model-1.bin"]);
        assert_eq!(take(&f(&["model-[!0-9].bin"], &[]), &files), ["model-a.bin"]);
        assert_eq!(take(&f(&["model?bin"], &[]), &files), ["model.bin"]);
    }

    #[test]
    fn bad_patterns_are_errors_and_descriptions_read_well() {
        let err = FileFilter::new(&["[".to_owned()], &[]).unwrap_err();
        assert!(err.to_string().contains("`[`"), "{err}");
        assert_eq!(f(&["*.json"], &["*.bin", "x/"]).describe(), "include *.json, exclude *.bin x/*");
        assert_eq!(FileFilter::all().describe(), "all files");
    }
}
