use sqlparser::ast::{AlterTableOperation, ColumnDef, ColumnOption};

use super::lock;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN ... NOT NULL` (or `PRIMARY KEY`) without a `DEFAULT`
    /// on a table that existed before the migration file.
    ///
    /// ## Why is this bad?
    /// Existing rows would get NULL in a column that forbids it, so
    /// PostgreSQL rejects the statement as soon as the table has one row. The
    /// migration passes on an empty development database and fails on the
    /// first tenant with data, halfway through a fleet rollout.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ADD COLUMN currency text NOT NULL;
    /// -- good (PostgreSQL 11+: a constant default is instant)
    /// ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
    /// ```
    ///
    /// ## How to fix
    /// Give the column a constant (non-volatile) `DEFAULT`: since PostgreSQL
    /// 11 that is instant. Otherwise add it nullable, backfill it in batches,
    /// add `CHECK (column IS NOT NULL) NOT VALID`, validate it, then
    /// `SET NOT NULL` (on PostgreSQL 18, add
    /// `CONSTRAINT <name> NOT NULL column NOT VALID` and validate it).
    ///
    /// ## PostgreSQL versions
    /// - 11: a constant `DEFAULT` is instant, and the advice; before, a default rewrites the table and the advice is a nullable column and a validated `CHECK`.
    /// - 18: after the backfill, the advice is `ADD CONSTRAINT ... NOT NULL column NOT VALID` and `VALIDATE CONSTRAINT` (see `set-not-null`).
    pub struct AddRequiredColumn {
        id: "add-required-column",
        group: LockSafety,
        severity: Error,
        summary: "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table (fails once the table has rows)",
        needs_workspace: false,
    }
}

/// Whether the column gets its values from somewhere when it is added.
pub fn fills_itself(col: &ColumnDef) -> bool {
    let serial = matches!(
        col.data_type.to_string().to_ascii_lowercase().as_str(),
        "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
    );
    serial
        || col.options.iter().any(|o| {
            matches!(
                o.option,
                ColumnOption::Default(_) | ColumnOption::Generated { .. } | ColumnOption::Identity(_)
            )
        })
}

impl Rule for AddRequiredColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::AddColumn { column_def: col, .. } = op else {
                continue;
            };
            let declared = col
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::NotNull | ColumnOption::PrimaryKey(_)));
            // A domain's NOT NULL applies to the column, and its DEFAULT fills it.
            let domain = cx.catalog.domain_of_type(&col.data_type.to_string().to_lowercase());
            let required = declared || domain.is_some_and(|d| d.not_null);
            if !required || fills_itself(col) || (!declared && domain.is_some_and(|d| d.has_default)) {
                continue;
            }
            let what = match domain {
                Some(d) if !declared && d.not_null => format!("column `{}` of NOT NULL domain `{}`", col.name, d.name),
                _ => format!("NOT NULL column `{}`", col.name),
            };
            let help = if cx.env.pg_version >= 18 {
                let constraint = super::set_not_null::not_null_constraint_name(&table, &ident_name(&col.name));
                format!(
                    "give it a constant DEFAULT (instant since PostgreSQL 11), or add it nullable, backfill in batches, then {}",
                    super::set_not_null::not_null_path(cx.env.pg_version, constraint.as_deref().unwrap_or("<name>"), &col.name.to_string())
                )
            } else if cx.env.pg_version >= 11 {
                "give it a constant DEFAULT (instant since PostgreSQL 11), or add it nullable, backfill in batches, then enforce NOT NULL through a validated CHECK".to_string()
            } else {
                "add it nullable, backfill in batches, then add `CHECK (... IS NOT NULL) NOT VALID` and VALIDATE it (a DEFAULT rewrites the table before PostgreSQL 11)".to_string()
            };
            out.push(
                Finding::new(
                    ident_region(&col.name).unwrap_or(cx.stmt.region),
                    format!(
                        "{what} added to {} without a DEFAULT: the statement fails as soon as the table has a row",
                        lock::describe(age, &table)
                    ),
                )
                .help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, ids, known, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2));\n";

    #[test]
    fn fires_without_a_default() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_currency.sql", "ALTER TABLE orders ADD COLUMN currency text NOT NULL;\n"),
        ]);
        assert_eq!(ids(&d, "add-required-column"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "add-required-column"));
    }

    #[test]
    fn quiet_with_a_default_nullable_or_on_a_new_table() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                &format!("{ORDERS}ALTER TABLE orders ADD COLUMN placed_by text NOT NULL;\n"),
            ),
            (
                "core/0002_currency.sql",
                "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR', ADD COLUMN note text,\n    ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;\n",
            ),
        ]);
        assert_eq!(ids(&d, "add-required-column"), 0, "{d:#?}");
    }

    fn help_on(pg: u32) -> String {
        let d = check_ws_pg(
            pg,
            &[
                ("core/0001_orders.sql", ORDERS),
                ("core/0002_currency.sql", "ALTER TABLE orders ADD COLUMN currency text NOT NULL;\n"),
            ],
        );
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("add-required-column")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        f[0].help.clone().unwrap()
    }

    #[test]
    fn the_advice_follows_the_version() {
        assert!(help_on(10).starts_with("add it nullable, backfill in batches, then add `CHECK (... IS NOT NULL) NOT VALID`"));
        assert!(help_on(11).starts_with("give it a constant DEFAULT (instant since PostgreSQL 11)"));
        assert!(
            help_on(17).ends_with("then enforce NOT NULL through a validated CHECK"),
            "{}",
            help_on(17)
        );
        assert!(
            help_on(18).ends_with("then add `CONSTRAINT orders_currency_not_null NOT NULL currency NOT VALID` (instant), then `VALIDATE CONSTRAINT orders_currency_not_null` in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes continue); the column is NOT NULL once it is valid"),
            "{}",
            help_on(18)
        );
    }

    #[test]
    fn a_not_null_domain_makes_the_column_required() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                &format!("{ORDERS}CREATE DOMAIN currency_code AS char(3) NOT NULL CHECK (VALUE ~ '^[A-Z]{{3}}$');\nCREATE DOMAIN note_text AS text NOT NULL DEFAULT '';\n"),
            ),
            (
                "core/0002_currency.sql",
                "ALTER TABLE orders ADD COLUMN currency currency_code;\nALTER TABLE orders ADD COLUMN note note_text;\n",
            ),
        ]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("add-required-column")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(f[0].message.contains("NOT NULL domain `public.currency_code`"), "{}", f[0].message);
    }
}
