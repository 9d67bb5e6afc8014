use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::lock;
use super::tokens;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;
use crate::sql::model::{Generated, Model, TableOp};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... TYPE` on a table that existed before the
    /// migration file, unless the change is one PostgreSQL makes without
    /// touching the data: `varchar(n)` to a longer `varchar(m)`, to
    /// `varchar` or to `text`; `text` to `varchar`; `numeric(p, s)` to a
    /// larger precision with the same scale or to `numeric`; `varbit(n)`
    /// widened; `cidr` to `inet`.
    ///
    /// ## Why is this bad?
    /// Any other type change rewrites the table and rebuilds every index on
    /// it while holding an `ACCESS EXCLUSIVE` lock: no reads or writes until
    /// it is done, minutes to hours on a large table. Running application
    /// code may also break on the new type.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: a rewrite
    /// ALTER TABLE orders ALTER COLUMN id TYPE bigint;
    /// -- fine: no rewrite
    /// ALTER TABLE orders ALTER COLUMN reference TYPE varchar(64);  -- was varchar(32)
    /// ```
    ///
    /// ## How to fix
    /// Expand and contract: add a column of the new type, keep both in sync
    /// (trigger or application), backfill in batches, switch reads, then drop
    /// the old column. For length limits, prefer `text` with a `CHECK`
    /// constraint added `NOT VALID`.
    ///
    /// ## PostgreSQL versions
    /// - 17: `ALTER COLUMN ... SET EXPRESSION` exists, and is flagged on a stored generated column of an existing table (it recomputes every row); before 17 it is flagged as syntax PostgreSQL rejects.
    /// - 18: `SET EXPRESSION` on a virtual generated column rewrites nothing and is not flagged.
    pub struct ColumnTypeChange {
        id: "column-type-change",
        group: LockSafety,
        severity: Error,
        summary: "ALTER COLUMN TYPE on an existing table that rewrites it (ACCESS EXCLUSIVE for the whole rewrite)",
        needs_workspace: false,
    }
}

/// A type name split into a normalized base and its numeric modifiers.
fn parse_type(ty: &str) -> (String, Vec<u32>) {
    let ty = ty.trim().to_ascii_lowercase();
    let (base, args) = match ty.find('(') {
        Some(i) => (ty[..i].trim().to_string(), ty[i + 1..].trim_end_matches(')').to_string()),
        None => (ty.clone(), String::new()),
    };
    let base = match base.as_str() {
        "character varying" | "varchar" => "varchar",
        "decimal" | "numeric" => "numeric",
        "bit varying" | "varbit" => "varbit",
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        other => other,
    }
    .to_string();
    let args = args.split(',').filter_map(|a| a.trim().parse().ok()).collect();
    (base, args)
}

/// Whether changing a column from `old` to `new` needs neither a rewrite
/// nor a scan.
pub fn binary_coercible(old: &str, new: &str) -> bool {
    let (ob, oa) = parse_type(old);
    let (nb, na) = parse_type(new);
    match (ob.as_str(), nb.as_str()) {
        _ if ob == nb && oa == na => true,
        ("varchar", "text") | ("text", "varchar") if na.is_empty() => true,
        ("varchar", "varchar") | ("varbit", "varbit") => na.is_empty() || (!oa.is_empty() && na[0] >= oa[0]),
        ("numeric", "numeric") => {
            na.is_empty()
                || (oa.len() == na.len() && !oa.is_empty() && na[0] >= oa[0] && oa.get(1).unwrap_or(&0) == na.get(1).unwrap_or(&0))
        }
        ("cidr", "inet") => true,
        _ => false,
    }
}

impl Rule for ColumnTypeChange {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if let Some(Model::AlterTable { table, ops }) = cx.stmt.model() {
            for op in ops {
                if let TableOp::SetExpression(column) = op {
                    set_expression(cx, table, column, out);
                }
            }
            return;
        }
        let Some((at, age, q)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::AlterColumn {
                column_name,
                op: AlterColumnOperation::SetDataType { data_type, using, .. },
            } = op
            else {
                continue;
            };
            let column = ident_name(column_name);
            let new = data_type.to_string().to_lowercase();
            let old = cx.catalog.table(&q).and_then(|t| t.column(&column)).map(|c| c.data_type.clone());
            if using.is_none() && old.as_deref().is_some_and(|old| binary_coercible(old, &new)) {
                continue;
            }
            let from = old.map_or(String::new(), |o| format!(" from `{o}`"));
            out.push(
                Finding::new(
                    ident_region(column_name).unwrap_or(cx.stmt.region),
                    format!(
                        "changing `{column}`{from} to `{new}` rewrites all of {} and its indexes under an ACCESS EXCLUSIVE lock",
                        lock::describe(age, &q)
                    ),
                )
                .help("add a column of the new type, sync and backfill it in batches, switch reads, then drop the old one (expand and contract)"),
            );
        }
    }
}

