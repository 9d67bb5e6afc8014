use sqlparser::ast::{AlterTableOperation, TableConstraint};

use super::lock;
use super::tokens;
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ADD CONSTRAINT ... EXCLUDE` on a table that existed before the
    /// migration file.
    ///
    /// ## Why is this bad?
    /// An exclusion constraint builds its index and checks every row while
    /// the `ALTER TABLE` holds an `ACCESS EXCLUSIVE` lock: no reads or writes
    /// until it is done. Unlike `UNIQUE` and `PRIMARY KEY`, it cannot be
    /// attached to an index built concurrently, and it cannot be added
    /// `NOT VALID`.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: bookings exists and holds data
    /// ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap
    ///     EXCLUDE USING gist (room_id WITH =, during WITH &&);
    /// -- good: declare it when the table is created
    /// CREATE TABLE bookings (room_id bigint, during tstzrange,
    ///     CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&));
    /// ```
    ///
    /// ## How to fix
    /// Declare exclusion constraints when the table is created. On a live
    /// table, add it in a maintenance window with a short `lock_timeout`, or
    /// enforce the rule another way (a trigger, a unique index over a
    /// normalized key).
    pub struct ExclusionConstraint {
        id: "exclusion-constraint",
        group: LockSafety,
        severity: Error,
        summary: "ADD EXCLUDE constraint on an existing table (index build and check under ACCESS EXCLUSIVE)",
        needs_workspace: false,
    }
}

impl Rule for ExclusionConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some((at, age, table)) = lock::live_alter(cx) else { return };
        for op in &at.operations {
            let AlterTableOperation::AddConstraint {
                constraint: TableConstraint::Exclude(ex),
                ..
            } = op
            else {
                continue;
            };
            let label = ex.name.as_ref().map_or(String::new(), |n| format!(" `{n}`"));
            out.push(
                Finding::new(
                    ex.name
                        .as_ref()
                        .and_then(ident_region)
                        .or_else(|| Some(tokens::kw_region(cx, "EXCLUDE")))
                        .unwrap_or(cx.stmt.region),
                    format!(
                        "exclusion constraint{label} on {} builds its index and checks every row under an ACCESS EXCLUSIVE lock",
                        lock::describe(age, &table)
                    ),
                )
                .help("declare it when the table is created; on a live table add it in a maintenance window with a short lock_timeout"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const BOOKINGS: &str = "CREATE TABLE bookings (id bigint PRIMARY KEY, room_id bigint NOT NULL, during tstzrange NOT NULL);\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_bookings.sql", BOOKINGS),
            (
                "core/0002_no_overlap.sql",
                "ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap\n    EXCLUDE USING gist (room_id WITH =, during WITH &&);\n",
            ),
        ]);
        assert_eq!(ids(&d, "exclusion-constraint"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "exclusion-constraint"));
    }

    #[test]
    fn quiet_on_a_new_table() {
        let d = check_ws(&[(
            "core/0001_bookings.sql",
            &format!(
                "{BOOKINGS}ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (room_id WITH =, during WITH &&);\n"
            ),
        )]);
        assert_eq!(ids(&d, "exclusion-constraint"), 0, "{d:#?}");
    }
}
