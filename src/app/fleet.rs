//! The live commands behind the CLI: `migrate`, `status`, `drift` and
//! `tenant create`. They turn arguments into settings, run on a tokio
//! runtime, render a comfy-table summary or JSON, and return the exit code
//! (0 all good, 1 a tenant failed / drifted / is behind, 2 via `Err`).

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use sha2::{Digest, Sha256};

use super::{EXIT_FINDINGS, EXIT_OK};
use crate::cli::{BaselineArgs, DriftArgs, ListFormat, MigrateArgs, StatusArgs, TenantCreateArgs};
use crate::fleet::control::{self, ControlPlane};
use crate::fleet::progress::{Mode, Reporter};
use crate::fleet::status::{tenant_status, DriftChecker, ScratchServer};
use crate::fleet::{provision, select, waves, MigrationSets, RunOptions, TenantReport, TenantStatus, WaveSelector};
use crate::pg::apply::{Options, Settings};
use crate::pg::Target;
use crate::workspace::{sum, Workspace};

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn app_role(ws: &Workspace) -> Option<String> {
    Some(ws.config.tenancy.app_role.clone()).filter(|r| !r.is_empty())
}

fn first_line(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or("");
    if line.chars().count() > max {
        format!("{}…", line.chars().take(max).collect::<String>())
    } else {
        line.to_string()
    }
}

fn progress_mode(format: ListFormat, quiet: bool) -> Mode {
    if format == ListFormat::Json || quiet {
        Mode::Silent
    } else if io::stdout().is_terminal() {
        Mode::Bars
    } else {
        Mode::Lines
    }
}

