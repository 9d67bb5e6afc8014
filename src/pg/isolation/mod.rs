//! `strata verify-isolation`: prove tenant isolation on a live database.
//!
//! Two kinds of evidence, per table:
//! - catalog checks: RLS enabled and forced, at least one policy, no table
//!   readable by PUBLIC without RLS, no SECURITY DEFINER function without a
//!   fixed search_path; and the policy rules of `strata check`
//!   (policy-always-true, policy-not-tenant-scoped,
//!   multiple-permissive-policies) on the live policies ([`policies`]), so a
//!   `USING (true)` to PUBLIC is a leak here as it is an error there;
//! - a live probe: inside one transaction that is always rolled back, rows are
//!   seeded for two scopes A and B (two tenants in shared mode, two
//!   containers in database-per-tenant mode) as the connecting superuser;
//!   then, as a role without BYPASSRLS and with the tenant context set to A,
//!   B's rows must be invisible, untouched by UPDATE and DELETE, and an INSERT
//!   with B's key must be rejected (SQLSTATE 42501).
//!
//! Why nothing survives: every write, including `CREATE ROLE` of the probe
//! role (roles are transactional in PostgreSQL), happens inside that single
//! transaction, which is rolled back explicitly and, if strata dies, by the
//! server when the connection closes.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use tokio_postgres::Client;

use super::conn::sql_error;
use super::{describe, quote_ident, quote_literal, sqlstate, Result, Target};
use crate::workspace::{Config, TenancyMode};

mod check_values;
mod policies;
mod seed;

pub use policies::{PolicyRules, POLICY_RULES};
pub use seed::seed_every_table;
use seed::{value_for, Seeder};

/// SQLSTATE insufficient_privilege: what a WITH CHECK violation raises.
const INSUFFICIENT_PRIVILEGE: &str = "42501";

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Leak,
    /// A policy rule of warning severity found something.
    Warning,
    /// The probe could not run (a row could not be seeded, an unexpected error).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "ok",
            Outcome::Leak => "LEAK",
            Outcome::Warning => "warning",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One row of the report: a table (or function), a check, its outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub object: String,
    pub check: String,
    pub outcome: Outcome,
    pub detail: String,
}

/// How much of the database the live probe proved: the scoped tables under
/// row level security, and those whose four probes (select, update,
/// delete, insert) all ran.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Coverage {
    pub proven: usize,
    pub under_rls: usize,
    /// The tables under row level security that were not proven, as shown.
    pub unproven: Vec<String>,
}

impl Coverage {
    pub fn is_full(&self) -> bool {
        self.proven == self.under_rls
    }

    fn of(tables: &[TableInfo], scope: &Scope, findings: &[Finding]) -> Coverage {
        let mut c = Coverage::default();
        for t in tables.iter().filter(|t| t.rls && is_scoped(t, scope)) {
            c.under_rls += 1;
            let proven = ["select", "update", "delete", "insert"].iter().all(|check| {
                findings
                    .iter()
                    .any(|f| f.object == t.shown && f.check == *check && f.outcome != Outcome::Skipped)
            });
            if proven {
                c.proven += 1;
            } else {
                c.unproven.push(t.shown.clone());
            }
        }
        c
    }
}

/// How isolation is scoped in this workspace.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The column carrying the scope (`org_id`, `container_id`).
    pub key: String,
    /// The table the key points to (`orgs`, `containers`).
    pub root: String,
    /// Session settings the policies read (`app.org_id`, `orbis.container_id`).
    pub settings: Vec<String>,
    pub app_role: Option<String>,
    pub global_tables: Vec<String>,
}

/// Setting names read with `current_setting('name' ...)` in an expression.
pub fn settings_in(expr: &str) -> Vec<String> {
    let re = regex::Regex::new(r"current_setting\(\s*'([^']+)'").expect("valid regex");
    re.captures_iter(expr).map(|c| c[1].to_string()).collect()
}

