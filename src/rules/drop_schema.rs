use sqlparser::ast::{ObjectType, Statement};

use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `DROP SCHEMA` of a schema that existed before the migration file.
    ///
    /// ## Why is this bad?
    /// `DROP SCHEMA ... CASCADE` drops every table, view, function and type
    /// in the schema, and everything elsewhere that depends on them, with all
    /// their data, in one statement no migration can undo. Without `CASCADE`
    /// it fails as soon as the schema is not empty, which usually means the
    /// migration was written against a development database.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// DROP SCHEMA reporting CASCADE;
    /// -- good: drop the objects one by one, each reviewed, then the empty schema
    /// DROP VIEW reporting.daily_totals;
    /// DROP SCHEMA reporting;
    /// ```
    ///
    /// ## How to fix
    /// Drop what the schema holds explicitly (each drop is reviewed by its own
    /// rule), then the empty schema without `CASCADE`; record the decision
    /// with `-- strata-ignore drop-schema: <reason>`.
    pub struct DropSchema {
        id: "drop-schema",
        group: LockSafety,
        severity: Error,
        summary: "DROP SCHEMA of an existing schema (drops everything in it with CASCADE)",
        needs_workspace: false,
    }
}

impl Rule for DropSchema {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::Drop {
            object_type: ObjectType::Schema,
            names,
            cascade,
            ..
        }) = cx.stmt.ast()
        else {
            return;
        };
        for name in names {
            let schema = cx.catalog.resolve(name).name;
            if cx.catalog.schemas.get(&schema).is_some_and(|o| o.file == cx.file.id) {
                continue;
            }
            let n = cx.catalog.tables.keys().filter(|k| k.schema == schema).count();
            let tables = format!("{n} known table{}", if n == 1 { "" } else { "s" });
            let message = if *cascade {
                format!("DROP SCHEMA `{schema}` CASCADE drops every object in it ({tables}) and everything that depends on them, with their data")
            } else {
                format!("DROP SCHEMA `{schema}` drops an existing schema (and fails unless it is empty: {tables})")
            };
            out.push(
                Finding::new(cx.stmt.region, message)
                    .help("drop the objects explicitly, each reviewed, then the empty schema without CASCADE; record it with `-- strata-ignore drop-schema: <reason>`"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    #[test]
    fn fires_on_an_existing_schema() {
        let d = check_ws(&[
            (
                "core/0001_reporting.sql",
                "CREATE SCHEMA reporting;\nCREATE TABLE reporting.daily (day date PRIMARY KEY, total numeric);\n",
            ),
            ("core/0002_drop_reporting.sql", "DROP SCHEMA reporting CASCADE;\n"),
        ]);
        assert_eq!(ids(&d, "drop-schema"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "drop-schema"));
    }

    #[test]
    fn quiet_on_a_schema_created_in_the_same_file() {
        let d = check_ws(&[("core/0001_tmp.sql", "CREATE SCHEMA staging;\nDROP SCHEMA staging;\n")]);
        assert_eq!(ids(&d, "drop-schema"), 0, "{d:#?}");
    }
}