/// `ALTER COLUMN ... SET EXPRESSION` (PostgreSQL 17): a stored generated
/// column is recomputed for every row, a virtual one (18) is not.
fn set_expression(cx: &StatementCtx, table: &[String], column: &str, out: &mut Vec<Finding>) {
    if let Some(f) = super::helpers::newer_syntax(cx, "EXPRESSION", "SET EXPRESSION", 17) {
        out.push(f.help("drop the generated column and add it again with the new expression (on an existing table that rewrites it)"));
        return;
    }
    let region = tokens::kw_region(cx, "EXPRESSION");
    let q = cx.catalog.resolve_parts(table);
    let age = lock::table_age(cx.catalog, cx.file, cx.index, &q);
    let generated = cx.catalog.table(&q).and_then(|t| t.column(column)).and_then(|c| c.generated);
    if !age.is_live() || generated == Some(Generated::Virtual) {
        return;
    }
    out.push(
        Finding::new(
            region,
            format!(
                "SET EXPRESSION on stored generated column `{column}` recomputes every row: it rewrites all of {} under an ACCESS EXCLUSIVE lock",
                lock::describe(age, &q)
            ),
        )
        .help(if cx.env.pg_version >= 18 {
            "add a new generated column (virtual ones, PostgreSQL 18's default, add instantly), switch readers to it, then drop the old one"
        } else {
            "add a new column, fill it in batches, switch readers to it, then drop the old one"
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::binary_coercible;
    use crate::rules::testing::{check_ws, check_ws_pg, ids, known, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id integer PRIMARY KEY, reference varchar(32), total numeric(10, 2));\n";

    #[test]
    fn fires_on_a_rewriting_change() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_bigint_ids.sql", "ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n"),
        ]);
        assert_eq!(ids(&d, "column-type-change"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "column-type-change"));
    }

    #[test]
    fn quiet_on_binary_coercible_changes_and_new_tables() {
        let d = check_ws(&[
            (
                "core/0001_orders.sql",
                &format!("{ORDERS}ALTER TABLE orders ALTER COLUMN id TYPE bigint;\n"),
            ),
            (
                "core/0002_widen.sql",
                "ALTER TABLE orders ALTER COLUMN reference TYPE varchar(64), ALTER COLUMN total TYPE numeric(14, 2);\nALTER TABLE orders ALTER COLUMN reference SET DATA TYPE text;\n",
            ),
        ]);
        assert_eq!(ids(&d, "column-type-change"), 0, "{d:#?}");
    }

    #[test]
    fn set_expression_by_version_and_kind() {
        let files = [
            (
                "core/0001_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, gross numeric GENERATED ALWAYS AS (total * 1.2) STORED);\n",
            ),
            (
                "core/0002_vat.sql",
                "ALTER TABLE orders ALTER COLUMN gross SET EXPRESSION AS (total * 1.25);\n",
            ),
        ];
        let messages = |pg, files: &[(&str, &str)]| -> Vec<String> {
            check_ws_pg(pg, files)
                .iter()
                .filter(|x| x.rule == known("column-type-change"))
                .map(|x| x.message.clone())
                .collect()
        };
        assert_eq!(
            messages(16, &files),
            vec!["SET EXPRESSION is PostgreSQL 17 syntax: PostgreSQL 16 rejects the statement"]
        );
        assert_eq!(
            messages(17, &files),
            vec!["SET EXPRESSION on stored generated column `gross` recomputes every row: it rewrites all of existing table `public.orders` under an ACCESS EXCLUSIVE lock"]
        );
        let virtual_column = [
            (
                "core/0001_orders.sql",
                "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, gross numeric GENERATED ALWAYS AS (total * 1.2));\n",
            ),
            files[1],
        ];
        assert!(messages(18, &virtual_column).is_empty());
        assert_eq!(messages(18, &files).len(), 1);
    }

    #[test]
    fn coercions() {
        assert!(binary_coercible("varchar(20)", "varchar(40)"));
        assert!(binary_coercible("character varying(20)", "text"));
        assert!(!binary_coercible("varchar(40)", "varchar(20)"));
        assert!(!binary_coercible("text", "varchar(20)"));
        assert!(binary_coercible("numeric(10,2)", "numeric(12,2)"));
        assert!(!binary_coercible("numeric(10,2)", "numeric(12,3)"));
        assert!(!binary_coercible("int", "bigint"));
        assert!(binary_coercible("integer", "int4"));
    }
}
