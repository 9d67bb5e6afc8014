use super::fixes;
use super::fixes::At;
use super::lock::{self, TableAge};
use super::shape;
use super::shape::Shape;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `REINDEX` without `CONCURRENTLY` on an index, table, schema or
    /// database that existed before the migration file. sqlparser cannot
    /// parse `REINDEX`; strata reads its keywords.
    ///
    /// ## Why is this bad?
    /// A plain `REINDEX` takes an `ACCESS EXCLUSIVE` lock on each index it
    /// rebuilds (queries that would use it wait) and a `SHARE` lock on its
    /// table (writes wait), for the whole rebuild. Since PostgreSQL 12,
    /// `REINDEX CONCURRENTLY` rebuilds without blocking reads or writes.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// REINDEX INDEX orders_customer_idx;
    /// -- good
    /// -- strata: no-transaction
    /// REINDEX INDEX CONCURRENTLY orders_customer_idx;
    /// ```
    ///
    /// ## How to fix
    /// Add `CONCURRENTLY` and run it outside a transaction (a file that starts
    /// with `-- strata: no-transaction`); `strata check --fix` does it when the
    /// file holds only index statements. Before PostgreSQL 12, build a
    /// replacement with `CREATE INDEX CONCURRENTLY`, drop the old index
    /// concurrently and rename the new one.
    ///
    /// ## PostgreSQL versions
    /// - 12: `REINDEX CONCURRENTLY` exists, and is the advice and the fix; before 12 the advice is a replacement index, with no fix, and `CONCURRENTLY` is flagged as syntax PostgreSQL rejects.
    pub struct RequireConcurrentReindex {
        id: "require-concurrent-reindex",
        group: LockSafety,
        severity: Error,
        summary: "REINDEX without CONCURRENTLY on existing indexes (locks the table for the rebuild)",
        needs_workspace: false,
    }
}

impl Rule for RequireConcurrentReindex {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Shape::Reindex {
            kind, name, concurrently, ..
        }) = shape::keyword_shape(&cx.file.parsed.source, cx.stmt)
        else {
            return;
        };
        if concurrently {
            if let Some(f) = super::helpers::newer_syntax(cx, "CONCURRENTLY", "REINDEX ... CONCURRENTLY", 12) {
                out.push(f.help("build a replacement with CREATE INDEX CONCURRENTLY, drop the old index concurrently, rename"));
            }
            return;
        }
        let age = match (kind.as_str(), &name) {
            ("INDEX", Some(n)) => cx
                .catalog
                .index_table(n)
                .map(|t| lock::table_age(cx.catalog, cx.file, cx.index, &t)),
            ("TABLE", Some(n)) => Some(lock::age_of(cx, n)),
            ("SCHEMA", Some(n)) => {
                let schema = cx.catalog.resolve(n).name;
                cx.catalog
                    .schemas
                    .get(&schema)
                    .map(|o| if o.file == cx.file.id { TableAge::New } else { TableAge::Existing })
            }
            _ => None,
        }
        .unwrap_or(TableAge::Unknown);
        if !age.is_live() {
            return;
        }
        let target = match &name {
            Some(n) => format!("{} `{n}`", kind.to_lowercase()),
            None => kind.to_lowercase(),
        };
        let (help, fix) = if kind == "SYSTEM" {
            (
                "REINDEX SYSTEM cannot run concurrently: do it in a maintenance window, not in a migration".to_string(),
                Err("REINDEX SYSTEM cannot run concurrently".to_string()),
            )
        } else if cx.env.pg_version >= 12 {
            (
                format!(
                    "use `REINDEX {kind} CONCURRENTLY`, in {}",
                    super::fixes::no_transaction_advice(cx.file)
                ),
                fixes::concurrently_fix(cx, At::Keyword(&kind), None, "rebuild CONCURRENTLY outside a transaction"),
            )
        } else {
            (
                format!(
                    "PostgreSQL {} has no REINDEX CONCURRENTLY: build a replacement with CREATE INDEX CONCURRENTLY, drop the old index concurrently, rename",
                    cx.env.pg_version
                ),
                Err(format!("PostgreSQL {} has no REINDEX CONCURRENTLY", cx.env.pg_version)),
            )
        };
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "REINDEX of {target} without CONCURRENTLY locks out queries on the index and writes on its table for the whole rebuild"
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

    const ORDERS: &str =
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\nCREATE INDEX orders_customer_idx ON orders (customer_id);\n";

    #[test]
    fn fires_on_an_existing_index() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_reindex.sql",
                "-- bloat after the import\nREINDEX INDEX orders_customer_idx;\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-reindex"), 1, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-concurrent-reindex"));
        assert_eq!(
            fixed_text(&d, "require-concurrent-reindex").unwrap(),
            "-- strata: no-transaction\n-- bloat after the import\nREINDEX INDEX CONCURRENTLY orders_customer_idx;\n"
        );
    }

    #[test]
    fn quiet_when_concurrent_or_new() {
        let d = check_ws(&[
            ("core/0001_orders.sql", &format!("{ORDERS}REINDEX TABLE orders;\n")),
            (
                "core/0002_reindex.sql",
                "-- strata: no-transaction\nREINDEX (VERBOSE) TABLE CONCURRENTLY orders;\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-reindex"), 0, "{d:#?}");
    }

    #[test]
    fn no_fix_before_postgres_12() {
        let d = check_ws_pg(
            11,
            &[
                ("core/0001_orders.sql", ORDERS),
                ("core/0002_reindex.sql", "REINDEX TABLE orders;\n"),
            ],
        );
        assert_eq!(fixed_text(&d, "require-concurrent-reindex"), None);
        let f = finding(&d, "require-concurrent-reindex");
        assert!(f.help.as_deref().unwrap().contains("PostgreSQL 11 has no REINDEX CONCURRENTLY"));
        let d = check_ws_pg(
            12,
            &[
                ("core/0001_orders.sql", ORDERS),
                ("core/0002_reindex.sql", "REINDEX TABLE orders;\n"),
            ],
        );
        assert_eq!(
            fixed_text(&d, "require-concurrent-reindex").unwrap(),
            "-- strata: no-transaction\nREINDEX TABLE CONCURRENTLY orders;\n"
        );
    }

    #[test]
    fn concurrently_is_rejected_before_12() {
        let files = [
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_reindex.sql",
                "-- strata: no-transaction\nREINDEX INDEX CONCURRENTLY orders_customer_idx;\n",
            ),
        ];
        assert_eq!(ids(&check_ws_pg(12, &files), "require-concurrent-reindex"), 0);
        let d = check_ws_pg(11, &files);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("require-concurrent-reindex")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert_eq!(
            f[0].message,
            "REINDEX ... CONCURRENTLY is PostgreSQL 12 syntax: PostgreSQL 11 rejects the statement"
        );
        assert_eq!(f[0].region.start, crate::diag::Pos::new(2, 15));
    }
}
