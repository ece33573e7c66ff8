//! Usage errors as clap reports them, without the tips that mislead.
//!
//! clap's `suggestions` feature proposes any option whose Jaro similarity to the unknown
//! one exceeds 0.7; a shared suffix is enough, so `--local-dir` (huggingface_hub's
//! download option) drew "a similar argument exists: `--cache-dir`", which does something
//! else. A tip is kept only when the options are a typo apart (edit distance at most 2,
//! `--dry-rn` → `--dry-run`); `--local-dir` gets an error of its own naming what
//! modelcache has instead (`get --to DIR`).

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::report::Failure;

/// What to report for a usage error clap found.
pub(crate) enum Refined {
    /// clap's error, its tip removed when misleading.
    Clap(clap::Error),
    /// A targeted error of our own.
    Failure(Failure),
}

fn string(e: &clap::Error, kind: ContextKind) -> Option<&str> {
    match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s),
        _ => None,
    }
}

/// `e` as the user should see it.
pub(crate) fn refine(e: clap::Error, cmd: &clap::Command) -> Refined {
    if e.kind() != ErrorKind::UnknownArgument {
        return Refined::Clap(e);
    }
    let Some(arg) = string(&e, ContextKind::InvalidArg).map(str::to_owned) else { return Refined::Clap(e) };
    let flag = arg.split('=').next().unwrap_or_default();
    if matches!(flag, "--local-dir" | "--local_dir" | "--local-dir-use-symlinks") {
        return Refined::Failure(Failure::usage(
            format!("modelcache has no `{flag}`: `get --to DIR` places the files into a directory"),
            "use `modelcache get ORG/NAME --to DIR` (`--link-mode` chooses reflink, copy, hardlink or symlink); `--cache-dir` moves the whole cache instead",
        ));
    }
    let Some(suggested) = string(&e, ContextKind::SuggestedArg) else { return Refined::Clap(e) };
    if modelcache::edit_distance(flag, suggested) <= 2 {
        return Refined::Clap(e);
    }
    let mut plain = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(cmd);
    plain.insert(ContextKind::InvalidArg, ContextValue::String(arg));
    if let Some(usage) = e.get(ContextKind::Usage) {
        plain.insert(ContextKind::Usage, usage.clone());
    }
    Refined::Clap(plain)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::cli::Cli;

    fn refined(args: &[&str]) -> Refined {
        refine(Cli::try_parse_from(args).unwrap_err(), &Cli::command())
    }

    #[test]
    fn local_dir_gets_its_own_error_and_far_tips_go() {
        let Refined::Failure(f) = refined(&["modelcache", "get", "org/m", "--local-dir", "x"]) else { panic!("not targeted") };
        assert!(f.message.contains("`--local-dir`") && !f.message.contains("--cache-dir"), "{}", f.message);
        let Refined::Clap(e) = refined(&["modelcache", "get", "org/m", "--tokn", "x"]) else { panic!("not clap") };
        let text = e.render().to_string();
        assert!(text.contains("similar argument exists: '--token'"), "a typo keeps its tip: {text}");
        let Refined::Clap(e) = refined(&["modelcache", "ls", "--cache-size", "x"]) else { panic!("not clap") };
        let text = e.render().to_string();
        assert!(text.contains("unexpected argument '--cache-size'") && !text.contains("tip"), "{text}");
    }
}
