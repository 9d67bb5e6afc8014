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

fn access_exclusive(cx: &StatementCtx, index: usize) -> Option<TakenLock> {
    lock::strong_lock(cx.catalog, cx.file, index).filter(|l| l.mode == LockMode::AccessExclusive)
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
    use crate::rules::testing::{check_ws, ids, render_rule};

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
