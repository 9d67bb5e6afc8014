use crate::sql::Model;
use sqlparser::ast::Statement;

use super::fixes;
use super::fixes::At;
use super::lock::{self, age_of};
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `CREATE INDEX` without `CONCURRENTLY` on a table that existed
    /// before the migration file (a table created earlier in the same file
    /// is empty and invisible to other sessions: indexing it is free).
    ///
    /// ## Why is this bad?
    /// A plain `CREATE INDEX` holds a `SHARE` lock on the table for the whole
    /// build: every `INSERT`, `UPDATE` and `DELETE` waits, for minutes on a
    /// large table. `CREATE INDEX CONCURRENTLY` builds the index while writes
    /// continue.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: 0002_orders_customer_idx.sql, orders was created in 0001
    /// CREATE INDEX orders_customer_idx ON orders (customer_id);
    /// -- good
    /// -- strata: no-transaction
    /// CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);
    /// ```
    ///
    /// ## How to fix
    /// Add `CONCURRENTLY` and run the statement outside a transaction: put it
    /// in a migration file of its own that starts with
    /// `-- strata: no-transaction`. `IF NOT EXISTS` lets the file run again
    /// after a failure halfway (drop an index left `INVALID` by a failed
    /// build first). `strata check --fix` does all three when the file holds
    /// only index statements.
    pub struct RequireConcurrentIndex {
        id: "require-concurrent-index",
        group: LockSafety,
        severity: Error,
        summary: "CREATE INDEX without CONCURRENTLY on an existing table (blocks writes for the whole build)",
        needs_workspace: false,
    }
}

impl Rule for RequireConcurrentIndex {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if let Some(Model::CreateIndexOnly {
            table,
            unique,
            concurrently: false,
            ..
        }) = cx.stmt.model()
        {
            return only_index(cx, table, *unique, out);
        }
        let Some(Statement::CreateIndex(ci)) = cx.stmt.ast() else { return };
        let table = cx.catalog.resolve(&ci.table_name);
        let what = if ci.unique { "CREATE UNIQUE INDEX" } else { "CREATE INDEX" };
        if cx.catalog.lookup_table(&ci.table_name).is_some_and(|t| t.partitioned) {
            partitioned(cx, ci, what, &table, out);
            return;
        }
        let age = age_of(cx, &ci.table_name);
        if ci.concurrently || !age.is_live() {
            return;
        }
        // `IF NOT EXISTS` of an index the history already built: nothing is
        // built (the table's SHARE lock is still taken, for a moment: the
        // lock-timeout rules judge that).
        if ci.if_not_exists
            && ci
                .name
                .as_ref()
                .is_some_and(|n| cx.catalog.indexes.contains_key(&cx.catalog.index_on(&table, n)))
        {
            return;
        }
        let guard = (ci.name.is_some() && !ci.if_not_exists).then_some("IF NOT EXISTS");
        let fix = fixes::concurrently_fix(
            cx,
            At::Keyword("INDEX"),
            guard,
            "build the index CONCURRENTLY outside a transaction",
        );
        out.push(
            Finding::new(
                cx.stmt.region,
                format!(
                    "{what} on {} without CONCURRENTLY blocks writes to it (SHARE lock) for the whole build",
                    lock::describe(age, &table)
                ),
            )
            .help(format!(
                "use `CREATE INDEX CONCURRENTLY`, in {}",
                fixes::no_transaction_advice(cx.file)
            ))
            .with_fix(fix),
        );
    }
}

