//! The `move` kind between two databases, on PostgreSQL logical replication.
//!
//! A PostgreSQL 15 subscription applies each published table into the table
//! of the *same schema-qualified name* on the subscriber, columns matched by
//! name (the subscriber may have more columns). So the column mapping is
//! applied on the target by triggers that fire for replicated rows only
//! (`ENABLE REPLICA`: apply and tablesync workers run with
//! `session_replication_role = replica`, local writers after the flip do not):
//!
//! - a table that keeps its name gets the source's old-named columns it lacks
//!   (nullable, marked by a column comment) and a `BEFORE INSERT OR UPDATE`
//!   trigger that computes the new columns (renames, `up` expressions);
//! - a renamed table (`knowledge` → `knowledge_items`) gets a staging table of
//!   the source's name on the target whose `AFTER` trigger upserts into (or
//!   deletes from) the real table.
//!
//! The trigger functions live in the staging schema. The publication has
//! PG15 column lists, so `drop` columns never leave the source. The slot is
//! created with `pg_create_logical_replication_slot` and the subscription
//! with `create_slot = false`, which also works when both databases share a
//! cluster. Every operation checks what exists first, so each step can be
//! run again after a crash.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::plan::{Cutover, Table};
use super::reshape::{short, Verification};
use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::{quote_ident, quote_literal, Target};

/// How far past the source's sequence the target's starts, so that rows the
/// source still numbers while the writers' routes flip cannot collide with
/// rows numbered on the target.
pub const SEQUENCE_HEADROOM: i64 = 1000;

/// Attempts of a target DDL transaction that failed on `lock_timeout`.
const LOCK_ATTEMPTS: u32 = 5;

/// Rounds of re-comparing rows that differed while replication was catching up.
const VERIFY_RECHECKS: usize = 5;

/// Publication, slot and subscription of a cutover (one name for the three).
pub fn replication_name(c: &Cutover) -> String {
    short(&format!("strata_{}", c.name))
}

/// The mapping trigger on the target tables (one per table, same name).
pub fn trigger_name(c: &Cutover) -> String {
    short(&format!("strata_move_{}", c.name))
}

pub fn staging_schema(c: &Cutover) -> String {
    c.file.staging_schema.clone().unwrap_or_else(|| "strata_staging".into())
}

fn function_name(c: &Cutover, t: &Table) -> String {
    format!(
        "{}.{}",
        quote_ident(&staging_schema(c)),
        quote_ident(&short(&format!("mv_{}__{}_{}", c.name, t.schema, t.name)))
    )
}

/// The comment marking what this cutover added on the target (columns,
/// staging tables, schemas): contract and rollback drop only what carries it.
fn marker(c: &Cutover) -> String {
    format!("strata move {}: added for the replication window", c.name)
}

fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    ty: String,
}

/// One table as the catalogs of both sides describe it.
struct Mapping {
    /// The source's columns that leave the source (all but `drop`).
    published: Vec<Column>,
    /// The target keeps the source's schema-qualified name.
    same: bool,
    /// `"schema"."name"` of the real target table.
    target_q: String,
    /// The table the subscription writes on the target: the real one, or the staging table of the source's name.
    landing_q: String,
    /// (target column, its type, the SQL expression over a source row giving its value).
    pairs: Vec<(String, String, String)>,
}

pub struct MoveDbs<'a> {
    pub c: &'a Cutover,
    pub source: Target,
    pub target: Target,
    pub src: Client,
    pub dst: Client,
}

async fn columns(client: &Client, target: &Target, table: &str) -> Result<Vec<Column>> {
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            &[&table],
        )
        .await
        .map_err(|e| Error::Pg(sql_error(target, format!("reading the columns of {table}"))(e)))?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            ty: r.get(1),
        })
        .collect())
}

/// Whether `table` has a single-column unique index on `key`.
async fn unique_key(client: &Client, target: &Target, table: &str, key: &str) -> Result<bool> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
             WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = $2)",
            &[&table, &key],
        )
        .await
        .map_err(|e| Error::Pg(sql_error(target, format!("reading the indexes of {table}"))(e)))?;
    Ok(row.get(0))
}

async fn text(client: &Client, target: &Target, sql: &str) -> Result<String> {
    let row = client
        .query_one(sql, &[])
        .await
        .map_err(|e| Error::Pg(sql_error(target, sql.to_string())(e)))?;
    Ok(row.get(0))
}

