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
#[expect(clippy::struct_excessive_bools, reason = "independent switches, each its own option")]
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
    /// A team tier pulled through before the Hub, `s3://BUCKET/PREFIX` or `file:///DIR`,
    /// with `:rw` (default), `:ro` or `:wo`; repeatable, tried in order; replaces the
    /// configured ones [env: `MODELCACHE_REMOTE`]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "URL[:MODE]")]
    pub(crate) remote: Vec<String>,
    /// Use no team tier, whatever is configured
    #[arg(long, global = true, help_heading = GLOBAL, conflicts_with = "remote")]
    pub(crate) no_remote: bool,
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
    #[arg(long, global = true, help_heading = GLOBAL, value_enum, value_name = "FORMAT")]
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
  modelcache get https://example.com/model.onnx --sha256 <HEX> --name model.onnx
  modelcache get openai/whisper-tiny --to ./whisper-tiny
  modelcache get openai/whisper-tiny --to /srv/models/whisper --link-mode hardlink")]
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
  modelcache verify openai/whisper-tiny --repair
  modelcache verify --lock            # the cache against ./modelcache.lock")]
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
    /// Store each blob once: make copies that several repositories hold into one file (hard links)
    #[command(after_help = "\
Each copy is checked against its digest before it is replaced; the replacement is atomic
and every repository keeps a regular file (removing one never affects the others).

Examples:
  modelcache dedup --dry-run
  modelcache dedup --json")]
    Dedup(DedupArgs),
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
    /// Resolve modelcache.toml into modelcache.lock (commits and file digests; downloads no file)
    #[command(after_help = "\
Examples:
  modelcache lock
  modelcache lock --upgrade                      # move every entry to its revision's newest commit
  modelcache lock --upgrade openai/whisper-tiny  # only this one
  modelcache lock --manifest models/modelcache.toml")]
    Lock(LockArgs),
    /// Make every file of modelcache.lock present and verified, downloading only what is missing
    #[command(after_help = "\
Examples:
  modelcache sync                     # lock again first if modelcache.toml changed
  modelcache sync --locked            # CI: fail (exit 2) if the lock is out of date
  modelcache --offline sync --frozen  # air-gapped: the lock as it is, the cache only
  modelcache sync --repair -j 16")]
    Sync(SyncArgs),
    /// Write a locked set as one deterministic tar, or import one (air-gapped machines)
    #[command(
        subcommand,
        after_help = "\
Examples:
  modelcache bundle create models.tar
  modelcache bundle import models.tar --dry-run
  tar -xf models.tar -C \"$HF_HOME\"       # also a cache huggingface_hub reads"
    )]
    Bundle(BundleCommand),
    /// Seed the team tiers from the cache: blobs, then listings, then refs
    #[command(after_help = "\
Examples:
  modelcache --remote s3://team-models/hub:wo push openai/whisper-tiny
  modelcache push org/model@v1.0 datasets/org/data
  modelcache push --all --json")]
    Push(PushArgs),
    /// What a team tier holds, and re-hashing its blobs
    #[command(
        subcommand,
        after_help = "\
Examples:
  modelcache remote ls
  modelcache --remote s3://team-models/hub:ro remote verify --sample 20"
    )]
    Remote(RemoteCommand),
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
    /// Check the setup: filesystems and lock modes, the index, stale downloads, lock holders, conflicting settings, permissions; exit 1 with findings
    #[command(after_help = "\
Examples:
  modelcache doctor
  modelcache doctor --json
  modelcache doctor --fix")]
    Doctor(DoctorArgs),
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

/// Where the manifest and the lock are.
#[derive(Debug, Args)]
pub(crate) struct LockFiles {
    /// The manifest [default: ./modelcache.toml]
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest: Option<PathBuf>,
    /// The lock [default: modelcache.lock next to the manifest]
    #[arg(long, value_name = "PATH")]
    pub(crate) lock: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    pub(crate) files: LockFiles,
    /// Resolve entries again to their revision's current commit: every entry, or only
    /// REPO (`[datasets/|spaces/]ORG/NAME`)
    #[arg(long, value_name = "REPO", num_args = 0..=1, default_missing_value = "")]
    pub(crate) upgrade: Option<String>,
}

