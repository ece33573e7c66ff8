//! The command line: global options, commands and their arguments (clap derive).
//!
//! Global options only set a value when given; otherwise the facade reads the same
//! variables huggingface_hub does (`HF_HUB_CACHE`, `HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`,
//! `HF_HUB_OFFLINE`) and modelcache's own (`MODELCACHE_*`), so `modelcache config` can
//! say where each value came from.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  modelcache get openai/whisper-tiny config.json     # download once, print the cached path
  modelcache --offline get openai/whisper-tiny config.json
  modelcache ls --sort size
  modelcache prune --max-size 20GiB

Exit codes: 0 success, 1 unexpected failure, 2 invalid input or usage, 3 remote failure,
4 not cached while offline, 5 integrity failure, 6 disk full.";

/// The heading the options every command takes are listed under, after its own.
const GLOBAL: &str = "Global options";

/// Keep Hub models and URLs in a verified local cache shared with huggingface_hub
#[derive(Debug, Parser)]
#[command(name = "modelcache", version = crate::version::version(), after_help = AFTER_HELP, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The hub cache directory [env: `HF_HUB_CACHE`, else $`HF_HOME/hub`]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// The modelcache home: index and URL artifacts [env: `MODELCACHE_HOME`]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "DIR")]
    pub(crate) home: Option<PathBuf>,
    /// The Hub endpoint [env: `HF_ENDPOINT`]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// The Hub token [env: `HF_TOKEN`, else the token file $`HF_HOME/token`]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// How requests are satisfied: network (cache first, then the Hub), cache-only, or
    /// hybrid (network, then the cache on a remote failure) [env: `MODELCACHE_STRATEGY`]
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, value_name = "STRATEGY")]
    pub(crate) strategy: Option<StrategyArg>,
    /// Never touch the network [env: `HF_HUB_OFFLINE=1` or `MODELCACHE_OFFLINE=1`]
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) offline: bool,
    /// Machine-readable JSON on stdout (and errors as JSON on stderr)
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub(crate) json: bool,
    /// No progress bars or messages on stderr (errors still show)
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub(crate) quiet: bool,
    /// Log to stderr: -v for info, -vv for debug, -vvv for trace
    #[arg(short, long, global = true, help_heading = GLOBAL, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Log format on stderr: text, or json (one JSON event per line, info level without
    /// -v; errors too; no progress bars) [env: `MODELCACHE_LOG_FORMAT`]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
}

/// How stderr logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Lines for people (only with -v).
    #[default]
    Text,
    /// One JSON object per line: every event, notes and errors.
    Json,
}

impl LogFormat {
    /// `--log-format`, else `MODELCACHE_LOG_FORMAT` (`text` or `json`, any case).
    pub(crate) fn resolve(given: Option<LogFormat>, env: Option<&str>) -> Result<LogFormat, String> {
        match (given, env) {
            (Some(f), _) => Ok(f),
            (None, None) => Ok(LogFormat::Text),
            (None, Some(v)) => LogFormat::from_str(v.trim(), true)
                .map_err(|_| format!("`MODELCACHE_LOG_FORMAT` must be `text` or `json`, not `{v}`")),
        }
    }
}

/// An acquisition strategy, as `--strategy` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StrategyArg {
    /// The cache first, the network for what is missing or stale.
    Network,
    /// The cache alone.
    CacheOnly,
    /// The network when allowed, then the cache.
    Hybrid,
}

impl StrategyArg {
    pub(crate) fn kind(self) -> modelcache::StrategyKind {
        match self {
            StrategyArg::Network => modelcache::StrategyKind::Network,
            StrategyArg::CacheOnly => modelcache::StrategyKind::CacheOnly,
            StrategyArg::Hybrid => modelcache::StrategyKind::Hybrid,
        }
    }
}

/// The kind of Hub repository a bare `org/name` means.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum RepoKind {
    /// A model repository.
    #[default]
    Model,
    /// A dataset repository.
    Dataset,
    /// A Space.
    Space,
}

impl RepoKind {
    /// The kind `--repo-type` names (a model when not given).
    pub(crate) fn or_default(kind: Option<RepoKind>) -> modelcache::RepoType {
        kind.unwrap_or_default().repo_type()
    }

    pub(crate) fn repo_type(self) -> modelcache::RepoType {
        match self {
            RepoKind::Model => modelcache::RepoType::Model,
            RepoKind::Dataset => modelcache::RepoType::Dataset,
            RepoKind::Space => modelcache::RepoType::Space,
        }
    }
}

/// Ordering of `ls` rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum SortKey {
    /// By name (type, then id).
    #[default]
    Name,
    /// Largest first.
    Size,
    /// Most recently used first.
    Used,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Ensure files, a snapshot or a URL are cached (downloading if needed); print their paths
    #[command(after_help = "\
