//! `strata plan` and `strata cutover run|status|flip|rollback`: load the
//! cutover file, run on a tokio runtime with SIGINT/SIGTERM turned into a
//! clean stop, draw progress, print a table or JSON, return the exit code
//! (0 fine, 1 a tenant failed or a gate refused, 2 strata could not do its
//! job, 130/143 stopped by SIGINT/SIGTERM).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::cutover_terminal::Renderer;
use super::{EXIT_FINDINGS, EXIT_OK};
use crate::cli::{CutoverCommand, ListFormat, PlanArgs, SoakArgs};
use crate::cutover::executor::{self, Outcome, TenantOutcome};
use crate::cutover::plan::{self, format_size, parse_duration, Cutover, Kind};
use crate::cutover::progress::{RunOptions, SoakChoice, Stop};
use crate::cutover::render::{self, Estimate};
use crate::cutover::status::TenantStatus;
use crate::cutover::steps::steps;
use crate::workspace::Workspace;

/// Exit codes of a command stopped by a signal (128 + its number, as shells report them).
const EXIT_SIGINT: u8 = 130;
const EXIT_SIGTERM: u8 = 143;

/// `FILE` as given, or `cutovers/FILE.toml` of the workspace for a bare name.
fn resolve(ws: Option<&Workspace>, file: &Path) -> PathBuf {
    if file.exists() {
        return file.to_path_buf();
    }
    if let Some(ws) = ws {
        let dir = ws.root.join(&ws.config.paths.cutovers);
        for candidate in [dir.join(file), dir.join(file).with_extension("toml")] {
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    file.to_path_buf()
}

fn load(ws: Option<&Workspace>, file: &Path) -> anyhow::Result<Cutover> {
    Ok(plan::load(&resolve(ws, file))?)
}

fn need_ws<'a>(ws: Option<&'a Workspace>, c: &Cutover) -> anyhow::Result<&'a Workspace> {
    ws.ok_or_else(|| {
        crate::Error::Usage(format!(
            "cutover {}: a {} needs a workspace (tenants.toml, control plane): pass --workspace DIR",
            c.name,
            c.file.kind.as_str()
        ))
        .into()
    })
}

/// Estimated rows of every table, summed over the databases that answer
/// (statistics, or the planner's estimate for a table never analyzed), and
/// the databases that did not answer, with why.
async fn estimates(c: &Cutover, databases: &[(String, String)]) -> (Vec<Estimate>, Vec<(String, String)>) {
    let mut counts: Vec<(Option<u64>, Vec<String>)> = vec![(None, Vec::new()); c.tables.len()];
    let mut unreachable = Vec::new();
    for (label, spec) in databases {
        let connected = match crate::pg::Target::parse(spec) {
            Ok(target) => crate::pg::connect(&target).await.map(|client| (client, target)),
            Err(e) => Err(e),
        };
        let (client, target) = match connected {
            Ok(c) => c,
            Err(e) => {
                unreachable.push((label.clone(), e.to_string()));
                continue;
            }
        };
        for (i, t) in c.tables.iter().enumerate() {
            match crate::cutover::estimate::rows(&client, &target, &t.qualified()).await {
                Ok(Some((n, basis))) => {
                    counts[i].0 = Some(counts[i].0.unwrap_or(0) + n);
                    counts[i].1.push(format!("{label} ({})", basis.as_str()));
                }
                Ok(None) => counts[i].1.push(format!("{label}: no such table")),
                Err(e) => counts[i].1.push(format!("{label}: {e}")),
            }
        }
    }
    let rows = c
        .tables
        .iter()
        .zip(counts)
        .map(|(t, (rows, from))| Estimate {
            table: t.display(),
            rows,
            from: if from.is_empty() { "unreachable".into() } else { from.join(", ") },
        })
        .collect();
    (rows, unreachable)
}

pub fn plan(ws: Option<&Workspace>, args: &PlanArgs) -> anyhow::Result<u8> {
    let c = load(ws, &args.file)?;
    let (waves, databases) = match c.file.kind {
        Kind::Move => (Vec::new(), vec![("source".to_string(), c.file.source.clone().unwrap_or_default())]),
        Kind::Reshape => {
            let ws = need_ws(ws, &c)?;
            let waves = executor::tenant_waves(ws, &c)?;
            let dbs = waves.iter().flatten().map(|t| (t.slug.clone(), t.database.clone())).collect();
            (waves.iter().map(|w| w.iter().map(|t| t.slug.clone()).collect()).collect(), dbs)
        }
    };
    let (estimates, unreachable) = crate::pg::runtime()?.block_on(estimates(&c, &databases));
    let scope = render::scope(&c, &waves);
    let carrier = carrier_note(ws, &c);
    let list = steps(&c);
    let mut out = io::stdout().lock();
    match args.format {
        ListFormat::Text => render::text(&c, &scope, &list, &estimates, &unreachable, carrier.as_deref(), &mut out)?,
        ListFormat::Json => render::json(&c, &scope, &list, &estimates, &unreachable, carrier.as_deref(), &mut out)?,
    }
    out.flush()?;
    Ok(EXIT_OK)
}

