//! The terminal format: a code frame per finding, the way rustc and ruff show
//! them, then a one-line summary.
//!
//! ```text
//! error[rls-missing]: table `public.notes` has no ENABLE ROW LEVEL SECURITY by the end of its migration
//!   --> schema/core/0003_notes.sql:4:14
//!    |
//!  4 | CREATE TABLE notes (
//!    |              ^^^^^
//!    |
//!    = help: add `ALTER TABLE notes ENABLE ROW LEVEL SECURITY;` in the same file
//!
//! checked 12 files, 340 statements (338 understood), 1 error, 0 warnings in 12.3 ms
//! ```
//!
//! The cost is linear in the number of findings: each frame reads one line
//! through the file's line index and writes straight to the caller's writer
//! (a squawk-style renderer that rescans the text per finding takes about a minute
//! on a 40,000-line file).

use std::fmt;
use std::io::{self, Write};

use super::{CheckReport, Diagnostic, Region, RenderOptions, Severity};

pub fn render(report: &CheckReport, opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    let style = Style::new(opts.color);
    if !opts.quiet {
        for diagnostic in &report.diagnostics {
            write_diagnostic(diagnostic, &style, w)?;
            writeln!(w)?;
        }
    }
    write_summary(report, &style, w)
}

/// ANSI escape codes, or empty strings when color is off, so that the
/// writing code is the same either way.
struct Style {
    reset: &'static str,
    bold: &'static str,
    error: &'static str,
    warning: &'static str,
    gutter: &'static str,
    help: &'static str,
}

impl Style {
    fn new(color: bool) -> Self {
        if color {
            Style {
                reset: "\x1b[0m",
                bold: "\x1b[1m",
                error: "\x1b[1;31m",
                warning: "\x1b[1;33m",
                gutter: "\x1b[1;34m",
                help: "\x1b[36m",
            }
        } else {
            Style {
                reset: "",
                bold: "",
                error: "",
                warning: "",
                gutter: "",
                help: "",
            }
        }
    }

    fn severity(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::Error => self.error,
            Severity::Warning | Severity::Off => self.warning,
        }
    }
}

fn severity_word(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        // Never reported; configuration turns such rules off entirely.
        Severity::Off => "note",
    }
}

fn write_diagnostic(d: &Diagnostic, s: &Style, w: &mut dyn Write) -> io::Result<()> {
    let sev = s.severity(d.severity);
    let (bold, r) = (s.bold, s.reset);
    // `lines` also drops the `\r` of a CRLF, which would rewind the terminal.
    let mut message = d.message.lines();
    write!(
        w,
        "{sev}{}[{}]{r}{bold}: {}",
        severity_word(d.severity),
        d.rule,
        message.next().unwrap_or("")
    )?;
    for line in message {
        write!(w, "\n{line}")?;
    }
    writeln!(w, "{r}")?;

    let start = d.region.start;
    let width = digits(start.line);
    // The gutter is one column wider than the line numbers, so the frame
    // stands out from the header: " 4 | ", "   |", "  --> ".
    let margin = Spaces(width + 1);
    let g = s.gutter;
    if start.line == 0 {
        // A finding about the whole file: no line to show.
        writeln!(w, "{margin}{g}-->{r} {}", d.file.path)?;
    } else {
        writeln!(w, "{margin}{g}-->{r} {}:{}:{}", d.file.path, start.line, start.col)?;
        writeln!(w, "{margin} {g}|{r}")?;
        let text = d.file.line(start.line);
        if text.is_empty() {
            writeln!(w, " {g}{:>width$} |{r}", start.line)?;
        } else {
            writeln!(w, " {g}{:>width$} |{r} {text}", start.line)?;
        }
        let (padding, carets) = caret_span(text, d.region);
        writeln!(w, "{margin} {g}|{r} {padding}{sev}{}{r}", Carets(carets))?;
    }

    if let Some(help) = &d.help {
        writeln!(w, "{margin} {g}|{r}")?;
        let mut lines = help.lines();
        let first = lines.next().unwrap_or("");
        writeln!(w, "{margin} {g}={r} {}help{r}: {first}", s.help)?;
        // Continuation lines line up with the text after "= help: ".
        for line in lines {
            writeln!(w, "{margin}{}{line}", Spaces(" = help: ".len()))?;
        }
    }
    Ok(())
}

