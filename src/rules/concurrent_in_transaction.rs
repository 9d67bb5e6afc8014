use sqlparser::ast::Statement;

use super::fixes;
use super::lock::{self, Tx};
use super::shape;
use super::shape::Shape;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags statements that PostgreSQL refuses to run inside a transaction
    /// block when the migration runs in one: `CREATE INDEX CONCURRENTLY`,
    /// `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
    /// `DETACH PARTITION ... CONCURRENTLY` and `VACUUM`. strata runs every
    /// migration file in a transaction unless it starts with
    /// `-- strata: no-transaction`; an explicit `BEGIN` in a no-transaction
    /// file opens one too.
    ///
    /// ## Why is this bad?
    /// The migration fails at apply time with `cannot run inside a
    /// transaction block`, on the first tenant database it reaches, after
    /// review and CI passed.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: 0007_orders_idx.sql (transactional)
    /// CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);
    /// -- good
    /// -- strata: no-transaction
    /// CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);
    /// ```
    ///
    /// ## How to fix
    /// Move the statement into a migration file of its own that starts with
    /// `-- strata: no-transaction` (and no `BEGIN`). `strata check --fix` adds
    /// the header when the file holds only such statements.
    pub struct ConcurrentInTransaction {
        id: "concurrent-in-transaction",
        group: LockSafety,
        severity: Error,
        summary: "CONCURRENTLY (or VACUUM) in a migration that runs inside a transaction: fails at apply time",
        needs_workspace: false,
    }
}

/// The statement's name when it cannot run inside a transaction block.
fn non_transactional(cx: &StatementCtx) -> Option<&'static str> {
    match cx.stmt.ast() {
        Some(Statement::CreateIndex(ci)) if ci.concurrently => Some("CREATE INDEX CONCURRENTLY"),
        Some(Statement::Vacuum(_)) => Some("VACUUM"),
        Some(_) => None,
        None => match shape::keyword_shape(&cx.file.parsed.source, cx.stmt) {
            Some(Shape::DropIndexConcurrently) => Some("DROP INDEX CONCURRENTLY"),
            Some(Shape::Reindex { concurrently: true, .. }) => Some("REINDEX CONCURRENTLY"),
            Some(Shape::DetachPartition { concurrently: true, .. }) => Some("DETACH PARTITION CONCURRENTLY"),
            _ => cx.stmt.unparsed().and_then(|u| (u.words.first()? == "VACUUM").then_some("VACUUM")),
        },
    }
}

impl Rule for ConcurrentInTransaction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(what) = non_transactional(cx) else { return };
        let (message, fix) = match lock::transaction_at(cx.env, cx.file, cx.index) {
            Tx::None => return,
            Tx::Runner => {
                let fix = fixes::editable(cx.file).and_then(|()| {
                    if !fixes::file_runs_outside_transaction(cx.file) {
                        return Err(fixes::NEEDS_TRANSACTION.to_string());
                    }
                    fixes::no_transaction_edits(cx.file)
                        .map(|edits| crate::diag::Fix::new("run this file outside a transaction", edits))
                        .ok_or_else(|| {
                            format!(
                                "the file's tool keeps its no-transaction marker outside the file: put it in {}",
                                fixes::no_transaction_advice(cx.file)
                            )
                        })
                });
                (
                    format!(
                        "{what} cannot run inside a transaction block, and {}",
                        fixes::layout_of(cx.file).runs_file_in_transaction()
                    ),
                    fix,
                )
            }
            Tx::Explicit(begin) => {
                let line = cx.file.parsed.statements[begin].region.start.line;
                (
                    format!("{what} cannot run inside the transaction block opened by BEGIN on line {line}"),
                    Err(format!(
                        "the statement is inside the BEGIN of line {line}: take it out of the block"
                    )),
                )
            }
        };
        out.push(
            Finding::new(cx.stmt.region, message)
                .help(format!("put it in {} (and no BEGIN)", fixes::no_transaction_advice(cx.file)))
                .with_fix(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, fixed_text, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n";

    #[test]
    fn fires_in_a_transactional_file() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_orders_idx.sql",
                "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "concurrent-in-transaction"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "concurrent-in-transaction"));
        assert_eq!(
            fixed_text(&d, "concurrent-in-transaction").unwrap(),
            "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n"
        );
    }

    #[test]
    fn fires_inside_an_explicit_begin_without_fix() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_idx.sql",
                "-- strata: no-transaction\nBEGIN;\nDROP INDEX CONCURRENTLY orders_customer_idx;\nCOMMIT;\n",
            ),
        ]);
        assert_eq!(ids(&d, "concurrent-in-transaction"), 1, "{d:#?}");
        assert_eq!(fixed_text(&d, "concurrent-in-transaction"), None);
    }

    #[test]
    fn quiet_in_a_no_transaction_file() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_idx.sql",
                "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\nREINDEX INDEX CONCURRENTLY orders_customer_idx;\n",
            ),
        ]);
        assert_eq!(ids(&d, "concurrent-in-transaction"), 0, "{d:#?}");
    }
}