impl Scope {
    pub fn from_config(config: &Config) -> Scope {
        let t = &config.tenancy;
        let (key, root) = match t.mode {
            TenancyMode::Shared => (t.tenant_key.clone(), t.tenant_table.clone()),
            TenancyMode::DatabasePerTenant => (t.container_key.clone(), t.container_table.clone()),
        };
        Scope {
            key,
            root,
            settings: settings_in(&t.tenant_context),
            app_role: Some(t.app_role.clone()).filter(|r| !r.is_empty()),
            global_tables: t.global_tables.clone(),
        }
    }
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    ty: String,
    not_null: bool,
    has_default: bool,
    /// Identity ALWAYS or generated: never given a value.
    no_insert: bool,
    category: String,
    base: String,
    is_enum: bool,
}

/// A foreign key: its columns and the referenced columns, pairwise.
#[derive(Clone, Debug)]
struct ForeignKey {
    columns: Vec<String>,
    target: u32,
    target_columns: Vec<String>,
}

#[derive(Clone, Debug)]
struct TableInfo {
    oid: u32,
    /// The schema, quoted.
    schema: String,
    /// Schema-qualified and quoted.
    qualified: String,
    /// As shown: `name` in public, else `schema.name`.
    shown: String,
    name: String,
    rls: bool,
    forced: bool,
    policies: i64,
    public_select: bool,
    policy_text: String,
    columns: Vec<Column>,
    fks: Vec<ForeignKey>,
}

/// Values of a seeded row, as text, by column.
type Row = HashMap<String, String>;

/// Runs every check on one database. The connection must be a superuser's
/// (it seeds rows past RLS and switches roles).
pub async fn verify(client: &Client, target: &Target, scope: &Scope, judge: &PolicyRules<'_>) -> Result<(Vec<Finding>, Coverage)> {
    let tables = load_tables(client, target).await?;
    let mut findings = catalog_findings(&tables, scope);
    findings.extend(policies::policy_findings(client, target, judge).await?);
    findings.extend(security_definer_findings(client, target).await?);
    client
        .batch_execute("BEGIN")
        .await
        .map_err(sql_error(target, "cannot start the probe transaction"))?;
    let probed = probe(client, target, scope, &tables).await;
    // Always rolled back: seeded rows, the probe role and its grants vanish.
    let rolled_back = client.batch_execute("ROLLBACK").await;
    let probed = probed?;
    rolled_back.map_err(sql_error(target, "cannot roll back the probe transaction"))?;
    findings.extend(probed);
    let coverage = Coverage::of(&tables, scope, &findings);
    Ok((findings, coverage))
}

async fn load_tables(client: &Client, target: &Target) -> Result<Vec<TableInfo>> {
    let rows = client
        .query(
            "SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
                    has_table_privilege('public', c.oid, 'SELECT'),
                    coalesce((SELECT string_agg(coalesce(pg_get_expr(p.polqual, p.polrelid), '') || ' ' ||
                                                coalesce(pg_get_expr(p.polwithcheck, p.polrelid), ''), ' ')
                              FROM pg_policy p WHERE p.polrelid = c.oid), '')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'strata')
               AND n.nspname NOT LIKE 'pg\\_%'
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
             ORDER BY n.nspname, c.relname",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot list tables"))?;
    let mut tables = Vec::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let columns = client
            .query(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                        a.atthasdef OR a.attidentity <> '', a.attidentity = 'a' OR a.attgenerated <> '',
                        coalesce(b.typcategory, t.typcategory)::text, coalesce(b.typname, t.typname)::text,
                        coalesce(b.typtype, t.typtype) = 'e'
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 LEFT JOIN pg_type b ON t.typtype = 'd' AND b.oid = t.typbasetype
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(sql_error(target, format!("cannot read the columns of {name}")))?
            .into_iter()
            .map(|c| Column {
                name: c.get(0),
                ty: c.get(1),
                not_null: c.get(2),
                has_default: c.get(3),
                no_insert: c.get(4),
                category: c.get(5),
                base: c.get(6),
                is_enum: c.get(7),
            })
            .collect();
        let fks = client
            .query(
                "SELECT ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, i)
                              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.i),
                        c.confrelid,
                        ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, i)
                              JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.i)
                 FROM pg_constraint c
                 WHERE c.conrelid = $1 AND c.contype = 'f'",
                &[&oid],
            )
            .await
            .map_err(sql_error(target, format!("cannot read the foreign keys of {name}")))?
            .into_iter()
            .map(|f| ForeignKey {
                columns: f.get(0),
                target: f.get(1),
                target_columns: f.get(2),
            })
            .collect();
        tables.push(TableInfo {
            oid,
            schema: quote_ident(&schema),
            qualified: format!("{}.{}", quote_ident(&schema), quote_ident(&name)),
            shown: if schema == "public" {
                name.clone()
            } else {
                format!("{schema}.{name}")
            },
            name,
            rls: r.get(3),
            forced: r.get(4),
            policies: r.get(5),
            public_select: r.get(6),
            policy_text: r.get(7),
            columns,
            fks,
        });
    }
    Ok(tables)
}

