use super::{Finding, Rule, RuleMeta};
use crate::diag::Region;

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement that rewrote a table that existed before its
    /// migration file: `strata check --shadow` compares the table's
    /// `relfilenode` before and after every statement on a scratch copy of
    /// the schema that holds rows.
    ///
    /// ## Why is this bad?
    /// A rewrite copies every row under an ACCESS EXCLUSIVE lock: on a large
    /// table the application is blocked for minutes, and the copy needs as
    /// much free disk as the table itself.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: int to bigint rewrites the table
    /// ALTER TABLE events ALTER COLUMN id TYPE bigint;
    /// ```
    ///
    /// ## How to fix
    /// Add a new column, backfill it in batches, and switch over in a phased
    /// cutover (`strata plan`); or accept the rewrite in a maintenance window
    /// and suppress the finding with a reason.
    pub struct TableRewrite {
        id: "table-rewrite",
        group: LockSafety,
        severity: Error,
        summary: "a statement rewrote a pre-existing table (relfilenode changed; observed by --shadow)",
        needs_workspace: true,
    }
}

/// Found by the shadow run ([`crate::check::shadow`]); no static check.
impl Rule for TableRewrite {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }
}

/// The finding for a rewrite of a pre-existing table the shadow run saw.
pub fn observed(region: Region, table: &str) -> Finding {
    Finding::new(
        region,
        format!("rewrites `{table}` (its relfilenode changed): every row is copied under ACCESS EXCLUSIVE"),
    )
    .help("add a new column and backfill it in batches, or plan a cutover")
}