impl<'a> MoveDbs<'a> {
    pub async fn connect(c: &'a Cutover) -> Result<MoveDbs<'a>> {
        let source = Target::parse(c.file.source.as_deref().unwrap_or_default())?;
        let target = Target::parse(c.file.target.as_deref().unwrap_or_default())?;
        let src = crate::pg::connect(&source).await?;
        let dst = crate::pg::connect(&target).await?;
        // Checksums compare text renderings: both sides render alike.
        for (client, t) in [(&src, &source), (&dst, &target)] {
            client
                .batch_execute(
                    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET IntervalStyle = 'postgres'",
                )
                .await
                .map_err(|e| Error::Pg(sql_error(t, "setting the session")(e)))?;
        }
        Ok(MoveDbs {
            c,
            source,
            target,
            src,
            dst,
        })
    }

    fn on_src(&self, context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        let f = sql_error(&self.source, context);
        move |e| Error::Pg(f(e))
    }

    fn on_dst(&self, context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
        let f = sql_error(&self.target, context);
        move |e| Error::Pg(f(e))
    }

    async fn src_exec(&self, what: &str, sql: &str) -> Result<()> {
        self.src.batch_execute(sql).await.map_err(self.on_src(what))
    }

    /// DDL on the target, in one transaction with the plan's lock_timeout.
    /// A lock timeout (55P03) is retried with a growing pause, like a reshape's DDL.
    async fn dst_ddl(&self, what: &str, sql: &str) -> Result<()> {
        let lt = quote_literal(&self.c.settings.lock_timeout);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .dst
                .batch_execute(&format!("BEGIN;\nSET LOCAL lock_timeout = {lt};\n{sql};\nCOMMIT;"))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // The failed statement left the transaction block open and aborted.
                    let _ = self.dst.batch_execute("ROLLBACK").await;
                    if crate::pg::sqlstate(&e) == Some("55P03") && attempt < LOCK_ATTEMPTS {
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt * attempt))).await;
                        continue;
                    }
                    return Err(self.on_dst(what)(e));
                }
            }
        }
    }

    /// Columns of the target table carrying this cutover's marker.
    async fn marked_columns(&self, table: &str) -> Result<BTreeSet<String>> {
        let rows = self
            .dst
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped \
                 AND col_description(attrelid, attnum) = $2",
                &[&table, &marker(self.c)],
            )
            .await
            .map_err(self.on_dst(format!("reading the columns of {table}")))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Whether `table` on the target is a staging table of this cutover.
    async fn is_marked_table(&self, table: &str) -> Result<bool> {
        let row = self
            .dst
            .query_one(
                "SELECT coalesce(obj_description(to_regclass($1), 'pg_class') = $2, false)",
                &[&table, &marker(self.c)],
            )
            .await
            .map_err(self.on_dst(format!("looking up {table}")))?;
        Ok(row.get(0))
    }

    async fn mapping(&self, t: &Table) -> Result<Mapping> {
        let source_cols = columns(&self.src, &self.source, &t.qualified()).await?;
        let published: Vec<Column> = source_cols.into_iter().filter(|col| !t.drop.contains(&col.name)).collect();
        let same = (&t.schema, &t.name) == (&t.target_schema, &t.target_name);
        let target_q = qualified(&t.target_schema, &t.target_name);
        let target_cols = columns(&self.dst, &self.target, &target_q).await?;
        let added = if same {
            self.marked_columns(&target_q).await?
        } else {
            BTreeSet::new()
        };
        let types: BTreeMap<&str, &str> = target_cols
            .iter()
            .filter(|col| !added.contains(&col.name))
            .map(|col| (col.name.as_str(), col.ty.as_str()))
            .collect();
        let replaced: BTreeSet<&str> = t.changes.iter().filter_map(|ch| ch.replaces.as_deref()).collect();
        let new: BTreeSet<&str> = t.changes.iter().map(|ch| ch.new.as_str()).collect();
        let mut pairs = Vec::new();
        for col in &published {
            let n = col.name.as_str();
            if replaced.contains(n) || new.contains(n) {
                continue;
            }
            if let Some(ty) = types.get(n) {
                // A column whose type changes on the way (text → an enum) converts explicitly.
                let expr = if col.ty == *ty {
                    quote_ident(n)
                } else {
                    format!("{}::{ty}", quote_ident(n))
                };
                pairs.push((col.name.clone(), ty.to_string(), expr));
            }
        }
        for ch in &t.changes {
            if let Some(ty) = types.get(ch.new.as_str()) {
                pairs.push((ch.new.clone(), ty.to_string(), format!("({})", ch.up)));
            }
        }
        Ok(Mapping {
            published,
            same,
            landing_q: t.qualified(),
            target_q,
            pairs,
        })
    }

    /// Connectivity, wal_level, a free slot, the REPLICATION role, keys,
    /// the target tables (present, empty, a unique key, the new columns).
    pub async fn preflight(&self) -> Result<String> {
        let (src, dst, source, target) = (&self.src, &self.dst, &self.source, &self.target);
        let mut problems = Vec::new();
        let wal = text(src, source, "SELECT current_setting('wal_level')").await?;
        if wal != "logical" {
            problems.push(format!(
                "source wal_level is {wal}: logical replication needs wal_level = logical (a restart)"
            ));
        }
        let free = text(
            src,
            source,
            "SELECT (current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots))::text",
        )
        .await?;
        if free.parse::<i64>().unwrap_or(0) < 1 {
            problems.push("source has no free replication slot (max_replication_slots)".into());
        }
        let version = text(src, source, "SELECT current_setting('server_version_num')").await?;
        let shown = text(src, source, "SELECT current_setting('server_version')").await?;
        if version.parse::<u32>().unwrap_or(0) < 150000 {
            problems.push(format!(
                "the source runs PostgreSQL {shown}: a move publishes column lists (CREATE PUBLICATION ... FOR TABLE t (columns)), \
                 which PostgreSQL 15 introduced; upgrade the source to 15 or later first (the target may be any major from 15 on)"
            ));
        }
        problems.extend(super::privileges::move_privileges(src, source, dst, target, &self.c.tables).await?);
        for t in &self.c.tables {
            let row = src
                .query_opt(
                    "SELECT c.relreplident::text, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
                     FROM pg_class c WHERE c.oid = to_regclass($1)",
                    &[&t.qualified()],
                )
                .await
                .map_err(self.on_src(format!("reading {}", t.display())))?;
            let Some(r) = row else {
                problems.push(format!("source table {} does not exist", t.display()));
                continue;
            };
            let ident: String = r.get(0);
            let pk: bool = r.get(1);
            if ident == "n" || (ident == "d" && !pk) {
                problems.push(format!(
                    "source table {} has no primary key or replica identity: updates and deletes could not be replicated",
                    t.display()
                ));
            }
            let source_cols = columns(src, source, &t.qualified()).await?;
            if !source_cols.iter().any(|col| col.name == t.key) {
                problems.push(format!("source table {}: key column {} does not exist", t.display(), t.key));
            }
            if t.drop.contains(&t.key) || t.changes.iter().any(|ch| ch.replaces.as_deref() == Some(t.key.as_str())) {
                problems.push(format!(
                    "{}: the key column {} must keep its name on the target (it is dropped or renamed)",
                    t.display(),
                    t.key
                ));
            }
            let target_q = qualified(&t.target_schema, &t.target_name);
            let exists: bool = dst
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&target_q])
                .await
                .map_err(self.on_dst("looking up target tables"))?
                .get(0);
            if !exists {
                problems.push(format!(
                    "target table {}.{} does not exist (apply the target's schema first: strata migrate)",
                    t.target_schema, t.target_name
                ));
                continue;
            }
            let target_cols = columns(dst, target, &target_q).await?;
            let has = |n: &str| target_cols.iter().any(|col| col.name == n);
            if !unique_key(dst, target, &target_q, &t.key).await? {
                problems.push(format!(
                    "target table {}.{}: key column {} has no single-column unique index (the primary key columns must have the \
                     same names on both sides)",
                    t.target_schema, t.target_name, t.key
                ));
            }
            for ch in &t.changes {
                if !has(&ch.new) {
                    problems.push(format!(
                        "target table {}.{} has no column {} (the mapping fills it)",
                        t.target_schema, t.target_name, ch.new
                    ));
                }
                if let Some(old) = &ch.replaces {
                    if (&t.schema, &t.name) == (&t.target_schema, &t.target_name) && has(old) {
                        problems.push(format!(
                            "target table {}.{} has a column {old}: the subscription would write the source's {old} into it \
                             although the mapping renames it",
                            t.target_schema, t.target_name
                        ));
                    }
                }
            }
            let rows: bool = dst
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {target_q})"), &[])
                .await
                .map_err(self.on_dst(format!("reading {target_q}")))?
                .get(0);
            if rows {
                problems.push(format!(
                    "target table {}.{} is not empty: a move fills an empty table (and rollback empties it)",
                    t.target_schema, t.target_name
                ));
            }
            if (&t.schema, &t.name) != (&t.target_schema, &t.target_name) {
                let taken: bool = dst
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.qualified()])
                    .await
                    .map_err(self.on_dst("looking up target tables"))?
                    .get(0);
                if taken && !self.is_marked_table(&t.qualified()).await? {
                    problems.push(format!(
                        "the target already has a table {}: the subscription needs that name for its staging table",
                        t.display()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(format!("source {source} and target {target} ready; {} tables", self.c.tables.len()))
        } else {
            Err(Error::Refused(format!("preflight failed: {}", problems.join("; "))))
        }
    }

    /// `CREATE SCHEMA` marked as ours, unless it exists.
    async fn schema_sql(&self, schema: &str) -> Result<String> {
        let exists: bool = self
            .dst
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema])
            .await
            .map_err(self.on_dst("reading the schemas"))?
            .get(0);
        Ok(if exists {
            String::new()
        } else {
            format!(
                "CREATE SCHEMA IF NOT EXISTS {s};\nCOMMENT ON SCHEMA {s} IS {};\n",
                quote_literal(&marker(self.c)),
                s = quote_ident(schema)
            )
        })
    }

    /// The target side of the mapping: old-named columns and triggers, or staging tables.
    pub async fn expand(&self) -> Result<String> {
        let c = self.c;
        let trigger = quote_ident(&trigger_name(c));
        let mark = quote_literal(&marker(c));
        let mut report = Vec::new();
        let staging = self.schema_sql(&staging_schema(c)).await?;
        if !staging.is_empty() {
            self.dst_ddl("creating the staging schema", &staging).await?;
        }
        for t in &c.tables {
            let m = self.mapping(t).await?;
            let f = function_name(c, t);
            let assign_row = "FROM (SELECT NEW.*) AS strata_row";
            // Apply workers run with an empty search_path: the mapping's types and functions resolve in the target's schema.
            let path = format!("{}, pg_catalog", quote_ident(&t.target_schema));
            if m.same {
                let present: BTreeSet<String> = columns(&self.dst, &self.target, &m.target_q)
                    .await?
                    .into_iter()
                    .map(|col| col.name)
                    .collect();
                let missing: Vec<&Column> = m.published.iter().filter(|col| !present.contains(&col.name)).collect();
                let mut sql = String::new();
                if !missing.is_empty() {
                    let adds: Vec<String> = missing
                        .iter()
                        .map(|col| format!("ADD COLUMN IF NOT EXISTS {} {}", quote_ident(&col.name), col.ty))
                        .collect();
                    sql.push_str(&format!("ALTER TABLE {} {};\n", m.target_q, adds.join(", ")));
                    for col in &missing {
                        sql.push_str(&format!("COMMENT ON COLUMN {}.{} IS {mark};\n", m.target_q, quote_ident(&col.name)));
                    }
                }
                if !t.changes.is_empty() {
                    let body: String = t
                        .changes
                        .iter()
                        .map(|ch| format!("  SELECT ({}) INTO NEW.{} {assign_row};\n", ch.up, quote_ident(&ch.new)))
                        .collect();
                    sql.push_str(&format!(
                        "CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SET search_path = {path} AS $strata$\nBEGIN\n{body}  RETURN NEW;\n\
                         END\n$strata$;\nDROP TRIGGER IF EXISTS {trigger} ON {q};\nCREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE \
                         ON {q} FOR EACH ROW EXECUTE FUNCTION {f}();\nALTER TABLE {q} ENABLE REPLICA TRIGGER {trigger};\n",
                        q = m.target_q
                    ));
                }
                if !sql.is_empty() {
                    self.dst_ddl(&format!("expanding {}", m.target_q), &sql).await?;
                }
                report.push(format!("{}: {} old-named columns added", t.display(), missing.len()));
            } else {
                let key = quote_ident(&t.key);
                let mut sql = self.schema_sql(&t.schema).await?;
                let cols: Vec<String> = m
                    .published
                    .iter()
                    .map(|col| {
                        let not_null = if col.name == t.key { " NOT NULL" } else { "" };
                        format!("{} {}{not_null}", quote_ident(&col.name), col.ty)
                    })
                    .collect();
                let names: Vec<String> = m.pairs.iter().map(|(n, _, _)| quote_ident(n)).collect();
                let exprs: Vec<String> = m.pairs.iter().map(|(_, _, e)| e.clone()).collect();
                let sets: Vec<String> = m
                    .pairs
                    .iter()
                    .filter(|(n, _, _)| *n != t.key)
                    .map(|(n, _, _)| format!("{q} = EXCLUDED.{q}", q = quote_ident(n)))
                    .collect();
                let conflict = if sets.is_empty() {
                    "DO NOTHING".to_string()
                } else {
                    format!("DO UPDATE SET {}", sets.join(", "))
                };
                sql.push_str(&format!(
                    "CREATE TABLE IF NOT EXISTS {l} ({}, PRIMARY KEY ({key}));\nCOMMENT ON TABLE {l} IS {mark};\n\
                     CREATE OR REPLACE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SET search_path = {path} AS $strata$\nBEGIN\n  \
                     IF TG_OP = 'DELETE' THEN\n    DELETE FROM {tq} WHERE {key} = OLD.{key};\n    RETURN NULL;\n  END IF;\n  \
                     IF TG_OP = 'UPDATE' AND OLD.{key} IS DISTINCT FROM NEW.{key} THEN\n    DELETE FROM {tq} WHERE {key} = OLD.{key};\n  \
                     END IF;\n  INSERT INTO {tq} ({}) OVERRIDING SYSTEM VALUE SELECT {} {assign_row}\n    ON CONFLICT ({key}) {conflict};\n  \
                     RETURN NULL;\nEND\n$strata$;\nDROP TRIGGER IF EXISTS {trigger} ON {l};\nCREATE TRIGGER {trigger} AFTER INSERT OR \
                     UPDATE OR DELETE ON {l} FOR EACH ROW EXECUTE FUNCTION {f}();\nALTER TABLE {l} ENABLE REPLICA TRIGGER {trigger};\n",
                    cols.join(", "),
                    names.join(", "),
                    exprs.join(", "),
                    l = m.landing_q,
                    tq = m.target_q,
                ));
                self.dst_ddl(&format!("creating the staging table {}", t.display()), &sql).await?;
                report.push(format!("{}: staging table for {}.{}", t.display(), t.target_schema, t.target_name));
            }
        }
        Ok(report.join("; "))
    }

    async fn subscription(&self) -> Result<Option<(u32, bool)>> {
        let row = self
            .dst
            .query_opt(
                "SELECT oid, subenabled FROM pg_subscription WHERE subname = $1 \
                 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&replication_name(self.c)],
            )
            .await
            .map_err(self.on_dst("reading the subscription"))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn slot_exists(&self, slot: &str) -> Result<bool> {
        let row = self
            .src
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", &[&slot])
            .await
            .map_err(self.on_src("reading the replication slots"))?;
        Ok(row.get(0))
    }

    /// Publication (column lists), slot, subscription (`create_slot = false`).
    pub async fn dual_write(&self) -> Result<String> {
        let name = replication_name(self.c);
        let q = quote_ident(&name);
        let mut tables = Vec::new();
        for t in &self.c.tables {
            let m = self.mapping(t).await?;
            let cols: Vec<String> = m.published.iter().map(|col| quote_ident(&col.name)).collect();
            tables.push(format!("{} ({})", t.qualified(), cols.join(", ")));
        }
        let exists: bool = self
            .src
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", &[&name])
            .await
            .map_err(self.on_src("reading the publications"))?
            .get(0);
        let verb = if exists {
            format!("ALTER PUBLICATION {q} SET")
        } else {
            format!("CREATE PUBLICATION {q} FOR")
        };
        self.src_exec("creating the publication", &format!("{verb} TABLE {}", tables.join(", ")))
            .await?;
        if !self.slot_exists(&name).await? {
            self.src
                .execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[&name])
                .await
                .map_err(self.on_src("creating the replication slot"))?;
        }
        match self.subscription().await? {
            Some((_, true)) => {}
            Some((_, false)) => {
                self.dst
                    .batch_execute(&format!("ALTER SUBSCRIPTION {q} ENABLE"))
                    .await
                    .map_err(self.on_dst("enabling the subscription"))?;
            }
            None => {
                let sql = format!(
                    "CREATE SUBSCRIPTION {q} CONNECTION {} PUBLICATION {q} WITH (create_slot = false, slot_name = {}, copy_data = true)",
                    quote_literal(&self.source.conninfo()),
                    quote_literal(&name)
                );
                // The statement holds the password: the error names the step, not the SQL.
                self.dst
                    .batch_execute(&sql)
                    .await
                    .map_err(self.on_dst("creating the subscription"))?;
            }
        }
        Ok(format!(
            "publication, slot and subscription {name} ({} tables)",
            self.c.tables.len()
        ))
    }

    /// (tables ready, tables, sync + apply errors so far).
    async fn sync_state(&self) -> Result<(Vec<(String, String)>, i64)> {
        let Some((oid, _)) = self.subscription().await? else {
            return Err(Error::Refused(format!(
                "cutover {}: the subscription {} does not exist (run dual-write again)",
                self.c.name,
                replication_name(self.c)
            )));
        };
        let rows = self
            .dst
            .query(
                "SELECT srrelid::regclass::text, srsubstate::text FROM pg_subscription_rel WHERE srsubid = $1 ORDER BY 1",
                &[&oid],
            )
            .await
            .map_err(self.on_dst("reading the subscription's tables"))?;
        let errors: i64 = self
            .dst
            .query_one(
                "SELECT coalesce((SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats WHERE subid = $1), 0)",
                &[&oid],
            )
            .await
            .map_err(self.on_dst("reading the subscription's statistics"))?
            .get(0);
        Ok((rows.iter().map(|r| (r.get(0), r.get(1))).collect(), errors))
    }

    /// Waits for the subscription's initial copy (every table in state `r`).
    pub async fn backfill(&self, log: &(dyn Fn(&str) + Sync)) -> Result<String> {
        let start = Instant::now();
        let (_, errors_before) = self.sync_state().await?;
        let mut last_report = Instant::now();
        loop {
            let (tables, errors) = self.sync_state().await?;
            let ready = tables.iter().filter(|(_, s)| s == "r").count();
            if ready == tables.len() && ready == self.c.tables.len() {
                return Ok(format!(
                    "initial copy of {ready} tables done in {:.1}s",
                    start.elapsed().as_secs_f64()
                ));
            }
            if errors > errors_before {
                return Err(Error::Gate {
                    tenant: "move".into(),
                    step: "backfill".into(),
                    message: format!(
                        "the subscription reported {} errors during the initial copy (see the target's server log); tables: {}",
                        errors - errors_before,
                        describe_states(&tables)
                    ),
                });
            }
            if last_report.elapsed() > Duration::from_secs(2) {
                log(&format!(
                    "{}: backfill: {ready}/{} tables copied ({})",
                    self.c.name,
                    tables.len(),
                    describe_states(&tables)
                ));
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes a marker into the source's WAL (committed and flushed) and
    /// returns its position: once the slot confirms it, every earlier commit
    /// is applied on the target.
    async fn probe(&mut self) -> Result<String> {
        let tx = self.src.transaction().await.map_err(sql_error(&self.source, "probing the WAL"))?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await
            .map_err(sql_error(&self.source, "probing the WAL"))?;
        let lsn: String = tx
            .query_one("SELECT pg_logical_emit_message(true, 'strata', 'lag probe')::text", &[])
            .await
            .map_err(sql_error(&self.source, "probing the WAL"))?
            .get(0);
        tx.commit().await.map_err(sql_error(&self.source, "probing the WAL"))?;
        Ok(lsn)
    }

    /// The time until the target confirms the WAL written now, or `None` after `limit`.
    pub async fn replication_lag(&mut self, limit: Duration) -> Result<Option<Duration>> {
        let slot = replication_name(self.c);
        let lsn = self.probe().await?;
        let start = Instant::now();
        loop {
            let row = self
                .src
                .query_opt(
                    "SELECT coalesce(confirmed_flush_lsn >= $1::text::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $2",
                    &[&lsn, &slot],
                )
                .await
                .map_err(self.on_src("reading the replication slot"))?;
            match row {
                None => {
                    return Err(Error::Refused(format!(
                        "cutover {}: the replication slot {slot} does not exist",
                        self.c.name
                    )))
                }
                Some(r) if r.get::<_, bool>(0) => return Ok(Some(start.elapsed())),
                Some(_) => {}
            }
            if start.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The lag gate: lag under `max_replication_lag`.
    pub async fn lag_gate(&mut self) -> Result<std::result::Result<Duration, String>> {
        let max = self.c.settings.max_replication_lag;
        Ok(match self.replication_lag(max).await? {
            Some(lag) => Ok(lag),
            None => Err(format!(
                "replication lag over {} (the target had not applied the source's WAL after that long)",
                super::plan::format_duration(max)
            )),
        })
    }

    /// Counts and chunked checksums of every table: the published columns on
    /// the source against where they land on the target (the table itself, or
    /// the staging table of a renamed one). Rows that differ are compared
    /// again after replication caught up (they may have been in flight); those
    /// still differing are counted, with the target rows whose new columns do
    /// not hold the mapping of their carried columns ([`Self::mismatched`]).
    /// The mapping is evaluated on the target only, where its types and
    /// functions exist (the source need not know `container_kind`).
    pub async fn verify(&mut self) -> Result<Verification> {
        let mut v = Verification::default();
        for t in &self.c.tables {
            let m = self.mapping(t).await?;
            let key = quote_ident(&t.key);
            let key_type = columns(&self.src, &self.source, &t.qualified())
                .await?
                .into_iter()
                .find(|col| col.name == t.key)
                .map_or_else(|| "text".to_string(), |col| col.ty);
            // What the subscription carries: the published columns, on the source and where they land on the target.
            let carried = format!(
                "row({})::text",
                m.published
                    .iter()
                    .map(|col| format!("{}::text", quote_ident(&col.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let n = i64::from(self.c.settings.batch_size);
            let bounds: Vec<String> = self
                .src
                .query_one(
                    &format!(
                        "SELECT coalesce(array_agg(k ORDER BY n), '{{}}') FROM (SELECT {key}::text AS k, row_number() OVER (ORDER BY {key}) AS n \
                         FROM {q}) s WHERE (n - 1) % {n} = 0",
                        q = t.qualified()
                    ),
                    &[],
                )
                .await
                .map_err(self.on_src(format!("chunking {}", t.display())))?
                .get(0);
            let chunk_sql = |table: &str| {
                format!(
                    "SELECT width_bucket({key}, $1::text[]::{key_type}[]) AS chunk, count(*), md5(string_agg({carried}, ',' ORDER BY {key})) \
                     FROM {table} AS strata_row GROUP BY 1"
                )
            };
            let read = |rows: Vec<tokio_postgres::Row>| -> BTreeMap<i32, (i64, String)> {
                rows.iter().map(|r| (r.get(0), (r.get(1), r.get(2)))).collect()
            };
            let src_chunks = read(
                self.src
                    .query(&chunk_sql(&t.qualified()), &[&bounds])
                    .await
                    .map_err(self.on_src(format!("checksumming {}", t.display())))?,
            );
            // The target is read once it has applied everything the source had when read.
            self.catch_up_quietly().await?;
            let dst_chunks = read(
                self.dst
                    .query(&chunk_sql(&m.landing_q), &[&bounds])
                    .await
                    .map_err(self.on_dst(format!("checksumming {}", m.landing_q)))?,
            );
            v.differing_rows += self.mismatched(&m, t).await?;
            let all: BTreeSet<i32> = src_chunks.keys().chain(dst_chunks.keys()).copied().collect();
            let differing: Vec<i32> = all.iter().copied().filter(|k| src_chunks.get(k) != dst_chunks.get(k)).collect();
            v.rows += src_chunks.values().map(|(c, _)| c).sum::<i64>();
            v.chunks += all.len() as i64;
            v.differing_chunks += differing.len() as i64;
            if differing.is_empty() {
                continue;
            }
            let in_chunks = format!("width_bucket({key}, $1::text[]::{key_type}[]) = ANY($2)");
            let mut keys = self.differing_keys(t, &m, &carried, &in_chunks, &[&bounds, &differing]).await?;
            let by_key = format!("{key} = ANY($1::text[]::{key_type}[])");
            for _ in 0..VERIFY_RECHECKS {
                if keys.is_empty() {
                    break;
                }
                keys = self.differing_keys(t, &m, &carried, &by_key, &[&keys]).await?;
            }
            v.differing_rows += keys.len() as i64;
        }
        Ok(v)
    }

    /// Keys of the rows `filter` selects whose `row` differs between the
    /// source table and where it lands on the target (read once the target
    /// caught up with the source read), or exists on one side only.
    async fn differing_keys(
        &mut self,
        t: &Table,
        m: &Mapping,
        row: &str,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<String>> {
        let key = quote_ident(&t.key);
        let sql = |table: &str| format!("SELECT {key}::text, md5({row}) FROM {table} AS strata_row WHERE {filter}");
        let digests = |rows: Vec<tokio_postgres::Row>| -> BTreeMap<String, String> { rows.iter().map(|r| (r.get(0), r.get(1))).collect() };
        let src = digests(
            self.src
                .query(&sql(&t.qualified()), params)
                .await
                .map_err(self.on_src(format!("comparing rows of {}", t.display())))?,
        );
        self.catch_up_quietly().await?;
        let dst = digests(
            self.dst
                .query(&sql(&m.landing_q), params)
                .await
                .map_err(self.on_dst(format!("comparing rows of {}", m.landing_q)))?,
        );
        Ok(diff_keys(&src, &dst))
    }

    /// Target rows whose new columns are not the mapping (`up`, renames, casts)
    /// of the carried columns they were computed from.
    async fn mismatched(&self, m: &Mapping, t: &Table) -> Result<i64> {
        let key = quote_ident(&t.key);
        let want = format!(
            "row({})::text",
            m.pairs
                .iter()
                .map(|(_, ty, e)| format!("({e})::{ty}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let got = format!(
            "row({})::text",
            m.pairs.iter().map(|(n, _, _)| quote_ident(n)).collect::<Vec<_>>().join(", ")
        );
        let sql = if m.same {
            format!(
                "SELECT count(*) FROM {q} AS strata_row WHERE {want} IS DISTINCT FROM {got}",
                q = m.target_q
            )
        } else {
            format!(
                "SELECT count(*) FROM (SELECT {key} AS strata_key, {want} AS want FROM {l} AS strata_row) s \
                 FULL JOIN (SELECT {key} AS strata_key, {got} AS got FROM {q}) d USING (strata_key) WHERE s.want IS DISTINCT FROM d.got",
                l = m.landing_q,
                q = m.target_q
            )
        };
        let row = self
            .dst
            .query_one(&sql, &[])
            .await
            .map_err(self.on_dst(format!("checking the mapping of {}", m.target_q)))?;
        Ok(row.get(0))
    }

    /// Waits (up to the lag limit) for the target to apply what the source has now; a slow target shows as differing rows.
    async fn catch_up_quietly(&mut self) -> Result<()> {
        let max = self.c.settings.max_replication_lag;
        self.replication_lag(max).await?;
        Ok(())
    }

    /// Target sequences behind key columns past the source's sequence (with
    /// headroom), the target's largest key and the target sequence itself.
    pub async fn sync_sequences(&self) -> Result<String> {
        let mut report = Vec::new();
        for t in &self.c.tables {
            let target_q = qualified(&t.target_schema, &t.target_name);
            let seq: Option<String> = self
                .dst
                .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&target_q, &t.key])
                .await
                .map_err(self.on_dst(format!("reading the sequence of {target_q}")))?
                .get(0);
            let Some(seq) = seq else { continue };
            let key = quote_ident(&t.key);
            let src_seq: Option<String> = self
                .src
                .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&t.qualified(), &t.key])
                .await
                .map_err(self.on_src(format!("reading the sequence of {}", t.display())))?
                .get(0);
            let src_last: i64 = self
                .src
                .query_one(
                    &format!(
                        "SELECT greatest(coalesce((SELECT max({key}) FROM {q})::bigint, 0), \
                         coalesce(pg_sequence_last_value($1::text::regclass), 0))",
                        q = t.qualified()
                    ),
                    &[&src_seq.clone().unwrap_or_else(|| seq.clone())],
                )
                .await
                .map_err(self.on_src(format!("reading the keys of {}", t.display())))?
                .get(0);
            let set: i64 = self
                .dst
                .query_one(
                    &format!(
                        "SELECT setval($1::text::regclass, greatest($2::bigint, coalesce((SELECT max({key}) FROM {target_q})::bigint, 0), \
                         coalesce(pg_sequence_last_value($1::text::regclass), 0), 1))"
                    ),
                    &[&seq, &(src_last + SEQUENCE_HEADROOM)],
                )
                .await
                .map_err(self.on_dst(format!("setting the sequence of {target_q}")))?
                .get(0);
            report.push(format!("{seq} at {set} (source {src_last})"));
        }
        Ok(if report.is_empty() {
            "no sequences".into()
        } else {
            format!("sequences: {}", report.join(", "))
        })
    }

    async fn wait_slot_inactive(&self, slot: &str) -> Result<()> {
        let start = Instant::now();
        loop {
            let active: Option<bool> = self
                .src
                .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&slot])
                .await
                .map_err(self.on_src("reading the replication slots"))?
                .map(|r| r.get(0));
            if active != Some(true) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(Error::Refused(format!(
                    "cutover {}: replication slot {slot} still in use a minute after the subscription was disabled",
                    self.c.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn set_enabled(&self, enabled: bool) -> Result<()> {
        let q = quote_ident(&replication_name(self.c));
        let verb = if enabled { "ENABLE" } else { "DISABLE" };
        self.dst
            .batch_execute(&format!("ALTER SUBSCRIPTION {q} {verb}"))
            .await
            .map_err(self.on_dst(format!("{verb} the subscription")))
    }

    /// Changes the slot holds that the target has not confirmed (the
    /// subscription must be disabled: an active slot cannot be peeked).
    async fn pending_changes(&self) -> Result<i64> {
        let name = replication_name(self.c);
        let row = self
            .src
            .query_one(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
                &[&name, &quote_ident(&name)],
            )
            .await
            .map_err(self.on_src("reading the changes left in the slot"))?;
        Ok(row.get(0))
    }

    /// The end of the dual-write window: waits until the target has applied
    /// everything the slot holds, then drops subscription, slot and publication.
    pub async fn finish_replication(&mut self) -> Result<String> {
        let name = replication_name(self.c);
        let limit = self.c.settings.max_replication_lag + Duration::from_secs(60);
        if self.subscription().await?.is_some() {
            for round in 1..=5 {
                if let Some((_, false)) = self.subscription().await? {
                    self.set_enabled(true).await?;
                }
                let Some(lag) = self.replication_lag(limit).await? else {
                    return Err(Error::Gate {
                        tenant: "move".into(),
                        step: "flip-writers".into(),
                        message: format!(
                            "the target did not catch up with the source within {} (is the subscription failing? see the target's server log)",
                            super::plan::format_duration(limit)
                        ),
                    });
                };
                self.set_enabled(false).await?;
                self.wait_slot_inactive(&name).await?;
                let pending = self.pending_changes().await?;
                if pending == 0 {
                    self.drop_replication().await?;
                    return Ok(format!(
                        "caught up (last lag {:.1}ms), replication ended",
                        lag.as_secs_f64() * 1000.0
                    ));
                }
                if round == 5 {
                    self.set_enabled(true).await?;
                    return Err(Error::Gate {
                        tenant: "move".into(),
                        step: "flip-writers".into(),
                        message: format!(
                            "the source still receives writes to the moved tables ({pending} changes after catching up 5 times): \
                             a writer ignores its route"
                        ),
                    });
                }
            }
        }
        self.drop_replication().await?;
        Ok("replication ended".into())
    }

    /// Drops subscription, slot(s) and publication, whatever exists.
    pub async fn drop_replication(&self) -> Result<()> {
        let name = replication_name(self.c);
        let q = quote_ident(&name);
        let mut slots = vec![name.clone()];
        if let Some((oid, enabled)) = self.subscription().await? {
            if enabled {
                self.set_enabled(false).await?;
            }
            self.dst
                .batch_execute(&format!("ALTER SUBSCRIPTION {q} SET (slot_name = NONE); DROP SUBSCRIPTION {q}"))
                .await
                .map_err(self.on_dst("dropping the subscription"))?;
            // Table synchronisation slots of a subscription dropped mid-copy.
            let rows = self
                .src
                .query(
                    "SELECT slot_name::text FROM pg_replication_slots WHERE slot_name LIKE $1",
                    &[&format!("pg\\_{oid}\\_sync\\_%")],
                )
                .await
                .map_err(self.on_src("reading the replication slots"))?;
            slots.extend(rows.iter().map(|r| r.get::<_, String>(0)));
        }
        for slot in slots {
            if self.slot_exists(&slot).await? {
                self.wait_slot_inactive(&slot).await?;
                self.src
                    .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                    .await
                    .map_err(self.on_src(format!("dropping the replication slot {slot}")))?;
            }
        }
        self.src_exec("dropping the publication", &format!("DROP PUBLICATION IF EXISTS {q}"))
            .await?;
        Ok(())
    }

    /// Drops what expand added on the target: triggers, functions, marked
    /// columns and staging tables, and the schemas strata created if empty.
    pub async fn drop_target_objects(&self) -> Result<usize> {
        let c = self.c;
        let trigger = quote_ident(&trigger_name(c));
        let mut dropped = 0;
        let mut schemas = vec![staging_schema(c)];
        for t in &c.tables {
            let target_q = qualified(&t.target_schema, &t.target_name);
            let mut sql = String::new();
            if (&t.schema, &t.name) == (&t.target_schema, &t.target_name) {
                let exists: bool = self
                    .dst
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&target_q])
                    .await
                    .map_err(self.on_dst(format!("looking up {target_q}")))?
                    .get(0);
                if exists {
                    let marked = self.marked_columns(&target_q).await?;
                    dropped += marked.len();
                    sql.push_str(&format!("DROP TRIGGER IF EXISTS {trigger} ON {target_q};\n"));
                    if !marked.is_empty() {
                        let drops: Vec<String> = marked.iter().map(|m| format!("DROP COLUMN IF EXISTS {}", quote_ident(m))).collect();
                        sql.push_str(&format!("ALTER TABLE {target_q} {};\n", drops.join(", ")));
                    }
                }
            } else {
                if self.is_marked_table(&t.qualified()).await? {
                    sql.push_str(&format!("DROP TABLE IF EXISTS {};\n", t.qualified()));
                    dropped += 1;
                }
                schemas.push(t.schema.clone());
            }
            sql.push_str(&format!("DROP FUNCTION IF EXISTS {}();\n", function_name(c, t)));
            self.dst_ddl(&format!("dropping the replication objects of {}", t.display()), &sql)
                .await?;
        }
        schemas.sort();
        schemas.dedup();
        for s in schemas {
            let ours: bool = self
                .dst
                .query_one(
                    "SELECT coalesce((SELECT obj_description(oid, 'pg_namespace') = $2 FROM pg_namespace WHERE nspname = $1), false) \
                     AND NOT EXISTS (SELECT 1 FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)) \
                     AND NOT EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1))",
                    &[&s, &marker(c)],
                )
                .await
                .map_err(self.on_dst("reading the schemas"))?
                .get(0);
            if ours {
                self.dst_ddl("dropping a staging schema", &format!("DROP SCHEMA IF EXISTS {}", quote_ident(&s)))
                    .await?;
            }
        }
        Ok(dropped)
    }

    /// Contract: the mapping objects go; the source is never touched.
    pub async fn contract(&mut self) -> Result<String> {
        self.drop_replication().await?;
        let n = self.drop_target_objects().await?;
        Ok(format!(
            "{n} old-named columns and staging tables dropped on the target; the source tables are left for the operator"
        ))
    }

    /// Undoes everything before the writers flipped: replication, the target
    /// tables' rows (all copies of the source: they were empty at preflight
    /// and nothing else writes them before the writers flip), the mapping objects.
    pub async fn rollback(&mut self) -> Result<String> {
        self.drop_replication().await?;
        let mut tables = Vec::new();
        for t in &self.c.tables {
            let q = qualified(&t.target_schema, &t.target_name);
            let exists: bool = self
                .dst
                .query_one("SELECT to_regclass($1) IS NOT NULL", &[&q])
                .await
                .map_err(self.on_dst(format!("looking up {q}")))?
                .get(0);
            if exists {
                tables.push(q);
            }
        }
        if !tables.is_empty() {
            self.dst_ddl("emptying the target tables", &format!("TRUNCATE {};", tables.join(", ")))
                .await?;
        }
        let n = self.drop_target_objects().await?;
        Ok(format!(
            "subscription, slot and publication dropped; {} target tables emptied; {n} added columns and staging tables dropped",
            tables.len()
        ))
    }
}

fn describe_states(tables: &[(String, String)]) -> String {
    tables
        .iter()
        .map(|(t, s)| {
            let state = match s.as_str() {
                "i" => "initializing",
                "d" => "copying",
                "f" => "copied",
                "s" => "synchronized",
                "r" => "ready",
                other => other,
            };
            format!("{t}: {state}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn diff_keys(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    a.keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The preflight of a move (connects to both databases).
pub async fn preflight(c: &Cutover) -> Result<String> {
    MoveDbs::connect(c).await?.preflight().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_cutover() {
        let c = super::super::plan::parse(
            std::path::Path::new("nova-to-dreamlink.toml"),
            "kind = \"move\"\nsource = \"env:S\"\ntarget = \"env:T\"\nretention = \"1d\"\n[[table]]\nname = \"knowledge\"\n\
             target = \"knowledge_items\"\n",
        )
        .unwrap();
        assert_eq!(replication_name(&c), "strata_nova_to_dreamlink");
        assert_eq!(trigger_name(&c), "strata_move_nova_to_dreamlink");
        assert_eq!(
            function_name(&c, &c.tables[0]),
            "\"strata_staging\".\"mv_nova_to_dreamlink__public_knowledge\""
        );
    }
}
