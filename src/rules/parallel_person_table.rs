use sqlparser::ast::{AlterTableOperation, ObjectName, RenameTableNameKind, Statement as Ast};

use super::helpers::{name_region, names_table};
use super::{glob_match, string_list, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::QName;

crate::declare_rule! {
    /// ## What it does
    /// Flags a new table (CREATE TABLE, or ALTER TABLE ... RENAME TO) whose
    /// name says it holds people, other than the canonical person table
    /// `contacts`: `users`, `people`, `persons`, `customers`, `members`,
    /// `profiles`, `staff`, `employees`, ... (configurable).
    ///
    /// ## Why is this bad?
    /// One table, `contacts`, is the canonical person record; everywhere a
    /// person appears, the row holds a `contact_id`. A second person table is
    /// how nova-leon ended up with a `users` table beside `contacts`: the same
    /// human twice, linked by guesswork (phone, Slack id, name), messages
    /// attributed to the wrong record, and a consolidation cutover to undo
    /// it. Staff, clients, travellers and leads are all contacts.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE travellers (id uuid PRIMARY KEY, full_name text, phone text);
    /// -- good
    /// CREATE TABLE trip_contacts (
    ///     trip_id uuid NOT NULL REFERENCES trips (id),
    ///     contact_id uuid NOT NULL REFERENCES contacts (id),
    ///     PRIMARY KEY (trip_id, contact_id)
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Store the person in `contacts` and what is specific to the role in a
    /// table keyed by `contact_id` (as `contact_pipeline` does for CRM data).
    ///
    /// ## Options
    /// `names`: table name patterns (`*` wildcards) that hold people;
    /// `person_table`: the canonical person table (default `contacts`).
    pub struct ParallelPersonTable {
        id: "parallel-person-table",
        group: Governance,
        severity: Error,
        summary: "a new table that holds people besides contacts (users, people, customers, members, ...)",
        needs_workspace: true,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct ParallelPersonTableRule {
    names: Vec<String>,
    person_table: String,
}

impl Default for ParallelPersonTableRule {
    fn default() -> Self {
        let names = [
            "users",
            "user",
            "people",
            "persons",
            "person",
            "customers",
            "members",
            "profiles",
            "clients",
            "staff",
            "employees",
            "travellers",
            "travelers",
            "app_users",
        ];
        ParallelPersonTableRule {
            names: names.into_iter().map(str::to_string).collect(),
            person_table: "contacts".into(),
        }
    }
}

impl ParallelPersonTableRule {
    fn check(&self, q: &QName, name: &ObjectName, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if names_table(&self.person_table, q) {
            return;
        }
        let Some(p) = self.names.iter().find(|p| glob_match(p, &q.name)) else {
            return;
        };
        let shown = if *p == q.name { String::new() } else { format!(" (matches `{p}`)") };
        out.push(
            Finding::new(
                name_region(name).unwrap_or(cx.stmt.region),
                format!(
                    "`{q}` is a second person table{shown}: `{}` is the only person record",
                    self.person_table
                ),
            )
            .help(format!(
                "store people in {0} and reference them with contact_id; keep role-specific data in a table keyed by contact_id",
                self.person_table
            ))
            .at_statement(cx.index),
        );
    }
}

impl Rule for ParallelPersonTableRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = string_list(options, "names")? {
            self.names = v.into_iter().map(|s| s.to_lowercase()).collect();
        }
        if let Some(v) = options.get("person_table") {
            self.person_table = v.as_str().ok_or("`person_table` must be a string")?.to_string();
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        match cx.stmt.ast() {
            Some(Ast::CreateTable(ct)) if !ct.temporary => self.check(&cx.catalog.resolve(&ct.name), &ct.name, cx, out),
            Some(Ast::AlterTable(at)) => {
                let schema = cx.catalog.resolve(&at.name).schema;
                for op in &at.operations {
                    if let AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                    } = op
                    {
                        let mut q = cx.catalog.resolve(n);
                        if n.0.len() == 1 {
                            q.schema = schema.clone();
                        }
                        self.check(&q, n, cx, out);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    #[test]
    fn fires_on_person_tables() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text);\n"),
            (
                "verticals/travel/0001_travellers.sql",
                "CREATE TABLE travellers (\n    id uuid PRIMARY KEY,\n    full_name text,\n    phone text\n);\nCREATE TABLE agents (id uuid PRIMARY KEY);\nALTER TABLE agents RENAME TO staff;\n",
            ),
        ]);
        assert_eq!(ids(&d, "parallel-person-table"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "parallel-person-table"));
    }

    #[test]
    fn quiet_on_contacts_and_link_tables() {
        let d = check_ws(&[(
            "core/0001_contacts.sql",
            "CREATE TABLE contacts (id uuid PRIMARY KEY);\nCREATE TABLE container_members (container_id uuid, contact_id uuid REFERENCES contacts (id));\nCREATE TABLE personas (id uuid PRIMARY KEY);\n",
        )]);
        assert_eq!(ids(&d, "parallel-person-table"), 0, "{d:#?}");
    }
}
