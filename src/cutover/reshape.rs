//! The SQL of a `reshape` inside one tenant database: expand (additive
//! DDL), the dual-write trigger, the keyset backfill, verification,
//! contract, and the rollback of everything before contract.
//!
//! Rows to backfill carry a marker column (`strata_needs_backfill`, added
//! by expand with the default `true`, which PostgreSQL 11+ adds without a
//! rewrite); the trigger clears it on every write it handles. The backfill
//! walks the key up to its maximum at start and touches only marked rows, so
//! it finishes while inserts continue: rows written after the trigger exists
//! are already correct. Every DDL statement runs with `lock_timeout` and is
//! retried with a backoff when it times out waiting for a lock.
//!
//! A batch is a key range (its last key read first, so the `UPDATE` is a
//! range scan of the key's index whatever the batch size) updated in one
//! statement that computes the new columns itself: the trigger's `WHEN`
//! skips the top-level statement of a transaction that set
//! [`BACKFILL_SETTING`] to the table's name, which is what makes the
//! backfill run near the speed of one whole-table `UPDATE` (a PL/pgSQL call
//! and one query per new column and row cost about as much as the update
//! itself). Same values as the trigger's: on a backfill write only the
//! marker changes, so the trigger would take its `up` branch for every
//! column. A user `BEFORE UPDATE` trigger that rewrites a replaced column
//! during the batch is the exception: the batch computed from the value
//! before it (verify reports such rows).

use std::time::Duration;

use tokio_postgres::Client;

use super::plan::{Cutover, Table};
use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::{quote_ident, quote_literal, Target};

/// The marker column of rows the backfill has not reached yet.
pub const MARKER: &str = "strata_needs_backfill";

/// Attempts of a statement that failed on `lock_timeout` (55P03).
const LOCK_ATTEMPTS: u32 = 5;

/// The setting a backfill batch sets (to the table's `schema.name`, for its
/// transaction only) so that the dual-write trigger of that table stays out
/// of the batch's own `UPDATE`, which computes the new columns itself.
pub const BACKFILL_SETTING: &str = "strata.backfill";

/// One committed backfill batch, as [`TenantDb::backfill_observed`] reports it.
#[derive(Clone, Debug)]
pub struct BatchStats {
    /// `schema.name`.
    pub table: String,
    /// Rows the batch updated (marked rows of its key range).
    pub rows: u64,
    /// From `BEGIN` to the end of `COMMIT`: a bound on how long the batch held its row locks.
    pub held: Duration,
    /// 1, or more when a lock timeout was retried.
    pub attempts: u32,
}

/// Whether the SQL expression `expr` may read column `name` (a whole-word,
/// case-insensitive match; a false positive only costs the faster path).
fn mentions(expr: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let (expr, name) = (expr.to_ascii_lowercase(), name.to_ascii_lowercase());
    expr.match_indices(&name)
        .any(|(i, m)| !expr[..i].chars().next_back().is_some_and(word) && !expr[i + m.len()..].chars().next().is_some_and(word))
}

/// A tenant database under reshape.
pub struct TenantDb<'a> {
    pub target: Target,
    pub client: Client,
    pub cutover: &'a Cutover,
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

