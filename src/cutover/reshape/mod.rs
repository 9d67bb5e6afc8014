//! The SQL of a `reshape` inside one tenant database: expand (additive
//! DDL), the dual-write trigger, the keyset backfill and verification
//! ([`backfill`]), contract, and the rollback of everything before contract.
//!
//! Rows to backfill carry a marker column (`strata_needs_backfill`, added
//! by expand with the default `true`, which PostgreSQL 11+ adds without a
//! rewrite); the trigger clears it on every write it handles. The backfill
//! walks the key (any unique btree key: uuid, text, bigint, several columns)
//! up to its largest value at start and touches only marked rows, so it
//! finishes while inserts continue: rows written after the trigger exists
//! are already correct. Every DDL statement runs with `lock_timeout` and is
//! retried with a backoff when it times out waiting for a lock.
//!
//! When the file names the migration that carries the new shape
//! ([`Carrier`]), contract records it in the tenant's history, so that
//! `strata drift` replays the tenant to the shape it has and `strata
//! migrate` does not apply it again.

pub mod backfill;

use std::time::Duration;

use tokio_postgres::Client;

pub use backfill::{BatchStats, Verification};

use super::keyset;
use super::plan::{Cutover, Table};
use super::{Error, Result, Sql};
use crate::pg::conn::sql_error;
use crate::pg::retry::{self, Retry};
use crate::pg::{quote_ident, quote_literal, Target};

/// The marker column of rows the backfill has not reached yet.
pub const MARKER: &str = "strata_needs_backfill";

/// A statement that failed on `lock_timeout` (55P03) is tried this often in all.
const LOCK_RETRY: Retry = Retry {
    attempts: 5,
    base: Duration::from_millis(200),
};

/// The setting a backfill batch sets (to the table's `schema.name`, for its
/// transaction only) so that the dual-write trigger of that table stays out
/// of the batch's own `UPDATE`, which computes the new columns itself.
pub const BACKFILL_SETTING: &str = "strata.backfill";

/// The migration that carries a reshape's new shape in the workspace (for
/// tenants created later), as contract records it in a reshaped tenant's
/// history.
#[derive(Clone, Debug)]
pub struct Carrier {
    /// `core`, `verticals/agency`, ...
    pub layer: String,
    pub version: String,
    pub name: String,
    /// SHA-256 of the file, as `strata migrate` records it.
    pub checksum: String,
    /// The file, relative to the workspace.
    pub display: String,
    /// The versions of the layer before it: applied on the tenant, or the
    /// recorded history would skip them.
    pub earlier: Vec<String>,
}

/// A tenant database under reshape.
pub struct TenantDb<'a> {
    pub target: Target,
    pub client: Client,
    pub cutover: &'a Cutover,
    /// The migration contract records (see [`Carrier`]), when the tenant has its layer.
    pub carrier: Option<Carrier>,
}

pub(crate) fn short(name: &str) -> String {
    let mut s: String = name.replace('-', "_");
    s.truncate(63);
    s
}

/// The dual-write trigger of a cutover (one per table, same name).
pub fn trigger_name(c: &Cutover) -> String {
    short(&format!("strata_dual_write_{}", c.name))
}

/// The trigger function of one table, in the tenant's `strata` schema.
pub fn function_name(c: &Cutover, t: &Table) -> String {
    format!("strata.{}", quote_ident(&short(&format!("dw_{}__{}", c.name, t.name))))
}

/// The trigger function: `up` fills the new columns from the old ones,
/// `down` the old from the new, and the backfill marker is cleared.
pub fn trigger_function(c: &Cutover, t: &Table) -> String {
    let assign = |col: &str, expr: &str| format!("SELECT ({expr}) INTO NEW.{} FROM (SELECT NEW.*) AS strata_row;", quote_ident(col));
    let mut insert = String::new();
    let mut update = String::new();
    for ch in &t.changes {
        let new = quote_ident(&ch.new);
        let up = assign(&ch.new, &ch.up);
        match (&ch.replaces, &ch.down) {
            (Some(old), Some(down)) => {
                let oldq = quote_ident(old);
                let down = assign(old, down);
                insert.push_str(&format!(
                    "    IF NEW.{new} IS NULL THEN {up}\n    ELSIF NEW.{oldq} IS NULL THEN {down}\n    END IF;\n"
                ));
                // A write through the new column only (a flipped writer) fills the old one; anything else
                // (an old writer, the backfill) recomputes the new one.
                update.push_str(&format!(
                    "    IF NEW.{new} IS DISTINCT FROM OLD.{new} AND NEW.{oldq} IS NOT DISTINCT FROM OLD.{oldq} THEN {down}\n    \
                     ELSE {up}\n    END IF;\n"
                ));
            }
            _ => {
                insert.push_str(&format!("    {up}\n"));
                update.push_str(&format!("    {up}\n"));
            }
        }
    }
    format!(
        "CREATE SCHEMA IF NOT EXISTS strata;\n\
         CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $strata$\nBEGIN\n  IF TG_OP = 'INSERT' THEN\n{insert}  \
         ELSE\n{update}  END IF;\n  NEW.{MARKER} := false;\n  RETURN NEW;\nEND\n$strata$;\n",
        function_name(c, t)
    )
}

