use std::collections::HashSet;

use sqlparser::ast::{AlterTableOperation, AssignmentTarget, Ident, ObjectName, Statement as Ast};

use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags a column named twice: in one CREATE TABLE, an ADD COLUMN of a
    /// column the table already has (without `IF NOT EXISTS`), the same
    /// column assigned twice in an UPDATE, or listed twice in an INSERT.
    ///
    /// ## Why is this bad?
    /// PostgreSQL rejects the statement (`column "x" specified more than
    /// once`), so the migration fails in the middle of a fleet rollout: the
    /// tenants migrated before the failure and those after it end up on
    /// different schema versions. Names that differ only in case are the
    /// same column unless quoted.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE trips (id uuid PRIMARY KEY, title text, Title text);
    /// UPDATE trips SET status = 'booked', status = 'planning';
    /// -- good
    /// CREATE TABLE trips (id uuid PRIMARY KEY, title text);
    /// UPDATE trips SET status = 'booked';
    /// ```
    ///
    /// ## How to fix
    /// Remove or rename the second occurrence.
    pub struct DuplicateColumn {
        id: "duplicate-column",
        group: Correctness,
        severity: Error,
        summary: "a column named twice in CREATE TABLE, ADD COLUMN, an UPDATE or an INSERT column list",
        needs_workspace: false,
    }
}

fn column_of(name: &ObjectName) -> Option<&Ident> {
    match name.0.last()? {
        sqlparser::ast::ObjectNamePart::Identifier(id) => Some(id),
        sqlparser::ast::ObjectNamePart::Function(_) => None,
    }
}

/// Pushes a finding for every name already seen.
fn repeats<'a>(names: impl IntoIterator<Item = &'a Ident>, what: &str, cx: &StatementCtx, out: &mut Vec<Finding>) {
    let mut seen = HashSet::new();
    for id in names {
        let name = ident_name(id);
        if !seen.insert(name.clone()) {
            out.push(
                Finding::new(
                    ident_region(id).unwrap_or(cx.stmt.region),
                    format!("column `{name}` is {what} more than once; PostgreSQL rejects the statement"),
                )
                .help("remove or rename the repeated column")
                .at_statement(cx.index),
            );
        }
    }
}

impl Rule for DuplicateColumn {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        match cx.stmt.ast() {
            Some(Ast::CreateTable(ct)) => repeats(ct.columns.iter().map(|c| &c.name), "defined", cx, out),
            Some(Ast::AlterTable(at)) => {
                // PostgreSQL runs an ALTER TABLE's drops before its adds,
                // whatever their order: a column the statement drops may be
                // added again (`DROP COLUMN score, ADD COLUMN score ...`,
                // and even `ADD COLUMN score ..., DROP COLUMN score`).
                let table = cx.catalog.lookup_table(&at.name);
                let dropped: HashSet<String> = at
                    .operations
                    .iter()
                    .flat_map(|op| match op {
                        AlterTableOperation::DropColumn { column_names, .. } => column_names.iter().map(ident_name).collect(),
                        _ => Vec::new(),
                    })
                    .collect();
                let mut added: HashSet<String> = HashSet::new();
                for op in &at.operations {
                    if let AlterTableOperation::AddColumn {
                        column_def,
                        if_not_exists: false,
                        ..
                    } = op
                    {
                        let id = &column_def.name;
                        let name = ident_name(id);
                        let region = ident_region(id).unwrap_or(cx.stmt.region);
                        if added.contains(&name) {
                            out.push(
                                Finding::new(
                                    region,
                                    format!("column `{name}` is added more than once; PostgreSQL rejects the statement"),
                                )
                                .help("remove or rename the repeated column")
                                .at_statement(cx.index),
                            );
                        } else if let Some(t) = table.filter(|t| t.column(&name).is_some() && !dropped.contains(&name)) {
                            out.push(
                                Finding::new(
                                    region,
                                    format!(
                                        "table `{}` already has a column `{name}`; PostgreSQL rejects the ADD COLUMN",
                                        t.name
                                    ),
                                )
                                .help("rename the new column, or drop the ADD if the column is already there")
                                .at_statement(cx.index),
                            );
                        }
                        added.insert(name);
                    }
                }
            }
            Some(Ast::Update(u)) => {
                let targets = u.assignments.iter().flat_map(|a| match &a.target {
                    AssignmentTarget::ColumnName(n) => column_of(n).into_iter().collect::<Vec<_>>(),
                    AssignmentTarget::Tuple(ns) => ns.iter().filter_map(column_of).collect(),
                });
                repeats(targets, "assigned", cx, out);
            }
            Some(Ast::Insert(i)) => repeats(i.columns.iter().filter_map(column_of), "listed", cx, out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_repeated_columns() {
        let d = check_plain(
            "CREATE TABLE trips (\n    id uuid PRIMARY KEY,\n    title text,\n    Title text,\n    status text\n);\nALTER TABLE trips ADD COLUMN status text;\nUPDATE trips SET status = 'booked', status = 'planning';\nINSERT INTO trips (id, title, id) VALUES (gen_random_uuid(), 'x', gen_random_uuid());\n",
        );
        assert_eq!(ids(&d, "duplicate-column"), 4, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "duplicate-column"));
    }

    #[test]
    fn a_column_dropped_earlier_in_the_statement_may_be_added_again() {
        let d = check_plain(
            "CREATE TABLE scores (id bigint PRIMARY KEY, score int);\nALTER TABLE scores DROP COLUMN score, ADD COLUMN score bigint;\nALTER TABLE scores ADD COLUMN score int, DROP COLUMN score;\nALTER TABLE scores ADD COLUMN n int, ADD COLUMN n int;\n",
        );
        // Drops run first, in either order (tests/db/precision.rs); the last ALTER adds `n` twice.
        assert_eq!(ids(&d, "duplicate-column"), 1, "{d:#?}");
        assert!(d.iter().all(|x| x.rule != "duplicate-column" || x.region.start.line == 4), "{d:#?}");
    }

    #[test]
    fn quiet_on_distinct_and_if_not_exists() {
        let d = check_plain(
            "CREATE TABLE trips (id uuid PRIMARY KEY, title text, \"Title\" text);\nALTER TABLE trips ADD COLUMN IF NOT EXISTS title text;\nUPDATE trips SET title = 'x', \"Title\" = 'y';\n",
        );
        assert_eq!(ids(&d, "duplicate-column"), 0, "{d:#?}");
    }
}
