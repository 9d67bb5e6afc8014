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
        start
            + line
                .char_indices()
                .nth(col)
                .map_or(line.len(), |(b, _)| b)
    }
}

/// A suggested mechanical change: replace `region` (inclusive) by `replacement`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub description: String,
    pub edits: Vec<Edit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edit {
    /// Byte range in the file's text.
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
}

/// Counters for the one-line summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Files under review.
    pub files: usize,
    /// Statements in the files under review.
    pub statements: usize,
    /// Of those, statements sqlparser understood.
    pub parsed: usize,
    /// Files replayed as context only (history).
    pub context_files: usize,
    pub elapsed_ms: f64,
}

/// The finished result of a check, ready to render.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub diagnostics: Vec<Diagnostic>,
    pub stats: Stats,
}

impl CheckReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    /// Sorts findings by file, position and rule so that every format is
    /// deterministic.
    pub fn sort(&mut self) {
        self.diagnostics.sort_by(|a, b| {
            (a.file.path.as_str(), a.region.start, a.rule).cmp(&(b.file.path.as_str(), b.region.start, b.rule))
        });
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
