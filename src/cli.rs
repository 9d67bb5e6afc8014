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
    #[arg(long, short, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print details on stderr: the workspace root, its layers, timings.
    #[arg(long, short, global = true)]
    pub verbose: bool,
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
        #[arg(value_parser = RuleId, hide_possible_values = true)]
        rule: String,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
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
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Create a workspace, or adopt an existing migration folder (--from).
    ///
    /// Writes strata.toml, the layer folders, rules/governance.toml,
    /// tenants.toml, a first core migration that passes every rule, and
    /// strata.sum; never overwrites an existing strata.toml.
    ///
    /// With --from, adopt an existing migration folder (any supported layout)
    /// as the core layer in place: nothing is renamed or copied.
    Init(InitArgs),
    /// Create the next migration of a layer and print its path.
    ///
    /// LAYER is `core`, `verticals/<vertical>` or `bespoke/<tenant>` (the
    /// folder of a new vertical or bespoke layer is created). NAME is turned
    /// into snake_case.
    New(NewArgs),
    /// Run the language server on stdin/stdout (for editors; see docs/editors.md).
    ///
    /// Diagnostics as you type, with the whole history of the workspace as
    /// context; code actions for fixes and suppressions; hover with the rule's
    /// documentation. Logs go to the editor, never to stdout.
    Lsp(LspArgs),
    /// Print a shell completion script (e.g. `strata completions bash > /etc/bash_completion.d/strata`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (e.g. `strata man > strata.1`), or
    /// write every page (strata.1 and one per subcommand, strata-check.1, ...)
    /// into a folder.
    Man {
        /// Write strata.1 and the subcommands' pages into this folder.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    // Live PostgreSQL: see docs/migrate.md.
    /// Apply pending migrations to tenant databases (exit 1 when a tenant failed).
    Migrate(MigrateArgs),
    /// One row per tenant: applied version per layer, pending count, last error.
    ///
    /// Exits 1 when a tenant is unreachable, behind, drifted or has a history problem.
    Status(StatusArgs),
    /// Compare live schemas with the applied migrations replayed into a scratch database.
    ///
    /// Prints a unified diff per drifted tenant; exits 1 on drift.
    Drift(DriftArgs),
    /// Take over databases migrated before strata: record migrations as applied without running them.
    ///
    /// `--to LAYER@VERSION` records each layer up to VERSION; `--from TOOL` reads
    /// what another migration tool applied from its history table. Either way the
    /// live schema must first match the replay of what is recorded (`--force`
    /// skips that gate after review). Exits 1 when a tenant was refused, drifted
    /// or failed. See docs/adopting.md.
    Baseline(BaselineArgs),
    /// Provision tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    // Isolation proofs: see docs/isolation.md.
    /// Prove tenant isolation live: RLS catalog checks and a rolled-back probe as the app role.
    ///
    /// Exits 1 on any leak, 2 when a tenant could not be verified.
    VerifyIsolation(VerifyIsolationArgs),
    // Phased cutovers: see docs/cutovers.md.
    /// Print the phased plan of a cutover file: every step, its gate and its rollback.
    Plan(PlanArgs),
    /// Execute a phased cutover: run, status, flip a worker, roll back.
    Cutover {
        #[command(subcommand)]
        command: CutoverCommand,
    },
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Files or folders to report on (default: the whole workspace; with
    /// --since or --staged: narrows the changed files to those under PATHS).
    pub paths: Vec<PathBuf>,
    /// Report on the migration files changed since this git revision,
    /// committed or not, and on new migrations not yet added to git.
    #[arg(long, value_name = "REV", conflicts_with = "staged")]
    pub since: Option<String>,
    /// Report on the migration files staged in git (for pre-commit hooks).
    /// Staged files that are no migration of any layer are skipped (listed
    /// with --verbose).
    #[arg(long)]
    pub staged: bool,
    /// Ignore any workspace: check PATHS as a plain migration sequence.
    #[arg(long)]
    pub no_workspace: bool,
    /// Do not read or write the replayed-history cache (see STRATA_CACHE_DIR).
    #[arg(long)]
    pub no_cache: bool,
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
    /// Where docs/rules.md is published: the markdown format links each rule to `<URL>#<rule>`.
    #[arg(long, value_name = "URL", env = "STRATA_DOCS_URL", default_value = crate::rules::docs::DEFAULT_DOCS_URL)]
    pub docs_url: String,
    /// Also apply the files under review to a scratch database (`auto`: a
    /// throwaway cluster; or a server's maintenance-database URL) and report
    /// the locks and rewrites they really cause (see docs/isolation.md).
    #[arg(long, value_name = "auto|URL")]
    pub shadow: Option<String>,
    /// Record every current finding in the findings baseline (the file
    /// `paths.baseline` of strata.toml names; added there when missing):
    /// later checks report only findings it does not accept.
    #[arg(long, conflicts_with_all = ["fix", "no_baseline"])]
    pub write_baseline: bool,
    /// Report every finding, the accepted ones too (ignore the findings baseline).
    #[arg(long)]
    pub no_baseline: bool,
}

/// Arguments of `strata lsp`.
#[derive(Debug, clap::Args)]
pub struct LspArgs {
    /// Talk over stdin/stdout (the only transport; accepted because editor clients pass it).
    #[arg(long)]
    pub stdio: bool,
    /// Where docs/rules.md is published: diagnostics link each rule to `<URL>#<rule>`
    /// (an editor may override it with the `docsUrl` initialization option).
    #[arg(long, value_name = "URL", env = "STRATA_DOCS_URL", default_value = crate::rules::docs::DEFAULT_DOCS_URL)]
    pub docs_url: String,
}

/// Arguments of `strata init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The folder of the new workspace (created when missing; default: the working directory).
    pub dir: Option<PathBuf>,
    /// Adopt this existing migration folder as the core layer (its layout is detected).
    #[arg(long, value_name = "MIGRATIONS_DIR")]
    pub from: Option<PathBuf>,
    /// The layout of the --from folder, when detection cannot tell: native, sqlx,
    /// flyway, golang-migrate, pop, diesel, prisma, dbmate, goose or plain.
    #[arg(long, value_name = "NAME", requires = "from")]
    pub layout: Option<String>,
}

