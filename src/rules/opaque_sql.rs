use sqlparser::ast::{CreateFunctionBody, Statement};

use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Reports DO blocks and functions that run dynamic SQL (`EXECUTE`):
    /// statements whose effect on the schema cannot be seen statically.
    ///
    /// ## Why is this bad?
    /// A DO block can create a table without RLS, add a LID column or take an
    /// ACCESS EXCLUSIVE lock, and no static rule can see it. It needs a human
    /// review (or `strata check --shadow`, which applies it to a scratch
    /// database and inspects the result).
    ///
    /// ## Example
    /// ```sql
    /// DO $$ BEGIN
    ///   EXECUTE 'CREATE TABLE ' || quote_ident('t_' || 1) || ' (id int)';
    /// END $$;
    /// ```
    ///
    /// ## How to fix
    /// Write the DDL as plain statements. When a DO block is really needed
    /// (conditional DDL on old servers), review it and suppress with
    /// `-- strata-ignore opaque-sql: <reason>`.
    pub struct OpaqueSql {
        id: "opaque-sql",
        group: Review,
        severity: Warning,
        summary: "DO blocks and dynamic SQL (needs review: nothing inside is checked)",
        needs_workspace: false,
    }
}

pub(crate) fn is_do_block(words: &[String]) -> bool {
    words.first().is_some_and(|w| w == "DO")
}

/// Whether the body contains the word EXECUTE (any case), without
/// allocating: bodies can be large.
fn body_has_execute(body: &str) -> bool {
    let b = body.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    b.windows(7)
        .enumerate()
        .any(|(i, w)| w.eq_ignore_ascii_case(b"EXECUTE") && (i == 0 || !word(b[i - 1])) && b.get(i + 7).is_none_or(|&c| !word(c)))
}

impl Rule for OpaqueSql {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let region = cx.stmt.region;
        match (cx.stmt.ast(), cx.stmt.unparsed()) {
            (None, Some(u)) if is_do_block(&u.words) => out.push(
                Finding::new(region, "DO block: its effect on the schema is not checked statically")
                    .help("prefer plain DDL; review it, then suppress with `-- strata-ignore opaque-sql: <reason>`")
                    .at_statement(cx.index),
            ),
            (Some(Statement::CreateFunction(cf)), _) => {
                let body = match &cf.function_body {
                    Some(CreateFunctionBody::AsBeforeOptions { body, .. }) | Some(CreateFunctionBody::AsAfterOptions(body)) => {
                        body.to_string()
                    }
                    _ => return,
                };
                if body_has_execute(&body) {
                    out.push(
                        Finding::new(
                            region,
                            format!("function `{}` runs dynamic SQL (EXECUTE): what it does is not checked", cf.name),
                        )
                        .help("review the dynamic statements; suppress with `-- strata-ignore opaque-sql: <reason>`")
                        .at_statement(cx.index),
                    );
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids};

    #[test]
    fn fires_on_do_blocks_and_execute() {
        let d = check_plain(
            "DO $$ BEGIN EXECUTE 'CREATE TABLE x (id int)'; END $$;\n\
             CREATE FUNCTION mk() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DROP TABLE %I', 'x'); END $$;\n",
        );
        assert_eq!(ids(&d, "opaque-sql"), 2, "{d:#?}");
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_on_static_functions() {
        let d = check_plain("CREATE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n");
        assert_eq!(ids(&d, "opaque-sql"), 0, "{d:#?}");
    }
}