/// An index on a partitioned table: PostgreSQL cannot build it
/// CONCURRENTLY, so the advice is the per-partition path.
/// `CREATE INDEX ... ON ONLY t`: on a partitioned table the parent's index
/// alone, which builds nothing (the path the partitioned case advises); on
/// any other table `ONLY` changes nothing, and the index is built under a
/// SHARE lock.
fn only_index(cx: &StatementCtx, table: &[String], unique: bool, out: &mut Vec<Finding>) {
    let q = cx.catalog.resolve_parts(table);
    if cx.catalog.table(&q).is_none_or(|t| t.partitioned) {
        return;
    }
    let age = lock::table_age(cx.catalog, cx.file, cx.index, &q);
    if !age.is_live() {
        return;
    }
    let what = if unique { "CREATE UNIQUE INDEX" } else { "CREATE INDEX" };
    out.push(
        Finding::new(
            cx.stmt.region,
            format!(
                "{what} ON ONLY {} without CONCURRENTLY blocks writes to it (SHARE lock) for the whole build: ONLY changes nothing on a table that is not partitioned",
                lock::describe(age, &q)
            ),
        )
        .help(format!("use `CREATE INDEX CONCURRENTLY` (without ONLY), in {}", fixes::no_transaction_advice(cx.file))),
    );
}

