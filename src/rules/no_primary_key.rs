use sqlparser::ast::Statement as Ast;

use super::helpers::{in_file, origin_ast};
use super::rls_missing::created_region;
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::Table;

crate::declare_rule! {
    /// ## What it does
    /// Flags a table created in the file that has no primary key by the end
    /// of the file. Partitions (`PARTITION OF`, which inherit the parent's
    /// key) and temporary tables are not flagged.
    ///
    /// ## Why is this bad?
    /// Without a primary key, rows cannot be addressed one by one: logical
    /// replication cannot replicate UPDATE and DELETE (strata's `move`
    /// cutovers replicate through it), duplicate rows creep in, and the
    /// batched keyset backfills of a reshape have no key to walk.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE deal_contacts (deal_id uuid NOT NULL, contact_id uuid NOT NULL);
    /// -- good
    /// CREATE TABLE deal_contacts (
    ///     deal_id uuid NOT NULL,
    ///     contact_id uuid NOT NULL,
    ///     PRIMARY KEY (deal_id, contact_id)
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Declare a primary key: the natural key of a link table, or
    /// `id uuid PRIMARY KEY DEFAULT gen_random_uuid()` /
    /// `id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY`.
    pub struct NoPrimaryKey {
        id: "no-primary-key",
        group: Correctness,
        severity: Error,
        summary: "a new table without a primary key",
        needs_workspace: false,
    }
}

fn is_partition(cx: &FileCtx, t: &Table) -> bool {
    matches!(origin_ast(cx, t.origin), Some(Ast::CreateTable(ct)) if ct.partition_of.is_some())
}

impl Rule for NoPrimaryKey {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let mut tables: Vec<&Table> = cx
            .catalog
            .tables
            .values()
            .filter(|t| in_file(cx, t.origin) && !t.temporary && t.primary_key().is_none() && !is_partition(cx, t))
            .collect();
        tables.sort_by_key(|t| t.origin.stmt);
        for t in tables {
            out.push(
                Finding::new(created_region(cx, t), format!("table `{}` has no primary key", t.name))
                    .help("declare a PRIMARY KEY (the natural key of a link table, or a uuid / bigint identity id)")
                    .at_statement(t.origin.stmt as usize),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_tables_without_a_primary_key() {
        let d = check_plain("CREATE TABLE deal_contacts (\n    deal_id uuid NOT NULL,\n    contact_id uuid NOT NULL\n);\n");
        assert_eq!(ids(&d, "no-primary-key"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "no-primary-key"));
    }

    #[test]
    fn a_key_added_later_in_the_file_counts() {
        let d = check_plain(
            "CREATE TABLE deal_contacts (deal_id uuid NOT NULL, contact_id uuid NOT NULL);\nALTER TABLE deal_contacts ADD PRIMARY KEY (deal_id, contact_id);\nCREATE TEMP TABLE scratch (x int);\n",
        );
        assert_eq!(ids(&d, "no-primary-key"), 0, "{d:#?}");
    }
}
