use std::collections::BTreeSet;

use super::policy_expr::{command_word, policy_site, policy_sites, PolicySites};
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{Policy, PolicyCommand, Table};

crate::declare_rule! {
    /// ## What it does
    /// Flags a table with two or more permissive policies that apply to the
    /// same role and the same command (`FOR ALL` overlaps every command; a
    /// policy for `PUBLIC` applies to every role), when one of them was
    /// created in the file.
    ///
    /// ## Why is this bad?
    /// Permissive policies are OR-ed: PostgreSQL evaluates every one of them
    /// for every row, so each extra policy costs a full expression evaluation
    /// per row scanned. And the table is only as tight as its loosest policy:
    /// a broad second policy silently widens what the first one guarded,
    /// which is how container walls leak.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE POLICY messages_container ON messages FOR ALL TO orbis_app
    ///     USING (container_id = (SELECT current_setting('orbis.container_id')::uuid));
    /// CREATE POLICY messages_read ON messages FOR SELECT TO orbis_app USING (true);
    /// -- good: one policy per role and command
    /// CREATE POLICY messages_container ON messages FOR ALL TO orbis_app
    ///     USING (container_id = (SELECT current_setting('orbis.container_id')::uuid));
    /// ```
    ///
    /// ## How to fix
    /// Merge the policies into one (`USING (a OR b)` states the intent and is
    /// evaluated once), or make the narrowing one `AS RESTRICTIVE`.
    pub struct MultiplePermissivePolicies {
        id: "multiple-permissive-policies",
        group: Correctness,
        severity: Warning,
        summary: "two or more permissive policies for the same role and command on one table",
        needs_workspace: false,
    }
}

const COMMANDS: [PolicyCommand; 4] = [
    PolicyCommand::Select,
    PolicyCommand::Insert,
    PolicyCommand::Update,
    PolicyCommand::Delete,
];

fn applies(p: &Policy, role: &str, command: PolicyCommand) -> bool {
    p.permissive && (p.command == PolicyCommand::All || p.command == command) && p.roles.iter().any(|r| r == role || r == "public")
}

fn check_table(sites: &PolicySites, t: &Table, out: &mut Vec<Finding>) {
    let roles: BTreeSet<&str> = t
        .policies
        .iter()
        .filter(|p| p.permissive)
        .flat_map(|p| p.roles.iter().map(String::as_str))
        .collect();
    let mut reported: Vec<BTreeSet<&str>> = Vec::new();
    for role in roles {
        for command in COMMANDS {
            let overlapping: Vec<&Policy> = t.policies.iter().filter(|p| applies(p, role, command)).collect();
            if overlapping.len() < 2 {
                continue;
            }
            let names: BTreeSet<&str> = overlapping.iter().map(|p| p.name.as_str()).collect();
            if reported.contains(&names) {
                continue;
            }
            // Reported where this file last touched one of them.
            let Some((region, stmt)) = overlapping.iter().filter_map(|p| policy_site(sites, t, p)).max_by_key(|s| s.1) else {
                continue;
            };
            let list = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            out.push(
                Finding::new(
                    region,
                    format!(
                        "table `{}` has {} permissive policies for role `{role}` on {}: {list}; each one is evaluated for every row and the loosest wins",
                        t.name,
                        names.len(),
                        command_word(command)
                    ),
                )
                .help("merge them into one policy, or make the narrowing one AS RESTRICTIVE")
                .at_statement(stmt),
            );
            reported.push(names);
        }
    }
}

impl Rule for MultiplePermissivePolicies {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let sites = policy_sites(cx);
        let mut tables: Vec<&Table> = cx
            .catalog
            .tables
            .values()
            .filter(|t| t.policies.iter().any(|p| policy_site(&sites, t, p).is_some()))
            .collect();
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        for t in tables {
            check_table(&sites, t, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    const TABLE: &str =
        "CREATE TABLE messages (id uuid PRIMARY KEY, container_id uuid NOT NULL);\nALTER TABLE messages ENABLE ROW LEVEL SECURITY;\n";

    #[test]
    fn fires_on_overlapping_permissive_policies() {
        let d = check_plain(&format!(
            "{TABLE}CREATE POLICY messages_container ON messages FOR ALL TO orbis_app\n    USING (container_id = (SELECT current_setting('orbis.container_id')::uuid));\nCREATE POLICY messages_read ON messages FOR SELECT TO orbis_app USING (true);\n"
        ));
        assert_eq!(ids(&d, "multiple-permissive-policies"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "multiple-permissive-policies"));
    }

    #[test]
    fn quiet_on_distinct_commands_roles_or_restrictive() {
        let d = check_plain(&format!(
            "{TABLE}CREATE POLICY m_read ON messages FOR SELECT TO orbis_app USING (true);\nCREATE POLICY m_write ON messages FOR INSERT TO orbis_app WITH CHECK (true);\nCREATE POLICY m_admin ON messages FOR SELECT TO orbis_admin USING (true);\nCREATE POLICY m_wall ON messages AS RESTRICTIVE FOR ALL TO orbis_app USING (container_id IS NOT NULL);\n"
        ));
        assert_eq!(ids(&d, "multiple-permissive-policies"), 0, "{d:#?}");
    }
}
