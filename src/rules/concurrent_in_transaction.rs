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
    /// `DETACH PARTITION ... CONCURRENTLY`, `VACUUM`, `CREATE`/`DROP
    /// DATABASE`, `CREATE`/`DROP TABLESPACE` and `ALTER SYSTEM`. strata runs every
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
        summary: "CONCURRENTLY, VACUUM or another statement refused in a transaction block, in a migration that runs in one: fails at apply time",
        needs_workspace: false,
    }
}

/// The statement's name when it cannot run inside a transaction block.
fn non_transactional(cx: &StatementCtx) -> Option<&'static str> {
    // Databases, tablespaces and the server's configuration file are not
    // transactional at all, whichever parser read the statement.
    let words: Vec<String> = super::tokens::statement_text(&cx.file.parsed.source, cx.stmt)
        .split_whitespace()
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    let cluster_wide = match (words.first().map(String::as_str), words.get(1).map(String::as_str)) {
        (Some("CREATE"), Some("DATABASE")) => Some("CREATE DATABASE"),
        (Some("DROP"), Some("DATABASE")) => Some("DROP DATABASE"),
        (Some("CREATE"), Some("TABLESPACE")) => Some("CREATE TABLESPACE"),
        (Some("DROP"), Some("TABLESPACE")) => Some("DROP TABLESPACE"),
        (Some("ALTER"), Some("SYSTEM")) => Some("ALTER SYSTEM"),
        _ => None,
    };
    if cluster_wide.is_some() && cx.stmt.runs_with_migration() {
        return cluster_wide;
    }
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

    /// Outside a workspace, a file of one statement sent by a tool that
    /// does not wrap files (golang-migrate's documented place for
    /// CONCURRENTLY, a file given by name) is a transaction of its own.
    #[test]
    fn outside_a_workspace_a_lone_statement_is_its_own_transaction() {
        use crate::rules::testing::{check_plain, check_plain_folder};
        let lone = "CREATE INDEX CONCURRENTLY t_a ON t (a);\n";
        assert_eq!(ids(&check_plain(lone), "concurrent-in-transaction"), 0);
        assert_eq!(ids(&check_plain(&format!("SELECT 1;\n{lone}")), "concurrent-in-transaction"), 1);
        let d = check_plain_folder(&[
            ("1_t.up.sql", "CREATE TABLE t (a int);\n"),
            ("1_t.down.sql", "DROP TABLE t;\n"),
            ("2_t_a.up.sql", lone),
            ("2_t_a.down.sql", "DROP INDEX t_a;\n"),
        ]);
        assert_eq!(ids(&d, "concurrent-in-transaction"), 0, "{d:#?}");
        // A tool's own no-transaction mark, when the tool is unknown.
        let marked = format!("-- postgres-migrations disable-transaction\nSELECT 1;\n{lone}");
        assert_eq!(ids(&check_plain(&marked), "concurrent-in-transaction"), 0);
        assert_eq!(
            ids(
                &check_plain(&format!("-- +goose NO TRANSACTION\nSELECT 1;\n{lone}")),
                "concurrent-in-transaction"
            ),
            0
        );
        // goose wraps even a lone statement, unless told not to.
        let d = check_plain_folder(&[
            ("20240101000000_t.sql", "-- +goose Up\nCREATE TABLE t (a int);\n"),
            ("20240102000000_t_a.sql", &format!("-- +goose Up\n{lone}")),
        ]);
        assert_eq!(ids(&d, "concurrent-in-transaction"), 1, "{d:#?}");
    }

    #[test]
    fn fires_on_what_is_not_transactional_at_all() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_space.sql",
                "CREATE TABLESPACE fast LOCATION '/ssd';\nALTER SYSTEM SET work_mem = '64MB';\n",
            ),
            (
                "core/0003_db.sql",
                "-- strata: no-transaction\nCREATE TABLESPACE slow LOCATION '/hdd';\n",
            ),
        ]);
        let found: Vec<&str> = d
            .iter()
            .filter(|x| x.rule == "concurrent-in-transaction")
            .map(|x| x.message.as_str())
            .collect();
        assert_eq!(found.len(), 2, "{d:#?}");
        assert!(
            found[0].starts_with("CREATE TABLESPACE cannot run inside a transaction block"),
            "{}",
            found[0]
        );
        assert!(found[1].starts_with("ALTER SYSTEM"), "{}", found[1]);
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
