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
//! The trigger functions live in the staging schema. On a PostgreSQL 15 or
//! later source the publication has column lists, so `drop` columns never
//! leave the source. PostgreSQL 13 and 14 have no column lists: there the
//! publication carries whole tables, and the preflight refuses a table whose
//! `drop` columns still exist on the source (their data would leave it). A
//! target before 15 has no subscription error counters
//! (`pg_stat_subscription_stats`) and 13 no COPY progress
//! (`pg_stat_progress_copy`): the initial copy is then followed by its
//! tables' states only. The slot is
//! created with `pg_create_logical_replication_slot` and the subscription
//! with `create_slot = false`, which also works when both databases share a
//! cluster. Publication, slot and subscription carry the run's identity in
//! their name (slots are per server: two moves of one file from two
//! databases of a server must not share one). Every operation checks what
//! exists first, so each step can be run again after a crash.
//!
//! Parts: [`preflight`], [`expand`] (the target's mapping objects, contract,
//! rollback), [`replication`] (publication, slot, subscription, the initial
//! copy, lag, retained WAL, the end of the window), [`verify`].

pub mod expand;
pub mod preflight;
pub mod replication;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio_postgres::Client;

use super::keyset::Key;
use super::plan::{Cutover, Table};
use super::reshape::short;
use super::{Error, Result};
use crate::pg::conn::sql_error;
use crate::pg::retry::{self, Retry};
use crate::pg::version::server_version;
use crate::pg::{quote_ident, Target};

/// The first major whose publications take column lists
/// (`CREATE PUBLICATION ... FOR TABLE t (columns)`).
pub const COLUMN_LISTS_SINCE: u32 = 15;

/// How far past the source's sequence the target's starts, so that rows the
/// source still numbers while the writers' routes flip cannot collide with
/// rows numbered on the target.
pub const SEQUENCE_HEADROOM: i64 = 1000;

/// Target DDL that failed on `lock_timeout` is retried like a reshape's.
const LOCK_RETRY: Retry = Retry {
    attempts: 5,
    base: Duration::from_millis(200),
};

/// How long a reachability check waits for an answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(5);

/// Publication, slot and subscription of one run (one name for the three):
/// `strata_<cutover>_<run token>`; a run started by an older strata
/// (no token) keeps `strata_<cutover>`.
pub fn replication_name(c: &Cutover, token: Option<&str>) -> String {
    match token {
        Some(t) => short(&format!("strata_{}_{t}", c.name)),
        None => short(&format!("strata_{}", c.name)),
    }
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

/// The real target table of a mapping, quoted.
fn target_of(t: &Table) -> String {
    qualified(&t.target_schema, &t.target_name)
}

fn keeps_name(t: &Table) -> bool {
    (&t.schema, &t.name) == (&t.target_schema, &t.target_name)
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
    /// The key, with the source's types.
    key: Key,
}

/// The two databases of a move, connected, and the run's names.
pub struct MoveDbs<'a> {
    pub c: &'a Cutover,
    /// Publication, slot and subscription of this run.
    pub name: String,
    pub source: Target,
    pub target: Target,
    pub src: Client,
    pub dst: Client,
    /// The PostgreSQL majors of the source's and the target's servers.
    pub source_major: u32,
    pub target_major: u32,
}

/// Checksums compare text renderings: both sides render alike.
async fn prepare_session(client: &Client, t: &Target) -> Result<()> {
    client
        .batch_execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3; SET IntervalStyle = 'postgres'")
        .await
        .map_err(|e| Error::Pg(sql_error(t, "setting the session")(e)))
}

async fn connect_side(t: &Target) -> Result<Client> {
    let client = crate::pg::connect(t).await?;
    prepare_session(&client, t).await?;
    Ok(client)
}

fn get<'r, T: tokio_postgres::types::FromSql<'r>>(r: &'r tokio_postgres::Row, i: usize, what: &str) -> Result<T> {
    r.try_get(i).map_err(|e| Error::Refused(format!("{what}: unexpected value: {e}")))
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
    rows.iter()
        .map(|r| {
            Ok(Column {
                name: get(r, 0, table)?,
                ty: get(r, 1, table)?,
            })
        })
        .collect()
}

async fn text(client: &Client, target: &Target, sql: &str) -> Result<String> {
    let row = client
        .query_one(sql, &[])
        .await
        .map_err(|e| Error::Pg(sql_error(target, sql.to_string())(e)))?;
    get(&row, 0, sql)
}

/// Which side of a move.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

