//! The replication of a move: publication, slot and subscription; the
//! initial copy with its progress; the lag and the WAL the slot retains,
//! with outages named as such; the end of the dual-write window.

use std::time::{Duration, Instant};

use super::{get, target_of, MoveDbs};
use crate::cutover::estimate;
use crate::cutover::plan::{format_duration, format_size};
use crate::cutover::progress::StepCtx;
use crate::cutover::state::Progress;
use crate::cutover::{Error, Result, Sql};
use crate::pg::conn::sql_error;
use crate::pg::{quote_ident, quote_literal};

/// The run key of a move in the control plane (a move has no tenants).
pub const RUN_KEY: &str = "move";

/// What the source's slot holds back.
#[derive(Clone, Debug)]
pub struct RetainedWal {
    pub bytes: u64,
    /// `reserved`, `extended`, `unreserved` or `lost` (pg_replication_slots).
    pub wal_status: String,
    /// Bytes left before `max_slot_wal_keep_size` invalidates the slot, when set.
    pub safe_bytes: Option<i64>,
}

/// The figures of a soak's countdown.
#[derive(Clone, Debug, Default)]
pub struct Pulse {
    pub figures: String,
    pub progress: Progress,
    pub warnings: Vec<String>,
}

impl Pulse {
    /// The figures while a side does not answer: the outage, as a warning too.
    pub fn outage(outage: String) -> Pulse {
        let mut p = Pulse {
            figures: outage.clone(),
            warnings: vec![outage.clone()],
            ..Pulse::default()
        };
        p.progress.note = Some(outage);
        p
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

impl MoveDbs<'_> {
    async fn subscription(&self) -> Result<Option<(u32, bool)>> {
        let row = self
            .dst
            .query_opt(
                "SELECT oid, subenabled FROM pg_subscription WHERE subname = $1 \
                 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[&self.name],
            )
            .await
            .map_err(self.on_dst("reading the subscription"))?;
        row.map(|r| Ok((get(&r, 0, "pg_subscription")?, get(&r, 1, "pg_subscription")?)))
            .transpose()
    }

    async fn slot_exists(&self, slot: &str) -> Result<bool> {
        let row = self
            .src
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)", &[&slot])
            .await
            .map_err(self.on_src("reading the replication slots"))?;
        get(&row, 0, "pg_replication_slots")
    }

    /// The statements of dual-write; `redact` hides the subscription's
    /// connection string (a dry run prints them).
    pub async fn dual_write_sql(&self, redact: bool) -> Result<Vec<Sql>> {
        let q = quote_ident(&self.name);
        let mut tables = Vec::new();
        for t in &self.c.tables {
            if self.column_lists() {
                let m = self.mapping(t).await?;
                let cols: Vec<String> = m.published.iter().map(|col| quote_ident(&col.name)).collect();
                tables.push(format!("{} ({})", t.qualified(), cols.join(", ")));
            } else {
                // Before PostgreSQL 15: whole tables (the preflight refused any dropped column still on the source).
                tables.push(t.qualified());
            }
        }
        let exists: bool = get(
            &self
                .src
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", &[&self.name])
                .await
                .map_err(self.on_src("reading the publications"))?,
            0,
            "pg_publication",
        )?;
        let verb = if exists {
            format!("ALTER PUBLICATION {q} SET")
        } else {
            format!("CREATE PUBLICATION {q} FOR")
        };
        let what = if self.column_lists() {
            "the publication (column lists: dropped columns never leave the source)"
        } else {
            "the publication (whole tables: PostgreSQL 13 and 14 have no column lists; the preflight refuses a table whose dropped \
             columns are still on the source)"
        };
        let mut out = vec![Sql::new("source", what, format!("{verb} TABLE {}", tables.join(", ")))];
        if !self.slot_exists(&self.name).await? {
            out.push(Sql::new(
                "source",
                "the logical replication slot",
                format!(
                    "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
                    quote_literal(&self.name)
                ),
            ));
        }
        match self.subscription().await? {
            Some((_, true)) => {}
            Some((_, false)) => out.push(Sql::new(
                "target",
                "enabling the subscription",
                format!("ALTER SUBSCRIPTION {q} ENABLE"),
            )),
            None => {
                let conn = if redact {
                    format!("'<the source: {}>'", self.source)
                } else {
                    quote_literal(&self.source.conninfo())
                };
                out.push(Sql::new(
                    "target",
                    "creating the subscription",
                    format!(
                        "CREATE SUBSCRIPTION {q} CONNECTION {conn} PUBLICATION {q} WITH (create_slot = false, slot_name = {}, copy_data = true)",
                        quote_literal(&self.name)
                    ),
                ));
            }
        }
        Ok(out)
    }

