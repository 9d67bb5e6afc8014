use super::{Finding, Rule, RuleMeta};
use crate::diag::Region;

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

/// Found by the shadow run ([`crate::check::shadow`]); no static check.
impl Rule for LockTaken {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }
}

/// The finding for a blocking lock the shadow run saw a statement take on
/// a pre-existing table (`mode` as `pg_locks` names it).
pub fn observed(region: Region, table: &str, mode: &str) -> Finding {
    Finding::new(
        region,
        format!(
            "takes {} on `{table}`, which existed before this file: it blocks {} until commit",
            lock_name(mode),
            blocks(mode)
        ),
    )
    .help("use the online form (CONCURRENTLY, NOT VALID + VALIDATE) or a phased cutover")
}

fn lock_name(mode: &str) -> String {
    let words = mode.strip_suffix("Lock").unwrap_or(mode);
    let mut s = String::new();
    for (i, c) in words.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            s.push(' ');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}

fn blocks(mode: &str) -> &'static str {
    if mode == "AccessExclusiveLock" {
        "every read and write"
    } else {
        "every write"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_modes_are_named_like_the_docs() {
        assert_eq!(lock_name("ShareRowExclusiveLock"), "SHARE ROW EXCLUSIVE");
        assert_eq!(lock_name("AccessExclusiveLock"), "ACCESS EXCLUSIVE");
        assert_eq!(blocks("ShareLock"), "every write");
    }
}