/// Arguments of `strata new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// `core`, `verticals/<vertical>` or `bespoke/<tenant>`.
    pub layer: String,
    /// What the migration does, e.g. `add_notes` (normalized to snake_case).
    pub name: String,
}

/// Arguments of `strata migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Migrate this tenant (repeatable).
    #[arg(long = "tenant", value_name = "SLUG", conflicts_with = "all")]
    pub tenants: Vec<String>,
    /// Migrate every tenant of tenants.toml (through the control plane when one is configured).
    #[arg(long)]
    pub all: bool,
    /// Show what would be applied; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Tenants migrated at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// A wave of tenants by label: LABEL=VALUE, a bare VALUE (wave=VALUE) or `*` (the rest).
    /// Repeat for successive waves; a wave starts only when the previous one had no failure.
    #[arg(long = "wave", value_name = "LABEL=VALUE")]
    pub waves: Vec<String>,
    /// Stop starting new tenants after N failures (N ≥ 1; running ones finish).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_failures: Option<usize>,
    /// Seconds to wait for another migrator's lock on a database.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lock_wait: u64,
    /// Run even when applied migrations were changed or removed on disk (after review).
    #[arg(long)]
    pub allow_changed: bool,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Arguments of `strata baseline`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["to", "from"])))]
pub struct BaselineArgs {
    /// Baseline this tenant (repeatable).
    #[arg(long = "tenant", value_name = "SLUG", conflicts_with = "all")]
    pub tenants: Vec<String>,
    /// Baseline every tenant of tenants.toml.
    #[arg(long)]
    pub all: bool,
    /// Record LAYER's migrations up to VERSION as applied (repeatable, one per
    /// layer); the layers below it in a tenant's composition are recorded whole.
    #[arg(long = "to", value_name = "LAYER@VERSION", conflicts_with = "from")]
    pub to: Vec<String>,
    /// Record what this tool applied: sqlx, golang-migrate, dbmate, goose, flyway,
    /// diesel, prisma or pop (its history table is read, never written).
    #[arg(long, value_name = "TOOL")]
    pub from: Option<String>,
    /// The tool's history table when it is not the tool's default: [schema.]name.
    #[arg(long, value_name = "TABLE", requires = "from")]
    pub table: Option<String>,
    /// The layer the tool migrated.
    #[arg(long, value_name = "LAYER", default_value = "core", requires = "from")]
    pub layer: String,
    /// Record even when the live schema differs from the replay (after review of the diff).
    #[arg(long)]
    pub force: bool,
    /// Show the mapping and what would be recorded; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where to replay the expected schema for the drift gate: `auto` (a throwaway
    /// cluster), a URL of another server's maintenance database, or (default) the
    /// tenant's own server.
    #[arg(long, value_name = "auto|URL")]
    pub scratch: Option<String>,
    /// Tenants baselined at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Stop starting new tenants after N failures (N ≥ 1; running ones finish).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub max_failures: Option<usize>,
    /// Seconds to wait for another migrator's lock on a database.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lock_wait: u64,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Arguments of `strata status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this tenant (repeatable; default: all).
    #[arg(long = "tenant", value_name = "SLUG")]
    pub tenants: Vec<String>,
    /// Also check drift (replays the schema into a scratch database: slower).
    #[arg(long)]
    pub drift: bool,
    /// Tenants read at once.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Arguments of `strata drift`.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Only this tenant (repeatable; default: all).
    #[arg(long = "tenant", value_name = "SLUG", conflicts_with = "all")]
    pub tenants: Vec<String>,
    /// Every tenant of tenants.toml (the default; as `migrate --all` and
    /// `verify-isolation --all` say it).
    #[arg(long)]
    pub all: bool,
    /// Where to replay the expected schema: `auto` (a throwaway cluster), a URL of
    /// another server's maintenance database, or (default) the tenant's own server.
    #[arg(long, value_name = "auto|URL")]
    pub scratch: Option<String>,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create the tenant's database (if missing), apply its composed schema, register it in tenants.toml.
    Create(TenantCreateArgs),
}

