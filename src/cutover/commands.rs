//! `strata plan` and `strata cutover run|status|flip|rollback`: load the
//! cutover file, run on a tokio runtime, print a table or JSON, return the
//! exit code (0 fine, 1 a tenant failed or a gate refused, 2 strata could
//! not do its job).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};

use super::executor::{self, TenantOutcome};
use super::plan::{self, Cutover, Kind};
use super::render::{self, Estimate};
use super::steps::steps;
use crate::app::{EXIT_FINDINGS, EXIT_OK};
use crate::cli::{CutoverCommand, ListFormat, PlanArgs};
use crate::workspace::Workspace;

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

/// pg_class.reltuples of every table, summed over the databases that answer.
async fn estimates(c: &Cutover, databases: &[(String, String)]) -> Vec<Estimate> {
    let mut counts: Vec<(Option<i64>, Vec<String>)> = vec![(None, Vec::new()); c.tables.len()];
    for (label, spec) in databases {
        let Ok(target) = crate::pg::Target::parse(spec) else { continue };
        let Ok(client) = crate::pg::connect(&target).await else { continue };
        for (i, t) in c.tables.iter().enumerate() {
            let row = client
                .query_opt(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1) AND reltuples >= 0",
                    &[&t.qualified()],
                )
                .await;
            if let Ok(Some(row)) = row {
                let n: i64 = row.get(0);
                counts[i].0 = Some(counts[i].0.unwrap_or(0) + n);
                counts[i].1.push(label.clone());
            }
        }
    }
    c.tables
        .iter()
        .zip(counts)
        .map(|(t, (rows, from))| Estimate {
            table: t.display(),
            rows,
            from: if from.is_empty() { "unreachable".into() } else { from.join(", ") },
        })
        .collect()
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
    let estimates = crate::pg::runtime()?.block_on(estimates(&c, &databases));
    let scope = render::scope(&c, &waves);
    let list = steps(&c);
    let mut out = io::stdout().lock();
    match args.format {
        ListFormat::Text => render::text(&c, &scope, &list, &estimates, &mut out)?,
        ListFormat::Json => render::json(&c, &scope, &list, &estimates, &mut out)?,
    }
    out.flush()?;
    Ok(EXIT_OK)
}

fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    t
}

fn print_outcomes(outcomes: &[TenantOutcome], format: ListFormat) -> anyhow::Result<u8> {
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
                    o.status.clone(),
                    o.step.clone().unwrap_or_else(|| "-".into()),
                    o.detail.clone(),
                ]);
            }
            writeln!(out, "{t}")?;
        }
    }
    let failed = outcomes.iter().any(|o| o.is_failure() || o.status == "not-started");
    Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
}

pub fn cutover(ws: Option<&Workspace>, command: &CutoverCommand, quiet: bool) -> anyhow::Result<u8> {
    let log = move |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    let rt = crate::pg::runtime()?;
    match command {
        CutoverCommand::Run {
            file,
            until,
            concurrency,
            format,
        } => {
            let c = load(ws, file)?;
            let outcomes = rt.block_on(executor::run(ws, &c, until.as_deref(), usize::from(*concurrency), &log))?;
            print_outcomes(&outcomes, *format)
        }
        CutoverCommand::Flip { file, worker, format } => {
            let c = load(ws, file)?;
            if c.file.kind == Kind::Reshape {
                need_ws(ws, &c)?;
            }
            let outcomes = rt.block_on(executor::flip(ws, &c, worker, &log))?;
            print_outcomes(&outcomes, *format)
        }
        CutoverCommand::Rollback { file, format } => {
            let c = load(ws, file)?;
            if c.file.kind == Kind::Reshape {
                need_ws(ws, &c)?;
            }
            let outcomes = rt.block_on(executor::rollback(ws, &c, &log))?;
            print_outcomes(&outcomes, *format)
        }
        CutoverCommand::Status { file, format } => {
            let c = load(ws, file)?;
            let rows = rt.block_on(executor::status(ws, &c))?;
            let mut out = io::stdout().lock();
            match format {
                ListFormat::Json => {
                    serde_json::to_writer_pretty(&mut out, &rows)?;
                    writeln!(out)?;
                }
                ListFormat::Text => {
                    let mut t = table();
                    t.set_header(["tenant", "wave", "run", "status", "steps", "current", "detail", "routes"]);
                    for r in &rows {
                        let routes: Vec<String> = r
                            .routes
                            .iter()
                            .map(|x| format!("{}: reads {}, writes {}", x.worker, x.reads, x.writes))
                            .collect();
                        t.add_row([
                            r.tenant.clone(),
                            r.wave.map_or_else(|| "-".into(), |w| w.to_string()),
                            r.run_id.map_or_else(|| "-".into(), |i| i.to_string()),
                            r.status.clone(),
                            format!("{}/{}", r.done, r.total),
                            r.current.clone().unwrap_or_else(|| "-".into()),
                            r.detail.clone().unwrap_or_default(),
                            routes.join("\n"),
                        ]);
                    }
                    writeln!(out, "{t}")?;
                }
            }
            let failed = rows.iter().any(|r| r.status == "failed");
            Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
        }
    }
}
