use sqlparser::ast::{AlterTypeOperation, Statement};

use super::fixes;
use super::lock::{self, Tx};
use super::tokens;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Checks the order of `ALTER TYPE ... ADD VALUE` against the transaction
    /// it runs in: before PostgreSQL 12 it cannot run inside a transaction
    /// block at all; since 12 it can, but the new value cannot be used
    /// (inserted, compared, set as a default) later in the same transaction.
    /// Enums created in the same migration file are exempt, as PostgreSQL
    /// exempts them.
    ///
    /// ## Why is this bad?
    /// Both fail at apply time: `ALTER TYPE ... ADD cannot run inside a
    /// transaction block`, or `unsafe use of new value "..." of enum type`.
    /// strata runs each migration file in a transaction, so adding a value
    /// and using it in the same file fails on every tenant.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: one file
    /// ALTER TYPE order_status ADD VALUE 'refunded';
    /// UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
    /// -- good: 0007_order_status_refunded.sql
    /// ALTER TYPE order_status ADD VALUE 'refunded';
    /// -- 0008_backfill_refunded.sql
    /// UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
    /// ```
    ///
    /// ## How to fix
    /// Add enum values in a migration of their own and use them from the next
    /// one. Before PostgreSQL 12, that migration must start with
    /// `-- strata: no-transaction`.
    ///
    /// ## PostgreSQL versions
    /// - 12: `ADD VALUE` may run in a transaction, and only a use of the new value in the same transaction is flagged; before 12 every `ADD VALUE` in a transaction is.
    pub struct EnumValueOrdering {
        id: "enum-value-ordering",
        group: LockSafety,
        severity: Error,
        summary: "ALTER TYPE ... ADD VALUE in a transaction before PG 12, or the new value used in the same transaction",
        needs_workspace: false,
    }
}

impl Rule for EnumValueOrdering {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::AlterType(at)) = cx.stmt.ast() else { return };
        let AlterTypeOperation::AddValue(add) = &at.operation else { return };
        let tx = lock::transaction_at(cx.env, cx.file, cx.index);
        let name = cx.catalog.resolve(&at.name);
        let created_here = cx.catalog.enums.get(&name).is_some_and(|e| e.origin.file == cx.file.id);
        if tx == Tx::None || created_here {
            return;
        }
        let value = &add.value.value;
        if cx.env.pg_version < 12 {
            out.push(
                Finding::new(
                    cx.stmt.region,
                    format!(
                        "ALTER TYPE `{name}` ADD VALUE '{value}' cannot run inside a transaction block on PostgreSQL {}",
                        cx.env.pg_version
                    ),
                )
                .help(format!(
                    "put it in {} (PostgreSQL 12+ allows it in a transaction)",
                    super::fixes::no_transaction_advice(cx.file)
                )),
            );
            return;
        }
        let statements = &cx.file.parsed.statements;
        for (j, later) in statements.iter().enumerate().skip(cx.index + 1) {
            if lock::transaction_at(cx.env, cx.file, j) != tx {
                break;
            }
            if fixes::uses_literal(tokens::statement_text(&cx.file.parsed.source, later), value) {
                out.push(
                    Finding::new(
                        later.region,
                        format!(
                            "uses the enum value '{value}' added to `{name}` on line {} in the same transaction: PostgreSQL rejects it until that transaction commits",
                            cx.stmt.region.start.line
                        ),
                    )
                    .help("add the value in a migration of its own and use it from the next one")
                    .at_statement(j),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, ids, render_rule};

    const ORDERS: &str = "CREATE TYPE order_status AS ENUM ('open', 'paid');\nCREATE TABLE orders (id bigint PRIMARY KEY, status order_status NOT NULL DEFAULT 'open', refunded_at timestamptz);\n";

    #[test]
    fn fires_on_use_in_the_same_transaction() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_refunded.sql",
                "ALTER TYPE order_status ADD VALUE 'refunded';\nUPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;\n",
            ),
        ]);
        assert_eq!(ids(&d, "enum-value-ordering"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "enum-value-ordering"));
    }

    #[test]
    fn fires_on_any_add_value_in_a_transaction_before_12() {
        let d = check_ws_pg(
            11,
            &[
                ("core/0001_orders.sql", ORDERS),
                ("core/0002_refunded.sql", "ALTER TYPE order_status ADD VALUE 'refunded';\n"),
            ],
        );
        assert_eq!(ids(&d, "enum-value-ordering"), 1, "{d:#?}");
        assert!(
            d.iter()
                .any(|x| x.message.contains("cannot run inside a transaction block on PostgreSQL 11")),
            "{d:#?}"
        );
        let d = check_ws_pg(
            12,
            &[
                ("core/0001_orders.sql", ORDERS),
                ("core/0002_refunded.sql", "ALTER TYPE order_status ADD VALUE 'refunded';\n"),
            ],
        );
        assert_eq!(ids(&d, "enum-value-ordering"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_when_used_in_a_later_file_or_on_a_new_enum() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                &format!("{ORDERS}ALTER TYPE order_status ADD VALUE 'void';\nUPDATE orders SET status = 'void' WHERE false;\n"),
            ),
            (
                "core/0002_refunded.sql",
                "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';\n",
            ),
            (
                "core/0003_backfill.sql",
                "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;\n",
            ),
        ]);
        assert_eq!(ids(&d, "enum-value-ordering"), 0, "{d:#?}");
    }
}