fn finding(object: &str, check: &str, outcome: Outcome, detail: impl Into<String>) -> Finding {
    Finding {
        object: object.to_string(),
        check: check.to_string(),
        outcome,
        detail: detail.into(),
    }
}

impl TableInfo {
    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|c| c.name == name)
    }
}

/// Whether a table holds scoped rows (it carries the key and is not the root
/// or a declared global table).
fn is_scoped(t: &TableInfo, scope: &Scope) -> bool {
    t.has_column(&scope.key) && t.name != scope.root && !scope.global_tables.iter().any(|g| g == &t.name || g == &t.shown)
}

fn catalog_findings(tables: &[TableInfo], scope: &Scope) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in tables {
        let scoped = is_scoped(t, scope);
        if !t.rls {
            if scoped {
                out.push(finding(
                    &t.shown,
                    "rls-enabled",
                    Outcome::Leak,
                    format!("carries {} but row level security is off", scope.key),
                ));
            }
            if t.public_select {
                out.push(finding(
                    &t.shown,
                    "public-read",
                    Outcome::Leak,
                    "readable by PUBLIC and row level security is off",
                ));
            }
            continue;
        }
        out.push(finding(&t.shown, "rls-enabled", Outcome::Pass, ""));
        out.push(if t.forced {
            finding(&t.shown, "rls-forced", Outcome::Pass, "")
        } else {
            finding(
                &t.shown,
                "rls-forced",
                Outcome::Leak,
                "FORCE ROW LEVEL SECURITY is missing: the owner (and its members) bypass every policy",
            )
        });
        out.push(if t.policies > 0 {
            finding(&t.shown, "policies", Outcome::Pass, format!("{}", t.policies))
        } else {
            finding(&t.shown, "policies", Outcome::Leak, "row level security is on but no policy exists")
        });
    }
    out
}

async fn security_definer_findings(client: &Client, target: &Target) -> Result<Vec<Finding>> {
    let rows = client
        .query(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
               AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) s WHERE s LIKE 'search_path=%')
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(sql_error(target, "cannot list SECURITY DEFINER functions"))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let name: String = r.get(0);
            finding(
                &name,
                "security-definer-search-path",
                Outcome::Leak,
                "SECURITY DEFINER without SET search_path: a caller can shadow the objects it uses",
            )
        })
        .collect())
}

/// The role the probe runs as: the app role when it is fit, else a
/// temporary role (created inside the transaction) that is a member of the
/// app role, so the app role's policies and privileges apply to it.
async fn probe_role(client: &Client, target: &Target, scope: &Scope, tables: &[&TableInfo]) -> Result<(String, String)> {
    let app = match &scope.app_role {
        Some(a) => client
            .query_opt(
                "SELECT r.rolsuper OR r.rolbypassrls,
                        EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p'))
                 FROM pg_roles r WHERE r.rolname = $1",
                &[a],
            )
            .await
            .map_err(sql_error(target, "cannot read the application role"))?
            .map(|r| (a.clone(), r.get::<_, bool>(0), r.get::<_, bool>(1))),
        None => None,
    };
    if let Some((name, false, false)) = &app {
        return Ok((name.clone(), format!("application role {name}")));
    }
    let probe = format!("strata_probe_{}", std::process::id());
    let mut sql = format!("CREATE ROLE {} NOLOGIN NOBYPASSRLS;", quote_ident(&probe));
    let why = match &app {
        Some((name, bypass, _)) => {
            sql.push_str(&format!("GRANT {} TO {};", quote_ident(name), quote_ident(&probe)));
            let reason = if *bypass { "is superuser or BYPASSRLS" } else { "owns tables" };
            format!("temporary role {probe}, member of {name} ({name} {reason})")
        }
        None => {
            let schemas: BTreeSet<&str> = tables.iter().map(|t| t.schema.as_str()).collect();
            for s in schemas {
                sql.push_str(&format!("GRANT USAGE ON SCHEMA {s} TO {};", quote_ident(&probe)));
            }
            for t in tables {
                sql.push_str(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {};",
                    t.qualified,
                    quote_ident(&probe)
                ));
            }
            format!("temporary role {probe} (no application role)")
        }
    };
    client
        .batch_execute(&sql)
        .await
        .map_err(sql_error(target, format!("cannot create the probe role {probe}")))?;
    Ok((probe, why))
}

