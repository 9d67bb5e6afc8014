use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Opt-in, for workspaces whose migrator re-runs the whole schema on every
    /// boot (Org in a Box): flags DDL that fails or changes something when run
    /// a second time: CREATE TABLE / INDEX / SCHEMA / SEQUENCE / EXTENSION
    /// without `IF NOT EXISTS`, CREATE VIEW / FUNCTION without `OR REPLACE`,
    /// ADD COLUMN without `IF NOT EXISTS`, DROP ... and DROP COLUMN /
    /// CONSTRAINT without `IF EXISTS`, and CREATE POLICY / TRIGGER not
    /// preceded by a `DROP ... IF EXISTS` of the same name in the file.
    ///
    /// ## Why is this bad?
    /// An idempotent migrator applies the same statements again and again.
    /// The first non-idempotent statement fails on the second boot, and the
    /// worker or API that runs the migrator does not start. (Migrators that
    /// apply each file once through a history table, like strata itself, do
    /// not need this: the rule is off unless configured.)
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE memories (id uuid PRIMARY KEY);
    /// ALTER TABLE memories ADD COLUMN embedding vector(1536);
    /// -- good
    /// CREATE TABLE IF NOT EXISTS memories (id uuid PRIMARY KEY);
    /// ALTER TABLE memories ADD COLUMN IF NOT EXISTS embedding vector(1536);
    /// ```
    ///
    /// ## How to fix
    /// Add `IF NOT EXISTS` / `IF EXISTS` / `OR REPLACE`; for policies and
    /// triggers, precede the CREATE with `DROP POLICY IF EXISTS <name> ON <table>;`.
    /// Turn the rule on with `[rules.idempotent-ddl] severity = "error"`.
    pub struct IdempotentDdl {
        id: "idempotent-ddl",
        group: Governance,
        severity: Off,
        summary: "(opt-in) CREATE/ADD without IF NOT EXISTS, DROP without IF EXISTS, for idempotent migrators",
        needs_workspace: true,
    }
}

/// Whether an earlier statement of the file is `DROP POLICY IF EXISTS name ON table`
/// (or `DROP TRIGGER IF EXISTS name`).
fn dropped_before(cx: &StatementCtx, is_drop: impl Fn(&Ast) -> bool) -> bool {
    cx.file.parsed.statements[..cx.index].iter().filter_map(|s| s.ast()).any(is_drop)
}

