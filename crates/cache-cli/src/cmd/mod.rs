//! One module per group of commands; [`run`] dispatches.

pub(crate) mod doctor;
pub(crate) mod generate;
pub(crate) mod get;
pub(crate) mod list;
pub(crate) mod ls_filter;
pub(crate) mod maintain;
pub(crate) mod settings;
pub(crate) mod warm;

use anyhow::Result;

use crate::app::App;
use crate::cli::Command;

/// Runs one command.
pub(crate) fn run(app: &App, command: &Command) -> Result<()> {
    match command {
        Command::Get(a) => get::run(app, a),
        Command::Warm(a) => warm::run(app, a),
        Command::Ls(a) => list::ls(app, a),
        Command::Stats(a) => list::stats(app, a),
        Command::Verify(a) => maintain::verify(app, a),
        Command::Rm(a) => maintain::rm(app, a),
        Command::Prune(a) => maintain::prune(app, a),
        Command::Clean(a) => maintain::clean(app, a),
        Command::Pin(a) => settings::pin(app, a, true),
        Command::Unpin(a) => settings::pin(app, a, false),
        Command::Config => settings::config(app),
        Command::Dir => settings::dir(app),
        Command::Doctor => doctor::run(app),
        Command::Completions(a) => generate::completions(a),
        Command::GenerateMan(a) => generate::man(a),
    }
}