async fn probe(client: &Client, target: &Target, scope: &Scope, tables: &[TableInfo]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let scoped: Vec<&TableInfo> = tables.iter().filter(|t| t.rls && is_scoped(t, scope)).collect();
    if scoped.is_empty() {
        return Ok(out);
    }
    // A seed refused by row-level security is a missing privilege: say which.
    let user: String = client
        .query_one("SELECT current_user::text", &[])
        .await
        .ok()
        .and_then(|r| r.try_get(0).ok())
        .unwrap_or_default();
    let could_not_seed = |e: String| {
        if e.contains("row-level security") {
            format!(
                "could not seed: {e} (seeding probe rows where row-level security binds this role needs BYPASSRLS: \
                 ALTER ROLE {} BYPASSRLS, as a superuser)",
                quote_ident(&user)
            )
        } else {
            format!("could not seed: {e}")
        }
    };
    let mut seeder = Seeder::new(client, tables);
    // The two scope values: rows of the root table when it exists, else
    // generated values of the key's type.
    let mut keys = Vec::new();
    let root = tables.iter().find(|t| t.name == scope.root);
    for _ in 0..2 {
        let value = match root {
            Some(r) => {
                let pk = scoped
                    .iter()
                    .flat_map(|t| t.fks.iter())
                    .find(|f| f.columns == [scope.key.clone()] && f.target == r.oid)
                    .and_then(|f| f.target_columns.first().cloned())
                    .unwrap_or_else(|| "id".to_string());
                match seeder.seed(r, None, 0).await {
                    Ok(row) => row.get(&pk).cloned(),
                    Err(e) => {
                        out.push(finding(&r.shown, "seed", Outcome::Skipped, could_not_seed(e)));
                        return Ok(out);
                    }
                }
            }
            None => {
                let col = scoped[0]
                    .columns
                    .iter()
                    .find(|c| c.name == scope.key)
                    .expect("scoped tables carry the key");
                let expr = value_for(col, seeder.next()).map_err(|message| super::Error::Sql {
                    target: target.to_string(),
                    context: "cannot generate a scope key".into(),
                    message,
                })?;
                let row = client
                    .query_one(&format!("SELECT ({expr})::text"), &[])
                    .await
                    .map_err(sql_error(target, "cannot generate a scope key"))?;
                row.get::<_, Option<String>>(0)
            }
        };
        let Some(value) = value else {
            out.push(finding(&scope.root, "seed", Outcome::Skipped, "could not seed: no key value"));
            return Ok(out);
        };
        keys.push(value);
    }
    let (a, b) = (keys[0].clone(), keys[1].clone());
    let mut seeded = Vec::new();
    for t in &scoped {
        let ra = seeder.seed(t, Some((&scope.key, &a)), 0).await;
        let rb = seeder.seed(t, Some((&scope.key, &b)), 0).await;
        match (ra, rb) {
            (Ok(_), Ok(_)) => seeded.push(*t),
            (Err(e), _) | (_, Err(e)) => out.push(finding(&t.shown, "seed", Outcome::Skipped, could_not_seed(e))),
        }
    }
    // The insert probes are built before the role switch (they read nothing).
    let mut inserts = Vec::new();
    for t in &seeded {
        inserts.push(seeder.insert_sql(t, Some((&scope.key, &b)), 0).await);
    }
    let (role, why) = probe_role(client, target, scope, &seeded).await?;
    let mut settings: BTreeSet<String> = scope.settings.iter().cloned().collect();
    for t in &seeded {
        settings.extend(settings_in(&t.policy_text));
    }
    let mut setup = format!("SET LOCAL ROLE {};", quote_ident(&role));
    for s in &settings {
        setup.push_str(&format!("SELECT set_config({}, {}, true);", quote_literal(s), quote_literal(&a)));
    }
    if let Err(e) = client.batch_execute(&setup).await {
        let mut err = sql_error(target, format!("cannot switch to the probe role {role}"))(e);
        if let super::Error::Sql { message, .. } = &mut err {
            if message.contains("permission denied to set role") {
                message.push_str(&format!(
                    " (this role must be a member of it: GRANT {} TO {}; on PostgreSQL 16 and later WITH SET TRUE)",
                    quote_ident(&role),
                    quote_ident(&user)
                ));
            }
        }
        return Err(err);
    }
    out.push(finding("-", "probe-role", Outcome::Pass, why));
    for (t, insert) in seeded.iter().zip(inserts) {
        let key = quote_ident(&scope.key);
        let b_lit = quote_literal(&b);
        let a_lit = quote_literal(&a);
        let ty = &t.columns.iter().find(|c| c.name == scope.key).expect("scoped").ty;
        let q = &t.qualified;
        let checks = [
            ("select", format!("SELECT count(*) FROM {q} WHERE {key} = {b_lit}::{ty}")),
            ("update", format!("UPDATE {q} SET {key} = {key} WHERE {key} = {b_lit}::{ty}")),
            ("delete", format!("DELETE FROM {q} WHERE {key} = {b_lit}::{ty}")),
        ];
        // Sanity: A's own rows visible means the context really reached the policies.
        let own = run_probe(client, &format!("SELECT count(*) FROM {q} WHERE {key} = {a_lit}::{ty}")).await;
        if !matches!(own, Ok(n) if n > 0) {
            out.push(finding(
                &t.shown,
                "own-rows",
                Outcome::Skipped,
                format!(
                    "rows of A are not visible as A ({}): check the tenant context setting",
                    match own {
                        Ok(_) => "0 rows".to_string(),
                        Err(e) => e,
                    }
                ),
            ));
        }
        for (name, sql) in checks {
            out.push(match run_probe(client, &sql).await {
                Ok(0) => finding(&t.shown, name, Outcome::Pass, "0 rows of B"),
                Ok(n) => finding(&t.shown, name, Outcome::Leak, format!("{n} row(s) of B affected as A")),
                Err(e) if e.starts_with(INSUFFICIENT_PRIVILEGE) => finding(&t.shown, name, Outcome::Pass, "denied"),
                Err(e) => finding(&t.shown, name, Outcome::Skipped, e),
            });
        }
        out.push(match insert {
            Err(e) => finding(&t.shown, "insert", Outcome::Skipped, format!("could not build a row: {e}")),
            Ok(sql) => match run_probe(client, &sql).await {
                Ok(_) => finding(&t.shown, "insert", Outcome::Leak, "a row with B's key was accepted as A"),
                Err(e) if e.starts_with(INSUFFICIENT_PRIVILEGE) => finding(&t.shown, "insert", Outcome::Pass, "rejected (42501)"),
                Err(e) => finding(&t.shown, "insert", Outcome::Skipped, format!("rejected for another reason: {e}")),
            },
        });
    }
    Ok(out)
}

/// Runs one probe statement in a savepoint: the count it returns or the rows
/// it affected, or `SQLSTATE: message`.
async fn run_probe(client: &Client, sql: &str) -> std::result::Result<u64, String> {
    client.batch_execute("SAVEPOINT strata_probe").await.map_err(|e| describe(&e))?;
    let result = if sql.starts_with("SELECT") {
        client.query_one(sql, &[]).await.map(|r| r.get::<_, i64>(0) as u64)
    } else {
        client.execute(sql, &[]).await
    };
    let _ = client.batch_execute("ROLLBACK TO SAVEPOINT strata_probe").await;
    result.map_err(|e| format!("{}: {}", sqlstate(&e).unwrap_or("?????"), describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_found_in_policies() {
        assert_eq!(
            settings_in("(container_id = ( SELECT (NULLIF(current_setting('orbis.container_id'::text, true), ''::text))::uuid))"),
            vec!["orbis.container_id"]
        );
        assert_eq!(settings_in("current_setting( 'app.org_id')::uuid"), vec!["app.org_id"]);
    }
}
