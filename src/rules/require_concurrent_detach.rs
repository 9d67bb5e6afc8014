use super::fixes;
use super::fixes::At;
use super::lock;
use super::shape;
use super::shape::Shape;
use super::tokens;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER TABLE ... DETACH PARTITION` without `CONCURRENTLY` on a
    /// partitioned table that existed before the migration file. sqlparser
    /// cannot parse `DETACH PARTITION`; strata reads its keywords.
    ///
    /// ## Why is this bad?
    /// A plain detach takes an `ACCESS EXCLUSIVE` lock on the parent table:
    /// every query on every partition waits, and the request itself queues
    /// behind running queries. Since PostgreSQL 14, `DETACH PARTITION ...
    /// CONCURRENTLY` only takes `SHARE UPDATE EXCLUSIVE` on the parent.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER TABLE events DETACH PARTITION events_2023;
    /// -- good
    /// -- strata: no-transaction
    /// ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;
    /// ```
    ///
    /// ## How to fix
    /// Add `CONCURRENTLY` and run it outside a transaction (a file that starts
    /// with `-- strata: no-transaction`); `strata check --fix` does it when the
    /// file holds nothing else that needs a transaction. If a concurrent
    /// detach is interrupted, finish it with `DETACH PARTITION ... FINALIZE`.
    /// Before PostgreSQL 14 there is no concurrent form: detach in a quiet
    /// window with a short `lock_timeout`.
    ///
    /// ## PostgreSQL versions
    /// - 14: `CONCURRENTLY` exists, and is the advice and the fix; before 14 there is no fix, and `CONCURRENTLY` or `FINALIZE` is flagged as syntax PostgreSQL rejects.
    pub struct RequireConcurrentDetach {
        id: "require-concurrent-detach",
        group: LockSafety,
        severity: Error,
        summary: "DETACH PARTITION without CONCURRENTLY on an existing partitioned table (ACCESS EXCLUSIVE lock)",
        needs_workspace: false,
    }
}

impl Rule for RequireConcurrentDetach {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Shape::DetachPartition {
            table,
            concurrently,
            finalize,
        }) = shape::keyword_shape(&cx.file.parsed.source, cx.stmt)
        else {
            return;
        };
        if concurrently || finalize {
            let kw = if finalize { "FINALIZE" } else { "CONCURRENTLY" };
            if let Some(f) = super::helpers::newer_syntax(cx, kw, &format!("DETACH PARTITION ... {kw}"), 14) {
                out.push(f.help("drop the keyword and detach in a quiet window with a short lock_timeout"));
            }
            return;
        }
        let age = lock::age_of(cx, &table);
        if !age.is_live() {
            return;
        }
        let q = cx.catalog.resolve(&table);
        let (help, fix) = if cx.env.pg_version >= 14 {
            (
                format!("add `CONCURRENTLY` and put it in {}", fixes::no_transaction_advice(cx.file)),
                fixes::concurrently_fix(cx, At::End, None, "detach CONCURRENTLY outside a transaction"),
            )
        } else {
            (
                format!(
                    "PostgreSQL {} has no DETACH PARTITION CONCURRENTLY (14+): detach in a quiet window with a short lock_timeout",
                    cx.env.pg_version
                ),
                Err(format!("PostgreSQL {} has no DETACH PARTITION CONCURRENTLY", cx.env.pg_version)),
            )
        };
        out.push(
            Finding::new(
                tokens::kw_region(cx, "DETACH"),
                format!(
                    "DETACH PARTITION without CONCURRENTLY locks {} in ACCESS EXCLUSIVE mode: reads and writes on every partition wait",
                    lock::describe(age, &q)
                ),
            )
            .help(help)
            .with_fix(fix),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, check_ws_pg, finding, fixed_text, ids, known, render_rule};

    const EVENTS: &str = "CREATE TABLE events (id bigint, at timestamptz NOT NULL);\n";

    #[test]
    fn fires_on_an_existing_parent() {
        let d = check_ws(&[
            ("core/0001_events.sql", EVENTS),
            ("core/0002_detach.sql", "ALTER TABLE events DETACH PARTITION events_2023;\n"),
        ]);
        assert_eq!(ids(&d, "require-concurrent-detach"), 1, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-concurrent-detach"));
        assert_eq!(
            fixed_text(&d, "require-concurrent-detach").unwrap(),
            "-- strata: no-transaction\nALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\n"
        );
    }

    #[test]
    fn quiet_on_concurrent_finalize_and_new_tables() {
        let d = check_ws(&[
            (
                "core/0001_events.sql",
                &format!("{EVENTS}ALTER TABLE events DETACH PARTITION events_2022;\n"),
            ),
            (
                "core/0002_detach.sql",
                "-- strata: no-transaction\nALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\nALTER TABLE events DETACH PARTITION events_2023 FINALIZE;\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-detach"), 0, "{d:#?}");
    }

    #[test]
    fn no_fix_before_postgres_14() {
        let d = check_ws_pg(
            13,
            &[
                ("core/0001_events.sql", EVENTS),
                ("core/0002_detach.sql", "ALTER TABLE events DETACH PARTITION events_2023;\n"),
            ],
        );
        assert_eq!(fixed_text(&d, "require-concurrent-detach"), None);
        let f = finding(&d, "require-concurrent-detach");
        assert!(f
            .help
            .as_deref()
            .unwrap()
            .starts_with("PostgreSQL 13 has no DETACH PARTITION CONCURRENTLY (14+)"));
        let d = check_ws_pg(
            14,
            &[
                ("core/0001_events.sql", EVENTS),
                ("core/0002_detach.sql", "ALTER TABLE events DETACH PARTITION events_2023;\n"),
            ],
        );
        assert_eq!(
            fixed_text(&d, "require-concurrent-detach").unwrap(),
            "-- strata: no-transaction\nALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\n"
        );
    }

    #[test]
    fn concurrently_and_finalize_are_rejected_before_14() {
        let files = [
            ("core/0001_events.sql", EVENTS),
            (
                "core/0002_detach.sql",
                "-- strata: no-transaction\nALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;\nALTER TABLE events DETACH PARTITION events_2023 FINALIZE;\n",
            ),
        ];
        assert_eq!(ids(&check_ws_pg(14, &files), "require-concurrent-detach"), 0);
        let d = check_ws_pg(13, &files);
        let f: Vec<String> = d
            .iter()
            .filter(|x| x.rule == known("require-concurrent-detach"))
            .map(|x| x.message.clone())
            .collect();
        assert_eq!(
            f,
            vec![
                "DETACH PARTITION ... CONCURRENTLY is PostgreSQL 14 syntax: PostgreSQL 13 rejects the statement",
                "DETACH PARTITION ... FINALIZE is PostgreSQL 14 syntax: PostgreSQL 13 rejects the statement"
            ]
        );
    }
}
