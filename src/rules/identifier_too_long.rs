use sqlparser::ast::{
    AlterTableOperation, Ident, ObjectName, ObjectNamePart, RenameTableNameKind, SchemaName, Statement as Ast, TableConstraint,
};

use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags names longer than 63 bytes given to tables, columns, constraints,
    /// indexes, views, functions, types, schemas, sequences, policies and
    /// triggers.
    ///
    /// ## Why is this bad?
    /// PostgreSQL silently truncates identifiers to 63 bytes (NAMEDATALEN - 1)
    /// and only prints a NOTICE. Two long names that share their first 63
    /// bytes become the same object (the second CREATE fails, or an
    /// `IF NOT EXISTS` quietly does nothing), and code that spells the full
    /// name in `DROP INDEX` or in error handling never matches.
    ///
    /// ## Example
    /// ```sql
    /// -- bad (66 bytes)
    /// CREATE INDEX container_share_target_knowledge_item_id_created_at_and_reason_idx
    ///     ON container_share (target_knowledge_item_id, created_at, reason);
    /// -- good
    /// CREATE INDEX container_share_target_item_created_idx
    ///     ON container_share (target_knowledge_item_id, created_at, reason);
    /// ```
    ///
    /// ## How to fix
    /// Choose a shorter name (at most 63 bytes; non-ASCII characters take
    /// more than one byte each).
    pub struct IdentifierTooLong {
        id: "identifier-too-long",
        group: Correctness,
        severity: Error,
        summary: "an identifier longer than 63 bytes, which PostgreSQL truncates silently",
        needs_workspace: false,
    }
}

/// PostgreSQL's NAMEDATALEN - 1.
const MAX_BYTES: usize = 63;

fn last(name: &ObjectName) -> Option<&Ident> {
    match name.0.last()? {
        ObjectNamePart::Identifier(id) => Some(id),
        ObjectNamePart::Function(_) => None,
    }
}

fn constraint_name(c: &TableConstraint) -> Option<&Ident> {
    match c {
        TableConstraint::Unique(u) => u.name.as_ref(),
        TableConstraint::PrimaryKey(p) => p.name.as_ref(),
        TableConstraint::ForeignKey(f) => f.name.as_ref(),
        TableConstraint::Check(c) => c.name.as_ref(),
        _ => None,
    }
}

/// The names a statement gives to new objects (existing names it only
/// refers to were checked where they were defined).
fn defined_names(stmt: &Ast) -> Vec<&Ident> {
    let mut out: Vec<&Ident> = Vec::new();
    match stmt {
        Ast::CreateTable(ct) => {
            out.extend(last(&ct.name));
            for c in &ct.columns {
                out.push(&c.name);
                out.extend(c.options.iter().filter_map(|o| o.name.as_ref()));
            }
            out.extend(ct.constraints.iter().filter_map(constraint_name));
        }
        Ast::AlterTable(at) => {
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        out.push(&column_def.name);
                        out.extend(column_def.options.iter().filter_map(|o| o.name.as_ref()));
                    }
                    AlterTableOperation::AddConstraint { constraint, .. } => out.extend(constraint_name(constraint)),
                    AlterTableOperation::RenameColumn { new_column_name, .. } => out.push(new_column_name),
                    AlterTableOperation::RenameConstraint { new_name, .. } => out.push(new_name),
                    AlterTableOperation::RenameTable {
                        table_name: RenameTableNameKind::As(n) | RenameTableNameKind::To(n),
                    } => out.extend(last(n)),
                    _ => {}
                }
            }
        }
        Ast::CreateIndex(ci) => out.extend(ci.name.as_ref().and_then(last)),
        Ast::CreateView(cv) => out.extend(last(&cv.name)),
        Ast::CreateFunction(cf) => out.extend(last(&cf.name)),
        Ast::CreateType { name, .. } => out.extend(last(name)),
        Ast::CreateSequence { name, .. } => out.extend(last(name)),
        Ast::CreatePolicy(p) => out.push(&p.name),
        Ast::CreateTrigger(t) => out.extend(last(&t.name)),
        Ast::CreateSchema {
            schema_name: SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _),
            ..
        } => out.extend(last(n)),
        _ => {}
    }
    out
}

impl Rule for IdentifierTooLong {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        for id in defined_names(stmt) {
            let name = if id.quote_style.is_some() {
                id.value.clone()
            } else {
                id.value.to_lowercase()
            };
            if name.len() <= MAX_BYTES {
                continue;
            }
            let kept: String = name
                .char_indices()
                .take_while(|(i, c)| i + c.len_utf8() <= MAX_BYTES)
                .map(|(_, c)| c)
                .collect();
            out.push(
                Finding::new(
                    ident_region(id).unwrap_or(cx.stmt.region),
                    format!(
                        "`{name}` is {} bytes; PostgreSQL keeps only the first {MAX_BYTES}: `{kept}`",
                        name.len()
                    ),
                )
                .help("choose a name of at most 63 bytes")
                .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_names_over_63_bytes() {
        let d = check_plain(
            "CREATE TABLE container_share (id uuid PRIMARY KEY, target_knowledge_item_id uuid, created_at timestamptz, reason text);\nCREATE INDEX container_share_target_knowledge_item_id_created_at_and_reason_idx\n    ON container_share (target_knowledge_item_id, created_at, reason);\nALTER TABLE container_share ADD COLUMN the_knowledge_item_the_share_was_copied_from_when_it_crossed_the_wall_id uuid;\n",
        );
        assert_eq!(ids(&d, "identifier-too-long"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "identifier-too-long"));
    }

    #[test]
    fn quiet_at_63_bytes() {
        let name = "a".repeat(63);
        let d = check_plain(&format!("CREATE TABLE {name} (id uuid PRIMARY KEY);"));
        assert_eq!(ids(&d, "identifier-too-long"), 0, "{d:#?}");
    }
}
