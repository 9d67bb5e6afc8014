//! `syntax-error`: a statement PostgreSQL's own grammar rejects.

use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Region;
use crate::sql::Verdict;

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement that PostgreSQL itself rejects, with PostgreSQL's
    /// own message and the position of the error. strata reads every
    /// statement with PostgreSQL's grammar (libpg_query, the parser of the
    /// server), so this is what the server will say when the migration runs,
    /// inside DO blocks and function bodies too.
    ///
    /// ## Why is this bad?
    /// The migration fails when it runs, half-way through a release. A
    /// statement strata merely does not model is `unparsed-statement`
    /// instead: this finding means the SQL is wrong.
    ///
    /// ## Example
    /// ```sql
    /// CREATE TABEL notes (id bigint);
    /// ```
    ///
    /// ## How to fix
    /// Correct the statement at the position shown.
    pub struct SyntaxError {
        id: "syntax-error",
        group: Correctness,
        severity: Error,
        summary: "a statement PostgreSQL's grammar rejects (PostgreSQL's message and position)",
        needs_workspace: false,
    }
}

impl Rule for SyntaxError {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn judges_function_bodies(&self) -> bool {
        true
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(u) = cx.stmt.unparsed() else { return };
        let Verdict::Rejected { message, pos } = &u.postgres else { return };
        let inside = if cx.stmt.body.is_some() { " (inside the body above)" } else { "" };
        out.push(
            Finding::new(Region::point(*pos), format!("PostgreSQL rejects this statement{inside}: {message}"))
                .help("correct the SQL at this position; the migration would fail here")
                .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Pos;
    use crate::rules::testing::{check_plain, finding, ids, known};

    #[test]
    fn fires_with_postgres_message_and_position() {
        let d = check_plain("CREATE TABLE a (id int);\n  CREATE TABEL b (id int);\nSELECT 1 +;\n");
        assert_eq!(ids(&d, "syntax-error"), 2, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("syntax-error")).collect();
        assert_eq!(f[0].message, "PostgreSQL rejects this statement: syntax error at or near \"TABEL\"");
        assert_eq!(f[0].region.start, Pos::new(2, 10));
        assert_eq!(f[0].severity, crate::diag::Severity::Error);
        assert_eq!(f[1].message, "PostgreSQL rejects this statement: syntax error at end of input");
        assert_eq!(f[1].region.start.line, 3);
    }

    #[test]
    fn fires_on_an_unterminated_string_and_inside_bodies() {
        let d = check_plain("SELECT 1;\nDO $$ BEGIN\n  CREATE TABEL x (id int);\nEND $$;\nSELECT 'never closed;\n");
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("syntax-error")).collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert_eq!(f[0].region.start, Pos::new(3, 10), "{:?}", f[0]);
        assert!(f[1].message.contains("unterminated quoted string"), "{}", f[1].message);
        assert_eq!(f[1].region.start, Pos::new(5, 8));
    }

    /// PL/pgSQL's conditions are a fixed list: `RAISE WARNING "text"` (a
    /// name in double quotes, not a message) makes PostgreSQL reject the
    /// function, at the name.
    #[test]
    fn fires_on_an_unknown_condition_in_a_function() {
        let d =
            check_plain("CREATE FUNCTION f() RETURNS void AS $$\nBEGIN\n  RAISE WARNING \"f is deprecated\";\nEND $$ LANGUAGE plpgsql;\n");
        let f = finding(&d, "syntax-error");
        assert!(f.message.contains("unrecognized exception condition"), "{}", f.message);
        assert_eq!(f.region.start, Pos::new(3, 17), "{f:?}");
        assert_eq!(ids(&d, "opaque-sql"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_on_valid_sql_sqlparser_cannot_read() {
        let d = check_plain(
            "CREATE DOMAIN email AS text NOT NULL CHECK (VALUE LIKE '%@%');\nGRANT EXECUTE ON ALL ROUTINES IN SCHEMA public TO web;\n",
        );
        assert_eq!(ids(&d, "syntax-error"), 0, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }
}
