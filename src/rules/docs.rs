//! docs/rules.md, generated from the same metadata `strata rules` and
//! `strata explain` print, so the three can never disagree. A test fails when
//! the file is stale; `STRATA_BLESS=1 cargo test rules_doc` rewrites it.

use std::fmt::Write;

use super::{Group, RuleMeta, ALL};

/// Where docs/rules.md is published, for the formats and the language server
/// that link to a rule's section (`strata check --docs-url`, `STRATA_DOCS_URL`).
pub const DEFAULT_DOCS_URL: &str = "https://github.com/strata-sql/strata/blob/main/docs/rules.md";

/// The link to a rule's section of docs/rules.md published at `base`: the
/// anchor GitHub, GitLab and most Markdown sites derive from the section's
/// heading, which is the rule id (ids are stable contracts).
pub fn rule_url(base: &str, id: &str) -> String {
    format!("{}#{id}", base.trim_end_matches('#'))
}

/// Every rule of squawk (sbdchd/squawk) and the strata rule(s) that cover it.
/// The ids on the right are stable: configurations and suppressions name them.
pub const SQUAWK: &[(&str, &str, &str)] = &[
    (
        "adding-field-with-default",
        "volatile-default",
        "only volatile defaults rewrite since PostgreSQL 11",
    ),
    ("adding-foreign-key-constraint", "constraint-not-valid", ""),
    ("adding-not-nullable-field", "set-not-null", ""),
    ("adding-required-field", "add-required-column", ""),
    ("adding-serial-primary-key-field", "add-primary-key, prefer-identity", ""),
    ("ban-alter-domain-with-add-constraint", "domain-constraint", ""),
    ("ban-char-field", "ban-char", ""),
    ("ban-concurrent-index-creation-in-transaction", "concurrent-in-transaction", ""),
    ("ban-create-domain-with-constraint", "domain-constraint", ""),
    ("ban-drop-column", "drop-column", ""),
    ("ban-drop-database", "drop-database", ""),
    ("ban-drop-not-null", "drop-not-null", ""),
    ("ban-drop-table", "drop-table", ""),
    (
        "ban-duplicate-column-assignments",
        "duplicate-column",
        "also CREATE TABLE, ADD COLUMN and INSERT column lists",
    ),
    ("ban-truncate-cascade", "truncate-cascade", ""),
    ("ban-uncommitted-transaction", "uncommitted-transaction", ""),
    ("changing-column-type", "column-type-change", ""),
    ("constraint-missing-not-valid", "constraint-not-valid", ""),
    ("disallowed-unique-constraint", "unique-constraint", ""),
    ("identifier-too-long", "identifier-too-long", ""),
    ("prefer-big-int", "prefer-bigint", "`scope = \"all\"` for every integer column"),
    (
        "prefer-bigint-over-int",
        "prefer-bigint",
        "`scope = \"all\"` for every integer column",
    ),
    (
        "prefer-bigint-over-smallint",
        "prefer-bigint",
        "`scope = \"all\"` for every integer column",
    ),
    ("prefer-identity", "prefer-identity", ""),
    ("prefer-repack", "prefer-repack", ""),
    ("prefer-robust-stmts", "idempotent-ddl", "opt-in"),
    ("prefer-text-field", "prefer-text", ""),
    (
        "prefer-timestamp-tz",
        "prefer-timestamptz",
        "named `prefer-timestamptz` in older squawk releases",
    ),
    ("renaming-column", "rename-column", ""),
    ("renaming-table", "rename-table", ""),
    ("require-concurrent-index-creation", "require-concurrent-index", ""),
    ("require-concurrent-index-deletion", "require-concurrent-index-drop", ""),
    ("require-concurrent-partition-detach", "require-concurrent-detach", ""),
    ("require-concurrent-reindex", "require-concurrent-reindex", ""),
    ("require-enum-value-ordering", "enum-value-ordering", ""),
    ("require-lock-timeout", "require-lock-timeout", ""),
    ("require-statement-timeout", "require-statement-timeout", ""),
    ("require-table-schema", "require-table-schema", "opt-in"),
    ("require-timeout-settings", "require-lock-timeout, require-statement-timeout", ""),
    ("transaction-nesting", "transaction-nesting", ""),
];

