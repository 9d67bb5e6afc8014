use super::fixes;
use super::lock;
use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Fix;

crate::declare_rule! {
    /// ## What it does
    /// Outside a strata workspace, flags the first statement of a migration
    /// file that takes a write-blocking lock (`SHARE` or stronger) on a table
    /// that existed before the file, when no `SET lock_timeout` (or
    /// `SET LOCAL lock_timeout`) comes before it. Inside a workspace the rule
    /// stays quiet: strata's runner sets `runner.lock_timeout` itself.
    ///
    /// ## Why is this bad?
    /// A lock request waits behind every running query that conflicts with
    /// it, and every later query on the table waits behind the request. An
    /// `ALTER TABLE` that needs a second of `ACCESS EXCLUSIVE` can stall all
    /// traffic for as long as the slowest running report takes. With a
    /// `lock_timeout`, the migration gives up instead and can be retried.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ADD COLUMN note text;
    /// -- good
    /// SET lock_timeout = '5s';
    /// ALTER TABLE orders ADD COLUMN note text;
    /// ```
    ///
    /// ## How to fix
    /// Start the file with `SET lock_timeout = '5s';` and retry the migration
    /// when it times out. `strata check --fix` adds the line. Migrations run
    /// by strata get `runner.lock_timeout` from strata.toml.
    pub struct RequireLockTimeout {
        id: "require-lock-timeout",
        group: LockSafety,
        severity: Error,
        summary: "outside a workspace: a lock on an existing table with no SET lock_timeout before it",
        needs_workspace: false,
    }
}

impl Rule for RequireLockTimeout {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if cx.env.config.is_some() {
            return;
        }
        let Some(taken) = lock::first_unguarded_lock(cx, "lock_timeout") else {
            return;
        };
        let fix = fixes::set_before_first_statement(cx.file, "lock_timeout", "5s")
            .map(|e| Fix::new("set lock_timeout at the top of the file", vec![e]));
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "{} lock on `{}` with no lock_timeout: while it waits for running queries, all {} on the table queue behind it",
                    taken.mode.name(),
                    taken.table,
                    taken.mode.blocks()
                ),
            )
            .help(
                "start the file with `SET lock_timeout = '5s';` and retry on timeout (strata's runner does this for workspace migrations)",
            )
            .with_fix(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws, fixed_text, ids, render_rule};

    #[test]
    fn fires_once_on_the_first_lock_in_a_plain_file() {
        let sql = "-- add notes\nALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX orders_note_idx ON orders (note);\n";
        let d = check_plain(sql);
        assert_eq!(ids(&d, "require-lock-timeout"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-lock-timeout"));
        assert_eq!(
            fixed_text(&d, "require-lock-timeout").unwrap(),
            "-- add notes\nSET lock_timeout = '5s';\nALTER TABLE orders ADD COLUMN note text;\nCREATE INDEX orders_note_idx ON orders (note);\n"
        );
    }

    /// A lock counts as taken by the table it was taken on then: a table
    /// dropped and made again later in the file does not make its first
    /// lock unguarded-and-new, so the file still gets one finding.
    #[test]
    fn a_lock_on_a_table_the_file_later_recreates_still_comes_first() {
        let d = check_plain("DROP TABLE orders;\nCREATE TABLE orders (id bigint PRIMARY KEY);\nDROP TABLE refunds;\n");
        assert_eq!(ids(&d, "require-lock-timeout"), 1, "{d:#?}");
        assert_eq!(ids(&d, "require-statement-timeout"), 1, "{d:#?}");
    }

    /// PostgreSQL parses these as ALTER TABLE statements; none alters a table.
    #[test]
    fn quiet_on_composite_types_and_index_options() {
        let d = check_plain(
            "ALTER TYPE pgmq.metrics_result ADD ATTRIBUTE queue_visible_length bigint;\n\
             ALTER INDEX orders_total_idx SET (fillfactor = 70);\n\
             ALTER INDEX orders_total_idx ALTER COLUMN 1 SET STATISTICS 100;\n",
        );
        assert_eq!(ids(&d, "require-lock-timeout"), 0, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_with_a_timeout_on_new_tables_and_in_a_workspace() {
        let d = check_plain("SET LOCAL lock_timeout TO '3s';\nALTER TABLE orders ADD COLUMN note text;\n");
        assert_eq!(ids(&d, "require-lock-timeout"), 0, "{d:#?}");
        let d = check_plain("CREATE TABLE notes (id int);\nALTER TABLE notes ADD COLUMN body text;\n");
        assert_eq!(ids(&d, "require-lock-timeout"), 0, "{d:#?}");
        let d = check_ws(&[
            ("core/0001_orders.sql", "CREATE TABLE orders (id bigint PRIMARY KEY);\n"),
            ("core/0002_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"),
        ]);
        assert_eq!(ids(&d, "require-lock-timeout"), 0, "{d:#?}");
    }
}