/// Identifies a rollout: the released migrations (the strata.sum chain of the
/// files on disk), the tenant list and the waves.
fn release_key(ws: &Workspace, plan: &[(String, i32)], selectors: &[WaveSelector]) -> anyhow::Result<String> {
    let entries = sum::compute(ws)?;
    let mut h = Sha256::new();
    h.update(entries.last().map(|e| e.chain.as_str()).unwrap_or(""));
    for s in selectors {
        h.update(b"\0wave:");
        h.update(s.describe().as_bytes());
    }
    for (slug, wave) in plan {
        h.update(format!("\0{slug}:{wave}").as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}

pub fn migrate(ws: &Workspace, args: &MigrateArgs, quiet: bool) -> anyhow::Result<u8> {
    if args.tenants.is_empty() && !args.all && args.waves.is_empty() {
        return Err(crate::Error::Usage("choose the tenants: --tenant SLUG (repeatable), --all, or --wave LABEL=VALUE".into()).into());
    }
    let selected = select(ws, &args.tenants)?;
    let selectors = args.waves.iter().map(|w| WaveSelector::parse(w)).collect::<Result<Vec<_>, _>>()?;
    let waves = waves(&selected, &selectors);
    let sets = MigrationSets::load(ws, &selected)?;
    let opts = RunOptions {
        apply: Options {
            settings: Settings::from_config(&ws.config),
            dry_run: args.dry_run,
            allow_changed: args.allow_changed,
            lock_wait: Duration::from_secs(args.lock_wait),
        },
        concurrency: usize::from(args.concurrency),
        max_failures: args.max_failures,
        app_role: app_role(ws),
        pg_version: ws.config.pg_version,
    };
    let total: usize = waves.iter().map(Vec::len).sum();
    let reporter = Arc::new(Reporter::new(progress_mode(args.format, quiet), total));
    let rt = crate::pg::runtime()?;
    let use_control_plane = ws.config.control_plane.as_deref().filter(|_| args.all && !args.dry_run);
    let (reports, run) = match use_control_plane {
        Some(spec) => {
            let plan: Vec<(String, i32)> = waves
                .iter()
                .enumerate()
                .flat_map(|(wi, w)| w.iter().map(move |t| (t.slug.clone(), wi as i32)))
                .collect();
            let release = release_key(ws, &plan, &selectors)?;
            let description = format!(
                "migrate --all{}",
                selectors.iter().map(|s| format!(" --wave {}", s.describe())).collect::<String>()
            );
            let all: Vec<_> = waves.iter().flatten().copied().collect();
            rt.block_on(async {
                let cp = ControlPlane::join(spec, &release, &description, &plan).await?;
                let reports = control::run_claimed(ws, &cp, &all, &sets, &opts, &reporter).await?;
                cp.finish(opts.max_failures).await?;
                let rows = cp.tenants().await?;
                Ok::<_, crate::pg::Error>((reports, Some((cp.run_id, cp.me.clone(), rows))))
            })
            .context("control plane")?
        }
        None => (rt.block_on(crate::fleet::run_waves(ws, waves, &sets, &opts, &reporter)), None),
    };
    reporter.finish();
    let failed = reports
        .iter()
        .any(|r| r.status.is_failure() || r.status == TenantStatus::NotStarted);
    let run_failed = run.as_ref().is_some_and(|(_, _, rows)| rows.iter().any(|r| r.status == "failed"));
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        let control_plane = run
            .as_ref()
            .map(|(id, me, rows)| serde_json::json!({"run_id": id, "runner": me, "tenants": rows}));
        let doc = serde_json::json!({
            "dry_run": args.dry_run,
            "tenants": reports,
            "control_plane": control_plane,
            "summary": counts(&reports),
        });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        render_migrate(&mut out, &reports, args.dry_run)?;
        if let Some((id, me, rows)) = &run {
            let others = rows.iter().filter(|r| r.claimed_by.as_deref() != Some(me.as_str())).count();
            let pending = rows.iter().filter(|r| r.status == "pending").count();
            writeln!(
                out,
                "control plane run {id}: this runner ({me}) migrated {}, other runners {others}, still pending {pending}",
                reports.len()
            )?;
        }
    }
    Ok(if failed || run_failed { EXIT_FINDINGS } else { EXIT_OK })
}

fn counts(reports: &[TenantReport]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::new();
    for r in reports {
        *c.entry(r.status.as_str()).or_insert(0) += 1;
    }
    c
}

/// The `postgres` column of the fleet tables: the version each tenant's
/// server runs (a fleet may span majors), `?` when it could not be read.
fn server_cell(version: Option<&str>) -> String {
    version.map_or_else(|| "?".into(), str::to_string)
}

fn render_migrate(out: &mut impl Write, reports: &[TenantReport], dry_run: bool) -> io::Result<()> {
    let mut t = table();
    t.set_header([
        "tenant",
        "postgres",
        if dry_run { "would apply" } else { "applied" },
        "skipped",
        "status",
        "error",
    ]);
    for r in reports {
        let applied = if dry_run { r.pending.len() } else { r.applied.len() };
        t.add_row([
            r.tenant.clone(),
            server_cell(r.server_version.as_deref()),
            applied.to_string(),
            r.skipped.to_string(),
            r.status.as_str().to_string(),
            r.error.as_deref().map(|e| first_line(e, 90)).unwrap_or_default(),
        ]);
    }
    writeln!(out, "{t}")?;
    if dry_run {
        for r in reports.iter().filter(|r| !r.pending.is_empty()) {
            writeln!(out, "{} would apply:", r.tenant)?;
            for p in &r.pending {
                writeln!(out, "  {p}")?;
            }
        }
    }
    for r in reports {
        for w in &r.warnings {
            writeln!(out, "warning: {}: {w}", r.tenant)?;
        }
    }
    let failures: Vec<&TenantReport> = reports.iter().filter(|r| r.status.is_failure()).collect();
    if !failures.is_empty() {
        writeln!(out, "errors:")?;
        for r in failures {
            writeln!(out, "  {}: {}", r.tenant, r.error.as_deref().unwrap_or(""))?;
        }
    }
    let summary: Vec<String> = counts(reports).iter().map(|(k, v)| format!("{v} {k}")).collect();
    writeln!(out, "{} tenants: {}", reports.len(), summary.join(", "))
}

pub fn status(ws: &Workspace, args: &StatusArgs) -> anyhow::Result<u8> {
    let selected = select(ws, &args.tenants)?;
    let sets = Arc::new(MigrationSets::load(ws, &selected)?);
    let rt = crate::pg::runtime()?;
    let checker = args.drift.then(|| {
        Arc::new(DriftChecker::new(
            ScratchServer::TenantServer,
            Settings::from_config(&ws.config),
            app_role(ws),
        ))
    });
    let mut rows = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(usize::from(args.concurrency)));
        let mut tasks = Vec::new();
        for t in &selected {
            let (t, migrations, sem, checker) = ((*t).clone(), sets.of(ws, t), sem.clone(), checker.clone());
            let task = tokio::spawn({
                let t = t.clone();
                async move {
                    let _permit = sem.acquire_owned().await;
                    tenant_status(&t, &migrations, checker.as_deref()).await
                }
            });
            tasks.push((t, task));
        }
        // A tenant whose task panicked is a row with that error, not a gap.
        crate::fleet::pool::join_each(tasks, |t: &crate::workspace::Tenant, message| {
            let mut row = crate::fleet::status::StatusRow::new(t, sets.of(ws, t).len());
            row.error = Some(message);
            row
        })
        .await
    });
    if let Some(spec) = &ws.config.control_plane {
        // The control plane's last failure fills in where the database had none
        // (e.g. the tenant was unreachable).
        if let Ok(failures) = rt.block_on(control::last_failures(spec)) {
            for (tenant, error, at) in failures {
                if let Some(row) = rows.iter_mut().find(|r| r.tenant == tenant && r.last_error.is_none()) {
                    row.last_error = Some(format!("{at} (control plane): {error}"));
                }
            }
        }
    }
    let all_good = rows.iter().all(|r| r.at_head());
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "tenants": rows, "at_head": all_good }))?;
        writeln!(out)?;
    } else {
        let mut t = table();
        t.set_header([
            "tenant",
            "postgres",
            "vertical",
            "bespoke",
            "applied",
            "pending",
            "drift",
            "last error",
        ]);
        for r in &rows {
            let versions = if r.error.is_some() {
                "?".to_string()
            } else {
                r.layers
                    .iter()
                    .map(|l| format!("{} {}", l.layer, l.applied.as_deref().unwrap_or("-")))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let problem = r.error.as_ref().or(r.history_problem.as_ref()).or(r.last_error.as_ref());
            t.add_row([
                r.tenant.clone(),
                server_cell(r.server_version.as_deref()),
                r.vertical.clone().unwrap_or_else(|| "-".into()),
                r.bespoke.clone().unwrap_or_else(|| "-".into()),
                versions,
                if r.error.is_some() { "?".into() } else { r.pending.to_string() },
                match r.drift {
                    Some(true) => "DRIFT".into(),
                    Some(false) => "clean".into(),
                    None => "-".into(),
                },
                problem.map(|e| first_line(e, 80)).unwrap_or_default(),
            ]);
        }
        writeln!(out, "{t}")?;
        let behind = rows.iter().filter(|r| !r.at_head()).count();
        writeln!(out, "{} tenants, {} at head, {behind} not", rows.len(), rows.len() - behind)?;
    }
    Ok(if all_good { EXIT_OK } else { EXIT_FINDINGS })
}

