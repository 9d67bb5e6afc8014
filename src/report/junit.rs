//! JUnit XML (`--format junit`), for CI systems that show test reports.
//!
//! One `<testsuite>` per file with findings and one `<testcase>` per
//! finding. A case fails exactly when its finding fails the check (the exit
//! code): errors always, warnings with `--deny-warnings`. Other warnings are
//! passing cases with the finding in `<system-out>`, so CI shows them
//! without reporting a failure the job does not have. A clean check is one
//! passing test case, so the report shows a pass rather than nothing.
//!
//! The XML is written by hand: five escapes and dropping the characters
//! XML 1.0 forbids do not need a crate.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};

use super::{CheckReport, Diagnostic, Severity, SourceFile};

pub fn render(report: &CheckReport, deny_warnings: bool, w: &mut dyn Write) -> io::Result<()> {
    writeln!(w, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    let total = report.diagnostics.len();
    let fails = |d: &Diagnostic| d.severity == Severity::Error || (deny_warnings && d.severity == Severity::Warning);
    if total == 0 {
        writeln!(w, r#"<testsuites name="strata" tests="1" failures="0">"#)?;
        writeln!(w, r#"  <testsuite name="strata" tests="1" failures="0">"#)?;
        writeln!(w, r#"    <testcase name="strata check" classname="strata"/>"#)?;
        writeln!(w, "  </testsuite>")?;
        return writeln!(w, "</testsuites>");
    }
    let failures = report.diagnostics.iter().filter(|d| fails(d)).count();
    writeln!(w, r#"<testsuites name="strata" tests="{total}" failures="{failures}">"#)?;
    for (file, findings) in by_file(&report.diagnostics) {
        let n = findings.len();
        let failed = findings.iter().filter(|d| fails(d)).count();
        let path = attr(&file.path);
        writeln!(w, r#"  <testsuite name="{path}" tests="{n}" failures="{failed}">"#)?;
        for d in findings {
            let start = d.region.start;
            let (line, col) = (start.line, start.col);
            writeln!(w, r#"    <testcase name="{} at {line}:{col}" classname="{path}">"#, attr(d.rule))?;
            let prefix = if d.severity == Severity::Error { "" } else { "warning: " };
            let close = if fails(d) {
                write!(
                    w,
                    r#"      <failure type="{}" message="{prefix}{}">"#,
                    attr(d.rule),
                    attr(&d.message)
                )?;
                "</failure>"
            } else {
                write!(w, "      <system-out>")?;
                "</system-out>"
            };
            write!(
                w,
                "{}:{line}:{col}: {}[{}]: {}",
                text(&file.path),
                d.severity.as_str(),
                text(d.rule),
                text(&d.message)
            )?;
            if let Some(help) = &d.help {
                write!(w, "\nhelp: {}", text(help))?;
            }
            writeln!(w, "{close}")?;
            writeln!(w, "    </testcase>")?;
        }
        writeln!(w, "  </testsuite>")?;
    }
    writeln!(w, "</testsuites>")
}

/// The findings grouped by file, files in order of first appearance (the
/// report is sorted, so this is path order), in one pass.
fn by_file(diagnostics: &[Diagnostic]) -> Vec<(&SourceFile, Vec<&Diagnostic>)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<(&SourceFile, Vec<&Diagnostic>)> = Vec::new();
    for d in diagnostics {
        let i = *index.entry(d.file.path.as_str()).or_insert_with(|| {
            groups.push((&d.file, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(d);
    }
    groups
}

/// Text escaped for an attribute value: line breaks and tabs become character
/// references, since parsers turn raw ones into spaces.
fn attr(s: &str) -> Xml<'_> {
    Xml { s, attribute: true }
}

/// Text escaped for element content.
fn text(s: &str) -> Xml<'_> {
    Xml { s, attribute: false }
}

struct Xml<'a> {
    s: &'a str,
    attribute: bool,
}

impl fmt::Display for Xml<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut clean = 0;
        for (i, c) in self.s.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&apos;",
                // A raw CR would be read back as a line feed.
                '\r' => "&#13;",
                '\n' if self.attribute => "&#10;",
                '\t' if self.attribute => "&#9;",
                c if is_xml_char(c) => continue,
                // Not allowed in XML 1.0 at all, not even as a reference.
                _ => "",
            };
            f.write_str(&self.s[clean..i])?;
            f.write_str(replacement)?;
            clean = i + c.len_utf8();
        }
        f.write_str(&self.s[clean..])
    }
}

/// XML 1.0's `Char` production.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{fixture, Stats};

    fn escaped(s: &str, attribute: bool) -> String {
        Xml { s, attribute }.to_string()
    }

    fn rendered(report: &CheckReport) -> String {
        rendered_with(report, false)
    }

    fn rendered_with(report: &CheckReport, deny_warnings: bool) -> String {
        let mut out = Vec::new();
        render(report, deny_warnings, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_suites() {
        let out = rendered(&fixture::report());
        insta::assert_snapshot!(out);
    }

    /// Failures follow the exit code: warnings fail only with
    /// `--deny-warnings`, and every finding is a test case either way.
    #[test]
    fn failures_follow_the_exit_code() {
        let report = fixture::report();
        let errors = report.count(Severity::Error);
        let total = report.diagnostics.len();
        assert!(errors > 0 && errors < total);
        let head = |out: &str| out.lines().nth(1).unwrap().to_string();
        let lenient = rendered(&report);
        assert_eq!(
            head(&lenient),
            format!(r#"<testsuites name="strata" tests="{total}" failures="{errors}">"#)
        );
        assert_eq!(lenient.matches("<failure ").count(), errors);
        assert_eq!(lenient.matches("<system-out>").count(), total - errors);
        let strict = rendered_with(&report, true);
        assert_eq!(
            head(&strict),
            format!(r#"<testsuites name="strata" tests="{total}" failures="{total}">"#)
        );
        assert_eq!(strict.matches("<failure ").count(), total);
    }

    #[test]
    fn clean_check_is_one_passing_case() {
        let report = CheckReport {
            diagnostics: Vec::new(),
            stats: Stats::default(),
            ..Default::default()
        };
        insta::assert_snapshot!(rendered(&report));
    }

    #[test]
    fn escaping() {
        assert_eq!(escaped("a<b>&\"c\"'d'", false), "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;");
        assert_eq!(escaped("a\r\n\tb", false), "a&#13;\n\tb");
        assert_eq!(escaped("a\r\n\tb", true), "a&#13;&#10;&#9;b");
        assert_eq!(escaped("bell\u{7}nul\u{0}\u{FFFE}é€", false), "bellnulé€");
        assert_eq!(escaped("plain", true), "plain");
    }
}
