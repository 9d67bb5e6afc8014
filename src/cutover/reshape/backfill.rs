//! The reshape's backfill and verification, on any unique btree key.
//!
//! A batch is a key range: its last key is read first (`ORDER BY key OFFSET
//! batch_size - 1 LIMIT 1` after the previous batch, with row comparisons),
//! so the `UPDATE` is a range scan of the key's index whatever the batch
//! size; the upper end of the walk is the largest key at start (`ORDER BY
//! key DESC LIMIT 1`: rows written later went through the trigger). The
//! batch's `UPDATE` computes the new columns itself: the trigger's `WHEN`
//! skips the top-level statement of a transaction that set
//! [`super::BACKFILL_SETTING`] to the table's name, which is what makes the
//! backfill run near the speed of one whole-table `UPDATE` (a PL/pgSQL call
//! and one query per new column and row cost about as much as the update
//! itself). Same values as the trigger's: on a backfill write only the
//! marker changes, so the trigger would take its `up` branch for every
//! column. A user `BEFORE UPDATE` trigger that rewrites a replaced column
//! during the batch is the exception: the batch computed from the value
//! before it (verify reports such rows).

use std::time::{Duration, Instant};

use super::{get, TenantDb, BACKFILL_SETTING, LOCK_RETRY, MARKER};
use crate::cutover::keyset::Key;
use crate::cutover::plan::Table;
use crate::cutover::progress::StepCtx;
use crate::cutover::{estimate, Error, Result, Sql};
use crate::pg::conn::sql_error;
use crate::pg::retry;
use crate::pg::{quote_ident, quote_literal};

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

/// Whether the SQL expression `expr` may read column `name` (a whole-word,
/// case-insensitive match; a false positive only costs the faster path).
fn mentions(expr: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '$';
    let (expr, name) = (expr.to_ascii_lowercase(), name.to_ascii_lowercase());
    expr.match_indices(&name)
        .any(|(i, m)| !expr[..i].chars().next_back().is_some_and(word) && !expr[i + m.len()..].chars().next().is_some_and(word))
}

/// The statements of one table's walk.
struct Walk {
    /// The largest key now.
    upper: String,
    /// The last key of the first batch ($1: the upper end).
    first_bound: String,
    /// The last key of a later batch ($1: the previous batch's last key, $2: the upper end).
    next_bound: String,
    /// `SET LOCAL`s of a batch's transaction.
    settings: String,
    /// The first batch's UPDATE ($1: its last key).
    first_batch: String,
    /// A later batch's UPDATE ($1: the previous last key, $2: its last key).
    next_batch: String,
    fast: bool,
}

