//! `strata verify-isolation`: prove tenant isolation on a live database.
//!
//! Two kinds of evidence, per table:
//! - catalog checks: RLS enabled and forced, at least one policy, no table
//!   readable by PUBLIC without RLS, no SECURITY DEFINER function without a
//!   fixed search_path;
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

/// Seeds two rows into every user table (parents first, following single-
/// and multi-column foreign keys), each in its own savepoint; a table whose
/// rows cannot be generated stays empty. Used by `strata check --shadow` so
/// that rewrites and locks are observed on populated tables. Returns the
/// tables that got no row, as shown, with the reason.
pub async fn seed_every_table(client: &Client, target: &Target) -> Result<Vec<(String, String)>> {
    let tables = load_tables(client, target).await?;
    let mut seeder = Seeder {
        client,
        tables: tables.iter().map(|t| (t.oid, t)).collect(),
        counter: 0,
        parents: HashMap::new(),
        nulled: HashMap::new(),
    };
    client.batch_execute("BEGIN").await.map_err(sql_error(target, "cannot seed"))?;
    let mut unseeded = Vec::new();
    for t in &tables {
        let first = seeder.seed(t, None, 0).await;
        let second = seeder.seed(t, None, 0).await;
        if let (Err(e), Err(_)) = (first, second) {
            unseeded.push((t.shown.clone(), e));
        }
    }
    client.batch_execute("COMMIT").await.map_err(sql_error(target, "cannot seed"))?;
    Ok(unseeded)
}

/// SQLSTATE insufficient_privilege: what a WITH CHECK violation raises.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE check_violation.
const CHECK_VIOLATION: &str = "23514";

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Leak,
    /// The probe could not run (a row could not be seeded, an unexpected error).
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "ok",
            Outcome::Leak => "LEAK",
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
pub async fn verify(client: &Client, target: &Target, scope: &Scope) -> Result<Vec<Finding>> {
    let tables = load_tables(client, target).await?;
    let mut findings = catalog_findings(&tables, scope);
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
    Ok(findings)
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

/// A value expression for a column, or why there is none. `n` makes values
/// of different rows differ (unique constraints).
fn value_for(c: &Column, n: u32) -> std::result::Result<String, String> {
    let expr = if c.is_enum {
        format!("(SELECT e FROM unnest(enum_range(NULL::{})) WITH ORDINALITY AS u(e, i) ORDER BY (i + {n}) % cardinality(enum_range(NULL::{})) LIMIT 1)", c.ty, c.ty)
    } else {
        match (c.base.as_str(), c.category.as_str()) {
            ("uuid", _) => "gen_random_uuid()".to_string(),
            ("json" | "jsonb", _) => "'{}'".to_string(),
            ("bytea", _) => "'\\x00'".to_string(),
            ("inet" | "cidr", _) => format!("'10.0.{}.{}'", (n / 250) % 250, n % 250 + 1),
            ("interval", _) => "'1 hour'".to_string(),
            ("date" | "timestamp" | "timestamptz" | "time" | "timetz", _) => "now()".to_string(),
            (_, "A") => "'{}'".to_string(),
            (_, "S") => quote_literal(&format!("p{n}")),
            (_, "N") => format!("{}", n % 30000),
            (_, "B") => "false".to_string(),
            (other, _) => return Err(format!("no probe value for column {} of type {} ({other})", c.name, c.ty)),
        }
    };
    Ok(format!("({expr})::{}", c.ty))
}

/// Seeds rows with generated values; parents first (one per table and scope).
struct Seeder<'a> {
    client: &'a Client,
    tables: HashMap<u32, &'a TableInfo>,
    counter: u32,
    parents: HashMap<(u32, Option<String>), Row>,
    /// Nullable columns left NULL per table: they appear in a CHECK that
    /// rejected the generated values.
    nulled: HashMap<u32, BTreeSet<String>>,
}

impl<'a> Seeder<'a> {
    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    /// The INSERT of one row of `t` (with the key set to `key` when given).
    async fn insert_sql(&mut self, t: &TableInfo, key: Option<(&str, &str)>, depth: u32) -> std::result::Result<String, String> {
        let nulled = self.nulled.get(&t.oid).cloned().unwrap_or_default();
        let n = self.next();
        let is_key = |name: &str| key.is_some_and(|(k, _)| k == name);
        // A foreign key with a required column (other than the scope key)
        // takes every one of its columns from one parent row, so that
        // multi-column keys match a real tuple.
        let mut from_parent: HashMap<String, String> = HashMap::new();
        for fk in &t.fks {
            let required = fk.columns.iter().any(|name| {
                !is_key(name)
                    && t.columns
                        .iter()
                        .any(|c| c.name == *name && c.not_null && !c.has_default && !c.no_insert)
            });
            if !required {
                continue;
            }
            let parent = self.parent(fk.target, key, depth + 1).await?;
            for (column, target_column) in fk.columns.iter().zip(&fk.target_columns) {
                if is_key(column) || from_parent.contains_key(column) {
                    continue;
                }
                let value = parent
                    .get(target_column)
                    .ok_or_else(|| format!("parent row of {} has no {target_column}", t.shown))?;
                from_parent.insert(column.clone(), value.clone());
            }
        }
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        for c in &t.columns {
            if c.no_insert {
                continue;
            }
            if let Some((k, v)) = key.filter(|(k, _)| *k == c.name) {
                cols.push(quote_ident(k));
                vals.push(format!("{}::{}", quote_literal(v), c.ty));
                continue;
            }
            if let Some(value) = from_parent.get(&c.name) {
                cols.push(quote_ident(&c.name));
                vals.push(format!("{}::{}", quote_literal(value), c.ty));
                continue;
            }
            if t.fks.iter().any(|f| f.columns.contains(&c.name)) {
                // Nullable or defaulted: left to the default.
                continue;
            }
            if c.has_default || nulled.contains(&c.name) {
                continue;
            }
            match value_for(c, n) {
                Ok(v) => {
                    cols.push(quote_ident(&c.name));
                    vals.push(v);
                }
                Err(e) if c.not_null => return Err(e),
                Err(_) => {}
            }
        }
        Ok(if cols.is_empty() {
            format!("INSERT INTO {} AS strata_row DEFAULT VALUES", t.qualified)
        } else {
            format!(
                "INSERT INTO {} AS strata_row ({}) VALUES ({})",
                t.qualified,
                cols.join(", "),
                vals.join(", ")
            )
        })
    }

