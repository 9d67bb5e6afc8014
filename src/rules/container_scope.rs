use std::collections::BTreeSet;

use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::helpers::{alter_ops, column_region, in_file, names_table};
use super::policy_expr::{policy_clauses, ScopeOptions};
use super::rls_missing::is_tenant_table;
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{ConstraintKind, QName, Table};

crate::declare_rule! {
    /// ## What it does
    /// Flags a tenant table with a container key column (`container_id`, from
    /// `tenancy.container_key`) that, by the end of a file that creates or
    /// changes it, lacks a foreign key from that column to the container table
    /// (`tenancy.container_table`) or a policy that pins the column to the
    /// container context (by default `current_setting('<prefix>.container_id')`).
    ///
    /// ## Why is this bad?
    /// Every group chat is a walled garden: what is said or learned inside a
    /// container stays there unless a `container_share` row records the
    /// crossing. The `container_id` column only means something if it points
    /// at a real container and if the database, not worker code, refuses rows
    /// of other containers. Without the policy, one worker bug leaks a private
    /// chat's knowledge into another; without the foreign key, rows of a
    /// deleted chat linger under an id nobody can see.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE notes (id uuid PRIMARY KEY, container_id uuid NOT NULL, body text);
    /// CREATE POLICY notes_app ON notes FOR ALL TO orbis_app USING (true) WITH CHECK (true);
    /// -- good
    /// CREATE TABLE notes (
    ///     id uuid PRIMARY KEY,
    ///     container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    ///     body text
    /// );
    /// CREATE POLICY notes_container ON notes FOR ALL TO orbis_app
    ///     USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))
    ///     WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));
    /// ```
    ///
    /// ## How to fix
    /// Declare `container_id uuid NOT NULL REFERENCES containers (id)` and a
    /// policy that pins it to the session's container.
    ///
    /// ## Options
    /// `container_contexts`: the expressions accepted as the container
    /// context (replacing the default).
    pub struct ContainerScope {
        id: "container-scope",
        group: Governance,
        severity: Error,
        summary: "a table with container_id but no foreign key to the container table or no policy constraining it",
        needs_workspace: true,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone, Default)]
pub struct ContainerScopeRule {
    scope: ScopeOptions,
}

/// Tables this file changes in a way that can break their container scope.
fn changed_here(cx: &FileCtx) -> BTreeSet<QName> {
    let mut out: BTreeSet<QName> = alter_ops(cx)
        .into_iter()
        .filter(|(_, _, op)| matches!(op, AlterTableOperation::DropConstraint { .. }))
        .map(|(_, t, _)| t)
        .collect();
    for s in &cx.file.parsed.statements {
        if let Some(Ast::DropPolicy(dp)) = s.ast() {
            out.insert(cx.catalog.resolve(&dp.table_name));
        }
    }
    out
}

impl Rule for ContainerScopeRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        self.scope.configure(options)
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let (Some(cfg), Some(scope)) = (cx.env.config, self.scope.container(cx.env)) else {
            return;
        };
        let container_table = &cfg.tenancy.container_table;
        let changed = changed_here(cx);
        let mut tables: Vec<&Table> = cx
            .catalog
            .tables
            .values()
            .filter(|t| {
                let Some(col) = t.column(&scope.key) else { return false };
                is_tenant_table(cx.env, t)
                    && !names_table(container_table, &t.name)
                    && (in_file(cx, t.origin)
                        || in_file(cx, col.origin)
                        || t.policies.iter().any(|p| in_file(cx, p.origin))
                        || changed.contains(&t.name))
            })
            .collect();
        tables.sort_by_key(|t| (t.origin.stmt, t.name.clone()));
        for t in tables {
            let has_fk = t.constraints.iter().any(|k| {
                matches!(&k.kind, ConstraintKind::ForeignKey { table, .. } if names_table(container_table, table))
                    && k.columns.contains(&scope.key)
            });
            let has_policy = t.policies.iter().any(|p| {
                policy_clauses(p)
                    .iter()
                    .any(|(_, e)| e.is_some_and(|e| scope.context.constrains(e, &scope.key)))
            });
            let mut missing = Vec::new();
            if !has_fk {
                missing.push(format!("no foreign key to `{container_table}`"));
            }
            if !has_policy {
                missing.push(format!("no policy that pins `{}` to the container context", scope.key));
            }
            if missing.is_empty() {
                continue;
            }
            let col = t.column(&scope.key).map(|c| c.origin).unwrap_or(t.origin);
            out.push(
                Finding::new(
                    column_region(cx, t, &scope.key, col),
                    format!(
                        "`{}` is container-scoped (it has `{}`) but has {}: the walled garden is not enforced",
                        t.name,
                        scope.key,
                        missing.join(" and ")
                    ),
                )
                .help({
                    let key = &scope.key;
                    let ctx = scope.context.shown.first().map(String::as_str).unwrap_or("<container context>");
                    let fk = format!("declare `{key} uuid NOT NULL REFERENCES {container_table} (id)`");
                    let policy = format!("add a policy with `USING ({key} = (SELECT {ctx}))` and the same WITH CHECK");
                    match (has_fk, has_policy) {
                        (false, false) => format!("{fk} and {policy}"),
                        (false, true) => fk,
                        _ => policy,
                    }
                })
                .at_statement(if in_file(cx, col) {
                    col.stmt as usize
                } else {
                    t.origin.stmt as usize
                }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CONTAINERS: &str = "CREATE TABLE containers (id uuid PRIMARY KEY);\n";

    #[test]
    fn fires_without_foreign_key_or_container_policy() {
        let d = check_ws(&[
            ("core/0001_containers.sql", CONTAINERS),
            (
                "core/0002_notes.sql",
                "CREATE TABLE notes (\n    id uuid PRIMARY KEY,\n    container_id uuid NOT NULL,\n    body text\n);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nCREATE POLICY notes_app ON notes FOR ALL TO orbis_app USING (true) WITH CHECK (true);\nCREATE TABLE files (\n    id uuid PRIMARY KEY,\n    container_id uuid NOT NULL REFERENCES containers (id)\n);\n",
            ),
        ]);
        assert_eq!(ids(&d, "container-scope"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "container-scope"));
    }

    #[test]
    fn quiet_with_foreign_key_and_container_policy() {
        let d = check_ws(&[
            ("core/0001_containers.sql", CONTAINERS),
            (
                "core/0002_notes.sql",
                "CREATE TABLE notes (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id) ON DELETE CASCADE);\nCREATE POLICY notes_container ON notes FOR ALL TO orbis_app\n    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))\n    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));\n",
            ),
        ]);
        assert_eq!(ids(&d, "container-scope"), 0, "{d:#?}");
    }
}
