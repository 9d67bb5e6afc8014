use super::policy_expr::{command_word, is_always_true, policy_site, policy_sites};
use super::rls_missing::is_tenant_table;
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{Policy, PolicyCommand, Table};
use crate::diag::Region;

crate::declare_rule! {
    /// ## What it does
    /// Flags a permissive policy on a tenant table that applies to `PUBLIC`
    /// (no `TO` clause) or to a role listed in `tenancy.untrusted_roles`, and
    /// whose USING is always true (`true`, `1 = 1`, missing), or that is an
    /// INSERT, UPDATE or ALL policy whose WITH CHECK is always true or
    /// missing.
    ///
    /// ## Why is this bad?
    /// Such a policy turns row level security off for everyone who can reach
    /// the table: `PUBLIC` includes every role, present and future, and an
    /// untrusted role (Supabase's `anon`) is anyone on the internet. A missing
    /// WITH CHECK on an INSERT policy admits any row; on UPDATE and ALL,
    /// PostgreSQL reuses USING, so the write rule silently changes whenever
    /// someone edits the read rule. `USING (true)` is how a database-per-tenant
    /// workspace guards a tenant-wide table, and it is fine when restricted
    /// `TO` the application role.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE POLICY deals_all ON deals USING (true);
    /// -- good (database-per-tenant: the database is the tenant)
    /// CREATE POLICY deals_tenant_app ON deals FOR ALL TO orbis_app USING (true) WITH CHECK (true);
    /// ```
    ///
    /// ## How to fix
    /// Add `TO <application role>`, or replace the expression with one that
    /// pins the tenant or container key, and write an explicit WITH CHECK.
    pub struct PolicyAlwaysTrue {
        id: "policy-always-true",
        group: Governance,
        severity: Error,
        summary: "a USING (true) / missing WITH CHECK policy that applies to PUBLIC or an untrusted role",
        needs_workspace: true,
    }
}

/// What is always true about a policy, as message fragments.
fn always_true_parts(p: &Policy) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if p.command != PolicyCommand::Insert && p.using.as_ref().is_none_or(is_always_true) {
        parts.push(if p.using.is_some() { "an always-true USING" } else { "no USING" });
    }
    if matches!(p.command, PolicyCommand::Insert | PolicyCommand::Update | PolicyCommand::All) {
        match &p.with_check {
            None => parts.push("no WITH CHECK"),
            Some(e) if is_always_true(e) => parts.push("an always-true WITH CHECK"),
            Some(_) => {}
        }
    }
    parts
}

fn report(cx: &FileCtx, t: &Table, p: &Policy, (region, stmt): (Region, usize), untrusted: &[String], out: &mut Vec<Finding>) {
    let Some(role) = p.roles.iter().find(|r| *r == "public" || untrusted.contains(r)) else {
        return;
    };
    let parts = always_true_parts(p);
    if parts.is_empty() {
        return;
    }
    let who = if role == "public" {
        "PUBLIC (every role)".to_string()
    } else {
        format!("the untrusted role `{role}`")
    };
    let app = cx.env.config.map(|c| c.tenancy.app_role.as_str()).unwrap_or("app");
    out.push(
        Finding::new(
            region,
            format!(
                "policy `{}` ({} on `{}`) applies to {who} with {}: {}",
                p.name,
                command_word(p.command),
                t.name,
                parts.join(" and "),
                if parts.iter().all(|p| p.contains("WITH CHECK")) {
                    "any row can be written"
                } else {
                    "it does not restrict rows"
                }
            ),
        )
        .help(format!(
            "restrict it with `TO {app}`, or pin the tenant/container key in USING and an explicit WITH CHECK"
        ))
        .at_statement(stmt),
    );
}

impl Rule for PolicyAlwaysTrue {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let untrusted: Vec<String> = cx
            .env
            .config
            .map(|c| c.tenancy.untrusted_roles.iter().map(|r| r.to_lowercase()).collect())
            .unwrap_or_default();
        let sites = policy_sites(cx);
        let mut policies: Vec<(&Table, &Policy, (Region, usize))> = cx
            .catalog
            .tables
            .values()
            .filter(|t| is_tenant_table(cx.env, t))
            .flat_map(|t| t.policies.iter().map(move |p| (t, p)))
            .filter(|(_, p)| p.permissive)
            .filter_map(|(t, p)| policy_site(&sites, t, p).map(|site| (t, p, site)))
            .collect();
        policies.sort_by_key(|(_, _, site)| site.1);
        for (t, p, site) in policies {
            report(cx, t, p, site, &untrusted, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, known, render_rule};

    const DEALS: &str = "CREATE TABLE deals (id uuid PRIMARY KEY, title text);\nALTER TABLE deals ENABLE ROW LEVEL SECURITY;\n";

    #[test]
    fn fires_on_open_policies_for_public_or_untrusted_roles() {
        let d = check_ws(&[(
            "core/0001_deals.sql",
            &format!(
                "{DEALS}CREATE POLICY deals_all ON deals USING (true);\nCREATE POLICY deals_anon_insert ON deals FOR INSERT TO anon WITH CHECK (1 = 1);\nCREATE POLICY deals_public_update ON deals FOR UPDATE USING (id IS NOT NULL);\n"
            ),
        )]);
        assert_eq!(ids(&d, "policy-always-true"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "policy-always-true"));
    }

    #[test]
    fn an_alter_policy_in_a_later_file_is_checked_there() {
        let d = check_ws(&[
            (
                "core/0001_deals.sql",
                &format!("{DEALS}CREATE POLICY deals_tenant_app ON deals FOR ALL TO orbis_app USING (true) WITH CHECK (true);\n"),
            ),
            (
                "core/0002_open.sql",
                "-- opened for the dashboard\nALTER POLICY deals_tenant_app ON deals TO public;\n",
            ),
        ]);
        let found: Vec<_> = d.iter().filter(|x| x.rule == known("policy-always-true")).collect();
        assert_eq!(found.len(), 1, "{d:#?}");
        assert_eq!(found[0].file.path, "schema/core/0002_open.sql");
        assert_eq!((found[0].region.start.line, found[0].region.start.col), (2, 14));
    }

    #[test]
    fn a_reasoned_suppression_silences_it() {
        let d = check_ws(&[(
            "core/0001_deals.sql",
            &format!("{DEALS}-- strata-ignore policy-always-true: public price list, no tenant data\nCREATE POLICY deals_all ON deals FOR SELECT USING (true);\n"),
        )]);
        assert_eq!(ids(&d, "policy-always-true"), 0, "{d:#?}");
        assert_eq!(ids(&d, "unused-suppression"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_when_restricted_to_the_app_role() {
        let d = check_ws(&[(
            "core/0001_deals.sql",
            &format!(
                "{DEALS}CREATE POLICY deals_tenant_app ON deals FOR ALL TO orbis_app USING (true) WITH CHECK (true);\nCREATE POLICY deals_read ON deals FOR SELECT USING (title IS NOT NULL);\n"
            ),
        )]);
        assert_eq!(ids(&d, "policy-always-true"), 0, "{d:#?}");
    }
}
