use std::collections::HashSet;

use sqlparser::ast::{AlterTableOperation, ColumnDef, ColumnOption, Ident, Statement as Ast, TableConstraint};

use super::helpers::{in_file, origin_ast, stmt_region};
use super::{ident_region, FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{ident_name, Catalog, Constraint, ConstraintKind, Table};
use crate::diag::Region;

crate::declare_rule! {
    /// ## What it does
    /// Flags a foreign key added in the file whose columns are not the leading
    /// columns of an index, primary key or unique constraint of its table by
    /// the end of the file. In a workspace, the migrations that follow in the
    /// same change (the next one, and any later one not released yet) count:
    /// the index built there, or the foreign key dropped there, is enough.
    ///
    /// ## Why is this bad?
    /// PostgreSQL indexes the referenced side of a foreign key, not the
    /// referencing side. Without an index, every DELETE or key UPDATE on the
    /// parent (deleting a contact, a container) scans the whole child table
    /// under a lock, once per parent row, and joins from parent to children
    /// scan too. On a messages table that is minutes per delete.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE messages (
    ///     id uuid PRIMARY KEY,
    ///     contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL
    /// );
    /// -- good
    /// CREATE TABLE messages (
    ///     id uuid PRIMARY KEY,
    ///     contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL
    /// );
    /// CREATE INDEX messages_contact_id_idx ON messages (contact_id);
    /// ```
    ///
    /// ## How to fix
    /// Create an index whose leading columns are the foreign key's columns, in
    /// the same file (`CONCURRENTLY`, in a no-transaction file, when the table
    /// already holds rows). A composite primary key or unique constraint that
    /// starts with those columns counts.
    pub struct FkMissingIndex {
        id: "fk-missing-index",
        group: Correctness,
        severity: Warning,
        summary: "a foreign key whose columns do not lead any index, primary key or unique constraint",
        needs_workspace: false,
    }
}

/// Whether some index or key of `t` starts with exactly the columns `fk`
/// (in any order).
fn covered(catalog: &Catalog, t: &Table, fk: &[String]) -> bool {
    let want: HashSet<&str> = fk.iter().map(String::as_str).collect();
    let leads = |cols: &[String]| cols.len() >= fk.len() && cols[..fk.len()].iter().map(String::as_str).collect::<HashSet<_>>() == want;
    catalog.indexes.values().any(|i| i.table == t.name && leads(&i.columns))
        || t.constraints
            .iter()
            .any(|k| matches!(k.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique) && leads(&k.columns))
}

fn fk_on_column<'a>(c: &'a ColumnDef, first: &str) -> Option<&'a Ident> {
    (ident_name(&c.name) == first && c.options.iter().any(|o| matches!(o.option, ColumnOption::ForeignKey(_)))).then_some(&c.name)
}

fn fk_in_constraint<'a>(k: &'a TableConstraint, first: &str) -> Option<&'a Ident> {
    match k {
        TableConstraint::ForeignKey(fk) => fk.columns.first().filter(|id| ident_name(id) == first),
        _ => None,
    }
}

/// The first column of the foreign key where the statement declares it.
fn fk_region(stmt: &Ast, first: &str) -> Option<Region> {
    let id = match stmt {
        Ast::CreateTable(ct) => ct
            .columns
            .iter()
            .find_map(|c| fk_on_column(c, first))
            .or_else(|| ct.constraints.iter().find_map(|k| fk_in_constraint(k, first))),
        Ast::AlterTable(at) => at.operations.iter().find_map(|op| match op {
            AlterTableOperation::AddColumn { column_def, .. } => fk_on_column(column_def, first),
            AlterTableOperation::AddConstraint { constraint, .. } => fk_in_constraint(constraint, first),
            _ => None,
        }),
        _ => None,
    }?;
    ident_region(id)
}

fn report(cx: &FileCtx, t: &Table, k: &Constraint, out: &mut Vec<Finding>) {
    let ConstraintKind::ForeignKey { table: target, .. } = &k.kind else {
        return;
    };
    let cols = k.columns.join(", ");
    let first = k.columns.first().map(String::as_str).unwrap_or("");
    let region = origin_ast(cx, k.origin)
        .and_then(|s| fk_region(s, first))
        .unwrap_or_else(|| stmt_region(cx.file, k.origin.stmt as usize));
    let index_name = format!("{}_{}_idx", t.name.name, k.columns.join("_"));
    // A table of this file gets its index here; an existing one without a
    // write-blocking build: CONCURRENTLY, in a no-transaction file of its own.
    let help = if in_file(cx, t.origin) {
        format!("add `CREATE INDEX {index_name} ON {} ({cols});` in this file", t.name)
    } else if t.partitioned {
        format!(
            "add an index on ({cols}) the way require-concurrent-index advises for a partitioned table: `CREATE INDEX {index_name} ON ONLY {} ({cols});`, \
             then CONCURRENTLY per partition and ATTACH PARTITION",
            t.name
        )
    } else {
        format!(
            "add `CREATE INDEX CONCURRENTLY {index_name} ON {} ({cols});` in the next migration of this change, {}",
            t.name,
            super::fixes::no_transaction_advice(cx.file)
        )
    };
    out.push(
        Finding::new(
            region,
            format!(
                "foreign key `{} ({cols})` → `{target}` has no index starting with ({cols}): each delete in `{target}` scans `{}`",
                t.name, t.name
            ),
        )
        .help(help)
        .at_statement(k.origin.stmt as usize),
    );
}

