use super::helpers::names_table;
use super::policy_expr::{policy_clauses, policy_site, policy_sites, Scope, ScopeOptions};
use super::rls_missing::is_tenant_table;
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{Policy, PolicyCommand, Table};
use crate::workspace::TenancyMode;

crate::declare_rule! {
    /// ## What it does
    /// In `shared` mode: flags a permissive policy on a tenant table whose
    /// USING or WITH CHECK does not pin the tenant key to the tenant context
    /// (`tenancy.tenant_key` and `tenancy.tenant_context` of strata.toml, e.g.
    /// `org_id = current_setting('app.org_id')::uuid`). In
    /// `database-per-tenant` mode: the same for the container key
    /// (`container_id`) on container-scoped tables, against the container
    /// context (by default any `current_setting('<prefix>.container_id')`).
    /// Tables without the key column are left to `tenant-key-missing`.
    ///
    /// ## Why is this bad?
    /// Policies are OR-ed: one permissive policy that does not pin the key
    /// opens the table across tenants (or across group-chat walled gardens),
    /// whatever the other policies say. A policy that checks only a role or a
    /// user id leaks the moment one person belongs to two tenants.
    ///
    /// ## Example
    /// ```sql
    /// -- bad (shared mode, tenant_key = "org_id")
    /// CREATE POLICY invoices_member ON invoices FOR ALL TO authenticated
    ///     USING (created_by = (select auth.uid()));
    /// -- good
    /// CREATE POLICY invoices_org ON invoices FOR ALL TO authenticated
    ///     USING (org_id = (select current_setting('app.org_id')::uuid))
    ///     WITH CHECK (org_id = (select current_setting('app.org_id')::uuid));
    /// ```
    ///
    /// ## How to fix
    /// AND the key condition into every permissive policy, in USING and in
    /// WITH CHECK; or add one `AS RESTRICTIVE` policy `FOR ALL` that pins the
    /// key, which then applies on top of all permissive ones.
    ///
    /// ## Options
    /// `tenant_contexts`: more expressions accepted as the tenant context in
    /// shared mode (e.g. a membership helper); `container_contexts`: the
    /// expressions accepted as the container context (replacing the default).
    pub struct PolicyNotTenantScoped {
        id: "policy-not-tenant-scoped",
        group: Governance,
        severity: Error,
        summary: "a policy that does not constrain the tenant key (shared) or container key (database-per-tenant) with its context",
        needs_workspace: true,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone, Default)]
pub struct PolicyNotTenantScopedRule {
    scope: ScopeOptions,
}

/// Clauses of `p` that do not pin `scope.key` to the context.
fn unscoped(scope: &Scope, p: &Policy) -> Vec<&'static str> {
    let mut bad: Vec<&'static str> = policy_clauses(p)
        .into_iter()
        .filter(|(_, e)| !e.is_some_and(|e| scope.context.constrains(e, &scope.key)))
        .map(|(label, _)| label)
        .collect();
    bad.dedup();
    bad
}

/// Whether a restrictive policy for every command pins the key, which makes
/// every permissive policy of the table scoped.
fn restrictive_wall(scope: &Scope, t: &Table) -> bool {
    t.policies
        .iter()
        .any(|p| !p.permissive && p.command == PolicyCommand::All && unscoped(scope, p).is_empty())
}

impl Rule for PolicyNotTenantScopedRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        self.scope.configure(options)
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let Some(cfg) = cx.env.config else { return };
        let scope = match cfg.tenancy.mode {
            TenancyMode::Shared => self.scope.tenant(cx.env),
            TenancyMode::DatabasePerTenant => self.scope.container(cx.env),
        };
        let Some(scope) = scope else { return };
        let sites = policy_sites(cx);
        let mut tables: Vec<&Table> = cx
            .catalog
            .tables
            .values()
            .filter(|t| {
                is_tenant_table(cx.env, t)
                    && t.column(&scope.key).is_some()
                    && !(scope.mode == TenancyMode::DatabasePerTenant && names_table(&cfg.tenancy.container_table, &t.name))
                    && t.policies.iter().any(|p| policy_site(&sites, t, p).is_some())
            })
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        let (what, context) = match scope.mode {
            TenancyMode::Shared => ("tenant", scope.context.shown.first().cloned().unwrap_or_default()),
            TenancyMode::DatabasePerTenant => ("container", scope.context.shown.first().cloned().unwrap_or_default()),
        };
        for t in tables {
            if restrictive_wall(&scope, t) {
                continue;
            }
            for p in t.policies.iter().filter(|p| p.permissive) {
                let Some((region, stmt)) = policy_site(&sites, t, p) else {
                    continue;
                };
                let bad = unscoped(&scope, p);
                if bad.is_empty() {
                    continue;
                }
                out.push(
                    Finding::new(
                        region,
                        format!(
                            "policy `{}` on `{}` does not pin `{}` to the {what} context in {}: it admits rows of other {what}s",
                            p.name,
                            t.name,
                            scope.key,
                            bad.join(" and ")
                        ),
                    )
                    .help(format!(
                        "add `{key} = (select {context})` to {clauses}, or a RESTRICTIVE policy FOR ALL that does",
                        key = scope.key,
                        clauses = bad.join(" and ")
                    ))
                    .at_statement(stmt),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_with, ids, render_rule};

    const SHARED: &str = "pg_version = 15\n[tenancy]\nmode = \"shared\"\ntenant_key = \"org_id\"\ntenant_table = \"organizations\"\ntenant_context = \"current_setting('app.org_id')::uuid\"\napp_role = \"authenticated\"\n";

    fn shared(files: &[(&str, &str)]) -> Vec<crate::diag::Diagnostic> {
        check_ws_with(files, |root| std::fs::write(root.join("strata.toml"), SHARED).unwrap())
    }

    const ORGS: &str = "CREATE TABLE organizations (id uuid PRIMARY KEY);\nCREATE TABLE invoices (id uuid PRIMARY KEY, org_id uuid NOT NULL REFERENCES organizations (id), created_by uuid);\nALTER TABLE invoices ENABLE ROW LEVEL SECURITY;\n";

    #[test]
    fn shared_mode_fires_on_unscoped_policies() {
        let d = shared(&[(
            "core/0001_invoices.sql",
            &format!(
                "{ORGS}CREATE POLICY invoices_member ON invoices FOR ALL TO authenticated\n    USING (created_by = (select auth.uid()));\nCREATE POLICY invoices_read ON invoices FOR SELECT TO authenticated\n    USING (org_id = (select current_setting('app.org_id')::uuid) OR created_by IS NULL);\n"
            ),
        )]);
        assert_eq!(ids(&d, "policy-not-tenant-scoped"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "policy-not-tenant-scoped"));
    }

    #[test]
    fn shared_mode_quiet_on_scoped_or_restrictive_wall() {
        let d = shared(&[(
            "core/0001_invoices.sql",
            &format!(
                "{ORGS}CREATE POLICY invoices_org ON invoices FOR ALL TO authenticated\n    USING (org_id = (select current_setting('app.org_id')::uuid))\n    WITH CHECK (org_id = (select current_setting('app.org_id')::uuid));\nCREATE TABLE notes (id uuid PRIMARY KEY, org_id uuid NOT NULL, author uuid);\nCREATE POLICY notes_wall ON notes AS RESTRICTIVE FOR ALL TO authenticated USING (org_id = (select current_setting('app.org_id')::uuid));\nCREATE POLICY notes_own ON notes FOR ALL TO authenticated USING (author = (select auth.uid()));\n"
            ),
        )]);
        assert_eq!(ids(&d, "policy-not-tenant-scoped"), 0, "{d:#?}");
    }

    const CONTAINERS: &str = "CREATE TABLE containers (id uuid PRIMARY KEY);\nCREATE POLICY containers_app ON containers TO orbis_app USING (true) WITH CHECK (true);\nCREATE TABLE messages (id uuid PRIMARY KEY, container_id uuid NOT NULL REFERENCES containers (id));\n";

    #[test]
    fn database_per_tenant_fires_on_container_tables_open_to_the_app() {
        let d = check_ws(&[(
            "core/0001_messages.sql",
            &format!("{CONTAINERS}CREATE POLICY messages_app ON messages FOR ALL TO orbis_app USING (true) WITH CHECK (true);\n"),
        )]);
        assert_eq!(ids(&d, "policy-not-tenant-scoped"), 1, "{d:#?}");
    }

    #[test]
    fn database_per_tenant_quiet_on_container_scoped_policies() {
        let d = check_ws(&[(
            "core/0001_messages.sql",
            &format!(
                "{CONTAINERS}CREATE POLICY messages_container ON messages FOR ALL TO orbis_app\n    USING (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid))\n    WITH CHECK (container_id = (SELECT nullif(current_setting('orbis.container_id', true), '')::uuid));\n"
            ),
        )]);
        assert_eq!(ids(&d, "policy-not-tenant-scoped"), 0, "{d:#?}");
    }
}
