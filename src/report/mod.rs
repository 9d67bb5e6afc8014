//! Diagnostics and their renderers. Rules produce [`Diagnostic`]s; renderers
//! only format a finished [`CheckReport`], they never decide anything.

use std::io::{self, Write};
use std::sync::Arc;

use serde::Serialize;

use crate::rules::RuleMeta;

pub mod github;
pub mod json;
pub mod junit;
pub mod sarif;
pub mod text;

/// How serious a finding is. `Off` exists only in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Off,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Off => "off",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// A 1-based position; `col` counts characters, not bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(line: u32, col: u32) -> Self {
        Pos { line, col }
    }
}

/// A range in a source file, both ends inclusive positions of characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Region {
    pub start: Pos,
    pub end: Pos,
}

impl Region {
    pub fn new(start: Pos, end: Pos) -> Self {
        Region { start, end }
    }
    pub fn point(p: Pos) -> Self {
        Region { start: p, end: p }
    }

    /// The region with positions clamped to 1 and `end` not before `start`,
    /// for formats that reject line or column 0 (SARIF, GitHub annotations).
    pub fn normalized(self) -> Region {
        let start = Pos::new(self.start.line.max(1), self.start.col.max(1));
        let end = Pos::new(self.end.line.max(1), self.end.col.max(1));
        Region {
            start,
            end: end.max(start),
        }
    }
}

/// A source file as the user wrote it, with a line index for code frames.
#[derive(Debug)]
pub struct SourceFile {
    /// The path shown to the user (relative to the workspace or the working
    /// directory when possible).
    pub path: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: String, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { path, text, line_starts }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The text of a 1-based line without its line terminator.
    pub fn line(&self, line: u32) -> &str {
        let i = line as usize;
        if i == 0 || i > self.line_starts.len() {
            return "";
        }
        let start = self.line_starts[i - 1];
        let end = self.line_starts.get(i).copied().unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }

    /// The byte offset of a 1-based position (clamped to the text).
    pub fn offset(&self, pos: Pos) -> usize {
        let i = (pos.line as usize).clamp(1, self.line_starts.len());
        let start = self.line_starts[i - 1];
        let line = self.line(i as u32);
        let col = (pos.col as usize).saturating_sub(1);
        start + line.char_indices().nth(col).map_or(line.len(), |(b, _)| b)
    }

    /// The 1-based position of a byte offset (the inverse of [`Self::offset`]),
    /// for rules that locate text by bytes, e.g. to attach a [`Fix`].
    pub fn position(&self, byte: usize) -> Pos {
        let byte = byte.min(self.text.len());
        let i = self.line_starts.partition_point(|&s| s <= byte).max(1);
        let start = self.line_starts[i - 1];
        let col = self.text.get(start..byte).map_or(0, |s| s.chars().count());
        Pos::new(i as u32, col as u32 + 1)
    }
}

/// A suggested mechanical change: a set of edits to the file's text and,
/// optionally, a new migration to add after it (`strata check --fix`
/// applies both).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub description: String,
    pub edits: Vec<Edit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_file: Option<NewFile>,
}

impl Fix {
    pub fn new(description: impl Into<String>, edits: Vec<Edit>) -> Self {
        Fix {
            description: description.into(),
            edits,
            new_file: None,
        }
    }
}

/// A migration a fix adds in the folder of the fixed file. The fixer names
/// it after the folder's last migration (`0008_<name>.sql`, `V8__<name>.sql`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NewFile {
    /// The descriptive part of the file name, snake_case.
    pub name: String,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edit {
    /// Byte range `start..end` (end exclusive) in the file's original text.
    pub start: usize,
    pub end: usize,
    pub replacement: String,
}

/// One finding of one rule.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: Arc<SourceFile>,
    pub region: Region,
    pub message: String,
    pub help: Option<String>,
    pub fix: Option<Fix>,
    /// The byte range of the statement the finding is about, when it is
    /// about one: the findings baseline fingerprints its text.
    pub anchor: Option<std::ops::Range<usize>>,
}

/// Counters for the one-line summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Files under review.
    pub files: usize,
    /// Statements in the files under review.
    pub statements: usize,
    /// Of those, statements strata understood: read by sqlparser, or read
    /// by PostgreSQL's grammar into strata's model.
    pub understood: usize,
    /// Files replayed as context only (history).
    pub context_files: usize,
    pub elapsed_ms: f64,
    /// Findings left out because the findings baseline accepts them.
    pub accepted: usize,
}