/// What makes the statement fail on a second run, and the guard it needs.
fn problems(cx: &StatementCtx, stmt: &Ast) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let mut need = |cond: bool, what: &str, guard: &'static str| {
        if cond {
            out.push((what.to_string(), guard));
        }
    };
    const NOT_EXISTS: &str = "add IF NOT EXISTS";
    const EXISTS: &str = "add IF EXISTS";
    const REPLACE: &str = "write CREATE OR REPLACE";
    match stmt {
        Ast::CreateTable(ct) => need(!ct.if_not_exists && !ct.temporary, "CREATE TABLE without IF NOT EXISTS", NOT_EXISTS),
        Ast::CreateIndex(ci) => need(!ci.if_not_exists, "CREATE INDEX without IF NOT EXISTS", NOT_EXISTS),
        Ast::CreateSchema { if_not_exists, .. } => need(!if_not_exists, "CREATE SCHEMA without IF NOT EXISTS", NOT_EXISTS),
        Ast::CreateSequence { if_not_exists, .. } => need(!if_not_exists, "CREATE SEQUENCE without IF NOT EXISTS", NOT_EXISTS),
        Ast::CreateExtension(ce) => need(!ce.if_not_exists, "CREATE EXTENSION without IF NOT EXISTS", NOT_EXISTS),
        Ast::CreateView(cv) => need(!cv.or_replace && !cv.if_not_exists, "CREATE VIEW without OR REPLACE", REPLACE),
        Ast::CreateFunction(cf) => need(!cf.or_replace, "CREATE FUNCTION without OR REPLACE", REPLACE),
        Ast::AlterTable(at) => {
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { if_not_exists, .. } => {
                        need(!if_not_exists, "ADD COLUMN without IF NOT EXISTS", NOT_EXISTS)
                    }
                    AlterTableOperation::DropColumn { if_exists, .. } => need(!if_exists, "DROP COLUMN without IF EXISTS", EXISTS),
                    AlterTableOperation::DropConstraint { if_exists, .. } => need(!if_exists, "DROP CONSTRAINT without IF EXISTS", EXISTS),
                    _ => {}
                }
            }
        }
        Ast::Drop {
            if_exists, object_type, ..
        } => need(!if_exists, &format!("DROP {object_type} without IF EXISTS"), EXISTS),
        Ast::DropFunction(df) => need(!df.if_exists, "DROP FUNCTION without IF EXISTS", EXISTS),
        Ast::DropPolicy(dp) => need(!dp.if_exists, "DROP POLICY without IF EXISTS", EXISTS),
        Ast::DropTrigger(dt) => need(!dt.if_exists, "DROP TRIGGER without IF EXISTS", EXISTS),
        Ast::DropExtension(de) => need(!de.if_exists, "DROP EXTENSION without IF EXISTS", EXISTS),
        Ast::CreatePolicy(p) => {
            let (name, table) = (ident_name(&p.name), cx.catalog.resolve(&p.table_name));
            let guarded = dropped_before(
                cx,
                |s| matches!(s, Ast::DropPolicy(d) if d.if_exists && ident_name(&d.name) == name && cx.catalog.resolve(&d.table_name) == table),
            );
            need(
                !guarded,
                "CREATE POLICY not preceded by DROP POLICY IF EXISTS",
                "precede it with `DROP POLICY IF EXISTS <name> ON <table>;`",
            );
        }
        Ast::CreateTrigger(t) => {
            let name = t.name.to_string().to_lowercase();
            let guarded = dropped_before(
                cx,
                |s| matches!(s, Ast::DropTrigger(d) if d.if_exists && d.trigger_name.to_string().to_lowercase() == name),
            );
            need(
                !t.or_replace && !guarded,
                "CREATE TRIGGER without OR REPLACE",
                "write CREATE OR REPLACE TRIGGER (PostgreSQL 14+) or DROP TRIGGER IF EXISTS first",
            );
        }
        _ => {}
    }
    out
}

impl Rule for IdempotentDdl {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        for (what, guard) in problems(cx, stmt) {
            out.push(
                Finding::new(
                    cx.stmt.region,
                    format!("{what}: the statement fails when the migrator runs it again"),
                )
                .help(guard)
                .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_with, ids, render_rule};

    fn turned_on(sql: &str) -> Vec<crate::diag::Diagnostic> {
        check_ws_with(&[("core/0001_schema.sql", sql)], |root| {
            std::fs::create_dir_all(root.join("rules")).unwrap();
            std::fs::write(root.join("rules/governance.toml"), "[rules.idempotent-ddl]\nseverity = \"error\"\n").unwrap();
        })
    }

    const PLAIN: &str = "CREATE TABLE memories (id uuid PRIMARY KEY);\nALTER TABLE memories ADD COLUMN kind text;\nCREATE POLICY memories_app ON memories TO orbis_app USING (true);\nDROP INDEX memories_kind_idx;\n";

    #[test]
    fn off_by_default() {
        let d = check_ws(&[("core/0001_schema.sql", PLAIN)]);
        assert_eq!(ids(&d, "idempotent-ddl"), 0, "{d:#?}");
    }

    #[test]
    fn fires_on_non_repeatable_ddl_when_turned_on() {
        let d = turned_on(PLAIN);
        assert_eq!(ids(&d, "idempotent-ddl"), 4, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "idempotent-ddl"));
    }

    #[test]
    fn quiet_on_guarded_ddl() {
        let d = turned_on(
            "CREATE TABLE IF NOT EXISTS memories (id uuid PRIMARY KEY);\nALTER TABLE memories ADD COLUMN IF NOT EXISTS kind text;\nDROP POLICY IF EXISTS memories_app ON memories;\nCREATE POLICY memories_app ON memories TO orbis_app USING (true);\nCREATE OR REPLACE VIEW memory_kinds AS SELECT DISTINCT kind FROM memories;\nDROP INDEX IF EXISTS memories_kind_idx;\n",
        );
        assert_eq!(ids(&d, "idempotent-ddl"), 0, "{d:#?}");
    }
}