/// The plan's line about the migration that carries a reshape's new shape.
fn carrier_note(ws: Option<&Workspace>, c: &Cutover) -> Option<String> {
    if c.file.kind != Kind::Reshape {
        return None;
    }
    Some(match (&c.file.migration, ws) {
        (None, _) => "no `migration` carries the new shape: after contract, `strata drift` reports every reshaped tenant and \
                      new tenants get the old shape; write the migration (schema/<layer>/NNNN_name.sql) and name it with \
                      `migration = \"...\"` (docs/cutovers.md)"
            .into(),
        (Some(m), Some(ws)) => match ws.tenants.first().map(|t| executor::carrier_for(ws, c, t)) {
            Some(Ok(Some(carrier))) => format!(
                "new shape carried by {m} ({}/{}): contract records it as applied in each tenant's history",
                carrier.layer, carrier.version
            ),
            Some(Err(e)) => format!("new shape carried by {m}: {e}"),
            _ => format!("new shape carried by {m} (recorded as applied at contract)"),
        },
        (Some(m), None) => format!("new shape carried by {m} (recorded as applied at contract)"),
    })
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn print_outcomes(outcomes: &[TenantOutcome], format: ListFormat, stop: &Stop) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, outcomes)?;
            writeln!(out)?;
        }
        ListFormat::Text => {
            let mut t = table();
            t.set_header(["tenant", "status", "last step done", "detail"]);
            for o in outcomes {
                t.add_row([
                    o.tenant.clone(),
                    o.status.as_str().to_string(),
                    o.step.clone().unwrap_or_else(|| "-".into()),
                    o.detail.clone(),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }
    if outcomes.iter().any(|o| o.status == Outcome::Interrupted) || stop.requested().is_some() {
        return Ok(if stop.requested() == Some("SIGTERM") {
            EXIT_SIGTERM
        } else {
            EXIT_SIGINT
        });
    }
    let failed = outcomes.iter().any(|o| o.is_failure() || o.status == Outcome::NotStarted);
    Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
}

/// SIGINT and SIGTERM become a stop request; a second one exits at once.
fn stop_on_signals(rt: &tokio::runtime::Runtime) -> Stop {
    let (tx, stop) = Stop::channel();
    rt.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        for round in 0..2 {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if round == 0 {
                eprintln!("{name}: stopping after recording the step in progress as interrupted (again to exit at once)");
                let _ = tx.send(Some(name));
            } else {
                std::process::exit(i32::from(if name == "SIGTERM" { EXIT_SIGTERM } else { EXIT_SIGINT }));
            }
        }
    });
    stop
}

fn soak_choice(args: &SoakArgs) -> anyhow::Result<SoakChoice> {
    if args.skip_soak {
        let reason = args.reason.clone().unwrap_or_default();
        if reason.trim().is_empty() {
            return Err(crate::Error::Usage("--skip-soak needs a --reason that says why (it is recorded)".into()).into());
        }
        return Ok(SoakChoice::Skip { reason });
    }
    match &args.soak {
        None => Ok(SoakChoice::AsPlanned),
        Some(s) => parse_duration(s)
            .map(SoakChoice::For)
            .ok_or_else(|| crate::Error::Usage(format!("--soak `{s}` is not a duration (e.g. 30s, 5m, 1h, 0s)")).into()),
    }
}

pub fn cutover(ws: Option<&Workspace>, command: &CutoverCommand, quiet: bool) -> anyhow::Result<u8> {
    let rt = crate::pg::runtime()?;
    let renderer = Renderer::new(quiet);
    let events = |e| renderer.event(e);
    let code = match command {
        CutoverCommand::Run {
            file,
            until,
            concurrency,
            soak,
            dry_run,
            format,
        } => {
            let c = load(ws, file)?;
            let options = RunOptions {
                until: until.clone(),
                concurrency: usize::from(*concurrency),
                soak: soak_choice(soak)?,
                stop: stop_on_signals(&rt),
            };
            if *dry_run {
                let planned = rt.block_on(executor::dry_run(ws, &c, &options))?;
                print_dry_run(&planned, *format)?;
                return Ok(EXIT_OK);
            }
            let outcomes = rt.block_on(executor::run(ws, &c, &options, &events))?;
            renderer.finish();
            print_outcomes(&outcomes, *format, &options.stop)?
        }
        CutoverCommand::Flip {
            file,
            worker,
            concurrency,
            soak,
            format,
        } => {
            let c = load(ws, file)?;
            if c.file.kind == Kind::Reshape {
                need_ws(ws, &c)?;
            }
            let options = RunOptions {
                until: None,
                concurrency: usize::from(*concurrency),
                soak: soak_choice(soak)?,
                stop: stop_on_signals(&rt),
            };
            let outcomes = rt.block_on(executor::flip(ws, &c, worker, &options, &events))?;
            renderer.finish();
            print_outcomes(&outcomes, *format, &options.stop)?
        }
        CutoverCommand::Rollback { file, format } => {
            let c = load(ws, file)?;
            if c.file.kind == Kind::Reshape {
                need_ws(ws, &c)?;
            }
            let outcomes = rt.block_on(crate::cutover::rollback::rollback(ws, &c, &events))?;
            renderer.finish();
            print_outcomes(&outcomes, *format, &Stop::never())?
        }
        CutoverCommand::Status { file, format } => {
            let c = load(ws, file)?;
            let rows = rt.block_on(crate::cutover::status::status(ws, &c))?;
            print_status(&rows, *format)?
        }
    };
    Ok(code)
}

