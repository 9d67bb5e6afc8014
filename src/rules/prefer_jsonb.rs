use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::DataType;

use super::helpers::{base_type, byte_region, find_type, replace_fix, typed_columns};
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags columns typed `json` (or `json[]`).
    ///
    /// ## Why is this bad?
    /// `json` stores the text as written and re-parses it on every access.
    /// It has no equality operator, so it cannot be compared, grouped,
    /// de-duplicated or used in a unique index, and it cannot be indexed with
    /// GIN. `jsonb` is parsed once, supports containment (`@>`) and GIN
    /// indexes, and is what every Orbis payload column uses.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE inbound_messages (id uuid PRIMARY KEY, payload json NOT NULL);
    /// -- good
    /// CREATE TABLE inbound_messages (id uuid PRIMARY KEY, payload jsonb NOT NULL);
    /// ```
    ///
    /// ## How to fix
    /// Use `jsonb` (the attached fix does). Keep `json` only when the exact
    /// text, key order and duplicate keys must be preserved, and suppress the
    /// finding with that reason.
    pub struct PreferJsonb {
        id: "prefer-jsonb",
        group: Correctness,
        severity: Warning,
        summary: "a json column: use jsonb",
        needs_workspace: false,
    }
}

static JSON: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)^json\b").expect("regex"));

impl Rule for PreferJsonb {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        let source = &cx.file.parsed.source;
        for c in typed_columns(stmt, cx.catalog) {
            if *base_type(c.data_type) != DataType::JSON {
                continue;
            }
            let mut f = Finding::new(
                ident_region(c.name).unwrap_or(cx.stmt.region),
                format!(
                    "column `{}.{}` is json: it is re-parsed on every access and cannot be compared or GIN-indexed",
                    c.table,
                    ident_name(c.name)
                ),
            )
            .help("use `jsonb`")
            .at_statement(cx.index);
            if let Some(t) = find_type(source, c.name, &JSON) {
                f.region = byte_region(source, t.start, t.end);
                f.fix = Some(replace_fix("replace `json` with `jsonb`", t.start, t.end, "jsonb"));
            }
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{apply_fixes, check_plain, ids, render_rule};

    const SQL: &str = "CREATE TABLE inbound_messages (\n    id uuid PRIMARY KEY,\n    payload JSON NOT NULL,\n    attachments json[]\n);\n";

    #[test]
    fn fires_on_json_with_a_jsonb_fix() {
        let d = check_plain(SQL);
        assert_eq!(ids(&d, "prefer-jsonb"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-jsonb"));
        let fixed = apply_fixes(SQL, &d, "prefer-jsonb");
        assert!(fixed.contains("payload jsonb NOT NULL"), "{fixed}");
        assert!(fixed.contains("attachments jsonb[]"), "{fixed}");
    }

    #[test]
    fn quiet_on_jsonb() {
        let d = check_plain("CREATE TABLE inbound_messages (id uuid PRIMARY KEY, payload jsonb, meta jsonb[]);");
        assert_eq!(ids(&d, "prefer-jsonb"), 0, "{d:#?}");
    }
}
