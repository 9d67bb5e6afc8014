use std::collections::BTreeMap;

use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::helpers::{alter_ops, in_file, stmt_region};
use super::rls_missing::{created_region, is_tenant_table};
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::QName;

crate::declare_rule! {
    /// ## What it does
    /// Flags a tenant table with row level security enabled but no policy by
    /// the end of the file that creates it, enables its RLS or drops its last
    /// policy.
    ///
    /// ## Why is this bad?
    /// With RLS on and no policy, PostgreSQL denies every row to every role
    /// that is subject to RLS: the application role sees an empty table and
    /// its inserts fail, in production, right after the deploy. Teams then
    /// "fix" it under pressure by disabling RLS. The policy belongs in the
    /// same migration as the table.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE notes (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id));
    /// ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    /// ALTER TABLE notes FORCE ROW LEVEL SECURITY;
    /// -- good: add
    /// CREATE POLICY notes_container ON notes FOR ALL TO orbis_app
    ///     USING (container_id = (SELECT current_setting('orbis.container_id')::uuid))
    ///     WITH CHECK (container_id = (SELECT current_setting('orbis.container_id')::uuid));
    /// ```
    ///
    /// ## How to fix
    /// Create the table's policy in the same file: scoped to the container or
    /// tenant key, or `TO` the application role for tenant-wide tables.
    pub struct PolicyMissing {
        id: "policy-missing",
        group: Governance,
        severity: Error,
        summary: "RLS enabled on a tenant table but no policy for it by the end of the file",
        needs_workspace: true,
    }
}

impl Rule for PolicyMissing {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let mut touched: BTreeMap<QName, Option<usize>> = BTreeMap::new();
        for t in cx.catalog.tables.values().filter(|t| in_file(cx, t.origin)) {
            touched.insert(t.name.clone(), None);
        }
        for (i, table, op) in alter_ops(cx) {
            if matches!(op, AlterTableOperation::EnableRowLevelSecurity) {
                touched.entry(table).or_insert(Some(i));
            }
        }
        for (i, s) in cx.file.parsed.statements.iter().enumerate() {
            if let Some(Ast::DropPolicy(dp)) = s.ast() {
                touched.entry(cx.catalog.resolve(&dp.table_name)).or_insert(Some(i));
            }
        }
        let mut found: Vec<_> = touched
            .into_iter()
            .filter_map(|(name, at)| {
                let t = cx.catalog.table(&name)?;
                (t.rls_enabled && t.policies.is_empty() && is_tenant_table(cx.env, t)).then_some((t, at))
            })
            .collect();
        found.sort_by_key(|(t, at)| at.unwrap_or(t.origin.stmt as usize));
        for (t, at) in found {
            let (region, stmt) = match at {
                Some(i) => (stmt_region(cx.file, i), i),
                None => (created_region(cx, t), t.origin.stmt as usize),
            };
            out.push(
                Finding::new(
                    region,
                    format!(
                        "tenant table `{}` has RLS enabled but no policy: every row is denied to the application",
                        t.name
                    ),
                )
                .help(format!("add a `CREATE POLICY ... ON {}` in this file", t.name))
                .at_statement(stmt),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const NOTES: &str = "CREATE TABLE notes (\n    id uuid PRIMARY KEY,\n    body text\n);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE notes FORCE ROW LEVEL SECURITY;\n";

    #[test]
    fn fires_without_a_policy() {
        let d = check_ws(&[
            ("core/0001_notes.sql", NOTES),
            (
                "core/0002_tags.sql",
                "CREATE TABLE tags (id uuid PRIMARY KEY);\nALTER TABLE tags ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;\nCREATE POLICY tags_app ON tags TO orbis_app USING (true) WITH CHECK (true);\nDROP POLICY tags_app ON tags;\n",
            ),
        ]);
        assert_eq!(ids(&d, "policy-missing"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "policy-missing"));
    }

    #[test]
    fn a_policy_later_in_the_file_counts() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            &format!("{NOTES}CREATE POLICY notes_app ON notes FOR ALL TO orbis_app USING (true) WITH CHECK (true);\n"),
        )]);
        assert_eq!(ids(&d, "policy-missing"), 0, "{d:#?}");
    }
}