/// `--scratch`: where expected schemas are replayed.
fn scratch_server(spec: Option<&str>) -> anyhow::Result<ScratchServer> {
    Ok(match spec {
        None => ScratchServer::TenantServer,
        Some("auto") => ScratchServer::Auto,
        Some(url) => ScratchServer::Server(Box::new(Target::parse(url)?)),
    })
}

pub fn drift(ws: &Workspace, args: &DriftArgs) -> anyhow::Result<u8> {
    let selected = select(ws, &args.tenants)?;
    let sets = MigrationSets::load(ws, &selected)?;
    let scratch = scratch_server(args.scratch.as_deref())?;
    let checker = DriftChecker::new(scratch, Settings::from_config(&ws.config), app_role(ws));
    let rt = crate::pg::runtime()?;
    let reports = rt.block_on(async {
        let mut out = Vec::new();
        for t in &selected {
            out.push(checker.check(t, &sets.of(ws, t)).await);
        }
        out
    });
    drop(checker);
    let drifted = reports.iter().any(|r| r.drifted);
    let errors = reports.iter().any(|r| r.error.is_some());
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "tenants": reports, "drift": drifted }))?;
        writeln!(out)?;
    } else {
        for r in &reports {
            let pending = if r.pending > 0 {
                format!(" ({} pending migrations not counted; see `strata status`)", r.pending)
            } else {
                String::new()
            };
            // Each tenant is replayed on its own major: say which.
            let on = r
                .server_version
                .as_deref()
                .map_or_else(String::new, |v| format!(" on PostgreSQL {v}"));
            match (&r.error, r.drifted) {
                (Some(e), _) => writeln!(out, "{}: error: {e}", r.tenant)?,
                (None, true) => writeln!(
                    out,
                    "{}: DRIFT from its {} applied migrations{on}{pending}\n{}",
                    r.tenant, r.replayed, r.diff
                )?,
                (None, false) => writeln!(out, "{}: no drift{on}{pending}", r.tenant)?,
            }
        }
    }
    Ok(if drifted || errors { EXIT_FINDINGS } else { EXIT_OK })
}

