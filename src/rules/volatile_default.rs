use std::ops::ControlFlow;

use sqlparser::ast::{visit_expressions, AlterTableOperation, ColumnDef, ColumnOption, Expr, GeneratedExpressionMode, Statement, Value};

use super::lock;
use super::tokens;
use super::{ident_region, string_list, Finding, Rule, RuleMeta, StatementCtx};
use crate::sql::model::{Generated, Model, TableOp};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ADD COLUMN` on a table that existed before the migration file
    /// when the new column makes PostgreSQL rewrite the table: a volatile
    /// `DEFAULT` (`gen_random_uuid()`, `clock_timestamp()`, `random()`,
    /// `nextval()`, a `serial` type), an identity column, a stored generated
    /// column, or, before PostgreSQL 11, any non-NULL `DEFAULT`. Before
    /// PostgreSQL 18 it also flags a virtual generated column (in `ADD
    /// COLUMN` or `CREATE TABLE`), which those majors reject.
    ///
    /// ## Why is this bad?
    /// Since PostgreSQL 11 a constant (or stable, like `now()`) default is
    /// stored once in the catalog and the add is instant. A volatile default
    /// must be computed for each existing row, so the whole table and its
    /// indexes are rewritten under an `ACCESS EXCLUSIVE` lock: no reads or
    /// writes for as long as the rewrite takes.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
    /// -- good
    /// ALTER TABLE orders ADD COLUMN public_id uuid;
    /// ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();
    /// -- then backfill existing rows in batches
    /// ```
    ///
    /// ## How to fix
    /// Add the column without a default (or with a constant one), then set
    /// the default with `ALTER COLUMN ... SET DEFAULT` (it applies to new rows
    /// only and is instant), and backfill existing rows in batches.
    ///
    /// ## Options
    /// `volatile_functions`: more function names to treat as volatile (your
    /// own ID generators, for example).
    ///
    /// ## PostgreSQL versions
    /// - 11: a constant or stable `DEFAULT` adds instantly; before 11 every non-NULL `DEFAULT` is flagged.
    /// - 18: a virtual generated column (`GENERATED ALWAYS AS (...)` without `STORED`, or with `VIRTUAL`) adds instantly, and the help for a stored one says so; before 18 a virtual one is flagged as a statement PostgreSQL rejects.
    pub struct VolatileDefault {
        id: "volatile-default",
        group: LockSafety,
        severity: Error,
        summary: "ADD COLUMN with a volatile default (or any default before PG 11) on an existing table: full rewrite",
        needs_workspace: false,
    }
}

/// Built-in functions whose volatility is VOLATILE.
const VOLATILE: &[&str] = &[
    "random",
    "clock_timestamp",
    "timeofday",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "nextval",
    "setval",
    "txid_current",
    "random_normal",
];

#[derive(Debug, Clone, Default)]
pub struct VolatileDefaultRule {
    extra: Vec<String>,
}

impl VolatileDefaultRule {
    /// The first volatile function called in `expr`: a volatile built-in, a
    /// configured name, or a function the history created without
    /// IMMUTABLE/STABLE (PostgreSQL's default volatility is VOLATILE).
    fn volatile_call(&self, expr: &Expr, catalog: &crate::catalog::Catalog) -> Option<String> {
        let found = visit_expressions(expr, |e| {
            if let Expr::Function(f) = e {
                let name = f.name.0.last().map(|p| p.to_string().to_lowercase()).unwrap_or_default();
                if VOLATILE.contains(&name.as_str()) || self.extra.contains(&name) || catalog.function_is_volatile(&name) {
                    return ControlFlow::Break(format!("{name}()"));
                }
            }
            ControlFlow::Continue(())
        });
        match found {
            ControlFlow::Break(name) => Some(name),
            ControlFlow::Continue(()) => None,
        }
    }

    /// Why adding this column rewrites the table, if it does.
    fn rewrite_reason(&self, col: &ColumnDef, pg_version: u32, catalog: &crate::catalog::Catalog) -> Option<String> {
        let ty = col.data_type.to_string().to_ascii_lowercase();
        if matches!(
            ty.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial2" | "serial4" | "serial8"
        ) {
            return Some(format!("is `{ty}` (its default, nextval(), is volatile)"));
        }
        for o in &col.options {
            match &o.option {
                ColumnOption::Generated {
                    generation_expr: Some(_),
                    generation_expr_mode,
                    ..
                } if *generation_expr_mode != Some(GeneratedExpressionMode::Virtual) => {
                    return Some("is a stored generated column".to_string());
                }
                ColumnOption::Generated { generation_expr: None, .. } | ColumnOption::Identity(_) => {
                    return Some("is an identity column (every row gets its own value)".to_string());
                }
                ColumnOption::Default(e) => {
                    if let Some(f) = self.volatile_call(e, catalog) {
                        return Some(format!("has a volatile DEFAULT ({f})"));
                    }
                    let null = matches!(e, Expr::Value(v) if v.value == Value::Null);
                    if pg_version < 11 && !null {
                        return Some(format!(
                            "has a DEFAULT, and PostgreSQL {pg_version} stores it in every row (instant only since 11)"
                        ));
                    }
                }
                _ => {}
            }
        }
        None
    }
}

