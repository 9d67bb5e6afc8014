//! A pull-request comment body (`--format markdown`), for
//! `gh pr comment --body-file` or a GitLab merge request note: strata never
//! needs a token, the CI job posts what it prints.
//!
//! A heading with the totals, a summary table (one row per rule, linked to
//! its documentation), then one collapsible `<details>` section per file
//! with each finding: position, severity, rule, message, the source lines
//! and the help. Text from findings is escaped so that nothing in a message
//! or a file name can become HTML, a link or a table cell boundary.
//!
//! The body starts with `<!-- strata-report -->` so that a CI script can
//! find and update its previous comment. It stays under GitHub's limit of
//! 65,536 characters per comment: past [`LIMIT`] the remaining findings are
//! counted, not shown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{CheckReport, Diagnostic, Severity};
use crate::rules::docs::rule_url;
use crate::rules::RuleMeta;

/// Where a script finds a previous strata comment.
pub const MARKER: &str = "<!-- strata-report -->";
/// The body's size in bytes (so at most as many characters) past which the
/// remaining findings are only counted.
pub const LIMIT: usize = 60_000;
/// Source lines shown per finding.
const FRAME_LINES: u32 = 4;

pub fn render(report: &CheckReport, rules: &[&RuleMeta], docs_url: &str, w: &mut dyn Write) -> io::Result<()> {
    w.write_all(body(report, rules, docs_url).as_bytes())
}

fn body(report: &CheckReport, rules: &[&RuleMeta], docs_url: &str) -> String {
    let mut out = String::new();
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    let files = group_by_file(&report.diagnostics);
    let _ = writeln!(out, "{MARKER}");
    if report.diagnostics.is_empty() {
        let _ = writeln!(out, "### ✅ strata: no findings\n");
    } else {
        let _ = writeln!(
            out,
            "### {} strata: {}, {} in {}\n",
            if errors > 0 { "❌" } else { "⚠️" },
            plural(errors, "error"),
            plural(warnings, "warning"),
            plural(files.len(), "file")
        );
    }
    let _ = writeln!(
        out,
        "Checked {} ({} statements) with {} of history as context.\n",
        plural(report.stats.files, "file"),
        report.stats.statements,
        plural(report.stats.context_files, "file")
    );
    if report.diagnostics.is_empty() {
        return out;
    }
    summary_table(&mut out, report, rules, docs_url);
    let mut shown = 0;
    let mut full = false;
    for (path, diagnostics) in &files {
        if full {
            break;
        }
        let e = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
        let w = diagnostics.len() - e;
        let _ = writeln!(
            out,
            "<details>\n<summary><code>{}</code>: {}, {}</summary>\n",
            escape_html(path),
            plural(e, "error"),
            plural(w, "warning")
        );
        for d in diagnostics {
            let mut entry = String::new();
            finding(&mut entry, d, docs_url);
            // Keep room for the closing tags and the note on what was left out.
            if out.len() + entry.len() > LIMIT {
                full = true;
                break;
            }
            out.push_str(&entry);
            shown += 1;
        }
        out.push_str("</details>\n\n");
    }
    let hidden = report.diagnostics.len() - shown;
    if hidden > 0 {
        let _ = writeln!(
            out,
            "…and {} not shown here (the comment would be too long): run `strata check` to see every finding.",
            plural(hidden, "more finding")
        );
    }
    out
}

/// Findings per file, in the report's order (sorted by file and position).
fn group_by_file(diagnostics: &[Diagnostic]) -> Vec<(&str, Vec<&Diagnostic>)> {
    let mut files: Vec<(&str, Vec<&Diagnostic>)> = Vec::new();
    for d in diagnostics {
        match files.last_mut() {
            Some((path, list)) if *path == d.file.path => list.push(d),
            _ => files.push((&d.file.path, vec![d])),
        }
    }
    files
}

/// One row per rule that fired: the most severe first, then the most frequent.
fn summary_table(out: &mut String, report: &CheckReport, rules: &[&RuleMeta], docs_url: &str) {
    let mut counts: BTreeMap<(&str, Severity), usize> = BTreeMap::new();
    for d in &report.diagnostics {
        *counts.entry((d.rule, d.severity)).or_default() += 1;
    }
    let mut rows: Vec<((&str, Severity), usize)> = counts.into_iter().collect();
    rows.sort_by(|((ra, sa), na), ((rb, sb), nb)| sb.cmp(sa).then(nb.cmp(na)).then(ra.cmp(rb)));
    out.push_str("| | rule | findings | what it flags |\n|---|---|---:|---|\n");
    for ((rule, severity), n) in rows {
        let summary = rules.iter().find(|m| m.id == rule).map_or("", |m| m.summary);
        let _ = writeln!(
            out,
            "| {} | [`{rule}`]({}) | {n} | {} |",
            icon(severity),
            rule_url(docs_url, rule),
            escape_text(summary)
        );
    }
    out.push('\n');
}

