//! `ddl-in-function`: a function whose body changes the schema when called.

use sqlparser::ast::Statement as Ast;

use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::sql::{BodyKind, Model};

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement inside a function or procedure body that changes
    /// the schema (CREATE, ALTER, DROP, GRANT, ...): it runs whenever the
    /// function is called, not when the migration runs.
    ///
    /// ## Why is this bad?
    /// Schema changes made by application calls escape the migration
    /// history: the canonical schema, drift detection and the governance
    /// rules never see the table the function creates, and the locks it
    /// takes hit production at an unknown time.
    ///
    /// ## Example
    /// ```sql
    /// CREATE FUNCTION add_partition() RETURNS void LANGUAGE plpgsql AS $$
    /// BEGIN
    ///   CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    /// END $$;
    /// ```
    ///
    /// ## How to fix
    /// Write the change as a migration. When a function really must manage
    /// schema (partition maintenance), review it and suppress with
    /// `-- strata-ignore ddl-in-function: <reason>` on the CREATE FUNCTION.
    pub struct DdlInFunction {
        id: "ddl-in-function",
        group: Review,
        severity: Warning,
        summary: "a function body that changes the schema when called",
        needs_workspace: false,
    }
}

/// What kind of schema change a statement is, when it is one.
fn ddl(cx: &StatementCtx) -> Option<&'static str> {
    if let Some(ast) = cx.stmt.ast() {
        return Some(match ast {
            Ast::CreateTable(_) => "CREATE TABLE",
            Ast::AlterTable(_) => "ALTER TABLE",
            Ast::CreateIndex(_) => "CREATE INDEX",
            Ast::Drop { .. } => "DROP",
            Ast::CreateView(_) => "CREATE VIEW",
            Ast::CreateFunction(_) => "CREATE FUNCTION",
            Ast::CreatePolicy(_) | Ast::AlterPolicy(_) | Ast::DropPolicy(_) => "a policy change",
            Ast::CreateSchema { .. } => "CREATE SCHEMA",
            Ast::CreateType { .. } | Ast::AlterType(_) => "a type change",
            Ast::Grant(_) | Ast::Revoke(_) => "a privilege change",
            Ast::Truncate(_) => "TRUNCATE",
            _ => return None,
        });
    }
    Some(match cx.stmt.model()? {
        Model::AlterTable { .. } => "ALTER TABLE",
        Model::CreateDomain(_) | Model::AlterDomain { .. } => "a domain change",
        Model::CreateTrigger { .. } | Model::CreateEventTrigger { .. } => "CREATE TRIGGER",
        Model::Drop { .. } => "DROP",
        Model::Rename { .. } => "a rename",
        Model::Grant(_) | Model::DefaultPrivileges { .. } => "a privilege change",
        Model::CreateFunction(_) => "CREATE FUNCTION",
        Model::CreateTableLike { .. } => "CREATE TABLE",
        Model::CreateIndexOnly { .. } => "CREATE INDEX",
        Model::Untracked(what) => what,
        _ => return None,
    })
}

impl Rule for DdlInFunction {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn judges_function_bodies(&self) -> bool {
        true
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(body) = cx.stmt.body.filter(|b| b.kind == BodyKind::Function) else {
            return;
        };
        let Some(what) = ddl(cx) else { return };
        out.push(
            Finding::new(
                cx.stmt.region,
                format!("this function runs {what} whenever it is called: the change is not part of the migration history"),
            )
            .help("move the schema change into a migration; suppress with `-- strata-ignore ddl-in-function: <reason>` when the function must manage schema")
            .at_statement(body.parent),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Pos;
    use crate::rules::testing::{check_plain, ids, known};

    #[test]
    fn fires_inside_function_bodies_at_the_statement() {
        let d = check_plain(
            "CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  PERFORM 1;\n  CREATE TABLE made (id int);\n  EXECUTE 'DROP TABLE made';\nEND $$;\n",
        );
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("ddl-in-function")).collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert_eq!(f[0].region.start, Pos::new(4, 3));
        assert!(f[0].message.contains("CREATE TABLE"));
        assert!(f[1].message.contains("DROP"));
        assert_eq!(f[1].region.start, Pos::new(5, 12));
    }

    #[test]
    fn an_object_the_catalog_does_not_keep_is_ddl_too() {
        let d = check_plain(
            "CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$\nBEGIN\n  CREATE AGGREGATE s2 (int) (SFUNC = int4pl, STYPE = int);\nEND $$;\n",
        );
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("ddl-in-function")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(f[0].message.contains("CREATE AGGREGATE"), "{}", f[0].message);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_on_data_functions_and_do_blocks() {
        let d = check_plain(
            "CREATE FUNCTION n() RETURNS int LANGUAGE sql AS $$ SELECT count(*)::int FROM pg_class $$;\nDO $$ BEGIN CREATE TABLE t (id int); END $$;\n",
        );
        assert_eq!(ids(&d, "ddl-in-function"), 0, "{d:#?}");
    }
}