/// The finished result of a check, ready to render.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub diagnostics: Vec<Diagnostic>,
    pub stats: Stats,
    /// The files under review, as shown (a findings baseline entry of any
    /// other file is not judged by this check).
    pub reviewed: Vec<String>,
    /// Findings baseline entries that matched nothing (debt paid, or the
    /// statement changed): the file can shrink.
    pub stale_baseline: Vec<crate::accepted::Entry>,
}

impl CheckReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    /// Sorts findings by file, position and rule so that every format is
    /// deterministic.
    pub fn sort(&mut self) {
        self.diagnostics
            .sort_by(|a, b| (a.file.path.as_str(), a.region.start, a.rule).cmp(&(b.file.path.as_str(), b.region.start, b.rule)));
    }
}

/// The output formats of `strata check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Github,
    Junit,
}

/// Options shared by renderers.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    pub color: bool,
    /// Print only the summary line in text mode.
    pub quiet: bool,
}

/// Renders `report` in `format`. `rules` is the rule table (SARIF and JUnit
/// describe every rule, not only those that fired).
pub fn render(format: Format, report: &CheckReport, rules: &[&RuleMeta], opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::render(report, opts, w),
        Format::Json => json::render(report, w),
        Format::Sarif => sarif::render(report, rules, w),
        Format::Github => github::render(report, w),
        Format::Junit => junit::render(report, w),
    }
}

/// One fixture report shared by the renderers' snapshot tests, so that every
/// format is checked against the same findings.
#[cfg(test)]
pub(crate) mod fixture {
    use super::*;
    use crate::rules::Group;

    pub(crate) const NOTES_PATH: &str = "schema/core/0003_notes.sql";
    pub(crate) const NOTES_SQL: &str = "\
-- notes for every tenant
SET search_path = core;

CREATE TABLE notes (
    id bigint PRIMARY KEY,
    body text NOT NULL
);
";

    /// A path with a comma and a space, which GitHub properties and SARIF URIs
    /// must escape.
    pub(crate) const WIDGETS_PATH: &str = "schema/tenant/0007_widgets, draft.sql";
    pub(crate) const WIDGETS_SQL: &str = "\
-- widgets: prix en €, «tenant» data
ALTER TABLE \"widgets_é\" ADD COLUMN prix_€ money;
\tCREATE INDEX widgets_name_idx ON widgets (name);
ALTER TABLE widgets ALTER COLUMN name TYPE varchar(50);
ALTER TABLE widgets SPLIT PARTITION p1 INTO (p1a, p1b);
";

    const DOC: &str = "\
## What it does
Checks the fixture.

## Why is this bad?
Because the fixture says so.

## How to fix
Do what the help says.
";

    /// `unparsed-statement` is left out on purpose: SARIF must cope with a
    /// finding whose rule is not in the table. `ban-char-type` never fires.
    pub(crate) static RULES: [RuleMeta; 6] = [
        RuleMeta {
            id: "rls-missing",
            group: Group::Governance,
            default_severity: Severity::Error,
            summary: "Tenant tables enable row level security in the migration that creates them",
            doc: DOC,
            needs_workspace: true,
        },
        RuleMeta {
            id: "missing-tenant-id",
            group: Group::Governance,
            default_severity: Severity::Warning,
            summary: "Tenant tables carry a tenant_id column",
            doc: DOC,
            needs_workspace: true,
        },
        RuleMeta {
            id: "create-index-concurrently",
            group: Group::LockSafety,
            default_severity: Severity::Error,
            summary: "Indexes on existing tables are built CONCURRENTLY",
            doc: DOC,
            needs_workspace: false,
        },
        RuleMeta {
            id: "prefer-text-over-varchar",
            group: Group::Correctness,
            default_severity: Severity::Warning,
            summary: "Use text (with a CHECK if needed) instead of varchar(n)",
            doc: DOC,
            needs_workspace: false,
        },
        RuleMeta {
            id: "ban-money-type",
            group: Group::Correctness,
            default_severity: Severity::Warning,
            summary: "The money type depends on lc_monetary",
            doc: DOC,
            needs_workspace: false,
        },
        RuleMeta {
            id: "ban-char-type",
            group: Group::Correctness,
            default_severity: Severity::Off,
            summary: "char(n) pads with spaces",
            doc: "No headings here.",
            needs_workspace: false,
        },
    ];

