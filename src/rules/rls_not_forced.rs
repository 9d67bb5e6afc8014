use std::collections::BTreeMap;

use sqlparser::ast::AlterTableOperation;

use super::helpers::{alter_ops, in_file, stmt_region};
use super::rls_missing::{created_region, is_tenant_table};
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::QName;

crate::declare_rule! {
    /// ## What it does
    /// Flags a tenant table that has row level security enabled but not
    /// forced by the end of the file that creates it or enables its RLS.
    /// (A table without RLS at all is reported by `rls-missing`.)
    ///
    /// ## Why is this bad?
    /// `ENABLE ROW LEVEL SECURITY` does not apply to the table's owner. The
    /// owner is usually the role migrations run as, and often the role a
    /// worker, a cron job or a support script connects as too: for all of
    /// them the policies silently do not exist. `FORCE ROW LEVEL SECURITY`
    /// makes the owner obey them as well (superusers and `BYPASSRLS` roles
    /// still bypass them).
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
    /// -- good
    /// ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
    /// ALTER TABLE messages FORCE ROW LEVEL SECURITY;
    /// ```
    ///
    /// ## How to fix
    /// Add `ALTER TABLE <table> FORCE ROW LEVEL SECURITY;` next to the
    /// `ENABLE`.
    pub struct RlsNotForced {
        id: "rls-not-forced",
        group: Governance,
        severity: Error,
        summary: "a tenant table with RLS enabled but not forced (its owner bypasses the policies)",
        needs_workspace: true,
    }
}

impl Rule for RlsNotForced {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        // Tables whose RLS this file is responsible for, with the statement
        // that made it so.
        let mut touched: BTreeMap<QName, Option<usize>> = BTreeMap::new();
        for t in cx.catalog.tables.values().filter(|t| in_file(cx, t.origin)) {
            touched.insert(t.name.clone(), None);
        }
        for (i, table, op) in alter_ops(cx) {
            if matches!(op, AlterTableOperation::EnableRowLevelSecurity) {
                touched.entry(table).or_insert(Some(i));
            }
        }
        let mut found: Vec<_> = touched
            .into_iter()
            .filter_map(|(name, enabled_at)| {
                let t = cx.catalog.table(&name)?;
                (t.rls_enabled && !t.rls_forced && is_tenant_table(cx.env, t)).then_some((t, enabled_at))
            })
            .collect();
        found.sort_by_key(|(t, at)| at.unwrap_or(t.origin.stmt as usize));
        for (t, enabled_at) in found {
            let (region, stmt) = match enabled_at {
                Some(i) => (stmt_region(cx.file, i), i),
                None => (created_region(cx, t), t.origin.stmt as usize),
            };
            out.push(
                Finding::new(
                    region,
                    format!(
                        "tenant table `{}` has RLS enabled but not forced: its owner bypasses every policy",
                        t.name
                    ),
                )
                .help(format!("add `ALTER TABLE {} FORCE ROW LEVEL SECURITY;`", t.name))
                .at_statement(stmt),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    #[test]
    fn fires_when_rls_is_enabled_but_not_forced() {
        let d = check_ws(&[
            (
                "core/0001_notes.sql",
                "CREATE TABLE notes (id uuid PRIMARY KEY, body text);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nCREATE POLICY notes_app ON notes FOR ALL TO orbis_app USING (true) WITH CHECK (true);\nCREATE TABLE legacy (id uuid PRIMARY KEY);\n",
            ),
            ("core/0002_legacy_rls.sql", "ALTER TABLE legacy ENABLE ROW LEVEL SECURITY;\n"),
        ]);
        assert_eq!(ids(&d, "rls-not-forced"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "rls-not-forced"));
    }

    #[test]
    fn quiet_when_forced_in_the_same_file() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "CREATE TABLE notes (id uuid PRIMARY KEY, body text);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE notes FORCE ROW LEVEL SECURITY;\n",
        )]);
        assert_eq!(ids(&d, "rls-not-forced"), 0, "{d:#?}");
    }
}
