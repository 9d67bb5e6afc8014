use super::fixes;
use super::lock::{self, Tx, TxControl};
use super::tokens;
use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Fix;
use crate::sql::ParsedFile;

crate::declare_rule! {
    /// ## What it does
    /// Flags `BEGIN`, `COMMIT`, `END` and `ROLLBACK` in a migration file that
    /// strata runs inside a transaction (every file without the
    /// `-- strata: no-transaction` header), and a `BEGIN` inside a
    /// transaction already opened in a no-transaction file.
    ///
    /// Outside a workspace strata does not run the files, so a file is
    /// checked as its tool runs it: in a folder of sqlx, goose, dbmate,
    /// diesel, Flyway or pop migrations (tools that wrap every file in a
    /// transaction) as here; in a golang-migrate or Prisma folder (the file
    /// goes to PostgreSQL as one query), a file given by name or a folder
    /// of any `*.sql`, a file with its own `BEGIN` or `COMMIT` manages its
    /// transactions, and only a `BEGIN` inside one of them is flagged (and
    /// a file of one statement runs as a transaction of its own).
    ///
    /// ## Why is this bad?
    /// strata wraps each migration and its history row in one transaction.
    /// An inner `BEGIN` is ignored with a warning, so the author's idea of
    /// the transaction is wrong; an inner `COMMIT` ends strata's transaction
    /// early, so a failure afterwards leaves the migration half applied and
    /// unrecorded; a `ROLLBACK` silently undoes what came before.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// BEGIN;
    /// ALTER TABLE orders ADD COLUMN note text;
    /// COMMIT;
    /// -- good: strata provides the transaction
    /// ALTER TABLE orders ADD COLUMN note text;
    /// ```
    ///
    /// ## How to fix
    /// Remove the transaction statements; strata already runs the file in a
    /// transaction (`strata check --fix` removes a `BEGIN` ... `COMMIT` pair
    /// that wraps the whole file). To control transactions yourself, start
    /// the file with `-- strata: no-transaction`.
    pub struct TransactionNesting {
        id: "transaction-nesting",
        group: LockSafety,
        severity: Error,
        summary: "BEGIN/COMMIT/ROLLBACK inside a migration strata already runs in a transaction",
        needs_workspace: false,
    }
}

/// The fix for a file wrapped in `BEGIN` ... `COMMIT` (or only opening with
/// `BEGIN`, or only closing with `COMMIT`): remove the wrapper.
fn unwrap_fix(parsed: &ParsedFile, runner: &str) -> Option<Fix> {
    let statements = &parsed.statements;
    let controls: Vec<usize> = (0..statements.len()).filter(|&i| statements[i].tx_control().is_some()).collect();
    let last = statements.len().checked_sub(1)?;
    let is_commit = |i: usize| {
        statements[i].tx_control() == Some(TxControl::End)
            && !matches!(statements[i].ast(), Some(sqlparser::ast::Statement::Rollback { .. }))
    };
    let wrapper = controls
        .iter()
        .all(|&i| (i == 0 && statements[i].tx_control() == Some(TxControl::Begin)) || (i == last && i != 0 && is_commit(i)));
    (wrapper && !controls.is_empty()).then(|| {
        Fix::new(
            format!("remove the transaction statements ({runner} runs the file in a transaction)"),
            controls
                .iter()
                .map(|&i| fixes::remove_statement(&parsed.source, &statements[i]))
                .collect(),
        )
    })
}

