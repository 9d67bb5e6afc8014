use sqlparser::ast::{FunctionSecurity, Statement as Ast};

use super::helpers::name_region;
use super::{Finding, Rule, RuleMeta, StatementCtx};

crate::declare_rule! {
    /// ## What it does
    /// Flags a `SECURITY DEFINER` function or procedure that does not pin its
    /// `search_path` with a `SET search_path = ...` clause.
    ///
    /// ## Why is this bad?
    /// A security-definer function runs with its owner's rights (usually the
    /// role that owns the tables, which bypasses RLS unless it is forced).
    /// Unqualified names inside it are resolved through the *caller's*
    /// `search_path`, so a caller who can create objects in any schema on that
    /// path can shadow `contacts` or `now()` with their own and have it run
    /// with the owner's rights.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE FUNCTION resolve_contact(p text) RETURNS uuid
    ///     LANGUAGE sql SECURITY DEFINER
    ///     AS $$ SELECT id FROM contacts WHERE phone = p $$;
    /// -- good
    /// CREATE FUNCTION resolve_contact(p text) RETURNS uuid
    ///     LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    ///     AS $$ SELECT id FROM public.contacts WHERE phone = p $$;
    /// ```
    ///
    /// ## How to fix
    /// Add `SET search_path = pg_catalog, pg_temp` (or `= ''`) and
    /// schema-qualify every name in the body; or make the function
    /// `SECURITY INVOKER` if it does not need the owner's rights.
    pub struct SecurityDefinerSearchPath {
        id: "security-definer-search-path",
        group: Correctness,
        severity: Error,
        summary: "a SECURITY DEFINER function without SET search_path",
        needs_workspace: false,
    }
}

/// Keyword fallback for what sqlparser does not parse (procedures with
/// SECURITY DEFINER): the words of the statement outside string bodies.
fn unparsed_definer_without_path(words: &[String]) -> Option<&str> {
    let creates = words.first().is_some_and(|w| w == "CREATE");
    let what = words.iter().take(5).find(|w| *w == "FUNCTION" || *w == "PROCEDURE")?;
    let definer = words.windows(2).any(|w| w[0] == "SECURITY" && w[1] == "DEFINER");
    (creates && definer && !words.iter().any(|w| w == "SEARCH_PATH")).then_some(what.as_str())
}

impl Rule for SecurityDefinerSearchPath {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let help = "add `SET search_path = pg_catalog, pg_temp` and schema-qualify the names in the body";
        match (cx.stmt.ast(), cx.stmt.unparsed()) {
            (Some(Ast::CreateFunction(cf)), _) => {
                let definer = matches!(cf.security, Some(FunctionSecurity::Definer));
                let pinned = cf.set_params.iter().any(|p| p.name.to_string().eq_ignore_ascii_case("search_path"));
                if definer && !pinned {
                    out.push(
                        Finding::new(
                            name_region(&cf.name).unwrap_or(cx.stmt.region),
                            format!(
                                "SECURITY DEFINER function `{}` resolves names through the caller's search_path",
                                cf.name
                                    .0
                                    .iter()
                                    .filter_map(|p| p.as_ident())
                                    .map(crate::catalog::ident_name)
                                    .collect::<Vec<_>>()
                                    .join(".")
                            ),
                        )
                        .help(help)
                        .at_statement(cx.index),
                    );
                }
            }
            (None, Some(u)) => {
                if let Some(what) = unparsed_definer_without_path(&u.words) {
                    out.push(
                        Finding::new(
                            cx.stmt.region,
                            format!(
                                "SECURITY DEFINER {} resolves names through the caller's search_path",
                                what.to_lowercase()
                            ),
                        )
                        .help(help)
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
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_definer_without_search_path() {
        let d = check_plain(
            "CREATE FUNCTION resolve_contact(p text) RETURNS uuid\n    LANGUAGE sql SECURITY DEFINER\n    AS $$ SELECT id FROM contacts WHERE phone = p $$;\nCREATE PROCEDURE purge_kv() LANGUAGE sql SECURITY DEFINER AS $$ DELETE FROM orbis_kv WHERE expires_at < now() $$;\n",
        );
        assert_eq!(ids(&d, "security-definer-search-path"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "security-definer-search-path"));
    }

    #[test]
    fn quiet_with_search_path_or_invoker() {
        let d = check_plain(
            "CREATE FUNCTION resolve_contact(p text) RETURNS uuid\n    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp\n    AS $$ SELECT id FROM public.contacts WHERE phone = p $$;\nCREATE FUNCTION add1(i int) RETURNS int LANGUAGE sql AS $$ SELECT i + 1 $$;\n",
        );
        assert_eq!(ids(&d, "security-definer-search-path"), 0, "{d:#?}");
    }
}
