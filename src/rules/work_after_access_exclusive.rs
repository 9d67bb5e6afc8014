use sqlparser::ast::Statement as Ast;

use super::lock::{self, LockMode, TakenLock};
use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::sql::Statement;

crate::declare_rule! {
    /// ## What it does
    /// Flags the first statement that runs, in the same transaction, after a
    /// statement took an `ACCESS EXCLUSIVE` lock on a table that existed
    /// before the migration file. strata runs each migration file in one
    /// transaction, so every statement after the lock runs while it is held.
    ///
    /// ## Why is this bad?
    /// `ACCESS EXCLUSIVE` blocks every read and write of the table until the
    /// transaction commits, not until the statement that took it ends. A
    /// quick `ALTER TABLE` followed by a backfill `UPDATE`, an index build or
    /// a lock on another busy table turns a millisecond lock into minutes of
    /// downtime (and invites deadlocks).
    ///
    /// ## Example
    /// ```sql
    /// -- bad: orders stays locked during the backfill
    /// ALTER TABLE orders ADD COLUMN currency text;
    /// UPDATE orders SET currency = 'EUR';
    /// -- good: the ALTER in its own migration file, the backfill (in batches) in the next
    /// ALTER TABLE orders ADD COLUMN currency text;
    /// ```
    ///
    /// ## How to fix
    /// Put the statement that takes the `ACCESS EXCLUSIVE` lock last in its
    /// transaction, or in a migration file of its own. Combine several
    /// changes to one table into one `ALTER TABLE` with comma-separated
    /// actions.
    ///
    /// ## PostgreSQL versions
    /// - 12: `ATTACH PARTITION` takes `SHARE UPDATE EXCLUSIVE` on the partitioned table and `ACCESS EXCLUSIVE` on the table it attaches; before 12, `ACCESS EXCLUSIVE` on the partitioned table. The same lock model serves `require-lock-timeout` and `require-statement-timeout`.
    pub struct WorkAfterAccessExclusive {
        id: "work-after-access-exclusive",
        group: LockSafety,
        severity: Warning,
        summary: "more statements in the same transaction after an ACCESS EXCLUSIVE lock on an existing table",
        needs_workspace: false,
    }
}

/// Statements that do no work of their own while a lock is held.
fn is_bookkeeping(stmt: &Statement) -> bool {
    stmt.tx_control().is_some()
        || matches!(
            stmt.ast(),
            Some(Ast::Set(_) | Ast::Reset(_) | Ast::Comment { .. } | Ast::Savepoint { .. } | Ast::ReleaseSavepoint { .. })
        )
}

fn access_exclusive<'a>(cx: &'a StatementCtx, index: usize) -> Option<std::borrow::Cow<'a, TakenLock>> {
    cx.lock_of(index).filter(|l| l.mode == LockMode::AccessExclusive)
}