fn print_dry_run(planned: &[executor::DryStep], format: ListFormat) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    if format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, planned)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "-- dry run: nothing was changed; the statements each step would execute, computed from the catalogs now"
    )?;
    for s in planned {
        let done = if s.done { " (done in the active run: skipped)" } else { "" };
        writeln!(out, "\n-- ===== {}: {}{done}", s.tenant, s.step)?;
        for q in &s.statements {
            writeln!(out, "-- on {}: {}\n{}", q.database, q.what, q.sql.trim_end())?;
        }
    }
    Ok(())
}

/// A step's figures in one line: rows done of total, lag, retained WAL, soak left, and how fresh they are.
fn figures(r: &TenantStatus) -> String {
    let Some(p) = &r.progress else { return String::new() };
    let mut parts = Vec::new();
    match (p.rows_done, p.rows_total) {
        (Some(d), Some(t)) => parts.push(format!("{d}/{t} rows")),
        (Some(d), None) => parts.push(format!("{d} rows")),
        _ => {}
    }
    if let Some(l) = p.lag_ms {
        parts.push(format!("lag {l:.0} ms"));
    }
    if let Some(w) = p.retained_wal {
        parts.push(format!("retained WAL {}", format_size(w)));
    }
    if let Some(s) = p.soak_left_s {
        parts.push(format!(
            "soak {} left",
            plan::format_duration(std::time::Duration::from_secs(s.ceil() as u64))
        ));
    }
    if let Some(n) = &p.note {
        parts.push(n.clone());
    }
    if let Some(age) = r.progress_age_s {
        parts.push(format!("updated {age:.0}s ago"));
    }
    parts.join(", ")
}

fn print_status(rows: &[TenantStatus], format: ListFormat) -> anyhow::Result<u8> {
    let mut out = io::stdout().lock();
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        }
        ListFormat::Text => {
            let mut t = table();
            t.set_header(["tenant", "wave", "run", "status", "steps", "current", "figures", "detail", "routes"]);
            for r in rows {
                let routes: Vec<String> = r
                    .routes
                    .iter()
                    .map(|x| {
                        let flag = if x.reads_reachable == Some(false) { " (UNREACHABLE)" } else { "" };
                        format!("{}: reads {}{flag}, writes {}", x.worker, x.reads, x.writes)
                    })
                    .collect();
                let mut figures = figures(r);
                if let Some(rep) = &r.replication {
                    if let Some(w) = rep.retained_wal {
                        figures.push_str(&format!(
                            "{}slot {}: retained WAL {} (max {})",
                            if figures.is_empty() { "" } else { "; " },
                            rep.slot,
                            format_size(w),
                            format_size(rep.max_retained_wal)
                        ));
                    }
                }
                t.add_row([
                    r.tenant.clone(),
                    r.wave.map_or_else(|| "-".into(), |w| w.to_string()),
                    r.run_id.map_or_else(|| "-".into(), |i| i.to_string()),
                    match &r.holder {
                        Some(h) if r.status == "running" => format!("running\n({h})"),
                        _ => r.status.clone(),
                    },
                    format!("{}/{}", r.done, r.total),
                    r.current.clone().unwrap_or_else(|| "-".into()),
                    figures,
                    r.detail.clone().unwrap_or_default(),
                    routes.join("\n"),
                ]);
            }
            writeln!(out, "{t}")?;
            for r in rows {
                for w in &r.warnings {
                    writeln!(out, "{}: warning: {w}", r.tenant)?;
                }
                if let Some(n) = &r.next {
                    writeln!(out, "{}: next: {n}", r.tenant)?;
                }
            }
        }
    }
    let bad = rows.iter().any(|r| {
        matches!(r.status.as_str(), "failed" | "interrupted" | "rolling-back") || r.routes.iter().any(|x| x.reads_reachable == Some(false))
    });
    Ok(if bad { EXIT_FINDINGS } else { EXIT_OK })
}
