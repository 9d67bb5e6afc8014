use sqlparser::ast::{Spanned, Statement};

use super::{Env, FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::Table;
use crate::diag::{Pos, Region};
use crate::workspace::TenancyMode;

crate::declare_rule! {
    /// ## What it does
    /// Flags a tenant table that ends the migration file that creates it
    /// without `ENABLE ROW LEVEL SECURITY`.
    ///
    /// ## Why is this bad?
    /// Row-level security is the isolation boundary between tenants (shared
    /// mode) and between group-chat containers (database-per-tenant mode).
    /// A table without it is readable and writable across that boundary by
    /// any role that has table privileges, and the gap is invisible until
    /// data leaks. An `ENABLE` later in the same file counts; a promise to do
    /// it in a later migration does not.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE notes (id uuid PRIMARY KEY, body text);
    /// -- good
    /// CREATE TABLE notes (id uuid PRIMARY KEY, body text);
    /// ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    /// ALTER TABLE notes FORCE ROW LEVEL SECURITY;
    /// CREATE POLICY notes_app ON notes FOR ALL TO orbis_app USING (true) WITH CHECK (true);
    /// ```
    ///
    /// ## How to fix
    /// Add `ALTER TABLE <table> ENABLE ROW LEVEL SECURITY;` (and `FORCE`) and
    /// a policy in the same migration file. Tables that hold no tenant data
    /// belong in `tenancy.global_tables` of strata.toml.
    pub struct RlsMissing {
        id: "rls-missing",
        group: Governance,
        severity: Error,
        summary: "a tenant table that ends its migration file without ENABLE ROW LEVEL SECURITY",
        needs_workspace: true,
    }
}

/// Whether a table holds tenant data under the workspace's tenancy settings.
pub fn is_tenant_table(env: &Env, t: &Table) -> bool {
    if t.temporary || t.name.schema == "strata" {
        return false;
    }
    let Some(cfg) = env.config else { return false };
    let global = |n: &str| cfg.tenancy.global_tables.iter().any(|g| g == n || *g == t.name.to_string());
    if global(&t.name.name) {
        return false;
    }
    !(cfg.tenancy.mode == TenancyMode::Shared && t.name.name == cfg.tenancy.tenant_table)
}

/// The region of the name in the statement that created a table in this file.
pub fn created_region(cx: &FileCtx, t: &Table) -> Region {
    let stmt = cx.file.parsed.statements.get(t.origin.stmt as usize);
    let from_ast = stmt.and_then(|s| match s.ast() {
        Some(Statement::CreateTable(ct)) => {
            let sp = ct.name.span();
            (sp.start.line > 0).then(|| {
                Region::new(
                    Pos::new(sp.start.line as u32, sp.start.column as u32),
                    Pos::new(sp.end.line as u32, (sp.end.column as u32).saturating_sub(1).max(1)),
                )
            })
        }
        _ => None,
    });
    from_ast.or(stmt.map(|s| s.region)).unwrap_or_default()
}

impl Rule for RlsMissing {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let mut created: Vec<&Table> = cx
            .catalog
            .tables
            .values()
            .filter(|t| t.origin.file == cx.file.id && !t.rls_enabled && is_tenant_table(cx.env, t))
            .collect();
        created.sort_by_key(|t| t.origin.stmt);
        for t in created {
            out.push(
                Finding::new(created_region(cx, t), format!("tenant table `{}` has no ENABLE ROW LEVEL SECURITY by the end of its migration file", t.name))
                    .help(format!(
                        "add `ALTER TABLE {0} ENABLE ROW LEVEL SECURITY;` and `ALTER TABLE {0} FORCE ROW LEVEL SECURITY;` with a policy in this file",
                        t.name
                    ))
                    .at_statement(t.origin.stmt as usize),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_ws, finding, ids};

    #[test]
    fn fires_when_rls_is_never_enabled() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "-- notes\nCREATE TABLE notes (id uuid PRIMARY KEY, body text);\n",
        )]);
        assert_eq!(ids(&d, "rls-missing"), 1, "{d:#?}");
        let f = finding(&d, "rls-missing");
        assert_eq!((f.region.start.line, f.region.start.col), (2, 14));
    }

    #[test]
    fn enable_later_in_the_same_file_counts() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "CREATE TABLE notes (id uuid PRIMARY KEY, body text);\nCREATE INDEX notes_body ON notes (body);\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n",
        )]);
        assert_eq!(ids(&d, "rls-missing"), 0, "{d:#?}");
    }

    #[test]
    fn enable_in_a_later_file_does_not_count() {
        let d = check_ws(&[
            ("core/0001_notes.sql", "CREATE TABLE notes (id uuid PRIMARY KEY);\n"),
            ("core/0002_rls.sql", "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n"),
        ]);
        assert_eq!(ids(&d, "rls-missing"), 1, "{d:#?}");
    }

    /// A table sqlparser cannot read as written (storage parameters and a
    /// tablespace) is re-read from PostgreSQL's deparse: the tenant table
    /// without row level security is still found, at the statement.
    #[test]
    fn a_table_read_through_postgres_deparse_is_judged() {
        let d = check_ws(&[(
            "core/0001_notes.sql",
            "-- notes\nCREATE TABLE notes (id uuid PRIMARY KEY, body text COMPRESSION lz4) WITH (fillfactor = 70) TABLESPACE pg_default;\n",
        )]);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        assert_eq!(ids(&d, "rls-missing"), 1, "{d:#?}");
        let f = finding(&d, "rls-missing");
        assert_eq!((f.region.start.line, f.region.start.col), (2, 1));
    }

    /// `CREATE TABLE ... (LIKE ...)` copies columns, and with `INCLUDING
    /// INDEXES` the primary key, never row level security: the copy is a
    /// tenant table without it.
    #[test]
    fn a_table_made_like_another_is_judged_as_postgres_builds_it() {
        let notes = (
            "core/0001_notes.sql",
            "CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL DEFAULT '');\nALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n",
        );
        let d = check_ws(&[
            notes,
            ("core/0002_copy.sql", "CREATE TABLE notes_copy (LIKE notes INCLUDING ALL);\n"),
        ]);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        assert_eq!(ids(&d, "rls-missing"), 1, "{d:#?}");
        assert_eq!(ids(&d, "no-primary-key"), 0, "{d:#?}");
        let f = finding(&d, "rls-missing");
        assert!(f.message.contains("notes_copy"), "{}", f.message);
        // Without INCLUDING INDEXES the key is not copied.
        let d = check_ws(&[
            notes,
            ("core/0002_copy.sql", "CREATE TABLE notes_copy (LIKE notes INCLUDING DEFAULTS);\n"),
        ]);
        assert_eq!(ids(&d, "no-primary-key"), 1, "{d:#?}");
    }

    /// `LIKE` beside columns of the table's own: the copied columns and the
    /// new ones are all in the catalog, and the rules that read a CREATE
    /// TABLE judge the new ones.
    #[test]
    fn a_table_made_like_another_with_columns_of_its_own_is_understood() {
        let d = check_ws(&[
            (
                "core/0001_notes.sql",
                "CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL DEFAULT '');
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
",
            ),
            (
                "core/0002_copy.sql",
                "CREATE TABLE notes_copy (LIKE notes INCLUDING ALL, copied_at timestamp, wa_lid text);
CREATE INDEX notes_copy_body ON notes_copy (body, copied_at);
",
            ),
        ]);
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        assert_eq!(ids(&d, "rls-missing"), 1, "{d:#?}");
        assert_eq!(ids(&d, "no-primary-key"), 0, "{d:#?}");
        // Its own columns, from sqlparser's reading of the rest.
        assert_eq!(ids(&d, "prefer-timestamptz"), 1, "{d:#?}");
        assert_eq!(ids(&d, "lid-column"), 1, "{d:#?}");
        let f = crate::sql::parse_text(
            "t.sql",
            "CREATE TABLE c (LIKE notes INCLUDING ALL, n int);
",
        );
        let mut cat = crate::catalog::Catalog::new();
        let notes = crate::sql::parse_text(
            "n.sql",
            "CREATE TABLE notes (id uuid PRIMARY KEY, body text);
",
        );
        for (i, s) in notes.statements.iter().chain(&f.statements).enumerate() {
            crate::catalog::replay_statement(&mut cat, s, 0, 0, i);
        }
        let t = cat.tables.get(&crate::catalog::QName::new("public", "c")).expect("table c");
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "body", "n"]);
        assert!(t.primary_key().is_some(), "{t:?}");
    }
}
