use std::collections::BTreeMap;

use sqlparser::ast::{AlterColumnOperation, AlterTableOperation};

use super::helpers::{alter_ops, column_site, here, in_file, names_table, stmt_region};
use super::rls_missing::{created_region, is_tenant_table};
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::{ident_name, ConstraintKind, QName, Table};
use crate::workspace::TenancyMode;

crate::declare_rule! {
    /// ## What it does
    /// `shared` mode only: flags a tenant table, created in the file or whose
    /// tenant key the file alters, that ends the file without the tenant key
    /// column (`tenancy.tenant_key`, e.g. `org_id`), with it nullable, or
    /// without a foreign key from it to the tenant root
    /// (`tenancy.tenant_table`).
    ///
    /// ## Why is this bad?
    /// In a shared database the tenant key is the only thing that says whose a
    /// row is: policies filter on it, exports and deletions of a tenant select
    /// by it. A row without it belongs to nobody (invisible, or visible to
    /// everyone, depending on the policy), a nullable key lets such rows in,
    /// and without the foreign key a deleted tenant leaves its rows behind.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE tasks (id uuid PRIMARY KEY, title text NOT NULL);
    /// -- good
    /// CREATE TABLE tasks (
    ///     id uuid PRIMARY KEY,
    ///     org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    ///     title text NOT NULL
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Add `<tenant_key> uuid NOT NULL REFERENCES <tenant_table> (id)`. Tables
    /// that hold no tenant data belong in `tenancy.global_tables`.
    pub struct TenantKeyMissing {
        id: "tenant-key-missing",
        group: Governance,
        severity: Error,
        summary: "shared mode: a tenant table without its NOT NULL tenant key referencing the tenant root",
        needs_workspace: true,
    }
}

/// Whether an ALTER TABLE operation touches column `key` or a constraint.
fn touches_key(op: &AlterTableOperation, key: &str) -> bool {
    match op {
        AlterTableOperation::DropColumn { column_names, .. } => column_names.iter().any(|c| ident_name(c) == key),
        AlterTableOperation::AlterColumn { column_name, op } => {
            ident_name(column_name) == key && matches!(op, AlterColumnOperation::DropNotNull | AlterColumnOperation::SetDataType { .. })
        }
        AlterTableOperation::RenameColumn { old_column_name, .. } => ident_name(old_column_name) == key,
        AlterTableOperation::DropConstraint { .. } => true,
        _ => false,
    }
}

impl Rule for TenantKeyMissing {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let Some(cfg) = cx.env.config else { return };
        if cfg.tenancy.mode != TenancyMode::Shared {
            return;
        }
        let key = cfg.tenancy.tenant_key.to_lowercase();
        let root = &cfg.tenancy.tenant_table;
        let mut touched: BTreeMap<QName, Option<usize>> = BTreeMap::new();
        for t in cx.catalog.tables.values().filter(|t| in_file(cx, t.origin)) {
            touched.insert(t.name.clone(), None);
        }
        for (i, table, op) in alter_ops(cx) {
            if touches_key(op, &key) {
                touched.entry(table).or_insert(Some(i));
            }
        }
        let mut found: Vec<(&Table, Option<usize>)> = touched
            .into_iter()
            .filter_map(|(name, at)| cx.catalog.table(&name).filter(|t| is_tenant_table(cx.env, t)).map(|t| (t, at)))
            .collect();
        found.sort_by_key(|(t, at)| at.unwrap_or(t.origin.stmt as usize));
        for (t, at) in found {
            let stmt = at.unwrap_or(t.origin.stmt as usize);
            let region = match at {
                Some(i) => stmt_region(cx.file, i),
                None => created_region(cx, t),
            };
            let problem = match t.column(&key) {
                None => Some((region, format!("tenant table `{}` has no tenant key column `{key}`", t.name))),
                Some(c) => {
                    let references_root = t.constraints.iter().any(|k| {
                        matches!(&k.kind, ConstraintKind::ForeignKey { table, .. } if names_table(root, table)) && k.columns.contains(&key)
                    });
                    let region = if at.is_none() {
                        column_site(cx, t, &key, here(cx, c.origin)).0
                    } else {
                        region
                    };
                    if !c.not_null {
                        Some((
                            region,
                            format!("tenant key `{}.{key}` is nullable: rows without a tenant can be written", t.name),
                        ))
                    } else if !references_root {
                        Some((
                            region,
                            format!(
                                "tenant key `{}.{key}` has no foreign key to `{root}`: a deleted tenant leaves its rows behind",
                                t.name
                            ),
                        ))
                    } else {
                        None
                    }
                }
            };
            if let Some((region, message)) = problem {
                out.push(
                    Finding::new(region, message)
                        .help(format!(
                            "declare `{key} uuid NOT NULL REFERENCES {root} (id)`, or list the table in tenancy.global_tables"
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

    const SHARED: &str = "pg_version = 15\n[tenancy]\nmode = \"shared\"\ntenant_key = \"org_id\"\ntenant_table = \"organizations\"\ntenant_context = \"current_setting('app.org_id')::uuid\"\napp_role = \"authenticated\"\nglobal_tables = [\"countries\"]\n";

    fn shared(files: &[(&str, &str)]) -> Vec<crate::diag::Diagnostic> {
        check_ws_with(files, |root| std::fs::write(root.join("strata.toml"), SHARED).unwrap())
    }

    const ORGS: &str = "CREATE TABLE organizations (id uuid PRIMARY KEY, name text NOT NULL);\n";

    #[test]
    fn fires_on_missing_nullable_or_unreferenced_keys() {
        let d = shared(&[
            ("core/0001_orgs.sql", ORGS),
            (
                "core/0002_crm.sql",
                "CREATE TABLE tasks (\n    id uuid PRIMARY KEY,\n    title text NOT NULL\n);\nCREATE TABLE leads (\n    id uuid PRIMARY KEY,\n    org_id uuid REFERENCES organizations (id)\n);\nCREATE TABLE notes (\n    id uuid PRIMARY KEY,\n    org_id uuid NOT NULL\n);\n",
            ),
        ]);
        assert_eq!(ids(&d, "tenant-key-missing"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "tenant-key-missing"));
    }

    #[test]
    fn quiet_on_keyed_global_and_root_tables() {
        let d = shared(&[
            ("core/0001_orgs.sql", ORGS),
            (
                "core/0002_crm.sql",
                "CREATE TABLE tasks (id uuid PRIMARY KEY, org_id uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE);\nCREATE TABLE countries (code text PRIMARY KEY);\n",
            ),
        ]);
        assert_eq!(ids(&d, "tenant-key-missing"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_in_database_per_tenant_mode() {
        let d = check_ws(&[("core/0001_tasks.sql", "CREATE TABLE tasks (id uuid PRIMARY KEY);\n")]);
        assert_eq!(ids(&d, "tenant-key-missing"), 0, "{d:#?}");
    }
}