/// The trigger's `WHEN`: every write except the top-level `UPDATE` of a
/// backfill batch of this table (a write made by another trigger during the
/// batch still goes through it).
pub fn trigger_condition(t: &Table) -> String {
    format!(
        "pg_trigger_depth() > 0 OR current_setting({}, true) IS DISTINCT FROM {}",
        quote_literal(BACKFILL_SETTING),
        quote_literal(&t.display())
    )
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r tokio_postgres::Row, i: usize, what: &str) -> Result<T> {
    r.try_get(i).map_err(|e| Error::Refused(format!("{what}: unexpected value: {e}")))
}

impl<'a> TenantDb<'a> {
    pub async fn connect(spec: &str, cutover: &'a Cutover) -> Result<TenantDb<'a>> {
        let target = Target::parse(spec)?;
        let client = crate::pg::connect(&target).await?;
        Ok(TenantDb {
            target,
            client,
            cutover,
            carrier: None,
        })
    }

    fn err(&self, context: String) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        let f = sql_error(&self.target, context);
        move |e| Error::Pg(f(e))
    }

    fn trigger_name(&self) -> String {
        trigger_name(self.cutover)
    }

    fn function_name(&self, t: &Table) -> String {
        function_name(self.cutover, t)
    }

    /// Runs `sql` in one transaction with the plan's lock_timeout, retrying
    /// lock timeouts with a growing pause.
    async fn ddl(&self, what: &str, sql: &str) -> Result<()> {
        let (client, lt) = (&self.client, self.cutover.settings.lock_timeout.as_str());
        let (res, _) = retry::on_lock_timeout(LOCK_RETRY, || retry::transaction(client, lt, sql)).await;
        res.map_err(|e| Error::Pg(sql_error(&self.target, what.to_string())(e)))
    }

    async fn run_all(&self, statements: &[Sql]) -> Result<()> {
        for s in statements {
            self.ddl(&s.what, &s.sql).await?;
        }
        Ok(())
    }

    async fn column_type(&self, t: &Table, column: &str) -> Result<Option<String>> {
        let row = self
            .client
            .query_opt(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                &[&t.qualified(), &column],
            )
            .await
            .map_err(self.err(format!("reading {}.{column}", t.display())))?;
        row.map(|r| get(&r, 0, "format_type")).transpose()
    }

