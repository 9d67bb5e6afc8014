use super::fixes;
use super::lock;
use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Fix;

crate::declare_rule! {
    /// ## What it does
    /// Outside a strata workspace, flags the first statement of a migration
    /// file that takes a write-blocking lock on a table that existed before
    /// the file, when no `SET statement_timeout` (or `SET LOCAL`) comes
    /// before it. Inside a workspace the rule stays quiet: strata's runner
    /// sets `runner.statement_timeout` itself.
    ///
    /// ## Why is this bad?
    /// Once it holds the lock, a statement that takes longer than expected (a
    /// rewrite, a scan, an index build on a bigger table than in staging)
    /// keeps the table blocked until it ends. A `statement_timeout` bounds
    /// the damage: the statement is cancelled and the transaction rolls back.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);
    /// -- good
    /// SET statement_timeout = '10min';
    /// ALTER TABLE orders ALTER COLUMN note TYPE varchar(200);
    /// ```
    ///
    /// ## How to fix
    /// Start the file with `SET statement_timeout = '10min';` (sized for the
    /// largest tenant). `strata check --fix` adds the line. Migrations run by
    /// strata get `runner.statement_timeout` from strata.toml.
    pub struct RequireStatementTimeout {
        id: "require-statement-timeout",
        group: LockSafety,
        severity: Warning,
        summary: "outside a workspace: a lock on an existing table with no SET statement_timeout before it",
        needs_workspace: false,
    }
}

impl Rule for RequireStatementTimeout {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if cx.env.config.is_some() {
            return;
        }
        let Some(taken) = lock::first_unguarded_lock(cx, "statement_timeout") else {
            return;
        };
        let fix = fixes::set_before_first_statement(cx.file, "statement_timeout", "10min")
            .map(|e| Fix::new("set statement_timeout at the top of the file", vec![e]));
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "{} lock on `{}` with no statement_timeout: if the statement runs long, {} on the table stay blocked until it ends",
                    taken.mode.name(),
                    taken.table,
                    taken.mode.blocks()
                ),
            )
            .help("start the file with `SET statement_timeout = '10min';` (strata's runner does this for workspace migrations)")
            .with_fix(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws, ids, render_rule};

    #[test]
    fn fires_once_in_a_plain_file() {
        let d = check_plain("SET lock_timeout = '5s';\nALTER TABLE orders ALTER COLUMN note TYPE varchar(200);\nVACUUM FULL orders;\n");
        assert_eq!(ids(&d, "require-statement-timeout"), 1, "{d:#?}");
        assert_eq!(ids(&d, "require-lock-timeout"), 0, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-statement-timeout"));
    }

    #[test]
    fn quiet_with_a_timeout_or_in_a_workspace() {
        let d = check_plain("SET statement_timeout = '10min';\nALTER TABLE orders ADD COLUMN note text;\n");
        assert_eq!(ids(&d, "require-statement-timeout"), 0, "{d:#?}");
        let d = check_plain("SET statement_timeout = 0;\nALTER TABLE orders ADD COLUMN note text;\n");
        assert_eq!(ids(&d, "require-statement-timeout"), 1, "a timeout of 0 is no timeout: {d:#?}");
        let d = check_ws(&[
            ("core/0001_orders.sql", "CREATE TABLE orders (id bigint PRIMARY KEY);\n"),
            ("core/0002_note.sql", "ALTER TABLE orders ADD COLUMN note text;\n"),
        ]);
        assert_eq!(ids(&d, "require-statement-timeout"), 0, "{d:#?}");
    }
}
