use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::lock;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::{ident_name, ConstraintKind, Table};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... SET NOT NULL` on a table that existed before the
    /// migration file, unless (PostgreSQL 12+) a validated
    /// `CHECK (column IS NOT NULL)` already proves the column has no NULL.
    ///
    /// ## Why is this bad?
    /// `SET NOT NULL` scans the whole table to check for NULLs while holding
    /// an `ACCESS EXCLUSIVE` lock: nothing can read or write the table until
    /// the scan ends. Since PostgreSQL 12 the scan is skipped when a valid
    /// `CHECK (column IS NOT NULL)` constraint exists, and such a constraint
    /// can be added `NOT VALID` and validated without blocking traffic.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
    /// -- good: 0002
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_id_nn CHECK (customer_id IS NOT NULL) NOT VALID;
    /// -- 0003
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_nn;
    /// -- 0004
    /// ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
    /// ALTER TABLE orders DROP CONSTRAINT orders_customer_id_nn;
    /// ```
    ///
    /// ## How to fix
    /// Add `CHECK (column IS NOT NULL) NOT VALID`, validate it in a later
    /// migration, then `SET NOT NULL` (instant on PostgreSQL 12+) and drop the
    /// check. Before PostgreSQL 12, keep the validated check instead of
    /// `NOT NULL`.
    pub struct SetNotNull {
        id: "set-not-null",
        group: LockSafety,
        severity: Error,
        summary: "SET NOT NULL on an existing table without a validated CHECK (col IS NOT NULL) (full scan under ACCESS EXCLUSIVE)",
        needs_workspace: false,
    }
}

/// Whether a CHECK expression is exactly `column IS NOT NULL`.
fn is_not_null_check(expr: &str, column: &str) -> bool {
    let norm: String = expr.chars().filter(|c| !c.is_whitespace() && *c != '(' && *c != ')').collect();
    let upper = norm.to_ascii_uppercase();
    let Some(len) = upper.strip_suffix("ISNOTNULL").map(str::len) else {
        return false;
    };
    let subject = &norm[..len];
    match subject.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted == column,
        None => subject.to_lowercase() == column,
    }
}

/// Whether a validated `CHECK (column IS NOT NULL)` exists on the table.
pub fn has_valid_not_null_check(table: &Table, column: &str) -> bool {
    table.constraints.iter().any(|c| {
        !c.not_valid
            && match &c.kind {
                ConstraintKind::Check { expr } => is_not_null_check(expr, column),
                _ => false,
            }
    })
}

impl Rule for SetNotNull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, q)) = lock::live_alter(cx) else { return };
        let table = cx.catalog.table(&q);
        for op in &at.operations {
            let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetNotNull,
            } = op
            else {
                continue;
            };
            let column = ident_name(column_name);
            if let Some(t) = table {
                if t.column(&column).is_some_and(|c| c.not_null) || (cx.env.pg_version >= 12 && has_valid_not_null_check(t, &column)) {
                    continue;
                }
            }
            let help = if cx.env.pg_version >= 12 {
                format!(
                    "add `CHECK ({column_name} IS NOT NULL) NOT VALID`, VALIDATE it in a later migration, then SET NOT NULL (no scan since PostgreSQL 12) and drop the check"
                )
            } else {
                format!(
                    "PostgreSQL {} always scans for SET NOT NULL: keep a validated `CHECK ({column_name} IS NOT NULL)` (added NOT VALID, then VALIDATE) instead",
                    cx.env.pg_version
                )
            };
            out.push(
                Finding::new(
                    ident_region(column_name).unwrap_or(cx.stmt.region),
                    format!(
                        "SET NOT NULL on `{column}` scans all of {} under an ACCESS EXCLUSIVE lock: no reads or writes until it ends",
                        lock::describe(age, &q)
                    ),
                )
                .help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_not_null_check;
    use crate::rules::testing::{check_ws, check_ws_pg, ids, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_customer_required.sql",
                "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n",
            ),
        ]);
        assert_eq!(ids(&d, "set-not-null"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "set-not-null"));
    }

    #[test]
    fn quiet_after_a_validated_check_since_12() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_nn_check.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_nn CHECK (customer_id IS NOT NULL) NOT VALID;\n",
            ),
            (
                "core/0003_validate.sql",
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_nn;\n",
            ),
            (
                "core/0004_not_null.sql",
                "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\nALTER TABLE orders DROP CONSTRAINT orders_customer_id_nn;\n",
            ),
        ];
        assert_eq!(ids(&check_ws(&files), "set-not-null"), 0);
        // PostgreSQL 11 scans anyway.
        assert_eq!(ids(&check_ws_pg(11, &files), "set-not-null"), 1);
    }

    #[test]
    fn a_check_that_is_not_validated_does_not_count() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_nn.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_nn CHECK (customer_id IS NOT NULL) NOT VALID;\nALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n",
            ),
        ]);
        assert_eq!(ids(&d, "set-not-null"), 1, "{d:#?}");
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_orders.sql",
            &format!("{ORDERS}ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n"),
        )]);
        assert_eq!(ids(&d, "set-not-null"), 0, "{d:#?}");
    }

    #[test]
    fn not_null_check_shapes() {
        assert!(is_not_null_check("customer_id IS NOT NULL", "customer_id"));
        assert!(is_not_null_check("(\"Customer\" IS NOT NULL)", "Customer"));
        assert!(!is_not_null_check("customer_id IS NOT NULL AND total > 0", "customer_id"));
        assert!(!is_not_null_check("other IS NOT NULL", "customer_id"));
    }
}