impl TenantDb<'_> {
    async fn walk(&self, t: &Table, key: &Key) -> Result<Walk> {
        let s = &self.cutover.settings;
        let q = t.qualified();
        let row = key.row("strata_t");
        let skip = s.batch_size - 1;
        let bound = |lower: &str| {
            format!(
                "SELECT {} FROM {q} AS strata_t WHERE {lower}{row} <= {upper} ORDER BY {} OFFSET {skip} LIMIT 1",
                key.to_text("strata_t"),
                key.list("strata_t"),
                upper = key.param(if lower.is_empty() { 1 } else { 2 }),
            )
        };
        let fast = self.fast_path(t).await?;
        let mut set = vec![format!("{MARKER} = false")];
        let mut settings = format!("SET LOCAL lock_timeout = {}", quote_literal(&s.lock_timeout));
        if fast {
            set.extend(t.changes.iter().map(|ch| format!("{} = ({})", quote_ident(&ch.new), ch.up)));
            settings.push_str(&format!(";\nSET LOCAL {BACKFILL_SETTING} = {}", quote_literal(&t.display())));
        }
        let batch = |range: String| format!("UPDATE {q} SET {} WHERE {range} AND {MARKER}", set.join(", "));
        let bare = key.row("");
        Ok(Walk {
            upper: format!(
                "SELECT {} FROM {q} AS strata_t ORDER BY {} LIMIT 1",
                key.to_text("strata_t"),
                key.desc("strata_t")
            ),
            first_bound: bound(""),
            next_bound: bound(&format!("{row} > {} AND ", key.param(1))),
            settings,
            first_batch: batch(format!("{bare} <= {}", key.param(1))),
            next_batch: batch(format!("{bare} > {} AND {bare} <= {}", key.param(1), key.param(2))),
            fast,
        })
    }

    /// The statements a backfill runs, for a dry run.
    pub async fn backfill_sql(&self) -> Result<Vec<Sql>> {
        let mut out = Vec::new();
        for t in &self.cutover.tables {
            let key = Key::load(&self.client, &self.target, &t.qualified(), &t.key).await?;
            let w = self.walk(t, &key).await?;
            out.push(Sql::new("tenant", format!("{}: the upper end of the walk", t.display()), w.upper));
            out.push(Sql::new("tenant", format!("{}: each batch's last key", t.display()), w.next_bound));
            out.push(Sql::new(
                "tenant",
                format!(
                    "{}: each batch, in its own transaction ({})",
                    t.display(),
                    if w.fast {
                        "new values computed in the batch"
                    } else {
                        "through the trigger"
                    }
                ),
                format!("BEGIN;\n{};\n{};\nCOMMIT;", w.settings, w.next_batch),
            ));
        }
        Ok(out)
    }

    /// Keyset batches over the marked rows up to the key's largest value at start.
    pub async fn backfill(&self, ctx: Option<&StepCtx<'_>>) -> Result<String> {
        self.backfill_with(ctx, &mut |_| {}).await
    }

    /// [`backfill`](Self::backfill), calling `observe` after every committed
    /// batch (the benchmark measures how long each held its row locks).
    pub async fn backfill_observed(&self, observe: &mut (dyn FnMut(&BatchStats) + Send)) -> Result<String> {
        self.backfill_with(None, observe).await
    }

    async fn backfill_with(&self, ctx: Option<&StepCtx<'_>>, observe: &mut (dyn FnMut(&BatchStats) + Send)) -> Result<String> {
        let s = self.cutover.settings.clone();
        let mut report = Vec::new();
        for t in &self.cutover.tables {
            let key = Key::load(&self.client, &self.target, &t.qualified(), &t.key).await?;
            let w = self.walk(t, &key).await?;
            let err = |what: &str| {
                let f = sql_error(&self.target, format!("backfilling {}: {what}", t.display()));
                move |e| Error::Pg(f(e))
            };
            let upper: Option<Vec<String>> = self
                .client
                .query_opt(&w.upper, &[])
                .await
                .map_err(err("reading the largest key"))?
                .map(|r| get(&r, 0, "the largest key"))
                .transpose()?;
            let Some(upper) = upper else {
                report.push(format!("{}: empty", t.display()));
                continue;
            };
            let total = estimate::rows(&self.client, &self.target, &t.qualified()).await?.map(|(n, _)| n);
            let mut last: Option<Vec<String>> = None;
            let (mut updated, mut walked, mut batches) = (0u64, 0u64, 0u64);
            loop {
                let hi: Option<Vec<String>> = match &last {
                    None => self.client.query_opt(&w.first_bound, &[&upper]).await,
                    Some(l) => self.client.query_opt(&w.next_bound, &[l, &upper]).await,
                }
                .map_err(err("reading the next batch's range"))?
                .map(|r| get(&r, 0, "a batch's last key"))
                .transpose()?;
                let final_batch = hi.is_none();
                let hi = hi.unwrap_or_else(|| upper.clone());
                let client = &self.client;
                let (res, attempts) = retry::on_lock_timeout(LOCK_RETRY, || {
                    let (hi, last, w) = (&hi, &last, &w);
                    async move {
                        let started = Instant::now();
                        client.batch_execute(&format!("BEGIN;\n{};", w.settings)).await?;
                        let res = match last {
                            None => client.execute(&w.first_batch, &[hi]).await,
                            Some(l) => client.execute(&w.next_batch, &[l, hi]).await,
                        };
                        let res = match res {
                            Ok(rows) => client.batch_execute("COMMIT").await.map(|()| rows),
                            Err(e) => Err(e),
                        };
                        if res.is_err() {
                            let _ = client.batch_execute("ROLLBACK").await;
                        }
                        res.map(|rows| (rows, started.elapsed()))
                    }
                })
                .await;
                let (rows, held) = res.map_err(err("a batch"))?;
                observe(&BatchStats {
                    table: t.display(),
                    rows,
                    held,
                    attempts,
                });
                updated += rows;
                batches += 1;
                walked += if final_batch { rows } else { u64::from(s.batch_size) };
                if let Some(ctx) = ctx {
                    let done = if final_batch { total.unwrap_or(walked).max(walked) } else { walked };
                    ctx.rows(&t.display(), done, total.map(|n| n.max(done))).await?;
                }
                if hi == upper {
                    break;
                }
                last = Some(hi);
                if !s.pause.is_zero() {
                    tokio::time::sleep(s.pause).await;
                }
            }
            let left: i64 = get(
                &self
                    .client
                    .query_one(&format!("SELECT count(*) FROM {} WHERE {MARKER}", t.qualified()), &[])
                    .await
                    .map_err(err("counting rows left"))?,
                0,
                "count",
            )?;
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
            let path = if w.fast { "computed in the batch" } else { "through the trigger" };
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
        let conditional: bool = get(
            &self
                .client
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2 \
                     AND pg_get_triggerdef(oid) LIKE '%' || $3 || '%')",
                    &[&t.qualified(), &self.trigger_name(), &BACKFILL_SETTING],
                )
                .await
                .map_err(self.err(format!("reading the triggers of {}", t.display())))?,
            0,
            "pg_trigger",
        )?;
        let assigned: Vec<&str> = t.changes.iter().map(|c| c.new.as_str()).chain([MARKER]).collect();
        Ok(conditional && !t.changes.iter().any(|c| assigned.iter().any(|a| mentions(&c.up, a))))
    }

    fn verify_sql(&self, t: &Table) -> String {
        let n = self.cutover.settings.batch_size;
        let q = t.qualified();
        let key = t.key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ");
        let mut mismatch = vec![MARKER.to_string()];
        for ch in &t.changes {
            mismatch.push(format!("{} IS DISTINCT FROM ({})", quote_ident(&ch.new), ch.up));
            if let (Some(old), Some(down)) = (&ch.replaces, &ch.down) {
                mismatch.push(format!("{} IS DISTINCT FROM ({down})", quote_ident(old)));
            }
        }
        let actual: Vec<String> = t.changes.iter().map(|c| quote_ident(&c.new)).collect();
        let expected: Vec<String> = t.changes.iter().map(|c| format!("({})", c.up)).collect();
        format!(
            "WITH rows AS (SELECT count(*) AS total, count(*) FILTER (WHERE {mismatch}) AS differing FROM {q}), \
             chunks AS (SELECT md5(string_agg(row({actual})::text, ',' ORDER BY {key})) AS a, \
             md5(string_agg(row({expected})::text, ',' ORDER BY {key})) AS b \
             FROM (SELECT *, (row_number() OVER (ORDER BY {key}) - 1) / {n} AS strata_chunk FROM {q}) s GROUP BY strata_chunk) \
             SELECT (SELECT total FROM rows), (SELECT differing FROM rows), (SELECT count(*) FROM chunks), \
             (SELECT count(*) FILTER (WHERE a IS DISTINCT FROM b) FROM chunks)",
            mismatch = mismatch.join(" OR "),
            actual = actual.join(", "),
            expected = expected.join(", "),
        )
    }

    /// The statements of a verification, for a dry run.
    pub fn verification_sql(&self) -> Vec<Sql> {
        self.cutover
            .tables
            .iter()
            .filter(|t| !t.changes.is_empty())
            .map(|t| Sql::new("tenant", format!("verifying {} (one snapshot)", t.display()), self.verify_sql(t)))
            .collect()
    }

    /// Rows whose new (and old) values disagree with the expressions, and
    /// chunks (in key order) whose checksums differ.
    pub async fn verify(&self) -> Result<Verification> {
        let mut v = Verification::default();
        for t in &self.cutover.tables {
            if t.changes.is_empty() {
                continue;
            }
            let row = self
                .client
                .query_one(&self.verify_sql(t), &[])
                .await
                .map_err(self.err(format!("verifying {}", t.display())))?;
            v.rows += get::<i64>(&row, 0, "verification")?;
            v.differing_rows += get::<i64>(&row, 1, "verification")?;
            v.chunks += get::<i64>(&row, 2, "verification")?;
            v.differing_chunks += get::<i64>(&row, 3, "verification")?;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
