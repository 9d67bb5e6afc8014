use sqlparser::ast::AlterTableOperation;

use super::lock;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... DROP COLUMN` on a table that existed before the
    /// migration file.
    ///
    /// ## Why is this bad?
    /// The data is gone for good, and every deployed query that still reads
    /// or writes the column (`SELECT *` mapped onto a struct, an `INSERT` that
    /// names it) fails from the moment the migration commits. Dropping a
    /// column is the last step of an expand-and-contract change; this rule
    /// asks to confirm that no deployed code uses the column any more.
    ///
    /// ## Example
    /// ```sql
    /// -- risky while the running release still reads it
    /// ALTER TABLE contacts DROP COLUMN legacy_phone;
    /// -- good, once no deployed code uses it
    /// -- strata-ignore drop-column: unused since release 2024.06, see #412
    /// ALTER TABLE contacts DROP COLUMN legacy_phone;
    /// ```
    ///
    /// ## How to fix
    /// Stop using the column in the application one release before, then drop
    /// it and record why with `-- strata-ignore drop-column: <reason>`.
    pub struct DropColumn {
        id: "drop-column",
        group: LockSafety,
        severity: Warning,
        summary: "DROP COLUMN on an existing table (data loss; breaks deployed code still using it)",
        needs_workspace: false,
    }
}

impl Rule for DropColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::DropColumn { column_names, .. } = op else {
                continue;
            };
            for column in column_names {
                out.push(
                    Finding::new(
                        ident_region(column).unwrap_or(cx.stmt.region),
                        format!(
                            "dropping column `{}` of {} loses its data and breaks deployed code that still uses it",
                            crate::catalog::ident_name(column),
                            lock::describe(age, &table)
                        ),
                    )
                    .help("stop using the column one release before; then record it with `-- strata-ignore drop-column: <reason>`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CONTACTS: &str = "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text, legacy_phone text);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            ("core/0002_drop_legacy.sql", "ALTER TABLE contacts DROP COLUMN legacy_phone;\n"),
        ]);
        assert_eq!(ids(&d, "drop-column"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "drop-column"));
    }

    #[test]
    fn quiet_on_a_new_table_or_when_suppressed() {
        let d = check_ws(&[
            (
                "core/0001_contacts.sql",
                &format!("{CONTACTS}ALTER TABLE contacts DROP COLUMN legacy_phone;\n"),
            ),
            (
                "core/0002_drop.sql",
                "-- strata-ignore drop-column: unused since release 2024.06\nALTER TABLE contacts DROP COLUMN phone;\n",
            ),
        ]);
        assert_eq!(ids(&d, "drop-column"), 0, "{d:#?}");
        assert_eq!(ids(&d, "unused-suppression"), 0, "{d:#?}");
    }
}
