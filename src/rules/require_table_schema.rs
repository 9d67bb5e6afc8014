use sqlparser::ast::{ObjectName, Statement as Ast};

use super::helpers::name_region;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Opt-in: flags CREATE TABLE, ALTER TABLE and CREATE VIEW statements whose
    /// table or view name is not schema-qualified.
    ///
    /// ## Why is this bad?
    /// An unqualified name goes to the first schema of the session's
    /// `search_path`. A migration run by a tool, a role or a connection pooler
    /// with a different `search_path` creates or alters the table somewhere
    /// else, and the mistake shows up only when the application cannot find
    /// its table. Qualified names make a migration mean the same thing
    /// everywhere.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE trips (id uuid PRIMARY KEY);
    /// -- good
    /// CREATE TABLE public.trips (id uuid PRIMARY KEY);
    /// ```
    ///
    /// ## How to fix
    /// Qualify the name with its schema. The rule is off by default (the
    /// canonical Orbis schema relies on `public`); turn it on with
    /// `[rules.require-table-schema] severity = "error"`.
    pub struct RequireTableSchema {
        id: "require-table-schema",
        group: Correctness,
        severity: Off,
        summary: "(opt-in) a table or view name without its schema",
        needs_workspace: false,
    }
}

impl Rule for RequireTableSchema {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let (what, name): (&str, &ObjectName) = match cx.stmt.ast() {
            Some(Ast::CreateTable(ct)) if !ct.temporary => ("table", &ct.name),
            Some(Ast::AlterTable(at)) => ("table", &at.name),
            Some(Ast::CreateView(cv)) => ("view", &cv.name),
            _ => return,
        };
        if name.0.len() > 1 {
            return;
        }
        let schema = cx.catalog.current_schema();
        out.push(
            Finding::new(
                name_region(name).unwrap_or(cx.stmt.region),
                format!("{what} `{name}` is not schema-qualified: it lands in whatever schema search_path names first"),
            )
            .help(format!("write `{schema}.{name}`"))
            .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws_with, ids, render_rule};

    fn turned_on(sql: &str) -> Vec<crate::diag::Diagnostic> {
        check_ws_with(&[("core/0001_trips.sql", sql)], |root| {
            std::fs::create_dir_all(root.join("rules")).unwrap();
            std::fs::write(
                root.join("rules/correctness.toml"),
                "[rules.require-table-schema]\nseverity = \"warning\"\n",
            )
            .unwrap();
        })
    }

    #[test]
    fn off_by_default() {
        let d = check_plain("CREATE TABLE trips (id uuid PRIMARY KEY);");
        assert_eq!(ids(&d, "require-table-schema"), 0, "{d:#?}");
    }

    #[test]
    fn fires_on_unqualified_names_when_turned_on() {
        let d = turned_on("CREATE TABLE trips (id uuid PRIMARY KEY);\nALTER TABLE trips ADD COLUMN title text;\n");
        assert_eq!(ids(&d, "require-table-schema"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-table-schema"));
    }

    #[test]
    fn quiet_on_qualified_names() {
        let d = turned_on("CREATE TABLE public.trips (id uuid PRIMARY KEY);\nCREATE TEMP TABLE scratch (id int);\n");
        assert_eq!(ids(&d, "require-table-schema"), 0, "{d:#?}");
    }
}
