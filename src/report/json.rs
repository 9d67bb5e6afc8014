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

use super::{CheckReport, Diagnostic, Fix, Pos, Severity};

/// Bumped only on a breaking change of the shape documented above.
pub const VERSION: u32 = 1;

/// The report without its findings, which [`render`] writes after it.
#[derive(Serialize)]
struct JsonHead<'a> {
    version: u32,
    summary: Summary,
    stale_baseline: &'a [crate::diag::BaselineEntry],
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

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        JsonDiagnostic {
            rule: d.rule,
            severity: d.severity,
            file: &d.file.path,
            start: d.region.start,
            end: d.region.end,
            message: &d.message,
            help: d.help.as_deref(),
            fix: d.fix.as_ref(),
        }
    }
}

/// Findings rendered per piece of work, and pieces rendered and not yet
/// written: a report of any size holds at most this many findings' text.
const CHUNK: usize = 64;
const WINDOW: usize = 4;

/// Writes the report as serde_json's pretty printer writes it whole. The
/// findings are rendered in pieces on every core, written in order (one
/// thread spent a twentieth of a check of the corpora, alone at its end,
/// rendering 4,033 findings).
pub fn render(report: &CheckReport, w: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, w);
    // The head's object, open again for one more field.
    let mut text = serde_json::to_vec_pretty(&head(report))?;
    debug_assert!(text.ends_with(b"\n}"));
    text.truncate(text.len() - 2);
    out.write_all(&text)?;
    out.write_all(b",\n  \"diagnostics\": [")?;
    let pieces: Vec<&[Diagnostic]> = report.diagnostics.chunks(CHUNK).collect();
    let mut first = true;
    let mut write = |piece: io::Result<Vec<u8>>| -> io::Result<()> {
        let piece = piece?;
        // Every finding starts with its separator; the first has none.
        out.write_all(if first { &piece[1..] } else { &piece })?;
        first = false;
        Ok(())
    };
    match pieces.len() {
        0 => {}
        1 => write(render_findings(pieces[0]))?,
        _ => crate::ahead::in_order(&pieces, WINDOW, |piece| render_findings(piece), &mut write)?,
    }
    out.write_all(if first { b"]\n}\n" } else { b"\n  ]\n}\n" })?;
    out.flush()
}

fn head(report: &CheckReport) -> JsonHead<'_> {
    let stats = &report.stats;
    JsonHead {
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
    }
}

/// Findings as elements of the pretty-printed `diagnostics` array, each
/// after its `,` separator.
fn render_findings(findings: &[Diagnostic]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(findings.len() * 768);
    for d in findings {
        out.extend_from_slice(b",\n    ");
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            Nested {
                depth: 2,
                has_value: false,
            },
        );
        JsonDiagnostic::from(d).serialize(&mut ser)?;
    }
    Ok(out)
}

/// serde_json's pretty printer (two spaces an indent) starting `depth`
/// levels in.
struct Nested {
    depth: usize,
    has_value: bool,
}

impl Nested {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, mark: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(mark)
    }
    fn close<W: ?Sized + Write>(&mut self, w: &mut W, mark: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(mark)
    }
    fn item<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(b"\n")?;
        for _ in 0..self.depth {
            w.write_all(b"  ")?;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Nested {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.item(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
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

    /// The report serde_json's pretty printer writes in one piece, to
    /// compare with the one rendered in pieces.
    fn whole(report: &CheckReport) -> String {
        #[derive(Serialize)]
        struct Whole<'a> {
            #[serde(flatten)]
            head: JsonHead<'a>,
            diagnostics: Vec<JsonDiagnostic<'a>>,
        }
        let whole = Whole {
            head: head(report),
            diagnostics: report.diagnostics.iter().map(JsonDiagnostic::from).collect(),
        };
        serde_json::to_string_pretty(&whole).unwrap() + "\n"
    }

    #[test]
    fn findings_rendered_in_pieces_are_the_whole_pretty_print() {
        let one = fixture::report();
        let mut many = fixture::report();
        // Several pieces, the last one short.
        while many.diagnostics.len() < 3 * CHUNK + 5 {
            let more = many.diagnostics.clone();
            many.diagnostics.extend(more);
        }
        many.diagnostics.truncate(3 * CHUNK + 5);
        let mut none = fixture::report();
        none.diagnostics.clear();
        for report in [&one, &many, &none] {
            assert_eq!(rendered(report), whole(report));
        }
        assert!(rendered(&none).contains("\"diagnostics\": []\n}"), "{}", rendered(&none));
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
