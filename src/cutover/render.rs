//! `strata plan` output: the phased plan as a table (comfy-table) or JSON.

use std::io::{self, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

use super::plan::{format_duration, format_size, Cutover, Kind};
use super::steps::Step;

/// The estimated rows of one table (`None`: no database answered for it).
#[derive(Clone, Debug, Serialize)]
pub struct Estimate {
    pub table: String,
    pub rows: Option<u64>,
    /// Where the estimate comes from: each database with its basis
    /// (`statistics`, or `planner estimate, never analyzed`), and those that
    /// did not answer, with why.
    pub from: String,
}

/// Where the cutover runs, for the header.
pub fn scope(c: &Cutover, tenants: &[Vec<String>]) -> String {
    match c.file.kind {
        Kind::Move => format!(
            "{} → {}",
            c.file.source.as_deref().unwrap_or_default(),
            c.file.target.as_deref().unwrap_or_default()
        ),
        Kind::Reshape => tenants
            .iter()
            .enumerate()
            .map(|(i, w)| format!("wave {}: {}", i + 1, if w.is_empty() { "(none)".into() } else { w.join(", ") }))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

pub fn text(
    c: &Cutover,
    scope: &str,
    steps: &[Step],
    estimates: &[Estimate],
    unreachable: &[(String, String)],
    carrier: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "cutover {} ({}): {}", c.name, c.file.kind.as_str(), c.file.description)?;
    writeln!(out, "scope: {scope}")?;
    writeln!(
        out,
        "retention {} · soak {} · batch {} rows, pause {} · lock_timeout {}{}",
        format_duration(c.settings.retention),
        format_duration(c.settings.soak),
        c.settings.batch_size,
        format_duration(c.settings.pause),
        c.settings.lock_timeout,
        if c.file.kind == Kind::Reshape {
            format!(" · max_failures {}", c.file.max_failures)
        } else {
            String::new()
        }
    )?;
    if c.file.kind == Kind::Move {
        writeln!(
            out,
            "gates: lag under {}, retained WAL under {}, at most {} differing rows; the window closes after {} without writes to the source",
            format_duration(c.settings.max_replication_lag),
            format_size(c.settings.max_retained_wal),
            c.file.gates.max_row_difference,
            format_duration(c.settings.quiet_period)
        )?;
        writeln!(
            out,
            "control plane: {} (the run state; workers read their routes there)",
            c.file
                .control_plane
                .as_deref()
                .map_or("control_plane of strata.toml", |_| "control_plane of the file")
        )?;
    }
    if let Some(note) = carrier {
        writeln!(out, "migration: {note}")?;
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(140)
        .set_header(["#", "phase", "step", "what it does", "gate", "rollback"]);
    for (i, s) in steps.iter().enumerate() {
        table.add_row([
            (i + 1).to_string(),
            s.phase.as_str().to_string(),
            s.id.clone(),
            s.does.clone(),
            s.gate.clone(),
            s.rollback.clone(),
        ]);
    }
    writeln!(out, "{table}")?;
    let mut rows = Table::new();
    rows.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["table", "estimated rows", "from"]);
    for e in estimates {
        rows.add_row([
            e.table.clone(),
            e.rows.map_or_else(|| "unknown".to_string(), |n| format!("~{n}")),
            e.from.clone(),
        ]);
    }
    writeln!(out, "{rows}")?;
    for (label, error) in unreachable {
        writeln!(out, "not reached: {label}: {error}")?;
    }
    Ok(())
}

pub fn json(
    c: &Cutover,
    scope: &str,
    steps: &[Step],
    estimates: &[Estimate],
    unreachable: &[(String, String)],
    carrier: Option<&str>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let value = serde_json::json!({
        "name": c.name,
        "kind": c.file.kind.as_str(),
        "description": c.file.description,
        "scope": scope,
        "retention_s": c.settings.retention.as_secs(),
        "soak_s": c.settings.soak.as_secs(),
        "batch_size": c.settings.batch_size,
        "lock_timeout": c.settings.lock_timeout,
        "max_failures": c.file.max_failures,
        "max_retained_wal": (c.file.kind == Kind::Move).then_some(c.settings.max_retained_wal),
        "migration": c.file.migration,
        "migration_note": carrier,
        "tables": c.tables,
        "steps": steps,
        "estimates": estimates,
        "unreachable": unreachable.iter().map(|(d, e)| serde_json::json!({"database": d, "error": e})).collect::<Vec<_>>(),
    });
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out)
}
