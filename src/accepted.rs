//! The findings baseline: findings a project has accepted (its history at
//! adoption), so that `strata check` reports only new ones.
//!
//! `strata check --write-baseline` records every current finding as an
//! [`Entry`]: the rule, the file, and a fingerprint of the statement the
//! finding is about (its tokens, comments and layout left out; never its
//! line number), so an entry survives edits elsewhere in the file and
//! reformatting of the statement itself. A later check drops the findings
//! an entry accepts, counts them, and lists the entries that matched
//! nothing (the debt was paid, or the statement changed), so that the file
//! shrinks as the project fixes things. The file is JSON, one entry per
//! (rule, file, fingerprint) with a count, sorted: it diffs well.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::diag::{CheckReport, Diagnostic};
use crate::error::{Error, Result};

/// The baseline file's format version.
pub const VERSION: u32 = 1;

/// The file `--write-baseline` writes when strata.toml names none (it then
/// adds `baseline = "<this>"` under `[paths]`).
pub const DEFAULT_FILE: &str = "strata-baseline.json";

pub use crate::diag::BaselineEntry as Entry;

#[derive(Debug, Serialize, Deserialize)]
struct BaselineFile {
    version: u32,
    findings: Vec<Entry>,
}

/// A loaded baseline.
#[derive(Debug, Default)]
pub struct Baseline {
    pub entries: Vec<Entry>,
}

impl Baseline {
    /// Reads a baseline file; a missing file is an empty baseline.
    pub fn load(path: &Path) -> Result<Baseline> {
        if !path.is_file() {
            return Ok(Baseline::default());
        }
        let text = crate::error::read_utf8(path)?;
        let file: BaselineFile = serde_json::from_str(&text).map_err(|e| {
            let offset = text.lines().take(e.line().saturating_sub(1)).map(|l| l.len() + 1).sum::<usize>() + e.column().saturating_sub(1);
            Error::config_at(path, &text, Some(offset), format!("not a strata findings baseline: {e}"))
        })?;
        if file.version != VERSION {
            return Err(Error::config_at(
                path,
                &text,
                text.find("\"version\""),
                format!("findings baseline version {} (this strata reads version {VERSION})", file.version),
            ));
        }
        Ok(Baseline { entries: file.findings })
    }

    /// The entries of `report`'s findings (every finding, errors and warnings).
    pub fn of(report: &CheckReport) -> Baseline {
        let mut grouped: BTreeMap<(String, String, String), Entry> = BTreeMap::new();
        for d in &report.diagnostics {
            let fingerprint = fingerprint(d);
            grouped
                .entry((d.file.path.clone(), d.rule.to_string(), fingerprint.clone()))
                .and_modify(|e| e.count += 1)
                .or_insert_with(|| Entry {
                    rule: d.rule.to_string(),
                    file: d.file.path.clone(),
                    fingerprint,
                    count: 1,
                    message: d.message.clone(),
                });
        }
        Baseline {
            entries: grouped.into_values().collect(),
        }
    }

    /// This baseline with the entries of the files `report` reviewed
    /// replaced by `report`'s findings (a check of some files rewrites only
    /// their part of the baseline).
    pub fn updated_with(self, report: &CheckReport) -> Baseline {
        let reviewed: HashSet<&str> = report.reviewed.iter().map(String::as_str).collect();
        let mut entries: Vec<Entry> = self.entries.into_iter().filter(|e| !reviewed.contains(e.file.as_str())).collect();
        entries.extend(Baseline::of(report).entries);
        entries.sort_by(|a, b| (&a.file, &a.rule, &a.fingerprint).cmp(&(&b.file, &b.rule, &b.fingerprint)));
        Baseline { entries }
    }

    pub fn findings(&self) -> usize {
        self.entries.iter().map(|e| e.count).sum()
    }

