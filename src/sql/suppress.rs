//! Suppression comments and file headers.
//!
//! `-- strata-ignore <rule>[, <rule>]: <reason>` on the line before a
//! statement suppresses those rules for that statement;
//! `-- strata-ignore-file <rule>: <reason>` anywhere suppresses them for the
//! whole file. The reason is mandatory: this is governance.

use crate::diag::{Pos, Region};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SuppressionScope {
    File,
    /// The index of the statement that follows the comment.
    Statement(usize),
}

#[derive(Clone, Debug)]
pub struct Suppression {
    pub rules: Vec<String>,
    pub reason: Option<String>,
    pub scope: SuppressionScope,
    pub region: Region,
}

impl Suppression {
    pub fn covers(&self, rule: &str, statement: Option<usize>) -> bool {
        self.reason.is_some()
            && self.rules.iter().any(|r| r == rule)
            && match self.scope {
                SuppressionScope::File => true,
                SuppressionScope::Statement(i) => statement == Some(i),
            }
    }
}

/// Reads one `--` comment (text after the dashes). `next_statement` is the
/// index the statement after the comment will get.
pub(crate) fn parse_comment(comment: &str, at: Pos, next_statement: usize, _between_statements: bool) -> Option<Suppression> {
    let body = comment.trim();
    let (scope, rest) = if let Some(rest) = body.strip_prefix("strata-ignore-file") {
        (SuppressionScope::File, rest)
    } else if let Some(rest) = body.strip_prefix("strata-ignore") {
        (SuppressionScope::Statement(next_statement), rest)
    } else {
        return None;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) && !rest.starts_with(':') {
        return None;
    }
    let (rules, reason) = match rest.split_once(':') {
        Some((rules, reason)) => (rules, Some(reason.trim().to_string()).filter(|r| !r.is_empty())),
        None => (rest, None),
    };
    let rules = rules.split(',').map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect();
    let width = comment.trim_end().chars().count() as u32 + 2;
    Some(Suppression {
        rules,
        reason,
        scope,
        region: Region::new(at, Pos::new(at.line, at.col + width.saturating_sub(1))),
    })
}

/// True when the leading comment block of a file marks it as
/// non-transactional: `-- strata: no-transaction` or goose's
/// `-- +goose no transaction`.
pub fn has_no_transaction_header(text: &str) -> bool {
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let Some(comment) = l.strip_prefix("--") else { return false };
        let c = comment.trim().to_ascii_lowercase();
        if c == "strata: no-transaction" || c == "+goose no transaction" {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rules_and_reason() {
        let s = parse_comment(
            " strata-ignore rls-missing, lid-column: legacy import table",
            Pos::new(3, 1),
            2,
            true,
        )
        .unwrap();
        assert_eq!(s.rules, vec!["rls-missing", "lid-column"]);
        assert_eq!(s.reason.as_deref(), Some("legacy import table"));
        assert_eq!(s.scope, SuppressionScope::Statement(2));
        assert!(s.covers("lid-column", Some(2)));
        assert!(!s.covers("lid-column", Some(3)));
    }

    #[test]
    fn reason_is_mandatory() {
        let s = parse_comment(" strata-ignore-file rls-missing", Pos::new(1, 1), 0, true).unwrap();
        assert_eq!(s.reason, None);
        assert!(!s.covers("rls-missing", None));
    }

    #[test]
    fn ordinary_comments_are_not_suppressions() {
        assert!(parse_comment(" strata-ignored stuff", Pos::new(1, 1), 0, true).is_none());
        assert!(parse_comment(" create the users table", Pos::new(1, 1), 0, true).is_none());
    }

    #[test]
    fn no_transaction_header() {
        assert!(has_no_transaction_header(
            "-- strata: no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);"
        ));
        assert!(has_no_transaction_header("-- +goose Up\n-- +goose NO TRANSACTION\nSELECT 1;"));
        assert!(!has_no_transaction_header("SELECT 1;\n-- strata: no-transaction\n"));
    }
}