    /// One row of a parent table, seeded once per scope.
    fn parent<'s>(
        &'s mut self,
        oid: u32,
        key: Option<(&'s str, &'s str)>,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<Row, String>> + 's>> {
        Box::pin(async move {
            let t = *self.tables.get(&oid).ok_or("a parent table is not a plain user table")?;
            // The scope key travels down only to parents that carry it.
            let key = key.filter(|(k, _)| t.has_column(k));
            let memo = (oid, key.map(|(_, v)| v.to_string()));
            if let Some(row) = self.parents.get(&memo) {
                return Ok(row.clone());
            }
            if depth > 8 {
                return Err(format!("foreign keys nest too deep at {}", t.shown));
            }
            let row = self.seed(t, key, depth).await.map_err(|e| format!("parent {}: {e}", t.shown))?;
            self.parents.insert(memo, row.clone());
            Ok(row)
        })
    }

    /// Inserts one row (inside a savepoint) and returns its values. A CHECK
    /// violation is retried with the constraint's nullable columns left NULL.
    async fn seed(&mut self, t: &TableInfo, key: Option<(&str, &str)>, depth: u32) -> std::result::Result<Row, String> {
        loop {
            let sql = self.insert_sql(t, key, depth).await?;
            let sql = format!("{sql} RETURNING to_jsonb(strata_row)::text");
            self.client.batch_execute("SAVEPOINT strata_seed").await.map_err(|e| describe(&e))?;
            let e = match self.client.query_one(&sql, &[]).await {
                Ok(row) => {
                    self.client
                        .batch_execute("RELEASE SAVEPOINT strata_seed")
                        .await
                        .map_err(|e| describe(&e))?;
                    let json: String = row.get(0);
                    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).map_err(|e| e.to_string())?;
                    return Ok(map
                        .into_iter()
                        .map(|(k, v)| {
                            let text = match v {
                                serde_json::Value::String(s) => s,
                                other => other.to_string(),
                            };
                            (k, text)
                        })
                        .collect());
                }
                Err(e) => e,
            };
            let _ = self.client.batch_execute("ROLLBACK TO SAVEPOINT strata_seed").await;
            if sqlstate(&e) == Some(CHECK_VIOLATION) && self.null_columns_of(t, &e).await {
                continue;
            }
            return Err(describe(&e));
        }
    }
}

impl Seeder<'_> {
    /// Marks the nullable columns of the violated CHECK as NULL; false when
    /// there is nothing new to leave out.
    async fn null_columns_of(&mut self, t: &TableInfo, e: &tokio_postgres::Error) -> bool {
        let Some(name) = e.as_db_error().and_then(|d| d.constraint()) else {
            return false;
        };
        let Ok(rows) = self
            .client
            .query(
                "SELECT a.attname FROM pg_constraint c
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                 WHERE c.conrelid = $1 AND c.conname = $2 AND NOT a.attnotnull",
                &[&t.oid, &name],
            )
            .await
        else {
            return false;
        };
        let set = self.nulled.entry(t.oid).or_default();
        let before = set.len();
        set.extend(rows.into_iter().map(|r| r.get::<_, String>(0)));
        set.len() > before
    }
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
            let schemas: BTreeSet<&str> = tables.iter().filter_map(|t| t.qualified.split_once('.').map(|(s, _)| s)).collect();
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
    let mut seeder = Seeder {
        client,
        tables: tables.iter().map(|t| (t.oid, t)).collect(),
        counter: 0,
        parents: HashMap::new(),
        nulled: HashMap::new(),
    };
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

    #[test]
    fn text_values_differ_per_row() {
        let c = Column {
            name: "title".into(),
            ty: "text".into(),
            not_null: true,
            has_default: false,
            no_insert: false,
            category: "S".into(),
            base: "text".into(),
            is_enum: false,
        };
        assert_ne!(value_for(&c, 1), value_for(&c, 2));
    }
}
