use std::collections::BTreeMap;

use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::helpers::{alter_ops, column_site, here, in_file, names_table};
use super::policy_expr::{policy_clauses, policy_site, policy_sites, ScopeOptions};
use super::rls_missing::is_tenant_table;
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{ConstraintKind, QName, Table};
use crate::diag::Region;

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

/// Tables this file changes in a way that can break their container scope
/// (DROP CONSTRAINT, DROP POLICY), with the first such statement.
fn changed_here(cx: &FileCtx) -> BTreeMap<QName, usize> {
    let mut out = BTreeMap::new();
    for (i, t, op) in alter_ops(cx) {
        if matches!(op, AlterTableOperation::DropConstraint { .. }) {
            out.entry(t).or_insert(i);
        }
    }
    for (i, s) in cx.file.parsed.statements.iter().enumerate() {
        if let Some(Ast::DropPolicy(dp)) = s.ast() {
            out.entry(cx.catalog.resolve(&dp.table_name)).or_insert(i);
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
        let sites = policy_sites(cx);
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
                        || t.policies.iter().any(|p| policy_site(&sites, t, p).is_some())
                        || changed.contains_key(&t.name))
            })
            .collect();
        tables.sort_by_key(|t| (t.origin.file, t.origin.stmt, t.name.clone()));
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
            if has_fk && has_policy {
                continue;
            }
            let mut missing = Vec::new();
            if !has_fk {
                missing.push(format!("no foreign key to `{container_table}`"));
            }
            if !has_policy {
                missing.push(format!("no policy that pins `{}` to the container context", scope.key));
            }
            let key = &scope.key;
            let ctx = scope.context.shown.first().map(String::as_str).unwrap_or("<container context>");
            let fk_help = format!("declare `{key} uuid NOT NULL REFERENCES {container_table} (id)`");
            let policy_help = format!("add a policy with `USING ({key} = (SELECT {ctx}))` and the same WITH CHECK");
            let help = match (has_fk, has_policy) {
                (false, false) => format!("{fk_help} and {policy_help}"),
                (false, true) => fk_help,
                _ => policy_help,
            };
            let col = t.column(key).and_then(|c| here(cx, c.origin));
            let (region, stmt) = match column_site(cx, t, key, col) {
                (_, None) => {
                    // Neither the table nor the column is new here: point at
                    // what this file changed (a policy, a dropped constraint).
                    let site = t.policies.iter().filter_map(|p| policy_site(&sites, t, p)).min_by_key(|s| s.1);
                    match (site, changed.get(&t.name)) {
                        (Some((r, i)), _) => (r, Some(i)),
                        (None, Some(&i)) => (cx.file.parsed.statements[i].region, Some(i)),
                        (None, None) => (Region::default(), None),
                    }
                }
                site => site,
            };
            let mut f = Finding::new(
                region,
                format!(
                    "`{}` is container-scoped (it has `{key}`) but has {}: the walled garden is not enforced",
                    t.name,
                    missing.join(" and ")
                ),
            )
            .help(help);
            f.statement = stmt;
            out.push(f);
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
