//! Verification of a move: counts and chunked checksums of what the
//! subscription carries, source against target, for any key. Chunks are key
//! ranges `[bound i, bound i+1)` between every `batch_size`-th key of the
//! source, each read by an index range scan (a `LATERAL` over the bounds);
//! rows below the first bound and from the last bound on are a chunk each,
//! so a row the target has and the source does not is never left out.

use std::collections::{BTreeMap, BTreeSet};

use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::{get, Mapping, MoveDbs};
use crate::cutover::keyset::Key;
use crate::cutover::plan::Table;
use crate::cutover::reshape::Verification;
use crate::cutover::Result;
use crate::pg::quote_ident;

/// Rounds of re-comparing rows that differed while replication was catching up.
const VERIFY_RECHECKS: usize = 5;

/// A key's values as text, one per column.
type KeyValues = Vec<String>;

/// (count, md5) per chunk.
type Chunks = BTreeMap<i64, (i64, Option<String>)>;

/// Key values as one text[] per key column (the parameters of [`unnest`]).
fn columns_of(keys: &[KeyValues], width: usize) -> Vec<Vec<String>> {
    (0..width).map(|i| keys.iter().map(|k| k[i].clone()).collect()).collect()
}

/// `unnest($n::text[], $n+1::text[], ...) WITH ORDINALITY AS alias(k1, k2, ..., i)`
/// and the key built from one of its rows.
fn unnest(key: &Key, first: usize, alias: &str) -> (String, String) {
    let n = key.columns.len();
    let params: Vec<String> = (0..n).map(|i| format!("${}::text[]", first + i)).collect();
    let names: Vec<String> = (1..=n).map(|i| format!("k{i}")).collect();
    let row: Vec<String> = key
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| format!("({alias}.k{})::{ty}", i + 1))
        .collect();
    (
        format!("unnest({}) WITH ORDINALITY AS {alias}({}, i)", params.join(", "), names.join(", ")),
        format!("({})", row.join(", ")),
    )
}