#[derive(Debug, Args)]
#[expect(clippy::struct_excessive_bools, reason = "independent switches, each from its own option")]
pub(crate) struct SyncArgs {
    #[command(flatten)]
    pub(crate) files: LockFiles,
    /// Fail (exit 2) when modelcache.toml no longer matches the lock, instead of locking again
    #[arg(long, conflicts_with = "frozen")]
    pub(crate) locked: bool,
    /// Use the lock as it is, without reading modelcache.toml
    #[arg(long)]
    pub(crate) frozen: bool,
    /// Files downloaded at once (sets `parallelism` for this run)
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) jobs: Option<u16>,
    /// Replace cached files that differ from the lock (otherwise reported, exit 5)
    #[arg(long)]
    pub(crate) repair: bool,
    /// Leave `refs/` alone (by default a locked branch or tag is pointed at its commit)
    #[arg(long)]
    pub(crate) no_refs: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BundleCommand {
    /// Write the files of a lock into one deterministic POSIX tar (lock first, then `hub/…`)
    #[command(after_help = "\
Examples:
  modelcache bundle create models.tar
  modelcache bundle create models.tar --lock deploy/modelcache.lock
  sha256sum models.tar   # the same lock always gives the same bytes")]
    Create(BundleCreateArgs),
    /// Import a bundle: every blob checked against its lock before anything is visible
    #[command(after_help = "\
Examples:
  modelcache bundle import models.tar --dry-run
  modelcache bundle import models.tar --lock modelcache.lock
  modelcache bundle import models.tar && modelcache --offline sync --frozen")]
    Import(BundleImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BundleCreateArgs {
    /// The tar to write (replaced atomically)
    #[arg(value_name = "OUT.tar")]
    pub(crate) out: PathBuf,
    /// The lock [default: ./modelcache.lock]
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct BundleImportArgs {
    /// The bundle (from `modelcache bundle create`)
    #[arg(value_name = "IN.tar")]
    pub(crate) bundle: PathBuf,
    /// Check every entry and digest, write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Refuse (exit 5) a bundle whose lock differs from this one (e.g. the project's
    /// `modelcache.lock`)
    #[arg(long, value_name = "FILE")]
    pub(crate) lock: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// `[datasets/|spaces/]ORG/NAME[@REV]` as cached (default revision `main`)
    #[arg(value_name = "REPO[@REV]", required_unless_present = "all")]
    pub(crate) targets: Vec<String>,
    /// Every cached commit of every repository
    #[arg(long, conflicts_with = "targets")]
    pub(crate) all: bool,
    /// What a bare ORG/NAME is [default: model]
    #[arg(long, value_enum, visible_alias = "type")]
    pub(crate) repo_type: Option<RepoKind>,
}

/// `modelcache remote …`.
#[derive(Debug, Subcommand)]
pub(crate) enum RemoteCommand {
    /// List what each team tier (or the one at URL) holds: repositories, commits, blobs, bytes
    #[command(after_help = "\
Examples:
  modelcache remote ls
  modelcache remote ls s3://team-models/hub --json")]
    Ls(RemoteLsArgs),
    /// Re-hash a team tier's blobs (a sample, or all); exit 5 if any does not match its key
    #[command(after_help = "\
Examples:
  modelcache remote verify --sample 50
  modelcache remote verify file:///mnt/models --all")]
    Verify(RemoteVerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct RemoteLsArgs {
    /// One configured tier's URL (all when omitted)
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RemoteVerifyArgs {
    /// One configured tier's URL (all when omitted)
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Re-hash about N blobs spread over the tier [default: 100]
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub(crate) sample: Option<u64>,
    /// Re-hash every blob
    #[arg(long)]
    pub(crate) all: bool,
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
    /// Also place the files under DIR with their repository paths (and huggingface_hub's
    /// `local_dir` metadata, so `hf download --local-dir DIR` finds them up to date);
    /// re-running restores changed or deleted files and leaves the rest alone
    #[arg(long, value_name = "DIR")]
    pub(crate) to: Option<PathBuf>,
    /// With `--to`: auto (reflink, else copy: edits never reach the cache), reflink, copy,
    /// hardlink (the cache's own read-only file: no bytes, same filesystem) or symlink;
    /// small git-stored files (configs) are always copies
    #[arg(long, value_enum, value_name = "MODE", default_value_t, requires = "to")]
    pub(crate) link_mode: LinkModeArg,
}

/// How `get --to` places files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LinkModeArg {
    /// A reflink where the filesystem supports it, else a copy
    #[default]
    Auto,
    /// A reflink (copy-on-write clone), or an error
    Reflink,
    /// The cache's own file, read-only (no bytes; same filesystem only)
    Hardlink,
    /// A real copy
    Copy,
    /// An absolute symlink into the cache
    Symlink,
}

impl From<LinkModeArg> for modelcache::LinkMode {
    fn from(m: LinkModeArg) -> Self {
        match m {
            LinkModeArg::Auto => modelcache::LinkMode::Auto,
            LinkModeArg::Reflink => modelcache::LinkMode::Reflink,
            LinkModeArg::Hardlink => modelcache::LinkMode::Hardlink,
            LinkModeArg::Copy => modelcache::LinkMode::Copy,
            LinkModeArg::Symlink => modelcache::LinkMode::Symlink,
        }
    }
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
pub(crate) struct DoctorArgs {
    /// Repair what can be repaired first: rebuild the index from the disk, delete index
    /// files set aside as unreadable, remove stale partial downloads and unused lock files,
    /// make the home private
    #[arg(long)]
    pub(crate) fix: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// Only this repository (or revision), or this URL artifact (its name or URL); everything when omitted
    #[arg(value_name = "REPO[@REV]|NAME|URL")]
    pub(crate) repo: Option<String>,
    /// Remove corrupted and missing files and, online, download them again
    #[arg(long)]
    pub(crate) repair: bool,
    /// Check the cache against a lock instead (offline; every blob re-hashed)
    /// [default FILE: ./modelcache.lock]
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "modelcache.lock", conflicts_with_all = ["repo", "repair", "revision"])]
    pub(crate) lock: Option<PathBuf>,
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
pub(crate) struct DedupArgs {
    /// Report what would be linked and saved without changing anything
    #[arg(long)]
    pub(crate) dry_run: bool,
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
