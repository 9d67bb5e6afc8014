use sqlparser::ast::{FromTable, Statement, TableFactor, TableWithJoins};

use super::lock::{self, age_of};
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags an `UPDATE` or `DELETE` without `WHERE` on a table the migration
    /// did not create: a statement that writes every row of an existing table.
    ///
    /// ## Why is this bad?
    /// It runs in the migration's transaction and holds a ROW EXCLUSIVE lock
    /// and a row lock on every row until the migration commits: every
    /// concurrent write to any row of the table waits for it. An `UPDATE`
    /// writes a new version of every row (the table doubles on disk until
    /// vacuum, and every index is updated), the WAL carries all of it to the
    /// replicas, and a big table turns a deploy into an outage. A `DELETE`
    /// without `WHERE` is also often a mistake (a `WHERE` lost in review).
    ///
    /// ## Example
    /// ```sql
    /// -- bad: every row, one transaction
    /// UPDATE orders SET status = 'open';
    /// -- good: a backfill in batches, outside the schema migration
    /// UPDATE orders SET status = 'open'
    ///  WHERE id IN (SELECT id FROM orders WHERE status IS NULL LIMIT 10000);
    /// ```
    ///
    /// ## How to fix
    /// Backfill in batches outside the schema migration (repeat the batched
    /// statement until it updates nothing), or give the statement the
    /// `WHERE` it lost. To empty a table on purpose, `TRUNCATE` it. When the
    /// table is known to be small, suppress the finding with a reason:
    /// `-- strata-ignore whole-table-write: <reason>`.
    pub struct WholeTableWrite {
        id: "whole-table-write",
        group: LockSafety,
        severity: Warning,
        summary: "an UPDATE or DELETE without WHERE on an existing table (writes every row under one transaction)",
        needs_workspace: false,
    }
}

fn table_name(t: &TableWithJoins) -> Option<&sqlparser::ast::ObjectName> {
    match &t.relation {
        TableFactor::Table { name, .. } => Some(name),
        _ => None,
    }
}

impl Rule for WholeTableWrite {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let (verb, name, help) = match cx.stmt.ast() {
            Some(Statement::Update(u)) if u.selection.is_none() => (
                "UPDATE",
                table_name(&u.table),
                "backfill in batches outside the schema migration (`UPDATE ... WHERE id IN (SELECT id ... LIMIT 10000)`, repeated until \
                 it updates nothing), or add the WHERE it lost",
            ),
            Some(Statement::Delete(d)) if d.selection.is_none() => {
                let from = match &d.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f.first(),
                };
                (
                    "DELETE",
                    from.and_then(table_name),
                    "add the WHERE it lost, delete in batches outside the schema migration, or, to empty the table on purpose, \
                     use TRUNCATE",
                )
            }
            _ => return,
        };
        let Some(name) = name else { return };
        let age = age_of(cx, name);
        if !age.is_live() {
            return;
        }
        let table = cx.catalog.resolve(name);
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "{verb} without WHERE writes every row of {} in the migration's transaction: concurrent writes to the table wait \
                     until it commits",
                    lock::describe(age, &table)
                ),
            )
            .help(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, status text);\n";

    #[test]
    fn fires_on_whole_table_writes_of_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_backfill.sql",
                "UPDATE orders SET status = 'open';\nDELETE FROM orders;\nUPDATE public.orders o SET status = 'x' FROM orders p;\n",
            ),
        ]);
        assert_eq!(ids(&d, "whole-table-write"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "whole-table-write"));
    }

    #[test]
    fn quiet_with_a_where_and_on_a_table_of_the_same_file() {
        let d = check_ws(&[
            ("core/0001_orders.sql", &format!("{ORDERS}UPDATE orders SET status = 'open';\n")),
            (
                "core/0002_backfill.sql",
                "UPDATE orders SET status = 'open' WHERE status IS NULL;\nDELETE FROM orders WHERE id < 10;\n\
                 CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM orders $$;\n",
            ),
        ]);
        assert_eq!(ids(&d, "whole-table-write"), 0, "{d:#?}");
    }
}