impl<'a> TenantDb<'a> {
    pub async fn connect(spec: &str, cutover: &'a Cutover) -> Result<TenantDb<'a>> {
        let target = Target::parse(spec)?;
        let client = crate::pg::connect(&target).await?;
        Ok(TenantDb { target, client, cutover })
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
    async fn ddl(&mut self, what: &str, sql: &str) -> Result<()> {
        let lt = quote_literal(&self.cutover.settings.lock_timeout);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = self.client.transaction().await.map_err(sql_error(&self.target, what.to_string()))?;
            let res = tx.batch_execute(&format!("SET LOCAL lock_timeout = {lt};\n{sql}")).await;
            let res = match res {
                Ok(()) => tx.commit().await,
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => return Ok(()),
                Err(e) if crate::pg::sqlstate(&e) == Some("55P03") && attempt < LOCK_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt))).await;
                }
                Err(e) => return Err(Error::Pg(sql_error(&self.target, what.to_string())(e))),
            }
        }
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
        Ok(row.map(|r| r.get(0)))
    }

    /// Checks that tables, keys and old columns exist.
    pub async fn preflight(&mut self) -> Result<String> {
        let mut problems = Vec::new();
        // Forced RLS applies to the table owner too: a backfill that cannot see every row would
        // "finish" early and verification would compare a subset.
        let bypass: bool = self
            .client
            .query_one("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user", &[])
            .await
            .map_err(self.err("reading the current role".into()))?
            .try_get(0)
            .unwrap_or(false);
        for t in &self.cutover.tables {
            let exists: bool = self
                .client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.qualified()])
                .await
                .map_err(self.err(format!("looking up {}", t.display())))?
                .get(0);
            if !exists {
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
            let rls: bool = row.try_get(0).unwrap_or(true);
            if rls && !bypass {
                let user: String = row.try_get(1).unwrap_or_default();
                problems.push(format!(
                    "{} has row-level security that binds this role, which has neither SUPERUSER nor BYPASSRLS: the backfill \
                     would not see every row. Grant it: ALTER ROLE {} BYPASSRLS (as a superuser; hosted services' admin roles \
                     often have it), or connect as a role that has it",
                    t.display(),
                    crate::pg::quote_ident(&user)
                ));
            }
            let unique: bool = self
                .client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                     WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = $2)",
                    &[&t.qualified(), &t.key],
                )
                .await
                .map_err(self.err(format!("reading the indexes of {}", t.display())))?
                .get(0);
            if !unique {
                problems.push(format!(
                    "{}: key column {} has no single-column unique index (the backfill walks it)",
                    t.display(),
                    t.key
                ));
            }
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

    pub async fn expand(&mut self) -> Result<String> {
        let mut added = 0;
        for t in &self.cutover.tables.clone() {
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
                    (None, None) => unreachable!("validated: a column that replaces nothing has a type"),
                };
                parts.push(format!("ADD COLUMN IF NOT EXISTS {} {ty}", quote_ident(&ch.new)));
                added += 1;
            }
            parts.push(format!("ADD COLUMN IF NOT EXISTS {MARKER} boolean NOT NULL DEFAULT true"));
            self.ddl(
                &format!("expanding {}", t.display()),
                &format!("ALTER TABLE {} {};", t.qualified(), parts.join(", ")),
            )
            .await?;
        }
        Ok(format!("{added} columns added"))
    }

    pub async fn dual_write(&mut self) -> Result<String> {
        let trigger = quote_ident(&self.trigger_name());
        for t in &self.cutover.tables.clone() {
            let sql = format!(
                "{}DROP TRIGGER IF EXISTS {trigger} ON {q};\nCREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {q} \
                 FOR EACH ROW WHEN ({}) EXECUTE FUNCTION {}();\n",
                trigger_function(self.cutover, t),
                trigger_condition(t),
                self.function_name(t),
                q = t.qualified()
            );
            self.ddl(&format!("installing the dual-write trigger on {}", t.display()), &sql)
                .await?;
        }
        Ok(format!("trigger {} on {} tables", self.trigger_name(), self.cutover.tables.len()))
    }

    /// Keyset batches over the marked rows up to the key's maximum at start.
    pub async fn backfill(&mut self) -> Result<String> {
        self.backfill_observed(&mut |_| {}).await
    }

    /// [`backfill`](Self::backfill), calling `observe` after every committed
    /// batch (the benchmark measures how long each held its row locks).
    pub async fn backfill_observed(&mut self, observe: &mut (dyn FnMut(&BatchStats) + Send)) -> Result<String> {
        let s = self.cutover.settings.clone();
        let mut report = Vec::new();
        for t in &self.cutover.tables.clone() {
            let key = quote_ident(&t.key);
            let q = t.qualified();
            let key_type = self.column_type(t, &t.key).await?.unwrap_or_else(|| "text".into());
            let upper: Option<String> = self
                .client
                .query_one(&format!("SELECT max({key})::text FROM {q}"), &[])
                .await
                .map_err(self.err(format!("reading the key range of {}", t.display())))?
                .get(0);
            let Some(upper) = upper else {
                report.push(format!("{}: empty", t.display()));
                continue;
            };
            let in_range = format!("($1::text IS NULL OR {key} > $1::text::{key_type}) AND {key} <= $2::text::{key_type}");
            // The batch's last key, read before the batch's transaction: the UPDATE then walks a key
            // range on the unique index whatever the planner thinks of a join against a LIMIT.
            // Qualified: a bare ORDER BY name would sort by the text output column.
            let bound_sql = format!(
                "SELECT coalesce((SELECT strata_t.{key}::text FROM {q} AS strata_t WHERE {in_range} ORDER BY strata_t.{key} \
                 OFFSET {skip} LIMIT 1), $2)",
                skip = s.batch_size - 1
            );
            let fast = self.fast_path(t).await?;
            let mut set = vec![format!("{MARKER} = false")];
            let mut settings = format!("SET LOCAL lock_timeout = {}", quote_literal(&s.lock_timeout));
            if fast {
                set.extend(t.changes.iter().map(|ch| format!("{} = ({})", quote_ident(&ch.new), ch.up)));
                settings.push_str(&format!(";\nSET LOCAL {BACKFILL_SETTING} = {}", quote_literal(&t.display())));
            }
            let batch_sql = format!("UPDATE {q} SET {} WHERE {in_range} AND {MARKER}", set.join(", "));
            let mut last: Option<String> = None;
            let mut updated: u64 = 0;
            let mut batches = 0;
            loop {
                let hi: String = self
                    .client
                    .query_one(&bound_sql, &[&last, &upper])
                    .await
                    .map_err(self.err(format!("backfilling {}: reading the next batch's range", t.display())))?
                    .get(0);
                let mut attempt = 0;
                let (rows, held) = loop {
                    attempt += 1;
                    let started = std::time::Instant::now();
                    let tx = self.client.transaction().await.map_err(sql_error(&self.target, "backfill"))?;
                    let res = async {
                        tx.batch_execute(&settings).await?;
                        let rows = tx.execute(&batch_sql, &[&last, &hi]).await?;
                        tx.commit().await?;
                        Ok::<_, tokio_postgres::Error>(rows)
                    }
                    .await;
                    match res {
                        Ok(rows) => break (rows, started.elapsed()),
                        Err(e) if crate::pg::sqlstate(&e) == Some("55P03") && attempt < LOCK_ATTEMPTS => {
                            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt))).await;
                        }
                        Err(e) => return Err(Error::Pg(sql_error(&self.target, format!("backfilling {}", t.display()))(e))),
                    }
                };
                observe(&BatchStats {
                    table: t.display(),
                    rows,
                    held,
                    attempts: attempt,
                });
                updated += rows;
                batches += 1;
                if hi == upper {
                    break;
                }
                last = Some(hi);
                if !s.pause.is_zero() {
                    tokio::time::sleep(s.pause).await;
                }
            }
            let left: i64 = self
                .client
                .query_one(&format!("SELECT count(*) FROM {q} WHERE {MARKER}"), &[])
                .await
                .map_err(self.err(format!("counting rows left in {}", t.display())))?
                .get(0);
            if left > 0 {
                return Err(Error::Gate {
                    tenant: self.target.to_string(),
                    step: "backfill".into(),
                    message: format!(
                        "{}: {left} rows still marked after the backfill (is the trigger installed?)",
                        t.display()
                    ),
                });
            }
            let path = if fast { "computed in the batch" } else { "through the trigger" };
            report.push(format!("{}: {updated} rows in {batches} batches ({path})", t.display()));
        }
        Ok(report.join("; "))
    }

    /// Whether a batch may compute the new columns itself, with the trigger
    /// skipped: only when the installed trigger has the [`BACKFILL_SETTING`]
    /// condition (a trigger installed by an older strata recomputes every
    /// row, and the `down` of a replaced column could then rewrite the old
    /// value), and when no `up` reads a column the trigger itself assigns
    /// (it assigns in order, an `UPDATE` reads the row before the statement).
    async fn fast_path(&self, t: &Table) -> Result<bool> {
        let conditional: bool = self
            .client
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 \
                 AND pg_get_triggerdef(oid) LIKE '%' || $3 || '%')",
                &[&t.qualified(), &self.trigger_name(), &BACKFILL_SETTING],
            )
            .await
            .map_err(self.err(format!("reading the triggers of {}", t.display())))?
            .get(0);
        let assigned: Vec<&str> = t.changes.iter().map(|c| c.new.as_str()).chain([MARKER]).collect();
        Ok(conditional && !t.changes.iter().any(|c| assigned.iter().any(|a| mentions(&c.up, a))))
    }

    /// Rows whose new (and old) values disagree with the expressions, and
    /// chunks whose checksums differ. Returns (rows, differing rows, chunks, differing chunks).
    pub async fn verify(&self) -> Result<Verification> {
        let n = self.cutover.settings.batch_size;
        let mut v = Verification::default();
        for t in &self.cutover.tables {
            if t.changes.is_empty() {
                continue;
            }
            let q = t.qualified();
            let key = quote_ident(&t.key);
            let mut mismatch = vec![MARKER.to_string()];
            for ch in &t.changes {
                mismatch.push(format!("{} IS DISTINCT FROM ({})", quote_ident(&ch.new), ch.up));
                if let (Some(old), Some(down)) = (&ch.replaces, &ch.down) {
                    mismatch.push(format!("{} IS DISTINCT FROM ({down})", quote_ident(old)));
                }
            }
            let actual: Vec<String> = t.changes.iter().map(|c| quote_ident(&c.new)).collect();
            let expected: Vec<String> = t.changes.iter().map(|c| format!("({})", c.up)).collect();
            let sql = format!(
                "WITH rows AS (SELECT count(*) AS total, count(*) FILTER (WHERE {mismatch}) AS differing FROM {q}), \
                 chunks AS (SELECT md5(string_agg(row({actual})::text, ',' ORDER BY {key})) AS a, \
                 md5(string_agg(row({expected})::text, ',' ORDER BY {key})) AS b \
                 FROM (SELECT *, (row_number() OVER (ORDER BY {key}) - 1) / {n} AS strata_chunk FROM {q}) s GROUP BY strata_chunk) \
                 SELECT (SELECT total FROM rows), (SELECT differing FROM rows), (SELECT count(*) FROM chunks), \
                 (SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b) FROM chunks)",
                mismatch = mismatch.join(" OR "),
                actual = actual.join(", "),
                expected = expected.join(", "),
            );
            let row = self
                .client
                .query_one(&sql, &[])
                .await
                .map_err(self.err(format!("verifying {}", t.display())))?;
            v.rows += row.get::<_, i64>(0);
            v.differing_rows += row.get::<_, i64>(1);
            v.chunks += row.get::<_, i64>(2);
            v.differing_chunks += row.get::<_, i64>(3);
        }
        Ok(v)
    }

    pub async fn contract(&mut self) -> Result<String> {
        let trigger = quote_ident(&self.trigger_name());
        let mut dropped = 0;
        for t in &self.cutover.tables.clone() {
            let mut cols: Vec<String> = t.changes.iter().filter_map(|c| c.replaces.clone()).collect();
            cols.extend(t.drop.iter().cloned());
            cols.push(MARKER.into());
            dropped += cols.len() - 1;
            let drops: Vec<String> = cols.iter().map(|c| format!("DROP COLUMN IF EXISTS {}", quote_ident(c))).collect();
            let sql = format!(
                "DROP TRIGGER IF EXISTS {trigger} ON {q};\nDROP FUNCTION IF EXISTS {}();\nALTER TABLE {q} {};\n",
                self.function_name(t),
                drops.join(", "),
                q = t.qualified()
            );
            self.ddl(&format!("contracting {}", t.display()), &sql).await?;
        }
        Ok(format!("{dropped} old columns dropped"))
    }

    /// Undoes expand and dual-write: the old columns were kept current by
    /// the trigger, so dropping the new ones loses nothing.
    pub async fn rollback(&mut self) -> Result<String> {
        let trigger = quote_ident(&self.trigger_name());
        for t in &self.cutover.tables.clone() {
            let mut drops: Vec<String> = t
                .changes
                .iter()
                .map(|c| format!("DROP COLUMN IF EXISTS {}", quote_ident(&c.new)))
                .collect();
            drops.push(format!("DROP COLUMN IF EXISTS {MARKER}"));
            let exists: bool = self
                .client
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.qualified()])
                .await
                .map_err(self.err(format!("looking up {}", t.display())))?
                .get(0);
            if !exists {
                continue;
            }
            let sql = format!(
                "DROP TRIGGER IF EXISTS {trigger} ON {q};\nDROP FUNCTION IF EXISTS {}();\nALTER TABLE {q} {};\n",
                self.function_name(t),
                drops.join(", "),
                q = t.qualified()
            );
            self.ddl(&format!("rolling back {}", t.display()), &sql).await?;
        }
        Ok("trigger and new columns dropped".into())
    }
}

#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Verification {
    pub rows: i64,
    pub differing_rows: i64,
    pub chunks: i64,
    pub differing_chunks: i64,
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows, {} differing; {} chunks, {} differing",
            self.rows, self.differing_rows, self.chunks, self.differing_chunks
        )
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

    #[test]
    fn mentions_matches_whole_words_only() {
        assert!(mentions("length(body)", "body"));
        assert!(mentions("\"Body\" || 'x'", "body"));
        assert!(mentions("body_length * 2", "body_length"));
        assert!(!mentions("length(body)", "body_length"));
        assert!(!mentions("somebody || body2", "body"));
        assert!(!mentions("$body", "body"));
    }
}
