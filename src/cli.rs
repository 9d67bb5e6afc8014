//! Command-line definitions (clap derive). Doc comments are the help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::Format;

#[derive(Debug, Parser)]
#[command(name = "strata", version, about = "Schema governance for multi-tenant PostgreSQL", long_about = None)]
pub struct Cli {
    /// The workspace root (default: the nearest folder upwards holding strata.toml).
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// When to use colors in text output (NO_COLOR is respected in auto mode).
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only the summary line.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Output formats of listing commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Lint migrations: schema discipline and lock safety.
    ///
    /// With no PATHS, checks every layer of the workspace. With PATHS inside
    /// a workspace, replays the whole history but reports only those files.
    /// Outside a workspace, PATHS are one plain migration sequence in the
    /// order given, checked with the lock-safety and review rules.
    Check(CheckArgs),
    /// List every rule: id, group, default severity, summary.
    Rules {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Print a rule's documentation: what it does, why, an example, the fix.
    Explain {
        /// A rule id, as listed by `strata rules`.
        rule: String,
    },
    /// Print the layers, or one tenant's composed migration sequence.
    Ls {
        /// The tenant slug (from tenants.toml).
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Write strata.sum: the hash chain over every migration (releases them).
    Sum {
        /// Do not write; exit 1 when strata.sum is not up to date.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or folders to report on (default: the whole workspace).
    pub paths: Vec<PathBuf>,
    /// Report on the migration files changed since this git revision.
    #[arg(long, value_name = "REV", conflicts_with_all = ["paths", "staged"])]
    pub since: Option<String>,
    /// Report on the migration files staged in git (for pre-commit hooks).
    #[arg(long, conflicts_with = "paths")]
    pub staged: bool,
    /// Ignore any workspace: check PATHS as a plain migration sequence.
    #[arg(long)]
    pub no_workspace: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Apply the safe mechanical fixes (CONCURRENTLY with the no-transaction
    /// header, NOT VALID with a VALIDATE migration, ...), print the diff, and
    /// report what is left.
    #[arg(long)]
    pub fix: bool,
}