/// The whitespace before the caret and the number of carets for `region` on
/// its start line `text`. Columns count characters; a tab before the caret
/// stays a tab so the caret lines up under the source whatever the tab width.
fn caret_span(text: &str, region: Region) -> (String, usize) {
    let before = (region.start.col.max(1) - 1) as usize;
    let mut padding = String::with_capacity(before);
    let mut len = 0;
    for c in text.chars() {
        if len < before {
            padding.push(if c == '\t' { '\t' } else { ' ' });
        }
        len += 1;
    }
    // A position just past the end of the line (a missing `;` at the end).
    for _ in len..before {
        padding.push(' ');
    }
    let rest = len.saturating_sub(before);
    let wanted = if region.end.line == region.start.line {
        (region.end.col as usize + 1).saturating_sub(before + 1)
    } else {
        rest
    };
    (padding, wanted.min(rest).max(1))
}

fn write_summary(report: &CheckReport, s: &Style, w: &mut dyn Write) -> io::Result<()> {
    let stats = &report.stats;
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    let (error_style, warning_style) = (if errors > 0 { s.error } else { "" }, if warnings > 0 { s.warning } else { "" });
    write!(
        w,
        "checked {}, {} ({} understood), {error_style}{}{r}, {warning_style}{}{r}",
        Count(stats.files, "file"),
        Count(stats.statements, "statement"),
        stats.understood,
        Count(errors, "error"),
        Count(warnings, "warning"),
        r = if errors > 0 || warnings > 0 { s.reset } else { "" },
    )?;
    if stats.context_files > 0 {
        write!(w, ", {} of history replayed", Count(stats.context_files, "file"))?;
    }
    writeln!(w, " in {:.1} ms", stats.elapsed_ms)?;
    if stats.accepted > 0 {
        writeln!(
            w,
            "{} accepted by the findings baseline (`--no-baseline` shows them)",
            Count(stats.accepted, "finding")
        )?;
    }
    write_stale(report, w)
}

/// The findings baseline entries that matched nothing, a few by name.
fn write_stale(report: &CheckReport, w: &mut dyn Write) -> io::Result<()> {
    let stale = &report.stale_baseline;
    if stale.is_empty() {
        return Ok(());
    }
    let n: usize = stale.iter().map(|e| e.count).sum();
    writeln!(
        w,
        "{} of the findings baseline no longer match (fixed, or the statement changed); `strata check --write-baseline` drops them:",
        Count(n, "entry")
    )?;
    for e in stale.iter().take(5) {
        writeln!(w, "  {} [{}] {}", e.file, e.rule, e.message)?;
    }
    if stale.len() > 5 {
        writeln!(w, "  and {} more", stale.len() - 5)?;
    }
    Ok(())
}

fn digits(mut n: u32) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

/// `n` followed by `word`, with an `s` unless `n` is 1.
pub(crate) struct Count(pub usize, pub &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = if self.0 == 1 { "" } else { "s" };
        write!(f, "{} {}{plural}", self.0, self.1)
    }
}

struct Spaces(usize);

impl fmt::Display for Spaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:1$}", "", self.0)
    }
}

struct Carets(usize);

impl fmt::Display for Carets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for _ in 0..self.0 {
            f.write_str("^")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::report::{fixture, Pos, SourceFile, Stats};

