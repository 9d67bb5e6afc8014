use sqlparser::ast::{DataType, ObjectNamePart};

use super::helpers::{base_type, typed_columns};
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags columns typed `char(n)` / `character(n)` / `bpchar` (blank-padded
    /// character types). The internal one-byte type `"char"` is not flagged.
    ///
    /// ## Why is this bad?
    /// `char(n)` pads values with spaces to `n` characters and ignores
    /// trailing spaces in comparisons, so `'CH'` stored in a `char(3)` comes
    /// back as `'CH '`, and application code that compares strings sees
    /// values that are different from what it wrote. It is never faster than
    /// `text`, and a length change locks and rewrites the table.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE invoices (id uuid PRIMARY KEY, currency char(3) NOT NULL);
    /// -- good
    /// CREATE TABLE invoices (
    ///     id uuid PRIMARY KEY,
    ///     currency text NOT NULL CONSTRAINT invoices_currency_iso CHECK (currency ~ '^[A-Z]{3}$')
    /// );
    /// ```
    ///
    /// ## How to fix
    /// Use `text` with a `CHECK` that states the format. There is no
    /// automatic fix: existing data may rely on the padding.
    pub struct BanChar {
        id: "ban-char",
        group: Correctness,
        severity: Error,
        summary: "a char(n) / character(n) column: blank-padded, use text with a CHECK",
        needs_workspace: false,
    }
}

fn is_padded(t: &DataType) -> bool {
    match base_type(t) {
        DataType::Char(_) | DataType::Character(_) => true,
        DataType::Custom(name, _) => matches!(
            name.0.as_slice(),
            [ObjectNamePart::Identifier(id)] if id.quote_style.is_none() && id.value.eq_ignore_ascii_case("bpchar")
        ),
        _ => false,
    }
}

impl Rule for BanChar {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        for c in typed_columns(stmt, cx.catalog) {
            if !is_padded(c.data_type) {
                continue;
            }
            out.push(
                Finding::new(
                    ident_region(c.name).unwrap_or(cx.stmt.region),
                    format!(
                        "column `{}.{}` is `{}`: values are blank-padded to the length",
                        c.table,
                        ident_name(c.name),
                        c.data_type.to_string().to_lowercase()
                    ),
                )
                .help("use `text` with a CHECK constraint for the format or length")
                .at_statement(cx.index),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{check_plain, ids, render_rule};

    #[test]
    fn fires_on_blank_padded_types() {
        let d = check_plain(
            "CREATE TABLE invoices (\n    id uuid PRIMARY KEY,\n    currency char(3) NOT NULL,\n    country CHARACTER(2)\n);\nALTER TABLE invoices ADD COLUMN flag bpchar;\n",
        );
        assert_eq!(ids(&d, "ban-char"), 3, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "ban-char"));
    }

    #[test]
    fn quiet_on_text_varchar_and_internal_char() {
        let d = check_plain("CREATE TABLE invoices (id uuid PRIMARY KEY, currency text, code varchar(3), kind \"char\");");
        assert_eq!(ids(&d, "ban-char"), 0, "{d:#?}");
    }
}
