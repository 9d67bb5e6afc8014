//! `strata verify-isolation`: runs [`crate::pg::isolation::verify`] on each
//! selected tenant and renders a table per tenant (or JSON). Exit codes: 0
//! clean, 1 a leak (or, with `--require-full-coverage`, a table under row
//! level security the probe did not prove), 2 a tenant could not be verified.
//!
//! The text table fits the terminal (its width, else `COLUMNS`, else 100
//! columns): a detail longer than [`INLINE_DETAIL`] characters is printed
//! below the table as a numbered note, so one long error does not stretch
//! every row.

use std::io::{self, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

use super::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::cli::{ListFormat, VerifyIsolationArgs};
use crate::fleet::select;
use crate::pg::isolation::{verify, Coverage, Finding, Outcome, PolicyRules, Scope};
use crate::pg::{self, Target};
use crate::workspace::Workspace;

/// One tenant's verification.
#[derive(Debug, Serialize)]
pub struct TenantIsolation {
    pub tenant: String,
    pub database: String,
    pub leaks: usize,
    pub findings: Vec<Finding>,
    pub coverage: Option<Coverage>,
    pub error: Option<String>,
}

/// The longest detail shown inside the table.
pub const INLINE_DETAIL: usize = 48;

/// The width the text table may take.
fn table_width(table: &Table) -> u16 {
    table
        .width()
        .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()))
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}

fn write_text(out: &mut impl Write, r: &TenantIsolation) -> io::Result<()> {
    if let Some(e) = &r.error {
        return writeln!(out, "{}: error: {e}", r.tenant);
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(["table", "check", "result", "detail"]);
    table.set_width(table_width(&table));
    let mut notes = Vec::new();
    for f in &r.findings {
        let detail = if f.detail.chars().count() > INLINE_DETAIL {
            notes.push(f.detail.as_str());
            format!("see [{}] below", notes.len())
        } else {
            f.detail.clone()
        };
        table.add_row([f.object.as_str(), f.check.as_str(), f.outcome.as_str(), detail.as_str()]);
    }
    writeln!(out, "{} ({})\n{table}", r.tenant, r.database)?;
    for (i, note) in notes.iter().enumerate() {
        writeln!(out, "[{}] {note}", i + 1)?;
    }
    let skipped = r.findings.iter().filter(|f| f.outcome == Outcome::Skipped).count();
    let passed = r.findings.iter().filter(|f| f.outcome == Outcome::Pass).count();
    writeln!(
        out,
        "{}: {} leak(s), {passed} check(s) passed, {skipped} skipped",
        r.tenant, r.leaks
    )?;
    if let Some(c) = &r.coverage {
        let unproven = if c.unproven.is_empty() {
            String::new()
        } else {
            format!(" (not proven: {})", c.unproven.join(", "))
        };
        writeln!(
            out,
            "{}: coverage {} of {} tables under RLS proven{unproven}",
            r.tenant, c.proven, c.under_rls
        )?;
    }
    writeln!(out)
}

pub fn verify_isolation(ws: &Workspace, args: &VerifyIsolationArgs) -> anyhow::Result<u8> {
    if args.tenants.is_empty() && !args.all {
        return Err(crate::Error::Usage("choose the tenants: --tenant SLUG (repeatable) or --all".into()).into());
    }
    let selected = select(ws, &args.tenants)?;
    let scope = Scope::from_config(&ws.config);
    let judge = PolicyRules {
        config: &ws.config,
        rules: &ws.rules,
    };
    let rt = crate::pg::runtime()?;
    let reports: Vec<TenantIsolation> = rt.block_on(async {
        let mut out = Vec::new();
        for t in &selected {
            let mut report = TenantIsolation {
                tenant: t.slug.clone(),
                database: String::new(),
                leaks: 0,
                findings: Vec::new(),
                coverage: None,
                error: None,
            };
            let result = async {
                let target = Target::parse(&t.database)?;
                report.database = target.to_string();
                let client = pg::connect(&target).await?;
                verify(&client, &target, &scope, &judge).await
            }
            .await;
            match result {
                Ok((findings, coverage)) => {
                    report.leaks = findings.iter().filter(|f| f.outcome == Outcome::Leak).count();
                    report.findings = findings;
                    report.coverage = Some(coverage);
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            out.push(report);
        }
        out
    });
    let leaks: usize = reports.iter().map(|r| r.leaks).sum();
    let errors = reports.iter().any(|r| r.error.is_some());
    let partial = reports.iter().any(|r| r.coverage.as_ref().is_some_and(|c| !c.is_full()));
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "tenants": reports, "leaks": leaks }))?;
        writeln!(out)?;
    } else {
        for r in &reports {
            write_text(&mut out, r)?;
        }
    }
    Ok(if errors {
        EXIT_ERROR
    } else if leaks > 0 || (args.require_full_coverage && partial) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
