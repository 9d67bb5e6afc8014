//! Rule metadata: the contract of a rule id, shown by `strata rules` and
//! `strata explain`, and rendered into SARIF and docs/rules.md.

use serde::Serialize;

use super::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Group {
    /// The schema discipline of the product (layers, RLS, contacts, LIDs).
    Governance,
    /// Statements that lock or rewrite production tables, or break running code.
    LockSafety,
    /// Type and naming choices that are wrong in PostgreSQL.
    Correctness,
    /// What strata could not check and a human must review (unparsed
    /// statements, DO blocks, suppressions); active with or without a workspace.
    Review,
    /// The migration history's integrity: file names, order, released files
    /// left unchanged (strata.sum); for any project, Orbis or not.
    History,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::Governance,
        Group::History,
        Group::LockSafety,
        Group::Correctness,
        Group::Review,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Group::Governance => "governance",
            Group::LockSafety => "lock-safety",
            Group::Correctness => "correctness",
            Group::Review => "review",
            Group::History => "history",
        }
    }

    pub fn from_name(name: &str) -> Option<Group> {
        Group::ALL.into_iter().find(|g| g.as_str() == name)
    }
}

#[derive(Debug, Serialize)]
pub struct RuleMeta {
    pub id: &'static str,
    pub group: Group,
    pub default_severity: Severity,
    /// One line, shown by `strata rules` and as SARIF shortDescription.
    pub summary: &'static str,
    /// Markdown with the headings *What it does*, *Why is this bad?*,
    /// *Example* and *How to fix*; shown by `strata explain`.
    pub doc: &'static str,
    /// Whether the rule only makes sense inside a workspace (governance).
    pub needs_workspace: bool,
}

impl RuleMeta {
    /// The first paragraph under "What it does" as one line, for SARIF
    /// fullDescription.
    pub fn what_it_does(&self) -> String {
        let doc = self.doc_text();
        let paragraph = section(&doc, "What it does")
            .and_then(|s| s.trim().split("\n\n").next())
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "));
        paragraph.filter(|p| !p.is_empty()).unwrap_or_else(|| self.summary.to_string())
    }
    /// The "How to fix" section, for SARIF help.
    pub fn how_to_fix(&self) -> String {
        let doc = self.doc_text();
        section(&doc, "How to fix").unwrap_or(self.summary).trim().to_string()
    }
}

fn section<'a>(doc: &'a str, heading: &str) -> Option<&'a str> {
    let marker = format!("## {heading}");
    let start = doc.find(&marker)? + marker.len();
    let rest = &doc[start..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    Some(&rest[..end])
}

impl RuleMeta {
    /// The documentation as written, without the one-space indent doc
    /// comments carry.
    pub fn doc_text(&self) -> String {
        let mut s = String::with_capacity(self.doc.len());
        for line in self.doc.lines() {
            s.push_str(line.strip_prefix(' ').unwrap_or(line));
            s.push('\n');
        }
        s
    }
}
