//! GitLab Code Quality (`--format gitlab`): the JSON array a CI job names
//! under `artifacts:reports:codequality`, shown in the merge request widget
//! and diff.
//!
//! GitLab reads a subset of the Code Climate issue format; every issue
//! carries the fields it documents:
//!
//! - `description`: the message, then the help;
//! - `check_name`: the rule id;
//! - `fingerprint`: unique per finding and stable across runs when lines move
//!   (see [`super::fingerprint`]), so GitLab can tell new findings from old;
//! - `severity`: one of `info`, `minor`, `major`, `critical`, `blocker`: a
//!   warning is `minor`, an error (which fails `strata check`) `major`;
//! - `location.path`: the path relative to the workspace root, forward
//!   slashes, no leading `./`; `location.lines.begin` (and `end`): 1-based.
//!
//! plus Code Climate's `type` (`issue`) and `categories` (from the rule's
//! group), which other Code Climate consumers require.
//!
//! ```json
//! [
//!   {
//!     "type": "issue",
//!     "check_name": "rls-missing",
//!     "description": "table `public.notes` has no ENABLE ROW LEVEL SECURITY by the end of its migration (add `ALTER TABLE notes ENABLE ROW LEVEL SECURITY;` in the same file)",
//!     "categories": ["Security"],
//!     "fingerprint": "5c1a0b8e2f9d7c3a:1",
//!     "severity": "major",
//!     "location": { "path": "schema/core/0003_notes.sql", "lines": { "begin": 4, "end": 4 } }
//!   }
//! ]
//! ```

use std::collections::HashMap;
use std::io::{self, Write};

use serde::Serialize;

use super::{CheckReport, Diagnostic, Severity};
use crate::rules::{Group, RuleMeta};

#[derive(Serialize)]
struct Issue<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    check_name: &'a str,
    description: String,
    categories: [&'static str; 1],
    fingerprint: String,
    severity: &'static str,
    location: Location,
}

#[derive(Serialize)]
struct Location {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: u32,
    end: u32,
}

pub fn render(report: &CheckReport, rules: &[&RuleMeta], w: &mut dyn Write) -> io::Result<()> {
    let groups: HashMap<&str, Group> = rules.iter().map(|r| (r.id, r.group)).collect();
    let issues: Vec<Issue> = report
        .diagnostics
        .iter()
        .zip(super::fingerprint::fingerprints(report))
        .map(|(d, fingerprint)| issue(d, groups.get(d.rule).copied(), fingerprint))
        .collect();
    super::write_json(&issues, w)
}

fn issue(d: &Diagnostic, group: Option<Group>, fingerprint: String) -> Issue<'_> {
    let region = d.region.normalized();
    Issue {
        kind: "issue",
        check_name: d.rule,
        description: description(d),
        categories: [category(group)],
        fingerprint,
        severity: severity(d.severity),
        location: Location {
            path: relative_path(&d.file.path),
            lines: Lines {
                begin: region.start.line,
                end: region.end.line,
            },
        },
    }
}

/// GitLab shows the description on one line: line breaks become spaces.
fn description(d: &Diagnostic) -> String {
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    match &d.help {
        Some(help) => format!("{} ({})", one_line(&d.message), one_line(help)),
        None => one_line(&d.message),
    }
}

fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "major",
        Severity::Warning => "minor",
        Severity::Off => "info",
    }
}

/// Code Climate's categories: isolation is security, locks and wrong types
/// are bug risks, what a human must review is clarity.
fn category(group: Option<Group>) -> &'static str {
    match group {
        Some(Group::Governance) => "Security",
        Some(Group::LockSafety) | Some(Group::Correctness) | None => "Bug Risk",
        Some(Group::Review) | Some(Group::History) => "Clarity",
    }
}

/// Forward slashes and no leading `./`, as GitLab requires.
fn relative_path(path: &str) -> String {
    let mut path = path.replace('\\', "/");
    while let Some(rest) = path.strip_prefix("./") {
        path = rest.to_string();
    }
    path
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::report::fixture;

    fn rendered(report: &CheckReport) -> String {
        let mut out = Vec::new();
        render(report, &fixture::rules(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn fixture_issues() {
        insta::assert_snapshot!(rendered(&fixture::report()));
    }

    /// The fields GitLab documents for a Code Quality report, with their types
    /// and allowed values.
    #[test]
    fn issues_have_the_fields_gitlab_documents() {
        let report = fixture::report();
        let issues: Value = serde_json::from_str(&rendered(&report)).unwrap();
        let issues = issues.as_array().expect("a JSON array");
        assert_eq!(issues.len(), report.diagnostics.len());
        let mut seen = std::collections::HashSet::new();
        for (issue, d) in issues.iter().zip(&report.diagnostics) {
            assert!(issue["description"].as_str().is_some_and(|s| !s.is_empty() && !s.contains('\n')));
            assert_eq!(issue["check_name"], d.rule);
            let fingerprint = issue["fingerprint"].as_str().expect("fingerprint string");
            assert!(seen.insert(fingerprint.to_string()), "fingerprint {fingerprint} twice");
            assert!(["info", "minor", "major", "critical", "blocker"].contains(&issue["severity"].as_str().unwrap()));
            let path = issue["location"]["path"].as_str().expect("path string");
            assert!(!path.starts_with("./") && !path.starts_with('/') && !path.contains('\\'));
            assert_eq!(path, d.file.path);
            let begin = issue["location"]["lines"]["begin"].as_u64().expect("lines.begin integer");
            assert_eq!(begin, u64::from(d.region.start.line));
            assert!(begin >= 1);
            assert!(issue["location"]["lines"]["end"].as_u64().unwrap() >= begin);
            assert_eq!(issue["type"], "issue");
        }
        let severities: Vec<&str> = issues.iter().map(|i| i["severity"].as_str().unwrap()).collect();
        assert!(severities.contains(&"major") && severities.contains(&"minor"));
    }

    #[test]
    fn fingerprints_are_stable_across_runs_and_line_moves() {
        let first = rendered(&fixture::report());
        assert_eq!(first, rendered(&fixture::report()));
        // The same finding two lines further down keeps its fingerprint.
        let mut report = fixture::report();
        let d = &mut report.diagnostics[0];
        let moved = std::sync::Arc::new(crate::report::SourceFile::new(
            d.file.path.clone(),
            format!("-- a comment\n\n{}", d.file.text),
        ));
        d.file = moved;
        d.region.start.line += 2;
        d.region.end.line += 2;
        let a: Value = serde_json::from_str(&first).unwrap();
        let b: Value = serde_json::from_str(&rendered(&report)).unwrap();
        assert_eq!(a[0]["fingerprint"], b[0]["fingerprint"]);
        assert_ne!(a[0]["location"]["lines"]["begin"], b[0]["location"]["lines"]["begin"]);
    }

    #[test]
    fn empty_report_is_an_empty_array() {
        assert_eq!(rendered(&CheckReport::default()), "[]\n");
    }

    #[test]
    fn paths_and_descriptions() {
        assert_eq!(relative_path("./././schema\\core/a.sql"), "schema/core/a.sql");
        let report = fixture::report();
        let index = report.diagnostics.iter().find(|d| d.rule == "create-index-concurrently").unwrap();
        let text = description(index);
        assert!(text.contains("until it ends the table already exists (use `CREATE INDEX CONCURRENTLY"));
        assert_eq!(category(None), "Bug Risk");
    }
}