fn partitioned(cx: &StatementCtx, ci: &sqlparser::ast::CreateIndex, what: &str, table: &crate::catalog::QName, out: &mut Vec<Finding>) {
    let age = age_of(cx, &ci.table_name);
    let index = ci.name.as_ref().map_or_else(|| "<index>".to_string(), |n| n.to_string());
    let columns = ci.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
    let path = format!(
        "create it on the parent alone, `{what} {index} ON ONLY {} ({columns});` (no build; the index is invalid until every \
         partition has one), then for each partition `{what} CONCURRENTLY <partition>_{} ON <partition> ({columns});` in a \
         no-transaction migration and `ALTER INDEX {index} ATTACH PARTITION <partition>_{};` (the parent's index turns valid \
         with the last one)",
        ci.table_name,
        index.rsplit('.').next().unwrap_or(&index),
        index.rsplit('.').next().unwrap_or(&index),
    );
    let message = if ci.concurrently {
        format!("{what} CONCURRENTLY on partitioned table `{table}`: PostgreSQL rejects it (cannot create index on partitioned table concurrently)")
    } else if age.is_live() {
        format!(
            "{what} on partitioned table `{table}` blocks writes to every partition (SHARE lock) for the whole build, and PostgreSQL \
             cannot build it CONCURRENTLY"
        )
    } else {
        return;
    };
    out.push(Finding::new(cx.stmt.region, message).help(path));
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws, finding, fixed_text, ids, known, render_rule};

    const ORDERS: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total numeric(12, 2));\n";

    #[test]
    fn fires_on_an_existing_table() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_orders_customer_idx.sql",
                "CREATE INDEX orders_customer_idx ON orders (customer_id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-index"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "require-concurrent-index"));
        assert_eq!(
            fixed_text(&d, "require-concurrent-index").unwrap(),
            "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n"
        );
    }

    #[test]
    fn quiet_on_if_not_exists_of_an_index_the_history_built() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            ("core/0002_idx.sql", "CREATE INDEX orders_customer_idx ON orders (customer_id);\n"),
            (
                "core/0003_again.sql",
                "CREATE INDEX IF NOT EXISTS orders_customer_idx ON orders (customer_id);\nCREATE INDEX IF NOT EXISTS orders_other_idx ON orders (customer_id, id);\n",
            ),
        ]);
        let in_file = |f: &str| {
            d.iter()
                .filter(|x| x.rule == "require-concurrent-index" && x.file.path.ends_with(f))
                .count()
        };
        // The second index is new: built under the lock.
        assert_eq!((in_file("0002_idx.sql"), in_file("0003_again.sql")), (1, 1), "{d:#?}");
    }

    #[test]
    fn quiet_on_a_table_created_in_the_same_file() {
        let d = check_ws(&[(
            "core/0001_orders.sql",
            &format!("{ORDERS}CREATE INDEX orders_customer_idx ON orders (customer_id);\n"),
        )]);
        assert_eq!(ids(&d, "require-concurrent-index"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_on_the_fixed_form_which_is_concurrent_in_transaction_business() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_idx.sql",
                "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-index"), 0, "{d:#?}");
        assert_eq!(ids(&d, "concurrent-in-transaction"), 1, "{d:#?}");
    }

    #[test]
    fn no_fix_when_the_file_does_other_work() {
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_mixed.sql",
                "CREATE TABLE refunds (id bigint PRIMARY KEY);\nCREATE INDEX orders_total_idx ON orders (total);\n",
            ),
        ]);
        assert_eq!(fixed_text(&d, "require-concurrent-index"), None);
    }

    #[test]
    fn a_partitioned_parent_gets_the_per_partition_path_never_concurrently() {
        let parent = "CREATE TABLE events (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);\n\
                      CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\n";
        let d = check_ws(&[
            ("core/0001_events.sql", parent),
            ("core/0002_idx.sql", "CREATE INDEX events_at ON events (at);\n"),
        ]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("require-concurrent-index")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(f[0].message.contains("partitioned table `public.events`"), "{}", f[0].message);
        let help = f[0].help.as_deref().unwrap();
        assert!(help.contains("CREATE INDEX events_at ON ONLY events (at);"), "{help}");
        assert!(
            help.contains("CREATE INDEX CONCURRENTLY <partition>_events_at ON <partition> (at);"),
            "{help}"
        );
        assert!(
            help.contains("ALTER INDEX events_at ATTACH PARTITION <partition>_events_at;"),
            "{help}"
        );
        assert!(f[0].fix.is_none());
        // CONCURRENTLY on the parent is what PostgreSQL rejects.
        let d = check_ws(&[
            ("core/0001_events.sql", parent),
            (
                "core/0002_idx.sql",
                "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY events_at ON events (at);\n",
            ),
        ]);
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("require-concurrent-index")).collect();
        assert_eq!(f.len(), 1, "{d:#?}");
        assert!(f[0].message.contains("PostgreSQL rejects it"), "{}", f[0].message);
        // The index in the parent's own file is fine; a partition is a table.
        let d = check_ws(&[("core/0001_events.sql", &format!("{parent}CREATE INDEX events_at ON events (at);\n"))]);
        assert_eq!(ids(&d, "require-concurrent-index"), 0, "{d:#?}");
    }

    #[test]
    fn plain_files_treat_unknown_tables_as_existing() {
        let d = check_plain("CREATE UNIQUE INDEX users_email_idx ON users (email);\n");
        assert_eq!(ids(&d, "require-concurrent-index"), 1, "{d:#?}");
        let f = finding(&d, "require-concurrent-index");
        assert!(f.message.contains("not created in this file"), "{}", f.message);
    }

    /// `ON ONLY` is the path the partitioned case advises: the parent's
    /// index alone builds nothing. On a table that is not partitioned
    /// `ONLY` changes nothing, and the build locks writes out.
    #[test]
    fn on_only_builds_nothing_on_a_partitioned_parent() {
        let events = (
            "core/0001_events.sql",
            "CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);\n",
        );
        let d = check_ws(&[events, ("core/0002_idx.sql", "CREATE INDEX events_at_idx ON ONLY events (at);\n")]);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        assert_eq!(ids(&d, "require-concurrent-index"), 0, "{d:#?}");
        // A partitioned copy made with LIKE is partitioned too.
        let d = check_ws(&[
            events,
            (
                "core/0002_copy.sql",
                "CREATE TABLE events_copy (LIKE events INCLUDING ALL) PARTITION BY RANGE (at);\n",
            ),
            ("core/0003_idx.sql", "CREATE INDEX events_copy_at_idx ON ONLY events_copy (at);\n"),
        ]);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        assert_eq!(ids(&d, "require-concurrent-index"), 0, "{d:#?}");
        let d = check_ws(&[
            ("core/0001_orders.sql", ORDERS),
            (
                "core/0002_idx.sql",
                "CREATE INDEX orders_customer_idx ON ONLY orders (customer_id);\n",
            ),
        ]);
        assert_eq!(ids(&d, "require-concurrent-index"), 1, "{d:#?}");
        let f = finding(&d, "require-concurrent-index");
        assert!(f.message.contains("ON ONLY existing table `public.orders`"), "{}", f.message);
    }
}
