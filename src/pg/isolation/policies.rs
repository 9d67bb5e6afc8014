//! The policy rules of `strata check`, run on a live database's catalog.
//!
//! A policy can be wrong without the probe seeing it: a `USING (true)` to
//! PUBLIC admits every role, yet the probe role (a member of the
//! application role) sees only what the application's own policies give it,
//! and in database-per-tenant mode every row belongs to the one tenant. So
//! verify-isolation judges the live policies with the rules that judge
//! written ones — policy-always-true, policy-not-tenant-scoped and
//! multiple-permissive-policies — instead of a second implementation: the
//! live catalog is read as `check --shadow` reads it, each policy stands for
//! one statement of a placeholder file, and a finding comes back to its
//! table through that statement. Severities come from the workspace's rule
//! configuration (`off` skips a rule, a warning is reported as one).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::{finding, Finding, Outcome};
use crate::catalog::Origin;
use crate::diag::Severity;
use crate::pg::conn::sql_error;
use crate::pg::live_catalog::read_catalog;
use crate::pg::{Result, Target};
use crate::rules::{Env, FileCtx, FileInfo, Released, Rule, RulesConfig};
use crate::workspace::Config;

/// The rules whose `check_file_end` judges policies.
pub const POLICY_RULES: &[&str] = &["policy-always-true", "policy-not-tenant-scoped", "multiple-permissive-policies"];

/// The workspace settings the policy rules read.
pub struct PolicyRules<'a> {
    pub config: &'a Config,
    pub rules: &'a RulesConfig,
}

/// The objects of the database before any file: what no finding points at.
const PRE: Origin = Origin {
    file: u32::MAX,
    layer: u16::MAX,
    stmt: 0,
};

/// Findings of the policy rules on the live policies, one per rule finding,
/// on the table it names.
pub async fn policy_findings(client: &Client, target: &Target, judge: &PolicyRules<'_>) -> Result<Vec<Finding>> {
    let rows = client
        .query(
            "SELECT p.oid, n.nspname::text, c.relname::text, p.polname::text
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             ORDER BY n.nspname, c.relname, p.polname",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot list the policies"))?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // Policy i is statement i of the placeholder file.
    let mut origins = HashMap::new();
    let mut shown = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let oid: u32 = r.get(0);
        let (schema, table, policy): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        origins.insert(
            format!("p{oid}"),
            Origin {
                file: 0,
                layer: 0,
                stmt: i as u32,
            },
        );
        let table = if schema == "public" { table } else { format!("{schema}.{table}") };
        shown.push((table, policy));
    }
    let catalog = read_catalog(client, target, &origins, PRE).await?;
    let placeholder = crate::sql::parse_text("live policies", &"SELECT 1;\n".repeat(rows.len()));
    let info = FileInfo {
        parsed: &placeholder,
        id: 0,
        layer: None,
        migration: None,
        layer_migrations: &[],
        released: Released::Unknown,
        released_head: None,
    };
    let env = Env {
        config: Some(judge.config),
        pg_version: judge.config.pg_version,
        layers: &[],
        transactional: true,
    };
    let cx = FileCtx {
        env: &env,
        file: &info,
        catalog: &catalog,
    };
    let rules: Vec<Box<dyn Rule>> = crate::rules::configured(judge.rules)
        .map_err(|e| crate::pg::Error::Cluster(format!("the rule configuration: {e}")))?
        .into_iter()
        .filter(|r| POLICY_RULES.contains(&r.meta().id))
        .collect();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for rule in &rules {
        let outcome = match crate::rules::severity_in(judge.rules, rule.meta(), None) {
            Severity::Off => continue,
            Severity::Error => Outcome::Leak,
            _ => Outcome::Warning,
        };
        rule.check_file_end(&cx, &mut buf);
        for f in buf.drain(..) {
            let Some((table, _)) = f.statement.and_then(|i| shown.get(i)) else {
                continue;
            };
            let detail = match &f.help {
                Some(help) => format!("{} ({help})", f.message),
                None => f.message.clone(),
            };
            out.push(finding(table, rule.meta().id, outcome, detail));
        }
    }
    Ok(out)
}