const GROUPS: [(Group, &str); 5] = [
    (Group::Governance, "Governance"),
    (Group::History, "History"),
    (Group::LockSafety, "Lock safety"),
    (Group::Correctness, "Correctness"),
    (Group::Review, "Review"),
];

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn rule_section(out: &mut String, m: &RuleMeta) {
    let _ = writeln!(out, "### `{}`\n", m.id);
    let scope = if m.needs_workspace { " · needs a workspace" } else { "" };
    let _ = writeln!(out, "{} · default: {}{scope}\n", m.group.as_str(), m.default_severity.as_str());
    for line in m.doc_text().trim_end().lines() {
        // The rule's own headings sit below the rule's heading.
        match line.strip_prefix("## ") {
            Some(h) => {
                let _ = writeln!(out, "#### {h}");
            }
            None => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    out.push('\n');
}

/// The text of docs/rules.md.
pub fn rules_markdown() -> String {
    rules_markdown_of(ALL)
}

fn rules_markdown_of(rules: &[&RuleMeta]) -> String {
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from the rule metadata in src/rules/ (rules::docs::rules_markdown). Do not edit:\n     change the rule's doc comment, then run `STRATA_BLESS=1 cargo test rules_doc`. -->\n\n",
    );
    out.push_str("# strata rules\n\n");
    out.push_str(
        "Every rule has a stable id, a group and a default severity; `rules/*.toml` changes severities \
(per layer too) and options. `strata rules` lists them, `strata explain <id>` prints one.\n\n",
    );
    out.push_str("| id | group | default | summary |\n|---|---|---|---|\n");
    for (group, _) in GROUPS {
        for m in rules.iter().filter(|m| m.group == group) {
            let _ = writeln!(
                out,
                "| [`{0}`](#{0}) | {1} | {2} | {3} |",
                m.id,
                m.group.as_str(),
                m.default_severity.as_str(),
                cell(m.summary)
            );
        }
    }
    out.push('\n');
    for (group, title) in GROUPS {
        let members: Vec<&&RuleMeta> = rules.iter().filter(|m| m.group == group).collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {title}\n");
        for m in members {
            rule_section(&mut out, m);
        }
    }
    pg_versions_section(&mut out, rules);
    out.push_str("## squawk compatibility\n\n");
    out.push_str(
        "Each rule of [squawk](https://squawkhq.com/docs/rules) and the strata rule that covers it \
(a statement squawk flags is flagged by strata under this id).\n\n",
    );
    out.push_str("| squawk rule | strata rule | note |\n|---|---|---|\n");
    for (squawk, ours, note) in SQUAWK {
        // Rules of the table link to their section; the others are SPEC
        // ids another group of rules implements.
        let ids = ours
            .split(", ")
            .map(|id| {
                if rules.iter().any(|m| m.id == id) {
                    format!("[`{id}`](#{id})")
                } else {
                    format!("`{id}`")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "| `{squawk}` | {ids} | {} |", cell(note));
    }
    out
}

/// The version notes of a rule: the `- N: what changes` lines of its
/// `## PostgreSQL versions` heading.
pub fn pg_versions(m: &RuleMeta) -> Vec<(u32, &'static str)> {
    let doc = m.doc;
    let Some(at) = doc.find("## PostgreSQL versions") else {
        return Vec::new();
    };
    doc[at..]
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.starts_with("## "))
        .filter_map(|l| {
            let (v, text) = l.strip_prefix("- ")?.split_once(": ")?;
            Some((v.parse().ok()?, text))
        })
        .collect()
}

/// Which rules judge differently by `pg_version`, and from which major.
fn pg_versions_section(out: &mut String, rules: &[&RuleMeta]) {
    use crate::workspace::{PG_KNOWN, PG_SUPPORTED};
    out.push_str("## Rules by PostgreSQL version\n\n");
    let _ = writeln!(
        out,
        "`pg_version` in strata.toml (default 15) is the major the fleet runs, and some rules judge by it: \
the same migration can be safe on one major, dangerous on an older one, or a statement the older one \
rejects. strata knows the majors {} to {} and is tested on {} to {}; {} to {} still work, with a warning \
(they are past PostgreSQL's end of life), and any other value is an error that names its line and column. \
At each major below, the rule's judgement or advice changes (from that major on):\n",
        PG_KNOWN.start(),
        PG_KNOWN.end(),
        PG_SUPPORTED.start(),
        PG_SUPPORTED.end(),
        PG_KNOWN.start(),
        PG_SUPPORTED.start() - 1
    );
    out.push_str("| rule | from | what changes |\n|---|---|---|\n");
    let mut rows: Vec<(u32, &str, &str)> = rules
        .iter()
        .flat_map(|m| pg_versions(m).into_iter().map(|(v, t)| (v, m.id, t)))
        .collect();
    rows.sort_by_key(|(v, id, _)| (*v, *id));
    for (v, id, text) in rows {
        let _ = writeln!(out, "| [`{id}`](#{id}) | {v} | {} |", cell(text));
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_doc_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md");
        let want = rules_markdown();
        if std::env::var_os("STRATA_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("docs dir")).expect("mkdir docs");
            std::fs::write(&path, &want).expect("write docs/rules.md");
            return;
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/rules.md is out of date with the rule metadata; regenerate it with `STRATA_BLESS=1 cargo test rules_doc`"
        );
    }

    #[test]
    fn rules_doc_covers_every_rule_once() {
        let md = rules_markdown();
        for m in ALL {
            assert_eq!(md.matches(&format!("### `{}`\n", m.id)).count(), 1, "{}", m.id);
        }
    }

    /// The anchor GitHub gives a heading: lower case, punctuation other than
    /// `-` and `_` dropped, spaces turned into `-`.
    fn github_anchor(heading: &str) -> String {
        heading
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn rule_urls_point_at_the_rule_headings() {
        let md = rules_markdown();
        let anchors: Vec<String> = md.lines().filter_map(|l| l.strip_prefix("### ")).map(github_anchor).collect();
        for m in ALL {
            let url = rule_url(DEFAULT_DOCS_URL, m.id);
            let anchor = url.rsplit_once('#').map(|(_, a)| a.to_string()).unwrap_or_default();
            assert!(anchors.contains(&anchor), "{url}: no heading with that anchor");
        }
        assert_eq!(rule_url("https://x/rules.html#", "a"), "https://x/rules.html#a");
    }

    /// Every version note names a major strata knows, and the rules whose
    /// advice is known to change with the version have their notes.
    #[test]
    fn version_notes_name_known_majors() {
        for m in ALL {
            if m.doc.contains("## PostgreSQL versions") {
                assert!(
                    !pg_versions(m).is_empty(),
                    "{}: a PostgreSQL versions heading without `- N: ...` lines",
                    m.id
                );
            }
            for (v, _) in pg_versions(m) {
                assert!(crate::workspace::PG_KNOWN.contains(&v), "{}: {v}", m.id);
            }
        }
        let noted: Vec<&str> = ALL.iter().filter(|m| !pg_versions(m).is_empty()).map(|m| m.id).collect();
        for id in [
            "set-not-null",
            "add-required-column",
            "volatile-default",
            "enum-value-ordering",
            "require-concurrent-reindex",
            "require-concurrent-detach",
            "view-security-invoker",
            "constraint-not-valid",
        ] {
            assert!(noted.contains(&id), "{id} has no PostgreSQL versions notes");
        }
        let md = rules_markdown();
        assert!(md.contains("| [`set-not-null`](#set-not-null) | 18 |"));
        // docs/configuration.md links to the table by its heading's anchor.
        assert_eq!(md.matches("\n## Rules by PostgreSQL version\n").count(), 1);
    }

    #[test]
    fn squawk_rules_are_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for (squawk, ours, _) in SQUAWK {
            assert!(seen.insert(*squawk), "{squawk} twice");
            assert!(!ours.is_empty());
        }
    }
}
