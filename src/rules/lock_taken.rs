use super::{Rule, RuleMeta};

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement that, when applied to a scratch copy of the schema
    /// with rows in every table (`strata check --shadow`), took a lock that
    /// blocks reads or writes (SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE or
    /// ACCESS EXCLUSIVE) on a table that existed before its migration file.
    /// It is produced by the shadow runner from `pg_locks`, not by the static
    /// parser, so it is exact for DO blocks, functions and anything else the
    /// parser cannot see into.
    ///
    /// ## Why is this bad?
    /// The lock is held until the migration's transaction commits: every
    /// writer (SHARE) or every query (ACCESS EXCLUSIVE) of the application
    /// waits behind it, and queues behind a waiting lock pile up.
    ///
    /// ## Example
    /// ```sql
    /// -- bad: SHARE lock on messages for the whole index build
    /// CREATE INDEX messages_body_idx ON messages (body);
    /// -- good (in a `-- strata: no-transaction` file)
    /// CREATE INDEX CONCURRENTLY messages_body_idx ON messages (body);
    /// ```
    ///
    /// ## How to fix
    /// Use the online form of the operation (CONCURRENTLY, NOT VALID then
    /// VALIDATE, ...), or move it to a maintenance window and suppress the
    /// finding with a reason.
    pub struct LockTaken {
        id: "lock-taken",
        group: LockSafety,
        severity: Error,
        summary: "a statement took a read- or write-blocking lock on a pre-existing table (observed by --shadow)",
        needs_workspace: true,
    }
}

/// Found by the shadow runner ([`crate::pg::shadow`]); no static check.
impl Rule for LockTaken {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }
}