    pub fn files(&self) -> usize {
        self.entries.iter().map(|e| e.file.as_str()).collect::<HashSet<_>>().len()
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let file = BaselineFile {
            version: VERSION,
            findings: self.entries.clone(),
        };
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| Error::Usage(e.to_string()))?;
        text.push('\n');
        std::fs::write(path, text).map_err(|e| Error::io(path, e))
    }

    /// Drops the findings the baseline accepts from `report`, counts them in
    /// `stats.accepted`, and lists in `stale_baseline` the entries of the
    /// reviewed files that accepted fewer findings than they record.
    pub fn apply(&self, report: &mut CheckReport) {
        type Key = (String, String, String);
        let key = |file: &str, rule: &str, fingerprint: String| -> Key { (file.to_string(), rule.to_string(), fingerprint) };
        let mut left: HashMap<Key, usize> = HashMap::new();
        for e in &self.entries {
            *left.entry(key(&e.file, &e.rule, e.fingerprint.clone())).or_default() += e.count;
        }
        let mut accepted = 0;
        report
            .diagnostics
            .retain(|d| match left.get_mut(&key(&d.file.path, d.rule, fingerprint(d))) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    accepted += 1;
                    false
                }
                _ => true,
            });
        report.stats.accepted += accepted;
        let reviewed: HashSet<&str> = report.reviewed.iter().map(String::as_str).collect();
        report.stale_baseline = self
            .entries
            .iter()
            .filter(|e| reviewed.contains(e.file.as_str()))
            .filter_map(|e| {
                let n = left.get_mut(&key(&e.file, &e.rule, e.fingerprint.clone()))?;
                let unmatched = (*n).min(e.count);
                *n -= unmatched;
                (unmatched > 0).then(|| Entry {
                    count: unmatched,
                    ..e.clone()
                })
            })
            .collect();
    }
}

/// The findings baseline strata.toml names (relative to the workspace root).
pub fn configured_path(ws: &crate::workspace::Workspace) -> Option<std::path::PathBuf> {
    ws.config.paths.baseline.as_ref().map(|p| ws.root.join(p))
}

/// `strata check --write-baseline`: records `report`'s findings in the
/// baseline strata.toml names, naming [`DEFAULT_FILE`] there first when it
/// names none. Returns the line to print.
pub fn write_for(ws: &crate::workspace::Workspace, report: &CheckReport) -> Result<String> {
    let (path, added) = match configured_path(ws) {
        Some(p) => (p, false),
        None => {
            name_in_strata_toml(&ws.root.join("strata.toml"), DEFAULT_FILE)?;
            (ws.root.join(DEFAULT_FILE), true)
        }
    };
    let baseline = Baseline::load(&path)?.updated_with(report);
    baseline.write(&path)?;
    let shown = ws.display(&path);
    let mut line = format!(
        "wrote {shown}: {} accepted in {}; `strata check` now reports only new findings",
        crate::report::text::Count(baseline.findings(), "finding"),
        crate::report::text::Count(baseline.files(), "file"),
    );
    if added {
        line.push_str(&format!(" (strata.toml names it: [paths] baseline = \"{DEFAULT_FILE}\")"));
    }
    Ok(line)
}

/// Adds `baseline = "<file>"` to strata.toml's `[paths]` table (creating the
/// table at the end when there is none), leaving every other line as it is.
fn name_in_strata_toml(path: &Path, file: &str) -> Result<()> {
    let text = crate::error::read_utf8(path)?;
    let entry = format!("baseline = \"{file}\"\n");
    let mut out = String::with_capacity(text.len() + entry.len() + 10);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        out.push_str(line);
        if !done && line.trim() == "[paths]" {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&entry);
            done = true;
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\n[paths]\n");
        out.push_str(&entry);
    }
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}

