use sqlparser::ast::{ObjectType, Statement};

use super::fixes;
use super::fixes::At;
use super::lock::{self, TableAge};
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `DROP INDEX` without `CONCURRENTLY` when the index belongs to a
    /// table that existed before the migration file.
    ///
    /// ## Why is this bad?
    /// A plain `DROP INDEX` takes an `ACCESS EXCLUSIVE` lock on the index's
    /// table. The drop itself is quick, but the lock request waits behind any
    /// running query on the table, and every read and write queues behind
    /// the request: one slow report stalls all traffic on the table.
    /// `DROP INDEX CONCURRENTLY` waits for running transactions without
    /// blocking anybody.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// DROP INDEX orders_status_idx;
    /// -- good
    /// -- strata: no-transaction
    /// DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;
    /// ```
    ///
    /// ## How to fix
    /// Use `DROP INDEX CONCURRENTLY IF EXISTS` (one index per statement, no
    /// `CASCADE`) in a migration file of its own that starts with
    /// `-- strata: no-transaction`. `strata check --fix` does it when the
    /// file holds only index statements.
    pub struct RequireConcurrentIndexDrop {
        id: "require-concurrent-index-drop",
        group: LockSafety,
        severity: Error,
        summary: "DROP INDEX without CONCURRENTLY on an existing table's index (ACCESS EXCLUSIVE lock)",
        needs_workspace: false,
    }
}

impl Rule for RequireConcurrentIndexDrop {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::Drop {
            object_type: ObjectType::Index,
            names,
            if_exists,
            cascade,
            ..
        }) = cx.stmt.ast()
        else {
            return;
        };
        for name in names {
            let (age, table) = match cx.catalog.index_table(name) {
                Some(t) => (lock::table_age(cx.catalog, cx.file, cx.index, &t), Some(t)),
                None => (TableAge::Unknown, None),
            };
            if !age.is_live() {
                continue;
            }
            let on = match (&table, age) {
                (Some(t), TableAge::Existing) => format!("locks existing table `{t}`"),
                (Some(t), _) => format!("locks table `{t}`"),
                (None, _) => "locks its table".to_string(),
            };
            let fix = if names.len() > 1 {
                Err("DROP INDEX CONCURRENTLY drops one index: split the statement".to_string())
            } else if *cascade {
                Err("DROP INDEX CONCURRENTLY cannot CASCADE: drop the dependent objects first".to_string())
            } else {
                let guard = (!if_exists).then_some("IF EXISTS");
                fixes::concurrently_fix(cx, At::Keyword("INDEX"), guard, "drop the index CONCURRENTLY outside a transaction")
            };
            out.push(
                Finding::new(
                    cx.stmt.region,
                    format!("DROP INDEX `{name}` without CONCURRENTLY {on} in ACCESS EXCLUSIVE mode: reads and writes queue behind it"),
                )
                .help(format!(
                    "use `DROP INDEX CONCURRENTLY IF EXISTS` (one index, no CASCADE), in {}",
                    super::fixes::no_transaction_advice(cx.file)
                ))
                .with_fix(fix),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, fixed_text, ids, render_rule};

    const ORDERS: &str =
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL);\nCREATE INDEX orders_status_idx ON orders (status);\n";

    #[test]
    fn fires_on_an_existing_tables_index() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_drop_status_idx.sql", "DROP INDEX orders_status_idx;\n"),
        ]);
        assert_eq!(ids(&d, "require-concurrent-index-drop"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-concurrent-index-drop"));
        assert_eq!(
            fixed_text(&d, "require-concurrent-index-drop").unwrap(),
            "-- strata: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;\n"
        );
    }

    #[test]
    fn quiet_on_an_index_of_a_new_table_and_on_the_concurrent_form() {
        let d = check_ws(&[
            ("core/0001_orders.sql", &format!("{ORDERS}DROP INDEX orders_status_idx;\n")),
            (
                "core/0002_drop.sql",
                "-- strata: no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS orders_pkey_idx;\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-index-drop"), 0, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }
}