    fn rendered(report: &CheckReport, opts: &RenderOptions) -> String {
        let mut out = Vec::new();
        render(report, opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_frames() {
        let out = rendered(&fixture::report(), &RenderOptions::default());
        insta::assert_snapshot!(out);
    }

    #[test]
    fn no_escape_codes_without_color() {
        let out = rendered(&fixture::report(), &RenderOptions::default());
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn color_marks_severity_gutter_and_help() {
        let opts = RenderOptions {
            color: true,
            ..RenderOptions::default()
        };
        let out = rendered(&fixture::report(), &opts);
        assert!(out.contains("\x1b[1;31merror[rls-missing]\x1b[0m"));
        assert!(out.contains("\x1b[1;33mwarning[ban-money-type]\x1b[0m"));
        assert!(out.contains("\x1b[1;34m-->\x1b[0m"));
        assert!(out.contains("\x1b[36mhelp\x1b[0m"));
    }

    #[test]
    fn quiet_prints_only_the_summary() {
        let opts = RenderOptions {
            quiet: true,
            ..RenderOptions::default()
        };
        let out = rendered(&fixture::report(), &opts);
        insta::assert_snapshot!(out, @"checked 2 files, 7 statements (6 understood), 2 errors, 4 warnings, 250 files of history replayed in 12.3 ms");
    }

    #[test]
    fn summary_uses_singulars() {
        let report = CheckReport {
            diagnostics: Vec::new(),
            stats: Stats {
                files: 1,
                statements: 1,
                understood: 1,
                context_files: 1,
                elapsed_ms: 0.04,
                accepted: 0,
            },
            ..Default::default()
        };
        let out = rendered(&report, &RenderOptions::default());
        assert_eq!(
            out,
            "checked 1 file, 1 statement (1 understood), 0 errors, 0 warnings, 1 file of history replayed in 0.0 ms\n"
        );
    }

    #[test]
    fn caret_spans() {
        let at = |l1, c1, l2, c2| Region::new(Pos::new(l1, c1), Pos::new(l2, c2));
        // Same line, inclusive end.
        assert_eq!(caret_span("CREATE TABLE notes (", at(1, 14, 1, 18)), (" ".repeat(13), 5));
        // Multi-line: up to the end of the start line.
        assert_eq!(caret_span("CREATE TABLE notes (", at(1, 14, 3, 2)), (" ".repeat(13), 7));
        // A tab before the caret stays a tab; a non-ASCII character is one column.
        assert_eq!(caret_span("\té x", at(1, 4, 1, 4)), ("\t  ".to_string(), 1));
        // Past the end of the line, or an end before the start: one caret.
        assert_eq!(caret_span("abc", at(1, 4, 1, 4)), ("   ".to_string(), 1));
        assert_eq!(caret_span("abc", at(1, 2, 1, 1)), (" ".to_string(), 1));
        assert_eq!(caret_span("", at(1, 1, 1, 9)), (String::new(), 1));
    }

    #[test]
    fn finding_without_a_line() {
        let file = Arc::new(SourceFile::new("a.sql".to_string(), "SELECT 1;\n".to_string()));
        let report = CheckReport {
            diagnostics: vec![Diagnostic {
                rule: "unused-suppression",
                severity: Severity::Warning,
                file,
                region: Region::default(),
                message: "suppression suppresses nothing".to_string(),
                help: None,
                fix: None,
                unfixed: None,
                anchor: None,
            }],
            stats: Stats::default(),
            ..Default::default()
        };
        let out = rendered(&report, &RenderOptions::default());
        assert!(out.starts_with("warning[unused-suppression]: suppression suppresses nothing\n  --> a.sql\n\n"));
    }

    /// Linear rendering: one finding per line of a 40,000-line file. No timing
    /// assertion here (that is the benchmarks' job), only that it completes.
    #[test]
    fn forty_thousand_findings_in_one_file() {
        const N: u32 = 40_000;
        let mut text = String::new();
        for i in 1..=N {
            text.push_str(&format!("ALTER TABLE t{i} ADD COLUMN c{i} money;\n"));
        }
        let file = Arc::new(SourceFile::new("big.sql".to_string(), text));
        let diagnostics = (1..=N)
            .map(|line| Diagnostic {
                rule: "ban-money-type",
                severity: Severity::Warning,
                file: Arc::clone(&file),
                region: Region::new(Pos::new(line, 1), Pos::new(line, 11)),
                message: "money".to_string(),
                help: None,
                fix: None,
                unfixed: None,
                anchor: None,
            })
            .collect();
        let report = CheckReport {
            diagnostics,
            stats: Stats::default(),
            ..Default::default()
        };
        let out = rendered(&report, &RenderOptions::default());
        assert_eq!(out.matches("warning[ban-money-type]").count(), N as usize);
        assert!(out.contains("\n 40000 | ALTER TABLE t40000 ADD COLUMN c40000 money;\n"));
        assert!(out.ends_with("0 errors, 40000 warnings in 0.0 ms\n"));
    }
}