/// The fingerprint of a finding: the statement's tokens (PostgreSQL's
/// scanner; comments dropped, keywords lower-cased), or, for a finding about
/// no statement (a file name, strata.sum), its message.
pub fn fingerprint(d: &Diagnostic) -> String {
    let text = d.anchor.as_ref().and_then(|r| d.file.text.get(r.clone()));
    let normalized = match text {
        Some(t) => normalize(t),
        None => format!("message: {}", d.message),
    };
    let hash = sha2::Sha256::digest(normalized.as_bytes());
    hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A statement's tokens joined by single spaces, comments left out and
/// keywords lower-cased; text the scanner rejects has its blanks collapsed.
pub fn normalize(text: &str) -> String {
    use crate::sql::postgres::{protobuf::Token, scan};
    match scan(text) {
        Ok(tokens) => tokens
            .iter()
            .filter(|t| !matches!(t.token, Token::SqlComment | Token::CComment))
            .map(|t| {
                let s = &text[t.start..t.end];
                if t.keyword {
                    s.to_ascii_lowercase()
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        Err(_) => text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Pos, Region, Severity, SourceFile};
    use std::sync::Arc;

    fn diag(file: &Arc<SourceFile>, rule: &'static str, needle: &str) -> Diagnostic {
        let start = file.text.find(needle).unwrap();
        let end = start + file.text[start..].find(';').unwrap();
        Diagnostic {
            rule,
            severity: Severity::Error,
            file: file.clone(),
            region: Region::point(file.position(start)),
            message: format!("{rule} here"),
            help: None,
            fix: None,
            unfixed: None,
            anchor: Some(start..end),
        }
    }

    fn report(text: &str, found: &[(&'static str, &str)]) -> CheckReport {
        let file = Arc::new(SourceFile::new("m/1.sql".into(), text.into()));
        CheckReport {
            diagnostics: found.iter().map(|(r, n)| diag(&file, r, n)).collect(),
            reviewed: vec!["m/1.sql".into()],
            ..Default::default()
        }
    }

    #[test]
    fn statement_text_not_its_layout_or_comments_decides() {
        assert_eq!(
            normalize("CREATE  INDEX i -- why\n ON t (a)"),
            normalize("create index i /* x */ ON t (a)")
        );
        assert_ne!(normalize("CREATE INDEX i ON t (a)"), normalize("CREATE INDEX i ON t (b)"));
        assert_ne!(normalize("SELECT 'A'"), normalize("SELECT 'a'"));
    }

    #[test]
    fn accepts_findings_after_edits_elsewhere_and_reports_stale_entries() {
        let before = report(
            "CREATE INDEX i ON t (a);\nCREATE INDEX j ON t (b);\n",
            &[
                ("require-concurrent-index", "CREATE INDEX i"),
                ("require-concurrent-index", "CREATE INDEX j"),
            ],
        );
        let baseline = Baseline::of(&before);
        assert_eq!(baseline.findings(), 2);
        // Lines added above, `j` fixed, a new index `k`.
        let mut after = report(
            "-- a comment\nSELECT 1;\n\nCREATE INDEX   i ON t (a);\nCREATE INDEX k ON t (c);\n",
            &[
                ("require-concurrent-index", "CREATE INDEX   i"),
                ("require-concurrent-index", "CREATE INDEX k"),
            ],
        );
        baseline.apply(&mut after);
        assert_eq!(after.stats.accepted, 1);
        assert_eq!(after.diagnostics.len(), 1);
        assert_eq!(after.diagnostics[0].region.start, Pos::new(5, 1));
        assert_eq!(after.stale_baseline.len(), 1);
        assert_eq!(after.stale_baseline[0].message, "require-concurrent-index here");
    }

    #[test]
    fn a_count_accepts_no_more_findings_than_it_recorded() {
        let one = report("ALTER TABLE t ADD a varchar(9), ADD b varchar(9);", &[("prefer-text", "ALTER")]);
        let baseline = Baseline::of(&one);
        let mut two = report(
            "ALTER TABLE t ADD a varchar(9), ADD b varchar(9);",
            &[("prefer-text", "ALTER"), ("prefer-text", "ALTER")],
        );
        baseline.apply(&mut two);
        assert_eq!((two.stats.accepted, two.diagnostics.len()), (1, 1));
        assert!(two.stale_baseline.is_empty());
    }

    #[test]
    fn entries_of_files_not_reviewed_are_kept_and_not_judged() {
        let mut a = report("CREATE INDEX i ON t (a);", &[("require-concurrent-index", "CREATE INDEX i")]);
        let baseline = Baseline::of(&a);
        a.diagnostics.clear();
        a.reviewed = vec!["m/2.sql".into()];
        baseline.apply(&mut a);
        assert!(a.stale_baseline.is_empty());
        let kept = baseline.updated_with(&a);
        assert_eq!(kept.entries.len(), 1);
    }

    #[test]
    fn names_the_file_in_strata_toml_once() {
        let dir = tempfile::tempdir().unwrap();
        let toml = dir.path().join("strata.toml");
        std::fs::write(&toml, "name = \"x\"\n[paths]\ncore = \"db\"\n").unwrap();
        name_in_strata_toml(&toml, DEFAULT_FILE).unwrap();
        let text = std::fs::read_to_string(&toml).unwrap();
        assert_eq!(text, "name = \"x\"\n[paths]\nbaseline = \"strata-baseline.json\"\ncore = \"db\"\n");
        std::fs::write(&toml, "name = \"x\"").unwrap();
        name_in_strata_toml(&toml, DEFAULT_FILE).unwrap();
        let cfg: toml::Table = std::fs::read_to_string(&toml).unwrap().parse().unwrap();
        assert_eq!(cfg["paths"]["baseline"].as_str(), Some(DEFAULT_FILE));
    }

    #[test]
    fn round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        let baseline = Baseline::of(&report("CREATE INDEX i ON t (a);", &[("require-concurrent-index", "CREATE")]));
        baseline.write(&path).unwrap();
        assert_eq!(Baseline::load(&path).unwrap().entries, baseline.entries);
        std::fs::write(&path, "{\"version\": 9, \"findings\": []}").unwrap();
        assert!(Baseline::load(&path).unwrap_err().to_string().contains("version 9"));
        std::fs::write(&path, "[1,").unwrap();
        assert!(Baseline::load(&path).is_err());
        assert!(Baseline::load(&dir.path().join("none.json")).unwrap().entries.is_empty());
    }
}