fn params(arrays: &[Vec<String>]) -> Vec<&(dyn ToSql + Sync)> {
    arrays.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

fn diff_keys(a: &BTreeMap<KeyValues, String>, b: &BTreeMap<KeyValues, String>) -> Vec<KeyValues> {
    a.keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

impl MoveDbs<'_> {
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
        // Every table's source side first, then one wait for the target to apply what the source had when read.
        let mut sides = Vec::new();
        for t in &self.c.tables {
            let m = self.mapping(t).await?;
            // What the subscription carries: the published columns, on the source and where they land on the target.
            let carried = format!(
                "row({})::text",
                m.published
                    .iter()
                    .map(|col| format!("{}::text", quote_ident(&col.name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let bounds = self.bounds(t, &m.key).await?;
            let src_chunks = chunk_digests(&self.src, &t.qualified(), &m.key, &carried, &bounds)
                .await
                .map_err(self.on_src(format!("checksumming {}", t.display())))?;
            sides.push((t, m, carried, bounds, src_chunks));
        }
        self.catch_up_quietly().await?;
        for (t, m, carried, bounds, src_chunks) in sides {
            let dst_chunks = chunk_digests(&self.dst, &m.landing_q, &m.key, &carried, &bounds)
                .await
                .map_err(self.on_dst(format!("checksumming {}", m.landing_q)))?;
            v.differing_rows += self.mismatched(&m).await?;
            let all: BTreeSet<i64> = src_chunks.keys().chain(dst_chunks.keys()).copied().collect();
            let differing: Vec<i64> = all.iter().copied().filter(|k| src_chunks.get(k) != dst_chunks.get(k)).collect();
            v.rows += src_chunks.values().map(|(c, _)| c).sum::<i64>();
            v.chunks += all
                .iter()
                .filter(|k| src_chunks.get(k).or(dst_chunks.get(k)).is_some_and(|(n, _)| *n > 0))
                .count() as i64;
            v.differing_chunks += differing.len() as i64;
            if differing.is_empty() {
                continue;
            }
            let mut keys = Vec::new();
            for chunk in differing {
                let (filter, arrays) = chunk_filter(&m.key, &bounds, chunk);
                keys.extend(self.differing_keys(t, &m, &carried, &filter, &arrays).await?);
            }
            for _ in 0..VERIFY_RECHECKS {
                if keys.is_empty() {
                    break;
                }
                let (from, row) = unnest(&m.key, 1, "strata_k");
                let filter = format!("{} IN (SELECT {row} FROM {from})", m.key.row("strata_row"));
                keys = self
                    .differing_keys(t, &m, &carried, &filter, &columns_of(&keys, m.key.columns.len()))
                    .await?;
            }
            v.differing_rows += keys.len() as i64;
        }
        Ok(v)
    }

    /// Every `batch_size`-th key of the source, in key order.
    async fn bounds(&self, t: &Table, key: &Key) -> Result<Vec<KeyValues>> {
        let n = i64::from(self.c.settings.batch_size);
        let rows = self
            .src
            .query(
                &format!(
                    "SELECT {} FROM (SELECT {list}, row_number() OVER (ORDER BY {list}) AS strata_n FROM {q}) s \
                     WHERE (strata_n - 1) % {n} = 0 ORDER BY strata_n",
                    key.to_text("s"),
                    list = key.list(""),
                    q = t.qualified()
                ),
                &[],
            )
            .await
            .map_err(self.on_src(format!("chunking {}", t.display())))?;
        rows.iter().map(|r| get(r, 0, "the chunk bounds")).collect()
    }

    /// Keys of the rows `filter` selects whose `row` differs between the
    /// source table and where it lands on the target (read once the target
    /// caught up with the source read), or exists on one side only.
    async fn differing_keys(&mut self, t: &Table, m: &Mapping, row: &str, filter: &str, arrays: &[Vec<String>]) -> Result<Vec<KeyValues>> {
        let sql = |table: &str| {
            format!(
                "SELECT {}, md5({row}) FROM {table} AS strata_row WHERE {filter}",
                m.key.to_text("strata_row")
            )
        };
        let digests = |rows: Vec<tokio_postgres::Row>| -> Result<BTreeMap<KeyValues, String>> {
            rows.iter().map(|r| Ok((get(r, 0, "a key")?, get(r, 1, "a digest")?))).collect()
        };
        let src = digests(
            self.src
                .query(&sql(&t.qualified()), &params(arrays))
                .await
                .map_err(self.on_src(format!("comparing rows of {}", t.display())))?,
        )?;
        self.catch_up_quietly().await?;
        let dst = digests(
            self.dst
                .query(&sql(&m.landing_q), &params(arrays))
                .await
                .map_err(self.on_dst(format!("comparing rows of {}", m.landing_q)))?,
        )?;
        Ok(diff_keys(&src, &dst))
    }

    /// Target rows whose new columns are not the mapping (`up`, renames, casts)
    /// of the carried columns they were computed from.
    async fn mismatched(&self, m: &Mapping) -> Result<i64> {
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
            let keys = m.key.list("");
            format!(
                "SELECT count(*) FROM (SELECT {keys}, {want} AS strata_want FROM {l} AS strata_row) s \
                 FULL JOIN (SELECT {keys}, {got} AS strata_got FROM {q}) d USING ({keys}) \
                 WHERE s.strata_want IS DISTINCT FROM d.strata_got",
                l = m.landing_q,
                q = m.target_q
            )
        };
        let row = self
            .dst
            .query_one(&sql, &[])
            .await
            .map_err(self.on_dst(format!("checking the mapping of {}", m.target_q)))?;
        get(&row, 0, "the mapping check")
    }
}

/// The filter selecting chunk `chunk` (0: below the first bound; `i`: from
/// bound `i` to bound `i+1`; the last: from the last bound on) and its parameters.
fn chunk_filter(key: &Key, bounds: &[KeyValues], chunk: i64) -> (String, Vec<Vec<String>>) {
    let row = key.row("strata_row");
    let m = bounds.len() as i64;
    if bounds.is_empty() {
        return ("true".into(), Vec::new());
    }
    if chunk == 0 {
        return (format!("{row} < {}", key.param(1)), vec![bounds[0].clone()]);
    }
    let lo = bounds[(chunk - 1) as usize].clone();
    if chunk == m {
        return (format!("{row} >= {}", key.param(1)), vec![lo]);
    }
    let hi = bounds[chunk as usize].clone();
    (format!("{row} >= {} AND {row} < {}", key.param(1), key.param(2)), vec![lo, hi])
}

/// (count, md5 of `carried` in key order) per chunk of `table` (see the module docs).
async fn chunk_digests(
    client: &Client,
    table: &str,
    key: &Key,
    carried: &str,
    bounds: &[KeyValues],
) -> Result<Chunks, tokio_postgres::Error> {
    let list = key.list("strata_row");
    let agg = format!("count(*), md5(string_agg({carried}, ',' ORDER BY {list}))");
    let mut out = Chunks::new();
    let mut read = |rows: Vec<tokio_postgres::Row>| -> Result<(), tokio_postgres::Error> {
        for r in rows {
            out.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
        }
        Ok(())
    };
    if bounds.is_empty() {
        read(
            client
                .query(&format!("SELECT 0::bigint, {agg} FROM {table} AS strata_row"), &[])
                .await?,
        )?;
        return Ok(out);
    }
    let m = bounds.len() as i64;
    for chunk in [0, m] {
        let (filter, arrays) = chunk_filter(key, bounds, chunk);
        read(
            client
                .query(
                    &format!("SELECT {chunk}::bigint, {agg} FROM {table} AS strata_row WHERE {filter}"),
                    &params(&arrays),
                )
                .await?,
        )?;
    }
    if m > 1 {
        // Bounds i and i+1 side by side, column by column (a row comparison
        // against columns, not a record, is an index range scan).
        let arrays = columns_of(bounds, key.columns.len());
        let (from, _) = unnest(key, 1, "strata_b");
        let cols: Vec<String> = key
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| {
                let k = format!("(strata_b.k{})::{ty}", i + 1);
                format!("{k} AS l{n}, lead({k}) OVER (ORDER BY strata_b.i) AS h{n}", n = i + 1)
            })
            .collect();
        let side = |prefix: &str| {
            format!(
                "({})",
                (1..=key.columns.len())
                    .map(|i| format!("b.{prefix}{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let sql = format!(
            "WITH strata_bounds AS (SELECT strata_b.i, {} FROM {from}) \
             SELECT b.i, s.* FROM strata_bounds b CROSS JOIN LATERAL \
             (SELECT {agg} FROM {table} AS strata_row WHERE {row} >= {lo} AND {row} < {hi}) s WHERE b.h1 IS NOT NULL",
            cols.join(", "),
            row = key.row("strata_row"),
            lo = side("l"),
            hi = side("h"),
        );
        read(client.query(&sql, &params(&arrays)).await?)?;
    }
    Ok(out)
}
