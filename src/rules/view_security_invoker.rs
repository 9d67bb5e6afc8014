use sqlparser::ast::Statement as Ast;

use super::helpers::{in_file, name_region, origin_ast, stmt_region};
use super::{FileCtx, Finding, Rule, RuleMeta};
use crate::catalog::View;

crate::declare_rule! {
    /// ## What it does
    /// Flags a view created in the file without `WITH (security_invoker = true)`
    /// (PostgreSQL 15 and later; materialized views cannot have it and are not
    /// flagged). An `ALTER VIEW ... SET (security_invoker = true)` later in the
    /// same file counts.
    ///
    /// ## Why is this bad?
    /// A view runs its query with the rights of the view's owner, normally
    /// the role that owns the tables, to which row level security does not
    /// apply (unless forced). Granting SELECT on such a view to the
    /// application role lets it read every container's rows, around the very
    /// policies that guard the tables.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE VIEW dreamlink_pipeline AS SELECT d.id, d.title FROM deals AS d;
    /// -- good
    /// CREATE VIEW dreamlink_pipeline WITH (security_invoker = true) AS
    ///     SELECT d.id, d.title FROM deals AS d;
    /// ```
    ///
    /// ## How to fix
    /// Add `WITH (security_invoker = true)`. If the view must bypass RLS on
    /// purpose (a deliberately aggregated report), suppress the finding with
    /// the reason.
    ///
    /// ## PostgreSQL versions
    /// - 15: `security_invoker` exists and the rule asks for it; before 15 a view without it is not flagged, and one with it is flagged as a statement PostgreSQL rejects.
    pub struct ViewSecurityInvoker {
        id: "view-security-invoker",
        group: Correctness,
        severity: Error,
        summary: "a view without security_invoker, which bypasses the RLS of its tables",
        needs_workspace: false,
    }
}

/// Whether an `ALTER VIEW <name> SET (security_invoker ...)` of this file
/// (which sqlparser does not parse; its words are kept) turns the option on.
fn enabled_later(cx: &FileCtx, v: &View) -> bool {
    let name = v.name.name.to_uppercase();
    cx.file
        .parsed
        .statements
        .iter()
        .skip(v.origin.stmt as usize + 1)
        .fold(false, |on, s| {
            let Some(u) = s.unparsed() else { return on };
            let w = &u.words;
            let alters_it = w.len() > 3 && w[0] == "ALTER" && w[1] == "VIEW" && w.iter().skip(2).take(4).any(|x| *x == name);
            if alters_it && w.iter().any(|x| x == "SECURITY_INVOKER") {
                let off = w.iter().any(|x| x == "FALSE" || x == "OFF") || (w.iter().any(|x| x == "RESET") && !w.iter().any(|x| x == "SET"));
                !off
            } else {
                on
            }
        })
}

impl Rule for ViewSecurityInvoker {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_file_end(&self, cx: &FileCtx, out: &mut Vec<Finding>) {
        let pg = cx.env.pg_version;
        let mut views: Vec<&View> = cx
            .catalog
            .views
            .values()
            .filter(|v| in_file(cx, v.origin) && !v.materialized)
            .collect();
        views.sort_by_key(|v| v.origin.stmt);
        for v in views {
            let region = match origin_ast(cx, v.origin) {
                Some(Ast::CreateView(cv)) => name_region(&cv.name),
                _ => None,
            }
            .unwrap_or_else(|| stmt_region(cx.file, v.origin.stmt as usize));
            if pg < 15 {
                // The option is PostgreSQL 15's: older servers reject it.
                if v.security_invoker {
                    out.push(
                        Finding::new(
                            region,
                            format!(
                                "view `{}` sets security_invoker, which PostgreSQL {pg} does not know (15+): CREATE VIEW fails",
                                v.name
                            ),
                        )
                        .help("drop the option, and keep the view away from the application role (or filter by the tenant in the view itself)")
                        .at_statement(v.origin.stmt as usize),
                    );
                }
                continue;
            }
            if v.security_invoker || enabled_later(cx, v) {
                continue;
            }
            out.push(
                Finding::new(
                    region,
                    format!(
                        "view `{}` runs with its owner's rights: row level security of the tables under it does not apply to its readers",
                        v.name
                    ),
                )
                .help("add `WITH (security_invoker = true)` after the view name")
                .at_statement(v.origin.stmt as usize),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, check_ws_pg, check_ws_with, ids, known, render_rule};

    #[test]
    fn fires_on_definer_rights_views() {
        let d = check_plain(
            "CREATE TABLE deals (id uuid PRIMARY KEY, title text);\nCREATE VIEW dreamlink_pipeline AS\n    SELECT d.id, d.title FROM deals AS d;\n",
        );
        assert_eq!(ids(&d, "view-security-invoker"), 1, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "view-security-invoker"));
    }

    #[test]
    fn quiet_before_postgresql_15() {
        let d = check_ws_with(
            &[(
                "core/0001_deals.sql",
                "CREATE TABLE deals (id uuid PRIMARY KEY);\nCREATE VIEW open_deals AS SELECT id FROM deals;\n",
            )],
            |root| {
                let toml = crate::rules::testing::STRATA_TOML.replace("pg_version = 15", "pg_version = 14");
                std::fs::write(root.join("strata.toml"), toml).unwrap();
            },
        );
        assert_eq!(ids(&d, "view-security-invoker"), 0, "{d:#?}");
    }

    #[test]
    fn the_option_is_asked_for_since_15_and_rejected_before() {
        let files = [(
            "core/0001_deals.sql",
            "CREATE TABLE deals (id uuid PRIMARY KEY);\nCREATE VIEW open_deals WITH (security_invoker = true) AS SELECT id FROM deals;\nCREATE VIEW all_deals AS SELECT id FROM deals;\n",
        )];
        let messages = |pg| -> Vec<String> {
            check_ws_pg(pg, &files)
                .iter()
                .filter(|x| x.rule == known("view-security-invoker"))
                .map(|x| x.message.clone())
                .collect()
        };
        assert_eq!(
            messages(15),
            vec!["view `public.all_deals` runs with its owner's rights: row level security of the tables under it does not apply to its readers"]
        );
        assert_eq!(
            messages(14),
            vec!["view `public.open_deals` sets security_invoker, which PostgreSQL 14 does not know (15+): CREATE VIEW fails"]
        );
    }

    #[test]
    fn quiet_with_security_invoker_or_materialized() {
        let d = check_plain(
            "CREATE TABLE deals (id uuid PRIMARY KEY, title text);\nCREATE VIEW a WITH (security_invoker = true) AS SELECT id FROM deals;\nCREATE VIEW b AS SELECT id FROM deals;\nALTER VIEW b SET (security_invoker = true);\nCREATE MATERIALIZED VIEW c AS SELECT id FROM deals;\n",
        );
        assert_eq!(ids(&d, "view-security-invoker"), 0, "{d:#?}");
    }
}
