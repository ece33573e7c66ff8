//! Files generated from the command line's definition: shell completion scripts
//! (`completions`) and man pages (the hidden `generate-man`, run by `cargo xtask man`).

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::app::Output;
use crate::cli::{Cli, CompletionsArgs, GenerateManArgs};

/// Prints the completion script of `args.shell` on stdout.
pub(crate) fn completions(args: &CompletionsArgs) -> Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut visible(&Cli::command()), "modelcache", &mut script);
    Output::text(&String::from_utf8_lossy(&script))
}

/// The command line without its hidden commands (the generators would offer them).
fn visible(cli: &clap::Command) -> clap::Command {
    let mut visible = clap::Command::new(cli.get_name().to_owned())
        .args(cli.get_arguments().cloned())
        .subcommands(cli.get_subcommands().filter(|c| !c.is_hide_set()).cloned())
        .subcommand_required(true);
    if let Some(version) = cli.get_version() {
        visible = visible.version(version.to_owned());
    }
    visible
}

/// Writes `modelcache.1` and a `modelcache-COMMAND.1` per visible command into `args.dir`,
/// and prints their paths.
pub(crate) fn man(args: &GenerateManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("failed to create `{}`", args.dir.display()))?;
    let mut written = Vec::new();
    for (file, page) in pages() {
        let path = args.dir.join(file);
        write_page(&path, &page)?;
        written.push(path.display().to_string());
    }
    written.push(String::new());
    Output::text(&written.join("\n"))
}

/// Every page: the top-level command's, then one per visible command, named as `man`
/// looks them up (`man modelcache-get`).
fn pages() -> Vec<(String, clap::Command)> {
    let mut cli = Cli::command();
    // Propagates the global options into each command, so each page lists them too.
    cli.build();
    let mut pages = vec![("modelcache.1".to_owned(), cli.clone())];
    for sub in cli.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help") {
        let name = format!("modelcache-{}", sub.get_name());
        pages.push((format!("{name}.1"), sub.clone().name(name.clone()).bin_name(name)));
    }
    pages
}

fn write_page(path: &Path, page: &clap::Command) -> Result<()> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(page.clone()).render(&mut roff).context("failed to render a man page")?;
    std::fs::write(path, roff).with_context(|| format!("failed to write `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_offer_every_visible_command_and_no_hidden_one() {
        let cli = Cli::command();
        let visible = visible(&cli);
        let names = |c: &clap::Command| c.get_subcommands().map(|s| s.get_name().to_owned()).collect::<Vec<_>>();
        let mut expected = names(&cli);
        expected.retain(|n| n != "generate-man");
        assert_eq!(names(&visible), expected);
        assert_eq!(visible.get_arguments().count(), cli.get_arguments().count());
    }

    #[test]
    fn every_visible_command_gets_a_page_that_names_it() {
        let pages = pages();
        let names: Vec<&str> = pages.iter().map(|(f, _)| f.as_str()).collect();
        for expected in ["modelcache.1", "modelcache-get.1", "modelcache-completions.1", "modelcache-dir.1"] {
            assert!(names.contains(&expected), "{expected} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("generate-man") || n.contains("help")), "{names:?}");
        let (_, get) = &pages[1];
        let mut roff = Vec::new();
        clap_mangen::Man::new(get.clone()).render(&mut roff).unwrap();
        let roff = String::from_utf8(roff).unwrap();
        assert!(roff.contains("modelcache\\-get") && roff.contains("\\-\\-include"), "{roff}");
        assert!(roff.contains("\\-\\-offline"), "global options are on each page: {roff}");
    }
}