    async fn exists(&self, t: &Table) -> Result<bool> {
        let row = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.qualified()])
            .await
            .map_err(self.err(format!("looking up {}", t.display())))?;
        get(&row, 0, "to_regclass")
    }

    /// Checks that tables, keys and old columns exist, that the key can be
    /// walked, and that the carrying migration is the tenant's next one.
    pub async fn preflight(&self) -> Result<String> {
        let mut problems = Vec::new();
        // Forced RLS applies to the table owner too: a backfill that cannot see every row would
        // "finish" early and verification would compare a subset.
        let bypass: bool = get(
            &self
                .client
                .query_one("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", &[])
                .await
                .map_err(self.err("reading the current role".into()))?,
            0,
            "pg_roles",
        )?;
        for t in &self.cutover.tables {
            if !self.exists(t).await? {
                problems.push(format!("table {} does not exist", t.display()));
                continue;
            }
            // RLS binds the owner only when forced.
            let row = self
                .client
                .query_one(
                    "SELECT relrowsecurity AND (relforcerowsecurity OR NOT pg_has_role(current_user, relowner, 'USAGE')), \
                            current_user::text FROM pg_class WHERE oid = to_regclass($1)",
                    &[&t.qualified()],
                )
                .await
                .map_err(self.err(format!("reading {}", t.display())))?;
            let rls: bool = get(&row, 0, "pg_class")?;
            if rls && !bypass {
                let user: String = get(&row, 1, "current_user")?;
                problems.push(format!(
                    "{} has row-level security that binds this role, which has neither SUPERUSER nor BYPASSRLS: the backfill \
                     would not see every row. Grant it: ALTER ROLE {} BYPASSRLS (as a superuser; hosted services' admin roles \
                     often have it), or connect as a role that has it",
                    t.display(),
                    crate::pg::quote_ident(&user)
                ));
            }
            problems.extend(keyset::problems(&self.client, &self.target, &t.qualified(), &t.display(), &t.key).await?);
            for ch in &t.changes {
                if let Some(old) = &ch.replaces {
                    if self.column_type(t, old).await?.is_none() {
                        problems.push(format!("{}: column {old} does not exist", t.display()));
                    }
                }
                // Expand adds it with IF NOT EXISTS: an existing column would be silently adopted.
                if self.column_type(t, &ch.new).await?.is_some() {
                    problems.push(format!("{}: the new column {} already exists", t.display(), ch.new));
                }
            }
            if self.column_type(t, MARKER).await?.is_some() {
                problems.push(format!(
                    "{}: {MARKER} exists: another reshape of this table is in progress",
                    t.display()
                ));
            }
        }
        problems.extend(self.carrier_problems().await?);
        if problems.is_empty() {
            Ok(format!("{} tables ready", self.cutover.tables.len()))
        } else {
            Err(Error::Refused(format!(
                "{}: preflight failed: {}",
                self.target,
                problems.join("; ")
            )))
        }
    }

    /// The carrying migration must not be applied yet (the reshape would
    /// then change a shape the history already claims) and every earlier
    /// migration of its layer must be (or recording it would skip them).
    async fn carrier_problems(&self) -> Result<Vec<String>> {
        let Some(m) = &self.carrier else { return Ok(Vec::new()) };
        let history = crate::pg::history::read(&self.client, &self.target).await?;
        let applied = |v: &str| {
            history
                .iter()
                .any(|h| h.layer == m.layer && h.version == v && h.status == crate::pg::history::Status::Applied)
        };
        let mut problems = Vec::new();
        if history.iter().any(|h| h.layer == m.layer && h.version == m.version) {
            problems.push(format!(
                "migration {} ({}/{}) is already recorded in this tenant's history: the reshape would change a shape the \
                 history already claims",
                m.display, m.layer, m.version
            ));
        }
        let missing: Vec<&str> = m.earlier.iter().map(String::as_str).filter(|v| !applied(v)).collect();
        if !missing.is_empty() {
            problems.push(format!(
                "layer {} has migrations before {} not applied here ({}): run `strata migrate` first",
                m.layer,
                m.display,
                missing.join(", ")
            ));
        }
        Ok(problems)
    }

    /// The statements of expand: the new columns (nullable) and the marker.
    pub async fn expand_sql(&self) -> Result<Vec<Sql>> {
        let mut out = Vec::new();
        for t in &self.cutover.tables {
            let mut parts = Vec::new();
            for ch in &t.changes {
                let ty = match (&ch.sql_type, &ch.replaces) {
                    (Some(ty), _) => ty.clone(),
                    (None, Some(old)) => match self.column_type(t, old).await? {
                        Some(ty) => ty,
                        // Already expanded and contracted by hand? The new column must exist then.
                        None => self
                            .column_type(t, &ch.new)
                            .await?
                            .ok_or_else(|| Error::Refused(format!("{}: neither {old} nor {} exists", t.display(), ch.new)))?,
                    },
                    (None, None) => {
                        return Err(Error::Refused(format!(
                            "{}: column {} has no type (the file must give one)",
                            t.display(),
                            ch.new
                        )))
                    }
                };
                parts.push(format!("ADD COLUMN IF NOT EXISTS {} {ty}", quote_ident(&ch.new)));
            }
            parts.push(format!("ADD COLUMN IF NOT EXISTS {MARKER} boolean NOT NULL DEFAULT true"));
            out.push(Sql::new(
                "tenant",
                format!("expanding {}", t.display()),
                format!("ALTER TABLE {} {};", t.qualified(), parts.join(", ")),
            ));
        }
        Ok(out)
    }

    pub async fn expand(&self) -> Result<String> {
        self.run_all(&self.expand_sql().await?).await?;
        let added: usize = self.cutover.tables.iter().map(|t| t.changes.len()).sum();
        Ok(format!("{added} columns added"))
    }

    pub fn dual_write_sql(&self) -> Vec<Sql> {
        let trigger = quote_ident(&self.trigger_name());
        self.cutover
            .tables
            .iter()
            .map(|t| {
                Sql::new(
                    "tenant",
                    format!("installing the dual-write trigger on {}", t.display()),
                    format!(
                        "{}DROP TRIGGER IF EXISTS {trigger} ON {q};\nCREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {q} \
                         FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}();\n",
                        trigger_function(self.cutover, t),
                        trigger_condition(t),
                        self.function_name(t),
                        q = t.qualified()
                    ),
                )
            })
            .collect()
    }

    pub async fn dual_write(&self) -> Result<String> {
        self.run_all(&self.dual_write_sql()).await?;
        Ok(format!("trigger {} on {} tables", self.trigger_name(), self.cutover.tables.len()))
    }

    /// The statements of contract: trigger, function, old columns, marker;
    /// then the carrying migration recorded as applied.
    pub fn contract_sql(&self) -> Vec<Sql> {
        let trigger = quote_ident(&self.trigger_name());
        let mut out: Vec<Sql> = self
            .cutover
            .tables
            .iter()
            .map(|t| {
                let mut cols: Vec<String> = t.changes.iter().filter_map(|c| c.replaces.clone()).collect();
                cols.extend(t.drop.iter().cloned());
                cols.push(MARKER.into());
                let drops: Vec<String> = cols.iter().map(|c| format!("DROP COLUMN IF EXISTS {}", quote_ident(c))).collect();
                Sql::new(
                    "tenant",
                    format!("contracting {}", t.display()),
                    format!(
                        "DROP TRIGGER IF EXISTS {trigger} ON {q};\nDROP FUNCTION IF EXISTS {}();\nALTER TABLE {q} {};\n",
                        self.function_name(t),
                        drops.join(", "),
                        q = t.qualified()
                    ),
                )
            })
            .collect();
        if let Some(m) = &self.carrier {
            out.push(Sql::new(
                "tenant",
                format!("recording {} as applied (it carries the new shape)", m.display),
                format!(
                    "{}\nINSERT INTO strata.schema_history (layer, version, name, checksum, status, tool_version, execution_ms) \
                     VALUES ({}, {}, {}, {}, 'applied', {}, 0) ON CONFLICT (layer, version) DO NOTHING;",
                    crate::pg::history::SCHEMA_SQL,
                    quote_literal(&m.layer),
                    quote_literal(&m.version),
                    quote_literal(&m.name),
                    quote_literal(&m.checksum),
                    quote_literal(&format!("{} (cutover {})", crate::pg::apply::TOOL_VERSION, self.cutover.name)),
                ),
            ));
        }
        out
    }

    pub async fn contract(&self) -> Result<String> {
        self.run_all(&self.contract_sql()).await?;
        let dropped: usize = self
            .cutover
            .tables
            .iter()
            .map(|t| t.changes.iter().filter(|c| c.replaces.is_some()).count() + t.drop.len())
            .sum();
        Ok(match &self.carrier {
            Some(m) => format!("{dropped} old columns dropped; {} recorded as applied", m.display),
            None => format!(
                "{dropped} old columns dropped; no `migration` carries the new shape, so `strata drift` reports this tenant \
                 until one is recorded"
            ),
        })
    }

    /// The statements undoing expand and dual-write (for the tables that exist).
    pub async fn rollback_sql(&self) -> Result<Vec<Sql>> {
        let trigger = quote_ident(&self.trigger_name());
        let mut out = Vec::new();
        for t in &self.cutover.tables {
            if !self.exists(t).await? {
                continue;
            }
            let mut drops: Vec<String> = t
                .changes
                .iter()
                .map(|c| format!("DROP COLUMN IF EXISTS {}", quote_ident(&c.new)))
                .collect();
            drops.push(format!("DROP COLUMN IF EXISTS {MARKER}"));
            out.push(Sql::new(
                "tenant",
                format!("rolling back {}", t.display()),
                format!(
                    "DROP TRIGGER IF EXISTS {trigger} ON {q};\nDROP FUNCTION IF EXISTS {}();\nALTER TABLE {q} {};\n",
                    self.function_name(t),
                    drops.join(", "),
                    q = t.qualified()
                ),
            ));
        }
        Ok(out)
    }

    /// Undoes expand and dual-write: the old columns were kept current by
    /// the trigger, so dropping the new ones loses nothing.
    pub async fn rollback(&self) -> Result<String> {
        self.run_all(&self.rollback_sql().await?).await?;
        Ok("trigger and new columns dropped".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_function_of_a_rename_and_a_derived_column() {
        let c = super::super::plan::parse(
            std::path::Path::new("rename-body.toml"),
            "kind = \"reshape\"\nretention = \"1d\"\n[[table]]\nname = \"messages\"\nrename = { body = \"text\" }\n\
             [[table.column]]\nname = \"body_length\"\ntype = \"integer\"\nup = \"length(body)\"\n",
        )
        .unwrap();
        insta::assert_snapshot!(trigger_function(&c, &c.tables[0]));
        assert_eq!(trigger_name(&c), "strata_dual_write_rename_body");
        assert_eq!(
            trigger_condition(&c.tables[0]),
            "pg_trigger_depth() > 0 OR current_setting('strata.backfill', true) IS DISTINCT FROM 'public.messages'"
        );
    }
}
