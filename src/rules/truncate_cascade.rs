use sqlparser::ast::{CascadeOption, Statement};

use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `TRUNCATE ... CASCADE`.
    ///
    /// ## Why is this bad?
    /// `CASCADE` also empties every table that has a foreign key to the named
    /// tables, and every table referencing those, recursively: a truncate of
    /// a lookup table can wipe orders, invoices and messages. The statement
    /// does not list what it empties, and nothing can bring it back. Each
    /// table is locked `ACCESS EXCLUSIVE` too.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// TRUNCATE currencies CASCADE;
    /// -- good: name every table to empty
    /// TRUNCATE import_rows, import_batches;
    /// ```
    ///
    /// ## How to fix
    /// Name every table to empty (without `CASCADE`, PostgreSQL refuses to
    /// truncate a table others reference, which is the safety net), or delete
    /// the rows that must go.
    pub struct TruncateCascade {
        id: "truncate-cascade",
        group: LockSafety,
        severity: Error,
        summary: "TRUNCATE ... CASCADE (silently empties every referencing table)",
        needs_workspace: false,
    }
}

impl Rule for TruncateCascade {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::Truncate(t)) = cx.stmt.ast() else { return };
        if t.cascade != Some(CascadeOption::Cascade) {
            return;
        }
        let names: Vec<String> = t.table_names.iter().map(|n| format!("`{}`", n.name)).collect();
        out.push(
            Finding::new(
                super::tokens::kw_region(cx, "CASCADE"),
                format!(
                    "TRUNCATE {} CASCADE also empties every table that references them, recursively",
                    names.join(", ")
                ),
            )
            .help("name every table to empty and drop CASCADE (PostgreSQL then refuses to empty a referenced table)"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const TABLES: &str = "CREATE TABLE currencies (code text PRIMARY KEY);\nCREATE TABLE orders (id bigint PRIMARY KEY, currency text REFERENCES currencies (code));\n";

    #[test]
    fn fires_on_cascade() {
        let d = check_ws(&[
            ("core/0001_tables.sql", TABLES),
            ("core/0002_reset.sql", "TRUNCATE currencies CASCADE;\n"),
        ]);
        assert_eq!(ids(&d, "truncate-cascade"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "truncate-cascade"));
    }

    #[test]
    fn quiet_without_cascade() {
        let d = check_ws(&[
            ("core/0001_tables.sql", TABLES),
            ("core/0002_reset.sql", "TRUNCATE orders, currencies RESTRICT;\n"),
        ]);
        assert_eq!(ids(&d, "truncate-cascade"), 0, "{d:#?}");
    }
}
