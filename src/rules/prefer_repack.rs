use sqlparser::ast::{ObjectName, Statement};

use super::lock;
use super::shape;
use super::shape::Shape;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `VACUUM FULL` and `CLUSTER` in a migration, unless they name a
    /// table created earlier in the same file. sqlparser cannot parse
    /// `CLUSTER` or `VACUUM (FULL)`; strata reads their keywords.
    ///
    /// ## Why is this bad?
    /// Both rewrite the whole table (and rebuild its indexes) while holding
    /// an `ACCESS EXCLUSIVE` lock: nothing can read or write the table until
    /// the rewrite ends, minutes to hours on a bloated table. Without a table
    /// name they do this to every table of the database.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// VACUUM FULL messages;
    /// CLUSTER messages USING messages_container_id_idx;
    /// -- good: outside the migration, online
    /// -- pg_repack --table=messages --order-by=container_id
    /// ```
    ///
    /// ## How to fix
    /// Reclaim space or reorder rows online with `pg_repack` (or
    /// `pg_squeeze`), run by operations outside the migration: it rebuilds
    /// the table in the background and takes the exclusive lock only for the
    /// final swap. Plain `VACUUM` (no `FULL`) does not block.
    pub struct PreferRepack {
        id: "prefer-repack",
        group: LockSafety,
        severity: Error,
        summary: "VACUUM FULL or CLUSTER (rewrite under ACCESS EXCLUSIVE): use pg_repack",
        needs_workspace: false,
    }
}

impl Rule for PreferRepack {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let (what, table): (&str, Option<ObjectName>) = match cx.stmt.ast() {
            Some(Statement::Vacuum(v)) if v.full => ("VACUUM FULL", v.table_name.clone()),
            Some(_) => return,
            None => match shape::keyword_shape(&cx.file.parsed.source, cx.stmt) {
                Some(Shape::VacuumFull { table }) => ("VACUUM FULL", table),
                Some(Shape::Cluster { table }) => ("CLUSTER", table),
                _ => return,
            },
        };
        let target = match &table {
            Some(t) => {
                let age = lock::age_of(cx, t);
                if !age.is_live() {
                    return;
                }
                lock::describe(age, &cx.catalog.resolve(t))
            }
            None => "every table of the database".to_string(),
        };
        out.push(
            Finding::new(
                cx.stmt.region,
                format!("{what} rewrites {target} under an ACCESS EXCLUSIVE lock: no reads or writes until it ends"),
            )
            .help("reclaim space or reorder rows online with pg_repack (or pg_squeeze), outside the migration"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const MESSAGES: &str = "CREATE TABLE messages (id bigint PRIMARY KEY, container_id uuid NOT NULL);\nCREATE INDEX messages_container_id_idx ON messages (container_id);\n";

    #[test]
    fn fires_on_vacuum_full_and_cluster() {
        let d = check_ws(&[
            ("core/0001_messages.sql", MESSAGES),
            (
                "core/0002_compact.sql",
                "-- strata: no-transaction\nVACUUM FULL messages;\nCLUSTER messages USING messages_container_id_idx;\nVACUUM (FULL, ANALYZE);\n",
            ),
        ]);
        assert_eq!(ids(&d, "prefer-repack"), 3, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-repack"));
    }

    #[test]
    fn quiet_on_plain_vacuum_and_new_tables() {
        let d = check_ws(&[
            (
                "core/0001_messages.sql",
                &format!("{MESSAGES}CLUSTER messages USING messages_container_id_idx;\n"),
            ),
            ("core/0002_vacuum.sql", "-- strata: no-transaction\nVACUUM messages;\n"),
        ]);
        assert_eq!(ids(&d, "prefer-repack"), 0, "{d:#?}");
    }
}