    /// Publication (column lists), slot, subscription (`create_slot = false`).
    pub async fn dual_write(&self) -> Result<String> {
        for s in self.dual_write_sql(false).await? {
            // The subscription's statement holds the password: errors name the step, never the SQL.
            let res = match s.database.as_str() {
                "source" => self.src.batch_execute(&s.sql).await.map_err(self.on_src(&s.what)),
                _ => self.dst.batch_execute(&s.sql).await.map_err(self.on_dst(&s.what)),
            };
            res?;
        }
        Ok(format!(
            "publication, slot and subscription {} ({} tables)",
            self.name,
            self.c.tables.len()
        ))
    }

    /// (state of each table, sync + apply errors so far).
    async fn sync_state(&self) -> Result<(Vec<(String, String)>, i64)> {
        let Some((oid, _)) = self.subscription().await? else {
            return Err(Error::Refused(format!(
                "cutover {}: the subscription {} does not exist (run dual-write again)",
                self.c.name, self.name
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
        // The error counters came with PostgreSQL 15; an older target has none to read.
        let errors: i64 = if self.target_major >= 15 {
            get(
                &self
                    .dst
                    .query_one(
                        "SELECT coalesce((SELECT sync_error_count + apply_error_count FROM pg_stat_subscription_stats WHERE subid = $1), 0)",
                        &[&oid],
                    )
                    .await
                    .map_err(self.on_dst("reading the subscription's statistics"))?,
                0,
                "pg_stat_subscription_stats",
            )?
        } else {
            0
        };
        let states = rows
            .iter()
            .map(|r| Ok((get(r, 0, "pg_subscription_rel")?, get(r, 1, "pg_subscription_rel")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok((states, errors))
    }

    /// Rows the initial copy has written so far: tables past their copy
    /// count as their estimate, tables being copied as the COPY's progress.
    async fn copied_rows(&self, states: &[(String, String)], totals: &[(String, u64)]) -> Result<u64> {
        // COPY reports its progress from PostgreSQL 14 on: before, a table being copied counts as nothing yet.
        let rows = if self.target_major < 14 {
            Vec::new()
        } else {
            self.dst
                .query(
                    "SELECT relid::regclass::text, tuples_processed FROM pg_stat_progress_copy \
                 WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    &[],
                )
                .await
                .map_err(self.on_dst("reading the copy's progress"))?
        };
        let mut copying = Vec::new();
        for r in &rows {
            copying.push((
                get::<String>(r, 0, "pg_stat_progress_copy")?,
                get::<i64>(r, 1, "pg_stat_progress_copy")?,
            ));
        }
        let mut done = 0;
        for (table, state) in states {
            let total = totals.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n);
            done += match state.as_str() {
                "f" | "s" | "r" => total,
                _ => copying.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n as u64),
            };
        }
        Ok(done)
    }

    /// Waits for the subscription's initial copy (every table in state `r`),
    /// reporting rows copied of the source's estimate.
    pub async fn backfill(&self, ctx: &StepCtx<'_>) -> Result<String> {
        let start = Instant::now();
        let (_, errors_before) = self.sync_state().await?;
        // Estimates per landing table, named as pg_subscription_rel names them.
        let mut totals = Vec::new();
        for t in &self.c.tables {
            let n = estimate::rows(&self.src, &self.source, &t.qualified()).await?.map_or(0, |(n, _)| n);
            let shown: String = get(
                &self
                    .dst
                    .query_one("SELECT coalesce(to_regclass($1)::text, $1)", &[&t.qualified()])
                    .await
                    .map_err(self.on_dst("looking up the landing tables"))?,
                0,
                "pg_class",
            )?;
            totals.push((shown, n));
        }
        let total: u64 = totals.iter().map(|(_, n)| n).sum();
        loop {
            let (tables, errors) = self.sync_state().await?;
            let ready = tables.iter().filter(|(_, s)| s == "r").count();
            if ready == tables.len() && ready == self.c.tables.len() {
                ctx.rows("initial copy", total, Some(total)).await?;
                return Ok(format!(
                    "initial copy of {ready} tables (about {total} rows) done in {:.1}s",
                    start.elapsed().as_secs_f64()
                ));
            }
            if errors > errors_before {
                return Err(ctx.gate(format!(
                    "the subscription reported {} errors during the initial copy (see the target's server log); tables: {}",
                    errors - errors_before,
                    describe_states(&tables)
                )));
            }
            let done = self.copied_rows(&tables, &totals).await?;
            ctx.rows(
                &format!("initial copy: {ready}/{} tables ready ({})", tables.len(), describe_states(&tables)),
                done.min(total),
                Some(total),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes a marker into the source's WAL (committed and flushed) and
    /// returns its position: once the slot confirms it, every earlier commit
    /// is applied on the target.
    async fn probe(&mut self) -> Result<String> {
        let e = |e| Error::Pg(sql_error(&self.source, "probing the WAL")(e));
        let tx = self.src.transaction().await.map_err(e)?;
        tx.batch_execute("SET LOCAL synchronous_commit = on").await.map_err(e)?;
        let row = tx
            .query_one("SELECT pg_logical_emit_message(true, 'strata', 'lag probe')::text", &[])
            .await
            .map_err(e)?;
        let lsn: String = get(&row, 0, "pg_logical_emit_message")?;
        tx.commit().await.map_err(e)?;
        Ok(lsn)
    }

    /// The time until the target confirms the WAL written now, or `None` after `limit`.
    pub async fn replication_lag(&mut self, limit: Duration) -> Result<Option<Duration>> {
        let lsn = self.probe().await?;
        let start = Instant::now();
        loop {
            let row = self
                .src
                .query_opt(
                    "SELECT coalesce(confirmed_flush_lsn >= $1::text::pg_lsn, false) FROM pg_replication_slots WHERE slot_name = $2",
                    &[&lsn, &self.name],
                )
                .await
                .map_err(self.on_src("reading the replication slot"))?;
            match row {
                None => {
                    return Err(Error::Refused(format!(
                        "cutover {}: the replication slot {} does not exist on the source",
                        self.c.name, self.name
                    )))
                }
                Some(r) if get::<bool>(&r, 0, "pg_replication_slots")? => return Ok(Some(start.elapsed())),
                Some(_) => {}
            }
            if start.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why replication does not deliver, when something is down rather than
    /// slow: the subscription disabled, its apply worker not running, the
    /// slot not streaming.
    async fn stalled(&self) -> Result<Option<String>> {
        if let Some((oid, enabled)) = self.subscription().await? {
            if !enabled {
                return Ok(Some(format!("the subscription {} is disabled on the target", self.name)));
            }
            let worker: bool = get(
                &self
                    .dst
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_stat_subscription WHERE subid = $1 AND relid IS NULL AND pid IS NOT NULL)",
                        &[&oid],
                    )
                    .await
                    .map_err(self.on_dst("reading pg_stat_subscription"))?,
                0,
                "pg_stat_subscription",
            )?;
            if !worker {
                return Ok(Some(format!(
                    "the apply worker of the subscription {} is not running on the target (it restarts after an error: see the \
                     target's server log)",
                    self.name
                )));
            }
        } else {
            return Ok(Some(format!("the subscription {} does not exist on the target", self.name)));
        }
        let active: Option<bool> = self
            .src
            .query_opt("SELECT active FROM pg_replication_slots WHERE slot_name = $1", &[&self.name])
            .await
            .map_err(self.on_src("reading the replication slot"))?
            .map(|r| get(&r, 0, "pg_replication_slots"))
            .transpose()?;
        Ok(match active {
            Some(false) => Some(format!(
                "the slot {} on the source is not streaming (no subscriber connected: can the target reach the source?)",
                self.name
            )),
            _ => None,
        })
    }

    /// What the source's slot retains, if the slot exists.
    pub async fn retained_wal(&self) -> Result<Option<RetainedWal>> {
        let row = self
            .src
            .query_opt(
                "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::float8, coalesce(wal_status, ''), \
                 safe_wal_size FROM pg_replication_slots WHERE slot_name = $1",
                &[&self.name],
            )
            .await
            .map_err(self.on_src("reading the WAL the slot retains"))?;
        row.map(|r| {
            let bytes: f64 = get(&r, 0, "pg_replication_slots")?;
            Ok(RetainedWal {
                bytes: bytes.max(0.0) as u64,
                wal_status: get(&r, 1, "pg_replication_slots")?,
                safe_bytes: get(&r, 2, "pg_replication_slots")?,
            })
        })
        .transpose()
    }

    /// The retained-WAL gate: a refusal over `max_retained_wal` (or once the
    /// slot lost WAL), a warning from half of it.
    pub fn judge_retained(&self, w: &RetainedWal) -> (Option<String>, Option<String>) {
        let max = self.c.settings.max_retained_wal;
        let shown = format!("the source's slot {} retains {} of WAL", self.name, format_size(w.bytes));
        if w.wal_status == "lost" {
            return (
                Some(format!(
                    "{shown} and has lost WAL it needed (max_slot_wal_keep_size): replication cannot continue; roll back and run \
                     the move again"
                )),
                None,
            );
        }
        if w.bytes > max {
            return (
                Some(format!(
                    "{shown}, over max_retained_wal ({}): the target is not consuming the changes and the source's disk fills \
                     while it lasts; bring the target back (or roll back, which drops the slot)",
                    format_size(max)
                )),
                None,
            );
        }
        let safe = w.safe_bytes.map_or_else(String::new, |s| {
            format!(
                "; {} left before max_slot_wal_keep_size invalidates the slot",
                format_size(s.max(0) as u64)
            )
        });
        let warning = (w.bytes > max / 2).then(|| {
            format!(
                "{shown}, over half of max_retained_wal ({}){safe}: is the target keeping up?",
                format_size(max)
            )
        });
        (None, warning)
    }

    /// The lag gate: both sides reachable, lag under `max_replication_lag`,
    /// the slot's WAL under `max_retained_wal`. An outage is named as such.
    /// Returns the lag and any warning.
    pub async fn lag_gate(&mut self) -> Result<std::result::Result<(Duration, Option<String>), String>> {
        if let Err(outage) = self.reach_both().await {
            return Ok(Err(outage));
        }
        if let Some(w) = self.retained_wal().await? {
            if let (Some(refusal), _) = self.judge_retained(&w) {
                return Ok(Err(refusal));
            }
        }
        let max = self.c.settings.max_replication_lag;
        let lag = self.replication_lag(max).await?;
        let warning = match self.retained_wal().await? {
            Some(w) => {
                let (refusal, warning) = self.judge_retained(&w);
                if let Some(r) = refusal {
                    return Ok(Err(r));
                }
                warning
            }
            None => None,
        };
        match lag {
            Some(lag) => Ok(Ok((lag, warning))),
            None => {
                if let Err(outage) = self.reach_both().await {
                    return Ok(Err(outage));
                }
                if let Some(why) = self.stalled().await? {
                    return Ok(Err(format!("replication is not delivering: {why}")));
                }
                Ok(Err(format!(
                    "replication lag over {} (the target had not applied the source's WAL after that long)",
                    format_duration(max)
                )))
            }
        }
    }

    /// The figures of a soak's countdown: reachability, lag (waited for a
    /// little only), retained WAL.
    pub async fn pulse(&mut self) -> Result<Pulse> {
        if let Err(outage) = self.reach_both().await {
            return Ok(Pulse::outage(outage));
        }
        let mut p = Pulse::default();
        let mut parts = Vec::new();
        let quick = Duration::from_secs(2);
        match self.replication_lag(quick).await? {
            Some(lag) => {
                parts.push(format!("lag {:.0} ms", lag.as_secs_f64() * 1000.0));
                p.progress.lag_ms = Some(lag.as_secs_f64() * 1000.0);
            }
            None => {
                let why = self.stalled().await?;
                parts.push(format!("lag over {}s", quick.as_secs()));
                if let Some(w) = why {
                    p.warnings.push(w);
                }
            }
        }
        if let Some(w) = self.retained_wal().await? {
            parts.push(format!("retained WAL {}", format_size(w.bytes)));
            p.progress.retained_wal = Some(w.bytes);
            let (refusal, warning) = self.judge_retained(&w);
            p.warnings.extend(refusal.into_iter().chain(warning));
        }
        p.figures = parts.join(", ");
        Ok(p)
    }

    /// Waits (up to the lag limit) for the target to apply what the source has now; a slow target shows as differing rows.
    pub(super) async fn catch_up_quietly(&mut self) -> Result<()> {
        let max = self.c.settings.max_replication_lag;
        self.replication_lag(max).await?;
        Ok(())
    }

    /// Target sequences behind key columns past the source's sequence (with
    /// headroom), the target's largest key and the target sequence itself.
    pub async fn sync_sequences(&self) -> Result<String> {
        let mut report = Vec::new();
        for t in &self.c.tables {
            let target_q = target_of(t);
            for k in &t.key {
                let seq: Option<String> = get(
                    &self
                        .dst
                        .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&target_q, k])
                        .await
                        .map_err(self.on_dst(format!("reading the sequence of {target_q}")))?,
                    0,
                    "pg_get_serial_sequence",
                )?;
                let Some(seq) = seq else { continue };
                let key = quote_ident(k);
                let src_seq: Option<String> = get(
                    &self
                        .src
                        .query_one("SELECT pg_get_serial_sequence($1, $2)", &[&t.qualified(), k])
                        .await
                        .map_err(self.on_src(format!("reading the sequence of {}", t.display())))?,
                    0,
                    "pg_get_serial_sequence",
                )?;
                // A sequence feeds an integer column: max() exists for it.
                let src_last: i64 = get(
                    &self
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
                        .map_err(self.on_src(format!("reading the keys of {}", t.display())))?,
                    0,
                    "the source's keys",
                )?;
                let set: i64 = get(
                    &self
                        .dst
                        .query_one(
                            &format!(
                                "SELECT setval($1::text::regclass, greatest($2::bigint, coalesce((SELECT max({key}) FROM {target_q})::bigint, 0), \
                                 coalesce(pg_sequence_last_value($1::text::regclass), 0), 1))"
                            ),
                            &[&seq, &(src_last + super::SEQUENCE_HEADROOM)],
                        )
                        .await
                        .map_err(self.on_dst(format!("setting the sequence of {target_q}")))?,
                    0,
                    "setval",
                )?;
                report.push(format!("{seq} at {set} (source {src_last})"));
            }
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
                .map(|r| get(&r, 0, "pg_replication_slots"))
                .transpose()?;
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
        let q = quote_ident(&self.name);
        let verb = if enabled { "ENABLE" } else { "DISABLE" };
        self.dst
            .batch_execute(&format!("ALTER SUBSCRIPTION {q} {verb}"))
            .await
            .map_err(self.on_dst(format!("{verb} the subscription")))
    }

    /// Row changes the slot holds that the target has not confirmed (the
    /// subscription must be disabled: an active slot cannot be peeked).
    /// Only pgoutput's insert, update, delete and truncate messages count
    /// (`I`, `U`, `D`, `T`): before PostgreSQL 15 every transaction of the
    /// source, even one touching no published table, leaves its BEGIN and
    /// COMMIT in the slot.
    async fn pending_changes(&self) -> Result<i64> {
        let row = self
            .src
            .query_one(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2) \
                 WHERE get_byte(data, 0) IN (73, 85, 68, 84)",
                &[&self.name, &quote_ident(&self.name)],
            )
            .await
            .map_err(self.on_src("reading the changes left in the slot"))?;
        get(&row, 0, "pg_logical_slot_peek_binary_changes")
    }

    /// The end of the dual-write window: waits until the target has applied
    /// everything the slot holds, then drops subscription, slot and publication.
    pub async fn finish_replication(&mut self) -> Result<String> {
        let limit = self.c.settings.max_replication_lag + Duration::from_secs(60);
        let gate = |message: String| Error::Gate {
            tenant: RUN_KEY.into(),
            step: "flip-writers".into(),
            message,
        };
        if self.subscription().await?.is_some() {
            if let Err(outage) = self.reach_both().await {
                return Err(gate(outage));
            }
            for round in 1..=5 {
                if let Some((_, false)) = self.subscription().await? {
                    self.set_enabled(true).await?;
                }
                let Some(lag) = self.replication_lag(limit).await? else {
                    let why = self
                        .stalled()
                        .await?
                        .unwrap_or_else(|| "is the subscription failing? see the target's server log".into());
                    return Err(gate(format!(
                        "the target did not catch up with the source within {} ({why})",
                        format_duration(limit)
                    )));
                };
                self.set_enabled(false).await?;
                let name = self.name.clone();
                self.wait_slot_inactive(&name).await?;
                // An empty slot at one instant proves little: a writer between two of its commits looks quiet.
                // The source must stay quiet for the whole quiet period (changes pile up in the disabled slot).
                let mut pending = self.pending_changes().await?;
                if pending == 0 {
                    tokio::time::sleep(self.c.settings.quiet_period).await;
                    pending = self.pending_changes().await?;
                }
                if pending == 0 {
                    self.drop_replication().await?;
                    return Ok(format!(
                        "caught up (last lag {:.1}ms), replication ended",
                        lag.as_secs_f64() * 1000.0
                    ));
                }
                if round == 5 {
                    self.set_enabled(true).await?;
                    return Err(gate(format!(
                        "the source still receives writes to the moved tables ({pending} changes after catching up 5 times; \
                         the window closes once they stay quiet for {}): a writer ignores its route",
                        format_duration(self.c.settings.quiet_period)
                    )));
                }
            }
        }
        self.drop_replication().await?;
        Ok("replication ended".into())
    }

    /// Waits until the subscription `oid` has no worker left (its apply and
    /// table-sync workers exit once it is disabled).
    async fn wait_workers_gone(&self, oid: u32) -> Result<()> {
        let start = Instant::now();
        loop {
            let n: i64 = get(
                &self
                    .dst
                    .query_one(
                        "SELECT count(*) FROM pg_stat_subscription WHERE subid = $1 AND pid IS NOT NULL",
                        &[&oid],
                    )
                    .await
                    .map_err(self.on_dst("reading pg_stat_subscription"))?,
                0,
                "pg_stat_subscription",
            )?;
            if n == 0 {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(Error::Refused(format!(
                    "cutover {}: the workers of subscription {} still run a minute after it was disabled",
                    self.c.name, self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Drops this run's subscription, slot(s) and publication, whatever
    /// exists (never another run's: the names carry the run's identity).
    pub async fn drop_replication(&self) -> Result<()> {
        let q = quote_ident(&self.name);
        let mut slots = vec![self.name.clone()];
        if let Some((oid, enabled)) = self.subscription().await? {
            if enabled {
                self.set_enabled(false).await?;
            }
            // DROP SUBSCRIPTION drops the table-sync slots in its own transaction: a table-sync worker still
            // creating its slot waits for every running transaction to end, that one included (a deadlock when
            // both databases share a server). So the workers go first.
            self.wait_workers_gone(oid).await?;
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
            for r in &rows {
                slots.push(get(r, 0, "pg_replication_slots")?);
            }
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
}
