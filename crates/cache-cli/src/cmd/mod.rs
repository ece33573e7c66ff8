//! One module per group of commands; [`run`] dispatches.

pub(crate) mod dedup;
pub(crate) mod doctor;
pub(crate) mod generate;
pub(crate) mod get;
pub(crate) mod list;
pub(crate) mod lockfile;
pub(crate) mod ls_filter;
pub(crate) mod maintain;
pub(crate) mod remote;
pub(crate) mod settings;
pub(crate) mod warm;

use anyhow::Result;

use crate::app::App;
use crate::cli::{BundleCommand, Command};

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
        Command::Dedup(a) => dedup::run(app, a),
        Command::Clean(a) => maintain::clean(app, a),
        Command::Pin(a) => settings::pin(app, a, true),
        Command::Unpin(a) => settings::pin(app, a, false),
        Command::Lock(a) => lockfile::lock(app, a),
        Command::Sync(a) => lockfile::sync(app, a),
        Command::Bundle(BundleCommand::Create(a)) => lockfile::bundle_create(app, a),
        Command::Bundle(BundleCommand::Import(a)) => lockfile::bundle_import(app, a),
        Command::Push(a) => remote::push(app, a),
        Command::Remote(c) => remote::run(app, c),
        Command::Config => settings::config(app),
        Command::Dir => settings::dir(app),
        Command::Doctor(a) => doctor::run(app, a),
        Command::Completions(a) => generate::completions(a),
        Command::GenerateMan(a) => generate::man(a),
    }
}
