use super::lock::{self, TxControl};
use super::{FileCtx, Finding, Rule, RuleMeta};

crate::declare_rule! {
    /// ## What it does
    /// Flags a `BEGIN` that is never followed by `COMMIT` (or `ROLLBACK`) by
    /// the end of a migration file that strata runs outside a transaction
    /// (`-- strata: no-transaction`).
    ///
    /// ## Why is this bad?
    /// The migration ends with its transaction still open: depending on the
    /// runner, its work is rolled back when the session closes (while the
    /// migration is recorded as applied), or the session keeps holding every
    /// lock the transaction took.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// -- strata: no-transaction
    /// BEGIN;
    /// ALTER TABLE orders ADD COLUMN note text;
    /// -- good
    /// -- strata: no-transaction
    /// BEGIN;
    /// ALTER TABLE orders ADD COLUMN note text;
    /// COMMIT;
    /// ```
    ///
    /// ## How to fix
    /// End every transaction the file opens with `COMMIT` before the end of
    /// the file, or drop the header and the `BEGIN` and let strata run the
    /// file in a transaction.
    pub struct UncommittedTransaction {
        id: "uncommitted-transaction",
        group: LockSafety,
        severity: Error,
        summary: "a BEGIN with no COMMIT by the end of a no-transaction migration file",
        needs_workspace: false,
    }
}

impl Rule for UncommittedTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        if lock::runner_transaction(cx.env, cx.file) {
            return;
        }
        let mut open = None;
        for (i, s) in cx.file.parsed.statements.iter().enumerate() {
            match s.tx_control() {
                Some(TxControl::Begin) => open = open.or(Some(i)),
                Some(TxControl::End) => open = None,
                None => {}
            }
        }
        let Some(begin) = open else { return };
        // A statement PostgreSQL rejects after the BEGIN may hold the COMMIT
        // (`UPDATE t SET a = 1` and `COMMIT;` with no `;` between them): its
        // syntax-error is the finding.
        if cx.file.parsed.statements[begin..].iter().any(|s| s.rejected()) {
            return;
        }
        let stmt = &cx.file.parsed.statements[begin];
        out.push(
            Finding::new(
                stmt.region,
                "this transaction is never committed: the file ends with it open, so its work is rolled back or its locks stay held",
            )
            .help("end it with `COMMIT;` before the end of the file")
            .at_statement(begin),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";

    #[test]
    fn fires_on_an_open_transaction() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_note.sql",
                "-- strata: no-transaction\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\n",
            ),
        ]);
        assert_eq!(ids(&d, "uncommitted-transaction"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "uncommitted-transaction"));
    }

    #[test]
    fn a_commit_inside_a_statement_postgres_rejects_is_its_syntax_error() {
        // No `;` before COMMIT: PostgreSQL reads `... SET a = 1 COMMIT` as one
        // statement and rejects it.
        let d = check_plain("BEGIN;\nUPDATE t SET a = 1\nCOMMIT;\n");
        assert_eq!(ids(&d, "syntax-error"), 1, "{d:#?}");
        assert_eq!(ids(&d, "uncommitted-transaction"), 0, "{d:#?}");
        assert_eq!(ids(&check_plain("BEGIN;\nUPDATE t SET a = 1;\n"), "uncommitted-transaction"), 1);
    }

    #[test]
    fn quiet_when_committed_or_run_by_strata_in_a_transaction() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_note.sql",
                "-- strata: no-transaction\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\nEND;\n",
            ),
            ("core/0003_memo.sql", "BEGIN;\nALTER TABLE orders ADD COLUMN memo text;\n"),
        ]);
        assert_eq!(ids(&d, "uncommitted-transaction"), 0, "{d:#?}");
    }
}
