use sqlparser::ast::AlterTableOperation;

use super::lock;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... RENAME COLUMN` on a table that existed before
    /// the migration file.
    ///
    /// ## Why is this bad?
    /// The rename is instant, but every query that names the old column fails
    /// from the moment it commits: the application version still running
    /// during a deploy, workers, reports, views and functions written with
    /// the old name. In a fleet migrated in waves, old and new code run
    /// against both schemas for hours.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE contacts RENAME COLUMN phone TO phone_e164;
    /// -- good: expand, migrate, contract over several releases
    /// ALTER TABLE contacts ADD COLUMN phone_e164 text;
    /// -- the application writes both, a backfill copies, reads move over,
    /// -- and a later migration drops `phone`
    /// ```
    ///
    /// ## How to fix
    /// Expand and contract: add the new column, write both, backfill, move
    /// reads to the new column, and drop the old one once no deployed code
    /// uses it. When a rename is really safe (nothing reads the table yet),
    /// suppress with `-- strata-ignore rename-column: <reason>`.
    pub struct RenameColumn {
        id: "rename-column",
        group: LockSafety,
        severity: Error,
        summary: "RENAME COLUMN on an existing table (breaks deployed code that uses the old name)",
        needs_workspace: false,
    }
}

impl Rule for RenameColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } = op
            else {
                continue;
            };
            out.push(
                Finding::new(
                    ident_region(old_column_name).unwrap_or(cx.stmt.region),
                    format!(
                        "renaming column `{old}` of {} to `{new}` breaks every deployed query that still uses `{old}`",
                        lock::describe(age, &table),
                        old = crate::catalog::ident_name(old_column_name),
                        new = crate::catalog::ident_name(new_column_name),
                    ),
                )
                .help("expand and contract: add the new column, write both, backfill, move reads, drop the old column in a later release"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CONTACTS: &str = "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text NOT NULL);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            (
                "core/0002_rename_phone.sql",
                "ALTER TABLE contacts RENAME COLUMN phone TO phone_e164;\n",
            ),
        ]);
        assert_eq!(ids(&d, "rename-column"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "rename-column"));
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_contacts.sql",
            &format!("{CONTACTS}ALTER TABLE contacts RENAME COLUMN phone TO phone_e164;\n"),
        )]);
        assert_eq!(ids(&d, "rename-column"), 0, "{d:#?}");
    }
}
