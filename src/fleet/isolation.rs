//! `strata verify-isolation`: runs [`crate::pg::isolation::verify`] on each
//! selected tenant and renders a table per tenant (or JSON). Exit codes: 0
//! clean, 1 a leak, 2 a tenant could not be verified.

use std::io::{self, Write};

use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use serde::Serialize;

use super::select;
use crate::app::{EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use crate::cli::{ListFormat, VerifyIsolationArgs};
use crate::pg::isolation::{verify, Finding, Outcome, Scope};
use crate::pg::{self, Target};
use crate::workspace::Workspace;

/// One tenant's verification.
#[derive(Debug, Serialize)]
pub struct TenantIsolation {
    pub tenant: String,
    pub database: String,
    pub leaks: usize,
    pub findings: Vec<Finding>,
    pub error: Option<String>,
}

pub fn verify_isolation(ws: &Workspace, args: &VerifyIsolationArgs) -> anyhow::Result<u8> {
    if args.tenants.is_empty() && !args.all {
        return Err(crate::Error::Usage("choose the tenants: --tenant SLUG (repeatable) or --all".into()).into());
    }
    let selected = select(ws, &args.tenants)?;
    let scope = Scope::from_config(&ws.config);
    let rt = crate::pg::runtime()?;
    let reports: Vec<TenantIsolation> = rt.block_on(async {
        let mut out = Vec::new();
        for t in &selected {
            let mut report = TenantIsolation {
                tenant: t.slug.clone(),
                database: String::new(),
                leaks: 0,
                findings: Vec::new(),
                error: None,
            };
            let result = async {
                let target = Target::parse(&t.database)?;
                report.database = target.to_string();
                let client = pg::connect(&target).await?;
                verify(&client, &target, &scope).await
            }
            .await;
            match result {
                Ok(findings) => {
                    report.leaks = findings.iter().filter(|f| f.outcome == Outcome::Leak).count();
                    report.findings = findings;
                }
                Err(e) => report.error = Some(e.to_string()),
            }
            out.push(report);
        }
        out
    });
    let leaks: usize = reports.iter().map(|r| r.leaks).sum();
    let errors = reports.iter().any(|r| r.error.is_some());
    let mut out = io::stdout().lock();
    if args.format == ListFormat::Json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "tenants": reports, "leaks": leaks }))?;
        writeln!(out)?;
    } else {
        for r in &reports {
            if let Some(e) = &r.error {
                writeln!(out, "{}: error: {e}", r.tenant)?;
                continue;
            }
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_header(["table", "check", "result", "detail"]);
            for f in &r.findings {
                table.add_row([f.object.as_str(), f.check.as_str(), f.outcome.as_str(), f.detail.as_str()]);
            }
            let skipped = r.findings.iter().filter(|f| f.outcome == Outcome::Skipped).count();
            writeln!(out, "{} ({})\n{table}", r.tenant, r.database)?;
            writeln!(
                out,
                "{}: {} leak(s), {} check(s) passed, {skipped} skipped\n",
                r.tenant,
                r.leaks,
                r.findings.iter().filter(|f| f.outcome == Outcome::Pass).count()
            )?;
        }
    }
    Ok(if errors {
        EXIT_ERROR
    } else if leaks > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    })
}
