use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::DataType;

use super::helpers::{byte_region, find_type, typed_columns, TypeSource, TypeText, TypedColumn};
use super::{fixes, ident_region, lock, tokens, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;
use crate::diag::{Edit, Fix};

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
    /// matters. The attached fix never weakens the column: it replaces the
    /// type with `text` and keeps the limit as a named `CHECK` (a column
    /// constraint in a new table; on an existing table an
    /// `ADD CONSTRAINT ... NOT VALID` in the same `ALTER TABLE`, so no scan
    /// runs under the lock). Drop the check yourself if the limit does not
    /// matter.
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
                f = f.with_fix(text_with_check(cx, &c, &t, n));
            }
            out.push(f);
        }
    }
}

/// The fix: `text`, with the length limit kept as a `CHECK`.
fn text_with_check(cx: &StatementCtx, c: &TypedColumn, t: &TypeText, n: u64) -> Result<Fix, String> {
    let source = &cx.file.parsed.source;
    let column = c.name.to_string();
    let name = format!("{}_{}_length", c.table.name, ident_name(c.name));
    // A name that needs quoting or is too long for PostgreSQL: let it name
    // the constraint.
    let named = name.len() <= 63 && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    let constraint = |check: &str| {
        if named {
            format!("CONSTRAINT {name} {check}")
        } else {
            check.to_string()
        }
    };
    let check = format!("CHECK (char_length({column}) <= {n})");
    let description = format!("replace `{}` with `text` and keep the limit as a CHECK", t.text);
    let retype = Edit {
        start: t.start,
        end: t.end,
        replacement: "text".to_string(),
    };
    let existing = lock::table_age(cx.catalog, cx.file, cx.index, &c.table).is_live();
    if c.source == TypeSource::CreateTable || (c.source == TypeSource::AddColumn && !existing) {
        let inline = Edit {
            replacement: format!("text {}", constraint(&check)),
            ..retype
        };
        return Ok(Fix::new(description, vec![inline]));
    }
    // A separate operation of the same ALTER TABLE: NOT VALID on a table
    // with rows, so adding it scans nothing while the lock is held.
    let toks = tokens::tokens(source, cx.stmt);
    let last = toks
        .iter()
        .rev()
        .find(|t| t.token != sqlparser::tokenizer::Token::SemiColon)
        .ok_or("strata could not place the CHECK in this statement")?;
    let not_valid = if existing { " NOT VALID" } else { "" };
    let add = fixes::insert_after(last, &format!(", ADD {}{not_valid}", constraint(&check)));
    Ok(Fix::new(description, vec![retype, add]))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{apply_fixes, check_plain, check_ws, finding, ids, render_rule};

    const SQL: &str = "CREATE TABLE contacts (\n    id uuid PRIMARY KEY,\n    display_name VARCHAR(120) NOT NULL,\n    notes text\n);\nALTER TABLE contacts ADD COLUMN locale character varying (35);\nALTER TABLE contacts ALTER COLUMN notes TYPE varchar(2000);\n";

    #[test]
    fn fires_on_varchar_n_with_a_text_fix_that_keeps_the_limit() {
        let d = check_plain(SQL);
        assert_eq!(ids(&d, "prefer-text"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-text"));
        // The table is new in this file: the limit becomes column or table
        // checks, validated at once (the table is empty).
        let fixed = apply_fixes(SQL, &d, "prefer-text");
        assert_eq!(
            fixed,
            "CREATE TABLE contacts (\n    id uuid PRIMARY KEY,\n    display_name text CONSTRAINT contacts_display_name_length CHECK (char_length(display_name) <= 120) NOT NULL,\n    notes text\n);\n\
             ALTER TABLE contacts ADD COLUMN locale text CONSTRAINT contacts_locale_length CHECK (char_length(locale) <= 35);\n\
             ALTER TABLE contacts ALTER COLUMN notes TYPE text, ADD CONSTRAINT contacts_notes_length CHECK (char_length(notes) <= 2000);\n"
        );
    }

    #[test]
    fn on_an_existing_table_the_check_is_added_not_valid() {
        let d = check_ws(&[
            ("core/0001_orders.sql", "CREATE TABLE orders (id bigint PRIMARY KEY, note text);\n"),
            (
                "core/0002_orders_codes.sql",
                "ALTER TABLE orders ADD COLUMN code varchar(255), ALTER COLUMN note TYPE varchar(80);\n",
            ),
        ]);
        assert_eq!(ids(&d, "prefer-text"), 2, "{d:#?}");
        let text = &finding(&d, "prefer-text").file.text;
        assert_eq!(
            apply_fixes(text, &d, "prefer-text"),
            "ALTER TABLE orders ADD COLUMN code text, ALTER COLUMN note TYPE text, \
             ADD CONSTRAINT orders_code_length CHECK (char_length(code) <= 255) NOT VALID, \
             ADD CONSTRAINT orders_note_length CHECK (char_length(note) <= 80) NOT VALID;\n"
        );
    }

    #[test]
    fn quiet_on_text_and_unbounded_varchar() {
        let d = check_plain("CREATE TABLE contacts (id uuid PRIMARY KEY, display_name text, slug varchar);");
        assert_eq!(ids(&d, "prefer-text"), 0, "{d:#?}");
    }
}
