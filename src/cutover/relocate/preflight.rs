//! The preflight of a move: everything that would make a later step fail
//! or lose data, checked before anything is created, each problem named.

use super::{columns, get, keeps_name, target_of, text, MoveDbs};
use crate::cutover::{keyset, Error, Result};
use crate::pg::quote_ident;

impl MoveDbs<'_> {
    /// Connectivity, wal_level, a free slot, the REPLICATION role, keys, no
    /// dropped column on a source without column lists (before 15),
    /// the run's replication names free on both servers, the target tables
    /// (present, empty, the same unique key, the new columns).
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
        let shown = text(src, source, "SELECT current_setting('server_version')").await?;
        let shown = shown.split_whitespace().next().unwrap_or_default().to_string();
        if !self.column_lists() {
            problems.extend(self.dropped_columns_on_old_source(&shown).await?);
        }
        problems.extend(super::super::privileges::move_privileges(src, source, dst, target, &self.c.tables).await?);
        problems.extend(self.names_taken().await?);
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
            let ident: String = get(&r, 0, "pg_class")?;
            let pk: bool = get(&r, 1, "pg_class")?;
            if ident == "n" || (ident == "d" && !pk) {
                problems.push(format!(
                    "source table {} has no primary key or replica identity: updates and deletes could not be replicated",
                    t.display()
                ));
            }
            let source_display = format!("source table {}", t.display());
            problems.extend(keyset::problems(src, source, &t.qualified(), &source_display, &t.key).await?);
            if let Some(k) = t
                .key
                .iter()
                .find(|k| t.drop.contains(k) || t.changes.iter().any(|ch| ch.replaces.as_ref() == Some(k)))
            {
                problems.push(format!(
                    "{}: the key column {k} must keep its name on the target (it is dropped or renamed)",
                    t.display()
                ));
            }
            let target_q = target_of(t);
            let target_display = format!("target table {}.{}", t.target_schema, t.target_name);
            if !self.exists_on_target(&target_q).await? {
                problems.push(format!(
                    "{target_display} does not exist (apply the target's schema first: strata migrate)"
                ));
                continue;
            }
            let target_cols = columns(dst, target, &target_q).await?;
            let has = |n: &str| target_cols.iter().any(|col| col.name == n);
            // The same key on both sides: the staging upserts and the verification match rows by it.
            problems.extend(keyset::problems(dst, target, &target_q, &target_display, &t.key).await?);
            for ch in &t.changes {
                if !has(&ch.new) {
                    problems.push(format!("{target_display} has no column {} (the mapping fills it)", ch.new));
                }
                if let Some(old) = &ch.replaces {
                    if keeps_name(t) && has(old) {
                        problems.push(format!(
                            "{target_display} has a column {old}: the subscription would write the source's {old} into it \
                             although the mapping renames it"
                        ));
                    }
                }
            }
            let rows: bool = get(
                &dst.query_one(&format!("SELECT EXISTS (SELECT 1 FROM {target_q})"), &[])
                    .await
                    .map_err(self.on_dst(format!("reading {target_q}")))?,
                0,
                &target_q,
            )?;
            if rows {
                problems.push(format!(
                    "{target_display} is not empty: a move fills an empty table (and rollback empties it)"
                ));
            }
            if !keeps_name(t) && self.exists_on_target(&t.qualified()).await? && !self.is_marked_table(&t.qualified()).await? {
                problems.push(format!(
                    "the target already has a table {}: the subscription needs that name for its staging table",
                    t.display()
                ));
            }
        }
        if problems.is_empty() {
            let target_shown = text(dst, target, "SELECT current_setting('server_version')").await?;
            let publication = if self.column_lists() {
                "column lists"
            } else {
                "whole tables (no column lists before PostgreSQL 15; no dropped column is left on the source)"
            };
            Ok(format!(
                "source {source} (PostgreSQL {shown}) and target {target} (PostgreSQL {}) ready; {} tables; the publication \
                 carries {publication}; replication objects will be named {}",
                target_shown.split_whitespace().next().unwrap_or_default(),
                self.c.tables.len(),
                self.name
            ))
        } else {
            Err(Error::Refused(format!("preflight failed: {}", problems.join("; "))))
        }
    }

    /// On a source before PostgreSQL 15 the publication carries whole tables:
    /// a table whose `drop` columns still exist there would send their data
    /// to the target, so each such column is a problem.
    async fn dropped_columns_on_old_source(&self, shown: &str) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        for t in self.c.tables.iter().filter(|t| !t.drop.is_empty()) {
            let present: Vec<String> = columns(&self.src, &self.source, &t.qualified())
                .await?
                .into_iter()
                .map(|col| col.name)
                .filter(|n| t.drop.contains(n))
                .collect();
            if present.is_empty() {
                continue;
            }
            let list = present.join(", ");
            let drops: Vec<String> = present.iter().map(|n| format!("DROP COLUMN {}", quote_ident(n))).collect();
            problems.push(format!(
                "source table {} drops {list}, but the source runs PostgreSQL {shown}, whose publications carry whole tables \
                 (column lists came with PostgreSQL 15): the data of {list} would leave the source; upgrade the source to 15 \
                 or later, or drop the column on the source first (ALTER TABLE {} {})",
                t.display(),
                t.qualified(),
                drops.join(", ")
            ));
        }
        Ok(problems)
    }

    /// This run's publication, slot and subscription names, when another run
    /// (another control plane, a leftover) already uses them on the source's
    /// or the target's server: slots and subscriptions are per server, so
    /// taking them over would break that run, and contract would drop them.
    async fn names_taken(&self) -> Result<Vec<String>> {
        let mut taken = Vec::new();
        let name = &self.name;
        let slot = self
            .src
            .query_opt(
                "SELECT coalesce(database::text, '(physical)'), active, coalesce(active_pid::text, '-') \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[name],
            )
            .await
            .map_err(self.on_src("reading the replication slots"))?;
        if let Some(r) = slot {
            let (db, active, pid): (String, bool, String) = (
                get(&r, 0, "pg_replication_slots")?,
                get(&r, 1, "pg_replication_slots")?,
                get(&r, 2, "pg_replication_slots")?,
            );
            taken.push(format!(
                "the source's server already has a replication slot {name} (database {db}, {}): another run uses this \
                 name; finish or roll back that run (or drop the slot if it is a leftover: SELECT pg_drop_replication_slot('{name}'))",
                if active {
                    format!("in use by pid {pid}")
                } else {
                    "not in use".into()
                }
            ));
        }
        let publication: bool = get(
            &self
                .src
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", &[name])
                .await
                .map_err(self.on_src("reading the publications"))?,
            0,
            "pg_publication",
        )?;
        if publication {
            taken.push(format!("the source already has a publication {name} of another run"));
        }
        let subscriptions = self
            .dst
            .query(
                "SELECT d.datname::text FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE s.subname = $1",
                &[name],
            )
            .await
            .map_err(self.on_dst("reading the subscriptions"))?;
        for r in &subscriptions {
            let db: String = get(r, 0, "pg_subscription")?;
            taken.push(format!(
                "the target's server already has a subscription {name} (database {db}) of another run"
            ));
        }
        Ok(taken)
    }
}
