use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::helpers::name_region;
use super::rls_missing::is_tenant_table;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... DISABLE ROW LEVEL SECURITY` and
    /// `ALTER TABLE ... NO FORCE ROW LEVEL SECURITY` on a tenant table.
    ///
    /// ## Why is this bad?
    /// Row level security is the wall between tenants (shared mode) and
    /// between group-chat containers (database-per-tenant mode). Disabling it
    /// opens every row to every role with table privileges; `NO FORCE` opens
    /// them to the table owner, which is usually the role migrations and many
    /// jobs run as. It is typically done "temporarily" for a backfill and then
    /// forgotten, or reverted only on the tenants where the second migration
    /// succeeded.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE messages DISABLE ROW LEVEL SECURITY;
    /// UPDATE messages SET body = trim(body);
    /// ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
    /// -- good: run the backfill as a role with BYPASSRLS, leave the table alone
    /// UPDATE messages SET body = trim(body);
    /// ```
    ///
    /// ## How to fix
    /// Leave RLS enabled and forced. A maintenance job that must see every row
    /// connects as a dedicated role with `BYPASSRLS`. Tables that hold no
    /// tenant data belong in `tenancy.global_tables` of strata.toml.
    pub struct RlsDisabled {
        id: "rls-disabled",
        group: Governance,
        severity: Error,
        summary: "DISABLE or NO FORCE ROW LEVEL SECURITY on a tenant table",
        needs_workspace: true,
    }
}

impl Rule for RlsDisabled {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    /// A function that turns RLS off when called is as bad as a migration
    /// that does.
    fn judges_function_bodies(&self) -> bool {
        true
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Ast::AlterTable(at)) = cx.stmt.ast() else { return };
        let name = cx.catalog.resolve(&at.name);
        // An unknown table is judged by its name: it is tenant data unless
        // strata.toml lists it as global.
        let tenant = match cx.catalog.table(&name) {
            Some(t) => is_tenant_table(cx.env, t),
            None => cx
                .env
                .config
                .is_some_and(|c| !c.tenancy.global_tables.iter().any(|g| *g == name.name || *g == name.to_string())),
        };
        if !tenant {
            return;
        }
        for op in &at.operations {
            let (what, effect) = match op {
                AlterTableOperation::DisableRowLevelSecurity => ("DISABLE", "every role with table privileges sees and writes every row"),
                AlterTableOperation::NoForceRowLevelSecurity => ("NO FORCE", "the table owner bypasses every policy"),
                _ => continue,
            };
            out.push(
                Finding::new(
                    name_region(&at.name).unwrap_or(cx.stmt.region),
                    format!("{what} ROW LEVEL SECURITY on tenant table `{name}`: {effect}"),
                )
                .help("keep RLS enabled and forced; run maintenance as a dedicated role with BYPASSRLS")
                .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_with, ids, render_rule};

    const NOTES: &str = "CREATE TABLE notes (id uuid PRIMARY KEY, body text);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\nALTER TABLE notes FORCE ROW LEVEL SECURITY;\n";

    #[test]
    fn fires_on_disable_and_no_force() {
        let d = check_ws(&[
            ("core/0001_notes.sql", NOTES),
            (
                "core/0002_backfill.sql",
                "ALTER TABLE notes DISABLE ROW LEVEL SECURITY;\nUPDATE notes SET body = trim(body);\nALTER TABLE notes NO FORCE ROW LEVEL SECURITY;\n",
            ),
        ]);
        assert_eq!(ids(&d, "rls-disabled"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "rls-disabled"));
    }

    #[test]
    fn quiet_on_global_tables() {
        let d = check_ws_with(
            &[
                ("core/0001_countries.sql", "CREATE TABLE countries (code text PRIMARY KEY);\n"),
                ("core/0002_open.sql", "ALTER TABLE countries DISABLE ROW LEVEL SECURITY;\n"),
            ],
            |root| {
                let toml = format!("{}global_tables = [\"countries\"]\n", crate::rules::testing::STRATA_TOML);
                std::fs::write(root.join("strata.toml"), toml).unwrap();
            },
        );
        assert_eq!(ids(&d, "rls-disabled"), 0, "{d:#?}");
    }
}
