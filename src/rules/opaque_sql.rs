use sqlparser::ast::Statement;

use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Reports SQL inside DO blocks and function bodies that cannot be seen
    /// before it runs: `EXECUTE` of a computed string (built from variables
    /// or query results), `FOR ... IN EXECUTE`, `RETURN QUERY EXECUTE`, and
    /// bodies PostgreSQL's PL/pgSQL parser could not read. Static SQL inside
    /// bodies, and `EXECUTE` of constant strings (literals, `format()` of
    /// literals), is checked by the other rules like any statement: a DO
    /// block with nothing dynamic raises nothing here.
    ///
    /// ## Why is this bad?
    /// Dynamic SQL can create a table without RLS, add a LID column or take
    /// an ACCESS EXCLUSIVE lock, and no static rule can see it. It needs a human
    /// review (or `strata check --shadow`, which applies it to a scratch
    /// database and inspects the result).
    ///
    /// ## Example
    /// ```sql
    /// DO $$ BEGIN
    ///   EXECUTE 'CREATE TABLE ' || quote_ident(current_setting('app.tenant')) || ' (id int)';
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
        summary: "dynamic SQL in DO blocks and functions (needs review: it is not checked)",
        needs_workspace: false,
    }
}

impl Rule for OpaqueSql {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        if cx.stmt.body.is_some() {
            return;
        }
        let holder = match cx.stmt.unparsed().map(|u| u.words.first().map(String::as_str)) {
            Some(Some("DO")) => "DO block".to_string(),
            _ => match cx.stmt.ast() {
                Some(Statement::CreateFunction(cf)) => format!("function `{}`", cf.name),
                _ => "function".to_string(),
            },
        };
        for d in cx.file.parsed.dynamic.iter().filter(|d| d.statement == cx.index) {
            out.push(
                Finding::new(d.region, format!("{holder} runs {}: what it does is not checked statically", d.what))
                    .help("prefer plain DDL, or EXECUTE of constant strings; review it, then suppress with `-- strata-ignore opaque-sql: <reason>`")
                    .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::diag::Pos;
    use crate::rules::testing::{check_plain, ids, known};

    #[test]
    fn fires_on_computed_execute_at_its_position() {
        let d = check_plain(
            "DO $$\nDECLARE t text := 'x';\nBEGIN\n  EXECUTE 'CREATE TABLE ' || t || ' (id int)';\nEND $$;\n\
             CREATE FUNCTION mk(n text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE format('DROP TABLE %I', n); END $$;\n",
        );
        let f: Vec<_> = d.iter().filter(|x| x.rule == known("opaque-sql")).collect();
        assert_eq!(f.len(), 2, "{d:#?}");
        assert_eq!(f[0].region.start, Pos::new(4, 11));
        assert!(
            f[1].message.starts_with("function `mk` runs EXECUTE of a computed string"),
            "{}",
            f[1].message
        );
        assert_eq!(ids(&d, "unparsed-statement"), 0, "{d:#?}");
    }

    #[test]
    fn quiet_on_static_bodies_and_constant_execute() {
        let d = check_plain(
            "CREATE FUNCTION one() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n\
             DO $$ BEGIN RAISE NOTICE 'hello'; EXECUTE 'SELECT 1'; EXECUTE format('SELECT %L', 'x'); END $$;\n",
        );
        assert_eq!(ids(&d, "opaque-sql"), 0, "{d:#?}");
        assert!(d.is_empty(), "{d:#?}");
    }
}