    pub(crate) fn rules() -> Vec<&'static RuleMeta> {
        RULES.iter().collect()
    }

    /// The region of the first `needle` on `line`, in characters.
    fn span(file: &SourceFile, line: u32, needle: &str) -> Region {
        let text = file.line(line);
        let byte = text.find(needle).unwrap_or_else(|| panic!("{needle:?} not on line {line}"));
        let col = text[..byte].chars().count() as u32 + 1;
        let len = needle.chars().count() as u32;
        Region::new(Pos::new(line, col), Pos::new(line, col + len - 1))
    }

    fn diagnostic(file: &Arc<SourceFile>, rule: &'static str, severity: Severity, region: Region, message: &str) -> Diagnostic {
        Diagnostic {
            rule,
            severity,
            file: Arc::clone(file),
            region,
            message: message.to_string(),
            help: None,
            fix: None,
            anchor: None,
        }
    }

    /// Two files, errors and warnings, a multi-line region, non-ASCII text and
    /// a tab before a caret, a fix, and messages full of characters that some
    /// format must escape.
    pub(crate) fn report() -> CheckReport {
        let notes = Arc::new(SourceFile::new(NOTES_PATH.to_string(), NOTES_SQL.to_string()));
        let widgets = Arc::new(SourceFile::new(WIDGETS_PATH.to_string(), WIDGETS_SQL.to_string()));

        let mut rls = diagnostic(
            &notes,
            "rls-missing",
            Severity::Error,
            span(&notes, 4, "notes"),
            "table `public.notes` has no ENABLE ROW LEVEL SECURITY by the end of its migration",
        );
        rls.help = Some("add `ALTER TABLE notes ENABLE ROW LEVEL SECURITY;` in the same file".to_string());
        let end = NOTES_SQL.len();
        rls.fix = Some(Fix::new(
            "enable row level security",
            vec![Edit {
                start: end,
                end,
                replacement: "ALTER TABLE notes ENABLE ROW LEVEL SECURITY;\n".to_string(),
            }],
        ));

        let mut tenant = diagnostic(
            &notes,
            "missing-tenant-id",
            Severity::Warning,
            Region::new(Pos::new(4, 1), Pos::new(7, 2)),
            "table `public.notes` has no `tenant_id` column",
        );
        tenant.help = Some("add `tenant_id uuid NOT NULL REFERENCES core.tenants (id)`".to_string());

        let mut money = diagnostic(
            &widgets,
            "ban-money-type",
            Severity::Warning,
            span(&widgets, 2, "money"),
            "column `prix_€` uses `money`: rounding follows lc_monetary, not the column",
        );
        money.help = Some("use `numeric(12, 2)` and store the currency beside it".to_string());

        let mut index = diagnostic(
            &widgets,
            "create-index-concurrently",
            Severity::Error,
            span(&widgets, 3, "CREATE INDEX"),
            "CREATE INDEX on `widgets` blocks writes: 100% of <widgets> & its readers, until it ends\r\nthe table already exists",
        );
        index.help = Some(
            "use `CREATE INDEX CONCURRENTLY widgets_name_idx ON widgets (name);`\nand start the file with `-- strata: no-transaction`"
                .to_string(),
        );

        let mut varchar = diagnostic(
            &widgets,
            "prefer-text-over-varchar",
            Severity::Warning,
            span(&widgets, 4, "varchar(50)"),
            "`varchar(50)` rewrites nothing today, but 'widening' it later takes an ACCESS EXCLUSIVE lock",
        );
        varchar.help = Some("use `text` with `CHECK (char_length(name) <= 50)`".to_string());

        let unparsed = diagnostic(
            &widgets,
            "unparsed-statement",
            Severity::Warning,
            span(&widgets, 5, "ALTER TABLE widgets SPLIT PARTITION p1 INTO (p1a, p1b);"),
            "sqlparser does not understand this statement; only keyword checks saw it",
        );

        let mut report = CheckReport {
            diagnostics: vec![unparsed, varchar, index, money, tenant, rls],
            stats: Stats {
                files: 2,
                statements: 7,
                understood: 6,
                context_files: 250,
                elapsed_ms: 12.3456,
                accepted: 0,
            },
            ..Default::default()
        };
        report.sort();
        report
    }
}
