use sqlparser::ast::{ObjectType, Statement};

use super::lock::{self, age_of};
use super::{glob_match, string_list, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `DROP TABLE` of a table that existed before the migration file
    /// (tables created and dropped in the same file are fine).
    ///
    /// ## Why is this bad?
    /// The data is gone for good: a migration cannot be rolled back past a
    /// drop. Deployed code that still uses the table fails from the moment
    /// it commits, and `DROP TABLE` takes an `ACCESS EXCLUSIVE` lock on the
    /// table and on the tables whose foreign keys point at it.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// DROP TABLE legacy_sessions;
    /// -- good, once nothing uses it and the data is archived
    /// -- strata-ignore drop-table: archived to s3://backups/legacy_sessions (#233)
    /// DROP TABLE legacy_sessions;
    /// ```
    ///
    /// ## How to fix
    /// Stop using the table one release before, archive what must be kept,
    /// then drop it with `-- strata-ignore drop-table: <reason>`. Scratch
    /// tables that are dropped routinely can be listed in `allow_tables`.
    ///
    /// ## Options
    /// `allow_tables`: name patterns (`*` wildcards; `name` or
    /// `schema.name`) of tables that may be dropped.
    pub struct DropTable {
        id: "drop-table",
        group: LockSafety,
        severity: Error,
        summary: "DROP TABLE of an existing table (data loss; breaks deployed code)",
        needs_workspace: false,
    }
}

#[derive(Debug, Clone, Default)]
pub struct DropTableRule {
    allow: Vec<String>,
}

impl Rule for DropTableRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(list) = string_list(options, "allow_tables")? {
            self.allow = list;
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::Drop {
            object_type: ObjectType::Table,
            names,
            ..
        }) = cx.stmt.ast()
        else {
            return;
        };
        for name in names {
            let age = age_of(cx, name);
            let q = cx.catalog.resolve(name);
            if !age.is_live() || self.allow.iter().any(|p| glob_match(p, &q.name) || glob_match(p, &q.to_string())) {
                continue;
            }
            out.push(
                Finding::new(
                    cx.stmt.region,
                    format!("dropping {} destroys its data and breaks deployed code that still uses it", lock::describe(age, &q)),
                )
                .help("stop using it one release before and archive what must be kept; then record it with `-- strata-ignore drop-table: <reason>`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_with, ids, render_rule};

    const SESSIONS: &str = "CREATE TABLE legacy_sessions (id uuid PRIMARY KEY, data jsonb);\nCREATE TABLE import_tmp (line text);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_sessions.sql", SESSIONS),
            ("core/0002_drop_sessions.sql", "DROP TABLE legacy_sessions;\n"),
        ]);
        assert_eq!(ids(&d, "drop-table"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "drop-table"));
    }

    #[test]
    fn quiet_on_new_and_allowed_tables() {
        let d = check_ws_with(
            &[
                ("core/0001_sessions.sql", "CREATE TABLE scratch (x int);\nDROP TABLE scratch;\n"),
                ("core/0002_import.sql", SESSIONS),
                ("core/0003_drop.sql", "DROP TABLE IF EXISTS import_tmp;\n"),
            ],
            |root| {
                std::fs::create_dir_all(root.join("rules")).unwrap();
                std::fs::write(root.join("rules/lock.toml"), "[rules.drop-table]\nallow_tables = [\"*_tmp\"]\n").unwrap();
            },
        );
        assert_eq!(ids(&d, "drop-table"), 0, "{d:#?}");
    }
}