/// The catalog after the migrations that follow this one in the same
/// change: the next migration, and any later one not released yet.
fn next_migrations(cx: &FileCtx) -> Option<Catalog> {
    let m = cx.file.migration?;
    let layer = cx.file.layer_migrations;
    let pos = layer.iter().position(|x| x.path == m.path)?;
    let unreleased_from = cx.file.released_head.map_or(0, |h| h + 1);
    let next: Vec<_> = layer
        .iter()
        .enumerate()
        .skip(pos + 1)
        .take_while(|(i, _)| *i == pos + 1 || *i >= unreleased_from)
        .map(|(_, m)| m)
        .collect();
    if next.is_empty() {
        return None;
    }
    let mut catalog = cx.catalog.clone();
    for (n, m) in next.iter().enumerate() {
        let Ok(parsed) = crate::workspace::source::load_migration(m, m.rel.clone()) else {
            continue;
        };
        for (i, stmt) in parsed.statements.iter().enumerate() {
            crate::catalog::replay_statement(&mut catalog, stmt, u32::MAX - n as u32, cx.file.layer.unwrap_or(0), i);
        }
    }
    Some(catalog)
}

impl Rule for FkMissingIndex {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let mut found = Vec::new();
        for t in cx.catalog.tables.values() {
            for k in &t.constraints {
                if in_file(cx, k.origin)
                    && matches!(k.kind, ConstraintKind::ForeignKey { .. })
                    && !k.columns.is_empty()
                    && !covered(cx.catalog, t, &k.columns)
                {
                    found.push((k.origin.stmt, t, k));
                }
            }
        }
        if found.is_empty() {
            return;
        }
        // An index may arrive in the next migration of the same change (the
        // concurrent build in its own no-transaction file, as advised), or
        // the foreign key (or its table) may be gone by then.
        if let Some(later) = next_migrations(cx) {
            found.retain(|(_, t, k)| {
                let kept = later
                    .tables
                    .get(&t.name)
                    .is_some_and(|lt| lt.constraints.iter().any(|x| x.kind == k.kind && x.columns == k.columns));
                kept && !covered(&later, t, &k.columns)
            });
        }
        found.sort_by(|a, b| (a.0, &a.1.name, &a.2.columns).cmp(&(b.0, &b.1.name, &b.2.columns)));
        for (_, t, k) in found {
            report(cx, t, k, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn an_existing_table_is_told_the_concurrent_form_and_the_next_migration_may_bring_it() {
        use crate::rules::testing::check_ws;
        let base = (
            "core/0001_t.sql",
            "CREATE TABLE contacts (id uuid PRIMARY KEY);\nCREATE TABLE notes (id uuid PRIMARY KEY);\n",
        );
        let fk = (
            "core/0002_fk.sql",
            "ALTER TABLE notes ADD COLUMN contact_id uuid REFERENCES contacts (id);\n",
        );
        let d = check_ws(&[base, fk]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == "fk-missing-index").collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert_eq!(
            f[0].help.as_deref(),
            Some(
                "add `CREATE INDEX CONCURRENTLY notes_contact_id_idx ON public.notes (contact_id);` in the next migration of this change, \
                 a migration file of its own that starts with `-- strata: no-transaction`"
            )
        );
        // The advice followed: the index in the next file.
        let d = check_ws(&[
            base,
            fk,
            (
                "core/0003_idx.sql",
                "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY notes_contact_id_idx ON notes (contact_id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "fk-missing-index"), 0, "{d:#?}");
        // The next file of the change drops the foreign key again.
        let d = check_ws(&[
            base,
            fk,
            ("core/0003_undo.sql", "ALTER TABLE notes DROP CONSTRAINT notes_contact_id_fkey;\n"),
        ]);
        assert_eq!(ids(&d, "fk-missing-index"), 0, "{d:#?}");
        // A new table gets its index in its own file.
        let d = check_plain("CREATE TABLE a (id bigint PRIMARY KEY);\nCREATE TABLE b (id bigint PRIMARY KEY, a_id bigint REFERENCES a);\n");
        let f = d.iter().find(|x| x.rule == "fk-missing-index").unwrap();
        assert!(f.help.as_deref().unwrap().ends_with("(a_id);` in this file"), "{:?}", f.help);
    }

    #[test]
    fn fires_on_unindexed_foreign_keys() {
        let d = check_plain(
            "CREATE TABLE contacts (id uuid PRIMARY KEY);\nCREATE TABLE messages (\n    id uuid PRIMARY KEY,\n    contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,\n    reply_to uuid,\n    CONSTRAINT messages_reply_fkey FOREIGN KEY (reply_to) REFERENCES messages (id)\n);\nCREATE INDEX messages_sent_idx ON messages (id, contact_id);\n",
        );
        assert_eq!(ids(&d, "fk-missing-index"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "fk-missing-index"));
    }

    #[test]
    fn quiet_when_an_index_or_key_leads_with_the_columns() {
        let d = check_plain(
            "CREATE TABLE contacts (id uuid PRIMARY KEY);\nCREATE TABLE containers (id uuid PRIMARY KEY);\nCREATE TABLE container_members (\n    container_id uuid NOT NULL REFERENCES containers (id),\n    contact_id uuid NOT NULL REFERENCES contacts (id),\n    PRIMARY KEY (container_id, contact_id)\n);\nCREATE INDEX container_members_contact_id_idx ON container_members (contact_id, container_id);\n",
        );
        assert_eq!(ids(&d, "fk-missing-index"), 0, "{d:#?}");
    }
}
