use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::constraint_not_valid::validate_file;
use super::fixes;
use super::lock::{self, TableAge};
use super::tokens;
use super::{ident_region, Finding, Fixing, Rule, RuleMeta, StatementCtx};
use crate::catalog::{ident_name, ConstraintKind, QName, Table};
use crate::diag::{Edit, Fix, Region};
use crate::sql::model::{Model, TableOp};
use crate::sql::quote_ident;

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER COLUMN ... SET NOT NULL`, and (PostgreSQL 18)
    /// `ADD CONSTRAINT ... NOT NULL column` without `NOT VALID`, on a table
    /// that existed before the migration file, unless the column is already
    /// proven: NOT NULL, or (PostgreSQL 12+) a validated
    /// `CHECK (column IS NOT NULL)`. Also flags `ADD ... NOT NULL column` on
    /// a `pg_version` before 18, which rejects it.
    ///
    /// ## Why is this bad?
    /// `SET NOT NULL` scans the whole table to check for NULLs while holding
    /// an `ACCESS EXCLUSIVE` lock: nothing can read or write the table until
    /// the scan ends. PostgreSQL 18 can add the NOT NULL constraint
    /// `NOT VALID` (instant; new rows are checked) and validate it later
    /// under `SHARE UPDATE EXCLUSIVE`, which lets reads and writes continue.
    /// Before 18, the same is done with a `CHECK (column IS NOT NULL)`: since
    /// PostgreSQL 12, `SET NOT NULL` skips the scan when a valid one exists.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
    /// -- good, PostgreSQL 18: 0002
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID;
    /// -- 0003
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;
    /// -- good, PostgreSQL 12 to 17: 0002
    /// ALTER TABLE orders ADD CONSTRAINT orders_customer_id_nn CHECK (customer_id IS NOT NULL) NOT VALID;
    /// -- 0003
    /// ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_nn;
    /// -- 0004
    /// ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
    /// ALTER TABLE orders DROP CONSTRAINT orders_customer_id_nn;
    /// ```
    ///
    /// ## How to fix
    /// On PostgreSQL 18, add `CONSTRAINT <name> NOT NULL <column> NOT VALID`
    /// and `VALIDATE CONSTRAINT <name>` in a later migration: the column is
    /// NOT NULL once it is valid. `strata check --fix` does both (it rewrites
    /// the `SET NOT NULL` in place, or adds `NOT VALID`, and writes the
    /// `VALIDATE` migration). On 12 to 17, add `CHECK (column IS NOT NULL)
    /// NOT VALID`, validate it in a later migration, then `SET NOT NULL`
    /// (instant) and drop the check. Before 12, keep the validated check
    /// instead of `NOT NULL`.
    ///
    /// ## PostgreSQL versions
    /// - 12: a validated `CHECK (column IS NOT NULL)` lets `SET NOT NULL` skip its scan; before, the rule advises keeping the check instead.
    /// - 18: `ADD CONSTRAINT ... NOT NULL column NOT VALID` then `VALIDATE CONSTRAINT` is the advice and the fix; before 18, `ADD ... NOT NULL column` is flagged as a statement PostgreSQL rejects.
    pub struct SetNotNull {
        id: "set-not-null",
        group: LockSafety,
        severity: Error,
        summary: "SET NOT NULL (or, PG 18, ADD NOT NULL without NOT VALID) on an existing table with no proof the column has no NULL (full scan under ACCESS EXCLUSIVE)",
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

/// The name PostgreSQL 18 gives the NOT NULL constraint of `column`
/// (`<table>_<column>_not_null`), as SQL (quoted when it must be); `None`
/// when it would pass the 63-byte limit (PostgreSQL would shorten it).
pub fn not_null_constraint_name(table: &QName, column: &str) -> Option<String> {
    let name = format!("{}_{column}_not_null", table.name);
    (name.len() <= 63).then(|| quote_ident(&name))
}

/// The safe way to make `column` (as written) NOT NULL on `pg_version`, as
/// help text: what `set-not-null` and `add-required-column` advise.
pub fn not_null_path(pg_version: u32, constraint: &str, column: &str) -> String {
    if pg_version >= 18 {
        format!(
            "add `CONSTRAINT {constraint} NOT NULL {column} NOT VALID` (instant), then `VALIDATE CONSTRAINT {constraint}` in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes continue); the column is NOT NULL once it is valid"
        )
    } else if pg_version >= 12 {
        format!(
            "add `CHECK ({column} IS NOT NULL) NOT VALID`, VALIDATE it in a later migration, then SET NOT NULL (no scan since PostgreSQL 12) and drop the check"
        )
    } else {
        format!(
            "PostgreSQL {pg_version} always scans for SET NOT NULL: keep a validated `CHECK ({column} IS NOT NULL)` (added NOT VALID, then VALIDATE) instead"
        )
    }
}

/// One way a statement makes a column NOT NULL.
enum NotNullOp<'a> {
    /// `ALTER COLUMN ... SET NOT NULL`.
    Set,
    /// `ADD [CONSTRAINT name] NOT NULL column [NOT VALID]`.
    Add { name: Option<&'a str>, not_valid: bool },
}

impl Rule for SetNotNull {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if let Some((at, age, q)) = lock::live_alter(cx) {
            for (i, op) in at.operations.iter().enumerate() {
                if let AlterTableOperation::AlterColumn {
                    column_name,
                    op: AlterColumnOperation::SetNotNull,
                } = op
                {
                    let region = ident_region(column_name).unwrap_or(cx.stmt.region);
                    let written = column_name.to_string();
                    self.judge(
                        cx,
                        age,
                        &q,
                        &ident_name(column_name),
                        &written,
                        NotNullOp::Set,
                        Some(i),
                        region,
                        out,
                    );
                }
            }
            return;
        }
        // What only PostgreSQL's grammar reads: `ADD ... NOT NULL column`
        // (sqlparser does not know NOT NULL table constraints).
        let Some(Model::AlterTable { table, ops }) = cx.stmt.model() else {
            return;
        };
        let q = cx.catalog.resolve_parts(table);
        let age = lock::table_age(cx.catalog, cx.file, cx.index, &q);
        for (i, op) in ops.iter().enumerate() {
            let (column, how) = match op {
                TableOp::SetNotNull(c) => (c, NotNullOp::Set),
                TableOp::AddNotNull { name, column, not_valid } => (
                    column,
                    NotNullOp::Add {
                        name: name.as_deref(),
                        not_valid: *not_valid,
                    },
                ),
                _ => continue,
            };
            if let NotNullOp::Add { .. } = how {
                if let Some(f) = super::helpers::newer_syntax(cx, "NULL", &format!("`ADD ... NOT NULL {column}`"), 18) {
                    out.push(f.help(not_null_path(cx.env.pg_version, "", &quote_ident(column))));
                    continue;
                }
            }
            if age.is_live() {
                let region = tokens::word_region(cx, column).unwrap_or_else(|| tokens::kw_region(cx, "NULL"));
                self.judge(cx, age, &q, column, &quote_ident(column), how, Some(i), region, out);
            }
        }
    }
}

