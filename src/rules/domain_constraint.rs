use sqlparser::ast::Statement;

use crate::sql::Model;

use super::shape;
use super::shape::Shape;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags `ALTER DOMAIN ... ADD CONSTRAINT` without `NOT VALID` and
    /// `ALTER DOMAIN ... SET NOT NULL` on a domain that existed before the
    /// migration file, and `CREATE DOMAIN` with `CHECK` constraints.
    ///
    /// ## Why is this bad?
    /// A new domain constraint is checked against every column of that domain
    /// in every table, each scanned under a lock that blocks writes; the
    /// statement does not say which tables that is. And a constraint on a
    /// domain is hard to change later for the same reason, while a `CHECK` on
    /// a table column can be added `NOT VALID`, validated online and dropped
    /// freely.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// ALTER DOMAIN phone_e164 ADD CONSTRAINT phone_e164_format CHECK (VALUE ~ '^\+[1-9][0-9]{6,14}$');
    /// -- good
    /// ALTER DOMAIN phone_e164 ADD CONSTRAINT phone_e164_format CHECK (VALUE ~ '^\+[1-9][0-9]{6,14}$') NOT VALID;
    /// -- and in a later migration
    /// ALTER DOMAIN phone_e164 VALIDATE CONSTRAINT phone_e164_format;
    /// ```
    ///
    /// ## How to fix
    /// Add domain constraints `NOT VALID` and validate them in a later
    /// migration; prefer plain types with `CHECK` constraints on the table
    /// columns for rules that may change.
    pub struct DomainConstraint {
        id: "domain-constraint",
        group: LockSafety,
        severity: Warning,
        summary: "a constraint added to an existing domain without NOT VALID (scans every column of the type), or CREATE DOMAIN with CHECK",
        needs_workspace: false,
    }
}

/// Whether a `CREATE DOMAIN` of this name comes earlier in the file.
fn created_in_file(cx: &StatementCtx, domain: &crate::catalog::QName) -> bool {
    cx.file.parsed.statements[..cx.index].iter().any(|s| match (s.ast(), s.model()) {
        (Some(Statement::CreateDomain(d)), _) => cx.catalog.resolve(&d.name) == *domain,
        (_, Some(Model::CreateDomain(d))) => cx.catalog.resolve_parts(&d.name) == *domain,
        _ => false,
    })
}

impl Rule for DomainConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let created = match (cx.stmt.ast(), cx.stmt.model()) {
            (Some(Statement::CreateDomain(d)), _) => Some((d.name.to_string(), !d.constraints.is_empty())),
            (_, Some(Model::CreateDomain(d))) => Some((d.name.join("."), d.not_null || !d.checks.is_empty())),
            _ => None,
        };
        if let Some((name, constrained)) = created {
            if constrained {
                out.push(
                    Finding::new(
                        cx.stmt.region,
                        format!(
                            "domain `{name}` carries a constraint: changing it later re-checks every column of the type in every table"
                        ),
                    )
                    .help(
                        "prefer a plain type with CHECK constraints on the table columns, which can be added NOT VALID and dropped freely",
                    ),
                );
            }
            return;
        }
        let Some(Shape::AlterDomainConstraint {
            domain,
            not_valid: false,
            set_not_null,
        }) = shape::keyword_shape(&cx.file.parsed.source, cx.stmt)
        else {
            return;
        };
        let q = cx.catalog.resolve(&domain);
        if created_in_file(cx, &q) {
            return;
        }
        let (what, help) = if set_not_null {
            (
                "SET NOT NULL on",
                "enforce it with a CHECK (VALUE IS NOT NULL) constraint added NOT VALID, then VALIDATE it in a later migration",
            )
        } else {
            (
                "adding a constraint without NOT VALID to",
                "add it `NOT VALID`, then `ALTER DOMAIN ... VALIDATE CONSTRAINT` in a later migration",
            )
        };
        out.push(
            Finding::new(
                cx.stmt.region,
                format!("{what} domain `{q}` checks every column of that type in every table, blocking writes on each while it scans"),
            )
            .help(help),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, ids, render_rule};

    const PHONE: &str = "CREATE DOMAIN phone_e164 AS text;\nCREATE TABLE contacts (id uuid PRIMARY KEY, phone phone_e164);\n";

    #[test]
    fn fires_on_a_validated_domain_constraint() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", PHONE),
            (
                "core/0002_phone_format.sql",
                "ALTER DOMAIN phone_e164 ADD CONSTRAINT phone_e164_format CHECK (VALUE ~ '^\\+[1-9][0-9]{6,14}$');\n",
            ),
        ]);
        assert_eq!(ids(&d, "domain-constraint"), 1, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "domain-constraint"));
    }

    #[test]
    fn quiet_with_not_valid_or_on_a_new_domain() {
        let d = check_ws(&[
            ("core/0001_contacts.sql", &format!("{PHONE}ALTER DOMAIN phone_e164 SET NOT NULL;\n")),
            (
                "core/0002_phone_format.sql",
                "ALTER DOMAIN phone_e164 ADD CONSTRAINT phone_e164_format CHECK (VALUE ~ '^\\+') NOT VALID;\n",
            ),
        ]);
        assert_eq!(ids(&d, "domain-constraint"), 0, "{d:#?}");
    }

    #[test]
    fn fires_on_create_domain_with_check() {
        let d = check_ws(&[("core/0001_email.sql", "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');\n")]);
        assert_eq!(ids(&d, "domain-constraint"), 1, "{d:#?}");
    }
}
