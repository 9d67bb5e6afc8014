//! GitHub Actions workflow commands (`--format github`): one annotation per
//! finding, shown on the pull request's diff.
//!
//! ```text
//! ::error file=schema/core/0003_notes.sql,line=4,col=14,endLine=4,endColumn=18,title=rls-missing::table `public.notes` has no ENABLE ROW LEVEL SECURITY by the end of its migration%0Aadd `ALTER TABLE notes ENABLE ROW LEVEL SECURITY;` in the same file
//! ```
//!
//! Columns are inclusive. GitHub accepts columns only for a single-line
//! annotation, so a multi-line region gives `line` and `endLine` alone.

use std::borrow::Cow;
use std::io::{self, Write};

use super::{CheckReport, Severity};

pub fn render(report: &CheckReport, w: &mut dyn Write) -> io::Result<()> {
    for d in &report.diagnostics {
        let command = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Off => "notice",
        };
        let region = d.region.normalized();
        let (start, end) = (region.start, region.end);
        write!(w, "::{command} file={},line={}", escape_property(&d.file.path), start.line)?;
        if start.line == end.line {
            write!(w, ",col={},endLine={},endColumn={}", start.col, end.line, end.col)?;
        } else {
            write!(w, ",endLine={}", end.line)?;
        }
        write!(w, ",title={}::{}", escape_property(d.rule), escape_data(&d.message))?;
        if let Some(help) = &d.help {
            write!(w, "%0A{}", escape_data(help))?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// Escapes a command's message (GitHub's `escapeData`).
fn escape_data(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// Escapes a command's property value (GitHub's `escapeProperty`).
fn escape_property(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

fn escape(s: &str, property: bool) -> Cow<'_, str> {
    let special = |c: char| matches!(c, '%' | '\r' | '\n') || (property && matches!(c, ':' | ','));
    if !s.contains(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            ':' if property => out.push_str("%3A"),
            ',' if property => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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
    fn fixture_commands() {
        let out = rendered(&fixture::report());
        insta::assert_snapshot!(out);
    }

    #[test]
    fn one_command_per_finding() {
        let report = fixture::report();
        let out = rendered(&report);
        assert_eq!(out.lines().count(), report.diagnostics.len());
        assert!(out.lines().all(|l| l.starts_with("::error ") || l.starts_with("::warning ")));
        assert!(!out.contains('\r'));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_data("100%: a,b\r\nc"), "100%25: a,b%0D%0Ac");
        assert_eq!(escape_property("100%: a,b\r\nc"), "100%25%3A a%2Cb%0D%0Ac");
        assert!(matches!(escape_data("plain"), Cow::Borrowed(_)));
    }
}