/// Arguments of `strata tenant create`.
#[derive(Debug, clap::Args)]
pub struct TenantCreateArgs {
    /// The new tenant's slug ([a-z0-9-]+).
    pub slug: String,
    /// Its vertical (a folder under schema/verticals).
    #[arg(long)]
    pub vertical: Option<String>,
    /// Its bespoke layer (a folder under schema/bespoke).
    #[arg(long)]
    pub bespoke: Option<String>,
    /// Its database: a URL or key=value string without a password, or env:VAR.
    #[arg(long, value_name = "URL")]
    pub database: String,
    /// A label (repeatable), e.g. wave=early.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Seconds to wait for another migrator's lock.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub lock_wait: u64,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// Arguments of `strata verify-isolation`.
#[derive(Debug, clap::Args)]
pub struct VerifyIsolationArgs {
    /// Verify this tenant (repeatable).
    #[arg(long = "tenant", value_name = "SLUG", conflicts_with = "all")]
    pub tenants: Vec<String>,
    /// Verify every tenant of tenants.toml.
    #[arg(long)]
    pub all: bool,
    /// Exit 1 unless the live probe proved every table under row level
    /// security (a table it could not seed counts against coverage).
    #[arg(long)]
    pub require_full_coverage: bool,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}
/// Arguments of `strata plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The cutover file (or its name under the workspace's cutovers/ folder).
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,
}

/// How long each reader flip soaks, when the operator overrides the file's `[flip] soak`.
#[derive(Debug, Default, clap::Args)]
pub struct SoakArgs {
    /// Soak each reader flip this long instead of the file's `[flip] soak` (e.g. `5m`, `30s`, `0s`); recorded on the step.
    #[arg(long, value_name = "DURATION", conflicts_with = "skip_soak")]
    pub soak: Option<String>,
    /// Skip the soak of the reader flips (the gate still runs); needs --reason, which is recorded in the control plane.
    #[arg(long, requires = "reason")]
    pub skip_soak: bool,
    /// Why the soak is skipped (recorded with the step).
    #[arg(long, value_name = "TEXT", requires = "skip_soak")]
    pub reason: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CutoverCommand {
    /// Run (or resume) the cutover in every tenant, up to and including a step.
    ///
    /// Exits 1 when a tenant failed, a gate refused, or contract was asked for before its retention window ended;
    /// 130 (SIGINT) or 143 (SIGTERM) when stopped: the step in progress is recorded interrupted and the same command
    /// resumes it.
    Run {
        /// The cutover file (or its name under cutovers/).
        file: PathBuf,
        /// Stop after this step (e.g. `backfill`, `verify`, `flip-reader:inbox`, `contract`).
        #[arg(long, value_name = "STEP")]
        until: Option<String>,
        /// Tenants of a wave run at once by this process (other processes running the same command share the tenants).
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        #[command(flatten)]
        soak: SoakArgs,
        /// Print the SQL each step would execute (computed from the databases' catalogs), and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Every tenant's run: status, steps done, current step and its figures, worker routes, warnings.
    ///
    /// Exits 1 when a run failed, was interrupted, did not finish its rollback, or a route points at a database that
    /// does not answer.
    Status {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Flip one worker's reads to the new shape (the next flip-reader step), soak, gate, in every tenant.
    Flip {
        file: PathBuf,
        /// A worker of the cutover's flip.workers.
        worker: String,
        /// Tenants flipped (and soaked) at once.
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        concurrency: u16,
        #[command(flatten)]
        soak: SoakArgs,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Undo everything before contract (a move: before flip-writers): routes back to old, the new objects dropped.
    ///
    /// A rollback that fails half way leaves the run `rolling-back`; running it again finishes it.
    Rollback {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
}

/// `--max-failures N`: "stop after N failures" needs N ≥ 1 (0 would start nothing).
fn at_least_one(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(0) => Err("0 would start no tenant: N is the number of failures after which no new tenant starts (1 stops at the first)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// A rule id argument: any text (an unknown id gets strata's own error with
/// a did-you-mean), with the ids as possible values for shell completions.
#[derive(Clone, Copy, Debug)]
pub struct RuleId;

impl clap::builder::TypedValueParser for RuleId {
    type Value = String;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &std::ffi::OsStr) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::rules::ALL
                .iter()
                .map(|m| clap::builder::PossibleValue::new(m.id).help(m.summary)),
        ))
    }
}
