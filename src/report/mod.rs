//! Diagnostics and their renderers. Rules produce [`Diagnostic`]s; renderers
//! only format a finished [`CheckReport`], they never decide anything.

use std::io::{self, Write};

use crate::diag::RuleMeta;

pub mod fingerprint;
pub mod github;
pub mod gitlab;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
pub mod text;

pub use crate::diag::{CheckReport, Diagnostic, Edit, Fix, NewFile, Pos, Region, Severity, SourceFile, Stats};

/// The output formats of `strata check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Github,
    Junit,
    /// GitLab Code Quality (`artifacts:reports:codequality`).
    Gitlab,
    /// A pull-request comment body (`gh pr comment --body-file`, a GitLab note).
    Markdown,
}

/// Options shared by renderers.
#[derive(Clone, Debug)]
pub struct RenderOptions {
    pub color: bool,
    /// Print only the summary line in text mode.
    pub quiet: bool,
    /// Where docs/rules.md is published; formats that link to a rule's
    /// documentation append `#<rule>` (see [`crate::rules::docs::rule_url`]).
    pub docs_url: String,
    /// Warnings fail the check (`--deny-warnings`): JUnit marks them failed.
    pub deny_warnings: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: false,
            quiet: false,
            deny_warnings: false,
            docs_url: crate::rules::docs::DEFAULT_DOCS_URL.to_string(),
        }
    }
}

/// Renders `report` in `format`. `rules` is the rule table (SARIF and JUnit
/// describe every rule, not only those that fired).
pub fn render(format: Format, report: &CheckReport, rules: &[&RuleMeta], opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::render(report, opts, w),
        Format::Json => json::render(report, w),
        Format::Sarif => sarif::render(report, rules, &opts.docs_url, w),
        Format::Github => github::render(report, w),
        Format::Junit => junit::render(report, opts.deny_warnings, w),
        Format::Gitlab => gitlab::render(report, rules, w),
        Format::Markdown => markdown::render(report, rules, &opts.docs_url, w),
    }
}

/// Writes `value` as pretty JSON and a newline, the way the JSON, SARIF and
/// GitLab reports end. Through a buffer of its own: the pretty printer makes
/// a write of every punctuation mark, each a dynamic call on `w` when
/// written to it straight (750,000 calls for the 4,033 findings of the
/// corpora), and the buffer makes them copies without holding the whole
/// report in memory (28 MB for the 40,366 findings of ten copies of the
/// corpora).
pub(crate) fn write_json(value: &impl serde::Serialize, w: &mut dyn Write) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 16, w);
    serde_json::to_writer_pretty(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// One fixture report shared by the renderers' snapshot tests, so that every
/// format is checked against the same findings.
#[cfg(test)]
pub(crate) mod fixture {
    use std::sync::Arc;

    use super::*;
    use crate::diag::Group;

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
            unfixed: None,
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
                accepted: 0,
                elapsed_ms: 12.3456,
            },
            ..Default::default()
        };
        report.sort();
        report
    }
}