impl<'a> MoveDbs<'a> {
    /// Connects to both databases; `token` is the run's identity.
    pub async fn connect(c: &'a Cutover, token: Option<&str>) -> Result<MoveDbs<'a>> {
        let source = Target::parse(c.file.source.as_deref().unwrap_or_default())?;
        let target = Target::parse(c.file.target.as_deref().unwrap_or_default())?;
        let unreachable = |side: Side, t: &Target, e: Error| Error::Refused(format!("the {} {t} is unreachable: {e}", side.as_str()));
        let src = connect_side(&source).await.map_err(|e| unreachable(Side::Source, &source, e))?;
        let dst = connect_side(&target).await.map_err(|e| unreachable(Side::Target, &target, e))?;
        MoveDbs::with_clients(c, replication_name(c, token), (source, src), (target, dst)).await
    }

    /// The two sides from connections already open (their majors are read here).
    pub async fn with_clients(
        c: &'a Cutover,
        name: String,
        (source, src): (Target, Client),
        (target, dst): (Target, Client),
    ) -> Result<MoveDbs<'a>> {
        let source_major = server_version(&src, &source).await?.major();
        let target_major = server_version(&dst, &target).await?.major();
        Ok(MoveDbs {
            c,
            name,
            source,
            target,
            src,
            dst,
            source_major,
            target_major,
        })
    }

    /// Whether the source can publish column lists (PostgreSQL 15 and later).
    pub fn column_lists(&self) -> bool {
        self.source_major >= COLUMN_LISTS_SINCE
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

    /// DDL on the target, in one transaction with the plan's lock_timeout,
    /// retried on a lock timeout.
    async fn dst_ddl(&self, what: &str, sql: &str) -> Result<()> {
        let (dst, lt) = (&self.dst, self.c.settings.lock_timeout.as_str());
        let (res, _) = retry::on_lock_timeout(LOCK_RETRY, || retry::transaction(dst, lt, sql)).await;
        res.map_err(self.on_dst(what))
    }

    /// Whether `side` answers now; a lost connection is opened again once.
    /// The error says which database is unreachable and why.
    pub async fn reach(&mut self, side: Side) -> std::result::Result<(), String> {
        let (client, target) = match side {
            Side::Source => (&self.src, &self.source),
            Side::Target => (&self.dst, &self.target),
        };
        let alive = !client.is_closed()
            && matches!(
                tokio::time::timeout(REACH_TIMEOUT, client.simple_query("SELECT 1")).await,
                Ok(Ok(_))
            );
        if alive {
            return Ok(());
        }
        let fresh = match tokio::time::timeout(REACH_TIMEOUT * 2, connect_side(target)).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(format!("the {} {target} is unreachable: {e}", side.as_str())),
            Err(_) => {
                return Err(format!(
                    "the {} {target} is unreachable: no answer within {}s",
                    side.as_str(),
                    (REACH_TIMEOUT * 2).as_secs()
                ))
            }
        };
        match side {
            Side::Source => self.src = fresh,
            Side::Target => self.dst = fresh,
        }
        Ok(())
    }

    /// Both sides answer, or a refusal naming the one that does not.
    pub async fn reach_both(&mut self) -> std::result::Result<(), String> {
        self.reach(Side::Source).await?;
        self.reach(Side::Target).await
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
        rows.iter().map(|r| get(r, 0, table)).collect()
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
        get(&row, 0, table)
    }

    async fn exists_on_target(&self, table: &str) -> Result<bool> {
        let row = self
            .dst
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .map_err(self.on_dst(format!("looking up {table}")))?;
        get(&row, 0, table)
    }

    async fn mapping(&self, t: &Table) -> Result<Mapping> {
        let source_cols = columns(&self.src, &self.source, &t.qualified()).await?;
        let published: Vec<Column> = source_cols.into_iter().filter(|col| !t.drop.contains(&col.name)).collect();
        let same = keeps_name(t);
        let target_q = target_of(t);
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
        let key = Key {
            columns: t
                .key
                .iter()
                .map(|k| {
                    let ty = published
                        .iter()
                        .find(|c| &c.name == k)
                        .map_or_else(|| "text".to_string(), |c| c.ty.clone());
                    (k.clone(), ty)
                })
                .collect(),
        };
        Ok(Mapping {
            published,
            same,
            landing_q: t.qualified(),
            target_q,
            pairs,
            key,
        })
    }
}

/// The preflight of a move (connects to both databases).
pub async fn preflight(c: &Cutover, token: Option<&str>) -> Result<String> {
    MoveDbs::connect(c, token).await?.preflight().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_cutover_and_the_run() {
        let c = super::super::plan::parse(
            std::path::Path::new("nova-to-dreamlink.toml"),
            "kind = \"move\"\nsource = \"env:S\"\ntarget = \"env:T\"\nretention = \"1d\"\n[[table]]\nname = \"knowledge\"\n\
             target = \"knowledge_items\"\n",
        )
        .unwrap();
        assert_eq!(replication_name(&c, Some("1a2b3c4d")), "strata_nova_to_dreamlink_1a2b3c4d");
        assert_eq!(replication_name(&c, None), "strata_nova_to_dreamlink");
        assert_eq!(trigger_name(&c), "strata_move_nova_to_dreamlink");
        assert_eq!(
            function_name(&c, &c.tables[0]),
            "\"strata_staging\".\"mv_nova_to_dreamlink__public_knowledge\""
        );
    }
}
