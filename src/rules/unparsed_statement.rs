use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Region;
use crate::sql::Verdict;

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement PostgreSQL's grammar accepts but strata does not
    /// model (a kind of statement neither sqlparser nor strata's reading of
    /// PostgreSQL's parse tree covers). Nothing in it was checked;
    /// keyword-level fallback checks still saw its words. A statement
    /// PostgreSQL rejects is `syntax-error` instead. Before giving up,
    /// strata reads PostgreSQL's own rendering of the statement (its
    /// deparser writes every construct in one spelling, and leaves out the
    /// storage-only clauses no rule judges: storage parameters,
    /// tablespaces, compression): what sqlparser reads from that is checked
    /// like any other statement, with findings at the statement.
    ///
    /// ## Why is this bad?
    /// A linter that silently skips what it cannot read gives false comfort.
    /// strata keeps going with the other statements of the file, and tells
    /// you exactly which statement it could not check and why.
    ///
    /// ## Example
    /// ```sql
    /// -- valid PostgreSQL that strata does not model
    /// CREATE RULE orders_archive AS ON DELETE TO orders DO INSTEAD NOTHING;
    /// ```
    ///
    /// ## How to fix
    /// Review the statement by hand, or rewrite it in an equivalent form the
    /// parser understands. `strata check --shadow` applies it to a real
    /// database, which sees everything. Suppress with
    /// `-- strata-ignore unparsed-statement: <reason>` once reviewed.
    pub struct UnparsedStatement {
        id: "unparsed-statement",
        group: Review,
        severity: Warning,
        summary: "a statement PostgreSQL accepts but strata does not model (nothing was checked in it)",
        needs_workspace: false,
    }
}

impl Rule for UnparsedStatement {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn judges_function_bodies(&self) -> bool {
        true
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(u) = cx.stmt.unparsed() else { return };
        let Verdict::Accepted(node) = &u.postgres else { return };
        // The statements the lock-safety rules read completely from their
        // keywords were checked.
        if super::shape::keyword_shape(&cx.file.parsed.source, cx.stmt).is_some() {
            return;
        }
        out.push(
            Finding::new(
                Region::point(cx.stmt.region.start),
                format!("PostgreSQL accepts this statement ({node}), but strata does not model it: nothing in it was checked"),
            )
            .help("review it by hand or run `strata check --shadow auto`; suppress with `-- strata-ignore unparsed-statement: <reason>`")
            .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, finding, ids};

    #[test]
    fn fires_with_position_and_keeps_the_rest() {
        let d =
            check_plain("CREATE TABLE a (id int);\nCREATE RULE r AS ON INSERT TO a DO INSTEAD NOTHING;\nCREATE INDEX a_id ON a (id);\n");
        assert_eq!(ids(&d, "unparsed-statement"), 1, "{d:#?}");
        let f = finding(&d, "unparsed-statement");
        assert_eq!(f.region.start.line, 2);
    }

    #[test]
    fn quiet_on_valid_sql() {
        let d = check_plain("CREATE TABLE a (id int);\nSELECT 1;\nCREATE TABEL b (id int);\n");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }
}
