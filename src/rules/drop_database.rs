use sqlparser::ast::{ObjectType, Statement};

use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `DROP DATABASE` in a migration.
    ///
    /// ## Why is this bad?
    /// A migration runs against every tenant database of the fleet; dropping
    /// a database from one destroys a tenant's data (or the control plane)
    /// with no way back. It also cannot run inside a transaction, so it fails
    /// in a transactional migration anyway. Databases are created and
    /// dropped by fleet operations, not by schema migrations.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// DROP DATABASE tenant_acme;
    /// -- good: offboard the tenant with the fleet tooling, not a migration
    /// ```
    ///
    /// ## How to fix
    /// Remove the statement; offboard tenants through fleet operations.
    pub struct DropDatabase {
        id: "drop-database",
        group: LockSafety,
        severity: Error,
        summary: "DROP DATABASE in a migration",
        needs_workspace: false,
    }
}

impl Rule for DropDatabase {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(Statement::Drop {
            object_type: ObjectType::Database,
            names,
            ..
        }) = cx.stmt.ast()
        else {
            return;
        };
        for name in names {
            out.push(
                Finding::new(
                    cx.stmt.region,
                    format!("DROP DATABASE `{name}` in a migration destroys a whole database"),
                )
                .help("remove it; databases are created and dropped by fleet operations, not by schema migrations"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_drop_database() {
        let d = check_plain("DROP DATABASE IF EXISTS tenant_acme;\n");
        assert_eq!(ids(&d, "drop-database"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "drop-database"));
    }

    #[test]
    fn quiet_on_other_drops() {
        let d = check_plain("CREATE TABLE t (id int);\nDROP TABLE t;\n");
        assert_eq!(ids(&d, "drop-database"), 0, "{d:#?}");
    }
}
