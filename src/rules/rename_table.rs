use sqlparser::ast::{AlterTableOperation, RenameTableNameKind};

use super::lock;
use super::tokens;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... RENAME TO` on a table that existed before the
    /// migration file.
    ///
    /// ## Why is this bad?
    /// The rename is instant, but every query, view, function and deployed
    /// application version that names the old table fails from the moment it
    /// commits. In a fleet migrated in waves, old and new code run against
    /// both schemas for hours.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE messages RENAME TO chat_messages;
    /// -- good: rename, and keep the old name working until no code uses it
    /// ALTER TABLE messages RENAME TO chat_messages;
    /// CREATE VIEW messages AS SELECT * FROM chat_messages;
    /// -- (and drop the view in a later release; suppress this finding with a reason)
    /// ```
    ///
    /// ## How to fix
    /// Keep the old name working while deployed code still uses it (an
    /// updatable view with the old name in the same migration), then drop the
    /// view in a later release. Or create the new table and migrate data over
    /// (expand and contract).
    pub struct RenameTable {
        id: "rename-table",
        group: LockSafety,
        severity: Error,
        summary: "RENAME TO on an existing table (breaks deployed code that uses the old name)",
        needs_workspace: false,
    }
}

impl Rule for RenameTable {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::To(new) | RenameTableNameKind::As(new),
            } = op
            else {
                continue;
            };
            out.push(
                Finding::new(
                    tokens::kw_region(cx, "RENAME"),
                    format!(
                        "renaming {} to `{new}` breaks every deployed query, view and function that still uses the old name",
                        lock::describe(age, &table)
                    ),
                )
                .help(format!(
                    "keep the old name working until no deployed code uses it (e.g. `CREATE VIEW {} AS SELECT * FROM {new}` in the same migration)",
                    at.name
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const MESSAGES: &str = "CREATE TABLE messages (id bigint PRIMARY KEY, body text);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_messages.sql", MESSAGES),
            ("core/0002_rename.sql", "ALTER TABLE messages RENAME TO chat_messages;\n"),
        ]);
        assert_eq!(ids(&d, "rename-table"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "rename-table"));
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_messages.sql",
            &format!("{MESSAGES}ALTER TABLE messages RENAME TO chat_messages;\n"),
        )]);
        assert_eq!(ids(&d, "rename-table"), 0, "{d:#?}");
    }
}