Examples:
  modelcache get openai/whisper-tiny config.json tokenizer.json
  modelcache get openai/whisper-tiny@main --include '*.json'
  modelcache get --repo-type dataset org/data@v1.0 train.csv
  modelcache get https://example.com/model.onnx --sha256 <HEX> --name model.onnx")]
    Get(GetArgs),
    /// Prefetch every line `REPO[@REV] [FILE...]` or `URL [sha256=HEX] [name=NAME]` of LISTFILE concurrently ('-': stdin)
    #[command(after_help = "\
Examples:
  modelcache warm models.txt -j 8
  modelcache warm - < models.txt")]
    Warm(WarmArgs),
    /// List cached repositories (or revisions), URL artifacts and incomplete downloads
    #[command(after_help = "\
Examples:
  modelcache ls --sort size
  modelcache ls --revisions --json")]
    Ls(LsArgs),
    /// Totals, hit/miss/download counters, bytes downloaded, free disk
    #[command(after_help = "\
Examples:
  modelcache stats
  modelcache stats --json
  modelcache stats --format openmetrics
  modelcache stats --format openmetrics --output /var/lib/node_exporter/textfile/modelcache.prom")]
    Stats(StatsArgs),
    /// Re-hash cached files; exit 5 if any is corrupted or missing
    #[command(after_help = "\
Examples:
  modelcache verify
  modelcache verify openai/whisper-tiny --repair")]
    Verify(VerifyArgs),
    /// Remove a repository, a revision or files of it, or a URL artifact
    #[command(after_help = "\
Examples:
  modelcache rm openai/whisper-tiny --dry-run
  modelcache rm openai/whisper-tiny@main config.json
  modelcache rm model.onnx")]
    Rm(RmArgs),
    /// Evict by policy (size, age; pins kept) and clear stale downloads and locks
    #[command(after_help = "\
Examples:
  modelcache prune --max-size 20GiB --dry-run
  modelcache prune --max-age 30d")]
    Prune(PruneArgs),
    /// Remove everything in the cache, keeping its directories
    #[command(after_help = "\
Examples:
  modelcache clean --dry-run
  modelcache clean --yes")]
    Clean(CleanArgs),
    /// Protect a repository (or one revision), or a URL artifact, from eviction
    #[command(after_help = "\
Examples:
  modelcache pin openai/whisper-tiny
  modelcache pin openai/whisper-tiny@main")]
    Pin(PinArgs),
    /// Remove the protection `pin` gave
    #[command(after_help = "\
Examples:
  modelcache unpin openai/whisper-tiny")]
    Unpin(PinArgs),
    /// Show the effective configuration and where each value came from
    #[command(after_help = "\
Examples:
  modelcache config
  modelcache --offline --strategy hybrid config --json")]
    Config,
    /// Show the hub cache directory and the modelcache home
    #[command(after_help = "\
Examples:
  modelcache dir
  modelcache --cache-dir /data/hub dir")]
    Dir,
    /// Check the setup: filesystems and locks, the home, the index, stale downloads, moved repositories
    #[command(after_help = "\
Examples:
  modelcache doctor
  modelcache doctor --json")]
    Doctor,
    /// Print a shell's completion script for modelcache
    #[command(after_help = "\
