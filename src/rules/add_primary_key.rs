use sqlparser::ast::{AlterTableOperation, ColumnOption, TableConstraint};

use super::lock;
use super::tokens;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ADD PRIMARY KEY (...)` (and `ADD COLUMN ... PRIMARY KEY`) on a
    /// table that existed before the migration file, unless it is
    /// `PRIMARY KEY USING INDEX`.
    ///
    /// ## Why is this bad?
    /// Adding a primary key builds its unique index while holding an
    /// `ACCESS EXCLUSIVE` lock (no reads or writes for the whole build), and
    /// first scans the table to set its columns `NOT NULL` if they are not.
    /// An index built beforehand with `CREATE UNIQUE INDEX CONCURRENTLY` can
    /// be turned into the primary key instantly.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE events ADD PRIMARY KEY (id);
    /// -- good: 0002 (no-transaction)
    /// CREATE UNIQUE INDEX CONCURRENTLY events_pkey_idx ON events (id);
    /// -- 0003
    /// ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;
    /// ```
    ///
    /// ## How to fix
    /// Make the columns `NOT NULL` first (see `set-not-null`), build the index
    /// with `CREATE UNIQUE INDEX CONCURRENTLY` in a no-transaction migration,
    /// then `ADD CONSTRAINT ... PRIMARY KEY USING INDEX`.
    pub struct AddPrimaryKey {
        id: "add-primary-key",
        group: LockSafety,
        severity: Error,
        summary: "ADD PRIMARY KEY on an existing table without USING INDEX (builds the index under ACCESS EXCLUSIVE)",
        needs_workspace: false,
    }
}

impl Rule for AddPrimaryKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let region = match op {
                AlterTableOperation::AddConstraint {
                    constraint: TableConstraint::PrimaryKey(pk),
                    ..
                } => pk
                    .name
                    .as_ref()
                    .and_then(ident_region)
                    .or_else(|| Some(tokens::kw_region(cx, "PRIMARY"))),
                AlterTableOperation::AddColumn { column_def, .. }
                    if column_def.options.iter().any(|o| matches!(o.option, ColumnOption::PrimaryKey(_))) =>
                {
                    ident_region(&column_def.name)
                }
                _ => continue,
            };
            out.push(
                Finding::new(
                    region.unwrap_or(cx.stmt.region),
                    format!(
                        "adding a primary key to {} builds its unique index under an ACCESS EXCLUSIVE lock: no reads or writes until it is done",
                        lock::describe(age, &table)
                    ),
                )
                .help(format!(
                    "build it first with `CREATE UNIQUE INDEX CONCURRENTLY <index> ON {} (...)`, then `ADD CONSTRAINT <name> PRIMARY KEY USING INDEX <index>`",
                    at.name
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const EVENTS: &str = "CREATE TABLE events (id bigint NOT NULL, kind text NOT NULL);\n";

    #[test]
    fn fires_on_add_primary_key() {
        let d = check_ws(&[
            ("core/0001_events.sql", EVENTS),
            ("core/0002_events_pk.sql", "ALTER TABLE events ADD PRIMARY KEY (id);\n"),
        ]);
        assert_eq!(ids(&d, "add-primary-key"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "add-primary-key"));
    }

    #[test]
    fn quiet_using_an_index_or_on_a_new_table() {
        let d = check_ws(&[
            (
                "core/0001_events.sql",
                &format!("{EVENTS}ALTER TABLE events ADD CONSTRAINT events_pk PRIMARY KEY (id);\n"),
            ),
            ("core/0002_drop_pk.sql", "ALTER TABLE events DROP CONSTRAINT events_pk;\n"),
            (
                "core/0003_pk.sql",
                "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey_idx;\n",
            ),
        ]);
        assert_eq!(ids(&d, "add-primary-key"), 0, "{d:#?}");
    }
}
