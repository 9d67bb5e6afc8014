use std::collections::BTreeMap;

use sqlparser::ast::{AlterTableOperation, Ident, Statement as Ast};

use super::helpers::{alter_ops, column_site, here, names_table, typed_columns, TypeSource};
use super::{glob_match, ident_region, string_list, FileCtx, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::{ident_name, ConstraintKind, QName, Table};

crate::declare_rule! {
    /// ## What it does
    /// Flags a column that points at a person under another name than
    /// `contact_id` / `<role>_contact_id` (`user_id`, `person_id`,
    /// `customer_id`, `sender_id`, `owner_id`, `assignee_id`, ...;
    /// configurable), and a `contact_id` / `*_contact_id` column added in the
    /// file that has no foreign key to `contacts(id)` by the end of the file.
    ///
    /// ## Why is this bad?
    /// Wherever a person appears, the row holds a `contact_id` pointing back at
    /// `contacts.id`; that is what lets a person be followed across deals,
    /// messages and trips, merged when duplicated, and never split into two
    /// identities. A `user_id` column is a parallel identity waiting to
    /// happen, and a `contact_id` without a foreign key silently accepts ids
    /// of deleted or never-existing people.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE tasks (id uuid PRIMARY KEY, assignee_id uuid, contact_id uuid);
    /// -- good
    /// CREATE TABLE tasks (
    ///     id uuid PRIMARY KEY,
    ///     assignee_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
    ///     contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Name the column `contact_id` or `<role>_contact_id` and give it
    /// `REFERENCES contacts (id)` (with the `ON DELETE` the relationship
    /// needs).
    ///
    /// ## Options
    /// `patterns`: column name patterns (`*` wildcards) that point at a
    /// person; `contact_columns`: the names a person reference must have
    /// (default `contact_id`, `*_contact_id`); `person_table` (default
    /// `contacts`).
    pub struct PersonRefNotContact {
        id: "person-ref-not-contact",
        group: Governance,
        severity: Error,
        summary: "a column that points at a person but is not a contact_id with a foreign key to contacts(id)",
        needs_workspace: true,
    }
}

/// The configured instance (the declared type holds only metadata).
#[derive(Debug, Clone)]
pub struct PersonRefNotContactRule {
    patterns: Vec<String>,
    contact_columns: Vec<String>,
    person_table: String,
}

impl Default for PersonRefNotContactRule {
    fn default() -> Self {
        let patterns = [
            "user_id",
            "*_user_id",
            "person_id",
            "customer_id",
            "sender_id",
            "owner_id",
            "assignee_id",
            "member_id",
            "profile_id",
            "employee_id",
            "staff_id",
            "created_by",
            "updated_by",
        ];
        PersonRefNotContactRule {
            patterns: patterns.into_iter().map(str::to_string).collect(),
            contact_columns: vec!["contact_id".into(), "*_contact_id".into()],
            person_table: "contacts".into(),
        }
    }
}

impl PersonRefNotContactRule {
    fn is_contact_column(&self, name: &str) -> bool {
        self.contact_columns.iter().any(|p| glob_match(p, name))
    }

    fn check_name(&self, table: &QName, id: &Ident, references: bool, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let name = ident_name(id);
        if self.is_contact_column(&name) {
            return;
        }
        let Some(p) = self.patterns.iter().find(|p| glob_match(p, &name)) else {
            return;
        };
        let role = name.trim_end_matches("_id");
        let suggestion = if role == "user" || role == "person" || role == "customer" || role == "member" {
            "contact_id".to_string()
        } else {
            format!("{role}_contact_id")
        };
        let shown = if *p == name { String::new() } else { format!(" (matches `{p}`)") };
        if references {
            // The reference is there; only the name differs.
            out.push(
                Finding::new(
                    ident_region(id).unwrap_or(cx.stmt.region),
                    format!(
                        "column `{table}.{name}` references `{}` but is named `{name}`: a person reference is named \
                         contact_id or <role>_contact_id, so that it reads as one wherever it appears",
                        self.person_table
                    ),
                )
                .help(format!("name it `{suggestion}` (the foreign key stays as it is)"))
                .at_statement(cx.index),
            );
            return;
        }
        out.push(
            Finding::new(
                ident_region(id).unwrap_or(cx.stmt.region),
                format!(
                    "column `{table}.{name}` points at a person{shown}: people are referenced by a contact_id column to `{}`",
                    self.person_table
                ),
            )
            .help(format!("name it `{suggestion}` with `REFERENCES {} (id)`", self.person_table))
            .at_statement(cx.index),
        );
    }

    /// Whether the statement gives the column a foreign key to the person table.
    fn declares_person_reference(&self, stmt: &Ast, c: &super::helpers::TypedColumn) -> bool {
        let person = |name: &sqlparser::ast::ObjectName| {
            name.0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|id| ident_name(id) == self.person_table)
        };
        let column = ident_name(c.name);
        c.options
            .iter()
            .any(|o| matches!(&o.option, sqlparser::ast::ColumnOption::ForeignKey(fk) if person(&fk.foreign_table)))
            || matches!(stmt, Ast::CreateTable(ct) if ct.constraints.iter().any(|k| matches!(k,
                sqlparser::ast::TableConstraint::ForeignKey(fk)
                    if person(&fk.foreign_table) && fk.columns.iter().any(|id| ident_name(id) == column))))
    }

    fn references_person_table(&self, t: &Table, column: &str) -> bool {
        t.constraints.iter().any(|k| match &k.kind {
            ConstraintKind::ForeignKey { table, columns } => {
                k.columns.iter().any(|c| c == column)
                    && names_table(&self.person_table, table)
                    && (columns.is_empty() || columns.iter().any(|c| c == "id"))
            }
            _ => false,
        })
    }
}