impl Rule for WorkAfterAccessExclusive {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let statements = &cx.file.parsed.statements;
        if is_bookkeeping(cx.stmt) {
            return;
        }
        // Only the first statement after the first ACCESS EXCLUSIVE lock of
        // the transaction: one finding says it all.
        let Some(prev) = (0..cx.index).rev().find(|&j| !is_bookkeeping(&statements[j])) else {
            return;
        };
        let Some(taken) = access_exclusive(cx, prev) else { return };
        let Some(start) = lock::transaction_start(cx.env, cx.file, cx.index) else {
            return;
        };
        if prev < start || (start..prev).any(|j| access_exclusive(cx, j).is_some()) {
            return;
        }
        let line = statements[prev].region.start.line;
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "this statement runs while the ACCESS EXCLUSIVE lock on `{}` taken on line {line} is held: every query on that table waits until the transaction commits",
                    taken.table
                ),
            )
            .help("make the locking statement the last of its transaction (or give it a migration file of its own); merge ALTERs of one table into one statement"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, ids, known, render_rule};

    const ORDERS: &str =
        "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2));\nCREATE TABLE refunds (id bigint PRIMARY KEY);\n";

    #[test]
    fn fires_on_work_after_the_lock() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_currency.sql",
                "ALTER TABLE orders ADD COLUMN currency text;\nCOMMENT ON COLUMN orders.currency IS 'ISO 4217';\nUPDATE orders SET currency = 'EUR';\nALTER TABLE refunds ADD COLUMN currency text;\n",
            ),
        ]);
        assert_eq!(ids(&d, "work-after-access-exclusive"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "work-after-access-exclusive"));
    }

    /// The lock a DROP INDEX takes is on the index's table, known after
    /// the index is gone: named after it, and none at all on a table the
    /// file creates.
    #[test]
    fn a_dropped_index_lock_is_its_tables() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_idx.sql", "CREATE INDEX CONCURRENTLY orders_total ON orders (total);\n"),
            (
                "core/0003_drop.sql",
                "DROP INDEX orders_total;\nUPDATE orders SET total = 0 WHERE id = 1;\n",
            ),
            (
                "core/0004_new.sql",
                "CREATE TABLE notes (id bigint PRIMARY KEY, body text);\nCREATE INDEX notes_body ON notes (body);\nDROP INDEX notes_body;\nUPDATE notes SET body = '';\n",
            ),
        ]);
        let found: Vec<&str> = d
            .iter()
            .filter(|x| x.rule == known("work-after-access-exclusive"))
            .map(|x| x.message.as_str())
            .collect();
        assert_eq!(found.len(), 1, "{d:#?}");
        assert!(found[0].contains("`public.orders`"), "{}", found[0]);
    }

    /// A DO block alone in a plain file is one statement, and its
    /// statements share its transaction.
    #[test]
    fn a_lone_do_block_holds_its_locks_to_its_end() {
        let d = crate::rules::testing::check_plain_folder(&[
            ("0001_orders.sql", ORDERS),
            (
                "0002_do.sql",
                "DO $$\nBEGIN\n  ALTER TABLE orders ADD COLUMN note text;\n  UPDATE orders SET note = '';\nEND $$;\n",
            ),
        ]);
        assert_eq!(ids(&d, "work-after-access-exclusive"), 1, "{d:#?}");
    }

    /// ATTACH PARTITION locks the parent ACCESS EXCLUSIVE before
    /// PostgreSQL 12, and since then only the table it attaches.
    #[test]
    fn attach_partition_locks_the_parent_before_12_and_the_partition_since() {
        let parent = (
            "core/0001_events.sql",
            "CREATE TABLE events (id bigint, at timestamptz NOT NULL);\n",
        );
        let attach = "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\nUPDATE events SET id = id WHERE id < 0;\n";
        let new_partition = format!("CREATE TABLE events_2024 (id bigint, at timestamptz NOT NULL);\n{attach}");
        let files = [parent, ("core/0002_attach.sql", new_partition.as_str())];
        let tables = |pg, files: &[(&str, &str)]| -> Vec<String> {
            check_ws_pg(pg, files)
                .iter()
                .filter(|x| x.rule == known("work-after-access-exclusive"))
                .map(|x| x.message.split('`').nth(1).unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(tables(11, &files), vec!["public.events"]);
        assert!(tables(12, &files).is_empty());
        let existing = [
            parent,
            (
                "core/0002_events_2024.sql",
                "CREATE TABLE events_2024 (id bigint, at timestamptz NOT NULL);\n",
            ),
            ("core/0003_attach.sql", attach),
        ];
        assert_eq!(tables(12, &existing), vec!["public.events_2024"]);
        assert_eq!(tables(11, &existing), vec!["public.events"]);
    }

    #[test]
    fn quiet_when_the_lock_comes_last_or_outside_a_transaction() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_currency.sql",
                "CREATE TABLE currencies (code text PRIMARY KEY);\nALTER TABLE orders ADD COLUMN currency text, ADD COLUMN note text;\n",
            ),
            (
                "core/0003_no_tx.sql",
                "-- strata: no-transaction\nALTER TABLE orders ADD COLUMN a text;\nALTER TABLE orders ADD COLUMN b text;\n",
            ),
        ]);
        assert_eq!(ids(&d, "work-after-access-exclusive"), 0, "{d:#?}");
    }
}
