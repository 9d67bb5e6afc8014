use sqlparser::ast::{AlterTableOperation, ColumnOption, TableConstraint};

use super::lock;
use super::tokens;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ADD UNIQUE (...)` / `ADD CONSTRAINT ... UNIQUE (...)` (and
    /// `ADD COLUMN ... UNIQUE`) on a table that existed before the migration
    /// file, unless it is `UNIQUE USING INDEX`.
    ///
    /// ## Why is this bad?
    /// The constraint's unique index is built while the `ALTER TABLE` holds an
    /// `ACCESS EXCLUSIVE` lock: no reads or writes for the whole build. An
    /// index built beforehand with `CREATE UNIQUE INDEX CONCURRENTLY` can be
    /// attached as the constraint instantly.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE contacts ADD CONSTRAINT contacts_phone_key UNIQUE (phone);
    /// -- good: 0002 (no-transaction)
    /// CREATE UNIQUE INDEX CONCURRENTLY contacts_phone_idx ON contacts (phone);
    /// -- 0003
    /// ALTER TABLE contacts ADD CONSTRAINT contacts_phone_key UNIQUE USING INDEX contacts_phone_idx;
    /// ```
    ///
    /// ## How to fix
    /// Build the index with `CREATE UNIQUE INDEX CONCURRENTLY` in a
    /// no-transaction migration, then `ADD CONSTRAINT ... UNIQUE USING INDEX`
    /// (or keep the unique index alone if nothing needs the constraint).
    pub struct UniqueConstraint {
        id: "unique-constraint",
        group: LockSafety,
        severity: Error,
        summary: "ADD UNIQUE on an existing table without USING INDEX (builds the index under ACCESS EXCLUSIVE)",
        needs_workspace: false,
    }
}

impl Rule for UniqueConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let (region, name) = match op {
                AlterTableOperation::AddConstraint {
                    constraint: TableConstraint::Unique(u),
                    ..
                } => (
                    u.name
                        .as_ref()
                        .and_then(ident_region)
                        .or_else(|| Some(tokens::kw_region(cx, "UNIQUE"))),
                    u.name.as_ref().map(|n| n.to_string()),
                ),
                AlterTableOperation::AddColumn { column_def, .. }
                    if column_def.options.iter().any(|o| matches!(o.option, ColumnOption::Unique(_))) =>
                {
                    (ident_region(&column_def.name), None)
                }
                _ => continue,
            };
            let label = name.as_deref().map_or(String::new(), |n| format!(" `{n}`"));
            out.push(
                Finding::new(
                    region.unwrap_or(cx.stmt.region),
                    format!(
                        "UNIQUE constraint{label} on {} builds its index under an ACCESS EXCLUSIVE lock: no reads or writes until it is done",
                        lock::describe(age, &table)
                    ),
                )
                .help(format!(
                    "build `CREATE UNIQUE INDEX CONCURRENTLY <index> ON {} (...)` first, then `ADD CONSTRAINT {} UNIQUE USING INDEX <index>`",
                    at.name,
                    name.as_deref().unwrap_or("<name>")
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CONTACTS: &str = "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text NOT NULL);\n";

    #[test]
    fn fires_on_add_unique() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            (
                "core/0002_phone_unique.sql",
                "ALTER TABLE contacts ADD CONSTRAINT contacts_phone_key UNIQUE (phone);\n",
            ),
        ]);
        assert_eq!(ids(&d, "unique-constraint"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "unique-constraint"));
    }

    #[test]
    fn quiet_using_an_index_or_on_a_new_table() {
        let d = check_ws(&[
            (
                "core/0001_contacts.sql",
                &format!("{CONTACTS}ALTER TABLE contacts ADD UNIQUE (phone);\n"),
            ),
            (
                "core/0002_phone.sql",
                "ALTER TABLE contacts ADD CONSTRAINT contacts_phone_key UNIQUE USING INDEX contacts_phone_idx;\n",
            ),
        ]);
        assert_eq!(ids(&d, "unique-constraint"), 0, "{d:#?}");
    }
}
