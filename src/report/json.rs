//! The JSON format (`--format json`), for scripts and editors.
//!
//! The shape is stable: fields are only ever added, and a breaking change
//! bumps `version`. One pretty-printed object, followed by a newline:
//!
//! ```json
//! {
//!   "version": 1,
//!   "summary": {
//!     "files": 12,
//!     "statements": 340,
//!     "understood": 338,
//!     "parsed": 338,
//!     "context_files": 250,
//!     "errors": 3,
//!     "warnings": 1,
//!     "accepted": 0,
//!     "elapsed_ms": 12.3
//!   },
//!   "stale_baseline": [],
//!   "diagnostics": [
//!     {
//!       "rule": "rls-missing",
//!       "severity": "error",
//!       "file": "schema/core/0003_notes.sql",
//!       "start": { "line": 4, "col": 14 },
//!       "end": { "line": 4, "col": 18 },
//!       "message": "table `public.notes` has no ENABLE ROW LEVEL SECURITY by the end of its migration",
//!       "help": "add `ALTER TABLE notes ENABLE ROW LEVEL SECURITY;` in the same file",
//!       "fix": {
//!         "description": "enable row level security",
//!         "edits": [
//!           { "start": 120, "end": 120, "replacement": "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n" }
//!         ]
//!       }
//!     }
//!   ]
//! }
//! ```
//!
//! - `summary`: `files` and `statements` are those under review (top-level
//!   statements; those inside DO blocks and function bodies are not
//!   counted), `understood` the statements strata read (sqlparser, or
//!   PostgreSQL's grammar into strata's model; `parsed` is the same number),
//!   `context_files` the history files
//!   replayed only for context, `errors` and `warnings` count `diagnostics`,
//!   `accepted` the findings the findings baseline accepted (left out of
//!   `diagnostics` and of `errors` and `warnings`),
//!   `elapsed_ms` is the wall time of the check in milliseconds (rounded to
//!   the microsecond).
//! - `stale_baseline`: the findings baseline entries of the files under
//!   review that matched no finding (`rule`, `file`, `fingerprint`, `count`,
//!   `message`); `strata check --write-baseline` drops them.
//! - `diagnostics` are sorted by file, start position and rule.
//! - `severity` is `"error"` or `"warning"`.
//! - `file` is the path as shown in the text format (relative to the workspace
//!   or the working directory when possible).
//! - `start` and `end` are 1-based and both inclusive; `col` counts Unicode
//!   characters (code points), not bytes.
//! - `help` is a string or `null`.
//! - `fix` is `null` or a suggested change: each edit replaces the bytes
//!   `start..end` of the file's UTF-8 text (byte offsets, `end` exclusive;
//!   `start == end` inserts) by `replacement`. Edits of one fix do not overlap.
//!   A fix that also adds a migration carries `"new_file": { "name": ...,
//!   "content": ... }` (the descriptive part of the name; `strata check --fix`
//!   numbers it after the last migration of the fixed file's folder); the key
//!   is absent otherwise.

use std::io::{self, Write};

use serde::Serialize;

use super::{CheckReport, Fix, Pos, Severity};

/// Bumped only on a breaking change of the shape documented above.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
struct JsonReport<'a> {
    version: u32,
    summary: Summary,
    stale_baseline: &'a [crate::diag::BaselineEntry],
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct Summary {
    files: usize,
    statements: usize,
    understood: usize,
    /// The same number as `understood` (its name before PostgreSQL's
    /// grammar joined the front end), kept for existing consumers.
    parsed: usize,
    context_files: usize,
    errors: usize,
    warnings: usize,
    accepted: usize,
    elapsed_ms: f64,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    rule: &'a str,
    severity: Severity,
    file: &'a str,
    start: Pos,
    end: Pos,
    message: &'a str,
    help: Option<&'a str>,
    fix: Option<&'a Fix>,
}

pub fn render(report: &CheckReport, w: &mut dyn Write) -> io::Result<()> {
    let stats = &report.stats;
    let json = JsonReport {
        version: VERSION,
        summary: Summary {
            files: stats.files,
            statements: stats.statements,
            understood: stats.understood,
            parsed: stats.understood,
            context_files: stats.context_files,
            errors: report.count(Severity::Error),
            warnings: report.count(Severity::Warning),
            accepted: stats.accepted,
            elapsed_ms: (stats.elapsed_ms * 1000.0).round() / 1000.0,
        },
        stale_baseline: &report.stale_baseline,
        diagnostics: report
            .diagnostics
            .iter()
            .map(|d| JsonDiagnostic {
                rule: d.rule,
                severity: d.severity,
                file: &d.file.path,
                start: d.region.start,
                end: d.region.end,
                message: &d.message,
                help: d.help.as_deref(),
                fix: d.fix.as_ref(),
            })
            .collect(),
    };
    super::write_json(&json, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    fn rendered(report: &CheckReport) -> String {
        let mut out = Vec::new();
        render(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_shape() {
        let out = rendered(&fixture::report());
        insta::assert_snapshot!(out);
    }

    #[test]
    fn parses_back_with_the_documented_fields() {
        let report = fixture::report();
        let value: serde_json::Value = serde_json::from_str(&rendered(&report)).unwrap();
        assert_eq!(value["version"], 1);
        assert_eq!(value["summary"]["errors"], 2);
        assert_eq!(value["summary"]["warnings"], 4);
        assert_eq!(value["summary"]["elapsed_ms"], 12.346);
        let diagnostics = value["diagnostics"].as_array().unwrap();
        assert_eq!(diagnostics.len(), report.diagnostics.len());
        for d in diagnostics {
            for key in ["rule", "severity", "file", "start", "end", "message", "help", "fix"] {
                assert!(d.get(key).is_some(), "{key} missing in {d}");
            }
        }
    }

    #[test]
    fn a_new_file_of_a_fix_is_serialized_only_when_present() {
        let mut report = fixture::report();
        let with_fix = report.diagnostics.iter_mut().find(|d| d.fix.is_some()).unwrap();
        with_fix.fix.as_mut().unwrap().new_file = Some(crate::report::NewFile {
            name: "validate_notes_body_check".to_string(),
            content: "ALTER TABLE notes VALIDATE CONSTRAINT notes_body_check;\n".to_string(),
        });
        let value: serde_json::Value = serde_json::from_str(&rendered(&report)).unwrap();
        let fixes: Vec<&serde_json::Value> = value["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["fix"])
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(fixes[0]["new_file"]["name"], "validate_notes_body_check");
        let plain: serde_json::Value = serde_json::from_str(&rendered(&fixture::report())).unwrap();
        assert!(!plain.to_string().contains("new_file"));
    }

    #[test]
    fn empty_report() {
        let out = rendered(&CheckReport::default());
        assert!(out.ends_with("\"diagnostics\": []\n}\n"));
    }
}