impl Rule for VolatileDefaultRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(list) = string_list(options, "volatile_functions")? {
            self.extra = list.into_iter().map(|s| s.to_lowercase()).collect();
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if let Some(Model::AlterTable { table, ops }) = cx.stmt.model() {
            self.check_model(cx, table, ops, out);
            return;
        }
        if cx.env.pg_version < 18 {
            let new_columns: Vec<&ColumnDef> = match cx.stmt.ast() {
                Some(Statement::CreateTable(ct)) => ct.columns.iter().collect(),
                Some(Statement::AlterTable(at)) => at
                    .operations
                    .iter()
                    .filter_map(|op| match op {
                        AlterTableOperation::AddColumn { column_def, .. } => Some(column_def),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            for col in new_columns.into_iter().filter(|c| virtual_generated(c)) {
                out.push(virtual_before_18(
                    cx,
                    ident_region(&col.name).unwrap_or(cx.stmt.region),
                    &col.name.to_string(),
                ));
            }
        }
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::AddColumn { column_def: col, .. } = op else {
                continue;
            };
            let Some(reason) = self.rewrite_reason(col, cx.env.pg_version, cx.catalog) else {
                continue;
            };
            out.push(
                Finding::new(
                    ident_region(&col.name).unwrap_or(cx.stmt.region),
                    format!(
                        "new column `{}` {reason}: adding it rewrites all of {} under an ACCESS EXCLUSIVE lock",
                        col.name,
                        lock::describe(age, &table)
                    ),
                )
                .help(if cx.env.pg_version >= 18 && stored_generated(col) {
                    "leave out STORED: a virtual generated column (PostgreSQL 18) is computed on read and adds instantly"
                } else {
                    "add the column without that default, then `ALTER COLUMN ... SET DEFAULT` (new rows only, instant) and backfill existing rows in batches"
                }),
            );
        }
    }
}

/// The finding for a virtual generated column on a `pg_version` before 18.
fn virtual_before_18(cx: &StatementCtx, region: crate::diag::Region, column: &str) -> Finding {
    Finding::new(
        region,
        format!(
            "new column `{column}` is a virtual generated column (no STORED), which PostgreSQL {} does not have (18+): the statement fails",
            cx.env.pg_version
        ),
    )
    .help("write STORED (on an existing table that rewrites it), or compute the value in a view or the application")
}

/// Whether the column is `GENERATED ALWAYS AS (expr)` without `STORED`.
fn virtual_generated(col: &ColumnDef) -> bool {
    col.options.iter().any(|o| {
        matches!(
            &o.option,
            ColumnOption::Generated {
                generation_expr: Some(_),
                generation_expr_mode: Some(GeneratedExpressionMode::Virtual),
                ..
            }
        )
    })
}

/// Whether the column is `GENERATED ALWAYS AS (expr) STORED`.
fn stored_generated(col: &ColumnDef) -> bool {
    col.options.iter().any(|o| {
        matches!(
            &o.option,
            ColumnOption::Generated {
                generation_expr: Some(_),
                generation_expr_mode,
                ..
            } if *generation_expr_mode != Some(GeneratedExpressionMode::Virtual)
        )
    })
}

impl VolatileDefaultRule {
    /// `ADD COLUMN` as only PostgreSQL's grammar reads it: what sqlparser
    /// rejects, such as a virtual generated column (PostgreSQL 18).
    fn check_model(&self, cx: &StatementCtx, table: &[String], ops: &[TableOp], out: &mut Vec<Finding>) {
        let q = cx.catalog.resolve_parts(table);
        let age = lock::table_age(cx.catalog, cx.file, cx.index, &q);
        for op in ops {
            let TableOp::AddColumn(col) = op else { continue };
            let region = tokens::word_region(cx, &col.name).unwrap_or(cx.stmt.region);
            let reason = match col.generated {
                Some(Generated::Virtual) if cx.env.pg_version < 18 => {
                    out.push(virtual_before_18(cx, region, &col.name));
                    continue;
                }
                // Computed on read: nothing is written to the rows.
                Some(Generated::Virtual) => continue,
                Some(Generated::Stored) => "is a stored generated column",
                None if col.identity => "is an identity column (every row gets its own value)",
                None => continue,
            };
            if age.is_live() {
                out.push(
                    Finding::new(
                        region,
                        format!(
                            "new column `{}` {reason}: adding it rewrites all of {} under an ACCESS EXCLUSIVE lock",
                            col.name,
                            lock::describe(age, &q)
                        ),
                    )
                    .help(if cx.env.pg_version >= 18 && col.generated.is_some() {
                        "leave out STORED: a virtual generated column (PostgreSQL 18) is computed on read and adds instantly"
                    } else {
                        "add the column without that default, then `ALTER COLUMN ... SET DEFAULT` (new rows only, instant) and backfill existing rows in batches"
                    }),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, check_ws_with, ids, known, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12, 2));\n";

    #[test]
    fn fires_on_a_volatile_default() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_public_id.sql",
                "ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();\n",
            ),
        ]);
        assert_eq!(ids(&d, "volatile-default"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "volatile-default"));
    }

    #[test]
    fn constant_and_stable_defaults_are_cheap_since_11() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_cols.sql",
                "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR', ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();\n",
            ),
        ];
        assert_eq!(ids(&check_ws_pg(11, &files), "volatile-default"), 0);
        let d = check_ws_pg(10, &files);
        assert_eq!(ids(&d, "volatile-default"), 2);
        assert!(
            d[0].message
                .contains("has a DEFAULT, and PostgreSQL 10 stores it in every row (instant only since 11)")
                || d.iter().any(|x| x.message.contains("PostgreSQL 10 stores it in every row")),
            "{d:#?}"
        );
    }

    #[test]
    fn virtual_generated_columns_are_instant_on_18_and_rejected_before() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_gross.sql",
                "ALTER TABLE orders ADD COLUMN gross numeric GENERATED ALWAYS AS (total * 1.2);\nALTER TABLE orders ADD COLUMN net numeric GENERATED ALWAYS AS (total / 1.2) VIRTUAL;\n",
            ),
        ];
        let d = check_ws_pg(18, &files);
        for rule in ["volatile-default", "unparsed-statement", "syntax-error"] {
            assert_eq!(ids(&d, rule), 0, "{rule}: {d:#?}");
        }
        let d = check_ws_pg(17, &files);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("volatile-default")).collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert_eq!(
            f[0].message,
            "new column `gross` is a virtual generated column (no STORED), which PostgreSQL 17 does not have (18+): the statement fails"
        );
        assert_eq!(f[1].region.start, crate::diag::Pos::new(2, 31));
        // A new table's virtual column fails before 18 too, and is modeled.
        let files = [(
            "core/0001_orders.sql",
            "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, gross numeric GENERATED ALWAYS AS (total * 1.2));\n",
        )];
        let d = check_ws_pg(17, &files);
        assert_eq!(ids(&d, "volatile-default"), 1, "{d:#?}");
        let d = check_ws_pg(18, &files);
        for rule in ["volatile-default", "unparsed-statement", "no-primary-key"] {
            assert_eq!(ids(&d, rule), 0, "{rule}: {d:#?}");
        }
    }

    #[test]
    fn a_stored_generated_column_rewrites_and_18_advises_virtual() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_gross.sql",
                "ALTER TABLE orders ADD COLUMN gross numeric GENERATED ALWAYS AS (total * 1.2) STORED;\n",
            ),
        ];
        let help = |pg| {
            let d = check_ws_pg(pg, &files);
            let f: Vec<_> = d.iter().filter(|x| x.rule == known("volatile-default")).collect();
            assert_eq!(f.len(), 1, "{d:#?}");
            assert!(f[0].message.contains("is a stored generated column"), "{}", f[0].message);
            f[0].help.clone().unwrap()
        };
        assert!(help(17).starts_with("add the column without that default"), "{}", help(17));
        assert!(
            help(18).starts_with("leave out STORED: a virtual generated column (PostgreSQL 18)"),
            "{}",
            help(18)
        );
    }

    #[test]
    fn serial_identity_and_configured_functions() {
        let d = check_ws_with(
            &[
                ("core/0001_orders.sql", ORDERS),
                (
                    "core/0002_cols.sql",
                    "ALTER TABLE orders ADD COLUMN seq bigserial, ADD COLUMN n bigint GENERATED BY DEFAULT AS IDENTITY,\n    ADD COLUMN code text DEFAULT app.next_code();\n",
                ),
            ],
            |root| {
                std::fs::create_dir_all(root.join("rules")).unwrap();
                std::fs::write(root.join("rules/lock.toml"), "[rules.volatile-default]\nvolatile_functions = [\"next_code\"]\n").unwrap();
            },
        );
        assert_eq!(ids(&d, "volatile-default"), 3, "{d:#?}");
    }

    #[test]
    fn a_function_created_without_a_volatility_is_volatile() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_codes.sql",
                "CREATE FUNCTION next_code() RETURNS text LANGUAGE sql AS $$ SELECT md5(random()::text) $$;\n\
                 CREATE FUNCTION fixed_code() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x' $$;\n",
            ),
            (
                "core/0003_add_code.sql",
                "ALTER TABLE orders ADD COLUMN code text NOT NULL DEFAULT next_code();\nALTER TABLE orders ADD COLUMN tag text NOT NULL DEFAULT fixed_code();\n",
            ),
        ]);
        let found: Vec<_> = d.iter().filter(|x| x.rule == known("volatile-default")).collect();
        assert_eq!(found.len(), 1, "{d:#?}");
        assert!(found[0].message.contains("next_code()"), "{}", found[0].message);
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_orders.sql",
            &format!("{ORDERS}ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();\n"),
        )]);
        assert_eq!(ids(&d, "volatile-default"), 0, "{d:#?}");
    }
}
