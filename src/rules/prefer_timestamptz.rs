use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::{DataType, TimezoneInfo};

use super::helpers::{byte_region, find_type, replace_fix, typed_columns};
use super::{ident_region, Finding, Rule, RuleMeta, StatementCtx};
use crate::catalog::ident_name;

crate::declare_rule! {
    /// ## What it does
    /// Flags columns typed `timestamp` (`timestamp without time zone`).
    ///
    /// ## Why is this bad?
    /// `timestamp` stores a wall-clock reading with no zone: the same value
    /// means different instants for a worker in Zurich and one in Tokyo, and
    /// comparisons with `now()` silently depend on the session's `TimeZone`.
    /// `timestamptz` stores an instant (UTC internally) and converts on
    /// output; it takes the same 8 bytes.
    ///
    /// ## Example
    /// ```sql
    /// -- bad
    /// CREATE TABLE bookings (id uuid PRIMARY KEY, starts_at timestamp NOT NULL);
    /// -- good
    /// CREATE TABLE bookings (id uuid PRIMARY KEY, starts_at timestamptz NOT NULL);
    /// ```
    ///
    /// ## How to fix
    /// Use `timestamptz` (the attached fix keeps any precision, e.g.
    /// `timestamp(3)` becomes `timestamptz(3)`). Changing the type of an
    /// existing column rewrites the table; do it as an expand/contract reshape.
    pub struct PreferTimestamptz {
        id: "prefer-timestamptz",
        group: Correctness,
        severity: Error,
        summary: "a timestamp without time zone column: use timestamptz",
        needs_workspace: false,
    }
}

static TIMESTAMP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^timestamp(?:\s*\(\s*(\d+)\s*\))?(?:\s+without\s+time\s+zone)?").expect("regex"));

impl Rule for PreferTimestamptz {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check_statement(&self, cx: &StatementCtx, out: &mut Vec<Finding>) {
        let Some(stmt) = cx.stmt.ast() else { return };
        let source = &cx.file.parsed.source;
        for c in typed_columns(stmt, cx.catalog) {
            if !matches!(
                c.data_type,
                DataType::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone)
            ) {
                continue;
            }
            let mut f = Finding::new(
                ident_region(c.name).unwrap_or(cx.stmt.region),
                format!(
                    "column `{}.{}` is timestamp without time zone: its meaning depends on the session's TimeZone",
                    c.table,
                    ident_name(c.name)
                ),
            )
            .help("use `timestamptz`")
            .at_statement(cx.index);
            if let Some(t) = find_type(source, c.name, &TIMESTAMP) {
                let precision = TIMESTAMP
                    .captures(t.text)
                    .and_then(|m| m.get(1))
                    .map_or(String::new(), |p| format!("({})", p.as_str()));
                f.region = byte_region(source, t.start, t.end);
                f.fix = Some(replace_fix(
                    format!("replace `{}` with `timestamptz{precision}`", t.text),
                    t.start,
                    t.end,
                    format!("timestamptz{precision}"),
                ));
            }
            out.push(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::{apply_fixes, check_plain, ids, render_rule};

    const SQL: &str = "CREATE TABLE bookings (\n    id uuid PRIMARY KEY,\n    starts_at timestamp NOT NULL,\n    ends_at TIMESTAMP(3) WITHOUT TIME ZONE\n);\n";

    #[test]
    fn fires_on_timestamp_with_a_timestamptz_fix() {
        let d = check_plain(SQL);
        assert_eq!(ids(&d, "prefer-timestamptz"), 2, "{d:#?}");
        insta::assert_snapshot!(render_rule(&d, "prefer-timestamptz"));
        let fixed = apply_fixes(SQL, &d, "prefer-timestamptz");
        assert!(fixed.contains("starts_at timestamptz NOT NULL"), "{fixed}");
        assert!(fixed.contains("ends_at timestamptz(3)\n"), "{fixed}");
    }

    #[test]
    fn quiet_on_timestamptz() {
        let d = check_plain("CREATE TABLE bookings (id uuid PRIMARY KEY, a timestamptz, b timestamp with time zone, c date);");
        assert_eq!(ids(&d, "prefer-timestamptz"), 0, "{d:#?}");
    }
}