/// A folded name as SQL (quoted unless it is a plain lower-case identifier).
/// The table name of an `ALTER TABLE` as written.
impl SetNotNull {
    /// The finding for one operation that makes `column` of the live table
    /// `q` NOT NULL, unless the column is proven already.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        cx: &StatementCtx,
        age: TableAge,
        q: &QName,
        column: &str,
        written: &str,
        how: NotNullOp,
        op_index: Option<usize>,
        region: Region,
        out: &mut Vec<Finding>,
    ) {
        let pg = cx.env.pg_version;
        let table = cx.catalog.table(q);
        if let NotNullOp::Add { not_valid: true, .. } = how {
            return;
        }
        if table.is_some_and(|t| t.column(column).is_some_and(|c| c.not_null) || (pg >= 12 && has_valid_not_null_check(t, column))) {
            return;
        }
        let describe = lock::describe(age, q);
        // PostgreSQL 18: SET NOT NULL validates a NOT VALID NOT NULL
        // constraint of the column, with the scan under ACCESS EXCLUSIVE.
        if let (NotNullOp::Set, Some(k)) = (&how, table.and_then(|t| t.invalid_not_null(column))) {
            let name = k.name.clone().unwrap_or_default();
            out.push(
                Finding::new(
                    region,
                    format!(
                        "SET NOT NULL on `{column}` validates its NOT VALID constraint `{name}` by scanning all of {describe} under an ACCESS EXCLUSIVE lock"
                    ),
                )
                .help(format!(
                    "`ALTER TABLE {q} VALIDATE CONSTRAINT {name}` instead (SHARE UPDATE EXCLUSIVE: reads and writes continue); the column is NOT NULL once it is valid"
                )),
            );
            return;
        }
        let constraint = not_null_constraint_name(q, column);
        let message = match how {
            NotNullOp::Set => format!(
                "SET NOT NULL on `{column}` scans all of {describe} under an ACCESS EXCLUSIVE lock: no reads or writes until it ends"
            ),
            NotNullOp::Add { name, .. } => format!(
                "NOT NULL constraint{} on `{column}` added without NOT VALID: it scans all of {describe} under an ACCESS EXCLUSIVE lock",
                name.map_or(String::new(), |n| format!(" `{n}`"))
            ),
        };
        let help_name = match &how {
            NotNullOp::Add { name: Some(n), .. } => quote_ident(n),
            _ => constraint.clone().unwrap_or_else(|| "<name>".to_string()),
        };
        let fix: Fixing = if pg < 18 {
            Fixing::Nothing
        } else {
            self.fix(cx, q, written, &how, op_index, constraint.as_deref()).into()
        };
        out.push(
            Finding::new(region, message)
                .help(not_null_path(pg, &help_name, written))
                .with_fix(fix),
        );
    }

    /// PostgreSQL 18's path as edits: the operation becomes (or gets)
    /// `NOT VALID`, and a new migration validates it.
    fn fix(
        &self,
        cx: &StatementCtx,
        q: &QName,
        column: &str,
        how: &NotNullOp,
        op_index: Option<usize>,
        default_name: Option<&str>,
    ) -> Result<Fix, String> {
        fixes::editable(cx.file)?;
        let toks = tokens::tokens(&cx.file.parsed.source, cx.stmt);
        let ops = tokens::alter_table_operations(&toks);
        let unplaced = || "strata could not find the operation in this statement".to_string();
        let range = op_index.and_then(|i| ops.get(i)).filter(|r| !r.is_empty()).ok_or_else(unplaced)?;
        let (first, last) = (&toks[range.start], &toks[range.end - 1]);
        let table = tokens::alter_table_name(&toks)
            .map(|(n, _)| n.to_string())
            .unwrap_or_else(|| q.to_string());
        let (edit, name) = match how {
            NotNullOp::Set => {
                let name = default_name.ok_or("the constraint's name would pass 63 bytes: write the NOT VALID constraint by hand")?;
                (
                    Edit {
                        start: first.bytes.start,
                        end: last.bytes.end,
                        replacement: format!("ADD CONSTRAINT {name} NOT NULL {column} NOT VALID"),
                    },
                    name.to_string(),
                )
            }
            NotNullOp::Add { name, .. } => {
                let name = match name {
                    Some(n) => quote_ident(n),
                    None => default_name
                        .ok_or("the constraint's name would pass 63 bytes: name it (ADD CONSTRAINT <name> NOT NULL ...)")?
                        .to_string(),
                };
                (fixes::insert_after(last, " NOT VALID"), name)
            }
        };
        Ok(Fix {
            description: "add the NOT NULL constraint NOT VALID and validate it in the next migration".to_string(),
            edits: vec![edit],
            new_file: Some(validate_file(cx, &table, &name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::is_not_null_check;
    use crate::diag::Diagnostic;
    use crate::rules::testing::{check_ws, check_ws_pg, finding, fixed_text, ids, known, render_rule};

    fn help(d: &[Diagnostic]) -> String {
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("set-not-null")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        f[0].help.clone().unwrap_or_default()
    }

    const SET_NOT_NULL: [(&str, &str); 2] = [
        ("core/0001_orders.sql", ORDERS),
        (
            "core/0002_customer_required.sql",
            "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n",
        ),
    ];

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
        assert_eq!(ids(&check_ws_pg(12, &files), "set-not-null"), 0);
        assert_eq!(ids(&check_ws_pg(18, &files), "set-not-null"), 0);
        // PostgreSQL 11 scans anyway.
        let d = check_ws_pg(11, &files);
        assert!(
            help(&d).starts_with("PostgreSQL 11 always scans for SET NOT NULL: keep a validated `CHECK (customer_id IS NOT NULL)`"),
            "{d:#?}"
        );
    }

    #[test]
    fn the_advice_is_a_check_before_18_and_a_not_valid_not_null_since() {
        let d = check_ws_pg(17, &SET_NOT_NULL);
        assert!(
            help(&d).starts_with("add `CHECK (customer_id IS NOT NULL) NOT VALID`, VALIDATE it in a later migration, then SET NOT NULL"),
            "{d:#?}"
        );
        assert_eq!(fixed_text(&d, "set-not-null"), None);

        let d = check_ws_pg(18, &SET_NOT_NULL);
        assert!(
            help(&d).starts_with("add `CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID` (instant), then `VALIDATE CONSTRAINT orders_customer_id_not_null` in a later migration"),
            "{d:#?}"
        );
        assert_eq!(
            fixed_text(&d, "set-not-null").unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID;\n"
        );
        let fix = finding(&d, "set-not-null").fix.clone().unwrap();
        let new_file = fix.new_file.unwrap();
        assert_eq!(new_file.name, "validate_orders_customer_id_not_null");
        assert!(
            new_file
                .content
                .ends_with("\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;\n"),
            "{}",
            new_file.content
        );
    }

    #[test]
    fn the_fix_rewrites_one_operation_of_several_and_quotes_names() {
        let d = check_ws_pg(
            18,
            &[
                (
                    "core/0001_orders.sql",
                    "CREATE TABLE app.\"Orders\" (id bigint PRIMARY KEY, \"Customer\" bigint, note text);\n",
                ),
                (
                    "core/0002_required.sql",
                    "ALTER TABLE app.\"Orders\" ADD COLUMN paid boolean, ALTER COLUMN \"Customer\" SET NOT NULL;\n",
                ),
            ],
        );
        assert_eq!(
            fixed_text(&d, "set-not-null").unwrap(),
            "ALTER TABLE app.\"Orders\" ADD COLUMN paid boolean, ADD CONSTRAINT \"Orders_Customer_not_null\" NOT NULL \"Customer\" NOT VALID;\n"
        );
        let fix = finding(&d, "set-not-null").fix.clone().unwrap();
        assert!(fix
            .new_file
            .unwrap()
            .content
            .ends_with("ALTER TABLE app.\"Orders\" VALIDATE CONSTRAINT \"Orders_Customer_not_null\";\n"));
    }

    /// The PostgreSQL 18 path, as the fix writes it, is judged safe: the
    /// NOT VALID constraint is modeled, and VALIDATE makes the column NOT
    /// NULL, so a later SET NOT NULL has nothing to scan.
    #[test]
    fn the_not_valid_not_null_path_is_safe_on_18() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_nn.sql",
                "ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null NOT NULL customer_id NOT VALID;\n",
            ),
            (
                "core/0003_validate.sql",
                "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;\n",
            ),
            (
                "core/0004_not_null.sql",
                "ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;\n",
            ),
        ];
        let d = check_ws_pg(18, &files);
        for rule in ["set-not-null", "unparsed-statement", "syntax-error", "constraint-not-valid"] {
            assert_eq!(ids(&d, rule), 0, "{rule}: {d:#?}");
        }
        // Before 18 PostgreSQL rejects the NOT NULL table constraint.
        let d = check_ws_pg(17, &files);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("set-not-null")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert_eq!(
            f[0].message,
            "`ADD ... NOT NULL customer_id` is PostgreSQL 18 syntax: PostgreSQL 17 rejects the statement"
        );
        // Without the VALIDATE, SET NOT NULL validates the constraint itself,
        // scanning under ACCESS EXCLUSIVE.
        let d = check_ws_pg(18, &[files[0], files[1], files[3]]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("set-not-null")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(
            f[0].message
                .contains("validates its NOT VALID constraint `orders_customer_id_not_null`"),
            "{}",
            f[0].message
        );
        assert!(f[0]
            .help
            .as_deref()
            .unwrap()
            .starts_with("`ALTER TABLE public.orders VALIDATE CONSTRAINT orders_customer_id_not_null` instead"));
    }

    #[test]
    fn a_not_null_constraint_without_not_valid_scans_on_18() {
        let d = check_ws_pg(
            18,
            &[
                ("core/0001_orders.sql", ORDERS),
                (
                    "core/0002_nn.sql",
                    "ALTER TABLE orders ADD CONSTRAINT orders_customer_nn NOT NULL customer_id;\n",
                ),
            ],
        );
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("set-not-null")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(
            f[0].message
                .starts_with("NOT NULL constraint `orders_customer_nn` on `customer_id` added without NOT VALID"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].region.start, crate::diag::Pos::new(1, 63));
        assert_eq!(
            fixed_text(&d, "set-not-null").unwrap(),
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_nn NOT NULL customer_id NOT VALID;\n"
        );
        // Validating it in the same transaction gains nothing.
        let d = check_ws_pg(
            18,
            &[
                ("core/0001_orders.sql", ORDERS),
                (
                    "core/0002_nn.sql",
                    "ALTER TABLE orders ADD NOT NULL customer_id NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;\n",
                ),
            ],
        );
        assert_eq!(ids(&d, "set-not-null"), 0, "{d:#?}");
        assert_eq!(ids(&d, "constraint-not-valid"), 1, "{d:#?}");
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