Examples:
  modelcache completions bash > ~/.local/share/bash-completion/completions/modelcache
  modelcache completions zsh > ~/.zfunc/_modelcache
  modelcache completions fish > ~/.config/fish/completions/modelcache.fish")]
    Completions(CompletionsArgs),
    /// Write a man page per command into DIR (`cargo xtask man` runs it)
    #[command(hide = true, name = "generate-man")]
    GenerateMan(GenerateManArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub(crate) shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub(crate) struct GenerateManArgs {
    /// The directory the pages are written to (created when missing)
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct GetArgs {
    /// `[datasets/|spaces/]ORG/NAME[@REV]` (also `dataset/ORG/NAME` as `hf cache ls` prints
    /// it, and `hf://[datasets/]ORG/NAME[@REV][/FILE]`), or an `http(s)://` URL
    #[arg(value_name = "REPO[@REV]|URL")]
    pub(crate) target: String,
    /// Files of the repository; none means the whole snapshot
    #[arg(value_name = "FILE")]
    pub(crate) files: Vec<String>,
    /// Snapshot: only files matching this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub(crate) include: Vec<String>,
    /// Snapshot: leave out files matching this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub(crate) exclude: Vec<String>,
    /// URL: the SHA-256 (hex) the content must have
    #[arg(long, value_name = "HEX")]
    pub(crate) sha256: Option<String>,
    /// URL: the file name to store it under (`[A-Za-z0-9._-]`)
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// What a bare ORG/NAME is [default: model]; must agree with a `datasets/`, `spaces/` or
    /// `models/` prefix
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
    /// The revision (branch, tag, commit or a prefix of a cached commit); the same as `@REV`
    #[arg(long, value_name = "REV")]
    pub(crate) revision: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    /// Output format: text, json (as `--json`), or openmetrics (`OpenMetrics` text)
    #[arg(long, value_enum, default_value_t)]
    pub(crate) format: StatsFormat,
    /// Write the output to FILE atomically (a temporary file renamed over it) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// What `stats` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatsFormat {
    /// A table for people.
    #[default]
    Text,
    /// The JSON object `--json` prints.
    Json,
    /// `OpenMetrics` text, for Prometheus (`node_exporter`'s textfile collector).
    Openmetrics,
}

#[derive(Debug, Args)]
pub(crate) struct WarmArgs {
    /// A file of lines `REPO[@REV] [FILE...]` or `URL [sha256=HEX] [name=NAME]` (`#` starts a comment); `-` for stdin
    #[arg(value_name = "LISTFILE")]
    pub(crate) list: PathBuf,
    /// Lines fetched at once
    #[arg(long, short = 'j', default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) jobs: u16,
    /// What a bare ORG/NAME is [default: model]; must agree with a `datasets/`, `spaces/` or
    /// `models/` prefix
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Row order
    #[arg(long, value_enum, default_value_t)]
    pub(crate) sort: SortKey,
    /// One row per cached revision
    #[arg(long)]
    pub(crate) revisions: bool,
    /// Keep rows matching `KEY OP VALUE` (repeatable, all must match): `size>1GB`,
    /// `age>30d` (since last use), `type=dataset`, `pinned=no`, `name=org/*`
    #[arg(long, short = 'f', value_name = "EXPR")]
    pub(crate) filter: Vec<String>,
    /// Only the first N repositories or artifacts (after sorting and filtering)
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Only ids, one a line, as every command takes them back: `model/org/name`
    /// (`…@<commit>` with `--revisions`), a URL artifact's name (its id when the name is
    /// not unique)
    #[arg(long)]
    pub(crate) ids: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Only this repository (or revision), or this URL artifact (its name or URL); everything when omitted
    #[arg(value_name = "REPO[@REV]|NAME|URL")]
    pub(crate) repo: Option<String>,
    /// Remove corrupted and missing files and, online, download them again
    #[arg(long)]
    pub(crate) repair: bool,
    /// What a bare ORG/NAME is [default: model]; must agree with a `datasets/`, `spaces/` or
    /// `models/` prefix
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
    /// The revision (branch, tag, commit or a prefix of a cached commit); the same as `@REV`
    #[arg(long, value_name = "REV")]
    pub(crate) revision: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The repository, or one revision of it, or a URL artifact (its name or URL)
    #[arg(value_name = "REPO[@REV]|NAME|URL")]
    pub(crate) repo: String,
    /// Only these files (of the revision, `main` when none is given)
    #[arg(value_name = "FILE")]
    pub(crate) files: Vec<String>,
    /// Report what would be removed without removing it
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// What a bare ORG/NAME is [default: model]; must agree with a `datasets/`, `spaces/` or
    /// `models/` prefix
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
    /// The revision (branch, tag, commit or a prefix of a cached commit); the same as `@REV`
    #[arg(long, value_name = "REV")]
    pub(crate) revision: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Evict least recently used files until the cache fits (e.g. `20GiB`, `500MB`)
    #[arg(long, value_name = "SIZE")]
    pub(crate) max_size: Option<String>,
    /// Evict files unused for longer than this (e.g. `30d`, `12h`)
    #[arg(long, value_name = "DURATION")]
    pub(crate) max_age: Option<String>,
    /// Report what would be evicted without removing it
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Do not ask for confirmation when `--max-size` would evict nearly everything
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CleanArgs {
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Report what would be removed without removing it
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// The repository, or one revision of it, or a URL artifact (its name or URL)
    #[arg(value_name = "REPO[@REV]|NAME|URL")]
    pub(crate) repo: String,
    /// What a bare ORG/NAME is [default: model]; must agree with a `datasets/`, `spaces/` or
    /// `models/` prefix
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
    /// The revision (branch, tag, commit or a prefix of a cached commit); the same as `@REV`
    #[arg(long, value_name = "REV")]
    pub(crate) revision: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_before_or_after_the_command() {
        let a = Cli::try_parse_from(["modelcache", "--offline", "--json", "ls", "--sort", "size"]).unwrap();
        let b = Cli::try_parse_from(["modelcache", "ls", "--sort", "size", "--offline", "--json"]).unwrap();
        assert!(a.global.offline && a.global.json && b.global.offline && b.global.json);
        let v = Cli::try_parse_from(["modelcache", "-vv", "dir"]).unwrap();
        assert_eq!(v.global.verbose, 2);
        let g = Cli::try_parse_from(["modelcache", "get", "a/b", "x.json", "--repo-type", "dataset"]).unwrap();
        let Command::Get(g) = g.command else { panic!("not get") };
        assert_eq!((g.files.as_slice(), g.repo_type), (["x.json".to_owned()].as_slice(), Some(RepoKind::Dataset)));
        let strategy = Cli::try_parse_from(["modelcache", "config", "--strategy", "cache-only"]).unwrap();
        assert_eq!(strategy.global.strategy, Some(StrategyArg::CacheOnly));
        assert!(Cli::try_parse_from(["modelcache", "get", "a/b", "--repo-type", "nope"]).is_err());
    }
}