impl Rule for PersonRefNotContactRule {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn configure(&mut self, options: &toml::Table) -> Result<(), String> {
        if let Some(v) = string_list(options, "patterns")? {
            self.patterns = v.into_iter().map(|s| s.to_lowercase()).collect();
        }
        if let Some(v) = string_list(options, "contact_columns")? {
            self.contact_columns = v.into_iter().map(|s| s.to_lowercase()).collect();
        }
        if let Some(v) = options.get("person_table") {
            self.person_table = v.as_str().ok_or("`person_table` must be a string")?.to_string();
        }
        Ok(())
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        for c in typed_columns(stmt, cx.catalog) {
            if c.source != TypeSource::AlterType {
                let references = self.declares_person_reference(stmt, &c);
                self.check_name(&c.table, c.name, references, cx, out);
            }
        }
        if let Ast::AlterTable(at) = stmt {
            let table = cx.catalog.resolve(&at.name);
            for op in &at.operations {
                if let AlterTableOperation::RenameColumn {
                    old_column_name,
                    new_column_name,
                } = op
                {
                    let references = cx
                        .catalog
                        .table(&table)
                        .is_some_and(|t| self.references_person_table(t, &ident_name(old_column_name)));
                    self.check_name(&table, new_column_name, references, cx, out);
                }
            }
        }
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        // Columns renamed in this file, with the renaming statement.
        let renamed: BTreeMap<(QName, String), usize> = alter_ops(cx)
            .into_iter()
            .filter_map(|(i, table, op)| match op {
                AlterTableOperation::RenameColumn { new_column_name, .. } => Some(((table, ident_name(new_column_name)), i)),
                _ => None,
            })
            .collect();
        let mut found = Vec::new();
        for t in cx.catalog.tables.values() {
            for c in &t.columns {
                let at = here(cx, c.origin).or_else(|| renamed.get(&(t.name.clone(), c.name.clone())).copied());
                if let Some(at) = at.filter(|_| self.is_contact_column(&c.name) && !self.references_person_table(t, &c.name)) {
                    found.push((at, t, c));
                }
            }
        }
        found.sort_by(|a, b| (a.0, &a.1.name, &a.2.name).cmp(&(b.0, &b.1.name, &b.2.name)));
        for (at, t, c) in found {
            let (region, stmt) = column_site(cx, t, &c.name, Some(at));
            let mut f = Finding::new(
                region,
                format!(
                    "column `{}.{}` has no foreign key to `{}`(id) by the end of the file",
                    t.name, c.name, self.person_table
                ),
            )
            .help(format!(
                "add `REFERENCES {} (id)` with the ON DELETE the relationship needs",
                self.person_table
            ));
            f.statement = stmt;
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const CONTACTS: &str = "CREATE TABLE contacts (id uuid PRIMARY KEY, phone text);\n";

    #[test]
    fn fires_on_person_columns_and_unreferenced_contact_ids() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            (
                "verticals/agency/0001_tasks.sql",
                "CREATE TABLE tasks (\n    id uuid PRIMARY KEY,\n    assignee_id uuid,\n    contact_id uuid,\n    created_by uuid\n);\nALTER TABLE tasks ADD COLUMN reviewer_contact_id uuid;\n",
            ),
        ]);
        assert_eq!(ids(&d, "person-ref-not-contact"), 4, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "person-ref-not-contact"));
    }

    #[test]
    fn a_person_column_that_references_contacts_is_told_only_its_name() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            (
                "core/0002_tasks.sql",
                "CREATE TABLE tasks (id uuid PRIMARY KEY, owner_id uuid REFERENCES contacts (id),\n    user_id uuid, FOREIGN KEY (user_id) REFERENCES public.contacts (id));\n",
            ),
        ]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == "person-ref-not-contact").collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert!(
            f[0].message
                .contains("`public.tasks.owner_id` references `contacts` but is named `owner_id`"),
            "{}",
            f[0].message
        );
        assert_eq!(
            f[0].help.as_deref(),
            Some("name it `owner_contact_id` (the foreign key stays as it is)")
        );
        assert_eq!(f[1].help.as_deref(), Some("name it `contact_id` (the foreign key stays as it is)"));
    }

    #[test]
    fn quiet_on_referenced_contact_columns() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", CONTACTS),
            (
                "verticals/agency/0001_tasks.sql",
                "CREATE TABLE tasks (\n    id uuid PRIMARY KEY,\n    assignee_contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,\n    contact_id uuid\n);\nALTER TABLE tasks ADD CONSTRAINT tasks_contact_fkey FOREIGN KEY (contact_id) REFERENCES contacts (id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "person-ref-not-contact"), 0, "{d:#?}");
    }
}