impl Rule for TransactionNesting {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(control) = cx.stmt.tx_control() else { return };
        let keyword = tokens::statement_text(&cx.file.parsed.source, cx.stmt)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        // Who wraps the file: strata in a workspace, else the file's tool.
        let runner = match (cx.env.config, cx.file.parsed.runner) {
            (None, Some(tool)) => tool,
            _ => "strata",
        };
        let (message, fix) = match (lock::transaction_at(cx.env, cx.file, cx.index), control) {
            (Tx::Runner, TxControl::Begin) => (
                format!("{keyword} inside a migration {runner} already runs in a transaction: PostgreSQL ignores it with a warning"),
                unwrap_fix(cx.file.parsed, runner),
            ),
            (Tx::Runner, TxControl::End) if keyword == "ROLLBACK" || keyword == "ABORT" => (
                format!("{keyword} inside a migration {runner} runs in a transaction undoes everything before it and ends {runner}'s transaction"),
                None,
            ),
            (Tx::Runner, TxControl::End) => (
                format!("{keyword} inside a migration {runner} runs in a transaction ends that transaction early: what follows is no longer atomic with what came before"),
                unwrap_fix(cx.file.parsed, runner),
            ),
            (Tx::Explicit(begin), TxControl::Begin) => (
                format!(
                    "BEGIN inside the transaction opened on line {}: PostgreSQL ignores it with a warning",
                    cx.file.parsed.statements[begin].region.start.line
                ),
                None,
            ),
            _ => return,
        };
        out.push(
            Finding::new(cx.stmt.region, message)
                .help(format!(
                    "remove it (the file already runs in a transaction), or, to manage transactions yourself, put the work in {}",
                    super::fixes::no_transaction_advice(cx.file)
                ))
                .with_fix(fixes::editable(cx.file).and_then(|()| {
                    fix.ok_or_else(|| "only a BEGIN that opens the file and a COMMIT that ends it are removed automatically".to_string())
                })),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_plain_folder, check_ws, finding, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY);\n";

    #[test]
    fn fires_on_begin_and_commit_in_a_transactional_file() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_note.sql", "BEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\n"),
        ]);
        assert_eq!(ids(&d, "transaction-nesting"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "transaction-nesting"));
        let found = finding(&d, "transaction-nesting");
        let text = crate::fix::apply_edits(&found.file.text, &found.fix.as_ref().unwrap().edits);
        assert_eq!(text, "ALTER TABLE orders ADD COLUMN note text;\n");
    }

    #[test]
    fn outside_a_workspace_a_file_runs_as_its_tool_runs_it() {
        let wrapped = "BEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\n";
        // golang-migrate sends a file as one query: its BEGIN and COMMIT
        // are its transaction.
        let d = check_plain_folder(&[
            ("1_orders.up.sql", ORDERS),
            ("1_orders.down.sql", "DROP TABLE orders;\n"),
            ("2_note.up.sql", wrapped),
            ("2_note.down.sql", "ALTER TABLE orders DROP COLUMN note;\n"),
        ]);
        assert_eq!(ids(&d, "transaction-nesting"), 0, "{d:#?}");
        // A file given by name has no known runner: its own transactions
        // are followed, and a BEGIN inside one is still flagged.
        assert_eq!(ids(&check_plain(wrapped), "transaction-nesting"), 0);
        assert_eq!(ids(&check_plain("BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;\n"), "transaction-nesting"), 1);
        // goose runs every file in a transaction of its own: a BEGIN in it
        // is ignored and a COMMIT ends goose's transaction early.
        let d = check_plain_folder(&[
            ("20240101000000_orders.sql", &format!("-- +goose Up\n{ORDERS}")),
            ("20240102000000_note.sql", &format!("-- +goose Up\n{wrapped}")),
        ]);
        assert_eq!(ids(&d, "transaction-nesting"), 2, "{d:#?}");
        // The message names the tool that wraps the file, not strata.
        let f = finding(&d, "transaction-nesting");
        assert!(
            f.message.contains("goose already runs") || f.message.contains("goose runs"),
            "{}",
            f.message
        );
        assert!(!f.message.contains("strata"), "{}", f.message);
    }

    #[test]
    fn a_commit_in_the_middle_gets_no_fix() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_note.sql",
                "ALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\nALTER TABLE orders ADD COLUMN memo text;\n",
            ),
        ]);
        assert_eq!(ids(&d, "transaction-nesting"), 1, "{d:#?}");
        assert!(finding(&d, "transaction-nesting").fix.is_none());
    }

    #[test]
    fn quiet_in_a_no_transaction_file_with_its_own_transactions() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_note.sql",
                "-- strata: no-transaction\nBEGIN;\nALTER TABLE orders ADD COLUMN note text;\nCOMMIT;\nBEGIN;\nALTER TABLE orders ADD COLUMN memo text;\nCOMMIT;\n",
            ),
        ]);
        assert_eq!(ids(&d, "transaction-nesting"), 0, "{d:#?}");
    }
}
