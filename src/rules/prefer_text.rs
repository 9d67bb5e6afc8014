use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::DataType;

use super::helpers::{byte_region, find_type, replace_fix, typed_columns};
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags columns typed `varchar(n)` / `character varying(n)`.
    ///
    /// ## Why is this bad?
    /// In PostgreSQL `varchar(n)` is `text` with a length check: it is not
    /// faster or smaller. The limit is a business rule frozen into the type,
    /// and when the business changes its mind, shrinking the limit (or changing
    /// the type) takes an ACCESS EXCLUSIVE lock, and every view that selects
    /// the column has to be dropped and recreated around it. A `CHECK`
    /// constraint states the same rule and can be replaced with `NOT VALID`
    /// and a separate `VALIDATE`, without blocking anyone.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE contacts (id uuid PRIMARY KEY, display_name varchar(120));
    /// -- good
    /// CREATE TABLE contacts (
    ///     id uuid PRIMARY KEY,
    ///     display_name text CONSTRAINT contacts_display_name_length CHECK (char_length(display_name) <= 120)
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Use `text`, with a `CHECK (char_length(col) <= n)` when the limit
    /// matters. The attached fix replaces the type with `text` (add the check
    /// yourself if you need the limit).
    pub struct PreferText {
        id: "prefer-text",
        group: Correctness,
        severity: Warning,
        summary: "a varchar(n) column: use text (with a CHECK when the length matters)",
        needs_workspace: false,
    }
}

static VARCHAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^(?:character\s+varying|char\s+varying|varchar)\s*\(\s*\d+\s*\)").expect("regex"));

fn limit(t: &DataType) -> Option<u64> {
    use sqlparser::ast::CharacterLength;
    match t {
        DataType::Varchar(Some(CharacterLength::IntegerLength { length, .. }))
        | DataType::CharacterVarying(Some(CharacterLength::IntegerLength { length, .. }))
        | DataType::CharVarying(Some(CharacterLength::IntegerLength { length, .. })) => Some(*length),
        _ => None,
    }
}

impl Rule for PreferText {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        let source = &cx.file.parsed.source;
        for c in typed_columns(stmt, cx.catalog) {
            let Some(n) = limit(c.data_type) else { continue };
            let column = ident_name(c.name);
            let mut f = Finding::new(
                ident_region(c.name).unwrap_or(cx.stmt.region),
                format!(
                    "column `{}.{column}` is varchar({n}): a length limit in the type is hard to change later",
                    c.table
                ),
            )
            .help(format!(
                "use `text` with `CHECK (char_length({column}) <= {n})` if the limit matters"
            ))
            .at_statement(cx.index);
            if let Some(t) = find_type(source, c.name, &VARCHAR) {
                f.region = byte_region(source, t.start, t.end);
                f.fix = Some(replace_fix(format!("replace `{}` with `text`", t.text), t.start, t.end, "text"));
            }
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{apply_fixes, check_plain, ids, render_rule};

    const SQL: &str = "CREATE TABLE contacts (\n    id uuid PRIMARY KEY,\n    display_name VARCHAR(120) NOT NULL,\n    notes text\n);\nALTER TABLE contacts ADD COLUMN locale character varying (35);\nALTER TABLE contacts ALTER COLUMN notes TYPE varchar(2000);\n";

    #[test]
    fn fires_on_varchar_n_with_a_text_fix() {
        let d = check_plain(SQL);
        assert_eq!(ids(&d, "prefer-text"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-text"));
        let fixed = apply_fixes(SQL, &d, "prefer-text");
        assert!(fixed.contains("display_name text NOT NULL"), "{fixed}");
        assert!(fixed.contains("ADD COLUMN locale text;"), "{fixed}");
        assert!(fixed.contains("TYPE text;"), "{fixed}");
    }

    #[test]
    fn quiet_on_text_and_unbounded_varchar() {
        let d = check_plain("CREATE TABLE contacts (id uuid PRIMARY KEY, display_name text, slug varchar);");
        assert_eq!(ids(&d, "prefer-text"), 0, "{d:#?}");
    }
}
