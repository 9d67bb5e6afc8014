use super::{Finding, Rule, RuleMeta, StatementCtx};
use crate::diag::Region;

crate::declare_rule! {
    /// ## What it does
    /// Reports a statement the SQL parser did not understand. Nothing in it
    /// was checked; keyword-level fallback checks still saw its words.
    ///
    /// ## Why is this bad?
    /// A linter that silently skips what it cannot read gives false comfort.
    /// strata keeps going with the other statements of the file, and tells
    /// you exactly which statement it could not check and why.
    ///
    /// ## Example
    /// ```sql
    /// -- PostgreSQL 16 syntax sqlparser does not know yet
    /// CREATE TABLE t (a int) WITH (fillfactor = 70) USING heap2;
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
        summary: "a statement the parser did not understand (nothing was checked in it)",
        needs_workspace: false,
    }
}

impl Rule for UnparsedStatement {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(u) = cx.stmt.unparsed() else { return };
        // DO blocks are opaque-sql's business; the statements the
        // lock-safety rules read completely from their keywords were checked.
        if super::opaque_sql::is_do_block(&u.words) || super::lock::keyword_shape(&cx.file.parsed.source, cx.stmt).is_some() {
            return;
        }
        out.push(
            Finding::new(
                Region::point(u.pos),
                format!("could not parse this statement ({}); nothing in it was checked", u.message),
            )
            .help("review it by hand or run `strata check --shadow auto`; suppress with `-- strata-ignore unparsed-statement: <reason>`")
            .at_statement(cx.index),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids};

    #[test]
    fn fires_with_position_and_keeps_the_rest() {
        let d = check_plain("CREATE TABLE a (id int);\nCREATE TABLEX b (id int);\nCREATE INDEX a_id ON a (id);\n");
        assert_eq!(ids(&d, "unparsed-statement"), 1, "{d:#?}");
        let f = d.iter().find(|x| x.rule == "unparsed-statement").unwrap();
        assert_eq!(f.region.start.line, 2);
    }

    #[test]
    fn quiet_on_valid_sql() {
        let d = check_plain("CREATE TABLE a (id int);\nSELECT 1;\n");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }
}
