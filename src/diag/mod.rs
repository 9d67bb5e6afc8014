//! The diagnostic types every layer shares: positions and regions in a
//! source file, findings with their severity and fixes, the finished report
//! of a check, and the metadata of a rule. A leaf module: it depends on
//! nothing else in the crate, so the SQL front end, the rules, the checker
//! and the renderers all build on it.

use std::sync::Arc;

use serde::Serialize;

pub mod meta;

pub use meta::{Group, RuleMeta};

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
        line_starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
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
    /// Why a rule that fixes such findings did not fix this one.
    pub unfixed: Option<String>,
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
    /// Findings left out because the findings baseline accepts them.
    pub accepted: usize,
    pub elapsed_ms: f64,
}

/// Accepted findings of one rule on one statement of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BaselineEntry {
    pub rule: String,
    pub file: String,
    /// The first 16 hex digits of the SHA-256 of the statement's tokens.
    pub fingerprint: String,
    /// How many findings of the rule the statement had.
    pub count: usize,
    /// The first finding's message, for people reading the file (not matched).
    pub message: String,
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
    pub stale_baseline: Vec<BaselineEntry>,
}

impl CheckReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.diagnostics.iter().filter(|d| d.severity == severity).count()
    }

    /// Sorts findings by file, position and rule so that every format is
    /// deterministic.
    pub fn sort(&mut self) {
        // Findings of one file share its `SourceFile`: comparing the
        // pointers first spares most path comparisons (paths share long
        // prefixes; they were a fifth of a check's serial tail).
        let file = |a: &Diagnostic, b: &Diagnostic| {
            if Arc::ptr_eq(&a.file, &b.file) {
                std::cmp::Ordering::Equal
            } else {
                a.file.path.cmp(&b.file.path)
            }
        };
        self.diagnostics
            .sort_by(|a, b| file(a, b).then_with(|| (a.region.start, a.rule).cmp(&(b.region.start, b.rule))));
    }
}