fn finding(out: &mut String, d: &Diagnostic, docs_url: &str) {
    let region = d.region.normalized();
    let _ = writeln!(
        out,
        "{} **line {}:{}** · {} · [`{}`]({})  ",
        icon(d.severity),
        region.start.line,
        region.start.col,
        d.severity.as_str(),
        d.rule,
        rule_url(docs_url, d.rule)
    );
    let _ = writeln!(out, "{}\n", escape_text(&d.message));
    let last = region.end.line.min(region.start.line + FRAME_LINES - 1);
    let lines: Vec<&str> = (region.start.line..=last).map(|l| d.file.line(l)).collect();
    if lines.iter().any(|l| !l.trim().is_empty()) {
        let fence = fence_for(&lines);
        let _ = writeln!(out, "{fence}sql");
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        if region.end.line > last {
            let _ = writeln!(out, "-- … {} more lines", region.end.line - last);
        }
        let _ = writeln!(out, "{fence}\n");
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "> **help:** {}\n", escape_text(help));
    }
}

/// A code fence longer than any run of backticks in the lines it holds.
fn fence_for(lines: &[&str]) -> String {
    let longest = lines.iter().flat_map(|l| l.split(|c| c != '`')).map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

fn icon(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "❌",
        Severity::Warning => "⚠️",
        Severity::Off => "ℹ️",
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// For text inside HTML tags (a file name in `<summary>`).
fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Message text: `code spans` are kept (strata's messages quote SQL in
/// backticks), everything else has its Markdown and HTML meaning escaped;
/// line breaks become Markdown hard breaks and pipes are escaped everywhere,
/// so the text is safe in a paragraph and in a table cell alike.
fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    loop {
        let Some(open) = rest.find('`') else {
            escape_plain(&mut out, rest);
            break;
        };
        let Some(len) = rest[open + 1..].find('`') else {
            escape_plain(&mut out, rest);
            break;
        };
        escape_plain(&mut out, &rest[..open]);
        let code = &rest[open + 1..open + 1 + len];
        if code.contains(['\n', '\r']) || code.is_empty() {
            escape_plain(&mut out, &rest[open..open + len + 2]);
        } else {
            out.push('`');
            out.push_str(&code.replace('|', "\\|"));
            out.push('`');
        }
        rest = &rest[open + len + 2..];
    }
    out
}

fn escape_plain(out: &mut String, s: &str) {
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => out.push_str("<br>"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{fixture, Pos, Region, SourceFile};

    const DOCS: &str = "https://example.com/strata/rules.md";

    fn rendered(report: &CheckReport) -> String {
        let mut out = Vec::new();
        render(report, &fixture::rules(), DOCS, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_comment() {
        insta::assert_snapshot!(rendered(&fixture::report()));
    }

    #[test]
    fn clean_check() {
        insta::assert_snapshot!(rendered(&CheckReport::default()), @r"
        <!-- strata-report -->
        ### ✅ strata: no findings

        Checked 0 files (0 statements) with 0 files of history as context.
        ");
    }

    #[test]
    fn structure() {
        let report = fixture::report();
        let out = rendered(&report);
        assert!(out.starts_with(MARKER));
        // One collapsible section per file, balanced.
        assert_eq!(out.matches("<details>").count(), 2);
        assert_eq!(out.matches("</details>").count(), 2);
        // Every finding links to its rule's section.
        for d in &report.diagnostics {
            assert!(out.contains(&format!("[`{}`]({DOCS}#{})", d.rule, d.rule)), "{}", d.rule);
        }
        // Markup from messages is inert.
        assert!(out.contains("100% of &lt;widgets&gt; &amp; its readers"));
        assert!(!out.contains("<widgets>"));
        // A comma and a space in a path survive; the table has one row per rule.
        assert!(out.contains("<code>schema/tenant/0007_widgets, draft.sql</code>"));
        let table_rows = out.lines().filter(|l| l.starts_with("| ❌") || l.starts_with("| ⚠️")).count();
        assert_eq!(table_rows, 6);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_text("a *b* [c](d) <e> `x|y` f|g"),
            "a \\*b\\* \\[c\\](d) &lt;e&gt; `x\\|y` f\\|g"
        );
        assert_eq!(escape_text("one\r\ntwo\nthree"), "one<br>two<br>three");
        assert_eq!(escape_text("unbalanced ` tick"), "unbalanced \\` tick");
        assert_eq!(fence_for(&["select '```'"]), "````");
        assert_eq!(fence_for(&["select 1"]), "```");
    }

    #[test]
    fn long_reports_stay_under_the_comment_limit() {
        let text: String = (0..5000).map(|i| format!("CREATE TABLE t{i} (id int);\n")).collect();
        let file = std::sync::Arc::new(SourceFile::new("big.sql".into(), text));
        let template = fixture::report().diagnostics.remove(0);
        let diagnostics = (1..=5000)
            .map(|line| Diagnostic {
                file: file.clone(),
                region: Region::new(Pos::new(line, 1), Pos::new(line, 10)),
                ..template.clone()
            })
            .collect();
        let report = CheckReport {
            diagnostics,
            stats: Default::default(),
            ..Default::default()
        };
        let out = rendered(&report);
        assert!(out.chars().count() < 65_536, "{} characters", out.chars().count());
        assert!(out.contains("more findings not shown here"));
        assert_eq!(out.matches("<details>").count(), out.matches("</details>").count());
    }
}
