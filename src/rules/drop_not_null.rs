use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::lock;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... DROP NOT NULL` on a table that existed before
    /// the migration file.
    ///
    /// ## Why is this bad?
    /// Deployed code reads the column as never NULL (a non-optional field, a
    /// join key, a sum): the first NULL written by new code breaks the old
    /// release still running. Going back is expensive: `SET NOT NULL` scans
    /// the table under an `ACCESS EXCLUSIVE` lock, and fails once NULLs exist.
    ///
    /// ## Example
    /// ```sql
    /// -- risky
    /// ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
    /// -- good, once every deployed reader handles NULL
    /// -- strata-ignore drop-not-null: guest checkout, readers updated in 2024.07
    /// ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;
    /// ```
    ///
    /// ## How to fix
    /// Make every reader handle NULL one release before, then drop the
    /// constraint and record why with `-- strata-ignore drop-not-null: <reason>`.
    pub struct DropNotNull {
        id: "drop-not-null",
        group: LockSafety,
        severity: Warning,
        summary: "DROP NOT NULL on an existing table (deployed readers may not handle NULL; costly to undo)",
        needs_workspace: false,
    }
}

impl Rule for DropNotNull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::DropNotNull,
            } = op
            else {
                continue;
            };
            // A column the history made nullable already: nothing changes.
            let name = crate::catalog::ident_name(column_name);
            let nullable = cx.catalog.table(&table).is_some_and(|t| {
                t.column(&name).is_some_and(|c| !c.not_null)
                    && t.invalid_not_null(&name).is_none()
                    && !t.primary_key().is_some_and(|k| k.columns.contains(&name))
            });
            if nullable {
                continue;
            }
            out.push(
                Finding::new(
                    ident_region(column_name).unwrap_or(cx.stmt.region),
                    format!(
                        "DROP NOT NULL on `{column_name}` of {}: deployed code that reads it as never NULL breaks on the first NULL",
                        lock::describe(age, &table)
                    ),
                )
                .help("make every reader handle NULL first; then record it with `-- strata-ignore drop-not-null: <reason>`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_guest_checkout.sql",
                "ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;\n",
            ),
        ]);
        assert_eq!(ids(&d, "drop-not-null"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "drop-not-null"));
        // A column the history already made nullable: nothing changes.
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, note text, customer_id bigint NOT NULL);\n",
            ),
            (
                "core/0002_relax.sql",
                "ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;\n",
            ),
            (
                "core/0003_again.sql",
                "ALTER TABLE orders ALTER COLUMN note DROP NOT NULL, ALTER COLUMN customer_id DROP NOT NULL;\n",
            ),
        ]);
        let in_file = |f: &str| d.iter().filter(|x| x.rule == "drop-not-null" && x.file.path.ends_with(f)).count();
        assert_eq!((in_file("0002_relax.sql"), in_file("0003_again.sql")), (1, 0), "{d:#?}");
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_orders.sql",
            &format!("{ORDERS}ALTER TABLE orders ALTER COLUMN customer_id DROP NOT NULL;\n"),
        )]);
        assert_eq!(ids(&d, "drop-not-null"), 0, "{d:#?}");
    }
}