pub fn tenant_create(ws: &Workspace, args: &TenantCreateArgs) -> anyhow::Result<u8> {
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| crate::Error::Usage(format!("--label `{l}`: expected KEY=VALUE")))?;
        labels.insert(k.trim().to_string(), v.trim().to_string());
    }
    let req = provision::Request {
        slug: args.slug.clone(),
        vertical: args.vertical.clone(),
        bespoke: args.bespoke.clone(),
        database: args.database.clone(),
        labels,
    };
    let tenant = provision::validate(ws, &req)?;
    let sets = MigrationSets::load(ws, &[&tenant])?;
    let migrations = sets.of(ws, &tenant);
    let opts = RunOptions {
        apply: Options {
            settings: Settings::from_config(&ws.config),
            dry_run: false,
            allow_changed: false,
            lock_wait: Duration::from_secs(args.lock_wait),
        },
        concurrency: 1,
        max_failures: None,
        app_role: app_role(ws),
        pg_version: ws.config.pg_version,
    };
    let reporter = Reporter::new(progress_mode(args.format, false), 1);
    let rt = crate::pg::runtime()?;
    let (created, report) = rt
        .block_on(provision::create(&tenant, &migrations, &opts, &reporter))
        .with_context(|| format!("cannot provision tenant {}", tenant.slug))?;
    reporter.finish();
    let ok = !report.status.is_failure();
    if ok {
        provision::register(ws, &tenant)?;
    }
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(
            &mut out,
            &serde_json::json!({"tenant": report, "database_created": created, "registered": ok}),
        )?;
        writeln!(out)?;
    } else {
        let db = if created { "created" } else { "already existed" };
        if ok {
            writeln!(
                out,
                "tenant {}: database {} ({db}), {} migrations applied, registered in {}",
                tenant.slug,
                report.database,
                report.applied.len(),
                ws.config.paths.tenants.display()
            )?;
        } else {
            writeln!(
                out,
                "tenant {}: database {} ({db}), migration failed after {} applied; not registered. \
                 Fix the cause and run the same command again (it resumes).\nerror: {}",
                tenant.slug,
                report.database,
                report.applied.len(),
                report.error.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(if ok { EXIT_OK } else { EXIT_FINDINGS })
}

pub fn baseline(ws: Workspace, args: &BaselineArgs, quiet: bool) -> anyhow::Result<u8> {
    use crate::fleet::baseline::{self, Source, Status};
    if args.tenants.is_empty() && !args.all {
        return Err(crate::Error::Usage("choose the tenants: --tenant SLUG (repeatable) or --all".into()).into());
    }
    let source = match &args.from {
        Some(tool) => Source::From {
            tool: crate::pg::adopt::Tool::from_name(tool).ok_or_else(|| {
                let names: Vec<&str> = crate::pg::adopt::Tool::ALL.iter().map(|t| t.name()).collect();
                crate::Error::Usage(format!("--from `{tool}`: expected one of {}", names.join(", ")))
            })?,
            table: args.table.clone(),
            layer: crate::workspace::scaffold::LayerName::parse(&args.layer)?,
        },
        None => Source::to(&args.to)?,
    };
    source.check(&ws)?;
    let selected: Vec<crate::workspace::Tenant> = select(&ws, &args.tenants)?.into_iter().cloned().collect();
    let refs: Vec<&crate::workspace::Tenant> = selected.iter().collect();
    let sets = MigrationSets::load(&ws, &refs)?;
    let items: Vec<_> = selected.iter().map(|t| (t.clone(), sets.of(&ws, t))).collect();
    let checker = Arc::new(DriftChecker::new(
        scratch_server(args.scratch.as_deref())?,
        Settings::from_config(&ws.config),
        app_role(&ws),
    ));
    let opts = baseline::Options {
        source,
        force: args.force,
        dry_run: args.dry_run,
        lock_wait: Duration::from_secs(args.lock_wait),
        concurrency: usize::from(args.concurrency),
        max_failures: args.max_failures,
    };
    let reporter = Arc::new(Reporter::new(progress_mode(args.format, quiet), items.len()));
    let rt = crate::pg::runtime()?;
    let reports = rt.block_on(baseline::run(Arc::new(ws), items, opts, checker, reporter.clone()));
    reporter.finish();
    let failed = reports.iter().any(|r| r.status.is_failure() || r.status == Status::NotStarted);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for r in &reports {
        *counts.entry(r.status.as_str()).or_insert(0) += 1;
    }
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        let doc = serde_json::json!({ "dry_run": args.dry_run, "tenants": reports, "summary": counts });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        render_baseline(&mut out, &reports, args.dry_run, &counts)?;
    }
    Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
}

fn render_baseline(
    out: &mut impl Write,
    reports: &[crate::fleet::baseline::Report],
    dry_run: bool,
    counts: &BTreeMap<&'static str, usize>,
) -> io::Result<()> {
    use crate::pg::adopt::mapping::{Action, ChecksumCheck};
    for r in reports {
        if r.mapping.is_empty() && (!dry_run || r.recorded.is_empty()) {
            continue;
        }
        match &r.from {
            Some(from) => writeln!(out, "{}: {from} mapped onto the migration files", r.tenant)?,
            None => writeln!(out, "{}: would record", r.tenant)?,
        }
        if r.mapping.is_empty() {
            for f in &r.recorded {
                writeln!(out, "  {f}")?;
            }
            continue;
        }
        let mut t = table();
        t.set_header(["recorded version", "state", "file", "checksum", "strata"]);
        for row in &r.mapping {
            let state = row
                .state
                .map(|s| {
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                })
                .unwrap_or_else(|| "-".into());
            t.add_row([
                row.recorded.clone().unwrap_or_else(|| "-".into()),
                state,
                row.file.clone().unwrap_or_else(|| "(no SQL file)".into()),
                match row.checksum {
                    ChecksumCheck::Verified => "verified",
                    ChecksumCheck::NotKept => "not kept",
                    ChecksumCheck::Changed => "changed",
                    ChecksumCheck::None => "-",
                }
                .to_string(),
                match row.action {
                    Action::Record if dry_run => "would record",
                    Action::Record => "record",
                    Action::Pending => "pending",
                    Action::NotSql => "not SQL",
                }
                .to_string(),
            ]);
        }
        writeln!(out, "{t}")?;
    }
    let mut t = table();
    t.set_header([
        "tenant",
        if dry_run { "would record" } else { "recorded" },
        "pending",
        "status",
        "error",
    ]);
    for r in reports {
        t.add_row([
            r.tenant.clone(),
            r.recorded.len().to_string(),
            r.pending.to_string(),
            r.status.as_str().to_string(),
            r.error.as_deref().map(|e| first_line(e, 90)).unwrap_or_default(),
        ]);
    }
    writeln!(out, "{t}")?;
    for r in reports.iter().filter(|r| r.status.is_failure()) {
        writeln!(out, "{}: {}", r.tenant, r.error.as_deref().unwrap_or(""))?;
        if let Some(diff) = &r.diff {
            writeln!(out, "{diff}")?;
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    writeln!(out, "{} tenants: {}", reports.len(), summary.join(", "))
}
