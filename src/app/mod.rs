//! Command implementations: turn parsed arguments into settings, run, and
//! return an exit code. Per-file problems raise the final status; errors that
//! stop the tool are returned and become exit code 2.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

mod cutover;
mod cutover_terminal;
mod fleet;
mod isolation;

use crate::check;
use crate::cli::{CheckArgs, Cli, ColorChoice, Command, InitArgs, ListFormat, NewArgs};
use crate::report::{self, RenderOptions, Severity};
use crate::rules;
use crate::workspace::{scaffold, sum, LayerKind, Layout, Workspace};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// Whether an error is a closed stdout (`strata check | head`): exit quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().and_then(|e| e.io_error_kind()) == Some(io::ErrorKind::BrokenPipe)
    })
}

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let opts = RenderOptions {
        color,
        quiet: cli.quiet,
        ..RenderOptions::default()
    };
    let started = std::time::Instant::now();
    let ws = |cli: &Cli| load_workspace(cli.workspace.as_deref(), cli.verbose);
    let standalone = matches!(
        cli.command,
        Command::Init(_)
            | Command::Rules { .. }
            | Command::Explain { .. }
            | Command::Lsp(_)
            | Command::Completions { .. }
            | Command::Man { .. }
    );
    if !standalone && !cli.quiet {
        config_warning(cli.workspace.as_deref());
    }
    let code = match &cli.command {
        Command::Check(args) => cmd_check(cli.workspace.as_deref(), args, &opts, cli.verbose),
        Command::Rules { format } => cmd_rules(*format),
        Command::Explain { rule, format } => cmd_explain(rule, *format),
        Command::Ls { tenant, format } => cmd_ls(&ws(&cli)?, tenant.as_deref(), *format),
        Command::Sum { check, format } => cmd_sum(&ws(&cli)?, *check, *format),
        Command::Init(args) => cmd_init(args, cli.quiet),
        Command::New(args) => cmd_new(&ws(&cli)?, args),
        Command::Lsp(args) => cmd_lsp(args),
        Command::Completions { shell } => cmd_completions(*shell),
        Command::Man { out_dir } => cmd_man(out_dir.as_deref()),
        // Live PostgreSQL: the fleet commands (app/fleet.rs).
        Command::Migrate(args) => fleet::migrate(&ws(&cli)?, args, cli.quiet),
        Command::Status(args) => fleet::status(&ws(&cli)?, args),
        Command::Drift(args) => fleet::drift(&ws(&cli)?, args),
        Command::Baseline(args) => fleet::baseline(ws(&cli)?, args, cli.quiet),
        Command::Tenant {
            command: crate::cli::TenantCommand::Create(args),
        } => fleet::tenant_create(&ws(&cli)?, args),
        // Isolation proofs against live databases (app/isolation.rs).
        Command::VerifyIsolation(args) => isolation::verify_isolation(&ws(&cli)?, args),
        // Phased cutovers (app/cutover.rs).
        Command::Plan(args) => cutover::plan(optional_workspace(cli.workspace.as_deref())?.as_ref(), args),
        Command::Cutover { command } => cutover::cutover(optional_workspace(cli.workspace.as_deref())?.as_ref(), command, cli.quiet),
    };
    if cli.verbose {
        eprintln!("strata: done in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    }
    code
}

/// The workspace given with `--workspace`, or found upwards from the
/// working directory.
fn find_workspace(explicit: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(dir) = explicit {
        if !dir.join(crate::workspace::CONFIG_FILE).is_file() {
            bail!("{}: no strata.toml in this folder (given with --workspace)", dir.display());
        }
        return Ok(Some(dir.to_path_buf()));
    }
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    Ok(Workspace::find(&cwd))
}

/// The warning of the workspace's strata.toml (an unsupported `pg_version`),
/// on stderr. A strata.toml that does not load is reported by the command.
fn config_warning(explicit: Option<&Path>) {
    let Ok(Some(root)) = find_workspace(explicit) else { return };
    let path = root.join(crate::workspace::CONFIG_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let Ok(config) = crate::workspace::Config::parse(&path, &text) else {
        return;
    };
    if let Some(w) = config.warning(&path, &text) {
        eprintln!("strata: warning: {w}");
    }
}

fn load_workspace(explicit: Option<&Path>, verbose: bool) -> anyhow::Result<Workspace> {
    match find_workspace(explicit)? {
        Some(root) => {
            let started = std::time::Instant::now();
            let ws = Workspace::load(&root)?;
            if verbose {
                describe_workspace(&ws, started.elapsed());
            }
            Ok(ws)
        }
        None => bail!("no strata.toml found in this folder or any parent (run `strata init`, or pass --workspace DIR)"),
    }
}

/// `--verbose`: the workspace root, its layers and tenants, on stderr.
fn describe_workspace(ws: &Workspace, load_time: std::time::Duration) {
    eprintln!(
        "strata: workspace {} ({}, tenancy {}, pg {}), loaded in {:.1} ms",
        ws.root.display(),
        ws.config.name,
        match ws.config.tenancy.mode {
            crate::workspace::TenancyMode::DatabasePerTenant => "database-per-tenant",
            crate::workspace::TenancyMode::Shared => "shared",
        },
        ws.config.pg_version,
        load_time.as_secs_f64() * 1000.0
    );
    for l in &ws.layers {
        eprintln!(
            "strata:   layer {:<24} {:<14} {:>4} migrations  {}",
            l.id(),
            l.layout.name(),
            l.migrations.len(),
            ws.display(&l.dir)
        );
    }
    eprintln!("strata:   {} tenants", ws.tenants.len());
}

/// The workspace if there is one (a `move` cutover needs none).
fn optional_workspace(explicit: Option<&Path>) -> anyhow::Result<Option<Workspace>> {
    Ok(find_workspace(explicit)?.map(|root| Workspace::load(&root)).transpose()?)
}

/// The output of a git command, split on `sep`, empty items dropped.
fn git_output(args: &[&str], cwd: &Path, sep: char) -> anyhow::Result<Vec<String>> {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        return Err(crate::Error::Git(String::from_utf8_lossy(&out.stderr).trim().to_string()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .split(sep)
        .map(|l| l.trim_end_matches(['\n', '\r']).to_string())
        .filter(|l| !l.is_empty())
        .collect())
}

/// Files changed since `rev` (committed or not, and files git does not
/// track yet: a new migration is often not added before the check), or
/// staged, as absolute paths. Names are read NUL-separated, so spaces,
/// quotes and any Unicode survive (git would otherwise quote them).
fn git_changed(root: &Path, since: Option<&str>, staged: bool) -> anyhow::Result<Vec<PathBuf>> {
    let top = git_output(&["rev-parse", "--show-toplevel"], root, '\n')?;
    let top = PathBuf::from(top.first().context("git rev-parse printed nothing")?);
    let mut args = vec!["diff", "--name-only", "-z", "--diff-filter=ACMR"];
    if staged {
        args.push("--cached");
    }
    if let Some(rev) = since {
        args.push(rev);
    }
    let mut files = git_output(&args, root, '\0')?;
    if since.is_some() {
        files.extend(git_output(
            &["ls-files", "--others", "--exclude-standard", "--full-name", "-z"],
            root,
            '\0',
        )?);
    }
    let mut paths: Vec<PathBuf> = files.into_iter().map(|f| top.join(f)).filter(|p| p.exists()).collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The changed `.sql` files to report on: those under `narrow` (when
/// given) that are migrations of a layer. The others are listed with
/// `--verbose`.
fn changed_migrations(root: &Path, changed: Vec<PathBuf>, narrow: &[PathBuf], verbose: bool) -> anyhow::Result<Vec<PathBuf>> {
    let ws = Workspace::load(root)?;
    let narrow: Vec<PathBuf> = narrow.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
    let (migrations, others) = check::split_migrations(&ws, changed.into_iter().filter(|p| p.extension().is_some_and(|e| e == "sql")));
    let wanted = |p: &PathBuf| narrow.is_empty() || narrow.iter().any(|n| p.starts_with(n));
    if verbose {
        for p in others.iter().filter(|p| wanted(p)) {
            eprintln!("strata: skipped {}: not a migration of any layer", p.display());
        }
    }
    Ok(migrations.into_iter().filter(wanted).collect())
}

/// What `strata check` checks, kept so that `--fix` can check again.
enum CheckTarget {
    /// A workspace; `review` lists the files or folders to report on
    /// (`None`: every layer).
    Workspace {
        root: PathBuf,
        review: Option<Vec<PathBuf>>,
        use_cache: bool,
    },
    /// Plain files or folders outside any workspace, resolved from `cwd`.
    Plain { paths: Vec<PathBuf>, cwd: PathBuf },
}

impl CheckTarget {
    fn check(&self) -> anyhow::Result<report::CheckReport> {
        Ok(match self {
            CheckTarget::Workspace { root, review, use_cache } => {
                let ws = Workspace::load(root)?;
                let set = match review {
                    None => None,
                    Some(paths) => check::review_set(&ws, paths)?.or_else(|| Some(Default::default())),
                };
                check::check_workspace_cached(&ws, &set, *use_cache)?
            }
            CheckTarget::Plain { paths, cwd } => check::check_files(paths, cwd)?,
        })
    }

    /// Where the paths shown in diagnostics are relative to.
    fn base(&self) -> &Path {
        match self {
            CheckTarget::Workspace { root, .. } => root,
            CheckTarget::Plain { cwd, .. } => cwd,
        }
    }

    /// Reports on migrations `--fix` created next to the files under review.
    fn include_created(&mut self, created: impl Iterator<Item = PathBuf>) {
        let list = match self {
            CheckTarget::Workspace { review: Some(list), .. } | CheckTarget::Plain { paths: list, .. } => list,
            CheckTarget::Workspace { review: None, .. } => return,
        };
        for path in created {
            let covered = list.iter().any(|p| p.is_dir() && path.starts_with(p));
            if !covered {
                list.push(path);
            }
        }
    }
}

fn cmd_check(explicit_ws: Option<&Path>, args: &CheckArgs, opts: &RenderOptions, verbose: bool) -> anyhow::Result<u8> {
    let root = if args.no_workspace {
        None
    } else {
        // A pre-commit hook runs at the repository root and passes paths:
        // a workspace in a subfolder is found from the first path.
        find_workspace(explicit_ws)?.or_else(|| args.paths.first().and_then(|p| Workspace::find(p.parent().unwrap_or(p))))
    };
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    // Paths that all lie outside the workspace are checked as plain files.
    let outside = |root: &Path| {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        !args.paths.is_empty() && args.paths.iter().all(|p| p.canonicalize().is_ok_and(|c| !c.starts_with(&root)))
    };
    let mut target = match root {
        Some(root) if !outside(&root) => {
            let review = if args.since.is_some() || args.staged {
                let changed = git_changed(&root, args.since.as_deref(), args.staged)?;
                Some(changed_migrations(&root, changed, &args.paths, verbose)?)
            } else {
                (!args.paths.is_empty()).then(|| args.paths.clone())
            };
            if verbose {
                let started = std::time::Instant::now();
                describe_workspace(&Workspace::load(&root)?, started.elapsed());
                match &review {
                    None => eprintln!("strata: reporting on every layer"),
                    Some(list) => eprintln!("strata: reporting on {} path(s); the whole history is context", list.len()),
                }
            }
            CheckTarget::Workspace {
                root,
                review,
                use_cache: !args.no_cache,
            }
        }
        _ => {
            if args.paths.is_empty() {
                bail!("no workspace here (no strata.toml upwards): give the migration files or folders to check");
            }
            if args.since.is_some() || args.staged {
                bail!("--since and --staged need a workspace (strata.toml)");
            }
            CheckTarget::Plain {
                paths: args.paths.clone(),
                cwd,
            }
        }
    };
    let started = std::time::Instant::now();
    let mut report = target.check()?;
    if verbose {
        eprintln!("strata: checked in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
    }
    let stdout = io::stdout();
    let mut w = io::BufWriter::new(stdout.lock());
    if args.fix {
        let plan = crate::fix::plan(&report, target.base())?;
        crate::fix::write(&plan)?;
        // The diff goes to stdout with the text report; machine formats keep
        // stdout parseable and get it on stderr.
        if args.format == report::Format::Text {
            crate::fix::render(&plan, &mut w)?;
            writeln!(w)?;
        } else {
            crate::fix::render(&plan, &mut io::stderr().lock())?;
        }
        target.include_created(plan.created().map(|c| c.path.clone()));
        report = target.check()?;
    }
    if let Some(spec) = &args.shadow {
        merge_shadow(&target, spec, &mut report)?;
    }
    if let Some(code) = findings_baseline(&target, args, &mut report)? {
        return Ok(code);
    }
    let opts = RenderOptions {
        docs_url: args.docs_url.clone(),
        deny_warnings: args.deny_warnings,
        ..opts.clone()
    };
    report::render(args.format, &report, rules::ALL, &opts, &mut w)?;
    w.flush()?;
    let failing = report.count(Severity::Error) > 0 || (args.deny_warnings && report.count(Severity::Warning) > 0);
    Ok(if failing { EXIT_FINDINGS } else { EXIT_OK })
}

/// The findings baseline: `--write-baseline` records the report's findings
/// (and ends the command: `Some(exit code)`); otherwise the accepted
/// findings leave the report, unless `--no-baseline`.
fn findings_baseline(target: &CheckTarget, args: &CheckArgs, report: &mut report::CheckReport) -> anyhow::Result<Option<u8>> {
    let CheckTarget::Workspace { root, .. } = target else {
        if args.write_baseline {
            bail!("--write-baseline needs a workspace (strata.toml): the baseline is named there");
        }
        return Ok(None);
    };
    let ws = Workspace::load(root)?;
    if args.write_baseline {
        eprintln!("{}", crate::accepted::write_for(&ws, report)?);
        return Ok(Some(EXIT_OK));
    }
    if args.no_baseline {
        return Ok(None);
    }
    if let Some(path) = crate::accepted::configured_path(&ws) {
        crate::accepted::Baseline::load(&path)?.apply(report);
    }
    Ok(None)
}

/// `--shadow`: adds what the shadow run observed to the static report (a
/// finding the static rules already made on the same line, or with the same
/// message inside the statement the shadow finding points at, is kept once:
/// the static one, positioned inside the body).
fn merge_shadow(target: &CheckTarget, spec: &str, report: &mut report::CheckReport) -> anyhow::Result<()> {
    let CheckTarget::Workspace {
        root, review: Some(paths), ..
    } = target
    else {
        bail!("--shadow needs a workspace and the files to review (PATHS, --since or --staged)");
    };
    let ws = Workspace::load(root)?;
    let set = check::review_set(&ws, paths)?.unwrap_or_default();
    let server = crate::pg::shadow::ShadowServer::parse(spec)?;
    let found = crate::check::shadow::check(&ws, &set, &server).context("--shadow")?;
    for note in &found.notes {
        eprintln!("strata: --shadow: {note}");
    }
    // A suppression that silenced a shadow finding is used after all.
    report.diagnostics.retain(|d| {
        d.rule != "unused-suppression"
            || !found
                .used_suppressions
                .iter()
                .any(|(file, region)| *file == d.file.path && region.start == d.region.start)
    });
    let statics = report.diagnostics.len();
    for d in found.diagnostics {
        // The static pass reads DO blocks and constant EXECUTE strings: its
        // finding sits inside the statement the shadow run attributes the
        // same finding to (the whole DO block).
        let inside =
            |x: &report::Diagnostic| (d.region.start.line..=d.region.end.line).contains(&x.region.start.line) && x.message == d.message;
        let seen = report.diagnostics[..statics]
            .iter()
            .any(|x| x.rule == d.rule && x.file.path == d.file.path && (x.region.start.line == d.region.start.line || inside(x)));
        if !seen {
            report.diagnostics.push(d);
        }
    }
    report.sort();
    Ok(())
}

fn cmd_rules(format: ListFormat) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    match format {
        ListFormat::Json => {
            let list: Vec<_> = rules::ALL
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "id": m.id, "group": m.group.as_str(), "default_severity": m.default_severity.as_str(),
                        "summary": m.summary, "needs_workspace": m.needs_workspace,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut out, &list)?;
            writeln!(out)?;
        }
        ListFormat::Text => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["id", "group", "default", "summary"]);
            for m in rules::ALL {
                table.add_row([m.id, m.group.as_str(), m.default_severity.as_str(), m.summary]);
            }
            writeln!(out, "{table}")?;
        }
    }
    Ok(EXIT_OK)
}

fn cmd_explain(rule: &str, format: ListFormat) -> anyhow::Result<u8> {
    let Some(meta) = rules::meta_of(rule) else {
        let hint = rules::did_you_mean(rule);
        return Err(crate::Error::Usage(format!("unknown rule `{rule}`{hint}; `strata rules` lists them")).into());
    };
    let mut out = io::stdout().lock();
    if format == ListFormat::Json {
        let doc = serde_json::json!({
            "id": meta.id, "group": meta.group.as_str(), "default_severity": meta.default_severity.as_str(),
            "summary": meta.summary, "needs_workspace": meta.needs_workspace, "doc": meta.doc_text(),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "# {}\n", meta.id)?;
    writeln!(
        out,
        "group: {} · default severity: {}\n",
        meta.group.as_str(),
        meta.default_severity.as_str()
    )?;
    writeln!(out, "{}", meta.doc_text())?;
    Ok(EXIT_OK)
}

fn cmd_ls(ws: &Workspace, tenant: Option<&str>, format: ListFormat) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    let sequence = |layers: &[usize]| -> Vec<(String, String)> {
        layers
            .iter()
            .flat_map(|&li| {
                let l = &ws.layers[li];
                l.migrations.iter().map(move |m| (l.id(), ws.display(&m.path)))
            })
            .collect()
    };
    if let Some(slug) = tenant {
        let t = ws
            .tenant(slug)
            .ok_or_else(|| crate::Error::Usage(format!("unknown tenant `{slug}` (not in tenants.toml)")))?;
        let seq = sequence(&ws.tenant_layers(t));
        if format == ListFormat::Json {
            let items: Vec<_> = seq.iter().map(|(l, p)| serde_json::json!({"layer": l, "path": p})).collect();
            serde_json::to_writer_pretty(&mut out, &serde_json::json!({"tenant": t, "migrations": items}))?;
            writeln!(out)?;
            return Ok(EXIT_OK);
        }
        writeln!(
            out,
            "{} (vertical: {}, bespoke: {}): {} migrations",
            t.slug,
            t.vertical.as_deref().unwrap_or("none"),
            t.bespoke.as_deref().unwrap_or("none"),
            seq.len()
        )?;
        let width = seq.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (l, p) in seq {
            writeln!(out, "  {l:width$}  {p}")?;
        }
        return Ok(EXIT_OK);
    }
    if format == ListFormat::Json {
        let layers: Vec<_> = ws
            .layers
            .iter()
            .map(|l| {
                serde_json::json!({"layer": l.id(), "layout": l.layout.name(),
                "migrations": l.migrations.iter().map(|m| ws.display(&m.path)).collect::<Vec<_>>()})
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({"layers": layers, "tenants": ws.tenants}))?;
        writeln!(out)?;
        return Ok(EXIT_OK);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["layer", "layout", "migrations", "head", "tenants"]);
    for l in &ws.layers {
        let users: Vec<&str> = ws
            .tenants
            .iter()
            .filter(|t| match l.kind {
                crate::workspace::LayerKind::Core => true,
                crate::workspace::LayerKind::Vertical => t.vertical.as_deref() == Some(l.name.as_str()),
                crate::workspace::LayerKind::Bespoke => t.bespoke.as_deref() == Some(l.name.as_str()),
            })
            .map(|t| t.slug.as_str())
            .collect();
        table.add_row([
            l.id(),
            l.layout.name().to_string(),
            l.migrations.len().to_string(),
            l.migrations.last().map(|m| m.file_name()).unwrap_or_else(|| "-".into()),
            users.join(", "),
        ]);
    }
    writeln!(out, "{table}")?;
    // Then each layer's history in apply order (`--tenant` composes them).
    for l in &ws.layers {
        writeln!(
            out,
            "\n{} ({}): {} migrations in apply order",
            l.id(),
            l.layout.name(),
            l.migrations.len()
        )?;
        let width = l.migrations.len().to_string().len();
        for (i, m) in l.migrations.iter().enumerate() {
            writeln!(out, "  {:>width$}  {}", i + 1, ws.display(&m.path))?;
        }
    }
    Ok(EXIT_OK)
}

fn cmd_sum(ws: &Workspace, check_only: bool, format: ListFormat) -> anyhow::Result<u8> {
    let entries = sum::compute(ws)?;
    let rendered = sum::render(&entries);
    let path = ws.root.join(&ws.config.paths.sum);
    let shown = ws.display(&path);
    let up_to_date = std::fs::read_to_string(&path).is_ok_and(|current| current == rendered);
    if !check_only {
        std::fs::write(&path, rendered).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if format == ListFormat::Json {
        let v = serde_json::json!({
            "path": shown, "migrations": entries.len(),
            "up_to_date": up_to_date || !check_only, "written": !check_only,
        });
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else if !check_only {
        writeln!(io::stdout(), "{shown}: {} migrations released", entries.len())?;
    } else if up_to_date {
        writeln!(io::stdout(), "{shown}: up to date ({} migrations)", entries.len())?;
    } else {
        writeln!(
            io::stdout(),
            "{shown}: out of date; run `strata sum` to release the current migrations"
        )?;
    }
    Ok(if check_only && !up_to_date { EXIT_FINDINGS } else { EXIT_OK })
}

fn cmd_init(args: &InitArgs, quiet: bool) -> anyhow::Result<u8> {
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    let root = args.dir.as_ref().map_or_else(|| cwd.clone(), |d| cwd.join(d));
    let from = args.from.as_ref().map(|f| cwd.join(f));
    let layout = match args.layout.as_deref() {
        None => None,
        Some(name) => Some(
            Layout::from_name(name)
                .ok_or_else(|| crate::Error::Usage(format!("--layout `{name}`: expected one of {}", Layout::NAMES.join(", "))))?,
        ),
    };
    let report = scaffold::init(&root, from.as_deref(), layout)?;
    let released = sum::write(&root)?;
    if quiet {
        return Ok(EXIT_OK);
    }
    let mut out = io::stdout().lock();
    writeln!(out, "created a strata workspace in {}", root.display())?;
    for f in &report.created {
        writeln!(out, "  created {f}")?;
    }
    for f in &report.kept {
        writeln!(out, "  kept    {f} (exists)")?;
    }
    writeln!(out, "  wrote   strata.sum ({released} migrations released)")?;
    match &report.adopted {
        Some(a) => {
            writeln!(
                out,
                "adopted {} {} migrations as the core layer, in place ({})",
                a.migrations,
                a.layout.name(),
                a.evidence
            )?;
            render_left_out(&mut out, &a.left_out)?;
            writeln!(
                out,
                "next: `strata check` shows what the rules think of the history; to accept it as it is and be told \
                 only of new findings, run `strata check --write-baseline` (it records today's findings in \
                 strata-baseline.json; commit it)"
            )?;
            if !a.orbis {
                writeln!(
                    out,
                    "the Orbis governance rules are off (no `contacts` person table or canonical state homes in the history): \
                     rules/governance.toml says how to turn them on"
                )?;
            }
        }
        None => writeln!(out, "next: `strata new core add_notes`, then `strata check`")?,
    }
    Ok(EXIT_OK)
}

/// What `init --from` left out, grouped by reason, with a few examples each.
fn render_left_out(out: &mut impl Write, left_out: &[crate::workspace::LeftOut]) -> io::Result<()> {
    if left_out.is_empty() {
        return writeln!(out, "left out nothing: every file is a forward migration");
    }
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for l in left_out {
        let reason = l.reason.describe();
        match groups.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, files)) => files.push(&l.rel),
            None => groups.push((reason, vec![&l.rel])),
        }
    }
    writeln!(out, "left out {} files:", left_out.len())?;
    let width = groups.iter().map(|(_, f)| f.len().to_string().len()).max().unwrap_or(1);
    for (reason, files) in &groups {
        let shown: Vec<&str> = files.iter().take(3).copied().collect();
        let more = if files.len() > 3 {
            format!(", and {} more", files.len() - 3)
        } else {
            String::new()
        };
        writeln!(out, "  {:>width$} {reason}: {}{more}", files.len(), shown.join(", "))?;
    }
    Ok(())
}

fn cmd_new(ws: &Workspace, args: &NewArgs) -> anyhow::Result<u8> {
    let layer = scaffold::LayerName::parse(&args.layer)?;
    let name = scaffold::snake_case(&args.name)?;
    let dir = scaffold::layer_dir(&ws.root, &ws.config, &layer);
    let existing = ws
        .layer(layer.kind, &layer.name)
        .map(|i| ws.layers[i].migrations.as_slice())
        .unwrap_or(&[]);
    // An empty layer follows the core layer's layout (native in a new workspace).
    let fallback = ws
        .layer(LayerKind::Core, "core")
        .map(|i| &ws.layers[i])
        .filter(|l| !l.migrations.is_empty())
        .map_or(Layout::Native, |l| l.layout);
    let planned = scaffold::plan_new(
        &dir,
        &ws.config,
        existing,
        fallback,
        &layer.id(),
        &name,
        std::time::SystemTime::now(),
    )?;
    scaffold::write_new(&planned)?;
    if let Some((path, _)) = planned.files.first() {
        writeln!(io::stdout(), "{}", ws.display(path))?;
    }
    Ok(EXIT_OK)
}

/// `strata lsp`: serves until the editor says exit. stdout belongs to the
/// protocol; a failure to start or a broken connection is reported on stderr.
fn cmd_lsp(args: &crate::cli::LspArgs) -> anyhow::Result<u8> {
    let settings = crate::lsp::Settings {
        docs_url: args.docs_url.clone(),
    };
    match crate::lsp::run(settings).context("language server")? {
        crate::lsp::Ending::Shutdown => Ok(EXIT_OK),
        // The protocol asks for 1 when the client exits without shutdown.
        crate::lsp::Ending::Abrupt => Ok(EXIT_FINDINGS),
    }
}

fn cmd_completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // clap_complete panics when its writer fails: generate into memory.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, "strata", &mut script);
    // clap's fish script completes no positional values: add the rule ids
    // `explain` takes (bash and zsh get them from the argument's values).
    if shell == clap_complete::Shell::Fish {
        for m in rules::ALL {
            let summary = m.summary.replace('\\', "\\\\").replace('\'', "\\'");
            writeln!(
                script,
                "complete -c strata -n \"__fish_strata_using_subcommand explain\" -f -a \"{}\" -d '{summary}'",
                m.id
            )?;
        }
    }
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(EXIT_OK)
}

fn cmd_man(out_dir: Option<&Path>) -> anyhow::Result<u8> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let mut out = io::stdout().lock();
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        clap_mangen::generate_to(cmd, dir).map_err(|e| crate::Error::io(dir, e))?;
        let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| crate::Error::io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "1"))
            .collect();
        pages.sort();
        for p in pages {
            writeln!(out, "{}", p.display())?;
        }
        return Ok(EXIT_OK);
    }
    clap_mangen::Man::new(cmd).render(&mut out)?;
    out.flush()?;
    Ok(EXIT_OK)
}
